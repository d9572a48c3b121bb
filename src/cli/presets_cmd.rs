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
            if kind != "gpus" {
                let mut t = crate::report::printer::table(vec!["model", "architecture", "parameters"]);
                for name in presets::model_names() {
                    let m = presets::model(name)?;
                    t.add_row(vec![
                        name.to_string(),
                        m.architecture.name().to_string(),
                        format_count(params::count(&m)),
                    ]);
                }
                s.push_str(&t.to_string());
                s.push('\n');
            }
            if kind != "models" {
                let mut t = crate::report::printer::table(vec!["gpu", "memory", "bf16 dense TFLOP/s"]);
                for g in GpuSpec::all()? {
                    t.add_row(vec![
                        g.name.clone(),
                        ByteUnits::Gib.format(g.memory_bytes),
                        g.peak_flops.bf16.map_or("-".into(), |f| format!("{:.0}", f / 1e12)),
                    ]);
                }
                s.push_str(&t.to_string());
                s.push('\n');
            }
            write_out(out, &s)?;
        }
        PresetsAction::Show { name } => {
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
