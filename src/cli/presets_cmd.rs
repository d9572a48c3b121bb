//! `memplan presets list|show`.

use super::estimate::write_out;
use crate::error::Result;
use crate::hw::GpuSpec;
use crate::model::{params, presets};
use crate::units::{format_count, ByteUnits};
use clap::{Args, Subcommand};
use std::io::Write;

#[derive(Args, Debug)]
pub struct PresetsArgs {
    #[command(subcommand)]
    pub action: PresetsAction,
}

#[derive(Subcommand, Debug)]
pub enum PresetsAction {
    /// List presets: `models`, `gpus` or both.
    List { kind: Option<String> },
    /// Show one preset as TOML.
    Show { name: String },
}

pub fn run(args: &PresetsArgs, out: &mut dyn Write) -> Result<i32> {
    match &args.action {
        PresetsAction::List { kind } => {
            let kind = kind.as_deref().unwrap_or("all");
            if !matches!(kind, "all" | "models" | "gpus") {
                return Err(crate::Error::invalid("preset kind", kind, "models or gpus"));
            }
            let mut s = String::new();
            let user = !crate::model::user_presets::model_names().is_empty()
                || !crate::model::user_presets::gpu_names().is_empty();
            // With user presets: a column saying where each one comes from.
            let source = |name: &str| match crate::model::user_presets::source(name) {
                Some((path, _)) if presets::is_builtin(name) => format!("{} (shadows the built-in)", path.display()),
                Some((path, _)) => path.display().to_string(),
                None => "built-in".to_string(),
            };
            if kind != "gpus" {
                let mut header = vec!["model", "architecture", "parameters"];
                if user {
                    header.push("source");
                }
                let mut t = crate::report::printer::table(header);
                for name in presets::model_names() {
                    let m = presets::model(name)?;
                    let mut row =
                        vec![name.to_string(), m.architecture.name().to_string(), format_count(params::count(&m))];
                    if user {
                        row.push(source(name));
                    }
                    t.add_row(row);
                }
                s.push_str(&t.to_string());
                s.push('\n');
            }
            if kind != "models" {
                let mut header = vec!["gpu", "memory", "bf16 dense TFLOP/s"];
                if user {
                    header.push("source");
                }
                let mut t = crate::report::printer::table(header);
                for name in crate::model::presets::gpu_names() {
                    let g = GpuSpec::preset(name)?;
                    let mut row = vec![
                        name.to_string(),
                        ByteUnits::Gib.format(g.memory_bytes),
                        g.peak_flops.bf16.map_or("-".into(), |f| format!("{:.0}", f / 1e12)),
                    ];
                    if user {
                        row.push(source(name));
                    }
                    t.add_row(row);
                }
                s.push_str(&t.to_string());
                s.push('\n');
            }
            write_out(out, &s)?;
        }
        PresetsAction::Show { name } => {
            // A user preset is shown as written (with its comments and sources).
            if let Some((path, text)) = crate::model::user_presets::source(name) {
                write_out(out, &format!("# {}\n{text}", path.display()))?;
                return Ok(0);
            }
            let text = match presets::model(name) {
                Ok(m) => toml::to_string_pretty(&m).unwrap_or_default(),
                Err(model_err) => match GpuSpec::preset(name) {
                    Ok(g) => toml::to_string_pretty(&g).unwrap_or_default(),
                    Err(_) => return Err(model_err),
                },
            };
            write_out(out, &text)?;
        }
    }
    Ok(0)
}
