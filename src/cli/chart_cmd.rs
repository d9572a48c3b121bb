//! `memplan chart breakdown|sweep|max-batch|plans|bench -o FILE.svg|FILE.png`: the data of each
//! chart is computed here from the library (estimates, the planner, bench files); drawing is
//! `crate::report::chart`. The `build_*` functions are shared with `memplan report`.

use super::args::{ModelArgs, PlanArgs, SetupArgs, UnitsArg};
use super::compare_cmd::{RowArgs, SETTINGS_HELP};
use super::estimate::write_out;
use super::scenario::{evaluate_all, expand, gpus_from, Evaluated, ScenarioArgs, Setting};
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::plan::search::{search, SearchResult};
use crate::report::chart::{self, Bars, Body, Chart, Lines, Marker, Point, RefLine, Scatter, Series};
use crate::units::{format_count, ByteUnits};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct ChartArgs {
    #[command(subcommand)]
    pub kind: ChartKind,
}

#[derive(Subcommand, Debug)]
pub enum ChartKind {
    /// Stacked bars of what is alive at the peak, per model or variant, with GPU capacity lines.
    #[command(after_long_help = SETTINGS_HELP)]
    Breakdown(Box<BreakdownArgs>),
    /// Per-GPU memory against the micro-batch or sequence length, one line per recompute policy
    /// (or attention kernel, ...), marking where each GPU runs out.
    #[command(after_long_help = SETTINGS_HELP)]
    Sweep(Box<SweepArgs>),
    /// The largest micro-batch that fits on each GPU preset.
    #[command(name = "max-batch", after_long_help = SETTINGS_HELP)]
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

#[derive(Args, Debug, Clone)]
pub struct ScenarioFlags {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
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
    /// GPU capacity lines (repeat or separate with commas). Default: the presets around the
    /// tallest bar.
    #[arg(long, value_name = "GPU", value_delimiter = ',')]
    pub gpu: Vec<String>,
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
    /// GPU capacity lines (repeat or separate with commas). Default: up to three presets across
    /// the range of the lines.
    #[arg(long, value_name = "GPU", value_delimiter = ',')]
    pub gpu: Vec<String>,
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
    /// GPU presets (repeat or separate with commas). Default: every preset.
    #[arg(long, value_name = "GPU", value_delimiter = ',')]
    pub gpu: Vec<String>,
    /// Largest micro-batch searched.
    #[arg(long, default_value = "65536")]
    pub limit: u64,
    #[command(flatten)]
    pub out: ChartOutput,
}

/// The planner's flags, as `memplan plan` takes them.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// The cluster: `<count>x<gpu preset>`, e.g. `64xh100-sxm`.
    #[arg(long, value_name = "NxGPU")]
    pub gpus: String,
    #[arg(long, default_value = "8")]
    pub gpus_per_node: u64,
    /// Global batch: sequences (`1536`) or tokens (`4Mtok`). Default: about 1M tokens.
    #[arg(long)]
    pub global_batch: Option<String>,
    /// Memory kept free on every GPU beyond the CUDA context and fragmentation margin.
    #[arg(long, default_value = "0")]
    pub headroom: String,
    /// Matmul efficiency (fraction of the dense peak). Default: the GPU preset's.
    #[arg(long)]
    pub efficiency: Option<f64>,
    /// Fraction of data-parallel communication hidden behind compute.
    #[arg(long, default_value = "0.5")]
    pub overlap: f64,
    /// Also consider offloading optimizer states to host memory.
    #[arg(long)]
    pub allow_offload: bool,
    #[arg(long)]
    pub max_tp: Option<u64>,
    #[arg(long)]
    pub max_pp: Option<u64>,
    /// How many plans to show.
    #[arg(long, default_value = "30")]
    pub top: usize,
}

#[derive(Args, Debug)]
pub struct PlansChartArgs {
    /// The model: a preset, `.toml` model file or `.json` Hugging Face config (none: the model flags).
    #[arg(value_name = "MODEL")]
    pub model_name: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
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

pub fn run(args: &ChartArgs, out: &mut dyn Write) -> Result<i32> {
    // The output's format, folder and size are checked before any work is done.
    let o = match &args.kind {
        ChartKind::Breakdown(a) => &a.out,
        ChartKind::Sweep(a) => &a.out,
        ChartKind::MaxBatch(a) => &a.out,
        ChartKind::Plans(a) => &a.out,
        ChartKind::Bench(a) => &a.out,
    };
    chart::ImageFormat::from_path(&o.output)?;
    crate::fsio::check_output(&o.output)?;
    check_size(o)?;
    let (chart, o) = match &args.kind {
        ChartKind::Breakdown(a) => {
            let base = ScenarioArgs::new(&a.flags.model, &a.flags.setup, &a.flags.plan);
            let scenarios = expand(&base, &a.rows.set, &a.models, &a.rows.vary, &a.rows.variant)?;
            let evals = evaluate_all(&scenarios, &[])?;
            (build_breakdown(&evals, &gpus_from(&a.gpu)?, a.out.units.into()), &a.out)
        }
        ChartKind::Sweep(a) => {
            let mut base = ScenarioArgs::new(&a.flags.model, &a.flags.setup, &a.flags.plan);
            if let Some(m) = &a.model_name {
                base.set_model(m);
            }
            for s in &a.set {
                base.apply(&Setting::parse("--set", s)?, None)?;
            }
            let spec = SweepSpec::new(&base, &a.over, &a.values, a.series.as_deref())?;
            (build_sweep(&base, &spec, &gpus_from(&a.gpu)?, a.out.units.into())?, &a.out)
        }
        ChartKind::MaxBatch(a) => {
            let base = ScenarioArgs::new(&a.flags.model, &a.flags.setup, &a.flags.plan);
            let scenarios = expand(&base, &a.rows.set, &a.models, &a.rows.vary, &a.rows.variant)?;
            let evals = evaluate_all(&scenarios, &[])?;
            let gpus = gpus_from(&a.gpu)?;
            let gpus = if gpus.is_empty() { GpuSpec::all()? } else { gpus };
            if a.limit == 0 {
                return Err(Error::invalid("--limit", 0, "a positive micro-batch"));
            }
            (build_max_batch(&evals, &gpus, a.limit), &a.out)
        }
        ChartKind::Plans(a) => {
            let mut base = ScenarioArgs::probe();
            base.model = a.model.clone();
            base.setup = a.setup.clone();
            if let Some(m) = &a.model_name {
                base.set_model(m);
            }
            let planned = plan_cluster(&base, &a.cluster)?;
            (build_plans(&planned, a.out.units.into()), &a.out)
        }
        ChartKind::Bench(a) => (build_bench(&a.files)?, &a.out),
    };
    let chart = sized(chart, o);
    chart::write(&chart, &o.output)?;
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

fn unit_title(u: ByteUnits) -> &'static str {
    match u {
        ByteUnits::Gib => "GiB = 2^30 bytes",
        ByteUnits::Gb => "GB = 10^9 bytes",
    }
}

/// The setup of a scenario as (key, words) parts, for subtitles.
pub fn setup_parts(ev: &Evaluated) -> Vec<(&'static str, String)> {
    let s = &ev.setup;
    let lower = |x: String| x.to_lowercase();
    let mut parts = vec![("phase", if s.training() { "train".to_string() } else { "inference".to_string() })];
    parts.push(("precision", s.precision.name().to_string()));
    if s.training() {
        parts.push(("optimizer", s.optimizer.name().to_string()));
    }
    parts.push(("batch", format!("micro-batch {}", s.micro_batch)));
    parts.push(("seq", format!("seq {}", s.seq)));
    if s.training() {
        parts.push(("recompute", format!("recompute {}", lower(format!("{:?}", s.recompute)))));
    }
    parts.push(("attention", format!("{} attention", lower(format!("{:?}", s.attention)))));
    parts.push(("plan", if ev.plan.is_single() { "one GPU".to_string() } else { ev.plan.describe() }));
    parts
}

/// The setup of one scenario in one line.
pub fn describe_setup(ev: &Evaluated) -> String {
    setup_parts(ev).into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(" · ")
}

/// What every scenario shares, leaving out `skip` keys, then what differs between them.
pub fn describe_common<'a>(evals: impl IntoIterator<Item = &'a Evaluated>, skip: &[&str]) -> String {
    let all: Vec<Vec<(&'static str, String)>> = evals.into_iter().map(setup_parts).collect();
    let Some(first) = all.first() else { return String::new() };
    let mut same = Vec::new();
    let mut differs = Vec::new();
    for (key, text) in first {
        if skip.contains(key) {
            continue;
        }
        if all.iter().all(|p| p.iter().any(|(k, t)| k == key && t == text)) {
            same.push(text.clone());
        } else {
            differs.push(*key);
        }
    }
    let mut s = same.join(" · ");
    if !differs.is_empty() {
        s.push_str(&format!(" · differs by row: {}", differs.join(", ")));
    }
    s
}

/// Presets with distinct memory sizes, smallest first (the first name in name order per size).
fn distinct_sizes() -> Vec<GpuSpec> {
    let mut all = GpuSpec::all().unwrap_or_default();
    all.sort_by(|a, b| a.memory_bytes.cmp(&b.memory_bytes).then(a.name.cmp(&b.name)));
    all.dedup_by_key(|g| g.memory_bytes);
    all
}

/// Default capacity lines: the smallest preset that holds `max`, and up to `below` of the
/// largest presets under it that are above `min`.
pub fn default_gpus(min: u64, max: u64, below: usize) -> Vec<GpuSpec> {
    let sizes = distinct_sizes();
    let mut out: Vec<GpuSpec> =
        sizes.iter().filter(|g| g.memory_bytes < max && g.memory_bytes >= min).rev().take(below).cloned().collect();
    out.reverse();
    if let Some(fit) = sizes.iter().find(|g| g.memory_bytes >= max) {
        out.push(fit.clone());
    }
    out
}

/// One reference line per GPU memory size; GPUs within 1% of each other share a line (e.g.
/// h100-sxm and a100-80gb) so their labels do not overlap.
fn ref_lines(gpus: &[GpuSpec], u: ByteUnits) -> Vec<RefLine> {
    let mut sorted = gpus.to_vec();
    sorted.sort_by(|a, b| a.memory_bytes.cmp(&b.memory_bytes).then(a.name.cmp(&b.name)));
    let mut groups: Vec<Vec<GpuSpec>> = Vec::new();
    for g in sorted {
        match groups.last_mut() {
            Some(last) if (g.memory_bytes as f64) <= last[0].memory_bytes as f64 * 1.01 => last.push(g),
            _ => groups.push(vec![g]),
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let names: Vec<&str> = g.iter().map(|x| x.name.as_str()).collect();
            let (lo, hi) = (g[0].memory_bytes, g[g.len() - 1].memory_bytes);
            let size = if lo == hi { u.format(lo) } else { format!("{}–{}", u.format(lo), u.format(hi)) };
            RefLine { label: format!("{} ({size})", names.join(", ")), value: u.value(lo) }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// breakdown

/// Stacked bars of what is alive at the peak (summing to the live peak), plus the runtime
/// overheads on top (summing to the total), per scenario.
pub fn build_breakdown(evals: &[(String, Evaluated)], gpus: &[GpuSpec], u: ByteUnits) -> Chart {
    type Term = (&'static str, usize, fn(&Evaluated) -> u64);
    let terms: [Term; 8] = [
        ("weights", 4, |e| e.report.peak.alive.weights),
        ("gradients", 1, |e| e.report.peak.alive.gradients),
        ("optimizer states", 2, |e| e.report.peak.alive.optimizer_states),
        ("activations (layers)", 0, |e| e.report.peak.alive.activations),
        ("other activations", 6, |e| e.report.peak.alive.other_activations),
        ("KV cache", 5, |e| e.report.peak.alive.kv_cache),
        ("temporaries", 3, |e| e.report.peak.alive.temporaries),
        ("runtime overheads", 7, |e| e.report.per_gpu.runtime_overhead_bytes),
    ];
    let used: Vec<_> = terms.iter().filter(|(_, _, f)| evals.iter().any(|(_, e)| f(e) > 0)).collect();
    let totals: Vec<u64> = evals.iter().map(|(_, e)| e.report.per_gpu.total_bytes).collect();
    let max = totals.iter().copied().max().unwrap_or(0);
    let gpus = if gpus.is_empty() { default_gpus(max / 2, max, 1) } else { gpus.to_vec() };
    let mut subtitle = vec![describe_common(evals.iter().map(|(_, e)| e), &[])];
    subtitle.push(format!(
        "bars: tensors alive at each step's peak, plus CUDA context, workspace and fragmentation margin = total per GPU ({})",
        unit_title(u)
    ));
    let bars = Bars {
        categories: evals.iter().map(|(n, _)| n.clone()).collect(),
        series: used
            .iter()
            .map(|(name, _, f)| Series {
                name: name.to_string(),
                values: evals.iter().map(|(_, e)| Some(u.value(f(e)))).collect(),
            })
            .collect(),
        colors: used.iter().map(|(_, c, _)| *c).collect(),
        stacked: true,
        value_title: format!("memory per GPU ({})", u.label()),
        refs: ref_lines(&gpus, u),
        labels: vec![totals.iter().map(|t| u.format(*t)).collect()],
    };
    let height = (150 + 56 * evals.len() as u32 + 90).max(420);
    Chart {
        title: "Memory per GPU at the peak of the step".into(),
        subtitle,
        width: 1200,
        height,
        body: Body::Bars(bars),
    }
}

// ---------------------------------------------------------------------------------------------
// sweep

/// The axes of a sweep: x values of one setting, and one line per value of another.
#[derive(Clone, Debug)]
pub struct SweepSpec {
    pub over: String,
    pub values: Vec<String>,
    /// (key, values); `None`: one line.
    pub series: Option<(String, Vec<String>)>,
}

impl SweepSpec {
    pub fn new(base: &ScenarioArgs, over: &str, values: &[String], series: Option<&str>) -> Result<SweepSpec> {
        let over =
            Setting::new(over, "1").map_err(|e| Error::invalid("--over", over, e.hint().unwrap_or_default()))?.key;
        let probe = base.evaluate(&[])?;
        let values: Vec<String> = if !values.is_empty() {
            values.iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
        } else {
            match over.as_str() {
                "batch" => [1, 2, 4, 8, 16, 32, 64].iter().map(|v| v.to_string()).collect(),
                "seq" => {
                    let cap = max_positions(&probe.model.spec).unwrap_or(32768).min(32768);
                    let mut v = Vec::new();
                    let mut s = 256;
                    while s <= cap {
                        v.push(s.to_string());
                        s *= 2;
                    }
                    if v.is_empty() {
                        v.push(cap.to_string());
                    }
                    v
                }
                other => {
                    return Err(Error::invalid(
                        "--values",
                        "(none)",
                        format!(
                            "the values of `{other}` to sweep, e.g. --values 1,2,4 (defaults exist for batch and seq)"
                        ),
                    ))
                }
            }
        };
        if values.len() < 2 {
            return Err(Error::invalid("--values", values.join(","), "at least two values"));
        }
        let series = match series {
            Some("none") => None,
            Some(text) => {
                let (key, vals) = match text.split_once('=') {
                    Some((k, v)) => {
                        (k.to_string(), v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
                    }
                    None => (text.to_string(), Vec::new()),
                };
                let key = Setting::new(&key, "x")
                    .map_err(|e| Error::invalid("--series", text, e.hint().unwrap_or_default()))?
                    .key;
                if key == over {
                    return Err(Error::conflict(
                        format!("--series and --over both vary `{over}`"),
                        "choose another --series, or --series none",
                    ));
                }
                let vals = if vals.is_empty() {
                    default_series_values(&key).ok_or_else(|| {
                        Error::invalid("--series", text, format!("values for `{key}`, e.g. --series {key}=a,b"))
                    })?
                } else {
                    vals
                };
                Some((key, vals))
            }
            None => {
                let key = if probe.setup.training() { "recompute" } else { "attention" };
                (key != over).then(|| (key.to_string(), default_series_values(key).unwrap_or_default()))
            }
        };
        Ok(SweepSpec { over, values, series })
    }
}

fn default_series_values(key: &str) -> Option<Vec<String>> {
    let v: &[&str] = match key {
        "recompute" => &["none", "selective", "full"],
        "attention" => &["eager", "flash"],
        "precision" => &["fp32", "amp-bf16", "mixed-bf16", "megatron-bf16"],
        "optimizer" => &["adamw", "adamw-8bit", "adafactor", "sgd"],
        "phase" => &["train", "inference"],
        "zero" => &["0", "1", "2", "3"],
        _ => return None,
    };
    Some(v.iter().map(|s| s.to_string()).collect())
}

fn max_positions(spec: &crate::model::ModelSpec) -> Option<u64> {
    spec.stacks.iter().find_map(|s| match s.positions {
        crate::model::Positions::Learned { max, .. } => Some(max),
        _ => None,
    })
}

/// Where a line first rises above `cap` between two x positions (linear between the points).
pub fn crossing(values: &[Option<f64>], cap: f64) -> Option<f64> {
    for i in 1..values.len() {
        if let (Some(a), Some(b)) = (values[i - 1], values[i]) {
            if a <= cap && b > cap {
                return Some((i - 1) as f64 + (cap - a) / (b - a));
            }
        }
    }
    None
}

pub fn build_sweep(base: &ScenarioArgs, spec: &SweepSpec, gpus: &[GpuSpec], u: ByteUnits) -> Result<Chart> {
    let lines: Vec<(String, Option<Setting>)> = match &spec.series {
        Some((key, vals)) => {
            vals.iter().map(|v| Ok((format!("{key} {v}"), Some(Setting::new(key, v)?)))).collect::<Result<_>>()?
        }
        None => vec![("per-GPU total".into(), None)],
    };
    let mut series = Vec::new();
    let mut first: Option<Evaluated> = None;
    for (name, setting) in &lines {
        let mut values = Vec::new();
        for x in &spec.values {
            let mut a = base.clone();
            if let Some(s) = setting {
                a.apply(s, None)?;
            }
            a.apply(&Setting::new(&spec.over, x)?, None)?;
            let ev = a.evaluate(&[])?;
            values.push(Some(u.value(ev.report.per_gpu.total_bytes)));
            if first.is_none() {
                first = Some(ev);
            }
        }
        series.push(Series { name: name.clone(), values });
    }
    let all: Vec<f64> = series.iter().flat_map(|s| s.values.iter().flatten().copied()).collect();
    let (lo, hi) = all.iter().fold((f64::MAX, 0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let to_bytes = |v: f64| (v * u.divisor()) as u64;
    let gpus = if gpus.is_empty() { default_gpus(to_bytes(lo), to_bytes(hi), 2) } else { gpus.to_vec() };
    let refs = ref_lines(&gpus, u);
    let mut markers = Vec::new();
    for r in &refs {
        for (k, s) in series.iter().enumerate() {
            if let Some(x) = crossing(&s.values, r.value) {
                markers.push(Marker { x, y: r.value, series: k });
            }
        }
    }
    let first = first.expect("at least one point");
    let x_title = match spec.over.as_str() {
        "batch" => format!("micro-batch per GPU (sequences of {} tokens)", first.setup.seq),
        "seq" => format!("sequence length (tokens), micro-batch {}", first.setup.micro_batch),
        other => other.to_string(),
    };
    // The swept and the per-line settings vary: leave them out of the fixed description.
    let mut skip = vec![spec.over.as_str()];
    if let Some((k, _)) = &spec.series {
        skip.push(k.as_str());
    }
    let setup = describe_common([&first], &skip);
    let chart = Chart {
        title: format!(
            "{}: memory per GPU against {}",
            first.report.model.name,
            match spec.over.as_str() {
                "batch" => "micro-batch",
                "seq" => "sequence length",
                other => other,
            }
        ),
        subtitle: vec![
            format!(
                "{} ({} parameters) · {setup}",
                first.report.model.name,
                format_count(first.report.model.parameters)
            ),
            format!(
                "total per GPU = live peak + runtime overheads ({}); ● where a line crosses a GPU's memory",
                unit_title(u)
            ),
        ],
        width: 1200,
        height: 700,
        body: Body::Lines(Lines {
            x_values: spec.values.clone(),
            x_title,
            y_title: format!("memory per GPU ({})", u.label()),
            series,
            refs,
            markers,
            marker_label: "runs out of memory".into(),
        }),
    };
    Ok(chart)
}

// ---------------------------------------------------------------------------------------------
// max-batch

/// The largest micro-batch per GPU (rows: GPUs by memory; one bar per scenario).
pub fn build_max_batch(evals: &[(String, Evaluated)], gpus: &[GpuSpec], limit: u64) -> Chart {
    let mut gpus = gpus.to_vec();
    gpus.sort_by(|a, b| a.memory_bytes.cmp(&b.memory_bytes).then(a.name.cmp(&b.name)));
    let mut series = Vec::new();
    let mut labels = Vec::new();
    let seqs: Vec<u64> = evals.iter().map(|(_, e)| e.setup.seq).collect();
    let same_seq = seqs.windows(2).all(|w| w[0] == w[1]);
    for (name, ev) in evals {
        let v: Vec<u64> = gpus.iter().map(|g| ev.max_micro_batch(g.memory_bytes, limit)).collect();
        labels.push(
            v.iter()
                .map(|b| match *b {
                    0 => "does not fit".to_string(),
                    b if b >= limit => format!("≥ {b}"),
                    b => b.to_string(),
                })
                .collect(),
        );
        // Rows with different sequence lengths say theirs.
        let name = if same_seq { name.clone() } else { format!("{name} (seq {})", ev.setup.seq) };
        series.push(Series { name, values: v.iter().map(|b| Some(*b as f64)).collect() });
    }
    let value_title = if same_seq && !seqs.is_empty() {
        format!("largest micro-batch that fits (sequences of {} tokens)", seqs[0])
    } else {
        "largest micro-batch that fits (sequences)".to_string()
    };
    let mut subtitle = vec![describe_common(evals.iter().map(|(_, e)| e), &["batch"])];
    subtitle.push(
        "fits: the worst rank's total (live peak + CUDA context + workspace + fragmentation) ≤ the GPU's memory".into(),
    );
    let groups = evals.len().max(1) as u32;
    let height = (150 + gpus.len() as u32 * (22 * groups + 18) + 90).max(420);
    Chart {
        title: "Largest micro-batch per GPU".into(),
        subtitle,
        width: 1200,
        height,
        body: Body::Bars(Bars {
            categories: gpus
                .iter()
                .map(|g| format!("{} ({})", g.name, ByteUnits::Gib.format(g.memory_bytes)))
                .collect(),
            colors: (0..series.len()).map(|i| chart::LINE_ORDER[i % chart::LINE_ORDER.len()]).collect(),
            series,
            stacked: false,
            value_title,
            refs: Vec::new(),
            labels,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// plans

/// A planner run and what the chart and report need from it.
pub struct Planned {
    pub model: String,
    pub parameters: u64,
    pub gpus: u64,
    pub gpu: GpuSpec,
    pub gpus_per_node: u64,
    pub global_batch: u64,
    pub seq: u64,
    pub result: SearchResult,
}

pub fn plan_cluster(base: &ScenarioArgs, c: &ClusterArgs) -> Result<Planned> {
    let model = base.model.resolve()?;
    if !model.spec.modules.is_empty() {
        return Err(Error::conflict(
            format!("model `{}` has convolutional, UNet or LSTM modules", model.spec.name),
            "the planner's step-time model covers transformer stacks; use `memplan estimate` (with --dp/--zero)",
        ));
    }
    let setup = base.setup.resolve(&model.spec)?;
    if !setup.training() {
        return Err(Error::conflict("the planner searches training plans", "drop --phase inference"));
    }
    let cluster = super::plan_cmd::Cluster {
        gpus: &c.gpus,
        gpus_per_node: c.gpus_per_node,
        global_batch: c.global_batch.as_deref(),
        headroom: &c.headroom,
        efficiency: c.efficiency,
        calibration: None,
        overlap: c.overlap,
        allow_offload: c.allow_offload,
        top: c.top,
        max_tp: c.max_tp,
        max_pp: c.max_pp,
        max_cp: None,
    };
    let (cfg, gpu, _) = super::plan_cmd::search_config(&cluster, &model.spec, &setup, base.setup.overheads()?)?;
    let info = if model.derived {
        crate::memory::states::ParamInfo::with_count(&model.spec, model.params)
    } else {
        crate::memory::states::ParamInfo::of(&model.spec)
    };
    let result = search(&model.spec, &info, &setup, &gpu, &cfg);
    Ok(Planned {
        model: model.spec.name.clone(),
        parameters: model.params,
        gpus: cfg.gpus,
        gpu,
        gpus_per_node: cfg.gpus_per_node,
        global_batch: cfg.global_batch,
        seq: setup.seq,
        result,
    })
}

pub fn build_plans(p: &Planned, u: ByteUnits) -> Chart {
    // One series per way of holding model states (the main memory lever), recomputation named
    // when it is on.
    let mut series: Vec<(String, Vec<Point>)> = Vec::new();
    for (i, c) in p.result.plans.iter().enumerate() {
        let pl = &c.plan;
        let mut key = match (pl.fsdp, pl.zero, pl.distributed_optimizer) {
            (Some(f), _, _) => format!("fsdp {}", format!("{f:?}").to_lowercase()),
            (None, 0, true) => "distributed optimizer".into(),
            (None, 0, false) => "no sharding".into(),
            (None, z, _) => format!("zero {z}"),
        };
        if pl.offload != crate::parallel::Offload::None {
            key.push_str(" + offload");
        }
        if c.recompute != crate::memory::Recompute::None {
            key.push_str(&format!(" + {} recompute", format!("{:?}", c.recompute).to_lowercase()));
        }
        let point = Point {
            x: u.value(c.worst_total_bytes),
            y: c.time.total_s,
            label: if i < 5 { format!("#{}", i + 1) } else { String::new() },
        };
        match series.iter_mut().find(|(k, _)| *k == key) {
            Some((_, pts)) => pts.push(point),
            None => series.push((key, vec![point])),
        }
    }
    let notes: Vec<String> = p
        .result
        .plans
        .iter()
        .take(5)
        .enumerate()
        .map(|(i, c)| format!("#{} {}, mb {}, {:.2} s", i + 1, c.plan.describe(), c.micro_batch, c.time.total_s))
        .collect();
    let mut subtitle = vec![format!(
        "{} ({} parameters) on {} × {} · global batch {} × {} tokens · {} plans evaluated, {} fit{}",
        p.model,
        format_count(p.parameters),
        p.gpus,
        p.gpu.name,
        p.global_batch,
        p.seq,
        p.result.evaluated,
        p.result.fitting,
        if p.result.plans.is_empty() { String::new() } else { format!(", best {} shown", p.result.plans.len()) }
    )];
    if p.result.plans.is_empty() {
        subtitle.push("no plan fits: see `memplan plan --explain` for the closest misses".into());
    }
    Chart {
        title: "Planner: step time against memory per GPU".into(),
        subtitle,
        width: 1300,
        height: 720 + 22 * notes.len() as u32,
        body: Body::Scatter(Scatter {
            x_title: format!("memory per GPU, worst rank ({})", u.label()),
            y_title: "step time (s)".into(),
            series,
            refs: vec![RefLine {
                label: format!("usable on {} ({})", p.gpu.name, u.format(p.result.usable_bytes)),
                value: u.value(p.result.usable_bytes),
            }],
            notes,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// bench

/// One compared item: bytes or throughput, estimated and measured.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchItem {
    pub label: String,
    pub bytes: Option<Pair>,
    pub tflops: Option<Pair>,
}

/// Items of a `memplan bench -o` file (kernels: harness-planned vs allocator bytes; preset
/// peak × default efficiency vs measured TFLOP/s) or a `memplan validate --format json` file
/// (analytic estimate vs measured bytes; throughput from the layer's FLOPs over each time).
/// (estimate, measured).
pub type Pair = (Option<f64>, Option<f64>);

pub fn bench_items(path: &Path) -> Result<(String, Vec<BenchItem>)> {
    let (source, items) = read_bench_items(path)?;
    // Bytes and throughput are non-negative and finite; anything else is a damaged file.
    for i in &items {
        for (what, pair) in [("bytes", i.bytes), ("TFLOP/s", i.tflops)] {
            let Some((e, m)) = pair else { continue };
            for (side, v) in [("estimate", e), ("measured", m)] {
                if let Some(v) = v.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(Error::Parse {
                        path: path.to_path_buf(),
                        line: None,
                        field: Some(i.label.clone()),
                        message: format!("{side} {what} {v} is not a non-negative finite number"),
                    });
                }
            }
        }
    }
    Ok((source, items))
}

fn read_bench_items(path: &Path) -> Result<(String, Vec<BenchItem>)> {
    let text = crate::model::presets::read(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    if v.get("results").is_some() && v.get("schema_version").is_some() {
        let file = crate::bench::report::BenchFile::load(path)?;
        let eff = file.gpu_preset.as_deref().and_then(|g| GpuSpec::preset(g).ok()).map(|g| g.default_efficiency);
        let items = file
            .results
            .iter()
            .map(|r| {
                let measured = r
                    .memory
                    .allocator
                    .as_ref()
                    .map(|a| a.allocated_bytes.saturating_sub(a.baseline_allocated_bytes) as f64);
                BenchItem {
                    label: kernel_label(r),
                    bytes: Some((Some(r.memory.harness.total_bytes as f64), measured)),
                    tflops: Some((r.peak.as_ref().zip(eff).map(|(p, e)| p.peak_tflops * e), Some(r.tflops))),
                }
            })
            .collect();
        return Ok((
            format!("{}; timing: {}", file.adapter.name, file.timing.describe().split(" (").next().unwrap_or("")),
            items,
        ));
    }
    if let (Some(rows), Some(bench)) = (v.get("rows").and_then(|r| r.as_array()), v.get("bench")) {
        let model = v.get("model").and_then(|m| m.as_str()).unwrap_or("layer");
        let flops = bench.get("flops").and_then(|f| f.as_f64()).unwrap_or(0.0);
        let num = |r: &serde_json::Value, k: &str| r.get(k).and_then(|x| x.as_f64());
        let mut items = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            // A value that is present must be a number (null: not estimated or not measured).
            for k in ["estimate", "measured"] {
                if let Some(x) = r.get(k).filter(|x| !x.is_null() && !x.is_number()) {
                    return Err(Error::Parse {
                        path: path.to_path_buf(),
                        line: None,
                        field: Some(format!("rows[{i}].{k}")),
                        message: format!("expected a number or null, found {x}"),
                    });
                }
            }
            let q = r.get("quantity").and_then(|q| q.as_str()).unwrap_or("?");
            match r.get("unit").and_then(|u| u.as_str()) {
                Some("bytes") if num(r, "estimate").is_some() || num(r, "measured").is_some() => {
                    items.push(BenchItem {
                        label: format!("{model}: {q}"),
                        bytes: Some((num(r, "estimate"), num(r, "measured"))),
                        tflops: None,
                    })
                }
                Some("seconds") if flops > 0.0 => {
                    let t = |x: Option<f64>| x.filter(|s| *s > 0.0).map(|s| flops / s / 1e12);
                    items.push(BenchItem {
                        label: format!("{model}: layer forward"),
                        bytes: None,
                        tflops: Some((t(num(r, "estimate")), t(num(r, "measured")))),
                    });
                }
                _ => {}
            }
        }
        let adapter = v.get("adapter").and_then(|a| a.as_str()).unwrap_or("unknown adapter");
        return Ok((adapter.to_string(), items));
    }
    Err(Error::Parse {
        path: path.to_path_buf(),
        line: None,
        field: None,
        message: "neither a `memplan bench -o` file (results, schema_version) nor a `memplan validate --format json` result (rows, bench)".into(),
    })
}

/// A short name for a kernel measurement: `matmul fp32 512×512×512`, `attention flash fp16
/// b1 h32/8 s1024 d128 causal`, `layer gpt2 fp32 b1 s128`.
fn kernel_label(r: &crate::bench::report::KernelReport) -> String {
    let get = |k: &str| r.shape.get(k).map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
    let g = |k: &str| get(k).unwrap_or_else(|| "?".into());
    match r.kernel.as_str() {
        "matmul" => {
            let batch = get("batch").filter(|b| b != "1").map(|b| format!(" ×{b}")).unwrap_or_default();
            format!("matmul {} {}×{}×{}{batch}", r.dtype, g("m"), g("n"), g("k"))
        }
        "attention" => {
            let kind = r.variant.split(['-', '_']).next().unwrap_or(&r.variant);
            let causal = if get("causal").as_deref() == Some("true") { " causal" } else { "" };
            format!(
                "attention {kind} {} b{} h{}/{} s{} d{}{causal}",
                r.dtype,
                g("batch"),
                g("heads"),
                g("kv_heads"),
                g("seq"),
                g("head_dim")
            )
        }
        "layer" => format!("layer {} {} b{} s{}", g("model"), r.dtype, g("batch"), g("seq")),
        other => format!("{other} {} {}", r.dtype, r.shape_string()),
    }
}

pub fn build_bench(files: &[PathBuf]) -> Result<Chart> {
    let mut items = Vec::new();
    let mut sources = Vec::new();
    for f in files {
        let (source, mut it) = bench_items(f)?;
        sources.push(source);
        items.append(&mut it);
    }
    let panel = |pick: fn(&BenchItem) -> Option<Pair>, scale: f64, title: &str, fmt: fn(f64) -> String| {
        let rows: Vec<(&BenchItem, Pair)> = items.iter().filter_map(|i| pick(i).map(|p| (i, p))).collect();
        let est: Vec<Option<f64>> = rows.iter().map(|(_, (e, _))| e.map(|x| x / scale)).collect();
        let mea: Vec<Option<f64>> = rows.iter().map(|(_, (_, m))| m.map(|x| x / scale)).collect();
        let label =
            |v: &[Option<f64>], missing: &str| v.iter().map(|x| x.map_or(missing.to_string(), fmt)).collect::<Vec<_>>();
        Bars {
            categories: rows.iter().map(|(i, _)| i.label.clone()).collect(),
            labels: vec![label(&est, "no estimate"), label(&mea, "not measured")],
            series: vec![
                Series { name: "estimate".into(), values: est },
                Series { name: "measured".into(), values: mea },
            ],
            colors: vec![1, 5],
            stacked: false,
            value_title: title.to_string(),
            refs: Vec::new(),
        }
    };
    let max_bytes = items.iter().filter_map(|i| i.bytes).flat_map(|(a, b)| [a, b]).flatten().fold(0.0, f64::max);
    let (scale, unit) =
        if max_bytes >= (1u64 << 30) as f64 { ((1u64 << 30) as f64, "GiB") } else { ((1u64 << 20) as f64, "MiB") };
    let fmt_bytes: fn(f64) -> String = |v| format!("{v:.2}");
    let fmt_tf: fn(f64) -> String = chart::sig3;
    let mut panels = Vec::new();
    let bytes = panel(|i| i.bytes, scale, &format!("bytes ({unit})"), fmt_bytes);
    if !bytes.categories.is_empty() {
        panels.push((format!("memory ({unit})"), bytes));
    }
    let tf = panel(|i| i.tflops, 1.0, "throughput (TFLOP/s)", fmt_tf);
    if !tf.categories.is_empty() {
        panels.push(("throughput (TFLOP/s)".to_string(), tf));
    }
    if panels.is_empty() {
        return Err(Error::invalid(
            "bench files",
            files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "),
            "files with byte or time measurements",
        ));
    }
    let rows = panels.iter().map(|(_, b)| b.categories.len()).sum::<usize>().max(1) as u32;
    sources.sort();
    sources.dedup();
    // An adapter named once with its timing does not need a second mention.
    let with_timing: Vec<String> = sources.iter().filter(|s| s.contains("; timing: ")).cloned().collect();
    sources.retain(|s| s.contains("; timing: ") || !with_timing.iter().any(|t| t.starts_with(&format!("{s};"))));
    Ok(Chart {
        title: "Measured against estimated".into(),
        subtitle: vec![
            format!("measured on {}", sources.join(", ")),
            "kernels: estimate = the harness's planned buffers and the GPU preset's peak × default efficiency; layers: the analytic model".into(),
        ],
        width: 1200,
        height: (170 + rows * 52 + 110 * panels.len() as u32).max(420),
        body: Body::Panels(panels),
    })
}
