//! The command line: clap definitions and dispatch. Thin: flags (built from the settings
//! table, `flags`) become a `Scenario`, `crate::api` computes, `crate::report` renders.

pub mod args;
pub mod chart_cmd;
pub mod compare_cmd;
pub mod completions_cmd;
pub mod estimate;
pub mod flags;
pub mod plan_cmd;
pub mod presets_cmd;
pub mod report_cmd;
pub mod serve_cmd;

use crate::error::Result;
use clap::{Parser, Subcommand};
use std::io::Write;

#[derive(Parser, Debug)]
#[command(name = "memplan", version, about = "GPU memory for training and serving transformer models: estimate, plan, benchmark", long_about = None)]
pub struct Cli {
    /// A directory of your own presets: DIR/models/*.toml and DIR/gpus/*.toml, in the built-in
    /// schema (repeatable; also MEMPLAN_PRESET_DIR, `:`-separated). They shadow built-ins of
    /// the same name.
    #[arg(long, global = true, value_name = "DIR")]
    pub preset_dir: Vec<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Per-GPU memory of a training step or a forward pass, term by term.
    Estimate(Box<args::EstimateArgs>),
    /// Search the parallel plans that fit a cluster, rank them by step time, emit launch configs.
    Plan(Box<plan_cmd::PlanArgs>),
    /// Several models or settings side by side; memory budgets and baselines for CI.
    Compare(Box<compare_cmd::CompareArgs>),
    /// Charts (SVG or PNG): memory breakdown, sweeps, largest micro-batch, plans, bench results.
    Chart(chart_cmd::ChartArgs),
    /// A capacity report in one file (report.html with inline charts, or report.md with chart files).
    Report(Box<report_cmd::ReportArgs>),
    /// List or show the built-in model and GPU presets.
    Presets(presets_cmd::PresetsArgs),
    /// A local web page and JSON API on 127.0.0.1: estimate, plan search, shareable links.
    Serve(serve_cmd::ServeArgs),
    /// Shell completions: `memplan completions bash > ~/.local/share/bash-completion/completions/memplan`.
    Completions(completions_cmd::CompletionsArgs),
    /// The local GPUs: wgpu adapters (features, limits) and NVML memory where available.
    Devices(crate::bench::cli::DevicesArgs),
    /// Run real matmul, attention and layer kernels (WGSL) on the local GPU.
    Bench(crate::bench::cli::BenchArgs),
    /// Run a layer at a model's shapes and compare measured bytes and throughput with the estimate.
    Validate(crate::bench::cli::ValidateArgs),
}

/// Run a parsed command; returns the process exit code (0 ok/fits, 1 does not fit).
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<i32> {
    let dirs = crate::model::user_presets::dirs_from(&cli.preset_dir);
    if !dirs.is_empty() {
        crate::model::user_presets::load(&dirs)?;
    }
    match cli.command {
        Command::Estimate(a) => estimate::run(&a, out),
        Command::Compare(a) => compare_cmd::run(&a, out),
        Command::Chart(a) => chart_cmd::run(&a, out),
        Command::Report(a) => report_cmd::run(&a, out),
        Command::Completions(a) => completions_cmd::run(&a, out),
        Command::Presets(a) => presets_cmd::run(&a, out),
        Command::Plan(a) => plan_cmd::run(&a, out),
        Command::Serve(a) => serve_cmd::run(&a, out),
        Command::Devices(a) => {
            quiet_mesa_device_select();
            crate::bench::cli::run_devices(&a, out)
        }
        Command::Bench(a) => {
            quiet_mesa_device_select();
            crate::bench::cli::run_bench(&a, out)
        }
        Command::Validate(a) => {
            quiet_mesa_device_select();
            crate::bench::cli::run_validate(&a, out)
        }
    }
}

/// Mesa's device-select Vulkan layer prints a harmless XDG_RUNTIME_DIR complaint on headless
/// machines; `NODEVICE_SELECT=1` turns the layer off (set only when the user has not chosen).
fn quiet_mesa_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap's own checks (unique ids, valid defaults) for every subcommand.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
