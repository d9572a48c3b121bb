//! Hugging Face `config.json` import: a local file becomes a `ModelSpec` with the architecture
//! the transformers class builds (head chosen from `architectures`).

use crate::error::{Error, Result};
use crate::model::spec::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const SUPPORTED: &[&str] = &[
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "gpt2",
    "gpt_neo",
    "gptj",
    "opt",
    "bloom",
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "t5",
    "mt5",
];

pub fn from_hf_config(path: &Path) -> Result<ModelSpec> {
    let text = crate::model::presets::read(path)?;
    // `org/model/config.json` is named `model`; any other file by its own stem.
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let name = if stem == "config" {
        path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()).unwrap_or(stem)
    } else {
        stem
    };
    from_hf_json_at(path, &name, &text)
}

/// Parse config text; `name` labels the model.
pub fn from_hf_json(name: &str, text: &str) -> Result<ModelSpec> {
    from_hf_json_at(Path::new("config.json"), name, text)
}

struct Cfg<'a> {
    v: &'a Value,
    path: PathBuf,
}

impl Cfg<'_> {
    fn err(&self, field: &str, message: String) -> Error {
        Error::Parse { path: self.path.clone(), line: None, field: Some(field.into()), message }
    }
    fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(x) => {
                x.as_u64().map(Some).ok_or_else(|| self.err(key, format!("expected a non-negative integer, found {x}")))
            }
        }
    }
    fn u64(&self, key: &str) -> Result<u64> {
        self.opt_u64(key)?.ok_or_else(|| self.err(key, "missing required field".into()))
    }
    fn u64_any(&self, keys: &[&str]) -> Result<u64> {
        for k in keys {
            if let Some(v) = self.opt_u64(k)? {
                return Ok(v);
            }
        }
        Err(self.err(keys[0], "missing required field".into()))
    }
    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x.as_f64().ok_or_else(|| self.err(key, format!("expected a number, found {x}"))),
        }
    }
    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(x) => x.as_bool().ok_or_else(|| self.err(key, format!("expected true or false, found {x}"))),
        }
    }
    fn str_or(&self, key: &str, default: &str) -> String {
        self.v.get(key).and_then(Value::as_str).unwrap_or(default).to_string()
    }
    fn architecture_class(&self) -> String {
        self.v.get("architectures").and_then(|a| a.get(0)).and_then(Value::as_str).unwrap_or("").to_string()
    }
}

fn activation(name: &str) -> Activation {
    match name {
        "gelu_new" | "gelu_fast" => Activation::GeluNew,
        "quick_gelu" => Activation::QuickGelu,
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        _ => Activation::Gelu,
    }
}

fn layer_norm() -> Norm {
    Norm { kind: NormKind::LayerNorm, bias: true }
}

fn rms_norm() -> Norm {
    Norm { kind: NormKind::RmsNorm, bias: false }
}

#[allow(clippy::too_many_arguments)]
fn attention(
    heads: u64,
    kv_heads: Option<u64>,
    head_dim: Option<u64>,
    qkv_bias: bool,
    o_bias: bool,
    dropout: f64,
    fused_qkv: bool,
) -> Attention {
    Attention {
        heads,
        kv_heads,
        head_dim,
        q_bias: qkv_bias,
        k_bias: qkv_bias,
        v_bias: qkv_bias,
        o_bias,
        dropout,
        fused_qkv,
    }
}

fn decoder_stack(
    positions: Positions,
    layers: u64,
    layer: Layer,
    final_norm: Option<Norm>,
    embedding_dropout: f64,
) -> Stack {
    Stack {
        name: "decoder".into(),
        causal: true,
        input: StackInput::Tokens,
        positions,
        length: StackLength::Seq,
        token_types: 0,
        embedding_norm: None,
        embedding_projection: false,
        layers,
        shared_layers: false,
        layer,
        final_norm,
        embedding_dropout,
    }
}

fn from_hf_json_at(path: &Path, name: &str, text: &str) -> Result<ModelSpec> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    if !v.is_object() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            field: None,
            message: "expected a JSON object".into(),
        });
    }
    let c = Cfg { v: &v, path: path.to_path_buf() };
    let model_type =
        c.v.get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| c.err("model_type", "missing required field".into()))?
            .to_string();
    let class = c.architecture_class();
    let spec = match model_type.as_str() {
        "gpt2" => gpt2(&c)?,
        "gpt_neo" => gpt_neo(&c)?,
        "gptj" => gptj(&c)?,
        "opt" => opt(&c)?,
        "bloom" => bloom(&c)?,
        "llama" | "mistral" | "mixtral" | "qwen2" => llama(&c, &model_type)?,
        "bert" | "roberta" | "xlm-roberta" => bert(&c, &model_type, &class)?,
        "distilbert" => distilbert(&c, &class)?,
        "t5" | "mt5" => t5(&c, &class)?,
        other => {
            return Err(Error::UnsupportedModelType { model_type: other.to_string(), supported: SUPPORTED.to_vec() })
        }
    };
    let spec = ModelSpec { name: name.to_string(), family: model_type, ..spec };
    crate::model::validate::validate(&spec)?;
    Ok(spec)
}

fn decoder_model(vocab: u64, dim: u64, stack: Stack, tied: bool, lm_bias: bool) -> ModelSpec {
    ModelSpec {
        name: String::new(),
        family: String::new(),
        architecture: Architecture::Decoder,
        tokens: Some(TokenEmbedding { vocab, dim }),
        stacks: vec![stack],
        head: Head {
            lm_head: Some(LmHead { tied, bias: lm_bias, transform: false, rescale: false }),
            ..Head::default()
        },
        buffer_bytes: 0,
    }
}

fn gpt2(c: &Cfg) -> Result<ModelSpec> {
    let h = c.u64("n_embd")?;
    let ffn = c.opt_u64("n_inner")?.unwrap_or(4 * h);
    let layer = Layer {
        hidden: h,
        attention: attention(c.u64("n_head")?, None, None, true, true, c.f64_or("attn_pdrop", 0.1)?, true),
        cross_attention: false,
        mlp: Mlp {
            ffn,
            gated: false,
            bias: true,
            activation: activation(&c.str_or("activation_function", "gelu_new")),
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: NormPlacement::Pre,
        parallel_attn_mlp: false,
        hidden_dropout: c.f64_or("resid_pdrop", 0.1)?,
    };
    let stack = decoder_stack(
        Positions::Learned { max: c.u64("n_positions")?, offset: 0 },
        c.u64("n_layer")?,
        layer,
        Some(layer_norm()),
        c.f64_or("embd_pdrop", 0.1)?,
    );
    Ok(decoder_model(c.u64("vocab_size")?, h, stack, c.bool_or("tie_word_embeddings", true)?, false))
}

fn gpt_neo(c: &Cfg) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let ffn = c.opt_u64("intermediate_size")?.unwrap_or(4 * h);
    let mut attn = attention(c.u64("num_heads")?, None, None, false, true, c.f64_or("attention_dropout", 0.0)?, false);
    attn.o_bias = true;
    let layer = Layer {
        hidden: h,
        attention: attn,
        cross_attention: false,
        mlp: Mlp {
            ffn,
            gated: false,
            bias: true,
            activation: activation(&c.str_or("activation_function", "gelu_new")),
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: NormPlacement::Pre,
        parallel_attn_mlp: false,
        hidden_dropout: c.f64_or("resid_dropout", 0.0)?,
    };
    let stack = decoder_stack(
        Positions::Learned { max: c.u64("max_position_embeddings")?, offset: 0 },
        c.u64("num_layers")?,
        layer,
        Some(layer_norm()),
        c.f64_or("embed_dropout", 0.0)?,
    );
    Ok(decoder_model(c.u64("vocab_size")?, h, stack, c.bool_or("tie_word_embeddings", true)?, false))
}

fn gptj(c: &Cfg) -> Result<ModelSpec> {
    let h = c.u64("n_embd")?;
    let ffn = c.opt_u64("n_inner")?.unwrap_or(4 * h);
    let layer = Layer {
        hidden: h,
        attention: attention(c.u64("n_head")?, None, None, false, false, c.f64_or("attn_pdrop", 0.0)?, false),
        cross_attention: false,
        mlp: Mlp {
            ffn,
            gated: false,
            bias: true,
            activation: activation(&c.str_or("activation_function", "gelu_new")),
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: NormPlacement::Pre,
        parallel_attn_mlp: true,
        hidden_dropout: c.f64_or("resid_pdrop", 0.0)?,
    };
    let stack =
        decoder_stack(Positions::Rotary, c.u64("n_layer")?, layer, Some(layer_norm()), c.f64_or("embd_pdrop", 0.0)?);
    Ok(decoder_model(c.u64("vocab_size")?, h, stack, c.bool_or("tie_word_embeddings", false)?, true))
}

fn opt(c: &Cfg) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    if let Some(p) = c.opt_u64("word_embed_proj_dim")? {
        if p != h {
            return Err(c.err(
                "word_embed_proj_dim",
                format!("{p} differs from hidden_size {h} (OPT-350m's projected embeddings are not supported)"),
            ));
        }
    }
    let layer = Layer {
        hidden: h,
        attention: attention(
            c.u64("num_attention_heads")?,
            None,
            None,
            c.bool_or("enable_bias", true)?,
            c.bool_or("enable_bias", true)?,
            c.f64_or("attention_dropout", 0.0)?,
            false,
        ),
        cross_attention: false,
        mlp: Mlp {
            ffn: c.u64("ffn_dim")?,
            gated: false,
            bias: c.bool_or("enable_bias", true)?,
            activation: activation(&c.str_or("activation_function", "relu")),
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: if c.bool_or("do_layer_norm_before", true)? { NormPlacement::Pre } else { NormPlacement::Post },
        parallel_attn_mlp: false,
        hidden_dropout: c.f64_or("dropout", 0.1)?,
    };
    // OPT's learned positions reserve 2 extra rows (OPTLearnedPositionalEmbedding offset).
    let stack = decoder_stack(
        Positions::Learned { max: c.u64("max_position_embeddings")?, offset: 2 },
        c.u64("num_hidden_layers")?,
        layer,
        Some(layer_norm()),
        c.f64_or("dropout", 0.1)?,
    );
    Ok(decoder_model(c.u64("vocab_size")?, h, stack, c.bool_or("tie_word_embeddings", true)?, false))
}

fn bloom(c: &Cfg) -> Result<ModelSpec> {
    let h = c.u64_any(&["hidden_size", "n_embed"])?;
    let layer = Layer {
        hidden: h,
        attention: attention(
            c.u64_any(&["n_head", "num_attention_heads"])?,
            None,
            None,
            true,
            true,
            c.f64_or("attention_dropout", 0.0)?,
            true,
        ),
        cross_attention: false,
        mlp: Mlp {
            ffn: 4 * h,
            gated: false,
            bias: true,
            activation: Activation::Gelu,
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: NormPlacement::Pre,
        parallel_attn_mlp: false,
        hidden_dropout: c.f64_or("hidden_dropout", 0.0)?,
    };
    let mut stack =
        decoder_stack(Positions::None, c.u64_any(&["n_layer", "num_hidden_layers"])?, layer, Some(layer_norm()), 0.0);
    stack.embedding_norm = Some(layer_norm());
    Ok(decoder_model(c.u64("vocab_size")?, h, stack, c.bool_or("tie_word_embeddings", true)?, false))
}

fn llama(c: &Cfg, model_type: &str) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let heads = c.u64("num_attention_heads")?;
    let qwen = model_type == "qwen2";
    let bias = c.bool_or("attention_bias", qwen)?;
    let mut attn = attention(
        heads,
        c.opt_u64("num_key_value_heads")?,
        c.opt_u64("head_dim")?,
        bias,
        bias && !qwen,
        c.f64_or("attention_dropout", 0.0)?,
        false,
    );
    if qwen {
        attn.o_bias = false;
    }
    let (experts, top_k) =
        if model_type == "mixtral" { (c.u64("num_local_experts")?, c.u64("num_experts_per_tok")?) } else { (1, 1) };
    let layer = Layer {
        hidden: h,
        attention: attn,
        cross_attention: false,
        mlp: Mlp {
            ffn: c.u64("intermediate_size")?,
            gated: true,
            bias: c.bool_or("mlp_bias", false)?,
            activation: activation(&c.str_or("hidden_act", "silu")),
            experts,
            top_k,
            inner_dropout: 0.0,
        },
        norm: rms_norm(),
        norm_placement: NormPlacement::Pre,
        parallel_attn_mlp: false,
        hidden_dropout: 0.0,
    };
    let stack = decoder_stack(Positions::Rotary, c.u64("num_hidden_layers")?, layer, Some(rms_norm()), 0.0);
    Ok(decoder_model(c.u64("vocab_size")?, h, stack, c.bool_or("tie_word_embeddings", false)?, false))
}

fn encoder_head(class: &str, pooler_by_default: bool) -> Head {
    if class.ends_with("ForMaskedLM") || class.ends_with("ForPreTraining") {
        Head { lm_head: Some(LmHead { tied: true, bias: true, transform: true, rescale: false }), ..Head::default() }
    } else {
        Head { pooler: pooler_by_default, ..Head::default() }
    }
}

fn bert(c: &Cfg, model_type: &str, class: &str) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let max = c.u64("max_position_embeddings")?;
    let layer = Layer {
        hidden: h,
        attention: attention(
            c.u64("num_attention_heads")?,
            None,
            None,
            true,
            true,
            c.f64_or("attention_probs_dropout_prob", 0.1)?,
            false,
        ),
        cross_attention: false,
        mlp: Mlp {
            ffn: c.u64("intermediate_size")?,
            gated: false,
            bias: true,
            activation: activation(&c.str_or("hidden_act", "gelu")),
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: NormPlacement::Post,
        parallel_attn_mlp: false,
        hidden_dropout: c.f64_or("hidden_dropout_prob", 0.1)?,
    };
    let stack = Stack {
        name: "encoder".into(),
        causal: false,
        input: StackInput::Tokens,
        positions: Positions::Learned { max, offset: 0 },
        length: StackLength::Seq,
        token_types: c.opt_u64("type_vocab_size")?.unwrap_or(2),
        embedding_norm: Some(layer_norm()),
        embedding_projection: false,
        layers: c.u64("num_hidden_layers")?,
        shared_layers: false,
        layer,
        final_norm: None,
        embedding_dropout: c.f64_or("hidden_dropout_prob", 0.1)?,
    };
    // BertEmbeddings registers int64 position_ids and token_type_ids buffers of [1, max_positions].
    let _ = model_type;
    Ok(ModelSpec {
        name: String::new(),
        family: String::new(),
        architecture: Architecture::Encoder,
        tokens: Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        stacks: vec![stack],
        head: encoder_head(class, true),
        buffer_bytes: 2 * 8 * max,
    })
}

fn distilbert(c: &Cfg, class: &str) -> Result<ModelSpec> {
    let h = c.u64("dim")?;
    let max = c.u64("max_position_embeddings")?;
    let layer = Layer {
        hidden: h,
        attention: attention(c.u64("n_heads")?, None, None, true, true, c.f64_or("attention_dropout", 0.1)?, false),
        cross_attention: false,
        mlp: Mlp {
            ffn: c.u64("hidden_dim")?,
            gated: false,
            bias: true,
            activation: activation(&c.str_or("activation", "gelu")),
            experts: 1,
            top_k: 1,
            inner_dropout: 0.0,
        },
        norm: layer_norm(),
        norm_placement: NormPlacement::Post,
        parallel_attn_mlp: false,
        hidden_dropout: c.f64_or("dropout", 0.1)?,
    };
    let stack = Stack {
        name: "encoder".into(),
        causal: false,
        input: StackInput::Tokens,
        positions: Positions::Learned { max, offset: 0 },
        length: StackLength::Seq,
        token_types: 0,
        embedding_norm: Some(layer_norm()),
        embedding_projection: false,
        layers: c.u64("n_layers")?,
        shared_layers: false,
        layer,
        final_norm: None,
        embedding_dropout: c.f64_or("dropout", 0.1)?,
    };
    let head = if class.ends_with("ForMaskedLM") {
        Head { lm_head: Some(LmHead { tied: true, bias: true, transform: true, rescale: false }), ..Head::default() }
    } else {
        Head::default()
    };
    Ok(ModelSpec {
        name: String::new(),
        family: String::new(),
        architecture: Architecture::Encoder,
        tokens: Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        stacks: vec![stack],
        head,
        buffer_bytes: 8 * max,
    })
}

fn t5(c: &Cfg, class: &str) -> Result<ModelSpec> {
    let d = c.u64("d_model")?;
    let heads = c.u64("num_heads")?;
    let d_kv = c.u64("d_kv")?;
    let p = c.f64_or("dropout_rate", 0.1)?;
    let proj = c.str_or("feed_forward_proj", "relu");
    let gated = proj.starts_with("gated-");
    let act = activation(proj.trim_start_matches("gated-"));
    let act = if gated && act == Activation::Gelu { Activation::GeluNew } else { act };
    let buckets = c.opt_u64("relative_attention_num_buckets")?.unwrap_or(32);
    let layers = c.u64("num_layers")?;
    let dec_layers = c.opt_u64("num_decoder_layers")?.unwrap_or(layers);
    let layer = |cross: bool| Layer {
        hidden: d,
        attention: attention(heads, None, Some(d_kv), false, false, p, false),
        cross_attention: cross,
        mlp: Mlp {
            ffn: c.u64("d_ff").unwrap_or(4 * d),
            gated,
            bias: false,
            activation: act,
            experts: 1,
            top_k: 1,
            inner_dropout: p,
        },
        norm: rms_norm(),
        norm_placement: NormPlacement::Pre,
        parallel_attn_mlp: false,
        hidden_dropout: p,
    };
    let stack = |name: &str, causal: bool, n: u64| Stack {
        name: name.into(),
        causal,
        input: StackInput::Tokens,
        positions: Positions::RelativeBias { buckets },
        length: if causal { StackLength::Tgt } else { StackLength::Seq },
        token_types: 0,
        embedding_norm: None,
        embedding_projection: false,
        layers: n,
        shared_layers: false,
        layer: layer(causal),
        final_norm: Some(rms_norm()),
        embedding_dropout: p,
    };
    let tied = c.bool_or("tie_word_embeddings", true)?;
    let lm_head = (class.is_empty() || class.ends_with("ForConditionalGeneration")).then_some(LmHead {
        tied,
        bias: false,
        transform: false,
        rescale: tied,
    });
    Ok(ModelSpec {
        name: String::new(),
        family: String::new(),
        architecture: Architecture::EncoderDecoder,
        tokens: Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: d }),
        stacks: vec![stack("encoder", false, layers), stack("decoder", true, dec_layers)],
        head: Head { lm_head, ..Head::default() },
        buffer_bytes: 0,
    })
}
