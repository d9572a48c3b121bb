//! Checks that a model description can exist before anything is computed from it: every size
//! positive where it must be and below a stated physical bound, the parts consistent with each
//! other (heads dividing the hidden size, a token table for a token input, ...), and the
//! parameter count below [`limits::PARAMS`]. Within these bounds every count in `model::params`
//! and `model::modules` is exact in `u64`; the same bounds apply to Hugging Face configs
//! ([`hf_int_limit`]), where they name the config's own field.

use crate::error::{Error, Result};
use crate::model::modules::Module;
use crate::model::spec::*;

/// Upper bounds on model dimensions, each a power of two far above any published model (largest
/// known: hidden 25,600 and 128 layers (Korthikanti et al. 2022's 1T GPT), vocabularies of 256k,
/// 10M-token position tables, 256 routed experts (DeepSeek-V3)), and low enough that products of
/// them stay exact in `u64` (e.g. layers × positions² of GPT-Neo's mask buffers < 2^63).
pub mod limits {
    /// Hidden sizes, embedding widths, latent ranks: 2^20.
    pub const WIDTH: u64 = 1 << 20;
    /// MLP widths: 2^24.
    pub const FFN: u64 = 1 << 24;
    /// Attention heads and key/value heads: 2^16.
    pub const HEADS: u64 = 1 << 16;
    /// Per-head widths: 2^16.
    pub const HEAD_DIM: u64 = 1 << 16;
    /// Layers of a stack: 2^14.
    pub const LAYERS: u64 = 1 << 14;
    /// Vocabulary rows, token types, classes: 2^24.
    pub const VOCAB: u64 = 1 << 24;
    /// Position-table rows, relative buckets, audio frames, context tokens: 2^24.
    pub const POSITIONS: u64 = 1 << 24;
    /// Experts of a mixture-of-experts MLP: 2^16.
    pub const EXPERTS: u64 = 1 << 16;
    /// Image side in pixels: 2^16.
    pub const IMAGE: u64 = 1 << 16;
    /// Patch side in pixels: 2^12.
    pub const PATCH: u64 = 1 << 12;
    /// Channels of convolutions and images, mel bins: 2^16.
    pub const CHANNELS: u64 = 1 << 16;
    /// Resolution levels or stages of a convolutional module: 16.
    pub const LEVELS: u64 = 16;
    /// Blocks per stage or level, transformer depth of a level: 2^12.
    pub const BLOCKS: u64 = 1 << 12;
    /// Total parameters: 2^50 (about 1.1 quadrillion, ~500× the largest trained models), so that
    /// parameters × bytes per parameter of any recipe stays exact in `u64`.
    pub const PARAMS: u64 = 1 << 50;
    /// Device buffers of the model: 2^50 bytes (1 PiB).
    pub const BUFFER_BYTES: u64 = 1 << 50;
    /// Any other integer of a Hugging Face config (token ids, kernel sizes, ...): 2^32.
    pub const OTHER: u64 = 1 << 32;
}

/// `2^20 (1,048,576)` for a power-of-two bound, else the number with separators.
pub fn fmt_limit(limit: u64) -> String {
    if limit.is_power_of_two() && limit >= 1024 {
        format!("2^{} ({})", limit.trailing_zeros(), commas(limit))
    } else {
        commas(limit)
    }
}

/// `1048576` → `1,048,576`.
pub fn commas(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The bound on an integer field of a Hugging Face config, by its name, and what it measures.
/// Unknown keys get [`limits::OTHER`], so that no config integer is unbounded.
pub fn hf_int_limit(key: &str) -> (u64, &'static str) {
    use limits::*;
    let k = key;
    let is = |names: &[&str]| names.contains(&k);
    if is(&["intermediate_size", "n_inner", "encoder_ffn_dim", "decoder_ffn_dim", "d_ff", "ffn_dim", "hidden_dim"])
        || k.ends_with("intermediate_size")
        || k.ends_with("ffn_dim")
    {
        (FFN, "an MLP width")
    } else if is(&["head_dim", "d_kv", "rotary_dim"]) || k.ends_with("head_dim") {
        (HEAD_DIM, "a per-head width")
    } else if k.ends_with("heads") || k.ends_with("_head") {
        (HEADS, "a number of attention heads")
    } else if k.contains("layers") || is(&["n_layer", "num_hidden_groups", "inner_group_num", "first_k_dense_replace"])
    {
        (LAYERS, "a number of layers")
    } else if k.contains("experts") {
        (EXPERTS, "a number of experts")
    } else if k.contains("vocab") || is(&["num_labels"]) {
        (VOCAB, "a vocabulary or class count")
    } else if k.contains("positions") || k.contains("buckets") {
        (POSITIONS, "a number of positions")
    } else if is(&["image_size"]) {
        (IMAGE, "an image side in pixels")
    } else if is(&["patch_size"]) {
        (PATCH, "a patch side in pixels")
    } else if is(&["num_channels", "num_mel_bins"]) {
        (CHANNELS, "a number of channels")
    } else if is(&["hidden_size", "n_embd", "n_embed", "d_model", "dim", "embedding_size", "word_embed_proj_dim"])
        || k.ends_with("_dim")
        || k.ends_with("_size")
        || k.ends_with("_rank")
    {
        (WIDTH, "a width")
    } else {
        (OTHER, "a config integer")
    }
}

/// A number of a Hugging Face config: finite; probabilities (dropouts) in [0, 1); fractions
/// (`partial_rotary_factor`) in (0, 1]. The message says what would be valid.
pub fn hf_float_check(key: &str, x: f64) -> std::result::Result<(), String> {
    if !x.is_finite() {
        return Err(format!("{x} is not a finite number"));
    }
    let probability = key.contains("dropout") || key.contains("pdrop") || key.ends_with("_prob");
    if probability && !(0.0..1.0).contains(&x) {
        return Err(format!("{x} is not a probability in [0, 1)"));
    }
    if key.ends_with("_factor") && key.contains("rotary") && !(x > 0.0 && x <= 1.0) {
        return Err(format!("{x} is not a fraction in (0, 1]"));
    }
    Ok(())
}

/// The error text for `value` over `limit`.
pub fn too_large(value: u64, limit: u64, what: &str) -> String {
    format!("{value} is too large for {what}: at most {}", fmt_limit(limit))
}

/// A shape error that names the TOML field (`field `stacks.layer.hidden``), so that a preset
/// file's error can point at its line.
fn field_err(ctx: &str, field: &str, message: String, hint: impl Into<String>) -> Error {
    let prefix = if ctx.is_empty() { String::new() } else { format!("{ctx}: ") };
    Error::shape(format!("{prefix}field `{field}`: {message}"), hint)
}

/// `value` in `1..=limit` (`min` 1), or `0..=limit` (`min` 0).
fn range(ctx: &str, field: &str, value: u64, min: u64, limit: u64, what: &str) -> Result<()> {
    if value < min {
        return Err(field_err(
            ctx,
            field,
            format!("{value} is not a positive {what}"),
            format!("give {field} ≥ {min}"),
        ));
    }
    if value > limit {
        return Err(field_err(
            ctx,
            field,
            too_large(value, limit, what),
            format!("no real model comes near this bound; check the value of `{field}`"),
        ));
    }
    Ok(())
}

pub fn validate(m: &ModelSpec) -> Result<()> {
    use limits::*;
    if m.stacks.is_empty() && m.modules.is_empty() {
        return Err(Error::shape(
            format!("model `{}` has no stacks and no modules", m.name),
            "add at least one [[stacks]] or [[modules]] table",
        ));
    }
    crate::model::modules::validate(m)?;
    if let Some(t) = &m.tokens {
        if t.vocab == 0 || t.dim == 0 {
            return Err(Error::shape(
                format!("token embedding with vocabulary {} and width {}: both must be positive", t.vocab, t.dim),
                "set tokens.vocab and tokens.dim > 0",
            ));
        }
        range("", "tokens.vocab", t.vocab, 1, VOCAB, "vocabulary")?;
        range("", "tokens.dim", t.dim, 1, WIDTH, "embedding width")?;
    }
    range("", "buffer_bytes", m.buffer_bytes, 0, BUFFER_BYTES, "buffer size in bytes")?;
    for (i, s) in m.stacks.iter().enumerate() {
        let l = &s.layer;
        let a = &l.attention;
        let ctx = |what: String| format!("stack `{}`: {what}", s.name);
        let c = format!("stack `{}`", s.name);
        if s.layers == 0 {
            return Err(Error::shape(ctx("0 layers".into()), "layers must be at least 1"));
        }
        range(&c, "stacks.layers", s.layers, 1, LAYERS, "number of layers")?;
        range(&c, "stacks.layer.hidden", l.hidden, 1, WIDTH, "hidden size")?;
        range(&c, "stacks.layer.attention.heads", a.heads, 1, HEADS, "number of attention heads")?;
        range(&c, "stacks.layer.mlp.ffn", l.mlp.ffn, 1, FFN, "MLP width")?;
        if let Some(d) = a.head_dim {
            range(&c, "stacks.layer.attention.head_dim", d, 1, HEAD_DIM, "per-head width")?;
        }
        if a.head_dim.is_none() && l.hidden % a.heads != 0 {
            return Err(Error::shape(
                ctx(format!("{} heads do not divide hidden size {}", a.heads, l.hidden)),
                format!(
                    "choose heads among the divisors of {} (e.g. {}), or give head_dim",
                    l.hidden,
                    divisors_near(l.hidden, a.heads)
                ),
            ));
        }
        let kv = a.kv_heads();
        if kv == 0 || kv > a.heads || a.heads % kv != 0 {
            return Err(Error::shape(
                ctx(format!("{kv} key/value heads do not divide {} attention heads", a.heads)),
                "kv_heads must divide heads (1 = MQA, heads = MHA)",
            ));
        }
        if let Some(mla) = &a.mla {
            range(&c, "stacks.layer.attention.mla.kv_lora_rank", mla.kv_lora_rank, 1, WIDTH, "latent rank")?;
            if let Some(r) = mla.q_lora_rank {
                range(&c, "stacks.layer.attention.mla.q_lora_rank", r, 1, WIDTH, "latent rank")?;
            }
            range(&c, "stacks.layer.attention.mla.rope_head_dim", mla.rope_head_dim, 0, HEAD_DIM, "per-head width")?;
            range(&c, "stacks.layer.attention.mla.nope_head_dim", mla.nope_head_dim, 0, HEAD_DIM, "per-head width")?;
            range(&c, "stacks.layer.attention.mla.v_head_dim", mla.v_head_dim, 1, HEAD_DIM, "per-head width")?;
            if mla.rope_head_dim + mla.nope_head_dim == 0 {
                return Err(field_err(
                    &c,
                    "stacks.layer.attention.mla.rope_head_dim",
                    "query/key heads of width 0 (rope_head_dim + nope_head_dim)".into(),
                    "DeepSeek-V3: rope_head_dim = 64, nope_head_dim = 128",
                ));
            }
        }
        if let Some(sp) = a.sparse {
            if sp.block == 0 {
                return Err(Error::shape(
                    ctx("block-sparse attention with block 0".into()),
                    "set sparse.block > 0 (BigBird: 64)",
                ));
            }
            range(&c, "stacks.layer.attention.sparse.block", sp.block, 1, POSITIONS, "block of tokens")?;
            range(&c, "stacks.layer.attention.sparse.random", sp.random, 0, BLOCKS, "number of random blocks")?;
            if l.cross_attention || s.causal {
                return Err(Error::shape(
                    ctx("block-sparse attention in a causal or cross-attending stack".into()),
                    "BigBird's block-sparse attention is bidirectional self-attention: use it in encoder stacks",
                ));
            }
        }
        if l.mlp.experts == 0 || l.mlp.top_k == 0 || l.mlp.top_k > l.mlp.experts {
            return Err(Error::shape(
                ctx(format!("top_k {} with {} experts", l.mlp.top_k, l.mlp.experts)),
                "need 1 <= top_k <= experts",
            ));
        }
        range(&c, "stacks.layer.mlp.experts", l.mlp.experts, 1, EXPERTS, "number of experts")?;
        range(&c, "stacks.layer.mlp.shared_ffn", l.mlp.shared_ffn, 0, FFN, "MLP width")?;
        range(&c, "stacks.token_types", s.token_types, 0, VOCAB, "number of token types")?;
        match s.positions {
            Positions::Learned { max, offset } => {
                range(&c, "stacks.positions.max", max, 0, POSITIONS, "number of positions")?;
                range(&c, "stacks.positions.offset", offset, 0, POSITIONS, "number of positions")?;
            }
            Positions::RelativeBias { buckets } | Positions::DisentangledRelative { buckets } => {
                range(&c, "stacks.positions.buckets", buckets, 0, POSITIONS, "number of buckets")?;
            }
            _ => {}
        }
        match s.input {
            StackInput::Tokens => match &m.tokens {
                None => {
                    return Err(Error::shape(
                        ctx("reads tokens but the model has no [tokens] table".into()),
                        "add [tokens] vocab and dim",
                    ))
                }
                Some(t) if t.dim != l.hidden && !s.embedding_projection => {
                    return Err(field_err(
                        &c,
                        "stacks.embedding_projection",
                        format!("token embeddings of width {} feed layers of hidden size {}", t.dim, l.hidden),
                        "set embedding_projection = true (ALBERT), or make tokens.dim equal to the hidden size",
                    ))
                }
                Some(_) => {}
            },
            StackInput::Patches { patch, image, channels, .. } => {
                if patch == 0 || image == 0 || channels == 0 || image % patch != 0 {
                    return Err(Error::shape(
                        ctx(format!("image {image} is not a multiple of patch {patch}")),
                        "image must be a positive multiple of patch",
                    ));
                }
                range(&c, "stacks.input.patch", patch, 1, PATCH, "patch side in pixels")?;
                range(&c, "stacks.input.image", image, 1, IMAGE, "image side in pixels")?;
                range(&c, "stacks.input.channels", channels, 1, CHANNELS, "number of channels")?;
            }
            StackInput::AudioConv { mel_bins, frames } => {
                range(&c, "stacks.input.mel_bins", mel_bins, 1, CHANNELS, "number of mel bins")?;
                range(&c, "stacks.input.frames", frames, 1, POSITIONS, "number of frames")?;
            }
            StackInput::Hidden => {
                let prev = i.checked_sub(1).map(|p| &m.stacks[p]);
                if prev.is_none_or(|p| p.layer.hidden != l.hidden) {
                    return Err(field_err(
                        &c,
                        "stacks.input",
                        match prev {
                            None => "reads the hidden states of a previous stack, but it is the first".into(),
                            Some(p) => format!(
                                "reads hidden states of size {} from stack `{}` with hidden size {}",
                                l.hidden, p.name, p.layer.hidden
                            ),
                        },
                        "a `hidden` input continues the stack before it, at the same hidden size",
                    ));
                }
            }
        }
        for p in [a.dropout, l.hidden_dropout, s.embedding_dropout, l.mlp.inner_dropout] {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::shape(ctx(format!("dropout probability {p}")), "dropout must be in [0, 1)"));
            }
        }
        if l.cross_attention && !m.stacks.iter().any(|o| !o.causal && o.name != s.name) {
            return Err(Error::shape(
                ctx("cross-attention without an encoder stack".into()),
                "add an encoder stack before it",
            ));
        }
    }
    if m.head.lm_head.is_some() && m.tokens.is_none() {
        return Err(field_err(
            "",
            "head.lm_head",
            "a language-model head without a [tokens] table (its vocabulary)".into(),
            "add [tokens] vocab and dim, or remove head.lm_head",
        ));
    }
    if let Some(n) = m.head.classifier {
        range("", "head.classifier", n, 1, VOCAB, "number of classes")?;
    }
    if let Some(d) = m.head.contrastive_dim {
        range("", "head.contrastive_dim", d, 1, WIDTH, "projection width")?;
    }
    // Within the bounds above no count can overflow; the total is still bounded so that
    // parameters × bytes per parameter is exact in every memory recipe.
    let total = crate::model::params::checked_count(m);
    match total {
        Some(p) if p <= PARAMS => Ok(()),
        _ => Err(Error::shape(
            format!(
                "model `{}` has {} parameters: at most {} are supported",
                m.name,
                total.map_or("more than 2^64".into(), |p| format!("{p} ({})", commas(p))),
                fmt_limit(PARAMS)
            ),
            "the largest trained models have about 2·10^12 parameters; check the sizes in the model",
        )),
    }
}

fn divisors_near(n: u64, target: u64) -> String {
    let mut ds: Vec<u64> = (1..=n.min(4096)).filter(|d| n.is_multiple_of(*d)).collect();
    ds.sort_by_key(|d| d.abs_diff(target));
    ds.truncate(3);
    ds.sort();
    ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}

/// Bounds on a module's sizes ([`crate::model::modules::validate`] checks their consistency).
pub fn module_bounds(m: &Module) -> Result<()> {
    use limits::*;
    let c = format!("module `{}`", m.name());
    let c = c.as_str();
    let list = |field: &str, values: &[u64], limit: u64, what: &str| -> Result<()> {
        range(c, field, values.len() as u64, 1, LEVELS, "number of levels")?;
        values.iter().try_for_each(|&v| range(c, field, v, 1, limit, what))
    };
    match m {
        Module::Resnet(r) => {
            range(c, "modules.image", r.image, 1, IMAGE, "image side in pixels")?;
            range(c, "modules.in_channels", r.in_channels, 1, CHANNELS, "number of channels")?;
            range(c, "modules.stem", r.stem, 1, CHANNELS, "number of channels")?;
            list("modules.layers", &r.layers, BLOCKS, "number of blocks")?;
            list("modules.widths", &r.widths, CHANNELS, "number of channels")?;
            if let Some(n) = r.classes {
                range(c, "modules.classes", n, 1, VOCAB, "number of classes")?;
            }
        }
        Module::Unet(u) => {
            range(c, "modules.image", u.image, 1, IMAGE, "image side in pixels")?;
            range(c, "modules.in_channels", u.in_channels, 1, CHANNELS, "number of channels")?;
            range(c, "modules.out_channels", u.out_channels, 1, CHANNELS, "number of channels")?;
            range(c, "modules.latent_scale", u.latent_scale, 1, IMAGE, "downsampling factor")?;
            list("modules.channels", &u.channels, CHANNELS, "number of channels")?;
            range(c, "modules.layers_per_block", u.layers_per_block, 1, BLOCKS, "number of blocks")?;
            u.transformer_depth
                .iter()
                .try_for_each(|&d| range(c, "modules.transformer_depth", d, 0, BLOCKS, "depth"))?;
            u.heads.iter().try_for_each(|&h| range(c, "modules.heads", h, 1, HEADS, "number of heads"))?;
            range(c, "modules.mid_depth", u.mid_depth, 0, BLOCKS, "depth")?;
            range(c, "modules.cross_attention_dim", u.cross_attention_dim, 1, WIDTH, "width")?;
            range(c, "modules.context_len", u.context_len, 1, POSITIONS, "number of tokens")?;
            range(c, "modules.groups", u.groups, 1, CHANNELS, "number of groups")?;
            if let Some(a) = &u.add_embedding {
                range(c, "modules.add_embedding.text_dim", a.text_dim, 0, WIDTH, "width")?;
                range(c, "modules.add_embedding.time_ids", a.time_ids, 0, BLOCKS, "number of time ids")?;
                range(c, "modules.add_embedding.time_dim", a.time_dim, 0, WIDTH, "width")?;
            }
        }
        Module::Vae(v) => {
            range(c, "modules.image", v.image, 1, IMAGE, "image side in pixels")?;
            range(c, "modules.in_channels", v.in_channels, 1, CHANNELS, "number of channels")?;
            range(c, "modules.latent_channels", v.latent_channels, 1, CHANNELS, "number of channels")?;
            list("modules.channels", &v.channels, CHANNELS, "number of channels")?;
            range(c, "modules.layers_per_block", v.layers_per_block, 1, BLOCKS, "number of blocks")?;
            range(c, "modules.groups", v.groups, 1, CHANNELS, "number of groups")?;
        }
        Module::TextEncoder(t) => {
            range(c, "modules.vocab", t.vocab, 1, VOCAB, "vocabulary")?;
            if let Some(p) = t.projection {
                range(c, "modules.projection", p, 1, WIDTH, "width")?;
            }
        }
        Module::Lstm(l) => {
            range(c, "modules.input", l.input, 1, WIDTH, "width")?;
            range(c, "modules.hidden", l.hidden, 1, WIDTH, "hidden size")?;
            range(c, "modules.layers", l.layers, 1, LAYERS, "number of layers")?;
            for (field, v, limit) in [
                ("modules.vocab", l.vocab, VOCAB),
                ("modules.output_vocab", l.output_vocab, VOCAB),
                ("modules.image_features", l.image_features, WIDTH),
                ("modules.default_len", l.default_len, POSITIONS),
            ] {
                if let Some(v) = v {
                    range(c, field, v, 1, limit, "size")?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_stated_as_powers_of_two() {
        assert_eq!(fmt_limit(1 << 20), "2^20 (1,048,576)");
        assert_eq!(fmt_limit(16), "16");
        assert_eq!(commas(9_007_199_254_740_992), "9,007,199,254,740,992");
        assert_eq!(hf_int_limit("n_embd").0, limits::WIDTH);
        assert_eq!(hf_int_limit("num_key_value_heads").0, limits::HEADS);
        assert_eq!(hf_int_limit("num_hidden_layers").0, limits::LAYERS);
        assert_eq!(hf_int_limit("moe_intermediate_size").0, limits::FFN);
        assert_eq!(hf_int_limit("qk_rope_head_dim").0, limits::HEAD_DIM);
        assert_eq!(hf_int_limit("pad_token_id").0, limits::OTHER);
    }

    #[test]
    fn the_bounds_keep_the_largest_products_exact() {
        use limits::*;
        // GPT-Neo's causal masks: layers × positions² bytes.
        assert!((LAYERS as u128) * (POSITIONS as u128).pow(2) < 1u128 << 63);
        // One MoE layer's experts: experts × 3 · hidden · ffn.
        assert!((EXPERTS as u128) * 3 * (WIDTH as u128) * (FFN as u128) < 1u128 << 64);
        // Parameters at the largest recipe (20 bytes each).
        assert!((PARAMS as u128) * 20 < 1u128 << 64);
    }
}
