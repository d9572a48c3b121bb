//! `memplan chart breakdown|sweep|max-batch|plans|bench -o FILE.svg|FILE.png`: flags in, chart
//! data from `crate::api::charts` (and `crate::bench::chart`), drawn by `crate::render`.

use super::args::UnitsArg;
use super::compare_cmd::{settings_help, RowArgs};
use super::estimate::write_out;
use super::flags::{ScenarioFlags, SearchFlags};
use crate::api::charts::{build_breakdown, build_max_batch, build_plans, build_sweep, SweepSpec};
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::report::chart::Chart;
use crate::scenario::rows::{expand, Setting};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ChartArgs {
    #[command(subcommand)]
    pub kind: ChartKind,
}

#[derive(Subcommand, Debug)]
pub enum ChartKind {
    /// Stacked bars of what is alive at the peak, per model or variant, with GPU capacity lines.
    #[command(after_long_help = settings_help())]
    Breakdown(Box<BreakdownArgs>),
    /// Per-GPU memory against the micro-batch or sequence length, one line per recompute policy
    /// (or attention kernel, ...), marking where each GPU runs out.
    #[command(after_long_help = settings_help())]
    Sweep(Box<SweepArgs>),
    /// The largest micro-batch that fits on each GPU preset.
    #[command(name = "max-batch", after_long_help = settings_help())]
    MaxBatch(Box<MaxBatchArgs>),
    /// The planner's top plans: step time against memory per GPU.
    Plans(Box<PlansChartArgs>),
    /// Measured against estimated bytes and throughput from `memplan bench -o` or
    /// `memplan validate --format json` files.
    Bench(BenchChartArgs),
}

/// Where and how big.
#[derive(Args, Debug, Clone)]
pub struct ChartOutput {
    /// Output file; the extension picks the format: .svg or .png. Written atomically.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: PathBuf,
    /// Width in pixels (default 1200).
    #[arg(long)]
    pub width: Option<u32>,
    /// Height in pixels (default: from the content).
    #[arg(long)]
    pub height: Option<u32>,
    /// Memory axis units: gib (2^30, default) or gb (10^9).
    #[arg(long, value_enum, default_value = "gib")]
    pub units: UnitsArg,
}

#[derive(Args, Debug)]
pub struct BreakdownArgs {
    /// Models: presets, `.toml` model files or `.json` Hugging Face configs (none: the model flags).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    #[command(flatten)]
    pub flags: ScenarioFlags,
    #[command(flatten)]
    pub rows: RowArgs,
    #[command(flatten)]
    pub out: ChartOutput,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The model: a preset, `.toml` model file or `.json` Hugging Face config (none: the model flags).
    #[arg(value_name = "MODEL")]
    pub model_name: Option<String>,
    #[command(flatten)]
    pub flags: ScenarioFlags,
    /// Settings for every point, KEY=VALUE (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The x axis: a setting key, usually batch or seq.
    #[arg(long, default_value = "batch")]
    pub over: String,
    /// x values (default: batch 1–64, seq 256 up to the model's positions or 32768, doubling).
    #[arg(long, value_delimiter = ',')]
    pub values: Vec<String>,
    /// One line per value of this setting, KEY or KEY=V1,V2 (default: recompute for training,
    /// attention for inference); `none` for a single line.
    #[arg(long)]
    pub series: Option<String>,
    #[command(flatten)]
    pub out: ChartOutput,
}

#[derive(Args, Debug)]
pub struct MaxBatchArgs {
    /// Models (one bar each per GPU): presets, `.toml` or `.json` files (none: the model flags).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    #[command(flatten)]
    pub flags: ScenarioFlags,
    #[command(flatten)]
    pub rows: RowArgs,
    /// Largest micro-batch searched.
    #[arg(long, default_value = "65536")]
    pub limit: u64,
    #[command(flatten)]
    pub out: ChartOutput,
}

#[derive(Args, Debug)]
pub struct PlansChartArgs {
    /// The model: a preset, `.toml` model file or `.json` Hugging Face config (none: the model flags).
    #[arg(value_name = "MODEL")]
    pub model_name: Option<String>,
    #[command(flatten)]
    pub flags: SearchFlags,
    #[command(flatten)]
    pub out: ChartOutput,
}

#[derive(Args, Debug)]
pub struct BenchChartArgs {
    /// Files written by `memplan bench ... -o FILE` or `memplan validate --format json`.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub out: ChartOutput,
}

/// A scenario's flags without its `gpu` setting, which charts take as capacity lines.
fn split_gpus(flags: &ScenarioFlags) -> Result<(crate::scenario::Scenario, Vec<GpuSpec>)> {
    let mut base = flags.scenario()?;
    let names = base.gpu.take().map(|n| n.0).unwrap_or_default();
    Ok((base, crate::api::gpus_from(&names)?))
}

pub fn run(args: &ChartArgs, out: &mut dyn Write) -> Result<i32> {
    // The output's format, folder and size are checked before any work is done.
    let o = match &args.kind {
        ChartKind::Breakdown(a) => &a.out,
        ChartKind::Sweep(a) => &a.out,
        ChartKind::MaxBatch(a) => &a.out,
        ChartKind::Plans(a) => &a.out,
        ChartKind::Bench(a) => &a.out,
    };
    crate::report::chart::ImageFormat::from_path(&o.output)?;
    crate::fsio::check_output(&o.output)?;
    check_size(o)?;
    let (chart, o) = match &args.kind {
        ChartKind::Breakdown(a) => {
            let (base, gpus) = split_gpus(&a.flags)?;
            let rows = expand(&base, &a.rows.set, &a.models, &a.rows.vary, &a.rows.variant)?;
            let evals = crate::api::evaluate_rows(&rows, &[])?;
            (build_breakdown(&evals, &gpus, a.out.units.into()), &a.out)
        }
        ChartKind::Sweep(a) => {
            let (mut base, gpus) = split_gpus(&a.flags)?;
            if let Some(m) = &a.model_name {
                base.set_model(m)?;
            }
            for s in &a.set {
                Setting::parse("--set", s)?.apply(&mut base)?;
            }
            let spec = SweepSpec::new(&base, &a.over, &a.values, a.series.as_deref())?;
            (build_sweep(&base, &spec, &gpus, a.out.units.into())?, &a.out)
        }
        ChartKind::MaxBatch(a) => {
            let (base, gpus) = split_gpus(&a.flags)?;
            let rows = expand(&base, &a.rows.set, &a.models, &a.rows.vary, &a.rows.variant)?;
            let evals = crate::api::evaluate_rows(&rows, &[])?;
            let gpus = if gpus.is_empty() { GpuSpec::all()? } else { gpus };
            let max = crate::scenario::settings::bounds::BATCH;
            if a.limit == 0 || a.limit > max {
                return Err(Error::invalid(
                    "--limit",
                    a.limit,
                    format!("a micro-batch from 1 to {}", crate::scenario::value::bound_text(max)),
                ));
            }
            (build_max_batch(&evals, &gpus, a.limit), &a.out)
        }
        ChartKind::Plans(a) => {
            let mut base = a.flags.scenario()?;
            if let Some(m) = &a.model_name {
                base.set_model(m)?;
            }
            if base.top.is_none() {
                base.top = Some(30);
            }
            let planned = crate::api::plan(&base)?;
            (build_plans(&planned, a.out.units.into()), &a.out)
        }
        ChartKind::Bench(a) => (crate::bench::chart::build_bench(&a.files)?, &a.out),
    };
    let chart = sized(chart, o);
    crate::render::chart::write(&chart, &o.output)?;
    write_out(out, &format!("wrote {}\n", o.output.display()))?;
    Ok(0)
}

/// Chart sizes memplan draws (pixels): a PNG of 8000 × 8000 is 192 MB of pixels.
const WIDTHS: std::ops::RangeInclusive<u32> = 400..=8000;
const HEIGHTS: std::ops::RangeInclusive<u32> = 300..=8000;

/// `--width` and `--height` within what is drawn, else an error naming the value.
fn check_size(o: &ChartOutput) -> Result<()> {
    for (flag, v, range) in [("--width", o.width, WIDTHS), ("--height", o.height, HEIGHTS)] {
        if let Some(v) = v.filter(|v| !range.contains(v)) {
            return Err(Error::invalid(flag, v, format!("{} to {} pixels", range.start(), range.end())));
        }
    }
    Ok(())
}

fn sized(mut chart: Chart, o: &ChartOutput) -> Chart {
    if let Some(w) = o.width {
        chart.width = w;
    }
    if let Some(h) = o.height {
        chart.height = h;
    }
    chart
}
