//! The seed systems GPT (openai-gpt), XLM (xlm-mlm-en-2048) and VL-BERT (VisualBERT's config):
//! exact parameter counts hand-counted from the module shapes of transformers' modeling files,
//! the same counts from their Hugging Face configs, and clear refusals of layouts not modelled.
//!
//! Cross-check of every hand count: transformers 5.24.0, `AutoConfig.for_model(model_type,
//! **config)` from `tests/data/seed/*.json`, the model class built on the meta device,
//! `model.num_parameters()`: OpenAIGPTLMHeadModel 116,534,784; XLMWithLMHeadModel 667,119,041;
//! VisualBertForPreTraining 112,074,812.

use memplan::model::{hf, params, presets};
use std::path::Path;

fn linear(i: u64, o: u64) -> u64 {
    i * o + o
}

/// models/openai/modeling_openai.py: tokens_embed [40478, 768], positions_embed [512, 768];
/// per Block: Attention c_attn Conv1D(768 → 2304), c_proj Conv1D(768 → 768), ln_1, MLP c_fc
/// Conv1D(768 → 3072), c_proj Conv1D(3072 → 768), ln_2; lm_head tied (no parameters).
fn openai_gpt_by_hand() -> u64 {
    let h = 768;
    let block = linear(h, 3 * h) + linear(h, h) + 2 * h + linear(h, 4 * h) + linear(4 * h, h) + 2 * h;
    40478 * h + 512 * h + 12 * block
}

/// models/xlm/modeling_xlm.py: embeddings [30145, 2048], position_embeddings [512, 2048],
/// layer_norm_emb; per layer q/k/v/out_lin Linear(2048, 2048), layer_norm1, TransformerFFN lin1
/// Linear(2048, 8192) and lin2 Linear(8192, 2048), layer_norm2; pred_layer.proj tied with a bias
/// [30145]. n_langs = 1: no lang_embeddings.
fn xlm_by_hand() -> u64 {
    let d = 2048;
    let layer = 4 * linear(d, d) + 2 * d + linear(d, 4 * d) + linear(4 * d, d) + 2 * d;
    30145 * d + 512 * d + 2 * d + 12 * layer + 30145
}

/// models/visual_bert/modeling_visual_bert.py: BERT-base embeddings (word [30522, 768], position
/// [512, 768], token type [2, 768], LayerNorm) + visual_token_type_embeddings [2, 768] +
/// visual_position_embeddings [512, 768] + visual_projection Linear(2048, 768); 12 BERT layers;
/// pooler Linear(768, 768); cls.predictions transform Linear(768, 768) + LayerNorm, decoder tied,
/// bias [30522]; cls.seq_relationship Linear(768, 2).
fn visual_bert_by_hand() -> u64 {
    let h = 768;
    let embeddings = 30522 * h + 512 * h + 2 * h + 2 * h;
    let visual = 2 * h + 512 * h + linear(2048, h);
    let layer = 4 * linear(h, h) + 2 * h + linear(h, 3072) + linear(3072, h) + 2 * h;
    let heads = linear(h, h) + linear(h, h) + 2 * h + 30522 + linear(h, 2);
    embeddings + visual + 12 * layer + heads
}

#[test]
fn hand_counts_equal_transformers_num_parameters() {
    assert_eq!(openai_gpt_by_hand(), 116_534_784);
    assert_eq!(xlm_by_hand(), 667_119_041);
    assert_eq!(visual_bert_by_hand(), 112_074_812);
}

#[test]
fn presets_count_exactly() {
    for (name, expected) in [
        ("openai-gpt", openai_gpt_by_hand()),
        ("xlm-mlm-en-2048", xlm_by_hand()),
        ("visualbert-vqa-coco-pre", visual_bert_by_hand()),
    ] {
        let m = presets::model(name).unwrap();
        assert_eq!(params::count(&m), expected, "{name}");
    }
}

#[test]
fn hf_configs_import_to_the_same_counts_and_shapes() {
    for (file, preset, expected) in [
        ("openai-gpt", "openai-gpt", openai_gpt_by_hand()),
        ("xlm-mlm-en-2048", "xlm-mlm-en-2048", xlm_by_hand()),
        ("visualbert-vqa-coco-pre", "visualbert-vqa-coco-pre", visual_bert_by_hand()),
    ] {
        let m = hf::from_hf_config(Path::new(&format!("tests/data/seed/{file}.json"))).unwrap();
        assert_eq!(params::count(&m), expected, "{file}");
        let p = presets::model(preset).unwrap();
        assert_eq!(m.stacks, p.stacks, "{file}: the import and the preset describe the same stack");
        assert_eq!(m.head, p.head, "{file}");
        assert_eq!(m.buffer_bytes, p.buffer_bytes, "{file}");
    }
}

#[test]
fn openai_gpt_is_post_norm_without_a_final_norm() {
    let m = presets::model("openai-gpt").unwrap();
    let s = &m.stacks[0];
    assert_eq!(s.layer.norm_placement, memplan::model::spec::NormPlacement::Post);
    assert!(s.final_norm.is_none());
    assert_eq!(s.layer.mlp.activation, memplan::model::spec::Activation::GeluNew);
}

#[test]
fn visual_embeddings_count_and_scale_with_the_feature_width() {
    // visual_embedding_dim 1024 (the NLVR2 checkpoints) changes only the projection: 1024·768 less.
    let text = std::fs::read_to_string("tests/data/seed/visualbert-vqa-coco-pre.json").unwrap();
    let m = hf::from_hf_json("v", &text.replace("\"visual_embedding_dim\": 2048", "\"visual_embedding_dim\": 1024"))
        .unwrap();
    assert_eq!(params::count(&m), visual_bert_by_hand() - 1024 * 768);
    // The estimate runs (training at 128 text + visual tokens).
    let (code, _, err) = memplan(&["estimate", "--model", "visualbert-vqa-coco-pre", "--seq", "128", "--gpu", "t4"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn unmodelled_layouts_are_refused_clearly() {
    let gpt = std::fs::read_to_string("tests/data/seed/openai-gpt.json").unwrap();
    let err = hf::from_hf_json("g", &gpt.replace("OpenAIGPTLMHeadModel", "OpenAIGPTDoubleHeadsModel")).unwrap_err();
    assert!(err.to_string().contains("OpenAIGPTDoubleHeadsModel"), "{err}");
    let err = hf::from_hf_json("g", &gpt.replace("\"afn\": \"gelu\"", "\"afn\": \"tanh\"")).unwrap_err();
    assert!(err.to_string().contains("tanh"), "{err}");
    let xlm = std::fs::read_to_string("tests/data/seed/xlm-mlm-en-2048.json").unwrap();
    let err = hf::from_hf_json("x", &xlm.replace("\"asm\": false", "\"asm\": true")).unwrap_err();
    assert!(err.to_string().contains("asm"), "{err}");
    let err = hf::from_hf_json("x", &xlm.replace("XLMWithLMHeadModel", "XLMForQuestionAnsweringSimple")).unwrap_err();
    assert!(err.to_string().contains("XLMForQuestionAnsweringSimple"), "{err}");
    // XLM with several languages gets one language-embedding row each.
    let multi = xlm.replace("\"n_langs\": 1", "\"n_langs\": 15");
    let m = hf::from_hf_json("x", &multi).unwrap();
    assert_eq!(params::count(&m), xlm_by_hand() + 15 * 2048);
}

fn memplan(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}
