//! `Scenario::resolve_search`: the model and step of a scenario plus the cluster to search
//! (`--gpus 64xh100-sxm`, `--global-batch`, the search bounds), checked into a `ResolvedSearch`.

use super::resolve::{global_sequences, resolve_model, resolve_setup, Resolved};
use super::settings::{bounds, Scenario};
use super::value::bound_text;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::hw::GpuSpec;
use crate::memory::states::ParamInfo;
use crate::memory::{OverheadConfig, Phase, Recompute, Setup};
use crate::parallel::ParallelPlan;
use crate::plan::search::SearchConfig;
use crate::plan::time::TimeConfig;

/// A validated plan search: the base scenario (one GPU, no parallelism), the search
/// configuration and the GPU preset of the cluster.
#[derive(Clone, Debug)]
pub struct ResolvedSearch {
    pub base: Resolved,
    pub config: SearchConfig,
    pub gpu: GpuSpec,
    /// Settings outside physical sense, a calibration measured on another GPU.
    pub warnings: Vec<String>,
    pub tokens: Option<u64>,
    pub price: Option<f64>,
}

impl Scenario {
    /// Check the scenario and its cluster for a plan search.
    pub fn resolve_search(&self) -> Result<ResolvedSearch> {
        self.check_values()?;
        // The settings that fix one plan, except the cluster's own (its size, node size and batch).
        let searched = super::settings::plan_keys()
            .iter()
            .copied()
            .filter(|k| !matches!(*k, "gpus" | "gpus-per-node" | "global-batch"));
        let given: Vec<&str> = searched.filter(|k| self.get(k).is_some()).collect();
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
        let mut warnings = Vec::new();
        if let Some(t) = f.max_tp.filter(|t| *t > per_node) {
            warnings.push(format!(
                "--max-tp {t} is above the {per_node} GPUs per node: tensor parallelism is searched within a node (tp ≤ {per_node})"
            ));
        }
        // The smallest data-parallel degree the search can reach: GPUs over the largest tp·pp·cp.
        let node = per_node.min(gpus);
        let max_model_parallel = node
            .min(f.max_tp.unwrap_or(u64::MAX))
            .saturating_mul(model.spec.total_layers().min(f.max_pp.unwrap_or(u64::MAX)))
            .saturating_mul(f.max_cp.unwrap_or(if setup.seq >= 8192 { 16 } else { 1 }).min(16));
        let min_dp = gpus.div_ceil(max_model_parallel.max(1)).max(1);
        if global_batch < min_dp {
            return Err(Error::invalid(
                "--global-batch",
                global_batch,
                format!("at least {min_dp} sequences: the global batch is smaller than the smallest data-parallel degree ({min_dp}) × micro-batch 1 on {gpus} GPUs"),
            ));
        }
        let mut time = TimeConfig::for_gpu(&gpu, &setup, node);
        let preset_max = time.gemm.max;
        match (f.efficiency, &f.calibration) {
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
            (None, Some(file)) => {
                let (g, note) = calibrated_gemm(file, &gpu, &setup, time.gemm.clone())?;
                time.gemm = g;
                warnings.extend(note);
            }
            (None, None) => {}
        }
        time.overlap = f.overlap;
        if let Some(rate) = f.inter_node_bandwidth {
            if rate.0 == 0 {
                return Err(Error::invalid(
                    "--inter-node-bandwidth",
                    "0",
                    "a positive rate such as 25GB (per GPU per second)",
                ));
            }
            time.links.inter = rate.0 as f64;
        }
        // `framework` restricts the search to it; without it every training framework is searched
        // and each plan is labelled with the one that runs it.
        let frameworks: Vec<Framework> = match self.framework {
            Some(fw) => {
                if crate::plan::frameworks::capabilities(fw).is_none() {
                    let names: Vec<&str> = crate::plan::frameworks::TRAINING.iter().map(|f| f.name()).collect();
                    return Err(Error::invalid(
                        "--framework",
                        fw,
                        format!("a training framework: {}", names.join(", ")),
                    ));
                }
                vec![fw]
            }
            None => crate::plan::frameworks::TRAINING.to_vec(),
        };
        // Each framework searched with its own defaults for what was not given (its profile):
        // Megatron's recipe keeps fp32 main grads, torchtitan's is bf16 FSDP2, ... A framework whose
        // profile refuses the settings given (a recompute policy it lacks) is not searched.
        let frameworks_setups: Vec<(Framework, Setup)> = frameworks
            .iter()
            .filter_map(|fw| {
                if self.framework == Some(*fw) {
                    return Some((*fw, setup.clone()));
                }
                let own = Scenario { framework: Some(*fw), framework_version: None, ..f.clone() };
                resolve_setup(&own, &model.spec).ok().map(|s| (*fw, s))
            })
            .collect();
        let runs_precision: Vec<Framework> = frameworks_setups
            .iter()
            .filter(|(fw, s)| {
                crate::plan::frameworks::capabilities(*fw).is_some_and(|k| k.accepts_precision(s.precision))
            })
            .map(|(fw, _)| *fw)
            .collect();
        if runs_precision.is_empty() {
            let names: Vec<&str> = frameworks.iter().map(|f| f.name()).collect();
            return Err(Error::conflict(
                format!("--precision {} is not a recipe {} keeps", setup.precision.name(), names.join(" or ")),
                "megatron keeps fp32 main grads (--precision megatron-bf16); deepspeed and torchtitan mixed-bf16; pytorch and hf-trainer amp-bf16",
            ));
        }
        // `recompute` given: that policy only; otherwise every policy a framework offers.
        let recompute: Vec<Recompute> = match self.recompute {
            Some(r) => vec![r],
            None => {
                let mut all: Vec<Recompute> = Vec::new();
                for fw in &runs_precision {
                    for r in crate::plan::frameworks::recompute_policies(*fw) {
                        if !all.contains(r) {
                            all.push(*r);
                        }
                    }
                }
                all
            }
        };
        let runs_recompute: Vec<Framework> = runs_precision
            .iter()
            .copied()
            .filter(|fw| {
                crate::plan::frameworks::capabilities(*fw)
                    .is_some_and(|k| recompute.iter().any(|r| k.recompute.contains(r)))
            })
            .collect();
        if runs_recompute.is_empty() {
            let names: Vec<&str> = runs_precision.iter().map(|f| f.name()).collect();
            return Err(Error::conflict(
                format!("{} has no {} recomputation", names.join(" or "), recompute[0]),
                "megatron recomputes selectively or full layers; torchtitan per op (op), every k-th block or full layers; the HF Trainer per layer (hf)",
            ));
        }
        let profile = super::resolve::resolve_profile(&f)?;
        let overheads = OverheadConfig {
            cuda_context_bytes: f.cuda_context.map_or(OverheadConfig::default().cuda_context_bytes, |c| c.0),
            fragmentation: f.fragmentation.or(profile.fragmentation).unwrap_or(OverheadConfig::default().fragmentation),
            context_given: f.cuda_context.is_some(),
            lazy_loading: profile.lazy_module_loading,
            ..OverheadConfig::default()
        }
        // The cluster's GPU: its runtime (context, workspace, NCCL), as `estimate --gpu` uses.
        .on_gpu(&gpu);
        let config = SearchConfig {
            gpus,
            gpus_per_node: node,
            global_batch,
            headroom_bytes: f.headroom.map_or(0, |h| h.0),
            time,
            overhead: overheads,
            allow_offload: f.allow_offload.unwrap_or(false),
            top_k: f.top.unwrap_or(10) as usize,
            max_tp: f.max_tp.unwrap_or(u64::MAX),
            max_pp: f.max_pp.unwrap_or(u64::MAX),
            max_cp: f.max_cp.unwrap_or(if setup.seq >= 8192 { 16 } else { 1 }),
            setups: frameworks_setups,
            frameworks: runs_recompute,
            recompute,
            max_candidates: crate::plan::search::MAX_CANDIDATES,
            // `batch` given: that micro-batch only.
            micro_batch: self.batch.map(|b| b.0),
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
        Ok(ResolvedSearch { base, config, gpu, warnings, tokens: f.tokens.map(|t| t.0), price: f.price })
    }
}

/// The GEMM model a calibration file implies: the measured matmul results of the recipe's
/// dtype (bf16 runs are measured as fp16, WGSL has no bf16), by size, replace the preset's
/// curve; a file with only the summary `calibration.matmul_tflops` sets the ceiling. Also
/// returns a note when the file was measured on another GPU than the one planned for.
fn calibrated_gemm(
    file: &super::value::FileArg,
    gpu: &GpuSpec,
    setup: &Setup,
    base: crate::plan::gemm::GemmModel,
) -> Result<(crate::plan::gemm::GemmModel, Option<String>)> {
    let path = file.path();
    let text = file.read()?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.clone(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    if let Some(version) = v.get("schema_version") {
        let expected = crate::plan::gemm::BENCH_SCHEMA_VERSION;
        if version.as_u64() != Some(u64::from(expected)) {
            return Err(Error::Parse {
                path: path.clone(),
                line: None,
                field: Some("schema_version".into()),
                message: format!("schema version {version} is not supported (expected {expected}); write the file with this memplan's `memplan bench suite -o FILE`"),
            });
        }
    }
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
                .filter(|(f, t)| f.is_finite() && t.is_finite() && *f > 0.0 && *t > 0.0)
                .collect()
        })
        .unwrap_or_default();
    let shown = file.label();
    let model = if points.is_empty() {
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
