//! Exact parameter counts of every built-in model preset.
//!
//! Each expected number carries its source: a published count
//! (tests/data/validation/REFERENCES.md, a model card, a
//! paper), or Hugging Face `num_parameters()` of the preset's class built from the cited
//! `config.json` (tied weights once; checked with transformers 5.23 on the meta device). Every
//! number is also re-derived below by a hand calculation written out matrix by matrix, so the
//! expectation never comes from memplan's own counting code.

use memplan::model::{params, presets};

fn count(name: &str) -> u64 {
    params::count(&presets::model(name).unwrap_or_else(|e| panic!("preset {name}: {e}")))
}

fn tensors(name: &str) -> u64 {
    params::breakdown(&presets::model(name).unwrap()).total.tensors
}

// ---------------------------------------------------------------------------------------------
// Hand-count building blocks: one weight matrix, a matrix with its bias, a LayerNorm (weight and
// bias), an RMSNorm (weight only), an embedding table.

/// Weight of a Linear(i → o) without bias.
fn w(i: u64, o: u64) -> u64 {
    i * o
}
/// Linear(i → o) with bias.
fn wb(i: u64, o: u64) -> u64 {
    i * o + o
}
/// LayerNorm(h): weight + bias.
fn ln(h: u64) -> u64 {
    2 * h
}
/// RMSNorm / T5LayerNorm(h): weight only.
fn rms(h: u64) -> u64 {
    h
}
/// Embedding table of `rows` × `h`.
fn table(rows: u64, h: u64) -> u64 {
    rows * h
}

// ---------------------------------------------------------------------------------------------
// Families, written out per matrix.

/// BERT-style post-LN encoder layer: Q, K, V, O (with biases), attention LayerNorm,
/// intermediate (h→ffn) and output (ffn→h) with biases, output LayerNorm.
fn bert_layer(h: u64, ffn: u64) -> u64 {
    4 * wb(h, h) + ln(h) + wb(h, ffn) + wb(ffn, h) + ln(h)
}

/// BertModel / RobertaModel / XLMRobertaModel: word + position + token-type tables,
/// embedding LayerNorm, L layers, pooler dense h×h with bias.
fn bert_model(vocab: u64, positions: u64, types: u64, h: u64, layers: u64, ffn: u64) -> u64 {
    table(vocab, h) + table(positions, h) + table(types, h) + ln(h) + layers * bert_layer(h, ffn) + wb(h, h)
}

/// GPT-2-style pre-LN decoder with fused QKV (h → 3h, bias), out projection, 4h MLP with biases,
/// learned positions, final LayerNorm and a tied head (no parameters).
fn gpt2_style(vocab: u64, positions: u64, h: u64, layers: u64) -> u64 {
    let layer = ln(h) + wb(h, 3 * h) + wb(h, h) + ln(h) + wb(h, 4 * h) + wb(4 * h, h);
    table(vocab, h) + table(positions, h) + layers * layer + ln(h)
}

/// LLaMA-style decoder: q (h → a·d), k and v (h → kv·d), o (a·d → h), all without bias;
/// SwiGLU gate, up (h → ffn) and down (ffn → h); two RMSNorms; final RMSNorm; untied head.
fn llama_style(vocab: u64, h: u64, layers: u64, heads: u64, kv: u64, ffn: u64) -> u64 {
    let d = h / heads;
    let attn = w(h, heads * d) + 2 * w(h, kv * d) + w(heads * d, h);
    let mlp = 2 * w(h, ffn) + w(ffn, h);
    table(vocab, h) + layers * (attn + mlp + 2 * rms(h)) + rms(h) + w(h, vocab)
}

/// OPT with pre-LN: learned positions of max + 2 rows, Q/K/V/O and fc1/fc2 with biases, two
/// LayerNorms per layer, final LayerNorm, tied head.
fn opt(h: u64, layers: u64, ffn: u64) -> u64 {
    let layer = 4 * wb(h, h) + ln(h) + wb(h, ffn) + wb(ffn, h) + ln(h);
    table(50272, h) + table(2048 + 2, h) + layers * layer + ln(h)
}

/// BLOOM: embedding LayerNorm, fused query_key_value (h → 3h) and dense with biases,
/// 4h MLP with biases, two LayerNorms per layer, final LayerNorm, ALiBi (no positions), tied head.
fn bloom(h: u64, layers: u64) -> u64 {
    let layer = ln(h) + wb(h, 3 * h) + wb(h, h) + ln(h) + wb(h, 4 * h) + wb(4 * h, h);
    table(250880, h) + ln(h) + layers * layer + ln(h)
}

/// T5 / T5 v1.1 encoder-decoder with a shared 32128-row embedding. Attention projections are
/// d_model → heads·d_kv without bias; T5LayerNorm is weight-only; the relative attention bias
/// (32 buckets × heads) lives in the first layer of each stack.
fn t5(d: u64, ffn: u64, d_kv: u64, heads: u64, layers: u64, gated: bool, untied_head: bool) -> u64 {
    let inner = heads * d_kv;
    let attn = 3 * w(d, inner) + w(inner, d);
    let mlp = if gated { 2 * w(d, ffn) + w(ffn, d) } else { w(d, ffn) + w(ffn, d) };
    let encoder = layers * (attn + rms(d) + mlp + rms(d)) + table(32, heads) + rms(d);
    let decoder = layers * (attn + rms(d) + attn + rms(d) + mlp + rms(d)) + table(32, heads) + rms(d);
    let head = if untied_head { w(d, 32128) } else { 0 };
    table(32128, d) + encoder + decoder + head
}

/// Megatron GPT: Narayanan et al. 2021 (arXiv:2104.04473, §5.1) count a GPT model's parameters
/// as P = 12·l·h²·(1 + 13/(12h) + (V + s)/(12·l·h)) = 12·l·h² + 13·l·h + (V + s)·h; the final
/// LayerNorm adds 2h. The same number, matrix by matrix, is `gpt2_style`.
fn narayanan(vocab: u64, seq: u64, h: u64, layers: u64) -> u64 {
    12 * layers * h * h + 13 * layers * h + (vocab + seq) * h + 2 * h
}

// ---------------------------------------------------------------------------------------------
// The table every preset must appear in (the last test checks it covers them all).

const EXPECTED: &[(&str, u64)] = &[
    // tests/data/validation/REFERENCES.md and Hugging Face accelerate tests/test_cli.py:
    // BertModel bert-base-cased.
    ("bert-base-cased", 108_310_272),
    // HF BertModel.num_parameters(), google-bert/bert-base-uncased config.
    ("bert-base-uncased", 109_482_240),
    // HF BertModel.num_parameters(), google-bert/bert-large-cased config.
    ("bert-large-cased", 333_579_264),
    // HF BertModel.num_parameters(), google-bert/bert-large-uncased config.
    ("bert-large-uncased", 335_141_888),
    // HF RobertaModel.num_parameters(), FacebookAI/roberta-base config.
    ("roberta-base", 124_645_632),
    // HF RobertaModel.num_parameters(), FacebookAI/roberta-large config.
    ("roberta-large", 355_359_744),
    // HF DistilBertModel.num_parameters(), distilbert/distilbert-base-uncased config
    // (model card: 66M).
    ("distilbert-base-uncased", 66_362_880),
    // HF AlbertModel.num_parameters(), albert/albert-base-v2 config (model card: 11M).
    ("albert-base-v2", 11_683_584),
    // HF DebertaV2Model.num_parameters(), microsoft/deberta-v3-base config (model card: 86M
    // backbone + 98M embedding).
    ("deberta-v3-base", 183_831_552),
    // HF XLMRobertaModel.num_parameters(), FacebookAI/xlm-roberta-base config.
    ("xlm-roberta-base", 278_043_648),
    // ViT-B/16 ViTForImageClassification with 1000 classes (project brief; HF num_parameters()).
    ("vit-base-patch16-224", 86_567_656),
    // HF ViTForImageClassification.num_parameters(), google/vit-large-patch16-224 config.
    ("vit-large-patch16-224", 304_326_632),
    // CLIP ViT-B/32 CLIPModel (project brief; HF num_parameters()).
    ("clip-vit-base-patch32", 151_277_313),
    // tests/data/validation/REFERENCES.md: gpt2 124,439,808 (GPT2LMHeadModel).
    ("gpt2", 124_439_808),
    // HF GPT2LMHeadModel.num_parameters(), openai-community/gpt2-medium config.
    ("gpt2-medium", 354_823_168),
    // HF GPT2LMHeadModel.num_parameters(), openai-community/gpt2-large config.
    ("gpt2-large", 774_030_080),
    // HF GPT2LMHeadModel.num_parameters(), openai-community/gpt2-xl config.
    ("gpt2-xl", 1_557_611_200),
    // HF GPTNeoForCausalLM.num_parameters(), EleutherAI/gpt-neo-1.3B config.
    ("gpt-neo-1.3b", 1_315_575_808),
    // HF GPTNeoForCausalLM.num_parameters(), EleutherAI/gpt-neo-2.7B config.
    ("gpt-neo-2.7b", 2_651_307_520),
    // HF GPTJForCausalLM.num_parameters(), EleutherAI/gpt-j-6b config.
    ("gpt-j-6b", 6_050_882_784),
    // HF OPTForCausalLM.num_parameters(), facebook/opt-* configs.
    ("opt-125m", 125_239_296),
    ("opt-1.3b", 1_315_758_080),
    // Hand counts in tests/seed_models.rs; equal to transformers 5.24.0 num_parameters() of
    // OpenAIGPTLMHeadModel, XLMWithLMHeadModel and VisualBertForPreTraining from their configs.
    ("openai-gpt", 116_534_784),
    ("xlm-mlm-en-2048", 667_119_041),
    ("visualbert-vqa-coco-pre", 112_074_812),
    ("opt-6.7b", 6_658_473_984),
    ("opt-13b", 12_853_473_280),
    ("opt-30b", 29_974_540_288),
    ("opt-66b", 65_719_701_504),
    // HF BloomForCausalLM.num_parameters(), bigscience/bloom-560m, bloom-7b1 and bloom configs
    // (model card of bloom: 176,247,271,424 parameters).
    ("bloom-560m", 559_214_592),
    ("bloom-7b1", 7_069_016_064),
    ("bloom-176b", 176_247_271_424),
    // GPT-3 (Brown et al. 2020, Table 2.1: 175.0B): hand count below.
    ("gpt3-175b", 174_604_259_328),
    // tests/data/validation/REFERENCES.md: Llama-2-7B 6,738,415,616.
    ("llama-2-7b", 6_738_415_616),
    // HF LlamaForCausalLM.num_parameters(), meta-llama/Llama-2-13b-hf and -70b-hf configs.
    ("llama-2-13b", 13_015_864_320),
    ("llama-2-70b", 68_976_648_192),
    // HF LlamaForCausalLM.num_parameters(), meta-llama/Meta-Llama-3-8B, -70B, Llama-3.1-405B.
    ("llama-3-8b", 8_030_261_248),
    ("llama-3-70b", 70_553_706_496),
    ("llama-3.1-405b", 405_853_388_800),
    // HF MistralForCausalLM.num_parameters(), mistralai/Mistral-7B-v0.1 config.
    ("mistral-7b", 7_241_732_096),
    // Hand calculations from the configs, written out in tests/finetune.rs
    // (deepseek_parameter_counts_by_hand): DeepSeek-V2-Lite "15.7B", DeepSeek-V3 "671B".
    ("deepseek-v2-lite", 15_706_484_224),
    ("deepseek-v3", 671_026_404_352),
    // HF MixtralForCausalLM.num_parameters(), mistralai/Mixtral-8x7B-v0.1 config (46.7B total).
    ("mixtral-8x7b", 46_702_792_704),
    // HF T5ForConditionalGeneration.num_parameters(): t5-small, t5-base from their configs;
    // tests/data/validation/REFERENCES.md: t5-large 737,668,096 and t5-3b 2,851,598,336.
    ("t5-small", 60_506_624),
    ("t5-base", 222_903_552),
    ("t5-large", 737_668_096),
    ("t5-3b", 2_851_598_336),
    ("t5-11b", 11_307_321_344),
    // FLAN-T5 with its untied lm_head as the checkpoints store it (transformers 4.x
    // T5ForConditionalGeneration.num_parameters(); transformers 5 forces the head tied).
    ("flan-t5-base", 247_577_856),
    ("flan-t5-large", 783_150_080),
    ("flan-t5-xl", 2_849_757_184),
    ("flan-t5-xxl", 11_135_332_352),
    // HF BartForConditionalGeneration.num_parameters(), facebook/bart-base and bart-large configs.
    ("bart-base", 139_420_416),
    ("bart-large", 406_291_456),
    // HF WhisperForConditionalGeneration.num_parameters(), openai/whisper-small, large-v3.
    ("whisper-small", 241_734_912),
    ("whisper-large-v3", 1_543_490_560),
    // Families beyond transformer stacks (tests/families.rs has the details and the hand counts).
    // torchvision ResNet*_Weights.IMAGENET1K_V1.meta["num_params"] (torchvision/models/resnet.py).
    ("resnet-18", 11_689_512),
    ("resnet-50", 25_557_032),
    ("resnet-152", 60_192_808),
    // diffusers/transformers num_parameters() of the pipelines' models built from their configs:
    // SD v1.5 UNet 859,520,964 + VAE 83,653,863 + CLIP ViT-L text 123,060,480; SDXL UNet
    // 2,567,463,684 + VAE + CLIP ViT-L text + OpenCLIP bigG text with projection 694,659,840.
    ("stable-diffusion-v1-5", 1_066_235_307),
    ("stable-diffusion-xl-base-1.0", 3_468_837_867),
    // HF BigBirdForPreTraining.num_parameters(), google/bigbird-roberta-base.
    ("bigbird-roberta-base", 128_112_824),
    // Sutskever et al. 2014 "384M parameters", as PyTorch modules (with LSTM and softmax biases).
    ("lstm-seq2seq", 384_144_000),
    // yunjey/pytorch-tutorial image_captioning EncoderCNN (ResNet-152) + DecoderRNN, vocabulary 10,000.
    ("show-and-tell", 67_935_824),
    // Korthikanti et al. 2022 Table 3 models; Narayanan et al. 2021 Table 1 lists the same shapes
    // as 529.6B (h 20480, L 105) and 1008.0B (h 25600, L 128). Hand counts below.
    ("megatron-22b", 22_074_273_792),
    ("megatron-175b", 174_615_846_912),
    ("megatron-530b", 529_600_819_200),
    ("megatron-1t", 1_008_038_758_400),
];

fn expected(name: &str) -> u64 {
    EXPECTED.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name} not in EXPECTED")).1
}

#[test]
fn every_preset_has_its_exact_count() {
    for (name, n) in EXPECTED {
        assert_eq!(count(name), *n, "{name}");
    }
}

#[test]
fn every_builtin_preset_is_in_the_table() {
    let mut listed: Vec<&str> = EXPECTED.iter().map(|(n, _)| *n).collect();
    listed.sort();
    let mut names = presets::model_names();
    names.sort();
    assert_eq!(names, listed, "add new presets to EXPECTED with a source");
}

// ---------------------------------------------------------------------------------------------
// Hand calculations behind each number.

#[test]
fn bert_family_by_hand() {
    // bert-base: h 768, 12 layers, ffn 3072, 512 positions, 2 token types.
    assert_eq!(expected("bert-base-cased"), bert_model(28996, 512, 2, 768, 12, 3072));
    assert_eq!(expected("bert-base-uncased"), bert_model(30522, 512, 2, 768, 12, 3072));
    // bert-large: h 1024, 24 layers, ffn 4096.
    assert_eq!(expected("bert-large-cased"), bert_model(28996, 512, 2, 1024, 24, 4096));
    assert_eq!(expected("bert-large-uncased"), bert_model(30522, 512, 2, 1024, 24, 4096));
    // RoBERTa: 514 position rows (512 + padding_idx 1 + 1), 1 token type, vocab 50265.
    assert_eq!(expected("roberta-base"), bert_model(50265, 514, 1, 768, 12, 3072));
    assert_eq!(expected("roberta-large"), bert_model(50265, 514, 1, 1024, 24, 4096));
    assert_eq!(expected("xlm-roberta-base"), bert_model(250002, 514, 1, 768, 12, 3072));
    // Spelled out once for bert-base-cased:
    // embeddings 28996·768 + 512·768 + 2·768 + 2·768 = 22,268,928 + 393,216 + 1,536 + 1,536
    // layer 4·(768·768 + 768) + 2·768 + (768·3072 + 3072) + (3072·768 + 768) + 2·768 = 7,087,872
    // pooler 768·768 + 768 = 590,592
    assert_eq!(22_268_928 + 393_216 + 1_536 + 1_536 + 12 * 7_087_872 + 590_592, 108_310_272);
}

#[test]
fn distilbert_albert_deberta_by_hand() {
    // DistilBERT: word 30522·768, positions 512·768, embedding LayerNorm, 6 BERT layers, no pooler.
    let distil = table(30522, 768) + table(512, 768) + ln(768) + 6 * bert_layer(768, 3072);
    assert_eq!(expected("distilbert-base-uncased"), distil);
    // ALBERT-base v2: E = 128 wide word/position/type tables + LayerNorm(128), the E→H projection
    // (128·768 + 768), ONE shared layer, pooler.
    let albert = table(30000, 128)
        + table(512, 128)
        + table(2, 128)
        + ln(128)
        + wb(128, 768)
        + bert_layer(768, 3072)
        + wb(768, 768);
    assert_eq!(expected("albert-base-v2"), albert);
    // DeBERTa-v3-base: word 128100·768 + LayerNorm, 12 layers, relative table 2·256 × 768 +
    // its LayerNorm; no absolute positions, no token types, no pooler.
    let deberta = table(128100, 768) + ln(768) + 12 * bert_layer(768, 3072) + table(512, 768) + ln(768);
    assert_eq!(expected("deberta-v3-base"), deberta);
}

#[test]
fn vision_models_by_hand() {
    // ViTForImageClassification: Conv2d(3, h, 16, 16) with bias, class token, (224/16)² + 1 = 197
    // position rows, pre-LN layers (two LayerNorms, Q/K/V/O and MLP with biases), final
    // LayerNorm, classifier h → 1000 with bias.
    let vit = |h: u64, layers: u64, ffn: u64| {
        wb(3 * 16 * 16, h) + h + table(197, h) + layers * bert_layer(h, ffn) + ln(h) + wb(h, 1000)
    };
    assert_eq!(expected("vit-base-patch16-224"), vit(768, 12, 3072));
    assert_eq!(expected("vit-large-patch16-224"), vit(1024, 24, 4096));
    // CLIPModel ViT-B/32. Text: 49408·512 tokens, 77·512 positions, 12 layers (512, ffn 2048),
    // final LayerNorm. Vision: Conv2d(3, 768, 32, 32) without bias, class embedding, 50 position
    // rows, pre-LayerNorm, 12 layers (768, ffn 3072), post-LayerNorm. Heads: text_projection
    // 512→512 and visual_projection 768→512 without bias, logit_scale (1).
    let text = table(49408, 512) + table(77, 512) + 12 * bert_layer(512, 2048) + ln(512);
    let vision = w(3 * 32 * 32, 768) + 768 + table(50, 768) + ln(768) + 12 * bert_layer(768, 3072) + ln(768);
    let heads = w(512, 512) + w(768, 512) + 1;
    assert_eq!(expected("clip-vit-base-patch32"), text + vision + heads);
}

#[test]
fn gpt2_family_by_hand() {
    assert_eq!(expected("gpt2"), gpt2_style(50257, 1024, 768, 12));
    assert_eq!(expected("gpt2-medium"), gpt2_style(50257, 1024, 1024, 24));
    assert_eq!(expected("gpt2-large"), gpt2_style(50257, 1024, 1280, 36));
    assert_eq!(expected("gpt2-xl"), gpt2_style(50257, 1024, 1600, 48));
    // GPT-3 175B: GPT-2 layers at d_model 12288, 96 layers, n_ctx 2048, vocabulary 50257.
    assert_eq!(expected("gpt3-175b"), gpt2_style(50257, 2048, 12288, 96));
}

#[test]
fn gpt_neo_and_gpt_j_by_hand() {
    // GPT-Neo: q/k/v without bias, out_proj with bias; otherwise GPT-2 (2048 positions).
    let neo = |h: u64, layers: u64| {
        let layer = ln(h) + 3 * w(h, h) + wb(h, h) + ln(h) + wb(h, 4 * h) + wb(4 * h, h);
        table(50257, h) + table(2048, h) + layers * layer + ln(h)
    };
    assert_eq!(expected("gpt-neo-1.3b"), neo(2048, 24));
    assert_eq!(expected("gpt-neo-2.7b"), neo(2560, 32));
    // GPT-J 6B: 50400·4096 embedding; per layer one LayerNorm, q/k/v/out without bias,
    // fc_in 4096→16384 and fc_out with biases; final LayerNorm; lm_head 4096→50400 with bias.
    let layer = ln(4096) + 4 * w(4096, 4096) + wb(4096, 16384) + wb(16384, 4096);
    let gptj = table(50400, 4096) + 28 * layer + ln(4096) + wb(4096, 50400);
    assert_eq!(expected("gpt-j-6b"), gptj);
}

#[test]
fn opt_and_bloom_by_hand() {
    assert_eq!(expected("opt-125m"), opt(768, 12, 3072));
    assert_eq!(expected("opt-1.3b"), opt(2048, 24, 8192));
    assert_eq!(expected("opt-6.7b"), opt(4096, 32, 16384));
    assert_eq!(expected("opt-13b"), opt(5120, 40, 20480));
    assert_eq!(expected("opt-30b"), opt(7168, 48, 28672));
    assert_eq!(expected("opt-66b"), opt(9216, 64, 36864));
    assert_eq!(expected("bloom-560m"), bloom(1024, 24));
    assert_eq!(expected("bloom-7b1"), bloom(4096, 30));
    assert_eq!(expected("bloom-176b"), bloom(14336, 70));
}

#[test]
fn llama_family_by_hand() {
    assert_eq!(expected("llama-2-7b"), llama_style(32000, 4096, 32, 32, 32, 11008));
    assert_eq!(expected("llama-2-13b"), llama_style(32000, 5120, 40, 40, 40, 13824));
    assert_eq!(expected("llama-2-70b"), llama_style(32000, 8192, 80, 64, 8, 28672));
    assert_eq!(expected("llama-3-8b"), llama_style(128256, 4096, 32, 32, 8, 14336));
    assert_eq!(expected("llama-3-70b"), llama_style(128256, 8192, 80, 64, 8, 28672));
    assert_eq!(expected("llama-3.1-405b"), llama_style(128256, 16384, 126, 128, 8, 53248));
    assert_eq!(expected("mistral-7b"), llama_style(32000, 4096, 32, 32, 8, 14336));
    // Mixtral: the dense SwiGLU becomes 8 experts of the same shape plus a router 4096 → 8
    // without bias, in each of 32 layers.
    let dense_mlp = 2 * w(4096, 14336) + w(14336, 4096);
    let moe = 8 * dense_mlp + w(4096, 8);
    assert_eq!(expected("mixtral-8x7b"), llama_style(32000, 4096, 32, 32, 8, 14336) + 32 * (moe - dense_mlp));
    // Active parameters per token (2 of 8 experts): 12.9B as Mistral AI describes Mixtral.
    let active = expected("mixtral-8x7b") - 32 * 6 * dense_mlp;
    assert_eq!(params::active_count(&presets::model("mixtral-8x7b").unwrap()), active);
    assert_eq!(active, 12_879_925_248);
}

#[test]
fn t5_family_by_hand() {
    assert_eq!(expected("t5-small"), t5(512, 2048, 64, 8, 6, false, false));
    assert_eq!(expected("t5-base"), t5(768, 3072, 64, 12, 12, false, false));
    assert_eq!(expected("t5-large"), t5(1024, 4096, 64, 16, 24, false, false));
    // t5-3b and t5-11b: d_kv 128 with 32 and 128 heads, so the attention is 4096 and 16384 wide.
    assert_eq!(expected("t5-3b"), t5(1024, 16384, 128, 32, 24, false, false));
    assert_eq!(expected("t5-11b"), t5(1024, 65536, 128, 128, 24, false, false));
    // FLAN-T5 (T5 v1.1): GeGLU (wi_0, wi_1, wo) and a separate lm_head d_model → 32128.
    assert_eq!(expected("flan-t5-base"), t5(768, 2048, 64, 12, 12, true, true));
    assert_eq!(expected("flan-t5-large"), t5(1024, 2816, 64, 16, 24, true, true));
    assert_eq!(expected("flan-t5-xl"), t5(2048, 5120, 64, 32, 24, true, true));
    assert_eq!(expected("flan-t5-xxl"), t5(4096, 10240, 64, 64, 24, true, true));
}

#[test]
fn bart_and_whisper_by_hand() {
    // BART: shared 50265·d embedding (tied head); each stack has 1024 + 2 position rows and an
    // embedding LayerNorm; encoder layers: attention (4 biased projections) + LN + fc1/fc2 + LN;
    // decoder layers add cross-attention + LN.
    let bart = |d: u64, layers: u64, ffn: u64| {
        let mlp = wb(d, ffn) + wb(ffn, d);
        let enc = table(1026, d) + ln(d) + layers * (4 * wb(d, d) + ln(d) + mlp + ln(d));
        let dec = table(1026, d) + ln(d) + layers * (8 * wb(d, d) + 2 * ln(d) + mlp + ln(d));
        table(50265, d) + enc + dec
    };
    assert_eq!(expected("bart-base"), bart(768, 6, 3072));
    assert_eq!(expected("bart-large"), bart(1024, 12, 4096));
    // Whisper: attention = q, v, out with bias + k without bias. Encoder: conv1 (mel·3 → d, bias),
    // conv2 (d·3 → d, bias), 1500 position rows (frozen sinusoids, still parameters), layers,
    // final LN. Decoder: vocab·d tokens (tied proj_out), 448 positions, layers with
    // cross-attention, final LN.
    let whisper = |d: u64, layers: u64, ffn: u64, vocab: u64, mel: u64| {
        let attn = 3 * wb(d, d) + w(d, d);
        let mlp = wb(d, ffn) + wb(ffn, d);
        let enc = wb(mel * 3, d) + wb(d * 3, d) + table(1500, d) + layers * (attn + ln(d) + mlp + ln(d)) + ln(d);
        let dec = table(vocab, d) + table(448, d) + layers * (2 * attn + 3 * ln(d) + mlp) + ln(d);
        enc + dec
    };
    assert_eq!(expected("whisper-small"), whisper(768, 12, 3072, 51865, 80));
    assert_eq!(expected("whisper-large-v3"), whisper(1280, 32, 5120, 51866, 128));
}

#[test]
fn megatron_models_follow_the_narayanan_formula() {
    // Korthikanti et al. 2022 Table 3: (h, a, L) = (6144, 64, 48), (12288, 96, 96),
    // (20480, 128, 105), (25600, 160, 128); s = 2048, V = 51200.
    for (name, h, a, layers) in [
        ("megatron-22b", 6144, 64, 48),
        ("megatron-175b", 12288, 96, 96),
        ("megatron-530b", 20480, 128, 105),
        ("megatron-1t", 25600, 160, 128),
    ] {
        assert_eq!(expected(name), narayanan(51200, 2048, h, layers), "{name}");
        assert_eq!(expected(name), gpt2_style(51200, 2048, h, layers), "{name}");
        let m = presets::model(name).unwrap();
        let s = &m.stacks[0];
        assert_eq!((s.layer.hidden, s.layer.attention.heads, s.layers), (h, a, layers), "{name}");
    }
    // Narayanan et al. 2021 Table 1 rounds the last two to 529.6B and 1008.0B.
    assert_eq!(expected("megatron-530b") / 100_000_000, 5296);
    assert_eq!(expected("megatron-1t") / 100_000_000, 10080);
    // GPT-3's vocabulary (50257) differs from Megatron's padded 51200; the layers are the same.
    assert_eq!(expected("megatron-175b") - expected("gpt3-175b"), (51200 - 50257) * 12288);
}

// ---------------------------------------------------------------------------------------------
// Parameter tensors (sizes per-tensor optimizer state such as Adam's `step`).

#[test]
fn gpt2_has_148_parameter_tensors() {
    // measured.json (gpt2-small records): num_parameter_tensors 148 =
    // wte + wpe + 12 × (ln_1 w,b + c_attn w,b + c_proj w,b + ln_2 w,b + c_fc w,b + mlp.c_proj w,b)
    // + ln_f w,b (the tied lm_head adds none).
    assert_eq!(tensors("gpt2"), 2 + 12 * 12 + 2);
    assert_eq!(tensors("gpt2"), 148);
}

#[test]
fn tensor_counts_of_other_layouts() {
    // bert-base-cased BertModel: 3 tables + embedding LN (2) + 12 × 16 + pooler (2) = 199.
    assert_eq!(tensors("bert-base-cased"), 3 + 2 + 12 * 16 + 2);
    // t5-small: shared + per stack (relative bias + final norm) + 6 × 8 encoder + 6 × 13 decoder
    // = 131, as measured.json records for T5ForConditionalGeneration.
    assert_eq!(tensors("t5-small"), 1 + 2 + 6 * 8 + 2 + 6 * 13);
    assert_eq!(tensors("t5-small"), 131);
    // llama-2-7b: embed + 32 × (q, k, v, o, gate, up, down, 2 norms) + norm + lm_head = 291.
    assert_eq!(tensors("llama-2-7b"), 1 + 32 * 9 + 1 + 1);
    // ALBERT shares one layer: 3 tables + LN(2) + projection (2) + 16 + pooler (2) = 25.
    assert_eq!(tensors("albert-base-v2"), 3 + 2 + 2 + 16 + 2);
}

#[test]
fn buffer_bytes_are_the_registered_buffers() {
    let buffers = |n: &str| presets::model(n).unwrap().buffer_bytes;
    // tests/data/validation/REFERENCES.md: bert-base-cased fp32 size 433,249,280 bytes
    // = 4 × 108,310,272 + 8,192 bytes of
    // int64 buffers (position_ids and token_type_ids, [1, 512] each).
    assert_eq!(buffers("bert-base-cased"), 433_249_280 - 4 * 108_310_272);
    assert_eq!(buffers("bert-base-cased"), 2 * 8 * 512);
    // RoBERTa: the same two buffers over 514 positions.
    assert_eq!(buffers("roberta-base"), 2 * 8 * 514);
    // GPT-2 registers none in transformers 5 (measured.json buffer_bytes 0).
    assert_eq!(buffers("gpt2"), 0);
    // GPT-Neo: a bool causal mask [2048, 2048] in each layer.
    assert_eq!(buffers("gpt-neo-1.3b"), 24 * 2048 * 2048);
    // GPT-J: fp32 sinusoids [2048, rotary_dim 64] in each of 28 layers.
    assert_eq!(buffers("gpt-j-6b"), 28 * 2048 * 64 * 4);
    // LLaMA: inv_freq and original_inv_freq, fp32 [head_dim / 2] each.
    assert_eq!(buffers("llama-2-7b"), 2 * 64 * 4);
    // BART: final_logits_bias, fp32 [1, vocab].
    assert_eq!(buffers("bart-base"), 50265 * 4);
    // CLIP: position_ids of both towers, int64 [1, 77] and [1, 50].
    assert_eq!(buffers("clip-vit-base-patch32"), 8 * (77 + 50));
}

#[test]
fn families_beyond_stacks_by_hand() {
    // BigBird-RoBERTa base: a BERT model (50358 tokens, 4096 positions, 2 types, pooler) with the
    // MLM transform (dense + LayerNorm), the tied decoder's bias and the NSP classifier.
    let bigbird = bert_model(50358, 4096, 2, 768, 12, 3072) + wb(768, 768) + ln(768) + 50358 + wb(768, 2);
    assert_eq!(expected("bigbird-roberta-base"), bigbird);
    // An nn.LSTM layer: 4H × (in + H) weights and two 4H biases.
    let lstm = |i: u64, h: u64| 4 * h * (i + h) + 8 * h;
    let s2s =
        table(160_000, 1000) + 4 * lstm(1000, 1000) + table(80_000, 1000) + 4 * lstm(1000, 1000) + wb(1000, 80_000);
    assert_eq!(expected("lstm-seq2seq"), s2s);
    // ResNet-50 by hand: stem conv 7×7 (3 → 64) and BatchNorm; bottlenecks (1×1, 3×3, 1×1 with
    // BatchNorms, a 1×1 downsample in each stage's first block); fc 2048 → 1000 with bias.
    let conv = |i: u64, o: u64, k: u64| i * o * k * k;
    let bn = |c: u64| 2 * c;
    let bottleneck = |cin: u64, w: u64, down: bool| {
        conv(cin, w, 1)
            + bn(w)
            + conv(w, w, 3)
            + bn(w)
            + conv(w, 4 * w, 1)
            + bn(4 * w)
            + if down { conv(cin, 4 * w, 1) + bn(4 * w) } else { 0 }
    };
    let stage = |cin: u64, w: u64, n: u64| bottleneck(cin, w, true) + (n - 1) * bottleneck(4 * w, w, false);
    let resnet50 = conv(3, 64, 7)
        + bn(64)
        + stage(64, 64, 3)
        + stage(256, 128, 4)
        + stage(512, 256, 6)
        + stage(1024, 512, 3)
        + wb(2048, 1000);
    assert_eq!(expected("resnet-50"), resnet50);
}
