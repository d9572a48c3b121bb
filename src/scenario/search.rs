//! `Scenario::resolve_search`: the model and step of a scenario plus the cluster to search
//! (`--gpus 64xh100-sxm`, `--global-batch`, the search bounds), checked into a `ResolvedSearch`.

use super::resolve::{global_sequences, resolve_model, resolve_setup, Resolved};
use super::settings::{bounds, Scenario};
use super::value::bound_text;
use crate::error::{Error, Result};
use crate::hw::GpuSpec;
use crate::memory::states::ParamInfo;
use crate::memory::{OverheadConfig, Phase, Setup};
use crate::parallel::ParallelPlan;
use crate::plan::search::SearchConfig;
use crate::plan::time::TimeConfig;

/// The settings that fix one plan; the search chooses them itself.
const SEARCHED: &[&str] = &[
    "dp",
    "tp",
    "sp",
    "pp",
    "schedule",
    "vpp",
    "microbatches",
    "cp",
    "ep",
    "zero",
    "fsdp",
    "distributed-optimizer",
    "offload",
    "deepspeed-config",
];

/// A validated plan search: the base scenario (one GPU, no parallelism), the search
/// configuration and the GPU preset of the cluster.
#[derive(Clone, Debug)]
pub struct ResolvedSearch {
    pub base: Resolved,
    pub config: SearchConfig,
    pub gpu: GpuSpec,
    /// Set when a calibration file was measured on another GPU than the one planned for.
    pub calibration_note: Option<String>,
    pub tokens: Option<u64>,
    pub price: Option<f64>,
}

impl Scenario {
    /// Check the scenario and its cluster for a plan search.
    pub fn resolve_search(&self) -> Result<ResolvedSearch> {
        self.check_values()?;
        let given: Vec<&str> = SEARCHED.iter().copied().filter(|k| self.get(k).is_some()).collect();
        if let Some(k) = given.first() {
            return Err(Error::conflict(
                format!("--{k} fixes part of a plan, and `plan` searches the plans"),
                "drop it, bound the search with --max-tp/--max-pp/--max-cp, or check one plan with `memplan estimate`",
            ));
        }
        let f = self.filled();
        let model = resolve_model(&f)?;
        if !model.spec.modules.is_empty() {
            return Err(Error::conflict(
                format!("model `{}` has convolutional, UNet or LSTM modules", model.spec.name),
                "the planner's step-time model covers transformer stacks; use `memplan estimate` (with --dp/--zero)",
            ));
        }
        let setup = resolve_setup(&f, &model.spec)?;
        if setup.phase != Phase::Train {
            return Err(Error::conflict("memplan plan searches training plans", "drop --phase inference"));
        }
        let cluster = f.gpus.clone().ok_or_else(|| {
            Error::conflict("plan needs the cluster", "add --gpus <count>x<gpu preset>, e.g. --gpus 64xh100-sxm")
        })?;
        let gpu_name = match (&cluster.gpu, f.gpu.as_ref().map(|n| n.0.as_slice())) {
            (Some(g), None) => g.clone(),
            (Some(g), Some([n])) if n.eq_ignore_ascii_case(g) => g.clone(),
            (None, Some([n])) => n.clone(),
            (None, None) => {
                return Err(Error::invalid(
                    "--gpus",
                    cluster.count,
                    "<count>x<gpu preset>, e.g. 64xh100-sxm (or add --gpu h100-sxm)",
                ))
            }
            _ => {
                return Err(Error::conflict(
                    "plan searches one kind of GPU",
                    "name it once: --gpus 64xh100-sxm, or --gpus 64 --gpu h100-sxm",
                ))
            }
        };
        let gpu = GpuSpec::preset(&gpu_name)?;
        let gpus = cluster.count;
        let per_node = f.gpus_per_node.unwrap_or(8);
        if gpus > per_node && gpus % per_node != 0 {
            return Err(Error::invalid("--gpus-per-node", per_node, format!("a divisor of the {gpus} GPUs")));
        }
        let global_batch = match f.global_batch {
            Some(gb) => global_sequences(gb, setup.seq)?,
            None => ((1u64 << 20) / setup.seq).max(gpus).max(1),
        };
        if global_batch > bounds::BATCH * bounds::MICROBATCHES {
            return Err(Error::too_large(
                "--global-batch",
                global_batch,
                format!("{} sequences", bound_text(bounds::BATCH * bounds::MICROBATCHES)),
                "use a smaller global batch",
            ));
        }
        if let Some(t) = f.max_tp.filter(|t| *t > per_node) {
            return Err(Error::invalid(
                "--max-tp",
                t,
                format!("at most the {per_node} GPUs per node (tensor parallelism stays within a node's NVLink)"),
            ));
        }
        // The smallest data-parallel degree the search can reach: GPUs over the largest tp·pp.
        let max_model_parallel = per_node.min(gpus).min(f.max_tp.unwrap_or(u64::MAX))
            * model.spec.total_layers().min(f.max_pp.unwrap_or(u64::MAX));
        let min_dp = gpus.div_ceil(max_model_parallel.max(1)).max(1);
        if global_batch < min_dp {
            return Err(Error::invalid(
                "--global-batch",
                global_batch,
                format!("at least {min_dp} sequences: the global batch is smaller than the smallest data-parallel degree ({min_dp}) × micro-batch 1 on {gpus} GPUs"),
            ));
        }
        let (efficiency, calibration_note) = match (f.efficiency, &f.calibration) {
            (Some(e), _) => (e, None),
            (None, Some(file)) => calibrated_efficiency(file, &gpu, &setup)?,
            (None, None) => (gpu.default_efficiency, None),
        };
        let profile = super::resolve::resolve_profile(&f)?;
        let overheads = OverheadConfig {
            cuda_context_bytes: f.cuda_context.map_or(OverheadConfig::default().cuda_context_bytes, |c| c.0),
            fragmentation: f.fragmentation.or(profile.fragmentation).unwrap_or(OverheadConfig::default().fragmentation),
            context_given: f.cuda_context.is_some(),
            lazy_loading: profile.lazy_module_loading,
            ..OverheadConfig::default()
        };
        let config = SearchConfig {
            gpus,
            gpus_per_node: per_node.min(gpus),
            global_batch,
            headroom_bytes: f.headroom.map_or(0, |h| h.0),
            time: TimeConfig { efficiency, overlap: f.overlap.unwrap_or(0.5), ..TimeConfig::default() },
            overhead: overheads,
            allow_offload: f.allow_offload.unwrap_or(false),
            top_k: f.top.unwrap_or(10) as usize,
            max_tp: f.max_tp.unwrap_or(u64::MAX),
            max_pp: f.max_pp.unwrap_or(u64::MAX),
            max_cp: f.max_cp.unwrap_or(if setup.seq >= 8192 { 16 } else { 1 }),
        };
        let info =
            if model.derived { ParamInfo::with_count(&model.spec, model.params) } else { ParamInfo::of(&model.spec) };
        let plan = ParallelPlan::single();
        super::resolve::check_magnitudes(&model.spec, &setup, &plan)?;
        let base = Resolved {
            scenario: self.clone(),
            model,
            info,
            setup,
            plan,
            overheads,
            gpus: vec![gpu.clone()],
            gpus_chosen: true,
            framework: f.framework.unwrap_or_default(),
            framework_version: f.framework_version.clone(),
            serving: None,
            profile,
        };
        Ok(ResolvedSearch { base, config, gpu, calibration_note, tokens: f.tokens.map(|t| t.0), price: f.price })
    }
}

/// The efficiency a calibration file implies: measured matmul TFLOP/s for the recipe's dtype
/// over the preset's peak. Also returns a note when the file was measured on another GPU.
fn calibrated_efficiency(file: &super::value::FileArg, gpu: &GpuSpec, setup: &Setup) -> Result<(f64, Option<String>)> {
    let path = file.path();
    let text = file.read()?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.clone(),
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
        .filter(|t| t.is_finite() && *t > 0.0)
        .ok_or_else(|| Error::Parse {
            path: path.clone(),
            line: None,
            field: Some(format!("calibration.matmul_tflops.{dtype}")),
            message: "missing or not a positive number: write the file with `memplan bench suite -o FILE`".into(),
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
