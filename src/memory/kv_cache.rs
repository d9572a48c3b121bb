//! KV cache for inference: 2 (K and V) · layers · batch · tokens · kv_heads · head_dim · bytes,
//! for every causal stack; encoder-decoder models also cache the cross-attention K/V of the
//! encoder output. Under tensor parallelism each rank holds its KV heads (at least one).

use super::activations::{heads_per_rank, StackShape};
use super::setup::Setup;
use crate::model::spec::ModelSpec;

/// KV cache of the `layers` of each stack held by one rank.
pub fn kv_cache_bytes(model: &ModelSpec, layers: &[u64], shapes: &[StackShape], setup: &Setup) -> u64 {
    if setup.training() || !setup.kv_cache {
        return 0;
    }
    let dtype = setup.kv_dtype.unwrap_or_else(|| setup.precision.activation_dtype());
    model
        .stacks
        .iter()
        .zip(shapes)
        .zip(layers)
        .filter(|((s, _), _)| s.causal)
        .map(|((s, sh), &layers)| {
            let a = &s.layer.attention;
            let (_, kv) = heads_per_rank(a, sh.tp);
            // MLA caches one latent and one rotary key per token, shared by all heads (and ranks).
            let per_token = match &a.mla {
                Some(mla) => mla.cache_per_token(),
                None => 2 * kv * a.head_dim(s.layer.hidden),
            };
            let cross = if s.layer.cross_attention { sh.cross_seq } else { 0 };
            dtype.bytes(layers * sh.batch * (cached_tokens(sh.seq, setup) + cross) * per_token)
        })
        .sum()
}

/// Tokens one sequence keeps in the cache: the context (prompt + generated, default the prompt),
/// rounded up to whole blocks when the cache is paged (vLLM, Kwon et al. 2023 §4.1).
pub fn cached_tokens(seq: u64, setup: &Setup) -> u64 {
    let tokens = setup.context.unwrap_or(seq).max(seq);
    match setup.kv_block {
        Some(b) if b > 0 => tokens.div_ceil(b) * b,
        _ => tokens,
    }
}
