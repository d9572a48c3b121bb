//! Fine-tuning (LoRA, QLoRA) and serving (quantized weights, KV cache dtype, paged blocks,
//! capacity), against the papers and hand calculations.

use memplan::dtype::DType;
use memplan::memory::finetune::{lora_params, LoraConfig, LoraTargets, WeightFormat, WeightQuant};
use memplan::model::presets;
use serde_json::Value;
use std::process::Command;

fn memplan(args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).args(["--format", "json"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn lora(rank: u64, targets: &str) -> LoraConfig {
    LoraConfig {
        rank,
        alpha: 16.0,
        targets: LoraTargets::parse(targets).unwrap(),
        dropout: 0.0,
        adapter_dtype: DType::Fp32,
    }
}

#[test]
fn trainable_parameters_follow_the_rank_formula() {
    // r·(d_in + d_out) per adapted matrix (Hu et al. 2021 §4.1).
    // Llama-2-7B, r 8, q and v: 32 layers × 2 × 8·(4096 + 4096) = 4,194,304 — the count PEFT's
    // print_trainable_parameters reports for this configuration.
    let m = presets::model("llama-2-7b").unwrap();
    assert_eq!(lora_params(&m, &lora(8, "q,v")), 32 * 2 * 8 * (4096 + 4096));
    assert_eq!(lora_params(&m, &lora(8, "q,v")), 4_194_304);
    // All linear layers, r 16: attention 4 × 16·8192 + MLP 3 × 16·(4096 + 11008) per layer.
    assert_eq!(lora_params(&m, &lora(16, "all")), 32 * (4 * 16 * 8192 + 3 * 16 * (4096 + 11008)));
    // GPT-2's fused c_attn is one 768 × 2304 matrix: 12 × 8·(768 + 2304) = 294,912 (PEFT on
    // target_modules=["c_attn"]).
    let g = presets::model("gpt2").unwrap();
    assert_eq!(lora_params(&g, &lora(8, "q,k,v")), 294_912);
    // Llama-3-8B's GQA k/v projections are 4096 × 1024: r 8 on q,k,v,o per layer
    // 8·(4096+4096) + 2·8·(4096+1024) + 8·(4096+4096) = 212,992; 32 layers.
    let l3 = presets::model("llama-3-8b").unwrap();
    assert_eq!(lora_params(&l3, &lora(8, "q,k,v,o")), 32 * 212_992);
    // Through the CLI, the report states it.
    let (code, v, err) = memplan(&[
        "estimate",
        "--model",
        "llama-2-7b",
        "--finetune",
        "lora",
        "--lora-targets",
        "q,v",
        "--precision",
        "bf16",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["model"]["trainable_parameters"], 4_194_304);
}

#[test]
fn nf4_costs_half_a_bit_per_parameter_or_0_127_with_double_quantization() {
    // QLoRA §3: block 64 with an fp32 absmax: 32/64 = 0.5 bits per parameter; double
    // quantization: 8/64 + 32/(64·256) = 0.127 bits.
    let n = 64 * 256 * 1000; // whole blocks and whole second-level groups
    let single = WeightQuant::default_for(WeightFormat::Nf4);
    assert_eq!(single.bytes(n, 1) * 8, 4 * n + n / 2);
    let double = WeightQuant { double_quant: true, ..single };
    let extra_bits = double.bytes(n, 1) * 8 - 4 * n;
    assert!((extra_bits as f64 / n as f64 - 0.127).abs() < 0.0005, "{}", extra_bits as f64 / n as f64);
    // GPTQ/AWQ int4, group 128, fp16 scale and 4-bit zero: 4 + (16 + 4)/128 bits.
    let int4 = WeightQuant::default_for(WeightFormat::Int4);
    assert_eq!(int4.bytes(128 * 1000, 1), (128 * 1000 * 4 + 1000 * 20) / 8);
}

#[test]
fn qlora_model_states_by_hand() {
    // Llama-2-7B QLoRA, r 8 on q,k,v,o, bf16: NF4 layer matrices (32 × (4·4096² + 3·4096·11008)
    // = 6,476,005,376 parameters at 4.5 bits), everything else bf16 (6,738,415,616 − matrices),
    // fp32 adapters (32 × 4 × 8·8192 = 8,388,608 parameters) with fp32 gradients and Adam moments.
    let matrices: u64 = 32 * (4 * 4096 * 4096 + 3 * 4096 * 11008);
    assert_eq!(matrices, 6_476_005_376);
    let rest = 6_738_415_616 - matrices;
    let adapters = 32 * 4 * 8 * 8192u64;
    let nf4 = matrices / 2 + matrices / 64 * 4; // 4 bits + an fp32 absmax per 64
    let (code, v, err) = memplan(&["estimate", "--model", "llama-2-7b", "--finetune", "qlora", "--precision", "bf16"]);
    assert_eq!(code, 0, "{err}");
    let p = &v["per_gpu"];
    assert_eq!(p["weights_bytes"].as_u64().unwrap(), nf4 + 2 * rest + 4 * adapters);
    assert_eq!(p["gradients_bytes"].as_u64().unwrap(), 4 * adapters);
    assert_eq!(p["optimizer_states_bytes"].as_u64().unwrap(), 8 * adapters);
    assert_eq!(v["model"]["trainable_parameters"].as_u64().unwrap(), adapters);
    // Paged optimizer: the states leave the GPU.
    let (_, v, _) = memplan(&[
        "estimate",
        "--model",
        "llama-2-7b",
        "--finetune",
        "qlora",
        "--precision",
        "bf16",
        "--paged-optimizer",
    ]);
    assert_eq!(v["per_gpu"]["optimizer_states_bytes"], 0);
    assert_eq!(v["per_gpu"]["host_offload_bytes"].as_u64().unwrap(), 8 * adapters);
}

#[test]
fn frozen_projections_keep_no_inputs() {
    // GPT-2, fp32, eager, b1 s128, no dropout. LoRA on c_attn (fp32 adapters = activation dtype,
    // so the adapter saves the same input as the base would) drops, per layer, the inputs kept
    // only for frozen weights — the out-projection input (E), the c_fc input (E), the c_proj
    // input (4E) — and the LM head input once; it adds the rank-8 A output (128 × 8) per layer.
    let base = [
        "estimate",
        "--model",
        "gpt2",
        "--precision",
        "fp32",
        "--attention",
        "eager",
        "--batch",
        "1",
        "--seq",
        "128",
        "--no-dropout",
    ];
    let (_, full, _) = memplan(&base);
    let mut lora_args = base.to_vec();
    lora_args.extend(["--finetune", "lora", "--lora-targets", "q,k,v"]);
    let (code, lora, err) = memplan(&lora_args);
    assert_eq!(code, 0, "{err}");
    let e = 128 * 768 * 4u64;
    let per_layer_dropped = e + e + 4 * e;
    let per_layer_added = 128 * 8 * 4u64;
    let layers =
        full["per_gpu"]["activations_bytes"].as_u64().unwrap() - lora["per_gpu"]["activations_bytes"].as_u64().unwrap();
    assert_eq!(layers, 12 * (per_layer_dropped - per_layer_added));
    let other = full["per_gpu"]["other_activations_bytes"].as_u64().unwrap()
        - lora["per_gpu"]["other_activations_bytes"].as_u64().unwrap();
    assert_eq!(other, e, "the LM head input");
}

#[test]
fn serving_kv_cache_dtype_paging_and_capacity() {
    // Llama-3-70B at tp 4: 80 layers, 8 KV heads of 128 → 2 per rank; bf16 KV:
    // 2 (K, V) · 80 · 2 · 128 · 2 bytes = 81,920 bytes per token per rank.
    let args = [
        "estimate",
        "--phase",
        "inference",
        "--model",
        "llama-3-70b",
        "--gpu",
        "h100-sxm",
        "--tp",
        "4",
        "--seq",
        "1024",
        "--context",
        "8192",
    ];
    let (code, v, err) = memplan(&args);
    assert_eq!(code, 0, "{err}");
    let sv = &v["serving"];
    assert_eq!(sv["kv_bytes_per_sequence"].as_u64().unwrap(), 81_920 * 8192);
    let n = v["fits"][0]["max_concurrent_sequences"].as_u64().unwrap();
    let (base, step) = (sv["base_bytes"].as_u64().unwrap(), sv["bytes_per_sequence"].as_u64().unwrap());
    let memory = v["fits"][0]["usable_bytes"].as_u64().unwrap();
    assert_eq!(n, (memory - base) / step);
    assert!(n > 0);
    // An upper bound by hand: the memory left after the weights, over the KV cache per sequence;
    // the working set, CUDA context and fragmentation margin take the rest.
    let weights = v["per_gpu"]["weights_bytes"].as_u64().unwrap();
    assert!(n <= (memory - weights) / (81_920 * 8192));
    assert!(n >= (memory - weights) / (81_920 * 8192) * 8 / 10, "{n}");
    // An fp8 KV cache halves the per-sequence cost; paging rounds 1000 tokens up to 1008.
    let mut fp8 = args.to_vec();
    fp8.extend(["--kv-dtype", "fp8"]);
    let (_, v8, _) = memplan(&fp8);
    assert_eq!(v8["serving"]["kv_bytes_per_sequence"].as_u64().unwrap(), 81_920 * 8192 / 2);
    let paged = [
        "estimate",
        "--phase",
        "inference",
        "--model",
        "llama-3-70b",
        "--tp",
        "4",
        "--seq",
        "500",
        "--context",
        "1000",
        "--block-size",
        "16",
    ];
    let (_, vp, _) = memplan(&paged);
    assert_eq!(vp["serving"]["context_tokens"], 1008);
    assert_eq!(vp["per_gpu"]["kv_cache_bytes"].as_u64().unwrap(), 81_920 * 1008);
}

#[test]
fn quantized_serving_weights_by_hand() {
    // Llama-2-7B with int4 (group 128, fp16 scale + 4-bit zero) layer matrices; embeddings,
    // norms and the LM head stay fp16.
    let matrices: u64 = 6_476_005_376;
    let rest = 6_738_415_616 - matrices;
    let int4 = matrices / 2 + matrices / 128 * 20 / 8;
    let (code, v, err) = memplan(&[
        "estimate",
        "--phase",
        "inference",
        "--model",
        "llama-2-7b",
        "--precision",
        "fp16",
        "--weights",
        "int4",
        "--no-kv-cache",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["per_gpu"]["weights_bytes"].as_u64().unwrap(), int4 + 2 * rest);
}

#[test]
fn bad_combinations_are_rejected() {
    let cases: &[(&[&str], &str)] = &[
        (&["estimate", "--model", "llama-2-7b", "--finetune", "qlora", "--precision", "fp32"], "fp32 base weights"),
        (&["estimate", "--model", "gpt2", "--finetune", "lora", "--lora-targets", "gate"], "no `gate` projection"),
        (&["estimate", "--model", "gpt2", "--finetune", "lora", "--lora-rank", "1000"], "rank 1000 is larger"),
        (&["estimate", "--model", "gpt2", "--finetune", "lora", "--lora-targets", "qkv_proj"], "unknown LoRA target"),
        (&["estimate", "--model", "gpt2", "--weights", "int4"], "applies to --phase inference"),
        (
            &["estimate", "--model", "gpt2", "--phase", "inference", "--context", "10", "--seq", "100"],
            "at least the prompt length",
        ),
        (&["estimate", "--model", "gpt2", "--phase", "inference", "--finetune", "lora"], "applies to training"),
    ];
    for (args, needle) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: `{needle}` not in {stderr}");
    }
}

#[test]
fn mla_caches_the_latent_and_the_rotary_key() {
    // DeepSeek-V2 §2.1.2: MLA caches (d_c + d_R^h) = 512 + 64 elements per token per layer,
    // whatever the heads or tensor parallelism. DeepSeek-V2-Lite: 27 layers, bf16, 32768 tokens.
    let (code, v, err) = memplan(&[
        "estimate",
        "--model",
        "deepseek-v2-lite",
        "--phase",
        "inference",
        "--precision",
        "bf16",
        "--seq",
        "1024",
        "--context",
        "32768",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["serving"]["kv_bytes_per_sequence"].as_u64().unwrap(), 27 * (512 + 64) * 2 * 32768);
    let (_, tp2, _) = memplan(&[
        "estimate",
        "--model",
        "deepseek-v2-lite",
        "--phase",
        "inference",
        "--precision",
        "bf16",
        "--seq",
        "1024",
        "--context",
        "32768",
        "--tp",
        "2",
    ]);
    assert_eq!(tp2["serving"]["kv_bytes_per_sequence"], v["serving"]["kv_bytes_per_sequence"]);
    // The same model with ordinary multi-head attention would cache 2 · 16 heads · 128 per token.
    assert!(v["serving"]["kv_bytes_per_sequence"].as_u64().unwrap() * 3 < 27 * 2 * 16 * 128 * 2 * 32768);
}

#[test]
fn deepseek_parameter_counts_by_hand() {
    // DeepSeek-V2-Lite (config.json): embeddings and untied head 2 × 102400·2048; per layer MLA
    // q 2048·16·192 + kv_a 2048·576 + kv_a norm 512 + kv_b 512·16·256 + o 16·128·2048 and two
    // RMSNorms; layer 0 a dense SwiGLU of 10944; 26 MoE layers of 64 experts × 3·2048·1408, shared
    // experts 3·2048·2816 and a 64 × 2048 router; the final norm. Published: 15.7B.
    let attn = 2048 * 16 * 192 + 2048 * 576 + 512 + 512 * 16 * 256 + 16 * 128 * 2048;
    let moe = 64 * 3 * 2048 * 1408 + 3 * 2048 * 2816 + 64 * 2048;
    let v2_lite: u64 = 2 * 102400 * 2048 + 27 * (attn + 2 * 2048) + 3 * 2048 * 10944 + 26 * moe + 2048;
    assert_eq!(memplan::model::params::count(&presets::model("deepseek-v2-lite").unwrap()), v2_lite);
    assert_eq!(v2_lite, 15_706_484_224);
    // DeepSeek-V3: q_a 7168·1536 + its norm + q_b 1536·128·192, kv_a 7168·576 + norm 512,
    // kv_b 512·128·256, o 128·128·7168; 3 dense layers of 18432; 58 MoE layers of 256 × 3·7168·2048,
    // one shared expert 3·7168·2048 and a 256 × 7168 router. Published: 671B.
    let attn = 7168 * 1536 + 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 + 512 * 128 * 256 + 128 * 128 * 7168;
    let moe = 256 * 3 * 7168 * 2048 + 3 * 7168 * 2048 + 256 * 7168;
    let v3: u64 = 2 * 129280 * 7168 + 61 * (attn + 2 * 7168) + 3 * 3 * 7168 * 18432 + 58 * moe + 7168;
    assert_eq!(memplan::model::params::count(&presets::model("deepseek-v3").unwrap()), v3);
    assert_eq!(v3 / 1_000_000_000, 671);
}

#[test]
fn moe_inference_holds_every_expert() {
    // Mixtral-8x7B serves with all 8 experts resident: weights are the full 46.7B parameters.
    let (code, v, err) = memplan(&[
        "estimate",
        "--model",
        "mixtral-8x7b",
        "--phase",
        "inference",
        "--precision",
        "bf16",
        "--no-kv-cache",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["per_gpu"]["weights_bytes"].as_u64().unwrap(), 2 * v["model"]["parameters"].as_u64().unwrap());
    assert!(v["model"]["active_parameters"].as_u64().unwrap() < v["model"]["parameters"].as_u64().unwrap() / 3);
}

#[test]
fn deepseek_configs_import_like_the_presets() {
    // DeepSeek-V2-Lite's config.json (huggingface.co/deepseek-ai/DeepSeek-V2-Lite): MLA with
    // kv_lora_rank 512, one dense layer, 26 MoE layers with 64 routed and 2 shared experts.
    let text = r#"{"architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_size": 2048,
        "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27, "num_attention_heads": 16,
        "num_key_value_heads": 16, "n_shared_experts": 2, "n_routed_experts": 64, "num_experts_per_tok": 6,
        "first_k_dense_replace": 1, "kv_lora_rank": 512, "q_lora_rank": null, "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128, "v_head_dim": 128, "vocab_size": 102400, "tie_word_embeddings": false, "hidden_act": "silu"}"#;
    let imported = memplan::model::hf::from_hf_json("deepseek-v2-lite", text).unwrap();
    let preset = presets::model("deepseek-v2-lite").unwrap();
    assert_eq!(memplan::model::params::count(&imported), 15_706_484_224);
    assert_eq!(imported.stacks, preset.stacks);
}
