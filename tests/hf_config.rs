//! Hugging Face `config.json` import: the validation configs give exactly the measured counts,
//! the hub configs of the presets give exactly the presets, heads follow `architectures`, and
//! bad input gives errors that name the file, line and field.

use memplan::error::Error;
use memplan::model::{hf, params, presets, ModelSpec};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn validation_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/validation");
    assert!(dir.join("measured.json").exists(), "validation data not found at {}", dir.display());
    dir
}

fn import(json: &str) -> ModelSpec {
    hf::from_hf_json("test", json).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn count(json: &str) -> u64 {
    params::count(&import(json))
}

/// The import of `json` is the preset `name`, field for field (name and family aside).
fn assert_is_preset(name: &str, json: &str) {
    let mut imported = import(json);
    let preset = presets::model(name).unwrap();
    imported.name = preset.name.clone();
    imported.family = preset.family.clone();
    assert_eq!(imported, preset, "{name}");
}

// ---------------------------------------------------------------------------------------------
// measured.json

#[test]
fn validation_configs_import_with_the_measured_counts() {
    let dir = validation_dir();
    let records: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("measured.json")).unwrap()).unwrap();
    assert!(records.len() >= 36);
    for r in &records {
        let id = r["id"].as_str().unwrap();
        let path = dir.join("configs").join(format!("{}.json", id.replace('/', "__")));
        let spec = hf::from_hf_config(&path).unwrap_or_else(|e| panic!("{id}: {e}"));
        let b = params::breakdown(&spec);
        let hp = &r["hyperparameters"];
        assert_eq!(b.total.params, hp["parameter_count"].as_u64().unwrap(), "{id}: parameters");
        assert_eq!(b.total.tensors, hp["num_parameter_tensors"].as_u64().unwrap(), "{id}: parameter tensors");
        assert_eq!(spec.buffer_bytes, r["measured"]["buffer_bytes"].as_u64().unwrap(), "{id}: buffer bytes");
        // The file's own stem names the model.
        assert_eq!(spec.name, id.replace('/', "__"));
    }
}

#[test]
fn measured_bert_is_the_masked_lm() {
    // BertForMaskedLM (30522 vocab): BertModel without its pooler plus the MLM transform
    // (dense 768×768 + bias, LayerNorm) and the vocabulary bias; the decoder is tied.
    let path = validation_dir().join("configs/bert-base__train__b4__s256__eager__fp32.json");
    let spec = hf::from_hf_config(&path).unwrap();
    let bare = 109_482_240; // bert-base-uncased BertModel (tests/params.rs)
    let pooler = 768 * 768 + 768;
    let transform = 768 * 768 + 768 + 2 * 768;
    assert_eq!(params::count(&spec), bare - pooler + transform + 30522);
    assert_eq!(params::count(&spec), 109_514_298); // measured.json parameter_count
    assert!(!spec.head.pooler);
}

// ---------------------------------------------------------------------------------------------
// Hub configs → presets. Each string carries the architecture-relevant keys of the cited
// config.json with their values; `architectures` names the class the preset counts.

#[test]
fn encoder_configs_are_their_presets() {
    // https://huggingface.co/google-bert/bert-base-cased/blob/main/config.json (the hub file names
    // BertForMaskedLM; the preset is the bare BertModel).
    let bert = r#"{"architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "intermediate_size": 3072,
        "max_position_embeddings": 512, "num_attention_heads": 12, "num_hidden_layers": 12,
        "type_vocab_size": 2, "vocab_size": 28996, "layer_norm_eps": 1e-12, "pad_token_id": 0}"#;
    assert_is_preset("bert-base-cased", bert);
    // As the hub config names it: BertForMaskedLM = no pooler, MLM transform + vocab bias.
    let mlm = bert.replace("\"BertModel\"", "\"BertForMaskedLM\"");
    assert_eq!(count(&mlm), 108_310_272 - (768 * 768 + 768) + (768 * 768 + 768 + 2 * 768) + 28996);

    // https://huggingface.co/FacebookAI/roberta-base/blob/main/config.json
    assert_is_preset(
        "roberta-base",
        r#"{"architectures": ["RobertaModel"], "model_type": "roberta", "attention_probs_dropout_prob": 0.1,
        "bos_token_id": 0, "eos_token_id": 2, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 768, "intermediate_size": 3072, "layer_norm_eps": 1e-05, "max_position_embeddings": 514,
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1,
        "vocab_size": 50265}"#,
    );
    // https://huggingface.co/FacebookAI/xlm-roberta-base/blob/main/config.json
    assert_is_preset(
        "xlm-roberta-base",
        r#"{"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "intermediate_size": 3072,
        "max_position_embeddings": 514, "num_attention_heads": 12, "num_hidden_layers": 12,
        "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 250002}"#,
    );
    // https://huggingface.co/distilbert/distilbert-base-uncased/blob/main/config.json
    assert_is_preset(
        "distilbert-base-uncased",
        r#"{"architectures": ["DistilBertModel"], "model_type": "distilbert", "activation": "gelu",
        "attention_dropout": 0.1, "dim": 768, "dropout": 0.1, "hidden_dim": 3072, "max_position_embeddings": 512,
        "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522}"#,
    );
    // https://huggingface.co/albert/albert-base-v2/blob/main/config.json
    let albert = r#"{"architectures": ["AlbertModel"], "model_type": "albert", "attention_probs_dropout_prob": 0,
        "hidden_act": "gelu_new", "hidden_dropout_prob": 0, "embedding_size": 128, "hidden_size": 768,
        "intermediate_size": 3072, "max_position_embeddings": 512, "num_attention_heads": 12,
        "num_hidden_layers": 12, "num_hidden_groups": 1, "inner_group_num": 1, "type_vocab_size": 2,
        "vocab_size": 30000}"#;
    assert_is_preset("albert-base-v2", albert);
    // AlbertForMaskedLM: no pooler; the transform maps 768 → 128 (dense with bias, LayerNorm over
    // 128), the decoder is tied to the 128-wide embedding, plus a 30000 bias.
    let albert_mlm = albert.replace("\"AlbertModel\"", "\"AlbertForMaskedLM\"");
    assert_eq!(count(&albert_mlm), 11_683_584 - (768 * 768 + 768) + (768 * 128 + 128 + 2 * 128) + 30000);
    // https://huggingface.co/microsoft/deberta-v3-base/blob/main/config.json (no `architectures`:
    // the bare DebertaV2Model).
    assert_is_preset(
        "deberta-v3-base",
        r#"{"model_type": "deberta-v2", "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 512, "relative_attention": true, "position_buckets": 256,
        "norm_rel_ebd": "layer_norm", "share_att_key": true, "pos_att_type": "p2c|c2p", "layer_norm_eps": 1e-7,
        "max_relative_positions": -1, "position_biased_input": false, "num_attention_heads": 12,
        "num_hidden_layers": 12, "type_vocab_size": 0, "vocab_size": 128100}"#,
    );
}

#[test]
fn vision_configs_are_their_presets() {
    // https://huggingface.co/google/vit-base-patch16-224/blob/main/config.json (id2label: 1000
    // ImageNet classes; `num_labels` stands in for the 1000-entry map here).
    let vit = r#"{"architectures": ["ViTForImageClassification"], "model_type": "vit",
        "attention_probs_dropout_prob": 0.0, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
        "hidden_size": 768, "image_size": 224, "intermediate_size": 3072, "num_attention_heads": 12,
        "num_channels": 3, "num_hidden_layers": 12, "patch_size": 16, "qkv_bias": true, "num_labels": 1000}"#;
    assert_is_preset("vit-base-patch16-224", vit);
    // The same classes given as id2label.
    let labels: Vec<String> = (0..1000).map(|i| format!("\"{i}\": \"class {i}\"")).collect();
    let with_map = vit.replace("\"num_labels\": 1000", &format!("\"id2label\": {{{}}}", labels.join(", ")));
    assert_eq!(count(&with_map), 86_567_656);
    // ViTModel: a pooler (768×768 + bias) instead of the classifier (768×1000 + bias).
    let bare = vit.replace("ViTForImageClassification", "ViTModel");
    assert_eq!(count(&bare), 86_567_656 - (768 * 1000 + 1000) + (768 * 768 + 768));

    // https://huggingface.co/openai/clip-vit-base-patch32/blob/main/config.json
    assert_is_preset(
        "clip-vit-base-patch32",
        r#"{"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 512,
        "logit_scale_init_value": 2.6592,
        "text_config": {"attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "quick_gelu", "hidden_size": 512,
            "intermediate_size": 2048, "max_position_embeddings": 77, "model_type": "clip_text_model",
            "num_attention_heads": 8, "num_hidden_layers": 12, "projection_dim": 512, "vocab_size": 49408},
        "vision_config": {"attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "quick_gelu", "hidden_size": 768,
            "image_size": 224, "intermediate_size": 3072, "model_type": "clip_vision_model",
            "num_attention_heads": 12, "num_hidden_layers": 12, "patch_size": 32, "projection_dim": 512}}"#,
    );
    // Towers left to CLIPTextConfig / CLIPVisionConfig defaults are ViT-B/32's.
    assert_eq!(count(r#"{"architectures": ["CLIPModel"], "model_type": "clip"}"#), 151_277_313);
}

#[test]
fn decoder_configs_are_their_presets() {
    // https://huggingface.co/openai-community/gpt2-medium/blob/main/config.json
    assert_is_preset(
        "gpt2-medium",
        r#"{"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "embd_pdrop": 0.1, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 1024, "n_head": 16, "n_layer": 24,
        "n_positions": 1024, "resid_pdrop": 0.1, "vocab_size": 50257}"#,
    );
    // https://huggingface.co/EleutherAI/gpt-neo-1.3B/blob/main/config.json
    assert_is_preset(
        "gpt-neo-1.3b",
        r#"{"activation_function": "gelu_new", "architectures": ["GPTNeoForCausalLM"], "attention_dropout": 0,
        "attention_types": [[["global", "local"], 12]], "embed_dropout": 0, "hidden_size": 2048,
        "intermediate_size": null, "max_position_embeddings": 2048, "model_type": "gpt_neo", "num_heads": 16,
        "num_layers": 24, "resid_dropout": 0, "vocab_size": 50257, "window_size": 256}"#,
    );
    // https://huggingface.co/EleutherAI/gpt-j-6b/blob/main/config.json
    assert_is_preset(
        "gpt-j-6b",
        r#"{"activation_function": "gelu_new", "architectures": ["GPTJForCausalLM"], "attn_pdrop": 0.0,
        "embd_pdrop": 0.0, "model_type": "gptj", "n_embd": 4096, "n_head": 16, "n_inner": null, "n_layer": 28,
        "n_positions": 2048, "resid_pdrop": 0.0, "rotary": true, "rotary_dim": 64, "tie_word_embeddings": false,
        "vocab_size": 50400}"#,
    );
    // https://huggingface.co/facebook/opt-1.3b/blob/main/config.json
    assert_is_preset(
        "opt-1.3b",
        r#"{"_remove_final_layer_norm": false, "activation_dropout": 0.0, "activation_function": "relu",
        "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "do_layer_norm_before": true,
        "dropout": 0.1, "ffn_dim": 8192, "hidden_size": 2048, "max_position_embeddings": 2048,
        "model_type": "opt", "num_attention_heads": 32, "num_hidden_layers": 24, "vocab_size": 50272,
        "word_embed_proj_dim": 2048}"#,
    );
    // https://huggingface.co/bigscience/bloom-560m/blob/main/config.json
    assert_is_preset(
        "bloom-560m",
        r#"{"apply_residual_connection_post_layernorm": false, "architectures": ["BloomForCausalLM"],
        "attention_dropout": 0.0, "hidden_dropout": 0.0, "model_type": "bloom", "n_embed": 1024, "n_head": 16,
        "n_layer": 24, "vocab_size": 250880}"#,
    );
    // https://huggingface.co/meta-llama/Llama-2-70b-hf/blob/main/config.json
    assert_is_preset(
        "llama-2-70b",
        r#"{"architectures": ["LlamaForCausalLM"], "hidden_act": "silu", "hidden_size": 8192,
        "intermediate_size": 28672, "max_position_embeddings": 4096, "model_type": "llama",
        "num_attention_heads": 64, "num_hidden_layers": 80, "num_key_value_heads": 8, "pretraining_tp": 1,
        "rms_norm_eps": 1e-05, "rope_scaling": null, "tie_word_embeddings": false, "vocab_size": 32000}"#,
    );
    // https://huggingface.co/meta-llama/Llama-3.1-405B/blob/main/config.json
    assert_is_preset(
        "llama-3.1-405b",
        r#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "hidden_act": "silu", "hidden_size": 16384, "intermediate_size": 53248, "max_position_embeddings": 131072,
        "mlp_bias": false, "model_type": "llama", "num_attention_heads": 128, "num_hidden_layers": 126,
        "num_key_value_heads": 8, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 500000.0,
        "tie_word_embeddings": false, "vocab_size": 128256}"#,
    );
    // https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json
    assert_is_preset(
        "mistral-7b",
        r#"{"architectures": ["MistralForCausalLM"], "hidden_act": "silu", "hidden_size": 4096,
        "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
        "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false, "vocab_size": 32000}"#,
    );
    // https://huggingface.co/mistralai/Mixtral-8x7B-v0.1/blob/main/config.json
    assert_is_preset(
        "mixtral-8x7b",
        r#"{"architectures": ["MixtralForCausalLM"], "hidden_act": "silu", "hidden_size": 4096,
        "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mixtral",
        "num_attention_heads": 32, "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "num_local_experts": 8, "output_router_logits": false, "rms_norm_eps": 1e-05, "rope_theta": 1e6,
        "router_aux_loss_coef": 0.02, "sliding_window": null, "tie_word_embeddings": false, "vocab_size": 32000}"#,
    );
}

#[test]
fn encoder_decoder_configs_are_their_presets() {
    // https://huggingface.co/google-t5/t5-3b/blob/main/config.json (the old class name
    // T5WithLMHeadModel is T5ForConditionalGeneration).
    assert_is_preset(
        "t5-3b",
        r#"{"architectures": ["T5WithLMHeadModel"], "d_ff": 16384, "d_kv": 128, "d_model": 1024,
        "decoder_start_token_id": 0, "dropout_rate": 0.1, "eos_token_id": 1, "initializer_factor": 1.0,
        "is_encoder_decoder": true, "layer_norm_epsilon": 1e-06, "model_type": "t5", "n_positions": 512,
        "num_heads": 32, "num_layers": 24, "output_past": true, "pad_token_id": 0,
        "relative_attention_num_buckets": 32, "vocab_size": 32128}"#,
    );
    // https://huggingface.co/google/flan-t5-xl/blob/main/config.json
    assert_is_preset(
        "flan-t5-xl",
        r#"{"architectures": ["T5ForConditionalGeneration"], "d_ff": 5120, "d_kv": 64, "d_model": 2048,
        "decoder_start_token_id": 0, "dense_act_fn": "gelu_new", "dropout_rate": 0.1, "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu", "initializer_factor": 1.0, "is_encoder_decoder": true,
        "is_gated_act": true, "layer_norm_epsilon": 1e-06, "model_type": "t5", "num_decoder_layers": 24,
        "num_heads": 32, "num_layers": 24, "output_past": true, "pad_token_id": 0,
        "relative_attention_max_distance": 128, "relative_attention_num_buckets": 32,
        "tie_word_embeddings": false, "vocab_size": 32128}"#,
    );
    // https://huggingface.co/facebook/bart-large/blob/main/config.json (the hub file names BartModel;
    // the preset is BartForConditionalGeneration).
    assert_is_preset(
        "bart-large",
        r#"{"activation_dropout": 0.1, "activation_function": "gelu", "add_bias_logits": false,
        "add_final_layer_norm": false, "architectures": ["BartModel"], "attention_dropout": 0.1, "d_model": 1024,
        "decoder_attention_heads": 16, "decoder_ffn_dim": 4096, "decoder_layers": 12, "dropout": 0.1,
        "encoder_attention_heads": 16, "encoder_ffn_dim": 4096, "encoder_layers": 12,
        "max_position_embeddings": 1024, "model_type": "bart", "normalize_before": false,
        "scale_embedding": false, "vocab_size": 50265}"#
            .replace("\"BartModel\"", "\"BartForConditionalGeneration\"")
            .as_str(),
    );
    // https://huggingface.co/openai/whisper-large-v3/blob/main/config.json
    assert_is_preset(
        "whisper-large-v3",
        r#"{"activation_dropout": 0.0, "activation_function": "gelu", "architectures":
        ["WhisperForConditionalGeneration"], "attention_dropout": 0.0, "d_model": 1280,
        "decoder_attention_heads": 20, "decoder_ffn_dim": 5120, "decoder_layers": 32, "dropout": 0.0,
        "encoder_attention_heads": 20, "encoder_ffn_dim": 5120, "encoder_layers": 32,
        "max_source_positions": 1500, "max_target_positions": 448, "model_type": "whisper",
        "num_mel_bins": 128, "scale_embedding": false, "vocab_size": 51866}"#,
    );
}

// ---------------------------------------------------------------------------------------------
// Heads and options.

const GPT2: &str = r#"{"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}"#;

#[test]
fn the_head_follows_architectures_and_tie_word_embeddings() {
    assert_eq!(count(GPT2), 124_439_808);
    // GPT2Model: the same parameters (the tied head has none of its own), no LM head.
    let bare = import(&GPT2.replace("GPT2LMHeadModel", "GPT2Model"));
    assert_eq!(params::count(&bare), 124_439_808);
    assert!(bare.head.lm_head.is_none());
    // An untied head adds its own 768 × 50257 matrix.
    let untied = GPT2.replace("\"n_embd\"", "\"tie_word_embeddings\": false, \"n_embd\"");
    assert_eq!(count(&untied), 124_439_808 + 768 * 50257);
    // A classification head on an encoder: pooler + Linear(768, num_labels).
    let bert = r#"{"model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_size": 768,
        "num_attention_heads": 12, "num_hidden_layers": 12, "intermediate_size": 3072, "vocab_size": 28996,
        "id2label": {"0": "neg", "1": "neutral", "2": "pos"}}"#;
    assert_eq!(count(bert), 108_310_272 + 768 * 3 + 3);
    // T5EncoderModel keeps the shared embedding and the encoder only.
    let t5 = r#"{"model_type": "t5", "architectures": ["T5EncoderModel"], "d_model": 512, "d_ff": 2048, "d_kv": 64,
        "num_heads": 8, "num_layers": 6, "vocab_size": 32128}"#;
    let encoder = import(t5);
    assert_eq!(encoder.stacks.len(), 1);
    // 32128·512 + 6 × (4·512·512 + 512 + 2·512·2048 + 512) + 32·8 + 512
    assert_eq!(params::count(&encoder), 32128 * 512 + 6 * (4 * 512 * 512 + 512 + 2 * 512 * 2048 + 512) + 32 * 8 + 512);
}

#[test]
fn attention_options_are_read() {
    // Qwen2: Q/K/V biases, no o_proj bias, GQA, tied head (Qwen/Qwen2-0.5B config.json).
    let qwen = r#"{"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
        "hidden_size": 896, "intermediate_size": 4864, "num_attention_heads": 14,
        "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
        "tie_word_embeddings": true, "vocab_size": 151936}"#;
    let m = import(qwen);
    let a = &m.stacks[0].layer.attention;
    assert!(a.q_bias && a.k_bias && a.v_bias && !a.o_bias);
    assert_eq!(a.kv_heads(), 2);
    // 151936·896 + 24 × (q 896·896+896, k and v 896·128+128, o 896·896, SwiGLU 3·896·4864, 2 norms) + norm
    let layer = (896 * 896 + 896) + 2 * (896 * 128 + 128) + 896 * 896 + 3 * 896 * 4864 + 2 * 896;
    assert_eq!(params::count(&m), 151936 * 896 + 24 * layer + 896);
    assert_eq!(params::count(&m), 494_032_768); // Qwen2-0.5B model card: 0.49B
                                                // An explicit head_dim wider than hidden / heads (Gemma-style) sizes the projections.
    let wide = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
        "intermediate_size": 16384, "num_attention_heads": 8, "num_key_value_heads": 1, "head_dim": 256,
        "num_hidden_layers": 2, "vocab_size": 1000, "attention_bias": true}"#;
    let m = import(wide);
    assert_eq!(m.stacks[0].layer.attention.head_dim(2048), 256);
    let attn = (2048 * 2048 + 2048) + 2 * (2048 * 256 + 256) + (2048 * 2048 + 2048);
    assert_eq!(params::count(&m), 2 * 1000 * 2048 + 2 * (attn + 3 * 2048 * 16384 + 2 * 2048) + 2048);
    // Dropout fields reach the spec.
    let neo = import(
        r#"{"model_type": "gpt_neo", "hidden_size": 64, "num_heads": 4, "num_layers": 2, "vocab_size": 10,
        "attention_dropout": 0.25, "resid_dropout": 0.5, "embed_dropout": 0.125}"#,
    );
    let s = &neo.stacks[0];
    assert_eq!((s.layer.attention.dropout, s.layer.hidden_dropout, s.embedding_dropout), (0.25, 0.5, 0.125));
}

#[test]
fn a_config_file_is_named_after_its_folder() {
    let dir = std::env::temp_dir().join(format!("memplan-hfname-{}", std::process::id())).join("my-gpt2");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.json");
    std::fs::write(&path, GPT2).unwrap();
    assert_eq!(hf::from_hf_config(&path).unwrap().name, "my-gpt2");
    std::fs::remove_dir_all(dir.parent().unwrap()).ok();
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[test]
fn a_missing_file_is_an_io_error_naming_the_path() {
    let path = Path::new("/nonexistent/memplan/config.json");
    match hf::from_hf_config(path) {
        Err(Error::Io { path: p, message }) => {
            assert_eq!(p, path);
            assert!(message.contains("No such file"), "{message}");
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
}

#[test]
fn invalid_json_is_a_parse_error_with_its_line() {
    let text = "{\n  \"model_type\": \"gpt2\",\n  \"n_embd\": 768,,\n}";
    match hf::from_hf_json("broken", text) {
        Err(Error::Parse { line, field, message, .. }) => {
            assert_eq!(line, Some(3));
            assert_eq!(field, None);
            assert!(message.contains("not valid JSON"), "{message}");
        }
        other => panic!("expected Error::Parse, got {other:?}"),
    }
    // Valid JSON that is not an object.
    assert!(matches!(hf::from_hf_json("list", "[1, 2]"), Err(Error::Parse { .. })));
}

#[test]
fn an_unknown_model_type_lists_the_supported_ones() {
    let err = hf::from_hf_json("mamba", r#"{"model_type": "mamba", "hidden_size": 768}"#).unwrap_err();
    match &err {
        Error::UnsupportedModelType { model_type, supported } => {
            assert_eq!(model_type, "mamba");
            for t in ["bert", "gpt2", "llama", "t5", "whisper", "clip", "deberta-v2"] {
                assert!(supported.contains(&t), "{t}");
            }
        }
        other => panic!("expected UnsupportedModelType, got {other:?}"),
    }
    assert!(err.hint().unwrap().contains("llama"));
    // No model_type at all.
    match hf::from_hf_json("none", r#"{"hidden_size": 768}"#) {
        Err(Error::Parse { field, .. }) => assert_eq!(field.as_deref(), Some("model_type")),
        other => panic!("expected Error::Parse, got {other:?}"),
    }
}

#[test]
fn a_missing_or_mistyped_field_is_named() {
    // Missing.
    let missing = r#"{"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32,
        "num_hidden_layers": 32, "vocab_size": 32000}"#;
    match hf::from_hf_json("llama", missing) {
        Err(Error::Parse { field, message, .. }) => {
            assert_eq!(field.as_deref(), Some("intermediate_size"));
            assert!(message.contains("missing"), "{message}");
        }
        other => panic!("expected Error::Parse, got {other:?}"),
    }
    // Wrong type, with the line of the key.
    let wrong = "{\n  \"model_type\": \"gpt2\",\n  \"n_embd\": \"big\",\n  \"n_head\": 12\n}";
    let err = hf::from_hf_json("gpt2", wrong).unwrap_err();
    match &err {
        Error::Parse { line, field, message, .. } => {
            assert_eq!(*line, Some(3));
            assert_eq!(field.as_deref(), Some("n_embd"));
            assert!(message.contains("integer") && message.contains("big"), "{message}");
        }
        other => panic!("expected Error::Parse, got {other:?}"),
    }
    assert!(err.to_string().contains("config.json:3: field `n_embd`"), "{err}");
    // A nested field names its path.
    let clip = r#"{"model_type": "clip", "text_config": {"hidden_size": 512.5}}"#;
    match hf::from_hf_json("clip", clip) {
        Err(Error::Parse { field, .. }) => assert_eq!(field.as_deref(), Some("text_config.hidden_size")),
        other => panic!("expected Error::Parse, got {other:?}"),
    }
    // A dropout that is not a number, a boolean that is not a boolean.
    let bad_dropout = GPT2.replace("\"n_embd\"", "\"attn_pdrop\": \"0.1\", \"n_embd\"");
    assert!(
        matches!(hf::from_hf_json("x", &bad_dropout), Err(Error::Parse { field: Some(f), .. }) if f == "attn_pdrop")
    );
    let bad_tie = GPT2.replace("\"n_embd\"", "\"tie_word_embeddings\": 1, \"n_embd\"");
    assert!(
        matches!(hf::from_hf_json("x", &bad_tie), Err(Error::Parse { field: Some(f), .. }) if f == "tie_word_embeddings")
    );
}

#[test]
fn unsupported_layouts_are_refused_not_miscounted() {
    // An unknown head class.
    let qa = GPT2.replace("GPT2LMHeadModel", "GPT2DoubleHeadsModel");
    assert!(matches!(hf::from_hf_json("x", &qa), Err(Error::Parse { field: Some(f), .. }) if f == "architectures"));
    // A head this family does not build (score without bias on a decoder).
    let cls = GPT2.replace("GPT2LMHeadModel", "GPT2ForSequenceClassification");
    assert!(matches!(hf::from_hf_json("x", &cls), Err(Error::Parse { field: Some(f), .. }) if f == "architectures"));
    // OPT-350m's projected embeddings.
    let opt350 = r#"{"model_type": "opt", "hidden_size": 1024, "word_embed_proj_dim": 512, "num_attention_heads": 16,
        "num_hidden_layers": 24, "ffn_dim": 4096, "vocab_size": 50272}"#;
    assert!(
        matches!(hf::from_hf_json("x", opt350), Err(Error::Parse { field: Some(f), .. }) if f == "word_embed_proj_dim")
    );
    // An unknown activation.
    let act = GPT2.replace("\"n_embd\"", "\"activation_function\": \"mish\", \"n_embd\"");
    assert!(
        matches!(hf::from_hf_json("x", &act), Err(Error::Parse { field: Some(f), .. }) if f == "activation_function")
    );
    // A shape that cannot exist: 12 heads do not divide 100.
    let shape = GPT2.replace("\"n_embd\": 768", "\"n_embd\": 100");
    assert!(matches!(hf::from_hf_json("x", &shape),
        Err(Error::Parse { path, message, .. }) if path.ends_with("config.json")
            && message.contains("12 heads do not divide hidden size 100")));
}
