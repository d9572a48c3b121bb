//! A transformer layer at a model preset's shapes: what the layer benchmark computes and keeps,
//! and the analytic estimate it is compared with (`memplan validate`).
//!
//! The GPU layer follows the tensor recipe of the memory model's ledger
//! ([`crate::memory::activations::layer_ledger`]), i.e. what PyTorch eager keeps for backward:
//! LayerNorm keeps its input, fp32 mean/rstd and output; the Hugging Face RMSNorm keeps an fp32
//! input, the fp32 rsqrt, the normalised tensor and the output; attention keeps q, k, v, the
//! output and either the softmax output (naive) or the fp32 log-sum-exp (flash); the MLP keeps
//! the activation input (not for ReLU), its intermediates (`gelu_new`: tanh, 0.5·x, 1 + tanh;
//! quick-GELU: the sigmoid), the activation output, and for gated MLPs the up projection and
//! the gated product. Differences that remain, and are reported as deviations:
//! - no dropout (the estimate is made with dropout off, and says so);
//! - no biases (weights compared without them: a fraction of a percent);
//! - GQA under the naive kernel: K and V are read per KV head, not expanded to every query
//!   head as Hugging Face's eager `repeat_kv` does;
//! - GELU (erf) is computed in its tanh form (WGSL has no erf; same tensors, same cost).

use crate::bench::kernels::{AttentionKernel, AttentionShape};
use crate::bench::reference::Act;
use crate::bench::Precision;
use crate::error::{Error, Result};
use crate::memory::activations::{self as act, Saved, StackShape};
use crate::memory::{AttentionKernel as MemAttention, Phase, Recompute, Runtime, Setup};
use crate::model::{Activation, ModelSpec, NormKind, NormPlacement, Stack};
use serde::{Deserialize, Serialize};

/// Shapes of one layer of one stack, for one micro-batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerShape {
    pub model: String,
    pub stack: String,
    pub batch: u64,
    pub seq: u64,
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub ffn: u64,
    pub gated: bool,
    pub activation: Activation,
    pub norm: NormKind,
    pub post_norm: bool,
    /// Attention and MLP read the same normed input (GPT-J, GPT-NeoX): one norm.
    pub parallel: bool,
    pub causal: bool,
    pub eps: f32,
}

impl LayerShape {
    /// The layer of `stack` (default: the model's first stack) at `batch` × `seq`.
    pub fn from_model(model: &ModelSpec, stack: Option<&str>, batch: u64, seq: u64) -> Result<LayerShape> {
        let st = pick_stack(model, stack)?;
        if batch == 0 {
            return Err(Error::invalid("--batch", batch, "a positive number of sequences"));
        }
        if seq == 0 {
            return Err(Error::invalid("--seq", seq, "a positive sequence length"));
        }
        let l = &st.layer;
        if l.cross_attention {
            let other: Vec<&str> =
                model.stacks.iter().filter(|s| !s.layer.cross_attention).map(|s| s.name.as_str()).collect();
            return Err(Error::conflict(
                format!(
                    "the layer benchmark runs self-attention layers; stack `{}` of `{}` has cross-attention",
                    st.name, model.name
                ),
                if other.is_empty() { String::new() } else { format!("use --stack {}", other.join(" or --stack ")) },
            ));
        }
        if l.mlp.experts > 1 {
            return Err(Error::conflict(
                format!(
                    "the layer benchmark has no mixture-of-experts MLP (`{}` has {} experts)",
                    model.name, l.mlp.experts
                ),
                "use a dense model preset",
            ));
        }
        let setup = setup(Precision::Fp32, AttentionKernel::Flash, batch, seq);
        let seq = act::stack_seq(st, &setup);
        // The kernels index with 32 bits: the largest activation (tokens × the widest of hidden,
        // ffn and the attention widths) must have fewer than 2^32 elements. In u128, so that
        // huge --batch and --seq are refused, never multiplied into a wrapped size.
        let head_dim = l.attention.head_dim(l.hidden);
        let widest = [l.hidden, l.mlp.ffn, l.attention.heads.saturating_mul(head_dim)].into_iter().max().unwrap_or(1);
        let tokens = u128::from(batch) * u128::from(seq);
        if tokens.saturating_mul(u128::from(widest)) > u128::from(u32::MAX) {
            let max_tokens = u64::from(u32::MAX) / widest.max(1);
            return Err(Error::invalid(
                "--batch × --seq",
                format!("{batch} × {seq}"),
                format!(
                    "at most {max_tokens} tokens for this layer (its widest activation, tokens × {widest}, must have \
                     fewer than 2^32 elements: the kernels use 32-bit indices)"
                ),
            ));
        }
        Ok(LayerShape {
            model: model.name.clone(),
            stack: st.name.clone(),
            batch,
            seq,
            hidden: l.hidden,
            heads: l.attention.heads,
            kv_heads: l.attention.kv_heads(),
            head_dim: l.attention.head_dim(l.hidden),
            ffn: l.mlp.ffn,
            gated: l.mlp.gated,
            activation: l.mlp.activation,
            norm: l.norm.kind,
            post_norm: l.norm_placement == NormPlacement::Post,
            parallel: l.parallel_attn_mlp,
            causal: st.causal,
            eps: 1e-5,
        })
    }

    pub fn tokens(&self) -> u64 {
        self.batch * self.seq
    }

    pub fn q_width(&self) -> u64 {
        self.heads * self.head_dim
    }

    pub fn kv_width(&self) -> u64 {
        self.kv_heads * self.head_dim
    }

    pub fn attention(&self) -> AttentionShape {
        AttentionShape {
            batch: self.batch,
            heads: self.heads,
            kv_heads: self.kv_heads,
            seq: self.seq,
            head_dim: self.head_dim,
            causal: self.causal,
        }
    }

    /// The activation the GPU kernels compute for the model's.
    pub fn act(&self) -> Act {
        match self.activation {
            Activation::Gelu | Activation::GeluNew => Act::Gelu,
            Activation::QuickGelu => Act::QuickGelu,
            Activation::Relu => Act::Relu,
            Activation::Silu => Act::Silu,
        }
    }

    /// Weight elements of the layer's projections (no biases).
    pub fn weight_elems(&self) -> u64 {
        let h = self.hidden;
        let proj = h * self.q_width() * 2 + 2 * h * self.kv_width();
        let mlp = (if self.gated { 3 } else { 2 }) * h * self.ffn;
        proj + mlp
    }

    /// Forward FLOPs: the projections (2·tokens·weights) and attention (4·b·h·pairs·d).
    pub fn flops(&self) -> f64 {
        2.0 * self.tokens() as f64 * self.weight_elems() as f64 + self.attention().flops()
    }

    pub fn json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("model".into(), self.model.clone().into());
        m.insert("stack".into(), self.stack.clone().into());
        m.insert("batch".into(), self.batch.into());
        m.insert("seq".into(), self.seq.into());
        m.insert("hidden".into(), self.hidden.into());
        m.insert("heads".into(), self.heads.into());
        m.insert("kv_heads".into(), self.kv_heads.into());
        m.insert("head_dim".into(), self.head_dim.into());
        m.insert("ffn".into(), self.ffn.into());
        m
    }
}

fn pick_stack<'a>(model: &'a ModelSpec, name: Option<&str>) -> Result<&'a Stack> {
    let names = || model.stacks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
    match name {
        Some(n) => model
            .stack(n)
            .ok_or_else(|| Error::invalid("--stack", n, format!("a stack of `{}`: {}", model.name, names()))),
        None => {
            model.stacks.first().ok_or_else(|| Error::shape(format!("model `{}` has no layer stacks", model.name), ""))
        }
    }
}

/// The analytic model's setup matching what the harness runs: training forward, everything in
/// `precision`, the given attention kernel, dropout off, no recomputation, CUDA tensor rules.
pub fn setup(precision: Precision, kernel: AttentionKernel, batch: u64, seq: u64) -> Setup {
    Setup {
        phase: Phase::Train,
        precision: match precision {
            Precision::Fp32 => crate::memory::Precision::Fp32,
            Precision::Fp16 => crate::memory::Precision::Fp16,
        },
        micro_batch: batch,
        seq,
        tgt_seq: seq,
        recompute: Recompute::None,
        attention: match kernel {
            AttentionKernel::Naive => MemAttention::Eager,
            AttentionKernel::Flash => MemAttention::Flash,
        },
        dropout: Some(false),
        kv_cache: false,
        runtime: Runtime::Cuda,
        ..Setup::default()
    }
}

/// The estimate `validate` compares with: one layer's saved tensors (the ledger) and its
/// weight bytes, from the analytic core.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerEstimate {
    pub saved: Vec<Saved>,
    pub saved_bytes: u64,
    /// Weights of one layer including biases and norms, in the benchmark's dtype.
    pub weight_bytes: u64,
}

/// Point the estimate side at the memory model: per-layer saved-activation bytes
/// (`layer_saved_bytes`, itemised by `layer_ledger`) and per-layer parameters × dtype size.
pub fn estimate(
    model: &ModelSpec,
    shape: &LayerShape,
    precision: Precision,
    kernel: AttentionKernel,
) -> Result<LayerEstimate> {
    let stack = pick_stack(model, Some(&shape.stack))?;
    let setup = setup(precision, kernel, shape.batch, shape.seq);
    let st = StackShape::new(shape.batch, shape.seq, 0);
    let saved = act::layer_ledger(stack, &st, &setup);
    let saved_bytes = act::layer_saved_bytes(stack, &st, &setup);
    let weight_bytes = crate::model::params::layer(&stack.layer).params * precision.size();
    Ok(LayerEstimate { saved, saved_bytes, weight_bytes })
}
