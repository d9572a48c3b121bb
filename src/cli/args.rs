//! Raw flags for `memplan estimate` and their validation into a model and a `Setup`.

use crate::error::{Error, Result};
use crate::memory::finetune::{Finetune, LoraConfig, LoraTargets, WeightFormat, WeightQuant};
use crate::memory::{
    AttentionKernel, Optimizer, OptimizerImpl, OverheadConfig, Phase, Precision, Recompute, Runtime, Setup,
};
use crate::model::{derive, hf, presets, ModelSpec, Positions, StackInput};
use crate::units::{parse_count, ByteUnits};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
    Markdown,
}

#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("source").args(["params", "model", "hf_config", "model_file"]).required(false)))]
pub struct ModelArgs {
    /// Parameter count (1b, 350m, 1.3B, 7.5b, 1e9): model states use it exactly; a LLaMA-style
    /// decoder shape is derived for activations and shown. Default when no model is given: 1b.
    #[arg(long)]
    pub params: Option<String>,
    /// A built-in model preset (`memplan presets list models`).
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// A local Hugging Face config.json.
    #[arg(long, value_name = "PATH")]
    pub hf_config: Option<PathBuf>,
    /// A model preset TOML file of your own.
    #[arg(long, value_name = "PATH")]
    pub model_file: Option<PathBuf>,
    /// Override the number of layers (every stack).
    #[arg(long)]
    pub layers: Option<u64>,
    /// Override the hidden size.
    #[arg(long)]
    pub hidden: Option<u64>,
    /// Override the attention heads.
    #[arg(long)]
    pub heads: Option<u64>,
    /// Override the key/value heads (GQA/MQA).
    #[arg(long)]
    pub kv_heads: Option<u64>,
    /// Override the MLP width.
    #[arg(long)]
    pub ffn: Option<u64>,
    /// Override the vocabulary size.
    #[arg(long)]
    pub vocab: Option<u64>,
}

#[derive(Args, Debug, Clone)]
pub struct SetupArgs {
    /// train: one optimizer step; inference: one forward pass.
    #[arg(long, value_enum, default_value = "train")]
    pub phase: PhaseArg,
    /// Precision recipe. amp = PyTorch autocast (fp32 weights/grads/states, 4+4+8 B/param);
    /// mixed = ZeRO/DeepSpeed (2+2+12); megatron-bf16 = 2+4+12; bf16/fp16 = everything in that dtype.
    #[arg(long, value_enum, default_value = "mixed-bf16")]
    pub precision: PrecisionArg,
    #[arg(long, value_enum, default_value = "adamw")]
    pub optimizer: OptimizerArg,
    /// PyTorch optimizer implementation (foreach = PyTorch's default on CUDA; it allocates one
    /// whole-model temporary in the step).
    #[arg(long, value_enum, default_value = "foreach")]
    pub optimizer_impl: OptimizerImplArg,
    /// Micro-batch per GPU (sequences).
    #[arg(long, default_value = "1")]
    pub batch: String,
    /// Sequence length (the encoder length for encoder-decoder models). Default: 2048, or the
    /// model's maximum positions when smaller.
    #[arg(long)]
    pub seq: Option<String>,
    /// Decoder length for encoder-decoder models. Default: seq / 4 (at most the model's maximum).
    #[arg(long)]
    pub tgt_seq: Option<String>,
    /// Image resolution (square) of models that read images (ResNet; Stable Diffusion: the image
    /// generated). Default: the model's own (224, 512, 1024).
    #[arg(long)]
    pub image_size: Option<u64>,
    /// Activation recomputation: none (default), selective (the attention core), full (each
    /// layer's input only). `memplan plan` searches all three unless this is given.
    #[arg(long, value_enum)]
    pub recompute: Option<RecomputeArg>,
    /// eager = materialised scores (O(s²)); flash = fused kernel (FlashAttention/SDPA).
    #[arg(long, value_enum, default_value = "flash")]
    pub attention: AttentionArg,
    /// Force dropout on (the model's probabilities). Default: the model's own config.
    #[arg(long, overrides_with = "no_dropout")]
    pub dropout: bool,
    /// Turn every dropout off.
    #[arg(long)]
    pub no_dropout: bool,
    /// Inference: count the KV cache of the whole sequence (default on for decoders).
    #[arg(long, overrides_with = "no_kv_cache")]
    pub kv_cache: bool,
    #[arg(long)]
    pub no_kv_cache: bool,
    /// Tensor rules of the runtime: cuda (default) or cpu (PyTorch on CPU keeps float dropout
    /// masks and runs SDPA's math path under attention dropout).
    #[arg(long, value_enum, default_value = "cuda")]
    pub runtime: RuntimeArg,
    /// MoE expert capacity factor: routed-token buffers are sized for this multiple of a balanced load.
    #[arg(long, default_value = "1.0")]
    pub capacity_factor: f64,
    /// Fine-tuning mode: full (every parameter trains), lora (frozen base, low-rank adapters),
    /// qlora (frozen NF4 base, adapters).
    #[arg(long, value_enum, default_value = "full")]
    pub finetune: FinetuneArg,
    /// LoRA rank r (adapter parameters r·(d_in + d_out) per adapted matrix).
    #[arg(long, default_value = "8")]
    pub lora_rank: u64,
    /// LoRA alpha (scaling α/r; accepted, changes no memory).
    #[arg(long, default_value = "16")]
    pub lora_alpha: f64,
    /// Adapted projections, comma-separated from q,k,v,o,gate,up,down (or `all`).
    #[arg(long, default_value = "q,k,v,o")]
    pub lora_targets: String,
    /// LoRA dropout (PEFT `lora_dropout`).
    #[arg(long, default_value = "0.0")]
    pub lora_dropout: f64,
    /// QLoRA: double quantization of the NF4 constants (0.127 instead of 0.5 bits per parameter).
    #[arg(long)]
    pub double_quant: bool,
    /// QLoRA: paged optimizer (optimizer states in paged host memory).
    #[arg(long)]
    pub paged_optimizer: bool,
    /// Inference: quantized weights for the layer matrices.
    #[arg(long, value_enum)]
    pub weights: Option<WeightsArg>,
    /// Values per quantization scale (default: int8 per channel, int4 128, nf4 64, fp8 per tensor).
    #[arg(long)]
    pub group_size: Option<u64>,
    /// dtype of the quantization scales (default fp16; fp32 for nf4 and fp8).
    #[arg(long, value_enum)]
    pub scale_dtype: Option<ScaleDtypeArg>,
    /// Inference: KV cache dtype (default: the activation dtype).
    #[arg(long, value_enum)]
    pub kv_dtype: Option<KvDtypeArg>,
    /// Inference: concurrent sequences (the batch of the KV cache); same as --batch.
    #[arg(long)]
    pub max_batch: Option<String>,
    /// Inference: tokens per sequence kept in the KV cache, prompt + generated (default: --seq).
    #[arg(long)]
    pub context: Option<String>,
    /// Inference: paged KV cache block size in tokens (vLLM uses 16); sequences round up to blocks.
    #[arg(long)]
    pub block_size: Option<u64>,
    /// CUDA context size (e.g. 512MiB, 1GiB).
    #[arg(long, default_value = "512MiB")]
    pub cuda_context: String,
    /// Allocator fragmentation margin as a fraction of the live peak.
    #[arg(long, default_value = "0.05")]
    pub fragmentation: f64,
}

#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Check one GPU preset (exit 1 if it does not fit). Default: list every preset.
    #[arg(long)]
    pub gpu: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Display units: gib (2^30, default) or gb (10^9).
    #[arg(long, value_enum, default_value = "gib")]
    pub units: UnitsArg,
    /// Show the per-tensor activation ledger.
    #[arg(long)]
    pub ledger: bool,
}

#[derive(Args, Debug, Clone)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub setup: SetupArgs,
    #[command(flatten)]
    pub plan: PlanArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Parallelism flags shared by `estimate` (and the planner).
#[derive(Args, Debug, Clone)]
pub struct PlanArgs {
    /// Data-parallel degree. Default: 1, or --gpus / (tp·pp·cp) when --gpus is given.
    #[arg(long)]
    pub dp: Option<u64>,
    /// Tensor-parallel degree (Megatron: heads and MLP width split; keep it within a node).
    #[arg(long, default_value = "1")]
    pub tp: u64,
    /// Megatron sequence parallelism (needs --tp 2 or more).
    #[arg(long)]
    pub sp: bool,
    /// Pipeline-parallel stages.
    #[arg(long, default_value = "1")]
    pub pp: u64,
    /// Pipeline schedule.
    #[arg(long, value_enum, default_value = "1f1b")]
    pub schedule: ScheduleArg,
    /// Virtual stages (model chunks) per pipeline rank, for --schedule interleaved.
    #[arg(long, default_value = "1")]
    pub vpp: u64,
    /// Microbatches per step (gradient accumulation when pp = 1). Default: derived from
    /// --global-batch, else pp.
    #[arg(long)]
    pub microbatches: Option<u64>,
    /// Global batch in sequences; microbatches = global / (dp · batch).
    #[arg(long)]
    pub global_batch: Option<u64>,
    /// Context-parallel degree (sequence split across ranks, ring attention).
    #[arg(long, default_value = "1")]
    pub cp: u64,
    /// Expert-parallel degree for MoE models.
    #[arg(long, default_value = "1")]
    pub ep: u64,
    /// ZeRO stage over the data-parallel ranks: 1 optimizer states, 2 + gradients, 3 + weights.
    #[arg(long, default_value = "0", value_parser = clap::value_parser!(u8).range(0..=3))]
    pub zero: u8,
    /// PyTorch FSDP sharding: full (≈ ZeRO-3), grad-op (≈ ZeRO-2), hybrid (full within a node).
    #[arg(long, value_enum)]
    pub fsdp: Option<FsdpArg>,
    /// Megatron's distributed optimizer (optimizer states sharded over dp).
    #[arg(long)]
    pub distributed_optimizer: bool,
    /// ZeRO-Offload (optimizer) or ZeRO-Infinity (params): what leaves the GPU for host memory.
    #[arg(long, value_enum, default_value = "none")]
    pub offload: OffloadArg,
    /// Total GPUs; checked against dp·tp·pp·cp.
    #[arg(long)]
    pub gpus: Option<u64>,
    /// GPUs per node (FSDP hybrid shards within a node).
    #[arg(long, default_value = "8")]
    pub gpus_per_node: u64,
    /// Read ZeRO stage, offload, micro-batch, accumulation, data-parallel size and precision from
    /// a DeepSpeed JSON config (as `memplan plan --emit deepspeed` writes).
    #[arg(long, value_name = "FILE")]
    pub deepspeed_config: Option<PathBuf>,
    /// Read the plan, micro-batch, sequence, precision and recomputation from a launch config
    /// (what `memplan plan --emit` writes: a Megatron-LM or Megatron-DeepSpeed launcher, a
    /// DeepSpeed JSON, a torchtitan TOML or a Hugging Face FSDP launcher); its values win over
    /// the setup flags. The model still comes from --model; the config's dimensions must match.
    #[arg(long, value_name = "FILE", conflicts_with = "deepspeed_config")]
    pub from_config: Option<PathBuf>,
    /// The format of --from-config when detection is not enough: megatron, megatron-deepspeed,
    /// deepspeed, torchtitan, fsdp.
    #[arg(long, value_name = "FORMAT", requires = "from_config")]
    pub from_config_format: Option<String>,
}

/// What a DeepSpeed config fixes.
#[derive(Clone, Debug, PartialEq)]
pub struct DeepSpeedSettings {
    pub zero: u8,
    pub offload: crate::parallel::Offload,
    pub micro_batch: u64,
    pub accumulation: u64,
    pub dp: u64,
    pub precision: Precision,
}

/// Read the fields of a DeepSpeed config that size memory. Values of "auto" (filled in by the
/// Hugging Face integration at run time) cannot be sized and are errors.
pub fn read_deepspeed_config(path: &std::path::Path) -> Result<DeepSpeedSettings> {
    let text = crate::model::presets::read(path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    let field = |key: &str, message: String| Error::Parse {
        path: path.to_path_buf(),
        line: None,
        field: Some(key.into()),
        message,
    };
    let int = |pointer: &str, key: &str, default: Option<u64>, allow_zero: bool| -> Result<u64> {
        match v.pointer(pointer) {
            None | Some(serde_json::Value::Null) => default.ok_or_else(|| field(key, "missing required field".into())),
            Some(serde_json::Value::String(s)) if s == "auto" => {
                Err(field(key, "\"auto\" is filled in by the Hugging Face Trainer at run time; give a number".into()))
            }
            Some(x) => x
                .as_u64()
                .filter(|n| allow_zero || *n > 0)
                .ok_or_else(|| field(key, format!("expected a positive integer, found {x}"))),
        }
    };
    let micro_batch = int("/train_micro_batch_size_per_gpu", "train_micro_batch_size_per_gpu", None, false)?;
    let accumulation = int("/gradient_accumulation_steps", "gradient_accumulation_steps", Some(1), false)?;
    let train_batch = int("/train_batch_size", "train_batch_size", Some(micro_batch * accumulation), false)?;
    if train_batch % (micro_batch * accumulation) != 0 {
        return Err(field(
            "train_batch_size",
            format!("{train_batch} is not a multiple of micro-batch × accumulation = {}", micro_batch * accumulation),
        ));
    }
    let zero = int("/zero_optimization/stage", "zero_optimization.stage", Some(0), true)?;
    if zero > 3 {
        return Err(field("zero_optimization.stage", format!("expected 0, 1, 2 or 3, found {zero}")));
    }
    let device = |pointer: &str| {
        v.pointer(pointer).and_then(serde_json::Value::as_str).is_some_and(|d| d == "cpu" || d == "nvme")
    };
    let offload = if device("/zero_optimization/offload_param/device") {
        crate::parallel::Offload::Params
    } else if device("/zero_optimization/offload_optimizer/device") {
        crate::parallel::Offload::Optimizer
    } else {
        crate::parallel::Offload::None
    };
    let enabled = |pointer: &str| v.pointer(pointer).and_then(serde_json::Value::as_bool).unwrap_or(false);
    let precision = if enabled("/bf16/enabled") {
        Precision::MixedBf16
    } else if enabled("/fp16/enabled") {
        Precision::MixedFp16
    } else {
        Precision::Fp32
    };
    Ok(DeepSpeedSettings {
        zero: zero as u8,
        offload,
        micro_batch,
        accumulation,
        dp: train_batch / (micro_batch * accumulation),
        precision,
    })
}

impl PlanArgs {
    pub fn resolve(&self, model: &ModelSpec, setup: &Setup) -> Result<crate::parallel::ParallelPlan> {
        if let Some(path) = &self.deepspeed_config {
            let ds = read_deepspeed_config(path)?;
            let plan = crate::parallel::ParallelPlan {
                dp: ds.dp,
                zero: ds.zero,
                offload: ds.offload,
                microbatches: ds.accumulation,
                gpus_per_node: self.gpus_per_node,
                ..crate::parallel::ParallelPlan::single()
            };
            plan.validate(model, setup.seq)?;
            return Ok(plan);
        }
        let inner = self.tp * self.pp * self.cp;
        if inner == 0 {
            return Err(Error::invalid("--tp/--pp/--cp", 0, "positive degrees"));
        }
        let dp = match (self.dp, self.gpus) {
            (Some(dp), Some(g)) if dp * inner != g => {
                return Err(Error::conflict(
                    format!("--gpus {g} but dp·tp·pp·cp = {dp}·{}·{}·{} = {}", self.tp, self.pp, self.cp, dp * inner),
                    "make the degrees multiply to the GPU count, or drop --dp to derive it",
                ))
            }
            (Some(dp), _) => dp,
            (None, Some(g)) => {
                if g == 0 || g % inner != 0 {
                    return Err(Error::invalid("--gpus", g, format!("a positive multiple of tp·pp·cp = {inner}")));
                }
                g / inner
            }
            (None, None) => 1,
        };
        let microbatches = match (self.microbatches, self.global_batch) {
            (Some(m), _) => m,
            (None, Some(gb)) => {
                let per_step = dp * setup.micro_batch;
                if gb == 0 || gb % per_step != 0 {
                    return Err(Error::invalid(
                        "--global-batch",
                        gb,
                        format!("a positive multiple of dp × batch = {per_step}"),
                    ));
                }
                gb / per_step
            }
            (None, None) => self.pp,
        };
        let plan = crate::parallel::ParallelPlan {
            dp,
            tp: self.tp,
            pp: self.pp,
            cp: self.cp,
            ep: self.ep,
            sp: self.sp,
            zero: self.zero,
            fsdp: self.fsdp.map(Into::into),
            distributed_optimizer: self.distributed_optimizer,
            offload: self.offload.into(),
            schedule: self.schedule.into(),
            vpp: self.vpp,
            microbatches,
            gpus_per_node: self.gpus_per_node,
            first_stage_layers: None,
            last_stage_layers: None,
        };
        plan.validate(model, setup.seq)?;
        Ok(plan)
    }
}

macro_rules! value_enum {
    ($name:ident => $target:ty { $($(#[$meta:meta])* $variant:ident => $value:expr),* $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
        pub enum $name { $($(#[$meta])* $variant),* }
        impl From<$name> for $target {
            fn from(v: $name) -> $target { match v { $($name::$variant => $value),* } }
        }
    };
}

value_enum!(PhaseArg => Phase { Train => Phase::Train, Inference => Phase::Inference });
value_enum!(PrecisionArg => Precision {
    Fp32 => Precision::Fp32, Bf16 => Precision::Bf16, Fp16 => Precision::Fp16,
    AmpBf16 => Precision::AmpBf16, AmpFp16 => Precision::AmpFp16,
    MixedBf16 => Precision::MixedBf16, MixedFp16 => Precision::MixedFp16,
    MegatronBf16 => Precision::MegatronBf16, MegatronFp16 => Precision::MegatronFp16,
});
value_enum!(OptimizerArg => Optimizer {
    Adamw => Optimizer::Adamw, Adam => Optimizer::Adam, Sgd => Optimizer::Sgd,
    SgdMomentum => Optimizer::SgdMomentum, Adafactor => Optimizer::Adafactor,
    Adamw8bit => Optimizer::Adamw8bit, Lion => Optimizer::Lion,
});
value_enum!(OptimizerImplArg => OptimizerImpl { Foreach => OptimizerImpl::Foreach, Fused => OptimizerImpl::Fused, ForLoop => OptimizerImpl::ForLoop });
value_enum!(RecomputeArg => Recompute { None => Recompute::None, Selective => Recompute::Selective, Full => Recompute::Full });
value_enum!(AttentionArg => AttentionKernel { Eager => AttentionKernel::Eager, Flash => AttentionKernel::Flash });
value_enum!(RuntimeArg => Runtime { Cuda => Runtime::Cuda, Cpu => Runtime::Cpu });
value_enum!(ScheduleArg => crate::parallel::Schedule { Gpipe => crate::parallel::Schedule::Gpipe, #[value(name = "1f1b")] OneFOneB => crate::parallel::Schedule::OneFOneB, Interleaved => crate::parallel::Schedule::Interleaved });
value_enum!(FsdpArg => crate::parallel::Fsdp { Full => crate::parallel::Fsdp::Full, GradOp => crate::parallel::Fsdp::GradOp, Hybrid => crate::parallel::Fsdp::Hybrid });
value_enum!(OffloadArg => crate::parallel::Offload { None => crate::parallel::Offload::None, Optimizer => crate::parallel::Offload::Optimizer, Params => crate::parallel::Offload::Params });
value_enum!(FinetuneArg => &'static str { Full => "full", Lora => "lora", Qlora => "qlora" });
value_enum!(WeightsArg => WeightFormat { Int8 => WeightFormat::Int8, Int4 => WeightFormat::Int4, Nf4 => WeightFormat::Nf4, Fp8 => WeightFormat::Fp8 });
value_enum!(ScaleDtypeArg => crate::dtype::DType { Fp16 => crate::dtype::DType::Fp16, Bf16 => crate::dtype::DType::Bf16, Fp32 => crate::dtype::DType::Fp32 });
value_enum!(KvDtypeArg => crate::dtype::DType { Fp16 => crate::dtype::DType::Fp16, Bf16 => crate::dtype::DType::Bf16, Fp32 => crate::dtype::DType::Fp32, Fp8 => crate::dtype::DType::Fp8, Int8 => crate::dtype::DType::Int8 });
value_enum!(UnitsArg => ByteUnits { Gib => ByteUnits::Gib, Gb => ByteUnits::Gb });

/// Where the model came from, for the report.
#[derive(Clone, Debug)]
pub struct ResolvedModel {
    pub spec: ModelSpec,
    /// Exact parameter count for model states (`--params` or the spec's own count).
    pub params: u64,
    /// The shape was derived from a bare parameter count.
    pub derived: bool,
}

impl ModelArgs {
    pub fn resolve(&self) -> Result<ResolvedModel> {
        let (mut spec, forced) = if let Some(p) = &self.params {
            let n = parse_count("--params", p)?;
            (derive::decoder_for_params(n), Some(n))
        } else if let Some(name) = &self.model {
            (presets::model(name)?, None)
        } else if let Some(path) = &self.hf_config {
            (hf::from_hf_config(path)?, None)
        } else if let Some(path) = &self.model_file {
            (presets::model_from_file(path)?, None)
        } else {
            let n = 1_000_000_000;
            (derive::decoder_for_params(n), Some(n))
        };
        let overridden = self.apply_overrides(&mut spec)?;
        crate::model::validate::validate(&spec)?;
        let params = match forced {
            Some(n) if !overridden => n,
            _ => crate::model::params::count(&spec),
        };
        Ok(ResolvedModel { spec, params, derived: forced.is_some() })
    }

    fn apply_overrides(&self, spec: &mut ModelSpec) -> Result<bool> {
        let mut any = false;
        let positive = |flag: &str, v: Option<u64>| -> Result<Option<u64>> {
            match v {
                Some(0) => Err(Error::invalid(flag, 0, "a positive integer")),
                other => Ok(other),
            }
        };
        if let Some(v) = positive("--vocab", self.vocab)? {
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
        let hidden = positive("--hidden", self.hidden)?;
        for s in &mut spec.stacks {
            if let Some(v) = positive("--layers", self.layers)? {
                s.layers = v;
                any = true;
            }
            if let Some(v) = hidden {
                s.layer.hidden = v;
                any = true;
            }
            if let Some(v) = positive("--heads", self.heads)? {
                s.layer.attention.heads = v;
                any = true;
            }
            if let Some(v) = positive("--kv-heads", self.kv_heads)? {
                s.layer.attention.kv_heads = Some(v);
                any = true;
            }
            if let Some(v) = positive("--ffn", self.ffn)? {
                s.layer.mlp.ffn = v;
                any = true;
            }
            if hidden.is_some() && (self.heads.is_some() || s.layer.attention.head_dim.is_some()) {
                // an explicit head_dim no longer matches a new hidden size
                if self.heads.is_some() {
                    s.layer.attention.head_dim = None;
                }
            }
        }
        if let (Some(h), Some(t)) = (hidden, spec.tokens.as_mut()) {
            t.dim = h;
        }
        Ok(any)
    }
}

impl SetupArgs {
    pub fn resolve(&self, model: &ModelSpec) -> Result<Setup> {
        let batch = parse_count("--batch", &self.batch)?;
        // Default sequence: 2048, capped by the first token stack's learned positions.
        let max_pos =
            model.stacks.iter().find(|s| matches!(s.input, StackInput::Tokens)).and_then(|s| match s.positions {
                Positions::Learned { max, .. } => Some(max),
                _ => None,
            });
        let max_pos = max_pos.or_else(|| crate::model::modules::default_seq(model));
        let seq = match &self.seq {
            Some(s) => parse_count("--seq", s)?,
            None => max_pos.map_or(2048, |m| m.min(2048)),
        };
        let tgt_max =
            model.stacks.iter().find(|s| s.length == crate::model::StackLength::Tgt).and_then(|s| match s.positions {
                Positions::Learned { max, .. } => Some(max),
                _ => None,
            });
        let tgt_seq = match &self.tgt_seq {
            Some(s) => parse_count("--tgt-seq", s)?,
            None => (seq / 4).max(1).min(tgt_max.unwrap_or(u64::MAX)),
        };
        if !(self.capacity_factor.is_finite() && (1.0..=16.0).contains(&self.capacity_factor)) {
            return Err(Error::invalid("--capacity-factor", self.capacity_factor, "a factor between 1.0 and 16"));
        }
        if !(0.0..1.0).contains(&self.fragmentation) {
            return Err(Error::invalid("--fragmentation", self.fragmentation, "a fraction in [0, 1), e.g. 0.05"));
        }
        let phase: Phase = self.phase.into();
        let has_decoder = model.stacks.iter().any(|s| s.causal);
        let precision: Precision = self.precision.into();
        let batch = match &self.max_batch {
            Some(m) if phase == Phase::Inference => parse_count("--max-batch", m)?,
            Some(m) => {
                return Err(Error::conflict(
                    format!("--max-batch {m} applies to --phase inference"),
                    "use --batch for training",
                ))
            }
            None => batch,
        };
        let inference_only = [
            ("--weights", self.weights.is_some()),
            ("--kv-dtype", self.kv_dtype.is_some()),
            ("--context", self.context.is_some()),
            ("--block-size", self.block_size.is_some()),
        ];
        if phase == Phase::Train {
            if let Some((flag, _)) = inference_only.iter().find(|(_, on)| *on) {
                return Err(Error::conflict(
                    format!("{flag} applies to --phase inference"),
                    "add --phase inference, or use --finetune qlora for quantized training",
                ));
            }
        }
        let context = self.context.as_deref().map(|c| parse_count("--context", c)).transpose()?;
        if let Some(c) = context {
            if c < seq {
                return Err(Error::invalid("--context", c, format!("at least the prompt length --seq {seq}")));
            }
        }
        if self.block_size == Some(0) {
            return Err(Error::invalid("--block-size", 0, "a positive number of tokens (vLLM: 16)"));
        }
        let weights = match self.weights {
            None => {
                if self.group_size.is_some() || self.scale_dtype.is_some() {
                    return Err(Error::conflict(
                        "--group-size/--scale-dtype need --weights",
                        "add --weights int4 (or int8, nf4, fp8)",
                    ));
                }
                None
            }
            Some(w) => {
                let mut q = WeightQuant::default_for(w.into());
                if let Some(g) = self.group_size {
                    if g == 0 {
                        return Err(Error::invalid("--group-size", 0, "a positive number of values per scale"));
                    }
                    q.group_size = g;
                }
                if let Some(d) = self.scale_dtype {
                    q.scale_dtype = d.into();
                }
                q.double_quant = self.double_quant;
                Some(q)
            }
        };
        let lora = LoraConfig {
            rank: self.lora_rank,
            alpha: self.lora_alpha,
            targets: LoraTargets::parse(&self.lora_targets)
                .map_err(|e| Error::invalid("--lora-targets", &self.lora_targets, e))?,
            dropout: self.lora_dropout,
            adapter_dtype: crate::dtype::DType::Fp32,
        };
        let finetune = match self.finetune {
            FinetuneArg::Full => Finetune::Full,
            FinetuneArg::Lora => Finetune::Lora(lora),
            FinetuneArg::Qlora => {
                if !matches!(precision.activation_dtype(), crate::dtype::DType::Bf16 | crate::dtype::DType::Fp16) {
                    return Err(Error::conflict(
                        format!("QLoRA with --precision {} (fp32 base weights)", precision.name()),
                        "QLoRA keeps NF4 base weights and computes in 16 bits: use --precision bf16 or fp16",
                    ));
                }
                Finetune::Qlora { lora, double_quant: self.double_quant, paged_optimizer: self.paged_optimizer }
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
            optimizer: self.optimizer.into(),
            optimizer_impl: self.optimizer_impl.into(),
            micro_batch: batch,
            seq,
            tgt_seq,
            recompute: self.recompute.map_or(Recompute::None, Into::into),
            attention: self.attention.into(),
            dropout: if self.no_dropout {
                Some(false)
            } else if self.dropout {
                Some(true)
            } else {
                None
            },
            kv_cache: if self.no_kv_cache { false } else { self.kv_cache || has_decoder },
            runtime: self.runtime.into(),
            capacity_factor: self.capacity_factor,
            finetune,
            weights,
            kv_dtype: self.kv_dtype.map(Into::into),
            context,
            kv_block: self.block_size,
        })
    }

    /// Apply `--image-size` to the model: like Whisper's frames, an image input is part of the spec.
    pub fn apply_image_size(&self, spec: &mut ModelSpec) -> Result<()> {
        match self.image_size {
            Some(0) => Err(Error::invalid("--image-size", 0, "a positive number of pixels, e.g. 224 or 512")),
            Some(n) => crate::model::modules::set_image_size(spec, n),
            None => Ok(()),
        }
    }

    pub fn overheads(&self) -> Result<OverheadConfig> {
        Ok(OverheadConfig {
            cuda_context_bytes: parse_bytes("--cuda-context", &self.cuda_context)?,
            fragmentation: self.fragmentation,
            ..OverheadConfig::default()
        })
    }
}

/// `512MiB`, `1GiB`, `80GB`, `1e9` → bytes.
pub fn parse_bytes(what: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let units: [(&str, f64); 8] = [
        ("kib", 1024.0),
        ("mib", 1048576.0),
        ("gib", 1073741824.0),
        ("tib", 1099511627776.0),
        ("kb", 1e3),
        ("mb", 1e6),
        ("gb", 1e9),
        ("tb", 1e12),
    ];
    for (suffix, scale) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            let v: f64 =
                num.trim().parse().map_err(|_| Error::invalid(what, t, "a size such as 512MiB, 1GiB or 80GB"))?;
            if !v.is_finite() || v < 0.0 || v * scale > 1e18 {
                return Err(Error::invalid(what, t, "a non-negative size below 1 EB"));
            }
            return Ok((v * scale).round() as u64);
        }
    }
    if lower == "0" {
        return Ok(0);
    }
    parse_count(what, t)
}
