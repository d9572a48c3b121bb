//! `Scenario::resolve`: every value and every combination checked once, into a `Resolved` that
//! the estimator and the planner take. Nothing else builds a `Resolved`, so a library caller
//! cannot estimate batch 0, pp 0 or a tp that does not divide the heads.

use super::settings::{bounds, FinetuneMode, GlobalBatch, Scenario};
use super::value::{bound_text, FileArg};
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::hw::GpuSpec;
use crate::memory::estimate::{estimate_plan, PlanEstimate};
use crate::memory::finetune::{Finetune, LoraConfig, LoraTargets, WeightQuant};
use crate::memory::profile::FrameworkProfile;
use crate::memory::serving::{Entrypoint, Release, VllmSettings};
use crate::memory::states::ParamInfo;
use crate::memory::{OverheadConfig, Phase, Precision, Setup};
use crate::model::{derive, hf, presets, ModelSpec, Positions, StackInput};
use crate::parallel::{Offload, ParallelPlan};

/// The model a scenario names, with its exact parameter count.
#[derive(Clone, Debug)]
pub struct ResolvedModel {
    pub spec: ModelSpec,
    /// Exact parameter count for model states (`--params` or the spec's own count).
    pub params: u64,
    /// The shape was derived from a bare parameter count.
    pub derived: bool,
}

/// A validated scenario: the model, the step, the plan, the overheads and the GPUs to check.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub(super) scenario: Scenario,
    pub(super) model: ResolvedModel,
    pub(super) info: ParamInfo,
    pub(super) setup: Setup,
    pub(super) plan: ParallelPlan,
    pub(super) overheads: OverheadConfig,
    pub(super) gpus: Vec<GpuSpec>,
    pub(super) gpus_chosen: bool,
    pub(super) framework: Framework,
    pub(super) framework_version: Option<String>,
    pub(super) serving: Option<ServingChoice>,
    pub(super) profile: FrameworkProfile,
}

/// A serving framework chosen with `framework`: its release and settings.
#[derive(Clone, Debug, PartialEq)]
pub enum ServingChoice {
    Vllm { release: Release, settings: VllmSettings },
    Generate { release: Release, logits: crate::memory::serving::GenerateLogits },
}

impl Resolved {
    /// The scenario as given (settings not given are absent).
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }
    pub fn model(&self) -> &ResolvedModel {
        &self.model
    }
    pub fn info(&self) -> &ParamInfo {
        &self.info
    }
    pub fn setup(&self) -> &Setup {
        &self.setup
    }
    pub fn plan(&self) -> &ParallelPlan {
        &self.plan
    }
    pub fn overheads(&self) -> &OverheadConfig {
        &self.overheads
    }
    /// The GPUs the estimate is checked against (every preset unless `gpu` was given).
    pub fn gpus(&self) -> &[GpuSpec] {
        &self.gpus
    }
    /// Whether `gpu` chose the GPUs (then not fitting one of them is exit code 1).
    pub fn gpus_chosen(&self) -> bool {
        self.gpus_chosen
    }
    pub fn framework(&self) -> Framework {
        self.framework
    }
    pub fn framework_version(&self) -> Option<&str> {
        self.framework_version.as_deref()
    }
    /// The framework profile used (its settings, with why and their sources).
    pub fn profile(&self) -> &FrameworkProfile {
        &self.profile
    }
    /// The serving framework (vLLM, HF generate) with its release, when one was chosen.
    pub fn serving(&self) -> Option<&ServingChoice> {
        self.serving.as_ref()
    }

    /// The per-rank, per-stage estimate.
    pub fn estimate(&self) -> PlanEstimate {
        estimate_plan(&self.model.spec, &self.info, &self.setup, &self.plan, &self.overheads)
    }

    /// The same scenario at another micro-batch (already validated: only the batch changes, and
    /// it is checked against the same bounds).
    pub fn with_micro_batch(&self, micro_batch: u64) -> Result<Resolved> {
        let mut scenario = self.scenario.clone();
        scenario.batch = Some(super::value::Count(micro_batch));
        check_tokens(micro_batch, self.setup.seq)?;
        if micro_batch == 0 || micro_batch > bounds::BATCH {
            return Err(Error::invalid("--batch", micro_batch, format!("1 to {}", bound_text(bounds::BATCH))));
        }
        let setup = Setup { micro_batch, ..self.setup.clone() };
        check_magnitudes(&self.model.spec, &setup, &self.plan)?;
        Ok(Resolved { scenario, setup, ..self.clone() })
    }

    /// The worst rank's total (live peak + runtime overheads) at another micro-batch; `None`
    /// when that micro-batch is beyond what memplan sizes.
    pub fn total_at_micro_batch(&self, micro_batch: u64) -> Option<u64> {
        self.with_micro_batch(micro_batch).ok().map(|r| r.estimate().worst().total)
    }

    /// The largest micro-batch whose worst-rank total fits in `capacity` bytes (0: not even
    /// one sequence), searched up to `limit`. Memory grows with the micro-batch, so a doubling
    /// search followed by bisection finds it in O(log) estimates.
    pub fn max_micro_batch(&self, capacity: u64, limit: u64) -> u64 {
        let limit = limit.min(bounds::BATCH).min(bounds::TOKENS_PER_MICROBATCH / self.setup.seq.max(1)).max(1);
        let fits = |b: u64| self.total_at_micro_batch(b).is_some_and(|t| t <= capacity);
        if !fits(1) {
            return 0;
        }
        let mut lo = 1; // fits
        let mut hi = 2;
        while hi <= limit && fits(hi) {
            lo = hi;
            hi *= 2;
        }
        if hi > limit {
            if fits(limit) {
                return limit;
            }
            hi = limit;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

impl Scenario {
    /// Check every value and every combination; read the files the scenario names.
    pub fn resolve(&self) -> Result<Resolved> {
        self.check_values()?;
        self.check_finetune_settings()?;
        let mut s = self.clone();
        apply_deepspeed_config(&mut s)?;
        let from_config = read_from_config(&s)?;
        if let Some((fc, _)) = &from_config {
            merge_from_config(&mut s, fc)?;
        }
        let f = s.filled();
        let mut model = resolve_model(&f)?;
        let mut setup = resolve_setup(&f, &model.spec)?;
        let serving = resolve_serving(&f, &setup)?;
        if let Some(ServingChoice::Generate { logits, .. }) = &serving {
            setup.generate_logits = Some(*logits);
        }
        let plan = match from_config {
            // The config fixes the plan (checked against the model's dimensions).
            Some((mut fc, text)) => fc.apply(&model.spec, &mut setup, &text)?,
            None => resolve_plan(&f, &model.spec, &setup)?,
        };
        check_magnitudes(&model.spec, &setup, &plan)?;
        let info =
            if model.derived { ParamInfo::with_count(&model.spec, model.params) } else { ParamInfo::of(&model.spec) };
        model.params = info.params;
        let profile = resolve_profile(&f)?;
        let mut overheads = OverheadConfig {
            cuda_context_bytes: f.cuda_context.map_or(OverheadConfig::default().cuda_context_bytes, |c| c.0),
            fragmentation: f.fragmentation.or(profile.fragmentation).unwrap_or(OverheadConfig::default().fragmentation),
            context_given: f.cuda_context.is_some(),
            lazy_loading: profile.lazy_module_loading,
            ..OverheadConfig::default()
        };
        let (gpus, gpus_chosen) = resolve_gpus(&f)?;
        if let (true, [gpu]) = (gpus_chosen, gpus.as_slice()) {
            // One GPU checked: the total uses its runtime (context, workspace, NCCL).
            overheads = overheads.on_gpu(gpu);
        }
        let framework = f.framework.unwrap_or_default();
        Ok(Resolved {
            scenario: s,
            model,
            info,
            setup,
            plan,
            overheads,
            gpus,
            gpus_chosen,
            framework,
            framework_version: f.framework_version.clone(),
            serving,
            profile,
        })
    }
}

/// `framework` vllm or hf-generate with its release and the vLLM settings; `None` for the
/// training frameworks. vLLM-only settings need `--framework vllm`.
pub(super) fn resolve_serving(f: &Scenario, setup: &Setup) -> Result<Option<ServingChoice>> {
    use crate::memory::serving::{default_release, generate_logits, oldest_release};
    let framework = f.framework.unwrap_or_default();
    let vllm_flags = [
        ("--gpu-memory-utilization", f.gpu_memory_utilization.is_some()),
        ("--max-num-batched-tokens", f.max_num_batched_tokens.is_some()),
        ("--max-num-seqs", f.max_num_seqs.is_some()),
        ("--enforce-eager", f.enforce_eager == Some(true)),
        ("--vllm-entrypoint", f.vllm_entrypoint.is_some_and(|e| e != Entrypoint::Serve)),
    ];
    if framework != Framework::Vllm {
        if let Some((flag, _)) = vllm_flags.iter().find(|(_, on)| *on) {
            return Err(Error::conflict(format!("{flag} applies to vLLM"), "add --framework vllm --phase inference"));
        }
    }
    if !framework.serves() {
        return Ok(None);
    }
    if setup.phase != Phase::Inference {
        return Err(Error::conflict(
            format!("--framework {framework} serves models; it does not train"),
            "add --phase inference",
        ));
    }
    let release = match &f.framework_version {
        Some(v) => Release::parse(v)?,
        None => default_release(framework),
    };
    let oldest = oldest_release(framework);
    if release < oldest {
        return Err(Error::invalid(
            "--framework-version",
            release,
            format!("{oldest} or newer (the oldest release presets/frameworks/{framework}.toml describes)"),
        ));
    }
    if framework == Framework::HfGenerate {
        let (logits, _) = generate_logits(release)?;
        return Ok(Some(ServingChoice::Generate { release, logits }));
    }
    let settings = VllmSettings {
        gpu_memory_utilization: f.gpu_memory_utilization,
        max_num_batched_tokens: f.max_num_batched_tokens,
        max_num_seqs: f.max_num_seqs,
        block_size: f.block_size,
        enforce_eager: f.enforce_eager.unwrap_or(false),
        entrypoint: f.vllm_entrypoint.unwrap_or_default(),
        max_model_len: setup.context.unwrap_or(setup.seq),
    };
    Ok(Some(ServingChoice::Vllm { release, settings }))
}

impl Scenario {
    /// LoRA/QLoRA settings given without the fine-tuning mode that reads them are an error (a
    /// default value given explicitly included): they would otherwise change nothing silently.
    fn check_finetune_settings(&self) -> Result<()> {
        let mode = self.finetune.unwrap_or_default();
        let lora = [
            ("--lora-rank", self.lora_rank.is_some()),
            ("--lora-alpha", self.lora_alpha.is_some()),
            ("--lora-targets", self.lora_targets.is_some()),
            ("--lora-dropout", self.lora_dropout.is_some()),
        ];
        if mode == FinetuneMode::Full {
            if let Some((flag, _)) = lora.iter().find(|(_, on)| *on) {
                return Err(Error::conflict(
                    format!("{flag} applies to LoRA fine-tuning"),
                    "add --finetune lora (or qlora), or drop it",
                ));
            }
        }
        let qlora_only = [("--paged-optimizer", self.paged_optimizer == Some(true))];
        if mode != FinetuneMode::Qlora {
            if let Some((flag, _)) = qlora_only.iter().find(|(_, on)| *on) {
                return Err(Error::conflict(format!("{flag} applies to --finetune qlora"), "add --finetune qlora"));
            }
        }
        if self.double_quant == Some(true)
            && mode != FinetuneMode::Qlora
            && self.weights.map(|w| w.0) != Some(crate::memory::finetune::WeightFormat::Nf4)
        {
            return Err(Error::conflict(
                "--double-quant applies to NF4 weights",
                "add --finetune qlora, or --phase inference --weights nf4",
            ));
        }
        Ok(())
    }
}

/// The GPUs to check: `--gpu` names (and the preset of `--gpus 64xh100-sxm`), else every preset.
pub(super) fn resolve_gpus(f: &Scenario) -> Result<(Vec<GpuSpec>, bool)> {
    let mut names: Vec<String> = f.gpu.as_ref().map(|n| n.0.clone()).unwrap_or_default();
    if let Some(g) = f.gpus.as_ref().and_then(|g| g.gpu.clone()) {
        if !names.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(&g)) {
            return Err(Error::conflict(
                format!("--gpus names {g} but --gpu names {}", names.join(",")),
                "name the GPU once: --gpus 64xh100-sxm, or --gpus 64 --gpu h100-sxm",
            ));
        }
        if names.is_empty() {
            names.push(g);
        }
    }
    if names.is_empty() {
        return Ok((GpuSpec::all()?, false));
    }
    let mut out: Vec<GpuSpec> = Vec::new();
    for n in &names {
        let g = GpuSpec::preset(n)?;
        if !out.iter().any(|o| o.name == g.name) {
            out.push(g);
        }
    }
    Ok((out, true))
}

/// Exactly one model source; none: a 1B-parameter model.
pub(super) fn resolve_model(f: &Scenario) -> Result<ResolvedModel> {
    let sources: Vec<&str> = [
        ("--params", f.params.is_some()),
        ("--model", f.model.is_some()),
        ("--hf-config", f.hf_config.is_some()),
        ("--model-file", f.model_file.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| *k)
    .collect();
    if sources.len() > 1 {
        return Err(Error::conflict(
            format!("{} each name a model", sources.join(" and ")),
            "give one of --params, --model, --hf-config, --model-file",
        ));
    }
    let (mut spec, forced) = if let Some(p) = f.params {
        (derive::decoder_for_params(p.0), Some(p.0))
    } else if let Some(name) = &f.model {
        (presets::model(name)?, None)
    } else if let Some(file) = &f.hf_config {
        (hf::from_hf_text(&file.path(), &file.read()?)?, None)
    } else if let Some(file) = &f.model_file {
        (presets::model_from_text(&file.path(), &file.read()?)?, None)
    } else {
        let n = 1_000_000_000;
        (derive::decoder_for_params(n), Some(n))
    };
    if let Some(n) = f.image_size {
        crate::model::modules::set_image_size(&mut spec, n)?;
    }
    let overridden = apply_overrides(f, &mut spec)?;
    crate::model::validate::validate(&spec)?;
    check_model_magnitudes(&spec)?;
    let params = match forced {
        Some(n) if !overridden => n,
        _ => crate::model::params::count(&spec),
    };
    Ok(ResolvedModel { spec, params, derived: forced.is_some() })
}

fn apply_overrides(f: &Scenario, spec: &mut ModelSpec) -> Result<bool> {
    let mut any = false;
    if let Some(v) = f.vocab {
        match spec.tokens.as_mut() {
            Some(t) => t.vocab = v,
            None => {
                return Err(Error::conflict(
                    format!("--vocab {v}: model `{}` has no token embedding", spec.name),
                    "drop --vocab",
                ))
            }
        }
        any = true;
    }
    let shape_flags = [f.layers, f.hidden, f.heads, f.kv_heads, f.ffn];
    if shape_flags.iter().any(Option::is_some) && spec.stacks.is_empty() {
        return Err(Error::conflict(
            format!("model `{}` has no transformer stacks to reshape", spec.name),
            "drop --layers/--hidden/--heads/--kv-heads/--ffn (convolutional, UNet and LSTM models keep their shape)",
        ));
    }
    for s in &mut spec.stacks {
        if let Some(v) = f.layers {
            s.layers = v;
            any = true;
        }
        if let Some(v) = f.hidden {
            s.layer.hidden = v;
            any = true;
        }
        if let Some(v) = f.heads {
            s.layer.attention.heads = v;
            // an explicit head_dim no longer matches a new head count
            s.layer.attention.head_dim = None;
            any = true;
        }
        if let Some(v) = f.kv_heads {
            s.layer.attention.kv_heads = Some(v);
            any = true;
        }
        if let Some(v) = f.ffn {
            s.layer.mlp.ffn = v;
            any = true;
        }
    }
    if let (Some(h), Some(t)) = (f.hidden, spec.tokens.as_mut()) {
        t.dim = h;
    }
    Ok(any)
}

/// Model shapes within the bounds every face states (model files and HF configs can carry
/// any number).
fn check_model_magnitudes(spec: &ModelSpec) -> Result<()> {
    let too_large = |what: String, value: u64, max: u64| {
        Error::too_large(
            what,
            value,
            bound_text(max),
            "a model this size is not physically meaningful; check the model file or flags",
        )
    };
    if let Some(t) = &spec.tokens {
        if t.vocab > bounds::VOCAB {
            return Err(too_large(format!("model `{}` vocabulary", spec.name), t.vocab, bounds::VOCAB));
        }
        if t.dim > bounds::HIDDEN {
            return Err(too_large(format!("model `{}` embedding width", spec.name), t.dim, bounds::HIDDEN));
        }
    }
    for s in &spec.stacks {
        let l = &s.layer;
        for (what, v, max) in [
            ("layers", s.layers, bounds::LAYERS),
            ("hidden size", l.hidden, bounds::HIDDEN),
            ("attention heads", l.attention.heads, bounds::HEADS),
            ("MLP width", l.mlp.ffn, bounds::FFN),
            ("experts", l.mlp.experts, bounds::HEADS),
        ] {
            if v > max {
                return Err(too_large(format!("stack `{}` {what}", s.name), v, max));
            }
        }
    }
    // Before the exact integer count: a float upper bound of the stacks' parameters.
    let rough: f64 = spec
        .stacks
        .iter()
        .map(|s| {
            let l = &s.layer;
            let (h, heads) = (l.hidden as f64, l.attention.heads as f64);
            let attn = 4.0 * h * h.max(heads * l.attention.head_dim.unwrap_or(1) as f64);
            let mlp = 3.0 * h * l.mlp.ffn as f64 * l.mlp.experts.max(1) as f64 + h * l.mlp.experts as f64;
            s.layers as f64 * (attn + mlp + 16.0 * h)
        })
        .sum::<f64>()
        + spec.tokens.as_ref().map_or(0.0, |t| 2.0 * t.vocab as f64 * t.dim as f64);
    if rough > 4.0 * bounds::PARAMS as f64 {
        return Err(Error::too_large(
            format!("model `{}` parameter count", spec.name),
            format!("about {rough:.3e}"),
            bound_text(bounds::PARAMS),
            "check the model's shape",
        ));
    }
    let params = crate::model::params::count(spec);
    if params > bounds::PARAMS {
        return Err(Error::too_large(
            format!("model `{}` parameter count", spec.name),
            params,
            bound_text(bounds::PARAMS),
            "check the model's shape",
        ));
    }
    Ok(())
}

/// The framework profile `framework` / `framework-version` name (`presets/frameworks/*.toml`).
pub(super) fn resolve_profile(f: &Scenario) -> Result<FrameworkProfile> {
    FrameworkProfile::load(f.framework.unwrap_or_default(), f.framework_version.as_deref())
}

pub(super) fn resolve_setup(f: &Scenario, model: &ModelSpec) -> Result<Setup> {
    let phase = f.phase.unwrap_or_default();
    let profile = resolve_profile(f)?;
    // Settings not given take the framework profile's defaults, then memplan's.
    let precision = f.precision.or(profile.precision).unwrap_or_default();
    let recompute = f.recompute.unwrap_or_default();
    if phase == Phase::Train {
        profile.check_recompute(recompute)?;
    }
    // Default sequence: 2048, capped by the first token stack's learned positions.
    let max_pos = model
        .stacks
        .iter()
        .find(|s| matches!(s.input, StackInput::Tokens))
        .and_then(|s| match s.positions {
            Positions::Learned { max, .. } => Some(max),
            _ => None,
        })
        .or_else(|| crate::model::modules::default_seq(model));
    let seq = match f.seq {
        Some(s) => s.0,
        None => max_pos.map_or(2048, |m| m.min(2048)),
    };
    let tgt_max =
        model.stacks.iter().find(|s| s.length == crate::model::StackLength::Tgt).and_then(|s| match s.positions {
            Positions::Learned { max, .. } => Some(max),
            _ => None,
        });
    let tgt_seq = match f.tgt_seq {
        Some(s) => s.0,
        None => (seq / 4).max(1).min(tgt_max.unwrap_or(u64::MAX)),
    };
    // Learned absolute positions end at their table: HF's embedding lookup fails past it.
    for st in &model.stacks {
        if let (Positions::Learned { max, .. }, StackInput::Tokens) = (&st.positions, &st.input) {
            let (flag, len) =
                if st.length == crate::model::StackLength::Tgt { ("--tgt-seq", tgt_seq) } else { ("--seq", seq) };
            if len > *max {
                return Err(Error::invalid(
                    flag,
                    len,
                    format!(
                        "at most the {max} positions `{}` learned for its {} stack (models with rotary or relative positions take any length)",
                        model.name, st.name
                    ),
                ));
            }
        }
    }
    let batch = match (f.max_batch, phase) {
        (Some(m), Phase::Inference) => {
            if let Some(b) = f.batch.filter(|b| b.0 != 1 && *b != m) {
                return Err(Error::conflict(
                    format!("--batch {} and --max-batch {} both set the concurrent sequences", b.0, m.0),
                    "give one of them",
                ));
            }
            m.0
        }
        (Some(m), Phase::Train) => {
            return Err(Error::conflict(
                format!("--max-batch {} applies to --phase inference", m.0),
                "use --batch for training",
            ))
        }
        (None, _) => f.batch.map_or(1, |b| b.0),
    };
    check_tokens(batch, seq.max(tgt_seq))?;
    let has_decoder = model.stacks.iter().any(|s| s.causal);
    let inference_only = [
        ("--weights", f.weights.is_some()),
        ("--kv-dtype", f.kv_dtype.is_some()),
        ("--context", f.context.is_some()),
        ("--block-size", f.block_size.is_some()),
        ("--kv-cache", f.kv_cache == Some(true)),
    ];
    if phase == Phase::Train {
        if let Some((flag, _)) = inference_only.iter().find(|(_, on)| *on) {
            return Err(Error::conflict(
                format!("{flag} applies to --phase inference"),
                "add --phase inference, or use --finetune qlora for quantized training",
            ));
        }
    }
    let context = f.context.map(|c| c.0);
    if let Some(c) = context {
        if c < seq {
            return Err(Error::invalid("--context", c, format!("at least the prompt length --seq {seq}")));
        }
        check_tokens(batch, c)?;
    }
    let weights = match f.weights {
        None => {
            if f.group_size.is_some() || f.scale_dtype.is_some() {
                return Err(Error::conflict(
                    "--group-size/--scale-dtype need --weights",
                    "add --weights int4 (or int8, nf4, fp8)",
                ));
            }
            None
        }
        Some(w) => {
            let mut q = WeightQuant::default_for(w.0);
            if let Some(g) = f.group_size {
                q.group_size = g;
            }
            if let Some(d) = f.scale_dtype {
                q.scale_dtype = d.0;
            }
            q.double_quant = f.double_quant.unwrap_or(false);
            Some(q)
        }
    };
    let mode = f.finetune.unwrap_or_default();
    let lora_given = [
        ("--lora-rank", f.lora_rank.is_some() && f.lora_rank != Some(8)),
        ("--lora-targets", f.lora_targets.as_deref().is_some_and(|t| t != "q,k,v,o")),
        ("--lora-dropout", f.lora_dropout.is_some_and(|d| d != 0.0)),
    ];
    if mode == FinetuneMode::Full {
        if let Some((flag, _)) = lora_given.iter().find(|(_, on)| *on) {
            return Err(Error::conflict(
                format!("{flag} applies to LoRA fine-tuning"),
                "add --finetune lora (or qlora), or drop it",
            ));
        }
    }
    if mode != FinetuneMode::Qlora && phase == Phase::Train && f.paged_optimizer == Some(true) {
        return Err(Error::conflict("--paged-optimizer applies to --finetune qlora", "add --finetune qlora"));
    }
    let targets = f.lora_targets.clone().unwrap_or_else(|| "q,k,v,o".into());
    let lora = LoraConfig {
        rank: f.lora_rank.unwrap_or(8),
        alpha: f.lora_alpha.unwrap_or(16.0),
        targets: LoraTargets::parse(&targets).map_err(|e| Error::invalid("--lora-targets", &targets, e))?,
        dropout: f.lora_dropout.unwrap_or(0.0),
        adapter_dtype: crate::dtype::DType::Fp32,
    };
    let finetune = match mode {
        FinetuneMode::Full => Finetune::Full,
        FinetuneMode::Lora => Finetune::Lora(lora),
        FinetuneMode::Qlora => {
            if !matches!(precision.activation_dtype(), crate::dtype::DType::Bf16 | crate::dtype::DType::Fp16) {
                return Err(Error::conflict(
                    format!("QLoRA with --precision {} (fp32 base weights)", precision.name()),
                    "QLoRA keeps NF4 base weights and computes in 16 bits: use --precision bf16 or fp16",
                ));
            }
            Finetune::Qlora {
                lora,
                double_quant: f.double_quant.unwrap_or(false),
                paged_optimizer: f.paged_optimizer.unwrap_or(false),
            }
        }
    };
    if let Some(l) = finetune.lora() {
        if phase == Phase::Inference {
            return Err(Error::conflict("--finetune applies to training", "drop --finetune for --phase inference"));
        }
        crate::memory::finetune::validate_lora(model, l).map_err(|(reason, hint)| Error::conflict(reason, hint))?;
        if !model.modules.is_empty() {
            return Err(Error::conflict(
                format!("--finetune {} with model `{}`: LoRA is modelled for transformer stacks", finetune.name(), model.name),
                "its convolutional, UNet or LSTM modules can train fully (--finetune full) or stay frozen (trainable = false)",
            ));
        }
    }
    if weights.is_some() && !model.modules.is_empty() {
        return Err(Error::conflict(
            format!(
                "--weights with model `{}`: quantized weights are modelled for transformer layer matrices",
                model.name
            ),
            "drop --weights; convolutional, UNet and LSTM weights stay in the precision's dtype",
        ));
    }
    Ok(Setup {
        phase,
        precision,
        optimizer: f.optimizer.unwrap_or_default(),
        optimizer_impl: f.optimizer_impl.or(profile.optimizer_impl).unwrap_or_default(),
        micro_batch: batch,
        seq,
        tgt_seq,
        recompute,
        attention: f.attention.or(profile.attention).unwrap_or_default(),
        dropout: f.dropout.map(|t| t.0),
        kv_cache: f.kv_cache.unwrap_or(has_decoder),
        runtime: f.runtime.unwrap_or_default(),
        capacity_factor: f.capacity_factor.unwrap_or(1.0),
        finetune,
        weights,
        kv_dtype: f.kv_dtype.map(|d| d.0),
        context,
        kv_block: f.block_size,
        generate_logits: None,
        mechanisms: profile.mechanisms,
    })
}

/// Tokens in one micro-batch on one GPU stay within 2^32.
fn check_tokens(batch: u64, seq: u64) -> Result<()> {
    match batch.checked_mul(seq) {
        Some(t) if t <= bounds::TOKENS_PER_MICROBATCH => Ok(()),
        _ => Err(Error::too_large(
            format!("micro-batch {batch} × sequence {seq} tokens"),
            (batch as u128 * seq as u128).to_string(),
            format!("{} tokens per micro-batch", bound_text(bounds::TOKENS_PER_MICROBATCH)),
            "use a smaller --batch or --seq (--context)",
        )),
    }
}

pub(super) fn resolve_plan(f: &Scenario, model: &ModelSpec, setup: &Setup) -> Result<ParallelPlan> {
    let (tp, pp, cp) = (f.tp.unwrap_or(1), f.pp.unwrap_or(1), f.cp.unwrap_or(1));
    let inner = tp.checked_mul(pp).and_then(|x| x.checked_mul(cp)).filter(|x| *x <= bounds::GPUS).ok_or_else(|| {
        Error::too_large(format!("tp·pp·cp = {tp}·{pp}·{cp}"), "", bound_text(bounds::GPUS), "use smaller degrees")
    })?;
    let gpus = f.gpus.as_ref().map(|g| g.count);
    let dp = match (f.dp, gpus) {
        (Some(dp), Some(g)) if dp.checked_mul(inner) != Some(g) => {
            return Err(Error::conflict(
                format!("--gpus {g} but dp·tp·pp·cp = {dp}·{tp}·{pp}·{cp} = {}", dp as u128 * inner as u128),
                "make the degrees multiply to the GPU count, or drop --dp to derive it",
            ))
        }
        (Some(dp), _) => dp,
        (None, Some(g)) => {
            if g % inner != 0 {
                return Err(Error::invalid("--gpus", g, format!("a multiple of tp·pp·cp = {inner}")));
            }
            g / inner
        }
        (None, None) => 1,
    };
    if dp.checked_mul(inner).is_none_or(|n| n > bounds::GPUS) {
        return Err(Error::too_large(
            format!("dp·tp·pp·cp = {dp}·{tp}·{pp}·{cp} GPUs"),
            dp as u128 * inner as u128,
            bound_text(bounds::GPUS),
            "use smaller degrees",
        ));
    }
    let microbatches = match (f.microbatches, f.global_batch) {
        (Some(m), Some(gb)) => {
            let gb = global_sequences(gb, setup.seq)?;
            let per_step = dp as u128 * setup.micro_batch as u128 * m as u128;
            if gb as u128 != per_step {
                return Err(Error::conflict(
                    format!(
                        "--global-batch {gb} but dp × batch × microbatches = {dp} × {} × {m} = {per_step}",
                        setup.micro_batch
                    ),
                    "drop --microbatches to derive it from the global batch",
                ));
            }
            m
        }
        (Some(m), None) => m,
        (None, Some(gb)) => {
            let gb = global_sequences(gb, setup.seq)?;
            let per_step = dp as u128 * setup.micro_batch as u128;
            if !(gb as u128).is_multiple_of(per_step) {
                return Err(Error::invalid(
                    "--global-batch",
                    gb,
                    format!("a positive multiple of dp × batch = {per_step}"),
                ));
            }
            let m = (gb as u128 / per_step) as u64;
            if m > bounds::MICROBATCHES {
                return Err(Error::too_large(
                    format!("--global-batch {gb} / (dp {dp} × batch {}) microbatches", setup.micro_batch),
                    m,
                    bound_text(bounds::MICROBATCHES),
                    "raise --batch or --dp",
                ));
            }
            m
        }
        (None, None) => pp,
    };
    let plan = ParallelPlan {
        dp,
        tp,
        pp,
        cp,
        ep: f.ep.unwrap_or(1),
        // Not given: the framework's own rule (torchtitan's TP always shards the sequence).
        sp: f.sp.unwrap_or(tp > 1 && resolve_profile(f)?.tp_sequence_parallel),
        zero: f.zero.map_or(0, |z| z.0),
        fsdp: f.fsdp.map(|m| m.0),
        distributed_optimizer: f.distributed_optimizer.unwrap_or(false),
        offload: f.offload.unwrap_or_default(),
        schedule: f.schedule.unwrap_or_default(),
        vpp: f.vpp.unwrap_or(1),
        microbatches,
        gpus_per_node: f.gpus_per_node.unwrap_or(8),
        first_stage_layers: f.first_stage_layers,
        last_stage_layers: f.last_stage_layers,
    };
    if plan.uneven() && plan.pp < 2 {
        return Err(Error::conflict(
            "--first-stage-layers/--last-stage-layers need pipeline parallelism",
            "add --pp 2 or more, or drop them",
        ));
    }
    if plan.vpp > 1 && plan.schedule != crate::parallel::Schedule::Interleaved {
        return Err(Error::conflict(
            format!("--vpp {} needs --schedule interleaved", plan.vpp),
            "add --schedule interleaved, or drop --vpp",
        ));
    }
    plan.validate(model, setup.seq)?;
    Ok(plan)
}

/// A global batch in sequences (tokens are divided by the sequence length).
pub(super) fn global_sequences(gb: GlobalBatch, seq: u64) -> Result<u64> {
    match gb {
        GlobalBatch::Sequences(n) => Ok(n),
        GlobalBatch::Tokens(t) => {
            if t % seq != 0 || t < seq {
                return Err(Error::invalid(
                    "--global-batch",
                    format!("{t}tok"),
                    format!("a token count divisible by --seq {seq}"),
                ));
            }
            Ok(t / seq)
        }
    }
}

/// What the scenario would allocate, in f64 (no overflow), before the exact integer estimate
/// runs: every tensor the ledger sizes is at most tokens × a width × 8 bytes, every state at
/// most the parameters × 40 bytes. Beyond 2^62 bytes the scenario is refused with the product
/// that made it large, so the integer arithmetic below never nears u64's range.
pub(super) fn check_magnitudes(model: &ModelSpec, setup: &Setup, plan: &ParallelPlan) -> Result<()> {
    const LIMIT: f64 = (1u64 << 62) as f64;
    let b = setup.micro_batch as f64;
    let s = setup.seq.max(setup.tgt_seq).max(setup.context.unwrap_or(0)) as f64;
    let layers: f64 = model.stacks.iter().map(|st| st.layers as f64).sum::<f64>() + 8.0;
    let mut widest = 1.0f64;
    let mut scores = 0.0f64;
    for st in &model.stacks {
        let l = &st.layer;
        let experts = l.mlp.experts.max(1) as f64 * setup.capacity_factor.max(1.0);
        widest = widest.max(l.hidden as f64).max(l.mlp.ffn as f64 * experts).max(l.attention.heads as f64 * 512.0);
        // materialised attention scores (eager, or CPU SDPA's math path): b · heads · s²
        if setup.attention == crate::memory::AttentionKernel::Eager || setup.runtime == crate::memory::Runtime::Cpu {
            scores = scores.max(b * l.attention.heads as f64 * s * s * 8.0);
        }
    }
    if let Some(t) = &model.tokens {
        widest = widest.max(t.vocab as f64).max(t.dim as f64);
    }
    // Module models (ResNet, UNet, VAE): an image's pixels times a generous channel count.
    let image = model.modules.iter().filter_map(|m| m.image()).max().unwrap_or(0) as f64;
    let pixels = image * image * 4096.0;
    let activations = b * s * widest * 16.0 * layers + scores * layers + b * pixels * 16.0;
    let states = crate::model::params::count(model) as f64 * 40.0;
    let microbatches = plan.microbatches.max(plan.pp) as f64;
    let total = activations * microbatches.min(plan.pp as f64 * 2.0).max(1.0) + states;
    if total.is_finite() && total <= LIMIT {
        return Ok(());
    }
    let what = if scores * layers >= activations / 2.0 {
        format!(
            "attention scores of micro-batch {} × sequence {} over {} layers",
            setup.micro_batch,
            s as u64,
            layers as u64 - 8
        )
    } else if states >= total / 2.0 {
        "the model states".to_string()
    } else {
        format!("activations of micro-batch {} × sequence {}", setup.micro_batch, s as u64)
    };
    Err(Error::too_large(
        what,
        format!("about {total:.3e} bytes"),
        "2^62 bytes (4 EiB), the most memplan sizes",
        "use a smaller --batch, --seq or model (or --attention flash)",
    ))
}

/// Fold a DeepSpeed config into the scenario: its values fill settings not given; a setting
/// given with another value is an error naming both.
fn apply_deepspeed_config(s: &mut Scenario) -> Result<()> {
    let Some(file) = s.deepspeed_config.clone() else { return Ok(()) };
    let ds = read_deepspeed_config(&file.path(), &file.read()?)?;
    let clash = |flag: &str, given: String, key: &str, found: String| {
        Error::conflict(
            format!("{flag} {given} disagrees with `{key}` = {found} in {}", file.label()),
            format!("drop {flag} (the DeepSpeed config sets it), or change the config"),
        )
    };
    if let Some(b) = s.batch.filter(|b| b.0 != ds.micro_batch) {
        return Err(clash("--batch", b.0.to_string(), "train_micro_batch_size_per_gpu", ds.micro_batch.to_string()));
    }
    if let Some(m) = s.microbatches.filter(|m| *m != ds.accumulation) {
        return Err(clash("--microbatches", m.to_string(), "gradient_accumulation_steps", ds.accumulation.to_string()));
    }
    if let Some(d) = s.dp.filter(|d| *d != ds.dp) {
        return Err(clash("--dp", d.to_string(), "train_batch_size / (micro-batch × accumulation)", ds.dp.to_string()));
    }
    if let Some(z) = s.zero.filter(|z| z.0 != ds.zero) {
        return Err(clash("--zero", z.0.to_string(), "zero_optimization.stage", ds.zero.to_string()));
    }
    if let Some(o) = s.offload.filter(|o| *o != ds.offload) {
        return Err(clash(
            "--offload",
            super::value::Value::show(&o),
            "zero_optimization.offload_*.device",
            super::value::Value::show(&ds.offload),
        ));
    }
    if let Some(p) = s.precision.filter(|p| *p != ds.precision) {
        return Err(clash("--precision", p.name().into(), "bf16/fp16.enabled", ds.precision.name().into()));
    }
    if s.global_batch.is_some() {
        return Err(Error::conflict(
            format!("--global-batch with --deepspeed-config {}", file.label()),
            "the config's train_batch_size is the global batch; drop --global-batch",
        ));
    }
    if s.fsdp.is_some() || s.distributed_optimizer == Some(true) {
        return Err(Error::conflict(
            format!("--fsdp/--distributed-optimizer with --deepspeed-config {}", file.label()),
            "DeepSpeed shards with ZeRO: drop --fsdp/--distributed-optimizer",
        ));
    }
    s.batch = Some(super::value::Count(ds.micro_batch));
    s.microbatches = Some(ds.accumulation);
    s.dp = Some(ds.dp);
    s.zero = Some(super::settings::ZeroStage(ds.zero));
    s.offload = Some(ds.offload);
    s.precision = Some(ds.precision);
    Ok(())
}

/// Read `from-config` (a launch config `memplan plan --emit` writes) with its text; a file's
/// companion beside it (ds_config.json, fsdp_config.json) is read too.
fn read_from_config(s: &Scenario) -> Result<Option<(crate::plan::read::FromConfig, String)>> {
    use crate::plan::read::{self as rd, ConfigFormat};
    let Some(file) = &s.from_config else {
        if s.from_config_format.is_some() {
            return Err(Error::conflict("--from-config-format needs --from-config", "add --from-config FILE"));
        }
        return Ok(None);
    };
    let fixed = super::settings::plan_keys().iter().filter(|k| !matches!(**k, "from-config" | "from-config-format"));
    if let Some(k) = fixed.clone().find(|k| s.get(k).is_some()) {
        return Err(Error::conflict(
            format!("--{k} with --from-config {}: the config fixes the plan", file.label()),
            "drop the flag, or edit the config",
        ));
    }
    match file {
        FileArg::Path(path) => rd::read_file(path, s.from_config_format).map(Some),
        FileArg::Text { label, text } => {
            let format = s.from_config_format.or_else(|| rd::detect(text)).ok_or_else(|| {
                Error::invalid(
                    "--from-config",
                    label,
                    "a Megatron-LM or Megatron-DeepSpeed launcher, a DeepSpeed JSON, a torchtitan TOML or a Hugging Face FSDP launcher (or name it with --from-config-format)",
                )
            })?;
            let fc = match format {
                ConfigFormat::Megatron | ConfigFormat::MegatronDeepspeed => rd::megatron(label, text, None)?,
                ConfigFormat::Deepspeed => rd::deepspeed_json(label, text)?,
                ConfigFormat::Torchtitan => rd::torchtitan(label, text)?,
                ConfigFormat::Fsdp => rd::fsdp(label, text, None)?,
            };
            Ok(Some((fc, text.clone())))
        }
    }
}

/// The step settings a launch config fixes fill the settings not given; one given with another
/// value is an error naming both.
fn merge_from_config(s: &mut Scenario, fc: &crate::plan::read::FromConfig) -> Result<()> {
    use super::value::Value;
    let label = s.from_config.as_ref().map(FileArg::label).unwrap_or_default();
    let clash = |flag: &str, given: String, found: String| {
        Error::conflict(
            format!("--{flag} {given} disagrees with {found} in {label}"),
            format!("drop --{flag} (the config sets it), or change the config"),
        )
    };
    macro_rules! fill {
        ($field:ident, $key:literal, $value:expr) => {
            if let Some(v) = $value {
                match &s.$field {
                    Some(given) if given.show() != v.show() => return Err(clash($key, given.show(), v.show())),
                    _ => s.$field = Some(v),
                }
            }
        };
    }
    fill!(batch, "batch", Some(super::value::Count(fc.micro_batch)));
    fill!(seq, "seq", fc.seq.map(super::value::Count));
    fill!(precision, "precision", fc.precision);
    fill!(recompute, "recompute", fc.recompute);
    fill!(attention, "attention", fc.attention);
    fill!(optimizer, "optimizer", fc.optimizer);
    fill!(optimizer_impl, "optimizer-impl", fc.optimizer_impl);
    fill!(capacity_factor, "capacity-factor", fc.capacity_factor);
    // The config names its framework: its memory mechanisms apply (a launcher of the Hugging
    // Face Trainer is hf-trainer, or accelerate-fsdp when it shards with FSDP).
    use crate::plan::read::ConfigFormat;
    let framework = match fc.format {
        ConfigFormat::Megatron => Framework::Megatron,
        ConfigFormat::MegatronDeepspeed | ConfigFormat::Deepspeed => Framework::Deepspeed,
        ConfigFormat::Torchtitan => Framework::Torchtitan,
        ConfigFormat::Fsdp if fc.plan.fsdp.is_some() => Framework::AccelerateFsdp,
        ConfigFormat::Fsdp => Framework::HfTrainer,
    };
    match s.framework {
        Some(given) if given != framework && !(fc.format == ConfigFormat::Fsdp && given == Framework::Pytorch) => {
            return Err(clash("framework", given.to_string(), format!("a {framework} launch config")))
        }
        Some(_) => {}
        None => s.framework = Some(framework),
    }
    Ok(())
}

/// What a DeepSpeed config fixes.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepSpeedSettings {
    pub zero: u8,
    pub offload: Offload,
    pub micro_batch: u64,
    pub accumulation: u64,
    pub dp: u64,
    pub precision: Precision,
}

/// Read the fields of a DeepSpeed config that size memory, with the one DeepSpeed JSON reader
/// (`plan::read::deepspeed_json`, the keys `deepspeed/runtime/config.py` reads), then check
/// them against the scenario's bounds. Values of "auto" (filled in by the Hugging Face
/// integration at run time) cannot be sized and are errors.
pub fn read_deepspeed_config(path: &std::path::Path, text: &str) -> Result<DeepSpeedSettings> {
    let shown = path.display().to_string();
    let field = |key: &str, message: String| Error::Parse {
        path: path.to_path_buf(),
        line: None,
        field: Some(key.into()),
        message,
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    if !v.is_object() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            field: None,
            message: "expected a JSON object (a DeepSpeed config)".into(),
        });
    }
    // Precision switches DeepSpeed itself refuses: "auto", and both recipes at once.
    for key in ["bf16", "fp16"] {
        if v.pointer(&format!("/{key}/enabled")).and_then(serde_json::Value::as_str) == Some("auto") {
            return Err(field(
                &format!("{key}.enabled"),
                "\"auto\" is filled in by the Hugging Face Trainer at run time; give true or false".into(),
            ));
        }
    }
    let on = |key: &str| v.pointer(&format!("/{key}/enabled")).and_then(serde_json::Value::as_bool) == Some(true);
    if on("bf16") && on("fp16") {
        return Err(field("bf16.enabled", "bf16 and fp16 are both enabled; DeepSpeed allows one".into()));
    }
    // The sizes within the scenario's bounds before any product of them is taken.
    for (key, max) in
        [("train_micro_batch_size_per_gpu", bounds::BATCH), ("gradient_accumulation_steps", bounds::MICROBATCHES)]
    {
        if let Some(n) = v.get(key).and_then(serde_json::Value::as_u64).filter(|n| *n > max) {
            return Err(field(key, format!("{n} is larger than {}", bound_text(max))));
        }
    }
    let fc = crate::plan::read::deepspeed_json(&shown, text).map_err(|e| match e {
        // Name the value a bad stage holds, whatever its type.
        Error::Parse { field: Some(f), .. } if f == "zero_optimization.stage" => {
            let found = v.pointer("/zero_optimization/stage").map_or_else(String::new, |x| x.to_string());
            field("zero_optimization.stage", format!("expected 0, 1, 2 or 3, found {found}"))
        }
        other => other,
    })?;
    for (key, value, max) in [
        ("train_micro_batch_size_per_gpu", fc.micro_batch, bounds::BATCH),
        ("gradient_accumulation_steps", fc.plan.microbatches, bounds::MICROBATCHES),
        ("train_batch_size", fc.plan.dp, bounds::GPUS),
    ] {
        if value > max {
            let what = if key == "train_batch_size" { "data-parallel ranks" } else { "" };
            return Err(field(key, format!("{value} {what} is larger than {}", bound_text(max)).replace("  ", " ")));
        }
    }
    Ok(DeepSpeedSettings {
        zero: fc.plan.zero,
        offload: fc.plan.offload,
        micro_batch: fc.micro_batch,
        accumulation: fc.plan.microbatches,
        dp: fc.plan.dp,
        precision: fc.precision.unwrap_or(Precision::Fp32),
    })
}
