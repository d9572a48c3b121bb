//! The data of each chart (breakdown, sweep, max-batch, plans), computed from the library;
//! drawing is `crate::render` (feature `charts`). `memplan chart`, `memplan report` and the web
//! page call these.

use super::{evaluate, Evaluated, Planned};
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::report::chart::{Bars, Body, Chart, Lines, Marker, Point, RefLine, Scatter, Series, LINE_ORDER};
use crate::scenario::rows::Setting;
use crate::scenario::Scenario;
use crate::units::{format_count, ByteUnits};

pub fn unit_title(u: ByteUnits) -> &'static str {
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
    pub fn new(base: &Scenario, over: &str, values: &[String], series: Option<&str>) -> Result<SweepSpec> {
        let over = crate::scenario::setting(over)
            .map_err(|e| Error::invalid("--over", over, e.hint().unwrap_or_default()))?
            .key
            .to_string();
        let probe = evaluate(base, &[])?;
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
                let key = crate::scenario::setting(&key)
                    .map_err(|e| Error::invalid("--series", text, e.hint().unwrap_or_default()))?
                    .key
                    .to_string();
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

pub fn build_sweep(base: &Scenario, spec: &SweepSpec, gpus: &[GpuSpec], u: ByteUnits) -> Result<Chart> {
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
                s.apply(&mut a)?;
            }
            Setting::new(&spec.over, x)?.apply(&mut a)?;
            let ev = evaluate(&a, &[])?;
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
            colors: (0..series.len()).map(|i| LINE_ORDER[i % LINE_ORDER.len()]).collect(),
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

pub fn build_plans(planned: &Planned, u: ByteUnits) -> Chart {
    let p = PlansView::of(planned);
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

/// What the plans chart shows of a planner run.
struct PlansView<'a> {
    model: &'a str,
    parameters: u64,
    gpus: u64,
    gpu: &'a GpuSpec,
    global_batch: u64,
    seq: u64,
    result: &'a crate::plan::search::SearchResult,
}

impl<'a> PlansView<'a> {
    fn of(p: &'a Planned) -> Self {
        let base = &p.resolved.base;
        PlansView {
            model: &base.model().spec.name,
            parameters: base.model().params,
            gpus: p.resolved.config.gpus,
            gpu: &p.resolved.gpu,
            global_batch: p.resolved.config.global_batch,
            seq: base.setup().seq,
            result: &p.result,
        }
    }
}
