//! `memplan plan`: search the plans that fit a cluster and rank them by predicted step time.

use super::args::{parse_bytes, ModelArgs, SetupArgs};
use super::estimate::write_out;
use crate::error::{Error, Result};
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
    Deepspeed,
    Megatron,
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
    /// Matmul efficiency (fraction of the dense peak). Default: from --calibration, else the GPU
    /// preset's stated default.
    #[arg(long)]
    pub efficiency: Option<f64>,
    /// A `memplan bench` JSON whose measured matmul throughput sets the efficiency.
    #[arg(long, value_name = "FILE")]
    pub calibration: Option<PathBuf>,
    /// Fraction of data-parallel communication hidden behind compute.
    #[arg(long, default_value = "0.5")]
    pub overlap: f64,
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
    /// Write launch configs for the best plan.
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

/// The efficiency a calibration file implies: measured matmul TFLOP/s for the recipe's dtype
/// over the preset's peak.
/// Also returns a note when the file was measured on another GPU than the one planned for.
fn calibrated_efficiency(
    path: &std::path::Path,
    gpu: &GpuSpec,
    setup: &crate::memory::Setup,
) -> Result<(f64, Option<String>)> {
    let text = crate::model::presets::read(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    // bf16 matmuls run at the fp16 rate on every GPU preset; fp32 is the last resort.
    let dtype = match setup.precision.activation_dtype().name() {
        "bf16" => "fp16",
        other => other,
    };
    let tflops = v
        .pointer(&format!("/calibration/matmul_tflops/{dtype}"))
        .or_else(|| v.pointer("/calibration/matmul_tflops/fp32"))
        .and_then(serde_json::Value::as_f64)
        .ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            field: Some(format!("calibration.matmul_tflops.{dtype}")),
            message: "missing: write the file with `memplan bench suite -o FILE`".into(),
        })?;
    let peak = crate::plan::time::peak_flops(gpu, setup);
    let measured_on = v.pointer("/gpu_preset").and_then(serde_json::Value::as_str);
    let adapter = v.pointer("/adapter/name").and_then(serde_json::Value::as_str).unwrap_or("an unknown adapter");
    let note = match measured_on {
        Some(p) if p == gpu.name => None,
        Some(p) => Some(format!("calibration measured on {p} ({adapter}), applied to {}", gpu.name)),
        None => {
            Some(format!("calibration measured on {adapter}, which matches no GPU preset; applied to {}", gpu.name))
        }
    };
    Ok(((tflops * 1e12 / peak).clamp(1e-6, 1.0), note))
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
    pub overlap: f64,
    pub allow_offload: bool,
    pub top: usize,
    pub max_tp: Option<u64>,
    pub max_pp: Option<u64>,
    pub max_cp: Option<u64>,
}

/// Validate the cluster flags into a search configuration, the GPU preset, and a note when a
/// calibration file was measured on another GPU.
pub fn search_config(
    c: &Cluster,
    model: &crate::model::ModelSpec,
    base: &crate::memory::Setup,
    overhead: crate::memory::OverheadConfig,
) -> Result<(SearchConfig, GpuSpec, Option<String>)> {
    let (gpus, gpu) = parse_cluster(c.gpus)?;
    if c.gpus_per_node == 0 || (gpus > c.gpus_per_node && gpus % c.gpus_per_node != 0) {
        return Err(Error::invalid(
            "--gpus-per-node",
            c.gpus_per_node,
            format!("a positive divisor of the {gpus} GPUs"),
        ));
    }
    let global_batch = match c.global_batch {
        Some(b) => parse_global_batch(b, base.seq)?,
        None => ((1u64 << 20) / base.seq).max(gpus).max(1),
    };
    // The smallest data-parallel degree the search can reach: GPUs over the largest tp·pp.
    let max_model_parallel = c.gpus_per_node.min(gpus).min(c.max_tp.unwrap_or(u64::MAX))
        * model.total_layers().min(c.max_pp.unwrap_or(u64::MAX));
    let min_dp = gpus.div_ceil(max_model_parallel.max(1)).max(1);
    if global_batch < min_dp {
        return Err(Error::invalid(
            "--global-batch",
            global_batch,
            format!("at least {min_dp} sequences: the global batch is smaller than the smallest data-parallel degree ({min_dp}) × micro-batch 1 on {gpus} GPUs"),
        ));
    }
    let (efficiency, note) = match (c.efficiency, c.calibration) {
        (Some(e), _) if !(e > 0.0 && e <= 1.0) => {
            return Err(Error::invalid("--efficiency", e, "a fraction in (0, 1]"))
        }
        (Some(e), _) => (e, None),
        (None, Some(path)) => calibrated_efficiency(path, &gpu, base)?,
        (None, None) => (gpu.default_efficiency, None),
    };
    if !(0.0..=1.0).contains(&c.overlap) {
        return Err(Error::invalid("--overlap", c.overlap, "a fraction in [0, 1]"));
    }
    let cfg = SearchConfig {
        gpus,
        gpus_per_node: c.gpus_per_node.min(gpus),
        global_batch,
        headroom_bytes: parse_bytes("--headroom", c.headroom)?,
        time: TimeConfig { efficiency, overlap: c.overlap, ..TimeConfig::default() },
        overhead,
        allow_offload: c.allow_offload,
        top_k: c.top.max(1),
        max_tp: c.max_tp.unwrap_or(u64::MAX),
        max_pp: c.max_pp.unwrap_or(u64::MAX),
        max_cp: c.max_cp.unwrap_or(if base.seq >= 8192 { 16 } else { 1 }),
    };
    Ok((cfg, gpu, note))
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
    };
    let (cfg, gpu, calibration_note) = search_config(&cluster, &model.spec, &base, args.setup.overheads()?)?;
    let info =
        if model.derived { ParamInfo::with_count(&model.spec, model.params) } else { ParamInfo::of(&model.spec) };
    let result: SearchResult = search(&model.spec, &info, &base, &gpu, &cfg);
    let mut report = PlanReport::new(&model.spec, model.params, &base, &gpu, &cfg, &result, tokens, args.price);
    report.calibration_note = calibration_note;
    if result.plans.is_empty() {
        report.suggestion = smallest_change(&model.spec, &info, &base, &gpu, &cfg);
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
    if let Some(engine) = args.emit {
        let dir = args.out.as_ref().ok_or_else(|| Error::conflict("--emit needs --out DIR", "add --out launch/"))?;
        let files =
            crate::plan::emit::emit(engine_kind(engine), &model.spec, &base, &result.plans[0], cfg.global_batch, dir)?;
        let list: Vec<String> = files.iter().map(|p| format!("wrote {}", p.display())).collect();
        write_out(out, &(list.join("\n") + "\n"))?;
    }
    Ok(0)
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
        search(model, info, setup, gpu, &SearchConfig { top_k: 1, ..cfg.clone() }).plans.into_iter().next()
    };
    if !cfg.allow_offload {
        if let Some(p) = best(base, &SearchConfig { allow_offload: true, ..cfg.clone() }) {
            return Some(format!("offloading optimizer states (--allow-offload) would fit: {}", p.plan.describe()));
        }
    }
    for div in [2u64, 4, 8] {
        let seq = base.seq / div;
        if seq >= 128 && base.seq.is_multiple_of(div) {
            let setup = crate::memory::Setup { seq, tgt_seq: base.tgt_seq.min(seq), ..base.clone() };
            if let Some(p) = best(&setup, cfg) {
                return Some(format!("a sequence of {seq} tokens (--seq {seq}) would fit: {}", p.plan.describe()));
            }
        }
    }
    for mult in [2u64, 4, 8, 16] {
        let gpus = cfg.gpus * mult;
        if cfg.global_batch >= gpus / cfg.gpus_per_node.max(1) {
            if let Some(p) =
                best(base, &SearchConfig { gpus, gpus_per_node: cfg.gpus_per_node.max(cfg.gpus.min(8)), ..cfg.clone() })
            {
                return Some(format!("{gpus} GPUs ({mult}× more) would fit: {}", p.plan.describe()));
            }
        }
    }
    None
}

fn engine_kind(e: Engine) -> crate::plan::emit::Engine {
    match e {
        Engine::Deepspeed => crate::plan::emit::Engine::DeepSpeed,
        Engine::Megatron => crate::plan::emit::Engine::Megatron,
        Engine::Fsdp => crate::plan::emit::Engine::Fsdp,
    }
}
