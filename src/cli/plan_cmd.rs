//! `memplan plan`: search the plans that fit a cluster and rank them by predicted step time.

use super::estimate::write_out;
use super::flags::SearchFlags;
use crate::error::{Error, Result};
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
    Deepspeed,
    Megatron,
    Fsdp,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub flags: SearchFlags,
    /// List the main rejected plan families with the reason and margin.
    #[arg(long, help_heading = "Output")]
    pub explain: bool,
    /// Write launch configs for the best plan.
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
    let planned = crate::api::plan(&args.flags.scenario()?)?;
    let (report, result) = (&planned.report, &planned.result);
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
    if let (Some(engine), Some(dir)) = (args.emit, &args.out) {
        let base = &planned.resolved.base;
        let files = crate::plan::emit::emit(
            engine_kind(engine),
            &base.model().spec,
            base.setup(),
            &result.plans[0],
            planned.resolved.config.global_batch,
            dir,
        )?;
        let list: Vec<String> = files.iter().map(|p| format!("wrote {}", p.display())).collect();
        write_out(out, &(list.join("\n") + "\n"))?;
    }
    Ok(0)
}

fn engine_kind(e: Engine) -> crate::plan::emit::Engine {
    match e {
        Engine::Deepspeed => crate::plan::emit::Engine::DeepSpeed,
        Engine::Megatron => crate::plan::emit::Engine::Megatron,
        Engine::Fsdp => crate::plan::emit::Engine::Fsdp,
    }
}
