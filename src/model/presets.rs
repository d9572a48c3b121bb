//! Built-in presets (embedded at build time from `presets/`) and user preset files.
//! The only file I/O in the core: reading TOML presets, with errors that name file, line and field.

use crate::error::{closest, Error, Result};
use crate::hw::GpuSpec;
use crate::model::validate::validate;
use crate::model::ModelSpec;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/presets.rs"));
}

/// Names of the model presets, sorted: the built-in ones and those of `--preset-dir`.
pub fn model_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = embedded::MODELS.iter().map(|(n, _)| *n).collect();
    merge_names(&mut names, super::user_presets::model_names());
    names
}

/// Names of the GPU presets, sorted: the built-in ones and those of `--preset-dir`.
pub fn gpu_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = embedded::GPUS.iter().map(|(n, _)| *n).collect();
    merge_names(&mut names, super::user_presets::gpu_names());
    names
}

fn merge_names(names: &mut Vec<&'static str>, user: Vec<&'static str>) {
    if user.is_empty() {
        return;
    }
    names.extend(user);
    names.sort_unstable();
    names.dedup();
}

/// Whether a name is a built-in model or GPU preset (a user preset may shadow it).
pub fn is_builtin(name: &str) -> bool {
    let key = name.to_ascii_lowercase();
    embedded::MODELS.iter().chain(embedded::GPUS.iter()).any(|(n, _)| *n == key)
}

/// A model preset by name (case-insensitive): a user preset (`--preset-dir`) first, then the
/// built-in ones.
pub fn model(name: &str) -> Result<ModelSpec> {
    if let Some(spec) = super::user_presets::model(name) {
        return Ok(spec);
    }
    let key = name.to_ascii_lowercase();
    let (file, text) = embedded::MODELS.iter().find(|(n, _)| *n == key).ok_or_else(|| Error::UnknownPreset {
        kind: "model",
        name: name.to_string(),
        suggestions: closest(&key, model_names()),
    })?;
    let spec: ModelSpec = parse_toml(Path::new(&format!("presets/models/{file}.toml")), text)?;
    validate(&spec)?;
    Ok(spec)
}

/// The raw TOML text of a built-in GPU preset.
pub(crate) fn gpu_text(name: &str) -> Option<(&'static str, &'static str)> {
    let key = name.to_ascii_lowercase();
    embedded::GPUS.iter().find(|(n, _)| *n == key).copied()
}

/// A model preset from a user's TOML file.
pub fn model_from_file(path: &Path) -> Result<ModelSpec> {
    model_from_text(path, &read(path)?)
}

/// A model preset from TOML text; `path` names it in errors, which give the line and the field
/// (`user_presets::parse_model`).
pub fn model_from_text(path: &Path, text: &str) -> Result<ModelSpec> {
    super::user_presets::parse_model(path, text)
}

/// Read an input file: only a regular file, size-capped (`crate::fsio`).
pub(crate) fn read(path: &Path) -> Result<String> {
    crate::fsio::read_text(path)
}

/// Parse TOML into `T`, mapping the error to the file, line and field it names.
pub fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let message = e.message().trim().to_string();
        let field = field_from_message(&message).or_else(|| {
            e.span().and_then(|span| {
                let line_text = text[..span.start.min(text.len())].lines().last().unwrap_or("");
                line_text.split('=').next().map(|k| k.trim().to_string()).filter(|k| !k.is_empty())
            })
        });
        Error::Parse { path: PathBuf::from(path), line, field, message }
    })
}

fn field_from_message(message: &str) -> Option<String> {
    // toml's messages name the field as "missing field `x`" / "unknown field `x`".
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    (message.contains("field")).then(|| message[start..end].to_string())
}

/// GPU presets by name, from the same loader as the model presets (`hw` has the type only).
impl GpuSpec {
    /// A GPU preset by name: a user preset (`--preset-dir`) first, then the built-in ones.
    pub fn preset(name: &str) -> Result<GpuSpec> {
        if let Some(g) = super::user_presets::gpu(name) {
            return Ok(g);
        }
        let (file, text) = gpu_text(name).ok_or_else(|| Error::UnknownPreset {
            kind: "gpu",
            name: name.to_string(),
            suggestions: closest(&name.to_ascii_lowercase(), gpu_names()),
        })?;
        parse_toml(Path::new(&format!("presets/gpus/{file}.toml")), text)
    }

    /// All GPU presets (built-in and `--preset-dir`), in name order.
    pub fn all() -> Result<Vec<GpuSpec>> {
        gpu_names().into_iter().map(GpuSpec::preset).collect()
    }
}
