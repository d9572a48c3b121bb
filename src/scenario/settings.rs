//! Every setting, defined once: its key (the CLI's `--key`, Python's `key=` with `_` for `-`,
//! the JSON field, the `--set key=value` key), its group, value type, default, bounds and help.
//! The CLI builds its flags from this table, Python's keyword arguments and the web page's form
//! read it too, so a setting cannot mean different things in different faces.

use super::value::{choice, Check, Count, FileArg, Kind, Names, Size, Toggle, Value};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::framework::Framework;
use crate::memory::finetune::WeightFormat;
use crate::memory::serving::Entrypoint;
use crate::memory::{AttentionKernel, Optimizer, OptimizerImpl, Phase, Precision, Recompute, Runtime};
use crate::parallel::{Fsdp, Offload, Schedule};
use crate::plan::read::ConfigFormat;
use serde::Serialize;

/// Where a setting belongs, for help headings and forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// Which model, and its shape.
    Model,
    /// What runs: phase, precision, optimizer, batch, sequence, recomputation, attention.
    Training,
    /// LoRA / QLoRA.
    FineTune,
    /// Inference: quantized weights, KV cache, context.
    Serving,
    /// The framework and the runtime overheads.
    Runtime,
    /// One parallel plan (estimate, compare).
    Parallel,
    /// The plan search over a cluster (plan).
    Search,
    /// Which GPUs the estimate is checked against.
    Gpu,
}

impl Group {
    pub fn heading(self) -> &'static str {
        match self {
            Group::Model => "Model",
            Group::Training => "Training step",
            Group::FineTune => "Fine-tuning (LoRA/QLoRA)",
            Group::Serving => "Serving",
            Group::Runtime => "Framework and runtime",
            Group::Parallel => "Parallel plan",
            Group::Search => "Plan search",
            Group::Gpu => "GPUs",
        }
    }
}

/// One setting's definition.
#[derive(Clone, Debug, Serialize)]
pub struct SettingDef {
    /// `batch`, `kv-heads`: the flag is `--batch`, the Python keyword `kv_heads`.
    pub key: &'static str,
    #[serde(skip)]
    pub short: Option<char>,
    pub group: Group,
    pub kind: Kind,
    /// The names a `Choice` accepts.
    pub choices: Vec<&'static str>,
    /// The default as text; `None`: derived from the model or other settings (the help says how).
    pub default: Option<String>,
    pub check: Check,
    pub help: String,
}

/// Physically meaningful upper bounds. Each is far above any real model or cluster, and
/// together they keep every byte count an exact u64 (the estimate also checks its own sizes).
/// The model dimensions are `model::validate::limits`, so a flag and a model file agree.
pub mod bounds {
    // The model's dimensions have the bounds model files and HF configs are checked against.
    use crate::model::validate::limits as L;
    /// 2^24 sequences in one micro-batch or served at once.
    pub const BATCH: u64 = 1 << 24;
    /// 2^24 tokens per sequence (16.7M; the longest published contexts are 10M).
    pub const SEQ: u64 = L::POSITIONS;
    /// 2^24 tokens in one micro-batch (batch × sequence) on one GPU.
    pub const TOKENS_PER_MICROBATCH: u64 = 1 << 32;
    pub const LAYERS: u64 = L::LAYERS;
    pub const HIDDEN: u64 = L::WIDTH;
    pub const HEADS: u64 = L::HEADS;
    pub const FFN: u64 = L::FFN;
    pub const VOCAB: u64 = L::VOCAB;
    pub const IMAGE: u64 = L::IMAGE;
    /// Largest parallel degree (dp, tp, pp, cp, ep, vpp).
    pub const DEGREE: u64 = 1 << 20;
    /// 2^24 GPUs (the largest clusters have about 2^17).
    pub const GPUS: u64 = 1 << 24;
    pub const MICROBATCHES: u64 = 1 << 24;
    /// 2^50 parameters (about 1.1·10^15; the largest published models have about 2·10^12).
    pub const PARAMS: u64 = L::PARAMS;
    pub const LORA_RANK: u64 = 1 << 16;
    pub const GROUP_SIZE: u64 = 1 << 24;
    pub const BLOCK_SIZE: u64 = 1 << 16;
    pub const TOP: u64 = 10_000;
}

const fn int(min: u64, max: u64) -> Check {
    Check::Int { min, max }
}
const fn real(min: f64, max: f64) -> Check {
    Check::Real { min, max, max_open: false }
}
const fn real_open(min: f64, max: f64) -> Check {
    Check::Real { min, max, max_open: true }
}
const NONE: Check = Check::None;
const POSITIVE: Check = int(1, u64::MAX);

/// `--finetune`: which parameters train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FinetuneMode {
    #[default]
    Full,
    Lora,
    Qlora,
}

/// `--weights`: quantized layer matrices for inference (`none`: the precision's dtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weights(pub WeightFormat);

/// `--scale-dtype`: dtype of quantization scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleDtype(pub DType);

/// `--kv-dtype`: KV cache dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvDtype(pub DType);

/// `--fsdp`: PyTorch FSDP sharding (`none`: no FSDP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsdpMode(pub Fsdp);

/// `--zero`: ZeRO stage 0–3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZeroStage(pub u8);

choice!(Phase { "train" => Phase::Train, "inference" => Phase::Inference });
choice!(Precision {
    "mixed-bf16" => Precision::MixedBf16, "mixed-fp16" => Precision::MixedFp16,
    "fp32" => Precision::Fp32, "bf16" => Precision::Bf16, "fp16" => Precision::Fp16,
    "amp-bf16" => Precision::AmpBf16, "amp-fp16" => Precision::AmpFp16,
    "megatron-bf16" => Precision::MegatronBf16, "megatron-fp16" => Precision::MegatronFp16,
});
choice!(Optimizer {
    "adamw" => Optimizer::Adamw, "adam" => Optimizer::Adam, "sgd" => Optimizer::Sgd,
    "sgd-momentum" => Optimizer::SgdMomentum, "adafactor" => Optimizer::Adafactor,
    "adamw-8bit" => Optimizer::Adamw8bit, "lion" => Optimizer::Lion,
});
choice!(OptimizerImpl { "foreach" => OptimizerImpl::Foreach, "fused" => OptimizerImpl::Fused, "for-loop" => OptimizerImpl::ForLoop });
/// `--recompute`: a named policy or `every-K` (`Recompute::parse`); free text, since `every-K`
/// takes any K.
impl Value for Recompute {
    const KIND: Kind = Kind::Text;
    fn choices() -> Vec<&'static str> {
        vec!["none", "selective", "full", "op", "hf", "every-2"]
    }
    fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
        Recompute::parse(text).map(Some).map_err(|e| match e {
            Error::InvalidValue { value, expected, .. } => {
                Error::InvalidValue { what: what.to_string(), value, expected }
            }
            other => other,
        })
    }
    fn show(&self) -> String {
        self.name()
    }
}
choice!(AttentionKernel {
    "flash" => AttentionKernel::Flash,
    "eager" => AttentionKernel::Eager,
    "flash-attn2" => AttentionKernel::FlashAttn2
});
choice!(Runtime { "cuda" => Runtime::Cuda, "cpu" => Runtime::Cpu });
choice!(Schedule { "1f1b" => Schedule::OneFOneB, "gpipe" => Schedule::Gpipe, "interleaved" => Schedule::Interleaved });
choice!(Offload { "none" => Offload::None, "optimizer" => Offload::Optimizer, "params" => Offload::Params });
choice!(FinetuneMode { "full" => FinetuneMode::Full, "lora" => FinetuneMode::Lora, "qlora" => FinetuneMode::Qlora });
choice!(ScaleDtype { "fp16" => ScaleDtype(DType::Fp16), "bf16" => ScaleDtype(DType::Bf16), "fp32" => ScaleDtype(DType::Fp32) });
choice!(KvDtype {
    "fp16" => KvDtype(DType::Fp16), "bf16" => KvDtype(DType::Bf16), "fp32" => KvDtype(DType::Fp32),
    "fp8" => KvDtype(DType::Fp8), "int8" => KvDtype(DType::Int8),
});
choice!(ConfigFormat {
    "megatron" => ConfigFormat::Megatron, "megatron-deepspeed" => ConfigFormat::MegatronDeepspeed,
    "deepspeed" => ConfigFormat::Deepspeed, "torchtitan" => ConfigFormat::Torchtitan, "fsdp" => ConfigFormat::Fsdp,
});
choice!(Entrypoint { "serve" => Entrypoint::Serve, "llm" => Entrypoint::Llm });
choice!(Framework {
    "pytorch" => Framework::Pytorch, "hf-trainer" => Framework::HfTrainer,
    "accelerate-fsdp" => Framework::AccelerateFsdp, "torchtitan" => Framework::Torchtitan,
    "megatron" => Framework::Megatron, "deepspeed" => Framework::Deepspeed,
    "hf-generate" => Framework::HfGenerate, "vllm" => Framework::Vllm,
});

/// A choice where `none` (or `off`) means "not at all", which is the default.
macro_rules! optional_choice {
    ($ty:ident($inner:ty) { $($name:literal => $variant:expr),+ $(,)? }) => {
        impl Value for $ty {
            const KIND: Kind = Kind::Choice;
            fn choices() -> Vec<&'static str> {
                vec!["none", $($name),+]
            }
            fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
                let t = text.trim().to_ascii_lowercase().replace('_', "-");
                if t == "none" || t == "off" {
                    return Ok(None);
                }
                $(if t == $name { return Ok(Some($ty($variant))); })+
                Err(Error::invalid(what, text, format!("one of {}", Self::choices().join(", "))))
            }
            fn show(&self) -> String {
                $(if self.0 == $variant { return $name.to_string(); })+
                String::new()
            }
        }
    };
}
optional_choice!(Weights(WeightFormat) {
    "int8" => WeightFormat::Int8, "int4" => WeightFormat::Int4, "nf4" => WeightFormat::Nf4, "fp8" => WeightFormat::Fp8,
});
optional_choice!(FsdpMode(Fsdp) { "full" => Fsdp::Full, "grad-op" => Fsdp::GradOp, "hybrid" => Fsdp::Hybrid });

impl Value for ZeroStage {
    const KIND: Kind = Kind::Choice;
    fn choices() -> Vec<&'static str> {
        vec!["0", "1", "2", "3"]
    }
    fn parse(what: &str, text: &str, _: Check) -> Result<Option<Self>> {
        match text.trim() {
            "0" => Ok(Some(ZeroStage(0))),
            "1" => Ok(Some(ZeroStage(1))),
            "2" => Ok(Some(ZeroStage(2))),
            "3" => Ok(Some(ZeroStage(3))),
            _ => Err(Error::invalid(what, text, "0, 1, 2 or 3")),
        }
    }
    fn show(&self) -> String {
        self.0.to_string()
    }
}

/// `--gpus`: a GPU count, optionally with the GPU preset (`64xh100-sxm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpus {
    pub count: u64,
    pub gpu: Option<String>,
}

impl Value for Gpus {
    const KIND: Kind = Kind::Text;
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        let t = text.trim();
        let (count, gpu) = match t.split_once(['x', 'X']) {
            Some((c, g)) if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()) => (c, Some(g.trim())),
            _ => (t, None),
        };
        let expected = "a GPU count, or <count>x<gpu preset> such as 64xh100-sxm";
        let n = match <u64 as Value>::parse(what, count, check) {
            Ok(n) => n.unwrap_or(1),
            Err(_) if count.trim() == "0" => return Err(Error::invalid(what, text, "at least 1 GPU")),
            Err(Error::InvalidValue { expected: e, .. }) if e.starts_with("at most") => {
                return Err(Error::invalid(what, text, e))
            }
            Err(_) => return Err(Error::invalid(what, text, expected)),
        };
        let gpu = match gpu {
            Some("") => return Err(Error::invalid(what, text, "<count>x<gpu preset>, e.g. 64xh100-sxm")),
            Some(g) => Some(g.to_string()),
            None => None,
        };
        Ok(Some(Gpus { count: n, gpu }))
    }
    fn show(&self) -> String {
        match &self.gpu {
            Some(g) => format!("{}x{g}", self.count),
            None => self.count.to_string(),
        }
    }
}

/// `--global-batch`: sequences (`1536`) or tokens (`4Mtok`, divided by the sequence length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalBatch {
    Sequences(u64),
    Tokens(u64),
}

impl Value for GlobalBatch {
    const KIND: Kind = Kind::Count;
    fn parse(what: &str, text: &str, check: Check) -> Result<Option<Self>> {
        let lower = text.trim().to_ascii_lowercase();
        if let Some(tokens) = lower.strip_suffix("tokens").or_else(|| lower.strip_suffix("tok")) {
            let n = crate::units::parse_count(what, tokens.trim())?;
            return Ok(Some(GlobalBatch::Tokens(n)));
        }
        let n = <Count as Value>::parse(what, text, check)?.map_or(1, |c| c.0);
        Ok(Some(GlobalBatch::Sequences(n)))
    }
    fn show(&self) -> String {
        match self {
            GlobalBatch::Sequences(n) => n.to_string(),
            GlobalBatch::Tokens(n) => format!("{n}tok"),
        }
    }
}

/// The settings: `group field: Type = "key", default, check; help`.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])+
        $group:ident $field:ident : $ty:ty = $key:literal $(short $short:literal)?, default $default:expr, $check:expr;
    )*) => {
        /// A scenario as plain data: each setting `None` until given, then its default applies.
        /// `Scenario::resolve` checks every value and every combination.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Scenario {
            $($(#[doc = $doc])+ pub $field: Option<$ty>,)*
        }

        fn build_table() -> Vec<SettingDef> {
            vec![$(SettingDef {
                key: $key,
                short: None $(.or(Some($short)))?,
                group: Group::$group,
                kind: <$ty as Value>::KIND,
                choices: <$ty as Value>::choices(),
                default: {
                    let d: Option<$ty> = $default;
                    d.map(|v| v.show())
                },
                check: $check,
                help: [$($doc.trim()),+].join(" "),
            }),*]
        }

        impl Scenario {
            /// Set one setting from text, as its flag would (`key` as in `--key`; `_` may stand
            /// for `-`). The value `default` clears it back to its default.
            pub fn set(&mut self, key: &str, text: &str) -> Result<()> {
                let def = setting(key)?;
                let what = format!("--{}", def.key);
                if text.trim().eq_ignore_ascii_case("default") {
                    return self.clear(def.key);
                }
                match def.key {
                    $($key => self.$field = <$ty as Value>::parse(&what, text, $check)?,)*
                    _ => unreachable!("every key of the table has a field"),
                }
                Ok(())
            }

            /// Back to the default.
            pub fn clear(&mut self, key: &str) -> Result<()> {
                let def = setting(key)?;
                match def.key {
                    $($key => self.$field = None,)*
                    _ => unreachable!("every key of the table has a field"),
                }
                Ok(())
            }

            /// The setting's value as text (`None`: not given).
            pub fn get(&self, key: &str) -> Option<String> {
                let def = setting(key).ok()?;
                match def.key {
                    $($key => self.$field.as_ref().map(Value::show),)*
                    _ => None,
                }
            }

            /// The settings given, in table order, as `(key, text)`.
            pub fn entries(&self) -> Vec<(&'static str, String)> {
                let mut out = Vec::new();
                $(if let Some(v) = &self.$field { out.push(($key, v.show())); })*
                out
            }

            /// Check every value given against its setting's parser and bounds, as `set` does:
            /// plain data built in code goes through the same checks as text.
            pub fn check_values(&self) -> Result<()> {
                $(if let Some(v) = &self.$field {
                    <$ty as Value>::parse(concat!("--", $key), &v.show(), $check)?;
                })*
                Ok(())
            }

            /// Every setting not given takes its default from the table.
            pub fn filled(&self) -> Scenario {
                Scenario { $($field: self.$field.clone().or($default),)* }
            }
        }
    };
}

settings! {
    // ---- Model ----
    /// A built-in model preset (`memplan presets list models`).
    Model model: String = "model" short 'm', default None, NONE;
    /// Parameter count (1b, 350m, 1.3B, 7.5b, 1e9): model states use it exactly; a LLaMA-style
    /// decoder shape is derived for activations and shown. Default when no model is given: 1b.
    Model params: Count = "params", default None, int(1, bounds::PARAMS);
    /// A Hugging Face config.json (a path; Python and the web page also take its text).
    Model hf_config: FileArg = "hf-config", default None, NONE;
    /// A model preset TOML file of your own.
    Model model_file: FileArg = "model-file", default None, NONE;
    /// Override the number of layers (every stack).
    Model layers: u64 = "layers", default None, int(1, bounds::LAYERS);
    /// Override the hidden size.
    Model hidden: u64 = "hidden", default None, int(1, bounds::HIDDEN);
    /// Override the attention heads.
    Model heads: u64 = "heads", default None, int(1, bounds::HEADS);
    /// Override the key/value heads (GQA/MQA).
    Model kv_heads: u64 = "kv-heads", default None, int(1, bounds::HEADS);
    /// Override the MLP width.
    Model ffn: u64 = "ffn", default None, int(1, bounds::FFN);
    /// Override the vocabulary size.
    Model vocab: u64 = "vocab", default None, int(1, bounds::VOCAB);
    /// Image resolution (square) of models that read images (ViT, CLIP, ResNet; Stable Diffusion:
    /// the image generated). Default: the model's own (224, 512, 1024).
    Model image_size: u64 = "image-size", default None, int(1, bounds::IMAGE);

    // ---- Training step ----
    /// train: one optimizer step; inference: one forward pass.
    Training phase: Phase = "phase", default Some(Phase::Train), NONE;
    /// Precision recipe. amp = PyTorch autocast (fp32 weights/grads/states, 4+4+8 B/param);
    /// mixed = ZeRO/DeepSpeed (2+2+12); megatron-bf16 = 2+4+12; bf16/fp16 = everything in that dtype.
    /// Default: the framework's (mixed-bf16 for pytorch).
    Training precision: Precision = "precision", default None, NONE;
    /// Optimizer.
    Training optimizer: Optimizer = "optimizer", default Some(Optimizer::Adamw), NONE;
    /// PyTorch optimizer implementation (foreach = PyTorch's default on CUDA; it allocates one
    /// whole-model temporary in the step). Default: the framework's (foreach for pytorch).
    Training optimizer_impl: OptimizerImpl = "optimizer-impl", default None, NONE;
    /// Micro-batch per GPU (sequences).
    Training batch: Count = "batch", default Some(Count(1)), int(1, bounds::BATCH);
    /// Sequence length (the encoder length for encoder-decoder models). Default: 2048, or the
    /// model's maximum positions when smaller.
    Training seq: Count = "seq", default None, int(1, bounds::SEQ);
    /// Decoder length for encoder-decoder models. Default: seq / 4 (at most the model's maximum).
    Training tgt_seq: Count = "tgt-seq", default None, int(1, bounds::SEQ);
    /// Activation checkpointing: none, selective (Megatron: attention core), full (every layer
    /// keeps its input), op (torchtitan per-op SAC), hf (Hugging Face gradient checkpointing),
    /// every-K (every K-th layer checkpointed, torchtitan selective_ac_option K).
    Training recompute: Recompute = "recompute", default Some(Recompute::None), NONE;
    /// eager = materialised scores (O(s²)); flash = fused kernel (FlashAttention/SDPA);
    /// flash-attn2 = transformers' flash_attention_2 (as flash, and generate builds no 4-D mask).
    /// Default: the framework's (flash for pytorch).
    Training attention: AttentionKernel = "attention", default None, NONE;
    /// Dropout: on (the model's probabilities), off, or model (the model's own config, default).
    Training dropout: Toggle = "dropout", default None, NONE;
    /// MoE expert capacity factor: routed-token buffers are sized for this multiple of a balanced load.
    Training capacity_factor: f64 = "capacity-factor", default Some(1.0), real(1.0, 16.0);

    // ---- Fine-tuning ----
    /// Fine-tuning mode: full (every parameter trains), lora (frozen base, low-rank adapters),
    /// qlora (frozen NF4 base, adapters).
    FineTune finetune: FinetuneMode = "finetune", default Some(FinetuneMode::Full), NONE;
    /// LoRA rank r (adapter parameters r·(d_in + d_out) per adapted matrix).
    FineTune lora_rank: u64 = "lora-rank", default Some(8), int(1, bounds::LORA_RANK);
    /// LoRA alpha (scaling α/r; accepted, changes no memory).
    FineTune lora_alpha: f64 = "lora-alpha", default Some(16.0), real(0.0, 1e6);
    /// Adapted projections, comma-separated from q,k,v,o,gate,up,down (or `all`).
    FineTune lora_targets: String = "lora-targets", default Some("q,k,v,o".to_string()), NONE;
    /// LoRA dropout (PEFT `lora_dropout`).
    FineTune lora_dropout: f64 = "lora-dropout", default Some(0.0), real_open(0.0, 1.0);
    /// QLoRA: double quantization of the NF4 constants (0.127 instead of 0.5 bits per parameter).
    FineTune double_quant: bool = "double-quant", default Some(false), NONE;
    /// QLoRA: paged optimizer (optimizer states in paged host memory).
    FineTune paged_optimizer: bool = "paged-optimizer", default Some(false), NONE;

    // ---- Serving ----
    /// Inference: count the KV cache of the whole sequence (default: on for decoders).
    Serving kv_cache: bool = "kv-cache", default None, NONE;
    /// Inference: quantized weights for the layer matrices.
    Serving weights: Weights = "weights", default None, NONE;
    /// Values per quantization scale (default: int8 per channel, int4 128, nf4 64, fp8 per tensor).
    Serving group_size: u64 = "group-size", default None, int(1, bounds::GROUP_SIZE);
    /// dtype of the quantization scales (default fp16; fp32 for nf4 and fp8).
    Serving scale_dtype: ScaleDtype = "scale-dtype", default None, NONE;
    /// Inference: KV cache dtype (default: the activation dtype).
    Serving kv_dtype: KvDtype = "kv-dtype", default None, NONE;
    /// Inference: concurrent sequences (the batch of the KV cache); same as --batch.
    Serving max_batch: Count = "max-batch", default None, int(1, bounds::BATCH);
    /// Inference: tokens per sequence kept in the KV cache, prompt + generated (default: --seq).
    Serving context: Count = "context", default None, int(1, bounds::SEQ);
    /// Inference: paged KV cache block size in tokens (vLLM uses 16); sequences round up to blocks.
    Serving block_size: u64 = "block-size", default None, int(1, bounds::BLOCK_SIZE);
    /// vLLM: share of the GPU's memory one instance may use (default: vLLM's, 0.9).
    Serving gpu_memory_utilization: f64 = "gpu-memory-utilization", default None, real(0.000001, 1.0);
    /// vLLM: tokens per scheduler step; the start-up profile runs this many (default: vLLM's for
    /// the release, entry point and GPU).
    Serving max_num_batched_tokens: u64 = "max-num-batched-tokens", default None, int(1, bounds::SEQ);
    /// vLLM: sequences per scheduler step (default: vLLM's, 256 or 1024).
    Serving max_num_seqs: u64 = "max-num-seqs", default None, int(1, bounds::BATCH);
    /// vLLM: no CUDA graphs (releases that budget graph memory then subtract none).
    Serving enforce_eager: bool = "enforce-eager", default Some(false), NONE;
    /// vLLM: how it was started: serve (`vllm serve`) or llm (the offline LLM class).
    Serving vllm_entrypoint: Entrypoint = "vllm-entrypoint", default Some(Entrypoint::Serve), NONE;

    // ---- Framework and runtime ----
    /// The framework that runs the step: its defaults and the tensors it keeps.
    Runtime framework: Framework = "framework", default Some(Framework::Pytorch), NONE;
    /// The framework's release where its behaviour changed between releases (e.g. transformers
    /// 4.44 vs 4.45). Default: the profile's default version.
    Runtime framework_version: String = "framework-version", default None, NONE;
    /// Tensor rules of the runtime: cuda (default) or cpu (PyTorch on CPU keeps float dropout
    /// masks and runs SDPA's math path under attention dropout).
    Runtime runtime: Runtime = "runtime", default Some(Runtime::Cuda), NONE;
    /// CUDA context size, with its unit (512MiB, 1GiB). Default: the GPU preset's `[runtime]`
    /// (lazy or eager module loading as the framework profile says) with one --gpu, else 512MiB.
    Runtime cuda_context: Size = "cuda-context", default None, NONE;
    /// Allocator fragmentation margin as a fraction of the live peak. Default: the framework's
    /// (0.05 for pytorch).
    Runtime fragmentation: f64 = "fragmentation", default None, real_open(0.0, 1.0);

    // ---- Parallel plan ----
    /// Data-parallel degree. Default: 1, or --gpus / (tp·pp·cp) when --gpus is given.
    Parallel dp: u64 = "dp", default None, int(1, bounds::DEGREE);
    /// Tensor-parallel degree (Megatron: heads and MLP width split; keep it within a node).
    Parallel tp: u64 = "tp", default Some(1), int(1, bounds::DEGREE);
    /// Megatron sequence parallelism (needs --tp 2 or more). Default: off, or the framework's
    /// rule (torchtitan shards the sequence whenever tp > 1).
    Parallel sp: bool = "sp", default None, NONE;
    /// Pipeline-parallel stages.
    Parallel pp: u64 = "pp", default Some(1), int(1, bounds::DEGREE);
    /// Pipeline schedule.
    Parallel schedule: Schedule = "schedule", default Some(Schedule::OneFOneB), NONE;
    /// Virtual stages (model chunks) per pipeline rank, for --schedule interleaved.
    Parallel vpp: u64 = "vpp", default Some(1), int(1, bounds::DEGREE);
    /// Layers on the first pipeline stage when it differs from the rest (Megatron
    /// `--decoder-first-pipeline-num-layers`; the embedding stage often holds fewer).
    Parallel first_stage_layers: u64 = "first-stage-layers", default None, int(0, bounds::LAYERS);
    /// Layers on the last pipeline stage when it differs (Megatron `--decoder-last-pipeline-num-layers`).
    Parallel last_stage_layers: u64 = "last-stage-layers", default None, int(0, bounds::LAYERS);
    /// Microbatches per step (gradient accumulation when pp = 1). Default: derived from
    /// --global-batch, else pp.
    Parallel microbatches: u64 = "microbatches", default None, int(1, bounds::MICROBATCHES);
    /// Global batch in sequences (1536) or tokens (4Mtok); microbatches = global / (dp · batch).
    Parallel global_batch: GlobalBatch = "global-batch", default None, int(1, bounds::BATCH * bounds::MICROBATCHES);
    /// Context-parallel degree (sequence split across ranks, ring attention).
    Parallel cp: u64 = "cp", default Some(1), int(1, bounds::DEGREE);
    /// Expert-parallel degree for MoE models.
    Parallel ep: u64 = "ep", default Some(1), int(1, bounds::DEGREE);
    /// ZeRO stage over the data-parallel ranks: 1 optimizer states, 2 + gradients, 3 + weights.
    Parallel zero: ZeroStage = "zero", default Some(ZeroStage(0)), NONE;
    /// PyTorch FSDP sharding: full (≈ ZeRO-3), grad-op (≈ ZeRO-2), hybrid (full within a node).
    Parallel fsdp: FsdpMode = "fsdp", default None, NONE;
    /// Megatron's distributed optimizer (optimizer states sharded over dp).
    Parallel distributed_optimizer: bool = "distributed-optimizer", default Some(false), NONE;
    /// ZeRO-Offload (optimizer) or ZeRO-Infinity (params): what leaves the GPU for host memory.
    Parallel offload: Offload = "offload", default Some(Offload::None), NONE;
    /// Total GPUs, optionally with their preset (64 or 64xh100-sxm); estimate checks it against
    /// dp·tp·pp·cp, plan searches this cluster.
    Parallel gpus: Gpus = "gpus", default None, int(1, bounds::GPUS);
    /// GPUs per node (tensor parallelism stays within a node; FSDP hybrid shards within one).
    Parallel gpus_per_node: u64 = "gpus-per-node", default Some(8), int(1, 1 << 16);
    /// Read ZeRO stage, offload, micro-batch, accumulation, data-parallel size and precision from
    /// a DeepSpeed JSON config; a flag that disagrees with the file is an error.
    Parallel deepspeed_config: FileArg = "deepspeed-config", default None, NONE;
    /// Read the plan, micro-batch, sequence, precision and recomputation from a launch config
    /// (what `memplan plan --emit` writes: a Megatron-LM or Megatron-DeepSpeed launcher, a
    /// DeepSpeed JSON, a torchtitan TOML or a Hugging Face FSDP launcher). The model still comes
    /// from --model and the config's dimensions must match; a flag that disagrees is an error.
    Parallel from_config: FileArg = "from-config", default None, NONE;
    /// The format of --from-config when detection is not enough.
    Parallel from_config_format: ConfigFormat = "from-config-format", default None, NONE;

    // ---- Plan search ----
    /// Total training tokens, for time and cost to train (e.g. 300b).
    Search tokens: Count = "tokens", default None, int(1, 1_000_000_000_000_000);
    /// Price per GPU-hour in dollars, for the cost to train.
    Search price: f64 = "price", default None, real(0.0, 1e6);
    /// Memory kept free on every GPU beyond the CUDA context and fragmentation margin (e.g. 2GiB).
    Search headroom: Size = "headroom", default Some(Size(0)), NONE;
    /// Largest GEMM efficiency (fraction of the dense peak); shapes and waves scale it down.
    /// Default: from --calibration, else the GPU preset's measured `[gemm_efficiency] max`.
    Search efficiency: f64 = "efficiency", default None, real(0.000001, 1.0);
    /// A `memplan bench` JSON whose measured matmul throughput (by size) replaces the preset's
    /// GEMM efficiency curve.
    Search calibration: FileArg = "calibration", default None, NONE;
    /// Fraction of data-parallel communication hidden behind compute. Default: each framework's
    /// own mechanism (DDP buckets, ZeRO/FSDP prefetch, Megatron after the flush).
    Search overlap: f64 = "overlap", default None, real(0.0, 1.0);
    /// Inter-node bandwidth per GPU per second (its NIC share), e.g. 25GB for 200 Gb/s HDR per
    /// GPU, 6.25GB for 4 × 100 Gb/s per 8-GPU node. Default: the GPU preset's.
    Search inter_node_bandwidth: Size = "inter-node-bandwidth", default None, NONE;
    /// Also consider offloading optimizer states to host memory.
    Search allow_offload: bool = "allow-offload", default Some(false), NONE;
    /// Largest tensor-parallel degree to consider (default: GPUs per node).
    Search max_tp: u64 = "max-tp", default None, int(1, bounds::DEGREE);
    /// Largest pipeline-parallel degree to consider.
    Search max_pp: u64 = "max-pp", default None, int(1, bounds::DEGREE);
    /// Largest context-parallel degree (default: 1 below 8192 tokens, else 16).
    Search max_cp: u64 = "max-cp", default None, int(1, bounds::DEGREE);
    /// How many plans to list.
    Search top: u64 = "top", default Some(10), int(1, bounds::TOP);

    // ---- GPUs ----
    /// GPU presets to check the estimate against, comma-separated (exit 1 if it does not fit one).
    /// Default: every preset is listed.
    Gpu gpu: Names = "gpu", default None, NONE;
}

const _: Check = POSITIVE;

/// Every setting, in the order help and forms list them.
pub fn settings() -> &'static [SettingDef] {
    static TABLE: std::sync::OnceLock<Vec<SettingDef>> = std::sync::OnceLock::new();
    TABLE.get_or_init(build_table)
}

/// The keys of the settings that fix a parallel plan (the `Parallel` group): `plan` searches
/// them, a launch config read with `from-config` fixes them.
pub fn plan_keys() -> &'static [&'static str] {
    static KEYS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| settings().iter().filter(|d| d.group == Group::Parallel).map(|d| d.key).collect())
}

/// The definition of `key` (`kv_heads` and `--kv-heads` name `kv-heads`), or an error that
/// suggests the closest keys.
pub fn setting(key: &str) -> Result<&'static SettingDef> {
    let k = key.trim().trim_start_matches("--").to_ascii_lowercase().replace('_', "-");
    if let Some(d) = settings().iter().find(|d| d.key == k) {
        return Ok(d);
    }
    let keys: Vec<&str> = settings().iter().map(|d| d.key).collect();
    let expected = match crate::error::closest(&k, keys.iter().copied()).first() {
        Some(s) => format!("`{s}`? (valid keys: {})", keys.join(", ")),
        None => format!("one of {}", keys.join(", ")),
    };
    Err(Error::invalid("setting key", k, expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_unique_and_kebab_case() {
        let keys: Vec<&str> = settings().iter().map(|d| d.key).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(!keys[..i].contains(k), "{k} twice");
            assert!(k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{k}");
        }
    }

    #[test]
    fn every_default_reads_back_through_its_own_parser() {
        // A default shown in help must be a value the setting accepts.
        for d in settings() {
            if let Some(text) = &d.default {
                let mut s = Scenario::default();
                s.set(d.key, text).unwrap_or_else(|e| panic!("{}: default {text}: {e}", d.key));
                assert_eq!(s.get(d.key).as_deref(), Some(text.as_str()), "{}", d.key);
            }
        }
    }

    #[test]
    fn set_get_and_clear_round_trip() {
        let mut s = Scenario::default();
        s.set("kv_heads", "8").unwrap();
        s.set("--zero", "3").unwrap();
        s.set("gpus", "64xh100-sxm").unwrap();
        s.set("global-batch", "4Mtok").unwrap();
        assert_eq!(s.kv_heads, Some(8));
        assert_eq!(s.get("gpus").as_deref(), Some("64xh100-sxm"));
        assert_eq!(s.global_batch, Some(GlobalBatch::Tokens(4_000_000)));
        s.set("zero", "default").unwrap();
        assert_eq!(s.zero, None);
        assert!(s.set("weights", "none").is_ok() && s.weights.is_none());
        let e = s.set("batchh", "4").unwrap_err();
        assert!(e.hint().unwrap().contains("`batch`"), "{e:?}");
        let e = s.set("zero", "4").unwrap_err();
        assert!(e.to_string().contains("--zero") && e.to_string().contains("`4`"), "{e}");
    }
}
