//! Hugging Face `config.json` import: a local config becomes the `ModelSpec` of the class that
//! `transformers` would build from it, so that `params::count` equals that model's
//! `num_parameters()` (tied weights once) and `buffer_bytes` its registered buffers.
//!
//! The head comes from `architectures[0]` (absent: the bare model):
//! - `…ForCausalLM` / `…LMHeadModel`: the LM head (tied per `tie_word_embeddings`);
//! - `…ForMaskedLM`: BERT-style MLM head (dense + LayerNorm transform, tied decoder, bias), no pooler;
//! - `…ForConditionalGeneration`: the seq2seq LM head (T5, BART, Whisper);
//! - `…ForSequenceClassification` (encoders): pooler-shaped dense + classifier over `num_labels`;
//! - `…ForImageClassification` (ViT): classifier over `num_labels`, no pooler;
//! - `…ForPreTraining` (BERT, ALBERT): MLM head + pooler + 2-way NSP/SOP classifier;
//! - `T5EncoderModel`: the encoder stack only;
//! - bare `…Model`: as that class builds it (`BertModel` with its pooler, `CLIPModel` with both
//!   projections and the logit scale, `ViTModel` with its pooler).
//!
//! Buffers follow transformers 5.x, measured with `named_buffers()` on models built from configs:
//! BERT/RoBERTa/ALBERT `position_ids` + `token_type_ids` (int64 `[1, max_positions]`), DistilBERT
//! and DeBERTa-v2 `position_ids`, CLIP `position_ids` per tower, GPT-Neo's causal masks (bool
//! `[max, max]` per layer), GPT-J's sinusoid tables (fp32 `[n_positions, rotary_dim]` per layer),
//! LLaMA-style `inv_freq` + `original_inv_freq` (fp32 `[rotary_dim / 2]` each) and BART's
//! `final_logits_bias` (fp32 `[vocab]`). Float buffers are sized in fp32 as the model is built.
//!
//! One deliberate difference from transformers 5.x: its T5/mT5 configs force
//! `tie_word_embeddings = true` (the LM head shares the embedding even for T5 v1.1/FLAN-T5, whose
//! checkpoints ship a separate `lm_head`). memplan follows the config as written, as
//! transformers 4.x did and as the model cards count (FLAN-T5-base 247,577,856 parameters);
//! a config saved by transformers 5 says `tie_word_embeddings: true` and is imported tied.
//! Two smaller ones: an *untied* BERT-style MLM decoder keeps a second vocabulary bias in
//! transformers 5 (memplan counts the one bias of 4.x), and Mixtral's experts are stored there as
//! two stacked tensors per layer (memplan counts three tensors per expert; parameters are equal).
//!
//! Layouts the graph cannot express are refused with an error naming the field rather than
//! miscounted: OPT-350m's projected embeddings, ALBERT with 1 < groups < layers, DeBERTa's
//! convolution or unshared positional projections, BERT's relative-key positions, mBART-style
//! final norms, and heads such as `GPT2DoubleHeadsModel` or decoder `…ForSequenceClassification`.

use crate::error::{Error, Result};
use crate::model::spec::*;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The `model_type` values memplan reads.
pub const SUPPORTED: &[&str] = &[
    "albert",
    "bart",
    "bert",
    "bloom",
    "clip",
    "deberta-v2",
    "deepseek_v2",
    "deepseek_v3",
    "distilbert",
    "gpt2",
    "gpt_neo",
    "gptj",
    "llama",
    "mistral",
    "mixtral",
    "mt5",
    "openai-gpt",
    "opt",
    "qwen2",
    "roberta",
    "t5",
    "visual_bert",
    "vit",
    "whisper",
    "xlm",
    "xlm-roberta",
];

/// Read a `config.json` from disk. The model is named after its folder (`org/model/config.json`
/// → `model`) or, for any other file name, after the file's stem.
pub fn from_hf_config(path: &Path) -> Result<ModelSpec> {
    from_hf_text(path, &crate::model::presets::read(path)?)
}

/// Parse config text read from `path` (which names the model and the errors).
pub fn from_hf_text(path: &Path, text: &str) -> Result<ModelSpec> {
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let name = if stem == "config" {
        path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()).unwrap_or(stem)
    } else {
        stem
    };
    import(path, &name, text)
}

/// Parse config text; `name` labels the model (errors name the file as `config.json`).
pub fn from_hf_json(name: &str, text: &str) -> Result<ModelSpec> {
    import(Path::new("config.json"), name, text)
}

fn import(path: &Path, name: &str, text: &str) -> Result<ModelSpec> {
    let value: Value = serde_json::from_str(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: Some(e.line()),
        field: None,
        message: format!("not valid JSON: {e}"),
    })?;
    let Value::Object(map) = &value else {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: Some(1),
            field: None,
            message: "expected a JSON object (a Hugging Face config.json)".into(),
        });
    };
    let c = Cfg { map, parents: Vec::new(), file: path, text };
    let model_type = match c.get("model_type") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(c.err("model_type", format!("expected a string, found {other}"))),
        None => return Err(c.missing("model_type")),
    };
    let task = Task::of(&c)?;
    let mut spec = match model_type.as_str() {
        "bert" | "roberta" | "xlm-roberta" | "camembert" => bert(&c, &model_type, &task)?,
        "distilbert" => distilbert(&c, &task)?,
        "albert" => albert(&c, &task)?,
        "deberta-v2" => deberta_v2(&c, &task)?,
        "gpt2" => gpt2(&c, &task)?,
        "openai-gpt" => openai_gpt(&c, &task)?,
        "xlm" => xlm(&c, &task)?,
        "visual_bert" => visual_bert(&c, &task)?,
        "gpt_neo" => gpt_neo(&c, &task)?,
        "gptj" => gptj(&c, &task)?,
        "opt" => opt(&c, &task)?,
        "bloom" => bloom(&c, &task)?,
        "llama" | "mistral" | "mixtral" | "qwen2" => llama(&c, &model_type, &task)?,
        "deepseek_v2" | "deepseek_v3" => deepseek(&c, &task)?,
        "t5" | "mt5" => t5(&c, &model_type, &task)?,
        "bart" => bart(&c, &task)?,
        "whisper" => whisper(&c, &task)?,
        "vit" => vit(&c, &task)?,
        "clip" => clip(&c, &task)?,
        other => {
            return Err(Error::UnsupportedModelType { model_type: other.to_string(), supported: SUPPORTED.to_vec() })
        }
    };
    spec.name = name.to_string();
    spec.family = model_type;
    crate::model::validate::validate(&spec).map_err(|e| in_file(path, e))?;
    Ok(spec)
}

/// A shape error of the imported model, located in the config file it came from.
fn in_file(path: &Path, e: Error) -> Error {
    match e {
        Error::InvalidShape { reason, hint } => Error::Parse {
            path: path.to_path_buf(),
            line: None,
            field: None,
            message: if hint.is_empty() { reason } else { format!("{reason} ({hint})") },
        },
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading fields with errors that name the file, the line and the field.

static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

struct Cfg<'a> {
    map: &'a Map<String, Value>,
    /// Keys of the enclosing objects (`text_config` for CLIP's text tower).
    parents: Vec<&'a str>,
    file: &'a Path,
    text: &'a str,
}

impl<'a> Cfg<'a> {
    fn field(&self, key: &str) -> String {
        let mut f: Vec<&str> = self.parents.clone();
        f.push(key);
        f.join(".")
    }

    /// Line of `"key":` in the file, searching inside the enclosing objects' keys in order.
    fn line_of(&self, key: &str) -> Option<usize> {
        let mut pos = 0;
        for k in self.parents.iter().copied().chain([key]) {
            pos += find_key(&self.text[pos..], k)?;
        }
        Some(self.text[..pos].matches('\n').count() + 1)
    }

    fn err(&self, key: &str, message: String) -> Error {
        Error::Parse { path: PathBuf::from(self.file), line: self.line_of(key), field: Some(self.field(key)), message }
    }

    fn missing(&self, key: &str) -> Error {
        Error::Parse {
            path: PathBuf::from(self.file),
            line: None,
            field: Some(self.field(key)),
            message: format!("missing required field `{}`", self.field(key)),
        }
    }

    /// The value of `key`; `null` reads as absent (transformers writes `null` for defaults).
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                let n =
                    v.as_u64().ok_or_else(|| self.err(key, format!("expected a non-negative integer, found {v}")))?;
                // Every config integer has a stated bound (`model::validate::hf_int_limit`), so
                // no size read here can overflow the arithmetic that follows.
                let (limit, what) = crate::model::validate::hf_int_limit(key);
                if n > limit {
                    return Err(self.err(key, crate::model::validate::too_large(n, limit, what)));
                }
                Ok(Some(n))
            }
        }
    }

    fn u64(&self, key: &str) -> Result<u64> {
        self.opt_u64(key)?.ok_or_else(|| self.missing(key))
    }

    fn u64_or(&self, key: &str, default: u64) -> Result<u64> {
        Ok(self.opt_u64(key)?.unwrap_or(default))
    }

    /// The first of several spellings of one field (`n_embd` / `hidden_size`).
    fn u64_any(&self, keys: &[&str]) -> Result<u64> {
        for k in keys {
            if let Some(v) = self.opt_u64(k)? {
                return Ok(v);
            }
        }
        Err(self.missing(keys[0]))
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => {
                let x = v.as_f64().ok_or_else(|| self.err(key, format!("expected a number, found {v}")))?;
                crate::model::validate::hf_float_check(key, x).map_err(|m| self.err(key, m))?;
                Ok(x)
            }
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(key, format!("expected true or false, found {v}"))),
        }
    }

    fn str_or(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(self.err(key, format!("expected a string, found {v}"))),
        }
    }

    fn activation(&self, key: &str, default: &str) -> Result<Activation> {
        let name = self.str_or(key, default)?;
        activation(&name).ok_or_else(|| {
            self.err(
                key,
                format!("unsupported activation `{name}` (memplan reads gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, relu, silu)"),
            )
        })
    }

    /// A nested config object (`text_config`); absent reads as all defaults.
    fn sub(&self, key: &'a str) -> Result<Cfg<'a>> {
        let map = match self.get(key) {
            None => &*EMPTY,
            Some(Value::Object(m)) => m,
            Some(v) => return Err(self.err(key, format!("expected an object, found {v}"))),
        };
        let mut parents = self.parents.clone();
        parents.push(key);
        Ok(Cfg { map, parents, file: self.file, text: self.text })
    }

    /// Classes of a classification head: `num_labels`, else the size of `id2label`, else 2
    /// (transformers' default).
    fn num_labels(&self) -> Result<u64> {
        if let Some(n) = self.opt_u64("num_labels")? {
            return Ok(n);
        }
        match self.get("id2label") {
            None => Ok(2),
            Some(Value::Object(m)) => Ok(m.len() as u64),
            Some(v) => Err(self.err("id2label", format!("expected an object, found {v}"))),
        }
    }

    /// Reject a field whose value changes the parameter layout in a way memplan cannot express.
    fn unsupported(&self, key: &str, what: &str) -> Error {
        self.err(key, format!("{what} is not supported by memplan's architecture graph"))
    }
}

/// Byte offset of `"key"` followed by `:` in a JSON text.
fn find_key(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    let mut from = 0;
    while let Some(i) = text[from..].find(&needle) {
        let at = from + i;
        let rest = text[at + needle.len()..].trim_start();
        if rest.starts_with(':') {
            return Some(at);
        }
        from = at + needle.len();
    }
    None
}

/// Hugging Face `ACT2FN` names. `gelu_new`/`gelu_fast` are Python-op GELUs that keep extra
/// tensors; erf and `gelu_pytorch_tanh` are single fused kernels.
fn activation(name: &str) -> Option<Activation> {
    Some(match name {
        "gelu" | "gelu_pytorch_tanh" | "gelu_accurate" | "gelu_python" => Activation::Gelu,
        "gelu_new" | "gelu_fast" => Activation::GeluNew,
        "quick_gelu" => Activation::QuickGelu,
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// The head, from `architectures`.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Base,
    CausalLm,
    MaskedLm,
    Seq2SeqLm,
    SequenceClassification,
    ImageClassification,
    PreTraining,
    EncoderOnly,
}

struct Task {
    kind: Kind,
    class: String,
}

impl Task {
    fn of(c: &Cfg) -> Result<Task> {
        let class = match c.get("architectures") {
            None => String::new(),
            Some(Value::Array(a)) if a.is_empty() => String::new(),
            Some(Value::Array(a)) => match &a[0] {
                Value::String(s) => s.clone(),
                v => return Err(c.err("architectures", format!("expected a list of class names, found {v}"))),
            },
            Some(v) => return Err(c.err("architectures", format!("expected a list of class names, found {v}"))),
        };
        let kind = if class.is_empty() {
            Kind::Base
        } else if class.ends_with("ForCausalLM") || class.ends_with("LMHeadModel") {
            Kind::CausalLm
        } else if class.ends_with("ForMaskedLM") {
            Kind::MaskedLm
        } else if class.ends_with("ForConditionalGeneration") {
            Kind::Seq2SeqLm
        } else if class.ends_with("ForSequenceClassification") {
            Kind::SequenceClassification
        } else if class.ends_with("ForImageClassification") {
            Kind::ImageClassification
        } else if class.ends_with("ForPreTraining") {
            Kind::PreTraining
        } else if class.ends_with("EncoderModel") {
            Kind::EncoderOnly
        } else if class.ends_with("Model") && !["For", "With", "Heads"].iter().any(|w| class.contains(w)) {
            // A bare `…Model`; `GPT2DoubleHeadsModel` and the like carry heads memplan does not build.
            Kind::Base
        } else {
            return Err(c.err("architectures", format!("the head of `{class}` is not supported")));
        };
        Ok(Task { kind, class })
    }

    /// Error for a head this family does not build.
    fn reject(&self, c: &Cfg, supported: &str) -> Error {
        c.err(
            "architectures",
            format!("the head of `{}` is not supported for this model_type (memplan reads {supported})", self.class),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

fn layer_norm() -> Norm {
    Norm { kind: NormKind::LayerNorm, bias: true }
}

fn rms_norm() -> Norm {
    Norm { kind: NormKind::RmsNorm, bias: false }
}

fn attention(heads: u64, bias: bool, dropout: f64) -> Attention {
    Attention {
        heads,
        kv_heads: None,
        head_dim: None,
        q_bias: bias,
        k_bias: bias,
        v_bias: bias,
        o_bias: bias,
        dropout,
        fused_qkv: false,
        sparse: None,
        mla: None,
    }
}

fn mlp(ffn: u64, bias: bool, activation: Activation) -> Mlp {
    Mlp { ffn, gated: false, bias, activation, experts: 1, top_k: 1, inner_dropout: 0.0, shared_ffn: 0 }
}

fn layer(hidden: u64, attention: Attention, mlp: Mlp, norm: Norm, placement: NormPlacement) -> Layer {
    Layer {
        hidden,
        attention,
        cross_attention: false,
        mlp,
        norm,
        norm_placement: placement,
        parallel_attn_mlp: false,
        hidden_dropout: 0.0,
    }
}

fn stack(name: &str, causal: bool, input: StackInput, positions: Positions, layers: u64, layer: Layer) -> Stack {
    Stack {
        name: name.into(),
        causal,
        input,
        positions,
        length: StackLength::Seq,
        token_types: 0,
        embedding_norm: None,
        embedding_projection: false,
        layers,
        shared_layers: false,
        layer,
        final_norm: None,
        embedding_dropout: 0.0,
        visual: None,
    }
}

fn model(
    architecture: Architecture,
    tokens: Option<TokenEmbedding>,
    stacks: Vec<Stack>,
    head: Head,
    buffer_bytes: u64,
) -> ModelSpec {
    ModelSpec {
        name: String::new(),
        family: String::new(),
        architecture,
        tokens,
        stacks,
        head,
        buffer_bytes,
        modules: Vec::new(),
    }
}

fn lm_head(tied: bool) -> Head {
    Head { lm_head: Some(LmHead { tied, bias: false, transform: false, rescale: false }), ..Head::default() }
}

/// BERT-style MLM head: dense + activation + LayerNorm, decoder (tied or not) and a vocab bias.
fn mlm_head(tied: bool) -> LmHead {
    LmHead { tied, bias: true, transform: true, rescale: false }
}

/// Head of a BERT-like encoder for the tasks they share.
fn encoder_head(c: &Cfg, task: &Task, pooler_on_bare: bool, pretraining: bool) -> Result<Head> {
    let tied = c.bool_or("tie_word_embeddings", true)?;
    Ok(match task.kind {
        Kind::Base => Head { pooler: pooler_on_bare, ..Head::default() },
        Kind::MaskedLm | Kind::CausalLm => Head { lm_head: Some(mlm_head(tied)), ..Head::default() },
        Kind::SequenceClassification => Head { pooler: true, classifier: Some(c.num_labels()?), ..Head::default() },
        Kind::PreTraining if pretraining => {
            Head { lm_head: Some(mlm_head(tied)), pooler: true, classifier: Some(2), ..Head::default() }
        }
        _ => return Err(task.reject(c, "…Model, …ForMaskedLM, …ForSequenceClassification and …ForPreTraining")),
    })
}

fn decoder_only_task(c: &Cfg, task: &Task) -> Result<bool> {
    match task.kind {
        Kind::CausalLm => Ok(true),
        Kind::Base => Ok(false),
        _ => Err(task.reject(c, "…ForCausalLM / …LMHeadModel and the bare …Model")),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders.

/// BERT, RoBERTa, XLM-RoBERTa (`modeling_bert.py`, `modeling_roberta.py`): post-LN layers with
/// biases, learned positions + token types + LayerNorm on the embeddings, pooler on the bare model.
fn bert(c: &Cfg, model_type: &str, task: &Task) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let max = c.u64_or("max_position_embeddings", 512)?;
    let position_type = c.str_or("position_embedding_type", "absolute")?;
    if position_type != "absolute" {
        return Err(
            c.unsupported("position_embedding_type", &format!("`{position_type}` (per-layer distance embeddings)"))
        );
    }
    if c.bool_or("add_cross_attention", false)? {
        return Err(c.unsupported("add_cross_attention", "cross-attention in an encoder-only model"));
    }
    // RoBERTa's table reserves padding_idx + 1 rows before the first real position.
    let positions = if model_type == "bert" {
        Positions::Learned { max, offset: 0 }
    } else {
        let offset = (c.u64_or("pad_token_id", 1)? + 1).min(max);
        Positions::Learned { max: max - offset, offset }
    };
    let dropout = c.f64_or("hidden_dropout_prob", 0.1)?;
    let mut l = layer(
        h,
        attention(c.u64("num_attention_heads")?, true, c.f64_or("attention_probs_dropout_prob", 0.1)?),
        mlp(c.u64("intermediate_size")?, true, c.activation("hidden_act", "gelu")?),
        layer_norm(),
        NormPlacement::Post,
    );
    l.hidden_dropout = dropout;
    let causal = task.kind == Kind::CausalLm;
    let mut s = stack("encoder", causal, StackInput::Tokens, positions, c.u64("num_hidden_layers")?, l);
    s.token_types = c.u64_or("type_vocab_size", 2)?;
    s.embedding_norm = Some(layer_norm());
    s.embedding_dropout = dropout;
    let head = encoder_head(c, task, true, model_type == "bert")?;
    let vocab = c.u64("vocab_size")?;
    // position_ids and token_type_ids: int64 [1, max_position_embeddings] each.
    let arch = if causal { Architecture::Decoder } else { Architecture::Encoder };
    Ok(model(arch, Some(TokenEmbedding { vocab, dim: h }), vec![s], head, 2 * 8 * max))
}

/// DistilBERT (`modeling_distilbert.py`): BERT layers without token types or pooler.
/// Its attention output has no dropout of its own; `dropout` is applied after the FFN and to the
/// embeddings, recorded here as the layer's hidden dropout.
fn distilbert(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let h = c.u64("dim")?;
    let max = c.u64_or("max_position_embeddings", 512)?;
    let dropout = c.f64_or("dropout", 0.1)?;
    let mut l = layer(
        h,
        attention(c.u64("n_heads")?, true, c.f64_or("attention_dropout", 0.1)?),
        mlp(c.u64("hidden_dim")?, true, c.activation("activation", "gelu")?),
        layer_norm(),
        NormPlacement::Post,
    );
    l.hidden_dropout = dropout;
    let mut s =
        stack("encoder", false, StackInput::Tokens, Positions::Learned { max, offset: 0 }, c.u64("n_layers")?, l);
    s.embedding_norm = Some(layer_norm());
    s.embedding_dropout = dropout;
    let head = match task.kind {
        Kind::CausalLm | Kind::PreTraining => {
            return Err(task.reject(c, "…Model, …ForMaskedLM and …ForSequenceClassification"))
        }
        _ => encoder_head(c, task, false, false)?,
    };
    let vocab = c.u64("vocab_size")?;
    // position_ids: int64 [1, max_position_embeddings].
    Ok(model(Architecture::Encoder, Some(TokenEmbedding { vocab, dim: h }), vec![s], head, 8 * max))
}

/// ALBERT (`modeling_albert.py`): factorized embeddings (E-wide, LayerNorm over E, a biased
/// E→H projection) and one layer group shared by every layer.
fn albert(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let e = c.u64_or("embedding_size", 128)?;
    let layers = c.u64("num_hidden_layers")?;
    let max = c.u64_or("max_position_embeddings", 512)?;
    if c.u64_or("inner_group_num", 1)? != 1 {
        return Err(c.unsupported("inner_group_num", "more than one layer per ALBERT group"));
    }
    let groups = c.u64_or("num_hidden_groups", 1)?;
    if groups != 1 && groups != layers {
        return Err(c.unsupported("num_hidden_groups", &format!("{groups} groups of shared layers")));
    }
    let dropout = c.f64_or("hidden_dropout_prob", 0.0)?;
    let mut l = layer(
        h,
        attention(c.u64("num_attention_heads")?, true, c.f64_or("attention_probs_dropout_prob", 0.0)?),
        mlp(c.u64("intermediate_size")?, true, c.activation("hidden_act", "gelu_new")?),
        layer_norm(),
        NormPlacement::Post,
    );
    l.hidden_dropout = dropout;
    let mut s = stack("encoder", false, StackInput::Tokens, Positions::Learned { max, offset: 0 }, layers, l);
    s.token_types = c.u64_or("type_vocab_size", 2)?;
    s.embedding_norm = Some(layer_norm());
    s.embedding_projection = true;
    s.shared_layers = groups == 1;
    s.embedding_dropout = dropout;
    let head = match task.kind {
        Kind::CausalLm => {
            return Err(task.reject(c, "…Model, …ForMaskedLM, …ForSequenceClassification and …ForPreTraining"))
        }
        _ => encoder_head(c, task, true, true)?,
    };
    let vocab = c.u64("vocab_size")?;
    // position_ids and token_type_ids: int64 [1, max_position_embeddings] each.
    Ok(model(Architecture::Encoder, Some(TokenEmbedding { vocab, dim: e }), vec![s], head, 2 * 8 * max))
}

/// DeBERTa-v2/v3 (`modeling_deberta_v2.py`): BERT-shaped layers, disentangled attention with a
/// shared relative-position table (2·buckets × hidden + LayerNorm) in the encoder, no absolute
/// positions when `position_biased_input` is false, no pooler on the bare model.
fn deberta_v2(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let max = c.u64_or("max_position_embeddings", 512)?;
    if c.u64_or("embedding_size", h)? != h {
        return Err(c.unsupported("embedding_size", "an embedding width different from hidden_size"));
    }
    if c.u64_or("conv_kernel_size", 0)? != 0 {
        return Err(c.unsupported("conv_kernel_size", "DeBERTa's convolution layer"));
    }
    let relative = c.bool_or("relative_attention", false)?;
    let biased_input = c.bool_or("position_biased_input", true)?;
    let positions = match (relative, biased_input) {
        (false, true) => Positions::Learned { max, offset: 0 },
        (false, false) => Positions::None,
        (true, false) => {
            if !c.bool_or("share_att_key", false)? {
                return Err(c.unsupported(
                    "share_att_key",
                    "separate positional key/query projections (share_att_key = false)",
                ));
            }
            if !c.str_or("norm_rel_ebd", "none")?.contains("layer_norm") {
                return Err(c.unsupported("norm_rel_ebd", "relative embeddings without their LayerNorm"));
            }
            let buckets = c.opt_u64("position_buckets")?.filter(|b| *b > 0);
            let span = match (buckets, c.get("max_relative_positions").and_then(Value::as_i64)) {
                (Some(b), _) => b,
                (None, Some(m)) if m >= 1 => m as u64,
                _ => max,
            };
            Positions::DisentangledRelative { buckets: span }
        }
        (true, true) => {
            return Err(c.unsupported("position_biased_input", "absolute and relative positions together"));
        }
    };
    let dropout = c.f64_or("hidden_dropout_prob", 0.1)?;
    let mut l = layer(
        h,
        attention(c.u64("num_attention_heads")?, true, c.f64_or("attention_probs_dropout_prob", 0.1)?),
        mlp(c.u64("intermediate_size")?, true, c.activation("hidden_act", "gelu")?),
        layer_norm(),
        NormPlacement::Post,
    );
    l.hidden_dropout = dropout;
    let mut s = stack("encoder", false, StackInput::Tokens, positions, c.u64("num_hidden_layers")?, l);
    s.token_types = c.u64_or("type_vocab_size", 0)?;
    s.embedding_norm = Some(layer_norm());
    s.embedding_dropout = dropout;
    let head = match task.kind {
        Kind::SequenceClassification => {
            // ContextPooler (dense pooler_hidden_size) + classifier.
            if c.u64_or("pooler_hidden_size", h)? != h {
                return Err(c.unsupported("pooler_hidden_size", "a pooler width different from hidden_size"));
            }
            encoder_head(c, task, false, false)?
        }
        Kind::Base | Kind::MaskedLm => encoder_head(c, task, false, false)?,
        _ => return Err(task.reject(c, "…Model, …ForMaskedLM and …ForSequenceClassification")),
    };
    let vocab = c.u64("vocab_size")?;
    // position_ids: int64 [1, max_position_embeddings].
    Ok(model(Architecture::Encoder, Some(TokenEmbedding { vocab, dim: h }), vec![s], head, 8 * max))
}

// ---------------------------------------------------------------------------------------------
// Decoder-only language models.

/// GPT-2 (`modeling_gpt2.py`): pre-LN, fused c_attn with biases, learned positions, tied head.
fn gpt2(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    if c.bool_or("add_cross_attention", false)? {
        return Err(c.unsupported("add_cross_attention", "GPT-2 with cross-attention"));
    }
    let h = c.u64_any(&["n_embd", "hidden_size"])?;
    let mut a = attention(c.u64_any(&["n_head", "num_attention_heads"])?, true, c.f64_or("attn_pdrop", 0.1)?);
    a.fused_qkv = true;
    let ffn = c.u64_or("n_inner", 4 * h)?;
    let mut l =
        layer(h, a, mlp(ffn, true, c.activation("activation_function", "gelu_new")?), layer_norm(), NormPlacement::Pre);
    l.hidden_dropout = c.f64_or("resid_pdrop", 0.1)?;
    let max = c.u64_any(&["n_positions", "max_position_embeddings"])?;
    let mut s = stack(
        "decoder",
        true,
        StackInput::Tokens,
        Positions::Learned { max, offset: 0 },
        c.u64_any(&["n_layer", "num_hidden_layers"])?,
        l,
    );
    s.final_norm = Some(layer_norm());
    s.embedding_dropout = c.f64_or("embd_pdrop", 0.1)?;
    let head = if lm { lm_head(c.bool_or("tie_word_embeddings", true)?) } else { Head::default() };
    Ok(model(Architecture::Decoder, Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }), vec![s], head, 0))
}

/// The original GPT (`models/openai/modeling_openai.py`): post-LayerNorm blocks
/// (`ln_1(x + attn)`, `ln_2(n + mlp)`), a fused Conv1D `c_attn` with bias, learned positions, no
/// final norm, `afn` through its own table (`"gelu"` is `gelu_new`), the LM head tied to
/// `tokens_embed`, and an int64 `position_ids` buffer [n_positions].
fn openai_gpt(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = match task.kind {
        Kind::Base => false,
        Kind::CausalLm => true,
        _ => return Err(task.reject(c, "OpenAIGPTModel and OpenAIGPTLMHeadModel")),
    };
    let h = c.u64("n_embd")?;
    let mut a = attention(c.u64("n_head")?, true, c.f64_or("attn_pdrop", 0.1)?);
    a.fused_qkv = true;
    let afn = c.str_or("afn", "gelu")?;
    let act = match afn.as_str() {
        "gelu" => Activation::GeluNew,
        "relu" => Activation::Relu,
        "silu" | "swish" => Activation::Silu,
        other => return Err(c.err("afn", format!("`{other}` is not one of gelu, relu, silu, swish"))),
    };
    let mut l = layer(h, a, mlp(4 * h, true, act), layer_norm(), NormPlacement::Post);
    l.hidden_dropout = c.f64_or("resid_pdrop", 0.1)?;
    let max = c.u64("n_positions")?;
    let mut s = stack("decoder", true, StackInput::Tokens, Positions::Learned { max, offset: 0 }, c.u64("n_layer")?, l);
    s.embedding_dropout = c.f64_or("embd_pdrop", 0.1)?;
    let head = if lm { lm_head(true) } else { Head::default() };
    Ok(model(
        Architecture::Decoder,
        Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        vec![s],
        head,
        8 * max,
    ))
}

/// XLM (`models/xlm/modeling_xlm.py`, e.g. xlm-mlm-en-2048): word and position embeddings with a
/// LayerNorm, post-LN layers with biased Q/K/V/out, an FFN of 4·emb_dim (GELU or ReLU), and for
/// `XLMWithLMHeadModel` a `pred_layer.proj` tied to the embeddings with its own bias. Language
/// embeddings exist when `n_langs > 1` and `use_lang_emb`; the adaptive softmax (`asm`) and
/// sinusoidal embeddings are refused. Buffer: int64 `position_ids` [max_position_embeddings].
fn xlm(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    if c.bool_or("asm", false)? {
        return Err(c.unsupported("asm", "XLM's adaptive log-softmax output layer"));
    }
    if c.bool_or("sinusoidal_embeddings", false)? {
        return Err(c.unsupported("sinusoidal_embeddings", "XLM with fixed sinusoidal position tables"));
    }
    let causal = c.bool_or("causal", false)?;
    let h = c.u64("emb_dim")?;
    let dropout = c.f64_or("dropout", 0.1)?;
    let act = if c.bool_or("gelu_activation", true)? { Activation::Gelu } else { Activation::Relu };
    let mut l = layer(
        h,
        attention(c.u64("n_heads")?, true, c.f64_or("attention_dropout", 0.1)?),
        mlp(4 * h, true, act),
        layer_norm(),
        NormPlacement::Post,
    );
    l.hidden_dropout = dropout;
    let max = c.u64_or("max_position_embeddings", 512)?;
    let mut s =
        stack("encoder", causal, StackInput::Tokens, Positions::Learned { max, offset: 0 }, c.u64("n_layers")?, l);
    // Language embeddings: one row per language, added like token types.
    if c.bool_or("use_lang_emb", true)? && c.u64_or("n_langs", 1)? > 1 {
        s.token_types = c.u64("n_langs")?;
    }
    s.embedding_norm = Some(layer_norm());
    s.embedding_dropout = dropout;
    let head = match task.kind {
        Kind::Base => Head::default(),
        Kind::CausalLm => Head {
            lm_head: Some(LmHead { tied: true, bias: true, transform: false, rescale: false }),
            ..Head::default()
        },
        _ => return Err(task.reject(c, "XLMModel and XLMWithLMHeadModel")),
    };
    let arch = if causal { Architecture::Decoder } else { Architecture::Encoder };
    Ok(model(arch, Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }), vec![s], head, 8 * max))
}

/// VisualBERT (`models/visual_bert/modeling_visual_bert.py`): a BERT encoder whose embeddings
/// also project region features (`visual_embedding_dim`) and add visual token-type and position
/// tables ([`VisualEmbeddings`]). `VisualBertForPreTraining` has the MLM head (tied, with bias),
/// the pooler and the 2-way sentence-image head. Buffer: int64 `position_ids` [max_position].
fn visual_bert(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let max = c.u64_or("max_position_embeddings", 512)?;
    let dropout = c.f64_or("hidden_dropout_prob", 0.1)?;
    let mut l = layer(
        h,
        attention(c.u64("num_attention_heads")?, true, c.f64_or("attention_probs_dropout_prob", 0.1)?),
        mlp(c.u64("intermediate_size")?, true, c.activation("hidden_act", "gelu")?),
        layer_norm(),
        NormPlacement::Post,
    );
    l.hidden_dropout = dropout;
    let mut s = stack(
        "encoder",
        false,
        StackInput::Tokens,
        Positions::Learned { max, offset: 0 },
        c.u64("num_hidden_layers")?,
        l,
    );
    s.token_types = c.u64_or("type_vocab_size", 2)?;
    s.embedding_norm = Some(layer_norm());
    s.embedding_dropout = dropout;
    s.visual = Some(VisualEmbeddings { feature_dim: c.u64_or("visual_embedding_dim", 512)? });
    let head = match task.kind {
        Kind::Base => Head { pooler: true, ..Head::default() },
        Kind::PreTraining => {
            Head { lm_head: Some(mlm_head(true)), pooler: true, classifier: Some(2), ..Head::default() }
        }
        _ => return Err(task.reject(c, "VisualBertModel and VisualBertForPreTraining")),
    };
    Ok(model(
        Architecture::Encoder,
        Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        vec![s],
        head,
        8 * max,
    ))
}

/// GPT-Neo (`modeling_gpt_neo.py`): GPT-2 layout with bias-free Q/K/V, a biased out_proj, and a
/// bool causal-mask buffer [max, max] in every layer (local and global alike).
fn gpt_neo(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    let h = c.u64("hidden_size")?;
    let mut a = attention(c.u64("num_heads")?, false, c.f64_or("attention_dropout", 0.0)?);
    a.o_bias = true;
    let ffn = c.u64_or("intermediate_size", 4 * h)?;
    let mut l =
        layer(h, a, mlp(ffn, true, c.activation("activation_function", "gelu_new")?), layer_norm(), NormPlacement::Pre);
    l.hidden_dropout = c.f64_or("resid_dropout", 0.0)?;
    let max = c.u64_or("max_position_embeddings", 2048)?;
    let layers = c.u64("num_layers")?;
    let mut s = stack("decoder", true, StackInput::Tokens, Positions::Learned { max, offset: 0 }, layers, l);
    s.final_norm = Some(layer_norm());
    s.embedding_dropout = c.f64_or("embed_dropout", 0.0)?;
    let head = if lm { lm_head(c.bool_or("tie_word_embeddings", true)?) } else { Head::default() };
    Ok(model(
        Architecture::Decoder,
        Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        vec![s],
        head,
        layers * max * max,
    ))
}

/// GPT-J (`modeling_gptj.py`): parallel attention + MLP under one LayerNorm, rotary positions,
/// bias-free attention, an untied LM head with a bias, and an fp32 sinusoid table
/// [n_positions, rotary_dim] registered in every layer.
fn gptj(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    let h = c.u64("n_embd")?;
    let ffn = c.u64_or("n_inner", 4 * h)?;
    let mut l = layer(
        h,
        attention(c.u64("n_head")?, false, c.f64_or("attn_pdrop", 0.0)?),
        mlp(ffn, true, c.activation("activation_function", "gelu_new")?),
        layer_norm(),
        NormPlacement::Pre,
    );
    l.parallel_attn_mlp = true;
    l.hidden_dropout = c.f64_or("resid_pdrop", 0.0)?;
    let layers = c.u64("n_layer")?;
    let mut s = stack("decoder", true, StackInput::Tokens, Positions::Rotary, layers, l);
    s.final_norm = Some(layer_norm());
    s.embedding_dropout = c.f64_or("embd_pdrop", 0.0)?;
    let head = if lm {
        let tied = c.bool_or("tie_word_embeddings", false)?;
        Head { lm_head: Some(LmHead { tied, bias: true, transform: false, rescale: false }), ..Head::default() }
    } else {
        Head::default()
    };
    let pos_dim = c.u64_or("rotary_dim", h)?;
    let buffers = layers * c.u64_or("n_positions", 2048)? * pos_dim * 4;
    Ok(model(
        Architecture::Decoder,
        Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        vec![s],
        head,
        buffers,
    ))
}

/// OPT (`modeling_opt.py`): learned positions with 2 reserved rows, biases, ReLU, dropout after
/// attention and FFN only (no embedding or activation dropout), tied head.
fn opt(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    let h = c.u64("hidden_size")?;
    if let Some(p) = c.opt_u64("word_embed_proj_dim")? {
        if p != h {
            return Err(c.unsupported(
                "word_embed_proj_dim",
                &format!("a projected embedding width ({p} ≠ hidden_size {h}, OPT-350m)"),
            ));
        }
    }
    if !c.bool_or("layer_norm_elementwise_affine", true)? {
        return Err(c.unsupported("layer_norm_elementwise_affine", "LayerNorm without weights"));
    }
    let bias = c.bool_or("enable_bias", true)?;
    let pre = c.bool_or("do_layer_norm_before", true)?;
    let mut l = layer(
        h,
        attention(c.u64("num_attention_heads")?, bias, c.f64_or("attention_dropout", 0.0)?),
        mlp(c.u64("ffn_dim")?, bias, c.activation("activation_function", "relu")?),
        layer_norm(),
        if pre { NormPlacement::Pre } else { NormPlacement::Post },
    );
    l.hidden_dropout = c.f64_or("dropout", 0.1)?;
    let max = c.u64_or("max_position_embeddings", 2048)?;
    let mut s = stack(
        "decoder",
        true,
        StackInput::Tokens,
        Positions::Learned { max, offset: 2 },
        c.u64("num_hidden_layers")?,
        l,
    );
    if pre && !c.bool_or("_remove_final_layer_norm", false)? {
        s.final_norm = Some(layer_norm());
    }
    let head = if lm { lm_head(c.bool_or("tie_word_embeddings", true)?) } else { Head::default() };
    Ok(model(Architecture::Decoder, Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }), vec![s], head, 0))
}

/// BLOOM (`modeling_bloom.py`): ALiBi (no position parameters), LayerNorm on the embeddings,
/// fused query_key_value with biases, 4h MLP, tied head.
fn bloom(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    let h = c.u64_any(&["hidden_size", "n_embed"])?;
    let mut a = attention(c.u64_any(&["n_head", "num_attention_heads"])?, true, c.f64_or("attention_dropout", 0.0)?);
    a.fused_qkv = true;
    // BloomGelu is a custom autograd function that saves only its input: a fused GELU.
    let mut l = layer(h, a, mlp(4 * h, true, Activation::Gelu), layer_norm(), NormPlacement::Pre);
    l.hidden_dropout = c.f64_or("hidden_dropout", 0.0)?;
    let mut s =
        stack("decoder", true, StackInput::Tokens, Positions::None, c.u64_any(&["n_layer", "num_hidden_layers"])?, l);
    s.embedding_norm = Some(layer_norm());
    s.final_norm = Some(layer_norm());
    let head = if lm { lm_head(c.bool_or("tie_word_embeddings", true)?) } else { Head::default() };
    Ok(model(Architecture::Decoder, Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }), vec![s], head, 0))
}

/// LLaMA, Mistral, Mixtral, Qwen2 (`modeling_llama.py` and derivatives): pre-RMSNorm, rotary,
/// GQA, SwiGLU (Mixtral: `num_local_experts` SwiGLU experts + a bias-free router), untied head
/// unless `tie_word_embeddings`. Qwen2 has Q/K/V biases and a bias-free o_proj.
fn llama(c: &Cfg, model_type: &str, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    let h = c.u64("hidden_size")?;
    let heads = c.u64("num_attention_heads")?;
    let mut a = attention(heads, false, c.f64_or("attention_dropout", 0.0)?);
    a.kv_heads = c.opt_u64("num_key_value_heads")?.filter(|kv| *kv != heads);
    let head_dim = c.opt_u64("head_dim")?;
    a.head_dim = head_dim.filter(|d| *d * heads != h);
    if model_type == "qwen2" {
        (a.q_bias, a.k_bias, a.v_bias) = (true, true, true);
    } else {
        let bias = c.bool_or("attention_bias", false)?;
        (a.q_bias, a.k_bias, a.v_bias, a.o_bias) = (bias, bias, bias, bias);
    }
    let mut m = mlp(c.u64("intermediate_size")?, c.bool_or("mlp_bias", false)?, c.activation("hidden_act", "silu")?);
    m.gated = true;
    if model_type == "mixtral" {
        m.experts = c.u64_or("num_local_experts", 8)?;
        m.top_k = c.u64_or("num_experts_per_tok", 2)?;
    }
    let l = layer(h, a, m, rms_norm(), NormPlacement::Pre);
    let mut s = stack("decoder", true, StackInput::Tokens, Positions::Rotary, c.u64("num_hidden_layers")?, l);
    s.final_norm = Some(rms_norm());
    let head = if lm { lm_head(c.bool_or("tie_word_embeddings", false)?) } else { Head::default() };
    // Rotary inv_freq and original_inv_freq: fp32 [rotary_dim / 2] each.
    let rotary_dim = (head_dim.unwrap_or(h / heads.max(1)) as f64 * c.f64_or("partial_rotary_factor", 1.0)?) as u64;
    let buffers = 2 * 4 * (rotary_dim / 2);
    Ok(model(
        Architecture::Decoder,
        Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }),
        vec![s],
        head,
        buffers,
    ))
}

/// DeepSeek-V2/V3 (`modeling_deepseek_v2/v3.py`): multi-head latent attention, the first
/// `first_k_dense_replace` layers dense, the rest DeepSeekMoE (routed experts of
/// `moe_intermediate_size`, `n_shared_experts` shared ones, a bias-free router). The two kinds of
/// layer become two stacks, the second reading the first's output. The multi-token-prediction
/// layers (`num_nextn_predict_layers`) are not built by transformers and not counted.
fn deepseek(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let lm = decoder_only_task(c, task)?;
    let h = c.u64("hidden_size")?;
    let heads = c.u64("num_attention_heads")?;
    let mla = Mla {
        kv_lora_rank: c.u64("kv_lora_rank")?,
        q_lora_rank: c.opt_u64("q_lora_rank")?,
        rope_head_dim: c.u64("qk_rope_head_dim")?,
        nope_head_dim: c.u64("qk_nope_head_dim")?,
        v_head_dim: c.u64("v_head_dim")?,
    };
    let mut a = attention(heads, false, c.f64_or("attention_dropout", 0.0)?);
    a.head_dim = Some(mla.nope_head_dim + mla.rope_head_dim);
    a.mla = Some(mla);
    let act = c.activation("hidden_act", "silu")?;
    let layers = c.u64("num_hidden_layers")?;
    let dense_layers = c.u64_or("first_k_dense_replace", 0)?.min(layers);
    let mut dense_mlp = mlp(c.u64("intermediate_size")?, false, act);
    dense_mlp.gated = true;
    let mut moe_mlp = mlp(c.u64("moe_intermediate_size")?, false, act);
    moe_mlp.gated = true;
    moe_mlp.experts = c.u64("n_routed_experts")?;
    moe_mlp.top_k = c.u64("num_experts_per_tok")?;
    moe_mlp.shared_ffn = c.u64_or("n_shared_experts", 0)? * moe_mlp.ffn;
    let mut stacks = Vec::new();
    if dense_layers > 0 {
        stacks.push(stack(
            "dense",
            true,
            StackInput::Tokens,
            Positions::Rotary,
            dense_layers,
            layer(h, a.clone(), dense_mlp, rms_norm(), NormPlacement::Pre),
        ));
    }
    if layers > dense_layers {
        let input = if stacks.is_empty() { StackInput::Tokens } else { StackInput::Hidden };
        stacks.push(stack(
            "moe",
            true,
            input,
            Positions::Rotary,
            layers - dense_layers,
            layer(h, a, moe_mlp, rms_norm(), NormPlacement::Pre),
        ));
    }
    if let Some(last) = stacks.last_mut() {
        last.final_norm = Some(rms_norm());
    }
    let head = if lm { lm_head(c.bool_or("tie_word_embeddings", false)?) } else { Head::default() };
    Ok(model(Architecture::Decoder, Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: h }), stacks, head, 0))
}

// ---------------------------------------------------------------------------------------------
// Encoder-decoder models.

/// T5 and mT5 (`modeling_t5.py`): RMS-style T5LayerNorm (weight only), bias-free projections of
/// width heads·d_kv, relative attention bias in the first layer of each stack, `dropout_rate`
/// on embeddings, attention, residual branches and inside the MLP. `feed_forward_proj`
/// `gated-gelu` is GeGLU with `gelu_new` (T5 v1.1, FLAN-T5, mT5).
fn t5(c: &Cfg, model_type: &str, task: &Task) -> Result<ModelSpec> {
    let d = c.u64("d_model")?;
    let heads = c.u64("num_heads")?;
    let d_kv = c.u64_or("d_kv", 64)?;
    let p = c.f64_or("dropout_rate", 0.1)?;
    let proj = c.str_or("feed_forward_proj", "relu")?;
    let (gated, act) = match proj.split_once('-') {
        Some(("gated", "gelu")) => (true, Activation::GeluNew),
        Some(("gated", act)) => (
            true,
            activation(act).ok_or_else(|| c.err("feed_forward_proj", format!("unsupported activation in `{proj}`")))?,
        ),
        Some(_) => return Err(c.err("feed_forward_proj", format!("expected `ACT` or `gated-ACT`, found `{proj}`"))),
        None => (
            false,
            activation(&proj).ok_or_else(|| c.err("feed_forward_proj", format!("unsupported activation `{proj}`")))?,
        ),
    };
    let buckets = c.u64_or("relative_attention_num_buckets", 32)?;
    let enc_layers = c.u64("num_layers")?;
    let dec_layers = c.u64_or("num_decoder_layers", enc_layers)?;
    let ffn = c.u64("d_ff")?;
    let make = |name: &str, decoder: bool, layers: u64| {
        let mut a = attention(heads, false, p);
        a.head_dim = Some(d_kv).filter(|k| k * heads != d);
        let mut m = mlp(ffn, false, act);
        m.gated = gated;
        m.inner_dropout = p;
        let mut l = layer(d, a, m, rms_norm(), NormPlacement::Pre);
        l.cross_attention = decoder;
        l.hidden_dropout = p;
        let mut s = stack(name, decoder, StackInput::Tokens, Positions::RelativeBias { buckets }, layers, l);
        s.final_norm = Some(rms_norm());
        s.embedding_dropout = p;
        if decoder {
            s.length = StackLength::Tgt;
        }
        s
    };
    let tied = c.bool_or("tie_word_embeddings", model_type == "t5")?;
    let rescale = c.bool_or("scale_decoder_outputs", tied)?;
    let tokens = Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: d });
    Ok(match task.kind {
        // `T5WithLMHeadModel`, the old name of T5ForConditionalGeneration, reads as an LM head class.
        Kind::Seq2SeqLm | Kind::CausalLm => {
            let head =
                Head { lm_head: Some(LmHead { tied, bias: false, transform: false, rescale }), ..Head::default() };
            model(
                Architecture::EncoderDecoder,
                tokens,
                vec![make("encoder", false, enc_layers), make("decoder", true, dec_layers)],
                head,
                0,
            )
        }
        Kind::Base => model(
            Architecture::EncoderDecoder,
            tokens,
            vec![make("encoder", false, enc_layers), make("decoder", true, dec_layers)],
            Head::default(),
            0,
        ),
        Kind::EncoderOnly => {
            model(Architecture::Encoder, tokens, vec![make("encoder", false, enc_layers)], Head::default(), 0)
        }
        _ => return Err(task.reject(c, "…ForConditionalGeneration, …Model and …EncoderModel")),
    })
}

/// BART (`modeling_bart.py`): post-LN with biases, learned positions (+2 rows) and a LayerNorm on
/// the embeddings of both stacks, tied LM head, and the `final_logits_bias` buffer (fp32 [vocab]).
fn bart(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let d = c.u64("d_model")?;
    let max = c.u64_or("max_position_embeddings", 1024)?;
    let dropout = c.f64_or("dropout", 0.1)?;
    let act = c.activation("activation_function", "gelu")?;
    let make = |name: &str, decoder: bool, heads: u64, ffn: u64, layers: u64| -> Result<Stack> {
        let mut m = mlp(ffn, true, act);
        m.inner_dropout = c.f64_or("activation_dropout", 0.0)?;
        let mut l =
            layer(d, attention(heads, true, c.f64_or("attention_dropout", 0.0)?), m, layer_norm(), NormPlacement::Post);
        l.cross_attention = decoder;
        l.hidden_dropout = dropout;
        let mut s = stack(name, decoder, StackInput::Tokens, Positions::Learned { max, offset: 2 }, layers, l);
        s.embedding_norm = Some(layer_norm());
        s.embedding_dropout = dropout;
        if decoder {
            s.length = StackLength::Tgt;
        }
        Ok(s)
    };
    if c.bool_or("add_final_layer_norm", false)? || c.bool_or("normalize_before", false)? {
        return Err(c.unsupported("add_final_layer_norm", "mBART-style pre-LN with final norms"));
    }
    let enc =
        make("encoder", false, c.u64("encoder_attention_heads")?, c.u64("encoder_ffn_dim")?, c.u64("encoder_layers")?)?;
    let dec =
        make("decoder", true, c.u64("decoder_attention_heads")?, c.u64("decoder_ffn_dim")?, c.u64("decoder_layers")?)?;
    let vocab = c.u64("vocab_size")?;
    let (head, buffers) = match task.kind {
        Kind::Seq2SeqLm => (lm_head(c.bool_or("tie_word_embeddings", true)?), 4 * vocab),
        Kind::Base => (Head::default(), 0),
        _ => return Err(task.reject(c, "…ForConditionalGeneration and …Model")),
    };
    Ok(model(Architecture::EncoderDecoder, Some(TokenEmbedding { vocab, dim: d }), vec![enc, dec], head, buffers))
}

/// Whisper (`modeling_whisper.py`): two Conv1d front end over log-mel frames, the encoder's
/// sinusoidal position table stored as a (frozen) `nn.Embedding` of max_source_positions rows —
/// a parameter `num_parameters()` counts — learned decoder positions, pre-LN, k_proj without
/// bias, final LayerNorms, LM head tied to the decoder embedding.
fn whisper(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let d = c.u64("d_model")?;
    let dropout = c.f64_or("dropout", 0.0)?;
    let act = c.activation("activation_function", "gelu")?;
    let source = c.u64_or("max_source_positions", 1500)?;
    let make = |name: &str, decoder: bool, heads: u64, ffn: u64, layers: u64| -> Result<Stack> {
        let mut a = attention(heads, true, c.f64_or("attention_dropout", 0.0)?);
        a.k_bias = false;
        let mut m = mlp(ffn, true, act);
        m.inner_dropout = c.f64_or("activation_dropout", 0.0)?;
        let mut l = layer(d, a, m, layer_norm(), NormPlacement::Pre);
        l.cross_attention = decoder;
        l.hidden_dropout = dropout;
        let (input, max) = if decoder {
            (StackInput::Tokens, c.u64_or("max_target_positions", 448)?)
        } else {
            (StackInput::AudioConv { mel_bins: c.u64_or("num_mel_bins", 80)?, frames: 2 * source }, source)
        };
        let mut s = stack(name, decoder, input, Positions::Learned { max, offset: 0 }, layers, l);
        s.final_norm = Some(layer_norm());
        s.embedding_dropout = dropout;
        if decoder {
            s.length = StackLength::Tgt;
        }
        Ok(s)
    };
    let enc =
        make("encoder", false, c.u64("encoder_attention_heads")?, c.u64("encoder_ffn_dim")?, c.u64("encoder_layers")?)?;
    let dec =
        make("decoder", true, c.u64("decoder_attention_heads")?, c.u64("decoder_ffn_dim")?, c.u64("decoder_layers")?)?;
    let head = match task.kind {
        Kind::Seq2SeqLm => lm_head(c.bool_or("tie_word_embeddings", true)?),
        Kind::Base => Head::default(),
        _ => return Err(task.reject(c, "…ForConditionalGeneration and …Model")),
    };
    Ok(model(
        Architecture::EncoderDecoder,
        Some(TokenEmbedding { vocab: c.u64("vocab_size")?, dim: d }),
        vec![enc, dec],
        head,
        0,
    ))
}

// ---------------------------------------------------------------------------------------------
// Vision and vision-language.

/// ViT (`modeling_vit.py`): conv patch embedding with bias, class token, one position row per
/// patch + 1, pre-LN layers, final LayerNorm; `ViTForImageClassification` adds a classifier and
/// no pooler, the bare `ViTModel` a pooler.
fn vit(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    let h = c.u64("hidden_size")?;
    let (image, patch) = (c.u64_or("image_size", 224)?, c.u64_or("patch_size", 16)?);
    let bias = c.bool_or("qkv_bias", true)?;
    let dropout = c.f64_or("hidden_dropout_prob", 0.0)?;
    let mut a = attention(c.u64("num_attention_heads")?, bias, c.f64_or("attention_probs_dropout_prob", 0.0)?);
    a.o_bias = true;
    let mut l = layer(
        h,
        a,
        mlp(c.u64("intermediate_size")?, true, c.activation("hidden_act", "gelu")?),
        layer_norm(),
        NormPlacement::Pre,
    );
    l.hidden_dropout = dropout;
    let input = StackInput::Patches {
        channels: c.u64_or("num_channels", 3)?,
        patch,
        image,
        conv_bias: true,
        class_token: true,
    };
    let rows = image.checked_div(patch).map_or(1, |n| n * n + 1);
    let mut s =
        stack("encoder", false, input, Positions::Learned { max: rows, offset: 0 }, c.u64("num_hidden_layers")?, l);
    s.final_norm = Some(layer_norm());
    s.embedding_dropout = dropout;
    let head = match task.kind {
        Kind::ImageClassification => Head { classifier: Some(c.num_labels()?), ..Head::default() },
        Kind::Base => {
            if c.u64_or("pooler_output_size", h)? != h {
                return Err(c.unsupported("pooler_output_size", "a pooler width different from hidden_size"));
            }
            Head { pooler: true, ..Head::default() }
        }
        _ => return Err(task.reject(c, "…ForImageClassification and …Model")),
    };
    Ok(model(Architecture::Encoder, None, vec![s], head, 0))
}

/// CLIP (`modeling_clip.py`), `CLIPModel`: a causal text tower (token + 77 learned positions,
/// pre-LN, final LayerNorm) and a vision tower (bias-free patch conv, class token, pre-LayerNorm
/// over the embeddings, post-LayerNorm), quick_gelu MLPs, bias-free projections of both towers
/// to `projection_dim` and a learned logit scale. Missing tower fields take CLIP ViT-B/32's
/// defaults (`CLIPTextConfig` / `CLIPVisionConfig`).
fn clip(c: &Cfg, task: &Task) -> Result<ModelSpec> {
    if task.kind != Kind::Base {
        return Err(task.reject(c, "CLIPModel"));
    }
    let t = c.sub("text_config")?;
    let v = c.sub("vision_config")?;
    let tower = |cfg: &Cfg, hidden: u64, ffn: u64, heads: u64| -> Result<Layer> {
        let h = cfg.u64_or("hidden_size", hidden)?;
        Ok(layer(
            h,
            attention(cfg.u64_or("num_attention_heads", heads)?, true, cfg.f64_or("attention_dropout", 0.0)?),
            mlp(cfg.u64_or("intermediate_size", ffn)?, true, cfg.activation("hidden_act", "quick_gelu")?),
            layer_norm(),
            NormPlacement::Pre,
        ))
    };
    let text_layer = tower(&t, 512, 2048, 8)?;
    let text_hidden = text_layer.hidden;
    let text_max = t.u64_or("max_position_embeddings", 77)?;
    let mut text = stack(
        "text",
        true,
        StackInput::Tokens,
        Positions::Learned { max: text_max, offset: 0 },
        t.u64_or("num_hidden_layers", 12)?,
        text_layer,
    );
    text.final_norm = Some(layer_norm());
    let (image, patch) = (v.u64_or("image_size", 224)?, v.u64_or("patch_size", 32)?);
    let rows = image.checked_div(patch).map_or(1, |n| n * n + 1);
    let input = StackInput::Patches {
        channels: v.u64_or("num_channels", 3)?,
        patch,
        image,
        conv_bias: false,
        class_token: true,
    };
    let mut vision = stack(
        "vision",
        false,
        input,
        Positions::Learned { max: rows, offset: 0 },
        v.u64_or("num_hidden_layers", 12)?,
        tower(&v, 768, 3072, 12)?,
    );
    vision.embedding_norm = Some(layer_norm());
    vision.final_norm = Some(layer_norm());
    let head = Head { contrastive_dim: Some(c.u64_or("projection_dim", 512)?), ..Head::default() };
    let tokens = Some(TokenEmbedding { vocab: t.u64_or("vocab_size", 49408)?, dim: text_hidden });
    // position_ids of each tower: int64 [1, positions].
    Ok(model(Architecture::Encoder, tokens, vec![text, vision], head, 8 * (text_max + rows)))
}
