//! Checks that a model description can exist before anything is computed from it.

use crate::error::{Error, Result};
use crate::model::spec::*;

pub fn validate(m: &ModelSpec) -> Result<()> {
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
                "token embedding with a zero vocabulary or width",
                "set tokens.vocab and tokens.dim > 0",
            ));
        }
    }
    for s in &m.stacks {
        let l = &s.layer;
        let a = &l.attention;
        let ctx = |what: String| format!("stack `{}`: {what}", s.name);
        if s.layers == 0 {
            return Err(Error::shape(ctx("0 layers".into()), "layers must be at least 1"));
        }
        if l.hidden == 0 || a.heads == 0 || l.mlp.ffn == 0 {
            return Err(Error::shape(ctx("hidden, heads and ffn must be positive".into()), ""));
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
        if let Some(sp) = a.sparse {
            if sp.block == 0 {
                return Err(Error::shape(
                    ctx("block-sparse attention with block 0".into()),
                    "set sparse.block > 0 (BigBird: 64)",
                ));
            }
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
        if matches!(s.input, StackInput::Tokens) && m.tokens.is_none() {
            return Err(Error::shape(
                ctx("reads tokens but the model has no [tokens] table".into()),
                "add [tokens] vocab and dim",
            ));
        }
        if let StackInput::Patches { patch, image, channels, .. } = s.input {
            if patch == 0 || image == 0 || channels == 0 || image % patch != 0 {
                return Err(Error::shape(
                    ctx(format!("image {image} is not a multiple of patch {patch}")),
                    "image must be a positive multiple of patch",
                ));
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
    Ok(())
}

fn divisors_near(n: u64, target: u64) -> String {
    let mut ds: Vec<u64> = (1..=n.min(4096)).filter(|d| n.is_multiple_of(*d)).collect();
    ds.sort_by_key(|d| d.abs_diff(target));
    ds.truncate(3);
    ds.sort();
    ds.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
}
