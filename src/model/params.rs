//! Exact parameter counts from the architecture graph, in the order Hugging Face's
//! `num_parameters()` would find them (tied weights counted once). Each count also reports
//! the number of parameter tensors, which sizes per-tensor optimizer state such as Adam's `step`.
//!
//! Counts never wrap: every product and sum saturates at `u64::MAX`, which is sticky (a
//! saturated part keeps the total saturated, as every multiplier of a validated model is ≥ 1),
//! and [`checked_count`] reports it as `None`. `model::validate` refuses a model whose count
//! saturates or exceeds `limits::PARAMS`, so a validated model's counts are exact.

use super::spec::*;
use serde::Serialize;

/// Parameters and parameter tensors of one part of the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Count {
    pub params: u64,
    pub tensors: u64,
}

impl Count {
    pub const ZERO: Count = Count { params: 0, tensors: 0 };

    /// A `d_in × d_out` weight and an optional bias.
    pub fn linear(d_in: u64, d_out: u64, bias: bool) -> Count {
        Count {
            params: d_in.saturating_mul(d_out).saturating_add(if bias { d_out } else { 0 }),
            tensors: 1 + u64::from(bias),
        }
    }

    fn table(rows: u64, width: u64) -> Count {
        if rows == 0 || width == 0 {
            return Count::ZERO;
        }
        Count { params: rows.saturating_mul(width), tensors: 1 }
    }

    fn norm(norm: &Norm, width: u64) -> Count {
        Count { params: norm.params(width), tensors: norm.tensors() }
    }

    /// `n` copies (saturating).
    pub fn times(self, n: u64) -> Count {
        Count { params: self.params.saturating_mul(n), tensors: self.tensors.saturating_mul(n) }
    }
}

impl std::ops::Add for Count {
    type Output = Count;
    fn add(self, o: Count) -> Count {
        Count { params: self.params.saturating_add(o.params), tensors: self.tensors.saturating_add(o.tensors) }
    }
}

impl std::ops::AddAssign for Count {
    fn add_assign(&mut self, o: Count) {
        *self = *self + o;
    }
}

impl std::iter::Sum for Count {
    fn sum<I: Iterator<Item = Count>>(iter: I) -> Count {
        iter.fold(Count::ZERO, |a, b| a + b)
    }
}

/// Parameter counts by part, for display and for sharding rules (embeddings vs layers vs head).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ParamBreakdown {
    /// The shared token embedding.
    pub token_embedding: Count,
    /// Per stack: input embeddings (positions, token types, patch/conv front end, norms, projection).
    pub stack_embeddings: Vec<Count>,
    /// Per stack: one layer's parameters (experts included).
    pub layer: Vec<Count>,
    /// Per stack: all layers (one layer if the stack shares its weights).
    pub layers: Vec<Count>,
    /// Per stack: final norm and stack-level extras (T5 relative bias, DeBERTa relative table).
    pub stack_extras: Vec<Count>,
    /// LM head, pooler, classifier, projections.
    pub head: Count,
    /// Non-transformer modules (`model::modules`), trainable and frozen.
    pub modules: Count,
    pub total: Count,
}

/// One attention block's projections.
pub fn attention(layer: &Layer) -> Count {
    let a = &layer.attention;
    let h = layer.hidden;
    if let Some(mla) = &a.mla {
        return Count { params: mla.params(h, a.heads), tensors: mla.tensors() };
    }
    let hd = a.head_dim(h);
    let (q_width, kv_width) = (a.heads.saturating_mul(hd), a.kv_heads().saturating_mul(hd));
    let q = Count::linear(h, q_width, a.q_bias);
    let k = Count::linear(h, kv_width, a.k_bias);
    let v = Count::linear(h, kv_width, a.v_bias);
    let o = Count::linear(q_width, h, a.o_bias);
    let mut qkv = q + k + v;
    if a.fused_qkv {
        // One projection (GPT-2's c_attn, BLOOM's query_key_value): one weight tensor and one
        // bias tensor instead of three each; the parameter count is the same.
        qkv.tensors = 1 + u64::from(a.q_bias || a.k_bias || a.v_bias);
    }
    qkv + o
}

/// One expert's (or the dense) MLP.
pub fn expert(layer: &Layer) -> Count {
    let m = &layer.mlp;
    let h = layer.hidden;
    let up = Count::linear(h, m.ffn, m.bias);
    let down = Count::linear(m.ffn, h, m.bias);
    if m.gated {
        up.times(2) + down
    } else {
        up + down
    }
}

/// The MLP with all experts stored, plus the router for MoE.
pub fn mlp(layer: &Layer) -> Count {
    let m = &layer.mlp;
    let router = if m.experts > 1 { Count::linear(layer.hidden, m.experts, false) } else { Count::ZERO };
    let shared = if m.shared_ffn > 0 {
        Count::linear(layer.hidden, m.shared_ffn, false).times(2) + Count::linear(m.shared_ffn, layer.hidden, false)
    } else {
        Count::ZERO
    };
    expert(layer).times(m.experts) + router + shared
}

pub fn norms_per_layer(layer: &Layer) -> u64 {
    if layer.parallel_attn_mlp {
        1
    } else {
        2 + u64::from(layer.cross_attention)
    }
}

pub fn layer(layer: &Layer) -> Count {
    let attn = attention(layer).times(1 + u64::from(layer.cross_attention));
    let norms = Count::norm(&layer.norm, layer.hidden).times(norms_per_layer(layer));
    attn + mlp(layer) + norms
}

/// Embedding width seen by a stack before any projection.
pub fn input_width(model: &ModelSpec, stack: &Stack) -> u64 {
    match stack.input {
        StackInput::Tokens => model.tokens.as_ref().map_or(stack.layer.hidden, |t| t.dim),
        _ => stack.layer.hidden,
    }
}

fn stack_embeddings(model: &ModelSpec, stack: &Stack) -> Count {
    let h = stack.layer.hidden;
    let width = input_width(model, stack);
    let mut c = Count::ZERO;
    match &stack.input {
        StackInput::Tokens | StackInput::Hidden => {}
        StackInput::Patches { channels, patch, conv_bias, class_token, .. } => {
            c += Count::linear(channels.saturating_mul(patch.saturating_mul(*patch)), h, *conv_bias);
            if *class_token {
                c += Count::table(1, h);
            }
        }
        StackInput::AudioConv { mel_bins, .. } => {
            // Whisper: Conv1d(mel, h, k=3) and Conv1d(h, h, k=3, stride 2), both with bias.
            c += Count::linear(mel_bins.saturating_mul(3), h, true) + Count::linear(h.saturating_mul(3), h, true);
        }
    }
    if let Positions::Learned { max, offset } = stack.positions {
        let rows = match &stack.input {
            StackInput::Patches { patch, image, class_token, .. } => {
                // One row per patch (+ the class token): the table size follows the image.
                let side = image.checked_div(*patch).unwrap_or(0);
                side.saturating_mul(side).saturating_add(u64::from(*class_token))
            }
            _ => max.saturating_add(offset),
        };
        c += Count::table(rows, width);
    }
    c += Count::table(stack.token_types, width);
    if let Some(norm) = &stack.embedding_norm {
        c += Count::norm(norm, width);
    }
    if stack.embedding_projection && width != h {
        c += Count::linear(width, h, true);
    }
    if let Some(v) = &stack.visual {
        // VisualBertEmbeddings: visual_token_type_embeddings [type_vocab, h],
        // visual_position_embeddings [max_position, h], visual_projection Linear(feature_dim, h).
        let rows = match stack.positions {
            Positions::Learned { max, offset } => max + offset,
            _ => 0,
        };
        c += Count::table(stack.token_types, h) + Count::table(rows, h) + Count::linear(v.feature_dim, h, true);
    }
    c
}

fn stack_extras(stack: &Stack) -> Count {
    let h = stack.layer.hidden;
    let mut c = Count::ZERO;
    match stack.positions {
        Positions::RelativeBias { buckets } => c += Count::table(buckets, stack.layer.attention.heads),
        Positions::DisentangledRelative { buckets } => {
            c += Count::table(buckets.saturating_mul(2), h);
            c += Count::norm(&Norm { kind: NormKind::LayerNorm, bias: true }, h);
        }
        _ => {}
    }
    if let Some(norm) = &stack.final_norm {
        c += Count::norm(norm, h);
    }
    c
}

fn head(model: &ModelSpec) -> Count {
    let mut c = Count::ZERO;
    let Some(last) = model.last_stack() else {
        return c;
    };
    let h = last.layer.hidden;
    let vocab = model.vocab();
    if let Some(lm) = &model.head.lm_head {
        // The MLM transform maps the hidden state to the token-embedding width, which the
        // decoder shares (BERT: h -> h; ALBERT's factorized embeddings: h -> E, LayerNorm over E).
        let decoder_in = if lm.transform { model.tokens.as_ref().map_or(h, |t| t.dim) } else { h };
        if lm.transform {
            c += Count::linear(h, decoder_in, true)
                + Count::norm(&Norm { kind: NormKind::LayerNorm, bias: true }, decoder_in);
        }
        if !lm.tied {
            c += Count::linear(decoder_in, vocab, false);
        }
        if lm.bias {
            c += Count::table(1, vocab);
        }
    }
    if model.head.pooler {
        c += Count::linear(h, h, true);
    }
    if let Some(classes) = model.head.classifier {
        c += Count::linear(h, classes, true);
    }
    if let Some(dim) = model.head.contrastive_dim {
        for s in &model.stacks {
            c += Count::linear(s.layer.hidden, dim, false);
        }
        c += Count::table(1, 1); // logit_scale
    }
    c
}

pub fn breakdown(model: &ModelSpec) -> ParamBreakdown {
    let token_embedding = model.tokens.as_ref().map_or(Count::ZERO, |t| Count::table(t.vocab, t.dim));
    let stack_embeddings: Vec<Count> = model.stacks.iter().map(|s| stack_embeddings(model, s)).collect();
    let layer_counts: Vec<Count> = model.stacks.iter().map(|s| layer(&s.layer)).collect();
    let layers: Vec<Count> = model
        .stacks
        .iter()
        .zip(&layer_counts)
        .map(|(s, c)| c.times(if s.shared_layers { 1 } else { s.layers }))
        .collect();
    let stack_extras: Vec<Count> = model.stacks.iter().map(stack_extras).collect();
    let head = head(model);
    let modules = super::modules::total_params(model);
    let total = token_embedding
        + stack_embeddings.iter().copied().sum()
        + layers.iter().copied().sum()
        + stack_extras.iter().copied().sum()
        + head
        + modules;
    ParamBreakdown {
        token_embedding,
        stack_embeddings,
        layer: layer_counts,
        layers,
        stack_extras,
        head,
        modules,
        total,
    }
}

/// Total parameters (every expert counted), as `num_parameters()` reports it.
pub fn count(model: &ModelSpec) -> u64 {
    breakdown(model).total.params
}

/// The total, or `None` when it does not fit in `u64` (the count saturated).
pub fn checked_count(model: &ModelSpec) -> Option<u64> {
    let b = breakdown(model);
    (b.total.params < u64::MAX && b.total.tensors < u64::MAX).then_some(b.total.params)
}

/// Parameters touched per token: MoE layers count `top_k` experts instead of all.
pub fn active_count(model: &ModelSpec) -> u64 {
    let b = breakdown(model);
    let mut inactive = 0;
    for (s, _) in model.stacks.iter().zip(&b.layers) {
        let m = &s.layer.mlp;
        if m.experts > m.top_k {
            let per_layer = expert(&s.layer).params.saturating_mul(m.experts - m.top_k);
            inactive = per_layer.saturating_mul(if s.shared_layers { 1 } else { s.layers }).saturating_add(inactive);
        }
    }
    b.total.params.saturating_sub(inactive)
}
