//! A user's own presets: `--preset-dir DIR` (repeatable) and `MEMPLAN_PRESET_DIR` (a list of
//! directories, `:`-separated on Unix) add `DIR/models/*.toml` and `DIR/gpus/*.toml` in the
//! schema of the built-in presets. A user preset is named by its file stem and shadows a
//! built-in of the same name; an earlier directory shadows a later one.
//!
//! Every file is read and validated when the directories are loaded, so a mistake is reported
//! at once, naming the file, the line and the field — TOML syntax and schema errors through
//! `parse_toml`, and the semantic checks (heads dividing the hidden size, a GPU with no memory)
//! located in the file by the key they concern.

use super::spec::ModelSpec;
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// One loaded preset file.
#[derive(Clone, Debug)]
pub struct Entry<T> {
    /// The file stem, the name the preset is used by.
    pub name: &'static str,
    pub path: PathBuf,
    /// The file's text (shown by `memplan presets show`).
    pub text: String,
    pub spec: T,
}

#[derive(Clone, Debug, Default)]
pub struct UserPresets {
    pub models: Vec<Entry<ModelSpec>>,
    pub gpus: Vec<Entry<GpuSpec>>,
    pub dirs: Vec<PathBuf>,
}

static USER: RwLock<Option<UserPresets>> = RwLock::new(None);

/// The environment variable that names preset directories.
pub const ENV: &str = "MEMPLAN_PRESET_DIR";

/// Directories from `--preset-dir` (first) and `MEMPLAN_PRESET_DIR`.
pub fn dirs_from(flags: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs = flags.to_vec();
    if let Some(v) = std::env::var_os(ENV) {
        dirs.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

/// Load and validate every preset in `dirs`, and make them visible to `presets::model`,
/// `GpuSpec::preset` and the name lists. An empty list clears the user presets.
pub fn load(dirs: &[PathBuf]) -> Result<()> {
    let presets = if dirs.is_empty() { None } else { Some(read_dirs(dirs)?) };
    *USER.write().unwrap_or_else(|e| e.into_inner()) = presets;
    Ok(())
}

/// Read and validate, without installing.
pub fn read_dirs(dirs: &[PathBuf]) -> Result<UserPresets> {
    let mut out = UserPresets { dirs: dirs.to_vec(), ..UserPresets::default() };
    for dir in dirs {
        let meta = std::fs::metadata(dir)
            .map_err(|e| Error::Io { path: dir.clone(), message: format!("{e} (--preset-dir / {ENV})") })?;
        if !meta.is_dir() {
            return Err(Error::Io {
                path: dir.clone(),
                message: "not a directory (--preset-dir / MEMPLAN_PRESET_DIR)".into(),
            });
        }
        let (models, gpus) = (dir.join("models"), dir.join("gpus"));
        // Present but not a folder is `toml_files`' clear error; absent both is this one.
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if !exists(&models) && !exists(&gpus) {
            return Err(Error::conflict(
                format!("preset directory {} has neither a models/ nor a gpus/ folder", dir.display()),
                format!(
                    "put model presets in {0}/models/NAME.toml and GPU presets in {0}/gpus/NAME.toml",
                    dir.display()
                ),
            ));
        }
        for path in toml_files(&models)? {
            let text = super::presets::read(&path)?;
            let spec = parse_model(&path, &text)?;
            let name = stem(&path);
            if !out.models.iter().any(|m| m.name == name) {
                out.models.push(Entry { name, path, text, spec });
            }
        }
        for path in toml_files(&gpus)? {
            let text = super::presets::read(&path)?;
            let spec = parse_gpu(&path, &text)?;
            let name = stem(&path);
            if !out.gpus.iter().any(|g| g.name == name) {
                out.gpus.push(Entry { name, path, text, spec });
            }
        }
    }
    Ok(out)
}

/// The `*.toml` files of `dir` (none when it does not exist), sorted. A `*.toml` entry that is not
/// a regular file (a directory, FIFO, device, dangling link) is an error naming it, never
/// skipped silently nor opened; other entries are ignored. At most `MAX_PRESET_FILES` files.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |path: &Path, message: String| Error::Io { path: path.to_path_buf(), message };
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir, e.to_string())),
        Ok(m) if !m.is_dir() => {
            return Err(io(dir, "not a directory: a preset directory's models/ and gpus/ must be folders".into()))
        }
        Ok(_) => {}
    }
    let rd = std::fs::read_dir(dir).map_err(|e| io(dir, e.to_string()))?;
    let mut files = Vec::new();
    for entry in rd {
        let path = entry.map_err(|e| io(dir, e.to_string()))?.path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        // `metadata` follows links: a link to a regular file is a preset like any other.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push(path),
            Ok(m) => {
                let what = if m.is_dir() { "a directory" } else { "not a regular file (a FIFO, socket or device)" };
                return Err(io(&path, format!("it is {what}; a preset must be a regular .toml file")));
            }
            Err(e) => return Err(io(&path, format!("{e} (a dangling link?)"))),
        }
        if files.len() > MAX_PRESET_FILES {
            return Err(io(dir, format!("more than {MAX_PRESET_FILES} preset files")));
        }
    }
    files.sort();
    Ok(files)
}

/// Most preset files read from one folder (each is validated at start-up).
pub const MAX_PRESET_FILES: usize = 10_000;

/// The lookup name: the file stem, lowercased. Leaked once per file and process (names are
/// `&'static str` like the built-in ones).
fn stem(path: &Path) -> &'static str {
    let s = path.file_stem().and_then(|s| s.to_str()).unwrap_or("preset").to_ascii_lowercase();
    Box::leak(s.into_boxed_str())
}

/// The 1-based line where `key = ` is set: inside the `[[stacks]]` block named `stack` when
/// given (including its `[stacks.layer]` tables), else anywhere; `section` narrows to a
/// `[section]` table or an inline `section = { ... }`.
pub fn locate(text: &str, stack: Option<&str>, section: Option<&str>, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // The range of lines to search.
    let (mut start, mut end) = (0, lines.len());
    if let Some(stack) = stack {
        let starts: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[stacks]]"))
            .map(|(i, _)| i)
            .collect();
        for (k, s) in starts.iter().enumerate() {
            let e = starts.get(k + 1).copied().unwrap_or(lines.len());
            let named = lines[*s..e].iter().any(|l| {
                let t = l.trim_start();
                t.starts_with("name") && t.contains(&format!("\"{stack}\""))
            });
            if named {
                (start, end) = (*s, e);
                break;
            }
        }
    }
    let sets = |line: &str, key: &str| {
        let code = line.split('#').next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find(key) {
            let before = rest[..i].chars().last();
            let after = rest[i + key.len()..].trim_start();
            if before.is_none_or(|c| c == ' ' || c == '{' || c == ',' || c == '\t') && after.starts_with('=') {
                return true;
            }
            rest = &rest[i + key.len()..];
        }
        false
    };
    let mut table = String::new();
    for (i, line) in lines.iter().enumerate().take(end).skip(start) {
        let t = line.trim();
        if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        let in_section = match section {
            None => true,
            Some(sec) => table == sec || table.ends_with(&format!(".{sec}")) || sets(line, sec),
        };
        if in_section && sets(line, key) {
            return Some(i + 1);
        }
    }
    None
}

fn semantic(
    path: &Path,
    text: &str,
    stack: Option<&str>,
    section: Option<&str>,
    key: &str,
    field: String,
    message: String,
) -> Error {
    Error::Parse { path: path.to_path_buf(), line: locate(text, stack, section, key), field: Some(field), message }
}

/// `parse_toml`, with the line moved to where the named field is written when the TOML
/// library's span points elsewhere (an unknown key is reported at its table's start).
fn parse<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    super::presets::parse_toml(path, text).map_err(|e| match e {
        // A "field" that is not a key (the TOML library's span text) says nothing: drop it.
        Error::Parse { path, line, field: Some(field), message }
            if !field.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            Error::Parse { path, line, field: None, message }
        }
        Error::Parse { path, line, field: Some(field), message } => {
            let leaf = field.rsplit('.').next().unwrap_or(&field);
            let written_on = |l: usize| text.lines().nth(l.wrapping_sub(1)).is_some_and(|t| t.contains(leaf));
            let line = match line {
                Some(l) if written_on(l) => Some(l),
                other => locate(text, None, None, leaf).or(other),
            };
            Error::Parse { path, line, field: Some(field), message }
        }
        other => other,
    })
}

/// Parse and validate a model preset file.
pub fn parse_model(path: &Path, text: &str) -> Result<ModelSpec> {
    let spec: ModelSpec = parse(path, text)?;
    if let Err(e) = super::validate::validate(&spec) {
        let reason = match &e {
            Error::InvalidShape { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        let hint = e.hint().unwrap_or_default();
        let message = if hint.is_empty() { reason.clone() } else { format!("{reason} ({hint})") };
        // `stack `decoder`: ...` names the stack.
        let stack = reason.strip_prefix("stack `").and_then(|r| r.split('`').next()).map(str::to_string);
        // A check that names its field (`field `stacks.layer.hidden``): the leaf is the key, the
        // component before it the table it sits in.
        if let Some(named) = reason.split("field `").nth(1).and_then(|r| r.split('`').next()) {
            let parts: Vec<&str> = named.split('.').collect();
            let key = parts.last().copied().unwrap_or(named);
            let section = parts.len().checked_sub(2).map(|i| parts[i]).filter(|s| !matches!(*s, "stacks" | "layer"));
            let stack_scope = if parts.first() == Some(&"stacks") { stack.as_deref() } else { None };
            let line = locate(text, stack_scope, section, key)
                .or_else(|| locate(text, stack_scope, None, key))
                .or_else(|| locate(text, None, None, key));
            let message = message.replacen(&format!("field `{named}`: "), "", 1);
            return Err(Error::Parse { path: path.to_path_buf(), line, field: Some(named.into()), message });
        }
        // Which key the check concerns, and where it lives.
        let (section, key, field): (Option<&str>, &str, &str) = if reason.contains("has no stacks") {
            (None, "stacks", "stacks")
        } else if reason.contains("token embedding") {
            (Some("tokens"), "vocab", "tokens.vocab")
        } else if reason.contains("0 layers") {
            (None, "layers", "stacks.layers")
        } else if reason.contains("key/value heads") {
            (Some("attention"), "kv_heads", "stacks.layer.attention.kv_heads")
        } else if reason.contains("heads do not divide") {
            (Some("attention"), "heads", "stacks.layer.attention.heads")
        } else if reason.contains("hidden, heads and ffn") {
            (None, "hidden", "stacks.layer.hidden")
        } else if reason.contains("top_k") {
            (Some("mlp"), "top_k", "stacks.layer.mlp.top_k")
        } else if reason.contains("reads tokens") {
            (None, "input", "stacks.input")
        } else if reason.contains("patch") {
            (None, "patch", "stacks.input.patch")
        } else if reason.contains("dropout") {
            (None, "dropout", "dropout")
        } else if reason.contains("cross-attention") {
            (None, "cross_attention", "stacks.layer.cross_attention")
        } else {
            (None, "name", "name")
        };
        let mut line = locate(text, stack.as_deref(), section, key);
        if line.is_none() && key == "kv_heads" {
            line = locate(text, stack.as_deref(), section, "heads");
        }
        return Err(Error::Parse { path: path.to_path_buf(), line, field: Some(field.into()), message });
    }
    Ok(spec)
}

/// Parse and validate a GPU preset file: positive memory, bandwidths and peaks; an efficiency
/// in (0, 1].
pub fn parse_gpu(path: &Path, text: &str) -> Result<GpuSpec> {
    let g: GpuSpec = parse(path, text)?;
    let positive: [(Option<&str>, &str, f64); 5] = [
        (None, "memory_bytes", g.memory_bytes as f64),
        (None, "memory_bandwidth", g.memory_bandwidth),
        (Some("peak_flops"), "fp32", g.peak_flops.fp32),
        (Some("peak_flops"), "fp16", g.peak_flops.fp16),
        (Some("interconnect"), "intra_node_bandwidth", g.interconnect.intra_node_bandwidth),
    ];
    for (section, key, v) in positive {
        if !(v.is_finite() && v > 0.0) {
            let field = section.map_or(key.to_string(), |s| format!("{s}.{key}"));
            return Err(semantic(path, text, None, section, key, field, format!("must be positive, found {v}")));
        }
    }
    // Bytes are added and multiplied with model sizes: a physical bound keeps them exact.
    let limit = super::validate::limits::BUFFER_BYTES;
    if g.memory_bytes > limit {
        return Err(semantic(
            path,
            text,
            None,
            None,
            "memory_bytes",
            "memory_bytes".into(),
            format!(
                "{} is too large for GPU memory: at most {} bytes (1 PiB)",
                g.memory_bytes,
                super::validate::fmt_limit(limit)
            ),
        ));
    }
    for (key, v) in [
        ("bf16", g.peak_flops.bf16),
        ("tf32", g.peak_flops.tf32),
        ("fp8", g.peak_flops.fp8),
        ("int8", g.peak_flops.int8),
    ] {
        if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(semantic(
                path,
                text,
                None,
                Some("peak_flops"),
                key,
                format!("peak_flops.{key}"),
                format!("must be positive, found {v}"),
            ));
        }
    }
    if let Some(v) = g.interconnect.inter_node_bandwidth.filter(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(semantic(
            path,
            text,
            None,
            Some("interconnect"),
            "inter_node_bandwidth",
            "interconnect.inter_node_bandwidth".into(),
            format!("must be positive, found {v}"),
        ));
    }
    if !(g.default_efficiency > 0.0 && g.default_efficiency <= 1.0) {
        return Err(semantic(
            path,
            text,
            None,
            None,
            "default_efficiency",
            "default_efficiency".into(),
            format!("must be a fraction in (0, 1], found {}", g.default_efficiency),
        ));
    }
    Ok(g)
}

fn with<R>(f: impl FnOnce(&UserPresets) -> R) -> Option<R> {
    USER.read().unwrap_or_else(|e| e.into_inner()).as_ref().map(f)
}

/// A user model preset by name (case-insensitive).
pub fn model(name: &str) -> Option<ModelSpec> {
    let key = name.to_ascii_lowercase();
    with(|u| u.models.iter().find(|m| m.name == key).map(|m| m.spec.clone())).flatten()
}

/// A user GPU preset by name (case-insensitive).
pub fn gpu(name: &str) -> Option<GpuSpec> {
    let key = name.to_ascii_lowercase();
    with(|u| u.gpus.iter().find(|g| g.name == key).map(|g| g.spec.clone())).flatten()
}

pub fn model_names() -> Vec<&'static str> {
    with(|u| u.models.iter().map(|m| m.name).collect()).unwrap_or_default()
}

pub fn gpu_names() -> Vec<&'static str> {
    with(|u| u.gpus.iter().map(|g| g.name).collect()).unwrap_or_default()
}

/// The file a user preset came from, and its text.
pub fn source(name: &str) -> Option<(PathBuf, String)> {
    let key = name.to_ascii_lowercase();
    with(|u| {
        u.models
            .iter()
            .find(|m| m.name == key)
            .map(|m| (m.path.clone(), m.text.clone()))
            .or_else(|| u.gpus.iter().find(|g| g.name == key).map(|g| (g.path.clone(), g.text.clone())))
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_keys_in_tables_inline_tables_and_stacks() {
        let text = "name = \"m\"\n[tokens]\nvocab = 10\n[[stacks]]\nname = \"enc\"\n[stacks.layer]\nhidden = 8\nattention = { heads = 3 }\n[[stacks]]\nname = \"dec\"\n[stacks.layer]\nhidden = 8\nattention = { heads = 5, kv_heads = 2 }\n";
        assert_eq!(locate(text, None, Some("tokens"), "vocab"), Some(3));
        assert_eq!(locate(text, Some("enc"), Some("attention"), "heads"), Some(8));
        assert_eq!(locate(text, Some("dec"), Some("attention"), "heads"), Some(13));
        assert_eq!(locate(text, Some("dec"), Some("attention"), "kv_heads"), Some(13));
        // `kv_heads` is not `heads`.
        assert_eq!(locate("a = { kv_heads = 2 }\n", None, None, "heads"), None);
        assert_eq!(locate(text, None, None, "missing"), None);
    }
}
