//! The capacity report's data: the estimate, the planner on each cluster, the charts and the
//! document (sections, tables, chart references). `memplan report` renders and writes it.

use super::charts::{self, default_gpus, describe_setup, SweepSpec};
use super::{evaluate, Evaluated, Planned};
use crate::error::Result;
use crate::hw::GpuSpec;
use crate::report::capacity::{CapacityReport, Section, TextTable};
use crate::report::chart::Chart;
use crate::scenario::rows::Setting;
use crate::scenario::Scenario;
use crate::units::{format_count, ByteUnits};

/// What a capacity report covers.
#[derive(Clone, Debug)]
pub struct ReportRequest {
    /// The model and step.
    pub base: Scenario,
    /// GPUs to check: presets, and `NxGPU` entries (e.g. 64xh100-sxm) also planned as clusters.
    /// Empty: every preset, and plans on 8 × h100-sxm.
    pub gpus: Vec<String>,
    pub gpus_per_node: u64,
    /// Global batch for the plans (sequences or tokens); `None`: about 1M tokens.
    pub global_batch: Option<String>,
    /// Matmul efficiency for the plans (default: the GPU preset's).
    pub efficiency: Option<f64>,
    /// Plans listed per cluster.
    pub top: u64,
    pub units: ByteUnits,
}

/// The report: its document and its charts (`id`, caption, chart).
#[derive(Clone, Debug)]
pub struct Capacity {
    pub document: CapacityReport,
    pub charts: Vec<(String, String, Chart)>,
}

/// `h100-sxm` → (None, preset); `64xh100-sxm` → (Some(64), preset).
fn parse_gpu_entry(text: &str) -> Result<(Option<u64>, GpuSpec)> {
    let t = text.trim();
    let mut s = Scenario::default();
    s.set("gpus", t).ok();
    if let Some(g) = s.gpus.filter(|g| g.gpu.is_some()) {
        return Ok((Some(g.count), GpuSpec::preset(g.gpu.as_deref().unwrap_or_default())?));
    }
    Ok((None, GpuSpec::preset(t)?))
}

/// The base scenario planned on `count` × `gpu` with the report's planner settings.
fn cluster_scenario(args: &ReportRequest, base: &Scenario, count: u64, gpu: &GpuSpec) -> Result<Scenario> {
    let mut s = base.clone();
    s.set("gpus", &format!("{count}x{}", gpu.name))?;
    s.set("gpus-per-node", &args.gpus_per_node.to_string())?;
    if let Some(gb) = &args.global_batch {
        s.set("global-batch", gb)?;
    }
    if let Some(e) = args.efficiency {
        s.set("efficiency", &e.to_string())?;
    }
    s.set("top", &args.top.max(1).to_string())?;
    Ok(s)
}

/// Build the capacity report.
pub fn capacity(args: &ReportRequest) -> Result<Capacity> {
    let u = args.units;
    let base = args.base.clone();
    // GPUs and clusters.
    let mut gpus: Vec<GpuSpec> = Vec::new();
    let mut clusters: Vec<(u64, GpuSpec)> = Vec::new();
    for entry in args.gpus.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
        let (count, gpu) = parse_gpu_entry(entry)?;
        if let Some(c) = count {
            clusters.push((c, gpu.clone()));
        }
        if !gpus.iter().any(|g| g.name == gpu.name) {
            gpus.push(gpu);
        }
    }
    let listed = !gpus.is_empty();
    if !listed {
        gpus = GpuSpec::all()?;
    }
    gpus.sort_by(|a, b| a.memory_bytes.cmp(&b.memory_bytes).then(a.name.cmp(&b.name)));
    let ev = evaluate(&base, &gpus)?;
    if clusters.is_empty() && ev.setup.training() {
        let first = if listed {
            parse_gpu_entry(args.gpus.iter().find(|g| !g.trim().is_empty()).map(String::as_str).unwrap_or("h100-sxm"))?
                .1
        } else {
            GpuSpec::preset("h100-sxm")?
        };
        clusters.push((8, first));
    }
    let total = ev.report.per_gpu.total_bytes;
    let plans: Vec<Planned> = if ev.setup.training() {
        clusters.iter().map(|(n, g)| super::plan(&cluster_scenario(args, &base, *n, g)?)).collect::<Result<_>>()?
    } else {
        Vec::new()
    };

    // Charts.
    let lines = if listed && gpus.len() <= 4 { gpus.clone() } else { default_gpus(total / 3, total, 2) };
    let mut charts: Vec<(String, String, Chart)> = Vec::new();
    let name = ev.report.model.name.clone();
    // Breakdown: the setup as given, and (training) each recomputation policy.
    let mut variants: Vec<(String, Evaluated)> = vec![(format!("{name} (as given)"), ev.clone())];
    if ev.setup.training() {
        for r in ["none", "selective", "full"] {
            if format!("{:?}", ev.setup.recompute).to_lowercase() == r {
                continue;
            }
            let mut a = base.clone();
            Setting::new("recompute", r)?.apply(&mut a)?;
            let v = evaluate(&a, &gpus)?;
            // Only policies that change the peak are worth a bar.
            if v.report.per_gpu.total_bytes != total
                && !variants.iter().any(|(_, o)| o.report.per_gpu.total_bytes == v.report.per_gpu.total_bytes)
            {
                variants.push((format!("{name} recompute {r}"), v));
            }
        }
    }
    charts.push((
        "breakdown".into(),
        format!("memory per GPU at the peak of the step, {name}"),
        charts::build_breakdown(&variants, &lines, u),
    ));
    let spec = SweepSpec::new(&base, "batch", &[], None)?;
    charts.push((
        "sweep".into(),
        format!("memory per GPU against the micro-batch, {name}"),
        charts::build_sweep(&base, &spec, &lines, u)?,
    ));
    charts.push((
        "max-batch".into(),
        format!("largest micro-batch per GPU, {name}"),
        charts::build_max_batch(&[(name.clone(), ev.clone())], &gpus, 65536),
    ));
    for (i, p) in plans.iter().enumerate() {
        let id = if i == 0 { "plans".to_string() } else { format!("plans-{}", i + 1) };
        charts.push((
            id,
            format!("planner: step time against memory, {} × {}", p.resolved.config.gpus, p.resolved.gpu.name),
            charts::build_plans(p, u),
        ));
    }

    let document = document(&ev, &gpus, &plans, &charts, u);
    Ok(Capacity { document, charts })
}

fn signed(u: ByteUnits, v: i128) -> String {
    if v >= 0 {
        u.format(v as u64)
    } else {
        format!("-{}", u.format((-v) as u64))
    }
}

fn document(
    ev: &Evaluated,
    gpus: &[GpuSpec],
    plans: &[Planned],
    charts: &[(String, String, Chart)],
    u: ByteUnits,
) -> CapacityReport {
    let r = &ev.report;
    let p = &r.per_gpu;
    let training = ev.setup.training();
    let mut sections = Vec::new();

    sections.push(Section {
        heading: "Assumptions".into(),
        paragraphs: vec![format!("Setup: {}.", describe_setup(ev))],
        bullets: r.assumptions.clone(),
        ..Section::default()
    });

    let mut rows: Vec<Vec<String>> = vec![vec![
        "weights".into(),
        u.format(p.weights_bytes),
        format!("{} parameters on this GPU", format_count(p.rank_parameters)),
    ]];
    if training {
        rows.push(vec!["gradients".into(), u.format(p.gradients_bytes), String::new()]);
        rows.push(vec![
            "optimizer states".into(),
            u.format(p.optimizer_states_bytes),
            ev.setup.optimizer.name().into(),
        ]);
        rows.push(vec![
            "activations (layer stacks)".into(),
            u.format(p.activations_bytes),
            "saved for backward".into(),
        ]);
    } else {
        rows.push(vec!["activations (largest layer)".into(), u.format(p.activations_bytes), "working set".into()]);
        rows.push(vec!["KV cache".into(), u.format(p.kv_cache_bytes), String::new()]);
    }
    rows.push(vec![
        "other activations".into(),
        u.format(p.other_activations_bytes),
        "embeddings, logits, loss, inputs".into(),
    ]);
    rows.push(vec![
        "peak allocated (live tensors)".into(),
        u.format(p.peak_allocated_bytes),
        format!("at the {}", r.peak.description),
    ]);
    rows.push(vec![
        "runtime overheads".into(),
        u.format(p.runtime_overhead_bytes),
        format!(
            "CUDA context {}, cuBLAS workspace {}, fragmentation margin {}",
            u.format(r.overheads.cuda_context_bytes),
            u.format(r.overheads.workspace_bytes),
            u.format(r.overheads.fragmentation_bytes)
        ),
    ]);
    rows.push(vec!["total (reserved)".into(), u.format(p.total_bytes), "peak allocated + runtime overheads".into()]);
    let a = &r.peak.alive;
    sections.push(Section {
        heading: "Memory per GPU".into(),
        paragraphs: vec![format!(
            "Alive at the peak ({}): weights {}, gradients {}, optimizer states {}, activations {}, other activations {}, KV cache {}, temporaries {}. The terms above are full sizes; not all of them are alive at once.",
            r.peak.description,
            u.format(a.weights),
            u.format(a.gradients),
            u.format(a.optimizer_states),
            u.format(a.activations),
            u.format(a.other_activations),
            u.format(a.kv_cache),
            u.format(a.temporaries)
        )],
        table: Some(TextTable {
            header: vec!["term".into(), format!("per GPU ({})", u.label()), "note".into()],
            rows,
            numeric: vec![1],
        }),
        charts: vec!["breakdown".into(), "sweep".into()],
        ..Section::default()
    });

    let max_batches: Vec<u64> = gpus.iter().map(|g| ev.max_micro_batch(g.memory_bytes, 65536)).collect();
    let fitting: Vec<&str> = r.fits.iter().filter(|f| f.fits).map(|f| f.gpu.as_str()).collect();
    let fits_rows = gpus
        .iter()
        .zip(&max_batches)
        .map(|(g, mb)| {
            let f = r.fits.iter().find(|f| f.gpu == g.name);
            vec![
                g.name.clone(),
                u.format(g.memory_bytes),
                if f.is_some_and(|f| f.fits) { "yes".into() } else { "no".into() },
                f.map_or("-".into(), |f| signed(u, f.headroom_bytes)),
                if *mb == 0 { "-".into() } else { mb.to_string() },
            ]
        })
        .collect();
    sections.push(Section {
        heading: "GPUs that fit".into(),
        paragraphs: vec![if fitting.is_empty() {
            "No GPU holds this setup on its own: see the plans below, or shard, recompute or offload.".into()
        } else {
            format!("Fits on one GPU: {}.", fitting.join(", "))
        }],
        table: Some(TextTable {
            header: vec![
                "GPU".into(),
                format!("memory ({})", u.label()),
                "fits".into(),
                format!("headroom ({})", u.label()),
                format!("largest micro-batch (seq {})", ev.setup.seq),
            ],
            rows: fits_rows,
            numeric: vec![1, 3, 4],
        }),
        charts: vec!["max-batch".into()],
        ..Section::default()
    });

    for (i, pl) in plans.iter().enumerate() {
        let id = if i == 0 { "plans".to_string() } else { format!("plans-{}", i + 1) };
        let rows: Vec<Vec<String>> = pl
            .result
            .plans
            .iter()
            .enumerate()
            .map(|(k, c)| {
                vec![
                    (k + 1).to_string(),
                    c.plan.describe(),
                    c.micro_batch.to_string(),
                    format!("{:?}", c.recompute).to_lowercase(),
                    u.format(c.worst_total_bytes),
                    format!("{:.3}", c.time.total_s),
                    format_count(c.time.tokens_per_s.round() as u64),
                    format!("{:.1}%", c.time.mfu * 100.0),
                ]
            })
            .collect();
        let summary = format!(
            "{} × {} ({} per node), global batch {} sequences × {} tokens: {} plans evaluated, {} fit within {} per GPU.",
            pl.resolved.config.gpus,
            pl.resolved.gpu.name,
            pl.resolved.config.gpus_per_node,
            pl.resolved.config.global_batch,
            pl.resolved.base.setup().seq,
            pl.result.evaluated,
            pl.result.fitting,
            u.format(pl.result.usable_bytes)
        );
        let mut paragraphs = vec![summary];
        if pl.result.plans.is_empty() {
            paragraphs.push(
                "No plan fits. `memplan plan --explain` lists the closest misses and the smallest change that would fit."
                    .into(),
            );
        }
        sections.push(Section {
            heading: format!("Best plans on {} × {}", pl.resolved.config.gpus, pl.resolved.gpu.name),
            paragraphs,
            table: (!rows.is_empty()).then(|| TextTable {
                header: vec![
                    "#".into(),
                    "plan".into(),
                    "micro-batch".into(),
                    "recompute".into(),
                    format!("memory ({}, worst rank)", u.label()),
                    "step (s)".into(),
                    "tokens/s".into(),
                    "MFU".into(),
                ],
                rows,
                numeric: vec![0, 2, 4, 5, 6, 7],
            }),
            charts: vec![id],
            ..Section::default()
        });
    }

    sections.push(Section {
        heading: "How the numbers are made".into(),
        bullets: vec![
            "Model states from the precision recipe (e.g. mixed precision Adam: 2 + 2 + 12 bytes per parameter), sharded as the plan says.".into(),
            "Activations from a per-tensor ledger of what autograd keeps for backward (Korthikanti et al. 2022 for the GPT closed form), the peak followed through forward, the loss, backward and the optimizer step.".into(),
            "Runtime overheads are separate: CUDA context, cuBLAS workspace and a fragmentation margin of the live peak. A GPU fits when the total is at most its memory.".into(),
            "Step times: the step's FLOPs at a stated efficiency of the GPU's dense peak, plus the pipeline bubble and exposed communication.".into(),
        ],
        ..Section::default()
    });

    CapacityReport {
        title: format!("Capacity report: {}", r.model.name),
        summary: format!(
            "{} ({}, {} parameters) · {} · per GPU, bytes shown in {}",
            r.model.name,
            r.model.architecture,
            format_count(r.model.parameters),
            describe_setup(ev),
            match u {
                ByteUnits::Gib => "GiB = 2^30",
                ByteUnits::Gb => "GB = 10^9",
            }
        ),
        sections,
        charts: charts.iter().map(|(id, alt, _)| (id.clone(), alt.clone())).collect(),
        footer: format!(
            "memplan {} — estimates, not measurements; see the README's accuracy table.",
            env!("CARGO_PKG_VERSION")
        ),
    }
}
