//! What one rank holds: parameters of its pipeline stage, split over tensor- and
//! expert-parallel ranks as Megatron-LM splits them — Q/K/V and the first MLP matrix by
//! columns (with their biases), the output and second MLP matrix by rows (biases replicated),
//! norms replicated, embeddings and the LM head over the vocabulary, experts over `ep`.
//! Uneven splits give the first ranks one more row, so the shards add up exactly.

use super::pipeline::plan_stage_stack_layers;
use super::plan::ParallelPlan;
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
    // DeepSeekMoE's shared experts run on every token: a dense gated MLP (no bias), split over
    // tp like the dense MLP and replicated over ep (Megatron-Core `SharedExpertMLP` is a
    // tensor-parallel `MLP`; DeepSeek-V2 modeling `DeepseekV2MoE.shared_experts`).
    let shared = if m.shared_ffn > 0 { 3 * h * share(m.shared_ffn, tp) } else { 0 };
    let mlp = expert * share(m.experts, ep) + router + shared;
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

/// Query and key/value heads held by one tensor-parallel rank; KV heads are replicated so that
/// every rank has at least one (Megatron GQA with tp > kv_heads).
pub fn heads_per_rank(a: &crate::model::spec::Attention, tp: u64) -> (u64, u64) {
    (a.heads.div_ceil(tp), (a.kv_heads() / tp).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::presets;

    fn plan(tp: u64, pp: u64, ep: u64) -> ParallelPlan {
        ParallelPlan { tp, pp, ep, ..ParallelPlan::single() }
    }

    /// A tied LM head on a later stage holds its own copy of the token table.
    fn tied_copies(model: &ModelSpec, pp: u64) -> u64 {
        let tied = model.head.lm_head.as_ref().is_some_and(|h| h.tied);
        if pp > 1 && tied {
            model.tokens.as_ref().map_or(0, |t| t.vocab * t.dim)
        } else {
            0
        }
    }

    #[test]
    fn every_moe_preset_adds_up_over_stages() {
        // One rank per stage (tp = ep = 1): the stages together hold the model once, shared
        // experts included (DeepSeek-V2-Lite was 449.8M short: 26 MoE layers × 3 × 2048 × 2816).
        let mut checked = 0;
        for name in presets::model_names() {
            let m = presets::model(name).unwrap();
            if !m.stacks.iter().any(|s| s.layer.mlp.experts > 1) {
                continue;
            }
            let total = params::count(&m);
            for pp in 1..=4.min(m.total_layers()) {
                let sum: u64 = stages(&m, &plan(1, pp, 1)).iter().map(|s| s.params).sum();
                assert_eq!(sum, total + tied_copies(&m, pp), "{name} pp {pp}");
            }
            checked += 1;
        }
        assert!(checked >= 3, "Mixtral, DeepSeek-V2-Lite and V3 are MoE presets");
    }

    #[test]
    fn expert_parallel_ranks_share_the_routed_experts_only() {
        // Over ep ranks each routed expert is held once; everything else (attention, router,
        // shared experts, norms, embeddings) is on every rank: sum = count + (ep − 1)·rest.
        for name in ["deepseek-v2-lite", "deepseek-v3", "mixtral-8x7b"] {
            let m = presets::model(name).unwrap();
            let routed: u64 = m
                .stacks
                .iter()
                .filter(|s| s.layer.mlp.experts > 1)
                .map(|s| {
                    let l = &s.layer;
                    let f = l.mlp.ffn;
                    let per_expert = l.hidden * f * if l.mlp.gated { 2 } else { 1 } + f * l.hidden;
                    per_expert * l.mlp.experts * s.layers
                })
                .sum();
            let total = params::count(&m);
            let ep = 8;
            let rank = stages(&m, &plan(1, 1, ep))[0].params;
            assert_eq!(rank * ep, total + (ep - 1) * (total - routed), "{name}");
        }
    }

    #[test]
    fn deepseek_v2_lite_shared_experts_split_over_tp() {
        // Shared experts of one MoE layer: gate, up (2048 × 2816 each) and down (2816 × 2048),
        // halved by tp 2 (column- and row-parallel like a dense MLP).
        let m = presets::model("deepseek-v2-lite").unwrap();
        let moe = &m.stacks[1].layer;
        let no_shared = Layer { mlp: Mlp { shared_ffn: 0, ..moe.mlp.clone() }, ..moe.clone() };
        assert_eq!(layer_params(moe, 1, 1) - layer_params(&no_shared, 1, 1), 3 * 2048 * 2816);
        assert_eq!(layer_params(moe, 2, 1) - layer_params(&no_shared, 2, 1), 3 * 2048 * 1408);
        assert_eq!(26 * 3 * 2048 * 2816, 449_839_104, "the 449.8M that were missing");
    }
}
