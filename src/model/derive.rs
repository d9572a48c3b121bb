//! A decoder-only shape for a bare parameter count (`--params 1b`). Model states use the count
//! exactly; activations need a shape, so one is derived and shown to the user.
//!
//! The shape is LLaMA-style (Touvron et al. 2023: pre-RMSNorm, rotary positions, SwiGLU MLP with
//! ffn = 8h/3 rounded up to a multiple of 256, no biases, untied head, 32,000-token vocabulary,
//! head width 128) with the hidden size taken from the published family at the nearest size
//! (GPT-3 paper Table 2.1 for 125M–2.7B, LLaMA 1/2 for 7B–70B) and the layer count solved from
//! the parameter count: N ≈ 2·V·h + L·(4h² + 3h·ffn).

use crate::model::spec::*;

/// (parameters, hidden) anchors from published models.
const ANCHORS: &[(f64, u64)] = &[
    (125e6, 768),   // GPT-3 Small
    (350e6, 1024),  // GPT-3 Medium
    (760e6, 1536),  // GPT-3 XL is 1.3B; 760M = GPT-3 Large
    (1.3e9, 2048),  // GPT-3 XL
    (2.7e9, 2560),  // GPT-3 2.7B
    (6.7e9, 4096),  // LLaMA 7B
    (13e9, 5120),   // LLaMA 13B
    (33e9, 6656),   // LLaMA 33B
    (70e9, 8192),   // LLaMA-2 70B
    (175e9, 12288), // GPT-3 175B
    (405e9, 16384), // LLaMA-3.1 405B
    (1e12, 25600),  // Megatron 1T
];

pub const DERIVED_VOCAB: u64 = 32_000;
pub const DERIVED_HEAD_DIM: u64 = 128;

/// Hidden size for `n` parameters: log-linear interpolation between the anchors, rounded to a
/// multiple of the head width.
pub fn hidden_for(n: u64) -> u64 {
    let n = n as f64;
    let log = n.max(1.0).ln();
    let (first, last) = (ANCHORS[0], ANCHORS[ANCHORS.len() - 1]);
    let h = if n <= first.0 {
        first.1 as f64 * (n / first.0).sqrt()
    } else if n >= last.0 {
        last.1 as f64 * (n / last.0).sqrt()
    } else {
        let i = ANCHORS.iter().position(|a| a.0 >= n).unwrap_or(ANCHORS.len() - 1).max(1);
        let (n0, h0) = ANCHORS[i - 1];
        let (n1, h1) = ANCHORS[i];
        let t = (log - n0.ln()) / (n1.ln() - n0.ln());
        (h0 as f64).ln() * (1.0 - t) + (h1 as f64).ln() * t
    };
    let h = if n > first.0 && n < last.0 { h.exp() } else { h };
    let rounded = ((h / DERIVED_HEAD_DIM as f64).round() as u64).max(1) * DERIVED_HEAD_DIM;
    rounded.min(1 << 20)
}

/// SwiGLU width for hidden `h`: 8h/3 rounded up to a multiple of 256 (LLaMA's rule).
pub fn swiglu_ffn(h: u64) -> u64 {
    (8 * h / 3).div_ceil(256) * 256
}

/// A LLaMA-style decoder whose parameter count is as close to `n` as whole layers allow.
pub fn decoder_for_params(n: u64) -> ModelSpec {
    let h = hidden_for(n);
    let ffn = swiglu_ffn(h);
    let per_layer = 4 * h * h + 3 * h * ffn + 2 * h;
    let embeddings = 2 * DERIVED_VOCAB * h + h;
    let layers = (n.saturating_sub(embeddings) as f64 / per_layer as f64).round().max(1.0) as u64;
    let heads = (h / DERIVED_HEAD_DIM).max(1);
    ModelSpec {
        name: format!("derived-{}", crate::units::format_count(n).to_lowercase()),
        family: "llama-style (derived)".into(),
        architecture: Architecture::Decoder,
        tokens: Some(TokenEmbedding { vocab: DERIVED_VOCAB, dim: h }),
        stacks: vec![Stack {
            name: "decoder".into(),
            causal: true,
            input: StackInput::Tokens,
            positions: Positions::Rotary,
            length: StackLength::Seq,
            token_types: 0,
            embedding_norm: None,
            embedding_projection: false,
            layers,
            shared_layers: false,
            layer: Layer {
                hidden: h,
                attention: Attention {
                    heads,
                    kv_heads: None,
                    head_dim: None,
                    q_bias: false,
                    k_bias: false,
                    v_bias: false,
                    o_bias: false,
                    dropout: 0.0,
                    fused_qkv: false,
                    sparse: None,
                    mla: None,
                },
                cross_attention: false,
                mlp: Mlp {
                    ffn,
                    gated: true,
                    bias: false,
                    activation: Activation::Silu,
                    experts: 1,
                    top_k: 1,
                    inner_dropout: 0.0,
                    shared_ffn: 0,
                },
                norm: Norm { kind: NormKind::RmsNorm, bias: false },
                norm_placement: NormPlacement::Pre,
                parallel_attn_mlp: false,
                hidden_dropout: 0.0,
            },
            final_norm: Some(Norm { kind: NormKind::RmsNorm, bias: false }),
            embedding_dropout: 0.0,
            visual: None,
        }],
        head: Head {
            lm_head: Some(LmHead { tied: false, bias: false, transform: false, rescale: false }),
            ..Head::default()
        },
        buffer_bytes: 0,
        modules: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params;

    #[test]
    fn derived_shapes_follow_published_anchors() {
        // LLaMA-2 7B: h 4096, 32 layers, 6.74B parameters (Touvron et al. 2023, Table 1).
        let m = decoder_for_params(6_738_415_616);
        assert_eq!(m.stacks[0].layer.hidden, 4096);
        assert_eq!(m.stacks[0].layers, 32);
        // 1B lands between GPT-3 XL's 2048-wide 1.3B and 760M; the count is within one layer.
        let m = decoder_for_params(1_000_000_000);
        let per_layer = params::layer(&m.stacks[0].layer).params as f64;
        assert!((params::count(&m) as f64 - 1e9).abs() <= per_layer);
    }
}
