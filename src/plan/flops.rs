//! Exact FLOPs of a training step from the architecture graph: Megatron's count (Narayanan et al.
//! 2021, arXiv:2104.04473, Appendix: 24·B·s·h² + 4·B·s²·h per layer forward, 2·B·s·h·V for the
//! logits, backward = 2 × forward) generalised to GQA projections, gated MLPs, routed experts,
//! cross-attention and any head width. A multiply-add is 2 FLOPs; attention counts the full s²
//! (no causal discount), as Megatron and the MFU convention of Chowdhery et al. 2022 do.

use crate::memory::activations::{shapes, StackShape};
use crate::memory::{Recompute, Setup};
use crate::model::spec::*;
use serde::Serialize;

/// FLOPs of one step (all microbatches of the whole global batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct StepFlops {
    /// Forward + backward without recomputation: the numerator of MFU.
    pub model: f64,
    /// Including recomputation: the numerator of HFU.
    pub hardware: f64,
}

/// Forward FLOPs of one sequence through one layer: (projections + MLP, attention scores).
pub fn layer_forward(layer: &Layer, shape: &StackShape) -> (f64, f64) {
    let s = shape.seq as f64;
    let h = layer.hidden as f64;
    let a = &layer.attention;
    let hd = a.head_dim(layer.hidden) as f64;
    let (q, kv) = (a.heads as f64 * hd, a.kv_heads() as f64 * hd);
    let kv_len = shape.kv_seq as f64;
    // Q, K, V and output projections (MLA: its down and up projections).
    let mut dense = match &a.mla {
        Some(mla) => 2.0 * s * mla.params(layer.hidden, a.heads) as f64,
        None => 2.0 * s * (h * q + 2.0 * h * kv + q * h),
    };
    // Q·Kᵀ and P·V.
    let mut scores = match &a.mla {
        Some(mla) => {
            2.0 * s * kv_len * a.heads as f64 * (mla.nope_head_dim + mla.rope_head_dim + mla.v_head_dim) as f64
        }
        None => 4.0 * s * kv_len * q,
    };
    if layer.cross_attention {
        let enc = shape.cross_seq as f64;
        dense += 2.0 * (s * h * q + enc * 2.0 * h * kv + s * q * h);
        scores += 4.0 * s * enc * q;
    }
    let m = &layer.mlp;
    let matrices = if m.gated { 3.0 } else { 2.0 };
    dense += 2.0 * s * h * m.ffn as f64 * matrices * m.top_k as f64;
    if m.experts > 1 {
        dense += 2.0 * s * h * m.experts as f64; // router
    }
    dense += 2.0 * s * h * m.shared_ffn as f64 * 3.0; // shared experts
    (dense, scores)
}

/// FLOPs of one training step for `sequences` sequences.
pub fn step_flops(model: &ModelSpec, setup: &Setup, sequences: u64) -> StepFlops {
    let shapes = shapes(model, setup);
    let mut layers_fwd = 0.0;
    let mut scores_fwd = 0.0;
    for (s, sh) in model.stacks.iter().zip(&shapes) {
        let (dense, scores) = layer_forward(&s.layer, sh);
        layers_fwd += (dense + scores) * s.layers as f64;
        scores_fwd += scores * s.layers as f64;
    }
    let head_fwd = match (model.head.lm_head.is_some(), model.last_stack(), shapes.last()) {
        (true, Some(last), Some(sh)) => 2.0 * sh.seq as f64 * last.layer.hidden as f64 * model.vocab() as f64,
        _ => 0.0,
    };
    let n = sequences as f64;
    let model_flops = 3.0 * (layers_fwd + head_fwd) * n;
    let recompute = match setup.recompute.coarse() {
        Recompute::None => 0.0,
        Recompute::Selective => scores_fwd,
        _ => layers_fwd,
    } * n;
    StepFlops { model: model_flops, hardware: model_flops + recompute }
}

/// Megatron's closed form per iteration (Narayanan et al. 2021 Eq. 3 with recomputation, and the
/// no-recompute variant): 96·B·s·L·h²·(1 + s/(6h) + V/(16·L·h)) and 72·B·s·L·h²·(1 + s/(6h) + V/(12·L·h)).
pub fn megatron_formula(batch: f64, seq: f64, layers: f64, hidden: f64, vocab: f64, full_recompute: bool) -> f64 {
    if full_recompute {
        96.0 * batch * seq * layers * hidden * hidden * (1.0 + seq / (6.0 * hidden) + vocab / (16.0 * layers * hidden))
    } else {
        72.0 * batch * seq * layers * hidden * hidden * (1.0 + seq / (6.0 * hidden) + vocab / (12.0 * layers * hidden))
    }
}
