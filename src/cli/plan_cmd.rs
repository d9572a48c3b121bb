//! `memplan plan`: search the plans that fit a cluster and rank them by predicted step time.

use super::args::{parse_bytes, ModelArgs, SetupArgs};
use super::estimate::write_out;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::hw::GpuSpec;
use crate::memory::states::ParamInfo;
use crate::plan::search::{search, SearchConfig, SearchResult};
use crate::plan::time::TimeConfig;
use crate::report::plan::PlanReport;
use crate::units::parse_count;
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

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    /// The cluster: `<count>x<gpu preset>`, e.g. `64xh100-sxm`.
    #[arg(long)]
    pub gpus: String,
    #[arg(long, default_value = "8")]
    pub gpus_per_node: u64,
    /// Global batch: sequences (`1536`) or tokens (`4Mtok`, divided by --seq).
    #[arg(long)]
    pub global_batch: String,
    /// Total training tokens, for time and cost to train (e.g. 300b).
    #[arg(long)]
    pub tokens: Option<String>,
    /// Price per GPU-hour in dollars, for the cost to train.
    #[arg(long)]
    pub price: Option<f64>,
    /// Memory kept free on every GPU beyond the CUDA context and fragmentation margin (e.g. 2GiB).
    #[arg(long, default_value = "0")]
    pub headroom: String,
    /// Largest GEMM efficiency (fraction of the dense peak); shapes and waves scale it down.
    /// Default: from --calibration, else the GPU preset's measured `[gemm_efficiency] max`.
    #[arg(long)]
    pub efficiency: Option<f64>,
    /// A `memplan bench` JSON whose measured matmul throughput (by size) replaces the preset's
    /// GEMM efficiency curve.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Fraction of data-parallel communication hidden behind compute. Default: each
    /// framework's own mechanism (DDP buckets, ZeRO/FSDP prefetch, Megatron after the flush).
    #[arg(long)]
    pub overlap: Option<f64>,
    /// Search only plans these frameworks run (comma-separated: megatron, deepspeed, torchtitan,
    /// accelerate-fsdp, hf-trainer, pytorch). Default: all of them, each plan labelled.
    #[arg(long, value_name = "NAME[,NAME]")]
    pub framework: Option<String>,
    /// Inter-node bandwidth per GPU (its NIC share), e.g. `25GB` for 200 Gb/s HDR per GPU,
    /// `6.25GB` for 4 × 100 Gb/s per 8-GPU node. Default: the GPU preset's.
    #[arg(long, value_name = "BYTES_PER_S")]
    pub inter_node_bandwidth: Option<String>,
    /// Also consider offloading optimizer states to host memory.
    #[arg(long)]
    pub allow_offload: bool,
    /// Largest tensor-parallel degree to consider (default: GPUs per node).
    #[arg(long)]
    pub max_tp: Option<u64>,
    /// Largest pipeline-parallel degree to consider.
    #[arg(long)]
    pub max_pp: Option<u64>,
    /// Largest context-parallel degree (default: 1 below 8192 tokens, else 16).
    #[arg(long)]
    pub max_cp: Option<u64>,
    /// How many plans to list.
    #[arg(long, default_value = "10")]
    pub top: usize,
    /// List the main rejected plan families with the reason and margin.
    #[arg(long)]
    pub explain: bool,
    /// Write launch configs for the best plan this target runs (`auto`: the #1 plan's own
    /// framework). Files are written all or none.
    #[arg(long, value_enum)]
    pub emit: Option<Engine>,
    /// Directory for --emit.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
}

/// `64xh100-sxm` → (64, preset).
pub fn parse_cluster(text: &str) -> Result<(u64, GpuSpec)> {
    let expected = "<count>x<gpu preset>, e.g. 64xh100-sxm";
    let (count, name) = text.split_once(['x', 'X']).ok_or_else(|| Error::invalid("--gpus", text, expected))?;
    let count: u64 = count.trim().parse().map_err(|_| Error::invalid("--gpus", text, expected))?;
    if count == 0 {
        return Err(Error::invalid("--gpus", text, "at least 1 GPU"));
    }
    Ok((count, GpuSpec::preset(name.trim())?))
}

pub fn parse_global_batch(text: &str, seq: u64) -> Result<u64> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some(tokens) = lower.strip_suffix("tokens").or_else(|| lower.strip_suffix("tok")) {
        let tokens = parse_count("--global-batch", tokens.trim())?;
        if tokens % seq != 0 {
            return Err(Error::invalid("--global-batch", text, format!("a token count divisible by --seq {seq}")));
        }
        return Ok(tokens / seq);
    }
    parse_count("--global-batch", text)
}

/// The GEMM model a calibration file implies: the measured matmul results of the recipe's
/// dtype (bf16 runs are measured as fp16, WGSL has no bf16), by size, replace the preset's
/// curve; a file with only the summary `calibration.matmul_tflops` sets the ceiling.
/// Also returns a note when the file was measured on another GPU than the one planned for.
fn calibrated_gemm(
    path: &std::path::Path,
    gpu: &GpuSpec,
    setup: &crate::memory::Setup,
    base: crate::plan::gemm::GemmModel,
) -> Result<(crate::plan::gemm::GemmModel, Option<String>)> {
    let text = crate::fsio::read_text(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    let dtype = match setup.precision.activation_dtype().name() {
        "bf16" => "fp16",
        other => other,
    };
    let points: Vec<(f64, f64)> = v
        .pointer("/results")
        .and_then(serde_json::Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter(|r| r["kernel"] == "matmul" && r["dtype"] == dtype)
                .filter_map(|r| Some((r["flops"].as_f64()?, r["tflops"].as_f64()? * 1e12)))
                .collect()
        })
        .unwrap_or_default();
    let shown = path.display().to_string();
    let model = if points.is_empty() {
        let tflops = v
            .pointer(&format!("/calibration/matmul_tflops/{dtype}"))
            .or_else(|| v.pointer("/calibration/matmul_tflops/fp32"))
            .and_then(serde_json::Value::as_f64)
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| Error::Parse {
                path: path.to_path_buf(),
                line: None,
                field: Some(format!("calibration.matmul_tflops.{dtype}")),
                message: "missing: write the file with `memplan bench suite -o FILE`".into(),
            })?;
        crate::plan::gemm::GemmModel {
            max: (tflops * 1e12 / base.peak).clamp(1e-6, 1.0),
            source: format!("measured ceiling from {shown}"),
            ..base
        }
    } else {
        base.with_measurements(&points, &shown)?
    };
    let measured_on = v.pointer("/gpu_preset").and_then(serde_json::Value::as_str);
    let adapter = v.pointer("/adapter/name").and_then(serde_json::Value::as_str).unwrap_or("an unknown adapter");
    let note = match measured_on {
        Some(p) if p == gpu.name => None,
        Some(p) => Some(format!("calibration measured on {p} ({adapter}), applied to {}", gpu.name)),
        None => {
            Some(format!("calibration measured on {adapter}, which matches no GPU preset; applied to {}", gpu.name))
        }
    };
    Ok((model, note))
}

/// The cluster and search flags shared by `plan`, `chart plans` and `report`.
pub struct Cluster<'a> {
    pub gpus: &'a str,
    pub gpus_per_node: u64,
    /// Sequences or tokens; `None`: about 2^20 tokens, at least one sequence per GPU.
    pub global_batch: Option<&'a str>,
    pub headroom: &'a str,
    pub efficiency: Option<f64>,
    pub calibration: Option<&'a std::path::Path>,
    pub overlap: Option<f64>,
    pub allow_offload: bool,
    pub top: usize,
    pub max_tp: Option<u64>,
    pub max_pp: Option<u64>,
    pub max_cp: Option<u64>,
    /// `--framework`: comma-separated names.
    pub frameworks: Option<&'a str>,
    /// `--recompute` given: search only that policy.
    pub recompute: Option<crate::memory::Recompute>,
    pub inter_node_bandwidth: Option<&'a str>,
}

impl<'a> Cluster<'a> {
    /// The cluster flags alone, everything else at its default.
    pub fn basic(gpus: &'a str, gpus_per_node: u64, global_batch: Option<&'a str>, headroom: &'a str) -> Self {
        Cluster {
            gpus,
            gpus_per_node,
            global_batch,
            headroom,
            efficiency: None,
            calibration: None,
            overlap: None,
            allow_offload: false,
            top: 10,
            max_tp: None,
            max_pp: None,
            max_cp: None,
            frameworks: None,
            recompute: None,
            inter_node_bandwidth: None,
        }
    }
}

/// `megatron,deepspeed` → frameworks; every name must be a training framework.
pub fn parse_frameworks(text: &str) -> Result<Vec<Framework>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let f = Framework::parse(part).map_err(|_| {
            let names: Vec<&str> = crate::plan::frameworks::TRAINING.iter().map(|f| f.name()).collect();
            Error::invalid("--framework", part, format!("one of {}", names.join(", ")))
        })?;
        if crate::plan::frameworks::capabilities(f).is_none() {
            let names: Vec<&str> = crate::plan::frameworks::TRAINING.iter().map(|f| f.name()).collect();
            return Err(Error::invalid("--framework", part, format!("a training framework: {}", names.join(", "))));
        }
        if !out.contains(&f) {
            out.push(f);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid("--framework", text, "at least one framework name"));
    }
    Ok(out)
}

/// Validate the cluster flags into a search configuration, the GPU preset, and warnings about
/// settings outside physical sense (a calibration measured on another GPU, an efficiency above
/// the GPU's best measured GEMM, a tensor-parallel limit above the node size).
pub fn search_config(
    c: &Cluster,
    model: &crate::model::ModelSpec,
    base: &crate::memory::Setup,
    overhead: crate::memory::OverheadConfig,
) -> Result<(SearchConfig, GpuSpec, Vec<String>)> {
    let (gpus, gpu) = parse_cluster(c.gpus)?;
    if c.gpus_per_node == 0 || (gpus > c.gpus_per_node && gpus % c.gpus_per_node != 0) {
        return Err(Error::invalid(
            "--gpus-per-node",
            c.gpus_per_node,
            format!("a positive divisor of the {gpus} GPUs"),
        ));
    }
    let mut warnings = Vec::new();
    let node = c.gpus_per_node.min(gpus);
    if let Some(t) = c.max_tp {
        if t == 0 {
            return Err(Error::invalid("--max-tp", t, "a positive degree"));
        }
        if t > node {
            warnings.push(format!(
                "--max-tp {t} is above the {node} GPUs per node: tensor parallelism is searched within a node (tp ≤ {node})"
            ));
        }
    }
    for (flag, v) in [("--max-pp", c.max_pp), ("--max-cp", c.max_cp)] {
        if v == Some(0) {
            return Err(Error::invalid(flag, 0, "a positive degree"));
        }
    }
    let global_batch = match c.global_batch {
        Some(b) => parse_global_batch(b, base.seq)?,
        None => ((1u64 << 20) / base.seq.max(1)).max(gpus).max(1),
    };
    // The smallest data-parallel degree the search can reach: GPUs over the largest tp·pp·cp.
    let max_model_parallel = node
        .min(c.max_tp.unwrap_or(u64::MAX))
        .saturating_mul(model.total_layers().min(c.max_pp.unwrap_or(u64::MAX)))
        .saturating_mul(c.max_cp.unwrap_or(if base.seq >= 8192 { 16 } else { 1 }).min(16));
    let min_dp = gpus.div_ceil(max_model_parallel.max(1)).max(1);
    if global_batch < min_dp {
        return Err(Error::invalid(
            "--global-batch",
            global_batch,
            format!("at least {min_dp} sequences: the global batch is smaller than the smallest data-parallel degree ({min_dp}) × micro-batch 1 on {gpus} GPUs"),
        ));
    }
    let mut time = TimeConfig::for_gpu(&gpu, base, node);
    let preset_max = time.gemm.max;
    match (c.efficiency, c.calibration) {
        (Some(e), _) if !(e > 0.0 && e <= 1.0) => {
            return Err(Error::invalid("--efficiency", e, "a fraction in (0, 1]"))
        }
        (Some(e), _) => {
            if e > preset_max + 1e-9 {
                warnings.push(format!(
                    "--efficiency {e} is above the best GEMM throughput measured on {} ({:.0}% of peak, {}): step times and MFU will be optimistic",
                    gpu.name,
                    preset_max * 100.0,
                    gpu.gemm_efficiency.as_ref().map_or("its preset", |g| g.source.split(';').next().unwrap_or("its preset"))
                ));
            }
            time.gemm.max = e;
            time.gemm.source = format!("--efficiency {e}");
        }
        (None, Some(path)) => {
            let (g, note) = calibrated_gemm(path, &gpu, base, time.gemm.clone())?;
            time.gemm = g;
            warnings.extend(note);
        }
        (None, None) => {}
    }
    if let Some(o) = c.overlap {
        if !(0.0..=1.0).contains(&o) {
            return Err(Error::invalid("--overlap", o, "a fraction in [0, 1]"));
        }
        time.overlap = Some(o);
    }
    if let Some(bw) = c.inter_node_bandwidth {
        let t = bw.trim().trim_end_matches("/s").trim_end_matches("/S");
        let bytes = parse_bytes("--inter-node-bandwidth", t)?;
        if bytes == 0 {
            return Err(Error::invalid(
                "--inter-node-bandwidth",
                bw,
                "a positive rate such as 25GB (per GPU per second)",
            ));
        }
        time.links.inter = bytes as f64;
    }
    let frameworks = match c.frameworks {
        Some(text) => parse_frameworks(text)?,
        None => crate::plan::frameworks::TRAINING.to_vec(),
    };
    let runs_precision: Vec<Framework> = frameworks
        .iter()
        .copied()
        .filter(|f| crate::plan::frameworks::capabilities(*f).is_some_and(|k| k.accepts_precision(base.precision)))
        .collect();
    if runs_precision.is_empty() {
        let names: Vec<&str> = frameworks.iter().map(|f| f.name()).collect();
        return Err(Error::conflict(
            format!("--precision {} is not a recipe {} keeps", base.precision.name(), names.join(" or ")),
            "megatron keeps fp32 main grads (--precision megatron-bf16); deepspeed and torchtitan mixed-bf16; pytorch and hf-trainer amp-bf16",
        ));
    }
    let recompute = match c.recompute {
        Some(r) => vec![r],
        None => {
            vec![crate::memory::Recompute::None, crate::memory::Recompute::Selective, crate::memory::Recompute::Full]
        }
    };
    let runs_recompute: Vec<Framework> = runs_precision
        .iter()
        .copied()
        .filter(|f| {
            crate::plan::frameworks::capabilities(*f).is_some_and(|k| recompute.iter().any(|r| k.recompute.contains(r)))
        })
        .collect();
    if runs_recompute.is_empty() {
        let names: Vec<&str> = runs_precision.iter().map(|f| f.name()).collect();
        return Err(Error::conflict(
            format!("{} has no {} recomputation", names.join(" or "), format!("{:?}", recompute[0]).to_lowercase()),
            "megatron and torchtitan recompute selectively; every framework recomputes full layers",
        ));
    }
    let cfg = SearchConfig {
        gpus,
        gpus_per_node: node,
        global_batch,
        headroom_bytes: parse_bytes("--headroom", c.headroom)?,
        time,
        overhead,
        allow_offload: c.allow_offload,
        top_k: c.top.max(1),
        max_tp: c.max_tp.unwrap_or(u64::MAX),
        max_pp: c.max_pp.unwrap_or(u64::MAX),
        max_cp: c.max_cp.unwrap_or(if base.seq >= 8192 { 16 } else { 1 }),
        frameworks: runs_recompute,
        recompute,
        max_candidates: crate::plan::search::MAX_CANDIDATES,
    };
    Ok((cfg, gpu, warnings))
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

pub fn run(args: &PlanArgs, out: &mut dyn Write) -> Result<i32> {
    let model = args.model.resolve()?;
    if !model.spec.modules.is_empty() {
        return Err(Error::conflict(
            format!("model `{}` has convolutional, UNet or LSTM modules", model.spec.name),
            "the planner's step-time model covers transformer stacks; use `memplan estimate` (with --dp/--zero)",
        ));
    }
    let base = args.setup.resolve(&model.spec)?;
    if base.phase != crate::memory::Phase::Train {
        return Err(Error::conflict("memplan plan searches training plans", "drop --phase inference"));
    }
    let tokens = args.tokens.as_deref().map(|t| parse_count("--tokens", t)).transpose()?;
    if let Some(p) = args.price {
        if !(p.is_finite() && p >= 0.0) {
            return Err(Error::invalid("--price", p, "a non-negative price per GPU-hour"));
        }
    }
    if args.emit.is_some() && args.out.is_none() {
        return Err(Error::conflict("--emit needs --out DIR", "add --out launch/"));
    }
    // An emit target restricts the search to the frameworks it writes configs for.
    let mut frameworks = args.framework.clone();
    if let Some(e) = args.emit.filter(|e| *e != Engine::Auto) {
        let targets = emit_frameworks(e);
        match &args.framework {
            Some(text) => {
                let asked = parse_frameworks(text)?;
                let kept: Vec<&str> = asked.iter().filter(|f| targets.contains(f)).map(|f| f.name()).collect();
                if kept.is_empty() {
                    return Err(Error::conflict(
                        format!("--emit {e:?} writes configs for {}, not for --framework {text}", names(targets))
                            .to_lowercase(),
                        "drop --framework, or emit for the framework searched (--emit auto)",
                    ));
                }
                frameworks = Some(kept.join(","));
            }
            None => frameworks = Some(names(targets)),
        }
    }
    let cluster = Cluster {
        gpus: &args.gpus,
        gpus_per_node: args.gpus_per_node,
        global_batch: Some(&args.global_batch),
        headroom: &args.headroom,
        efficiency: args.efficiency,
        calibration: args.calibration.as_deref(),
        overlap: args.overlap,
        allow_offload: args.allow_offload,
        top: args.top,
        max_tp: args.max_tp,
        max_pp: args.max_pp,
        max_cp: args.max_cp,
        frameworks: frameworks.as_deref(),
        recompute: args.setup.recompute.map(Into::into),
        inter_node_bandwidth: args.inter_node_bandwidth.as_deref(),
    };
    let (cfg, gpu, warnings) = search_config(&cluster, &model.spec, &base, args.setup.overheads()?)?;
    let info =
        if model.derived { ParamInfo::with_count(&model.spec, model.params) } else { ParamInfo::of(&model.spec) };
    let result: SearchResult = search(&model.spec, &info, &base, &gpu, &cfg)?;
    let mut report = PlanReport::new(&model.spec, model.params, &base, &gpu, &cfg, &result, tokens, args.price);
    report.warnings = warnings;
    if result.plans.is_empty() {
        report.suggestion = smallest_change(&model.spec, &info, &base, &gpu, &cfg);
    }
    // Emit before printing so that a refused emit prints nothing but the error.
    let mut written = Vec::new();
    if let (Some(engine), false) = (args.emit, result.plans.is_empty()) {
        let dir = args.out.as_ref().expect("checked above");
        let best = &result.plans[0];
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
        written = crate::plan::emit::emit(target, &model.spec, &base, best, cfg.global_batch, dir)?;
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

fn names(fs: &[Framework]) -> String {
    fs.iter().map(|f| f.name()).collect::<Vec<_>>().join(",")
}

/// The smallest change that makes some plan fit: offloading, a shorter sequence, or more GPUs.
fn smallest_change(
    model: &crate::model::ModelSpec,
    info: &ParamInfo,
    base: &crate::memory::Setup,
    gpu: &GpuSpec,
    cfg: &SearchConfig,
) -> Option<String> {
    let best = |setup: &crate::memory::Setup, cfg: &SearchConfig| {
        search(model, info, setup, gpu, &SearchConfig { top_k: 1, ..cfg.clone() })
            .ok()
            .and_then(|r| r.plans.into_iter().next())
    };
    if !cfg.allow_offload {
        if let Some(p) = best(base, &SearchConfig { allow_offload: true, ..cfg.clone() }) {
            return Some(format!(
                "offloading optimizer states (--allow-offload) would fit: {} ({})",
                p.plan.describe(),
                p.framework
            ));
        }
    }
    for div in [2u64, 4, 8] {
        let seq = base.seq / div;
        if seq >= 128 && base.seq.is_multiple_of(div) {
            let setup = crate::memory::Setup { seq, tgt_seq: base.tgt_seq.min(seq), ..base.clone() };
            if let Some(p) = best(&setup, cfg) {
                return Some(format!(
                    "a sequence of {seq} tokens (--seq {seq}) would fit: {} ({})",
                    p.plan.describe(),
                    p.framework
                ));
            }
        }
    }
    for mult in [2u64, 4, 8, 16] {
        let Some(gpus) = cfg.gpus.checked_mul(mult) else { break };
        if cfg.global_batch >= gpus / cfg.gpus_per_node.max(1) {
            let node = cfg.gpus_per_node.max(cfg.gpus.min(8));
            let mut c = SearchConfig { gpus, gpus_per_node: node, ..cfg.clone() };
            c.time.links.gpus_per_node = node;
            if let Some(p) = best(base, &c) {
                return Some(format!("{gpus} GPUs ({mult}× more) would fit: {} ({})", p.plan.describe(), p.framework));
            }
        }
    }
    None
}
