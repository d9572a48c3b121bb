//! What is being run: phase, precision recipe, optimizer, shapes and the options that change
//! which tensors are alive. One validated `Setup` is built from raw flags before the core sees it.

use crate::dtype::DType;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    #[default]
    Train,
    Inference,
}

/// Precision recipe: which dtype each model state and the activations are kept in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Everything fp32.
    Fp32,
    /// Everything bf16 (weights, grads, optimizer states, activations).
    Bf16,
    /// Everything fp16.
    Fp16,
    /// PyTorch autocast, fp32 weights/grads/states, bf16 matmuls (autocast caches bf16 weight copies).
    AmpBf16,
    AmpFp16,
    /// ZeRO/DeepSpeed mixed precision: 2 (bf16 weights) + 2 (bf16 grads) + 12 (fp32 master, m, v).
    #[default]
    MixedBf16,
    MixedFp16,
    /// Megatron-LM bf16 with fp32 main grads: 2 + 4 + 12 = 18 bytes per parameter.
    MegatronBf16,
    /// Megatron-LM fp16 with fp16 grads: 2 + 2 + 16 (fp32 master, main grad copy, m, v) = 20.
    MegatronFp16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
            Precision::Fp16 => "fp16",
            Precision::AmpBf16 => "amp-bf16",
            Precision::AmpFp16 => "amp-fp16",
            Precision::MixedBf16 => "mixed-bf16",
            Precision::MixedFp16 => "mixed-fp16",
            Precision::MegatronBf16 => "megatron-bf16",
            Precision::MegatronFp16 => "megatron-fp16",
        }
    }

    /// dtype of the working weights used in matmuls.
    pub fn weight_dtype(self) -> DType {
        match self {
            Precision::Fp32 | Precision::AmpBf16 | Precision::AmpFp16 => DType::Fp32,
            Precision::Bf16 | Precision::MixedBf16 | Precision::MegatronBf16 => DType::Bf16,
            Precision::Fp16 | Precision::MixedFp16 | Precision::MegatronFp16 => DType::Fp16,
        }
    }

    /// dtype of most saved activations (matmul inputs and outputs).
    pub fn activation_dtype(self) -> DType {
        match self {
            Precision::Fp32 => DType::Fp32,
            Precision::AmpBf16 => DType::Bf16,
            Precision::AmpFp16 => DType::Fp16,
            other => other.weight_dtype(),
        }
    }

    /// dtype of the residual stream and norm inputs: fp32 under autocast (fp32 weights keep the
    /// residual adds in fp32), otherwise the activation dtype.
    pub fn residual_dtype(self) -> DType {
        match self {
            Precision::AmpBf16 | Precision::AmpFp16 => DType::Fp32,
            other => other.activation_dtype(),
        }
    }

    /// Bytes per parameter of gradients.
    pub fn grad_bytes_per_param(self) -> u64 {
        match self {
            Precision::MegatronBf16 => 4,
            other => other.weight_dtype().bytes(1),
        }
    }

    /// An fp32 master copy of the weights kept by the optimizer (mixed precision recipes).
    pub fn master_weights(self) -> bool {
        matches!(self, Precision::MixedBf16 | Precision::MixedFp16 | Precision::MegatronBf16 | Precision::MegatronFp16)
    }

    /// Megatron fp16 keeps an fp32 copy of the gradients in the optimizer as well.
    pub fn fp32_grad_copy(self) -> bool {
        matches!(self, Precision::MegatronFp16)
    }

    /// dtype of optimizer moments.
    pub fn state_dtype(self) -> DType {
        match self {
            Precision::Bf16 => DType::Bf16,
            Precision::Fp16 => DType::Fp16,
            _ => DType::Fp32,
        }
    }

    /// Frameworks that allocate one contiguous gradient buffer before the step (DeepSpeed,
    /// Megatron) versus PyTorch, which allocates each gradient during backward.
    pub fn grads_preallocated(self) -> bool {
        self.master_weights()
    }

    /// Megatron keeps gradients in its own contiguous buffer and reduces in place.
    pub fn grads_preallocated_megatron(self) -> bool {
        matches!(self, Precision::MegatronBf16 | Precision::MegatronFp16)
    }

    /// Autocast keeps a half-precision copy of every weight for the forward and backward.
    pub fn autocast_weight_copies(self) -> bool {
        matches!(self, Precision::AmpBf16 | Precision::AmpFp16)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    #[default]
    Adamw,
    Adam,
    Sgd,
    SgdMomentum,
    Adafactor,
    Adamw8bit,
    Lion,
}

impl Optimizer {
    pub fn name(self) -> &'static str {
        match self {
            Optimizer::Adamw => "adamw",
            Optimizer::Adam => "adam",
            Optimizer::Sgd => "sgd",
            Optimizer::SgdMomentum => "sgd-momentum",
            Optimizer::Adafactor => "adafactor",
            Optimizer::Adamw8bit => "adamw-8bit",
            Optimizer::Lion => "lion",
        }
    }
}

/// PyTorch's implementations of the optimizer step differ in their temporaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerImpl {
    /// `foreach=True` (PyTorch's default on CUDA): `_foreach_sqrt` of the second moments
    /// allocates one whole-model temporary.
    #[default]
    Foreach,
    /// `fused=True`: one kernel, no temporaries.
    Fused,
    /// The per-parameter loop: the temporary of the largest parameter tensor.
    ForLoop,
}

/// An activation-checkpointing policy; each is a rule over the layer ledger in
/// `memory::checkpoint` (which tensors a layer keeps, which it recomputes in backward).
/// Written and read by name (`none`, `selective`, `full`, `op`, `hf`, `every-2`); `Debug`
/// prints the name too.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(into = "String", try_from = "String")]
pub enum Recompute {
    #[default]
    None,
    /// Megatron `--recompute-granularity selective` (Korthikanti et al. 2022 §4.2): recompute the
    /// attention core (scores, softmax, dropout).
    Selective,
    /// Checkpoint every layer: keep its input, recompute the rest in backward (Megatron
    /// `--recompute-granularity full --recompute-method uniform --recompute-num-layers 1`,
    /// torchtitan `mode = "full"`, DeepSpeed activation checkpointing).
    Full,
    /// torchtitan per-op selective checkpointing (`selective_ac_option = "op"`): keep the block
    /// input and the outputs of matmuls and SDPA, except every second matmul.
    Op,
    /// Hugging Face `gradient_checkpointing_enable()`: each decoder layer's `__call__` under
    /// `torch.utils.checkpoint` (reentrant by default), keeping the layer's inputs.
    Hf,
    /// torchtitan per-layer selective checkpointing (`selective_ac_option = "k"`): every k-th
    /// block fully checkpointed, the others keep everything.
    Every(u32),
}

impl Recompute {
    /// The policies with a fixed name, for help texts and completions.
    pub const NAMED: [Recompute; 5] =
        [Recompute::None, Recompute::Selective, Recompute::Full, Recompute::Op, Recompute::Hf];

    pub fn name(self) -> String {
        match self {
            Recompute::None => "none".into(),
            Recompute::Selective => "selective".into(),
            Recompute::Full => "full".into(),
            Recompute::Op => "op".into(),
            Recompute::Hf => "hf".into(),
            Recompute::Every(k) => format!("every-{k}"),
        }
    }

    /// `none`, `selective`, `full`, `op` (torchtitan per-op SAC), `hf` (Hugging Face gradient
    /// checkpointing) or `every-K` (every K-th layer fully checkpointed, K from 1 to 1000).
    pub fn parse(text: &str) -> crate::error::Result<Recompute> {
        let t = text.trim().to_ascii_lowercase();
        let expected = "none, selective, full, op (torchtitan per-op SAC), hf (Hugging Face gradient checkpointing) or every-K (every K-th layer checkpointed, K from 1 to 1000)";
        if let Some(named) = Recompute::NAMED.into_iter().find(|r| r.name() == t) {
            return Ok(named);
        }
        let k = t.strip_prefix("every-").and_then(|k| k.parse::<u32>().ok());
        match k {
            Some(k) if (1..=1000).contains(&k) => Ok(Recompute::Every(k)),
            _ => Err(crate::error::Error::invalid("--recompute", text, expected)),
        }
    }

    /// The nearest of the three classic policies, for callers that only know those (the
    /// planner's FLOP and emit rules): per-op SAC recomputes part of each layer like selective
    /// does; Hugging Face and every-k checkpointing recompute whole layers.
    pub fn coarse(self) -> Recompute {
        match self {
            Recompute::Op => Recompute::Selective,
            Recompute::Hf | Recompute::Every(_) => Recompute::Full,
            other => other,
        }
    }
}

impl std::fmt::Display for Recompute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl std::fmt::Debug for Recompute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl From<Recompute> for String {
    fn from(r: Recompute) -> String {
        r.name()
    }
}

impl TryFrom<String> for Recompute {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Recompute, String> {
        Recompute::parse(&s).map_err(|e| e.to_string())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKernel {
    /// Materialised b·a·s² scores, softmax and dropout (Hugging Face "eager").
    Eager,
    /// Fused kernel (FlashAttention / SDPA): no s² tensors, keeps the fp32 log-sum-exp.
    #[default]
    Flash,
    /// The flash-attn package through transformers (`attn_implementation="flash_attention_2"`):
    /// the tensors of `flash`, and no 4-D attention mask (`_update_causal_mask` returns the 2-D
    /// padding mask or None for it).
    FlashAttn2,
}

impl AttentionKernel {
    /// A fused kernel: no materialised scores on CUDA.
    pub fn fused(self) -> bool {
        !matches!(self, AttentionKernel::Eager)
    }
}

/// Which runtime's tensor rules apply. memplan models CUDA; `cpu` reproduces PyTorch's CPU
/// differences (float dropout masks, SDPA falling back to the math path under attention dropout)
/// so CPU measurements can be checked too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Runtime {
    #[default]
    Cuda,
    Cpu,
}

/// A validated description of one training step or one forward pass on one GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub phase: Phase,
    pub precision: Precision,
    pub optimizer: Optimizer,
    pub optimizer_impl: OptimizerImpl,
    /// Micro-batch per GPU (sequences).
    pub micro_batch: u64,
    /// Sequence length (encoder length for encoder-decoder models).
    pub seq: u64,
    /// Decoder length for encoder-decoder models.
    pub tgt_seq: u64,
    pub recompute: Recompute,
    pub attention: AttentionKernel,
    /// `None`: the model's own dropout probabilities; `Some(false)`: all dropout off.
    pub dropout: Option<bool>,
    /// Inference: keep the KV cache of the whole sequence (as generation does).
    pub kv_cache: bool,
    pub runtime: Runtime,
    /// MoE: expert capacity as a multiple of the balanced share (tokens × top_k / experts);
    /// routed-token buffers are sized for it (Switch Transformer, Fedus et al. 2021 §2.1).
    pub capacity_factor: f64,
    /// Full fine-tuning (or pre-training), LoRA or QLoRA.
    pub finetune: super::finetune::Finetune,
    /// Inference: quantized layer matrices (embeddings, norms and the LM head stay 16-bit).
    pub weights: Option<super::finetune::WeightQuant>,
    /// Inference: KV cache dtype (default: the activation dtype).
    pub kv_dtype: Option<DType>,
    /// Inference: tokens kept in the KV cache per sequence (prompt + generated); default `seq`.
    pub context: Option<u64>,
    /// Inference: paged KV cache block size in tokens (vLLM: 16); each sequence rounds up to blocks.
    pub kv_block: Option<u64>,
    /// What the framework profile switches on (`memory::mechanisms`); default: plain PyTorch.
    #[serde(default)]
    pub mechanisms: super::mechanisms::Mechanisms,
    /// Inference under transformers `generate`: which logits the prefill makes (`None`: every
    /// position in the activation dtype, a plain forward pass). See `memory::serving`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_logits: Option<super::serving::GenerateLogits>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            phase: Phase::Train,
            precision: Precision::default(),
            optimizer: Optimizer::default(),
            optimizer_impl: OptimizerImpl::default(),
            micro_batch: 1,
            seq: 2048,
            tgt_seq: 512,
            recompute: Recompute::None,
            attention: AttentionKernel::default(),
            dropout: None,
            kv_cache: true,
            runtime: Runtime::Cuda,
            capacity_factor: 1.0,
            finetune: super::finetune::Finetune::Full,
            weights: None,
            kv_dtype: None,
            context: None,
            kv_block: None,
            mechanisms: super::mechanisms::Mechanisms::default(),
            generate_logits: None,
        }
    }
}

impl Setup {
    pub fn training(&self) -> bool {
        self.phase == Phase::Train
    }

    /// A dropout probability as it applies in this setup (zero in inference or when disabled).
    pub fn dropout_p(&self, p: f64) -> f64 {
        if !self.training() || self.dropout == Some(false) {
            0.0
        } else {
            p
        }
    }

    /// Bytes per element of a dropout mask: CUDA's fused dropout keeps a bool mask; PyTorch on
    /// CPU keeps a noise tensor of the activation dtype.
    /// `dropped` is the dtype of the tensor the dropout applies to.
    pub fn dropout_mask_dtype(&self, dropped: DType) -> DType {
        match self.runtime {
            Runtime::Cuda => DType::Bool,
            Runtime::Cpu => dropped,
        }
    }
}
