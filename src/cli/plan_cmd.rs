//! `memplan plan`: search the plans that fit a cluster and rank them by predicted step time.

use super::estimate::write_out;
use super::flags::SearchFlags;
use crate::error::{Error, Result};
use crate::framework::Framework;
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The launch configs of the #1 plan's own framework.
    Auto,
    Deepspeed,
    Megatron,
    Torchtitan,
    /// PyTorch FSDP through the Hugging Face Trainer / accelerate (also plain DDP).
    Fsdp,
}

/// The frameworks an emit target writes configs for.
fn emit_frameworks(e: Engine) -> &'static [Framework] {
    match e {
        Engine::Auto => &crate::plan::frameworks::TRAINING,
        Engine::Megatron => &[Framework::Megatron],
        Engine::Deepspeed => &[Framework::Deepspeed],
        Engine::Torchtitan => &[Framework::Torchtitan],
        Engine::Fsdp => &[Framework::AccelerateFsdp, Framework::HfTrainer, Framework::Pytorch],
    }
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub flags: SearchFlags,
    /// List the main rejected plan families with the reason and margin.
    #[arg(long, help_heading = "Output")]
    pub explain: bool,
    /// Write launch configs for the best plan this target runs (`auto`: the #1 plan's own
    /// framework); the search is restricted to the frameworks it writes for. Files are written
    /// all or none.
    #[arg(long, value_enum, help_heading = "Output")]
    pub emit: Option<Engine>,
    /// Directory for --emit.
    #[arg(long, value_name = "DIR", help_heading = "Output")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table", help_heading = "Output")]
    pub format: PlanFormat,
}

pub fn run(args: &PlanArgs, out: &mut dyn Write) -> Result<i32> {
    if args.emit.is_some() && args.out.is_none() {
        return Err(Error::conflict("--emit needs --out DIR", "add --out launch/"));
    }
    let scenario = args.flags.scenario()?;
    let planned = match args.emit {
        Some(e) if e != Engine::Auto => crate::api::plan_for(&scenario, emit_frameworks(e))?,
        _ => crate::api::plan(&scenario)?,
    };
    let (report, result) = (&planned.report, &planned.result);
    // Emit before printing so that a refused emit prints nothing but the error.
    let mut written = Vec::new();
    if let (Some(engine), Some(dir), Some(best)) = (args.emit, &args.out, result.plans.first()) {
        let target = match engine {
            Engine::Auto => best.framework,
            other => {
                let t = emit_frameworks(other);
                if t.contains(&best.framework) {
                    best.framework
                } else {
                    *best.also_runs_on.iter().find(|f| t.contains(f)).unwrap_or(&t[0])
                }
            }
        };
        let base = &planned.resolved.base;
        written = crate::plan::emit::emit(
            target,
            &base.model().spec,
            planned.setup_for(target),
            best,
            planned.resolved.config.global_batch,
            dir,
        )?;
    }
    let text = match args.format {
        PlanFormat::Table => report.to_table(args.explain),
        PlanFormat::Json => report.to_json() + "\n",
    };
    write_out(out, &text)?;
    if result.plans.is_empty() {
        if args.format == PlanFormat::Table && !args.explain {
            write_out(out, &report.rejections_table())?;
        }
        return Ok(1);
    }
    if !written.is_empty() {
        let list: Vec<String> = written.iter().map(|p| format!("wrote {}", p.display())).collect();
        write_out(out, &(list.join("\n") + "\n"))?;
    }
    Ok(0)
}
