//! The command line: clap definitions and dispatch. Thin: flags become one validated
//! configuration (`args`), the core computes, `crate::report` renders.

pub mod args;
pub mod estimate;
pub mod plan_cmd;
pub mod presets_cmd;

use crate::error::Result;
use clap::{Parser, Subcommand};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(name = "memplan", version, about = "GPU memory for training and serving transformer models: estimate, plan, benchmark", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Per-GPU memory of a training step or a forward pass, term by term.
    Estimate(Box<args::EstimateArgs>),
    /// Search the parallel plans that fit a cluster, rank them by step time, emit launch configs.
    Plan(Box<plan_cmd::PlanArgs>),
    /// List or show the built-in model and GPU presets.
    Presets(presets_cmd::PresetsArgs),
}

/// Run a parsed command; returns the process exit code (0 ok/fits, 1 does not fit).
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<i32> {
    match cli.command {
        Command::Estimate(a) => estimate::run(&a, out),
        Command::Presets(a) => presets_cmd::run(&a, out),
        Command::Plan(a) => plan_cmd::run(&a, out),
    }
}
