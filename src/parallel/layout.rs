//! What one rank holds: parameters of its pipeline stage, split over tensor- and
//! expert-parallel ranks as Megatron-LM splits them — Q/K/V and the first MLP matrix by
//! columns (with their biases), the output and second MLP matrix by rows (biases replicated),
//! norms replicated, embeddings and the LM head over the vocabulary, experts over `ep`.
//! Uneven splits give the first ranks one more row, so the shards add up exactly.

use super::pipeline::plan_stage_stack_layers;
use super::plan::ParallelPlan;
use crate::memory::activations::heads_per_rank;
use crate::model::params::{self, Count};
use crate::model::spec::*;
use serde::Serialize;

/// How `total` items split over `n` ranks: the first `total % n` ranks take one more, so the
/// shares add up to `total` exactly.
pub fn shard_sizes(total: u64, n: u64) -> Vec<u64> {
    let n = n.max(1);
    (0..n).map(|r| total / n + u64::from(r < total % n)).collect()
}

/// The largest share of `total` over `n` ranks (rank 0's, the worst rank).
pub fn share(total: u64, n: u64) -> u64 {
    total.div_ceil(n.max(1))
}

/// Parameters of one layer on one tensor/expert-parallel rank.
pub fn layer_params(layer: &Layer, tp: u64, ep: u64) -> u64 {
    let h = layer.hidden;
    let a = &layer.attention;
    let hd = a.head_dim(h);
    let (heads, kv) = heads_per_rank(a, tp);
    let b = |on: bool, n: u64| if on { n } else { 0 };
    let q = h * heads * hd + b(a.q_bias, heads * hd);
    let k = h * kv * hd + b(a.k_bias, kv * hd);
    let v = h * kv * hd + b(a.v_bias, kv * hd);
    let o = heads * hd * h + b(a.o_bias, h);
    // MLA: the low-rank down projections and their norms are shared by the heads (replicated);
    // the per-head up projections and the output split over tp.
    let attn = match &a.mla {
        Some(mla) => mla.params(h, heads),
        None => q + k + v + o,
    };
    let attn = attn * (1 + u64::from(layer.cross_attention));
    let m = &layer.mlp;
    let f = share(m.ffn, tp);
    let up = h * f + b(m.bias, f);
    let down = f * h + b(m.bias, h);
    let expert = up * if m.gated { 2 } else { 1 } + down;
    let router = if m.experts > 1 { h * m.experts } else { 0 };
    let mlp = expert * share(m.experts, ep) + router;
    let norms = layer.norm.params(h) * params::norms_per_layer(layer);
    attn + mlp + norms
}

/// Parameters held by one rank of one pipeline stage (before data-parallel sharding).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageParams {
    pub stage: u64,
    /// Layers of each stack on this stage.
    pub layers: Vec<u64>,
    pub params: u64,
    /// Largest single unit gathered at once under ZeRO-3/FSDP: one layer, or an embedding table.
    pub largest_unit: u64,
    pub first: bool,
    pub last: bool,
    /// For each stack: this stage holds its first layer (and so its embedding-side tensors).
    pub starts_stack: Vec<bool>,
}

pub fn stage_params(model: &ModelSpec, plan: &ParallelPlan, stage: u64) -> StageParams {
    let layers = plan_stage_stack_layers(model, plan, stage);
    let first = stage == 0;
    let last = stage + 1 == plan.pp;
    let b = params::breakdown(model);
    let tp = plan.tp;
    let mut total = 0u64;
    let mut largest = 0u64;
    let token_table = model.tokens.as_ref().map_or(0, |t| share(t.vocab, tp) * t.dim);
    if first {
        total += token_table;
        largest = largest.max(token_table);
        // Non-transformer modules live whole on the first stage; frozen ones are weights only
        // and are added by the estimate (`memory::blocks`).
        let (trainable, _) = crate::model::modules::split_params(model);
        total += trainable.params;
        largest = largest.max(crate::model::modules::largest_block(model));
    }
    for (i, s) in model.stacks.iter().enumerate() {
        let here = layers[i];
        let holds_first = here > 0 && first_stage_of(model, plan, i) == stage;
        let holds_last = here > 0 && last_stage_of(model, plan, i) == stage;
        if holds_first {
            total += b.stack_embeddings[i].params;
            // A later stack that reads tokens needs the (shared) token table on its own stage.
            if stage != 0 && matches!(s.input, StackInput::Tokens) {
                total += token_table;
            }
            // Relative position tables live in the stack's first layer.
            total += relative_tables(s);
        }
        if holds_last {
            total += b.stack_extras[i].params - relative_tables(s);
        }
        let per_layer = layer_params(&s.layer, tp, plan.ep);
        let count = if s.shared_layers { u64::from(here > 0) } else { here };
        total += per_layer * count;
        if here > 0 {
            largest = largest.max(per_layer);
        }
    }
    if last {
        let head = head_params(model, tp);
        total += head;
        largest = largest.max(head);
        // A tied LM head needs the embedding on the last stage too when it is not the first.
        if plan.pp > 1 && model.head.lm_head.as_ref().is_some_and(|h| h.tied) {
            total += token_table;
        }
    }
    let starts_stack =
        (0..model.stacks.len()).map(|i| layers[i] > 0 && first_stage_of(model, plan, i) == stage).collect();
    StageParams { stage, layers, params: total, largest_unit: largest, first, last, starts_stack }
}

fn relative_tables(s: &Stack) -> u64 {
    match s.positions {
        Positions::RelativeBias { buckets } => buckets * s.layer.attention.heads,
        Positions::DisentangledRelative { buckets } => 2 * buckets * s.layer.hidden + 2 * s.layer.hidden,
        _ => 0,
    }
}

fn first_stage_of(model: &ModelSpec, plan: &ParallelPlan, stack: usize) -> u64 {
    (0..plan.pp).find(|&st| plan_stage_stack_layers(model, plan, st)[stack] > 0).unwrap_or(0)
}

fn last_stage_of(model: &ModelSpec, plan: &ParallelPlan, stack: usize) -> u64 {
    (0..plan.pp).rev().find(|&st| plan_stage_stack_layers(model, plan, st)[stack] > 0).unwrap_or(0)
}

/// Head parameters on one tensor-parallel rank: the vocabulary projection and its bias split
/// over tp, everything else replicated.
fn head_params(model: &ModelSpec, tp: u64) -> u64 {
    let Some(last) = model.last_stack() else { return 0 };
    let h = last.layer.hidden;
    let full: Count = params::breakdown(model).head;
    let mut vocab_part = 0;
    if let Some(lm) = &model.head.lm_head {
        let v = model.vocab();
        if !lm.tied {
            vocab_part += v * h;
        }
        if lm.bias {
            vocab_part += v;
        }
    }
    let split = if vocab_part == 0 { 0 } else { share(vocab_part, tp) };
    full.params - vocab_part + split
}

/// Every stage's parameters on one rank.
pub fn stages(model: &ModelSpec, plan: &ParallelPlan) -> Vec<StageParams> {
    (0..plan.pp).map(|s| stage_params(model, plan, s)).collect()
}
