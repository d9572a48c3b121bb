//! KV cache for inference: 2 (K and V) · layers · batch · tokens · kv_heads · head_dim · bytes,
//! for every causal stack; encoder-decoder models also cache the cross-attention K/V of the
//! encoder output.

use super::activations::StackShape;
use super::setup::Setup;
use crate::model::spec::ModelSpec;

pub fn kv_cache_bytes(model: &ModelSpec, shapes: &[StackShape], setup: &Setup) -> u64 {
    if setup.training() || !setup.kv_cache {
        return 0;
    }
    let dtype = setup.precision.activation_dtype();
    model
        .stacks
        .iter()
        .zip(shapes)
        .filter(|(s, _)| s.causal)
        .map(|(s, sh)| {
            let a = &s.layer.attention;
            let per_token = 2 * a.kv_heads() * a.head_dim(s.layer.hidden);
            let self_kv = s.layers * sh.batch * sh.seq * per_token;
            let cross_kv = if s.layer.cross_attention { s.layers * sh.batch * sh.cross_seq * per_token } else { 0 };
            dtype.bytes(self_kv + cross_kv)
        })
        .sum()
}
