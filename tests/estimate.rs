//! The memory model against published closed forms and hand calculations, and the CLI contract.

use memplan::memory::activations::{layer_ledger, layer_saved_bytes, StackShape};
use memplan::memory::states::adam_bytes_per_param;
use memplan::memory::{
    estimate, states::ParamInfo, AttentionKernel, OverheadConfig, Phase, Precision, Recompute, Setup,
};
use memplan::model::presets;
use memplan::model::spec::*;
use std::process::Command;

/// A GPT layer as Korthikanti et al. 2022 (arXiv:2205.05198) §4 count it: LayerNorm, fused
/// GELU, biases, dropout 0.1 on attention probabilities and both residual branches.
fn korthikanti_stack(h: u64, a: u64, layers: u64) -> Stack {
    let mut m = presets::model("gpt2").unwrap();
    let mut s = m.stacks.remove(0);
    s.layers = layers;
    s.layer.hidden = h;
    s.layer.attention.heads = a;
    s.layer.mlp.ffn = 4 * h;
    s.layer.mlp.activation = Activation::Gelu;
    s
}

fn bf16_eager(seq: u64, batch: u64, recompute: Recompute) -> Setup {
    Setup {
        precision: Precision::MegatronBf16,
        attention: AttentionKernel::Eager,
        seq,
        micro_batch: batch,
        recompute,
        ..Setup::default()
    }
}

#[test]
fn gpt_layer_matches_korthikanti_equation_1() {
    // 22B model of Table 3: h 6144, a 64, s 2048, b 4.
    let (h, a, s, b) = (6144u64, 64u64, 2048u64, 4u64);
    let stack = korthikanti_stack(h, a, 48);
    let shape = StackShape::new(b, s, 0);
    // Eq. 1: s·b·h·(34 + 5·a·s/h) bytes per layer = 34·sbh + 5·a·s²·b.
    let eq1 = 34 * s * b * h + 5 * a * s * s * b;
    // The paper leaves out the two LayerNorms' fp32 mean and rstd (2 norms × 2 × 4 bytes × s·b).
    let ln_stats = 2 * 2 * 4 * s * b;
    assert_eq!(layer_saved_bytes(&stack, &shape, &bf16_eager(s, b, Recompute::None)), eq1 + ln_stats);
    // §4.2 selective recomputation removes the 5·a·s²·b attention term.
    assert_eq!(layer_saved_bytes(&stack, &shape, &bf16_eager(s, b, Recompute::Selective)), 34 * s * b * h + ln_stats);
    // Full recomputation keeps the layer input, 2·s·b·h.
    assert_eq!(layer_saved_bytes(&stack, &shape, &bf16_eager(s, b, Recompute::Full)), 2 * s * b * h);
    // All 48 layers without tensor parallelism: 48 · (34·2048·4·6144 + 5·64·2048²·4)
    // = 48 · 7,079,985,152 bytes = 316.5 GiB (Figure 1's 59.25 GiB is the same model at t = 8).
    let all = 48 * (layer_saved_bytes(&stack, &shape, &bf16_eager(s, b, Recompute::None)) - ln_stats);
    assert_eq!(all, 48 * 7_079_985_152);
    assert_eq!(all as f64 / (1u64 << 30) as f64, 316.5);
}

#[test]
fn flash_attention_keeps_no_quadratic_tensor() {
    let stack = korthikanti_stack(4096, 32, 1);
    let setup = |seq| Setup { precision: Precision::Bf16, attention: AttentionKernel::Flash, seq, ..Setup::default() };
    let at = |seq| layer_saved_bytes(&stack, &StackShape::new(1, seq, 0), &setup(seq));
    // Linear in s: doubling the sequence doubles the saved bytes exactly.
    assert_eq!(at(8192), 2 * at(4096));
    // The fp32 log-sum-exp is 4·a·s·b bytes (DESIGN.md §3).
    let lse = layer_ledger(&stack, &StackShape::new(2, 1024, 0), &setup(1024))
        .into_iter()
        .find(|t| t.name.contains("log-sum-exp"))
        .unwrap();
    assert_eq!(lse.bytes, 4 * 32 * 1024 * 2);
}

#[test]
fn model_state_bytes_per_parameter_follow_the_recipes() {
    // ZeRO paper §3.1: mixed-precision Adam is 2 + 2 + 12 = 16 bytes per parameter.
    assert_eq!(adam_bytes_per_param(Precision::MixedBf16), 16);
    assert_eq!(adam_bytes_per_param(Precision::MixedFp16), 16);
    // Megatron-LM README (distributed optimizer table): bf16 params / fp32 grads 18; fp16 20.
    assert_eq!(adam_bytes_per_param(Precision::MegatronBf16), 18);
    assert_eq!(adam_bytes_per_param(Precision::MegatronFp16), 20);
    // fp32 Adam and PyTorch autocast: 4 + 4 + 8.
    assert_eq!(adam_bytes_per_param(Precision::Fp32), 16);
    assert_eq!(adam_bytes_per_param(Precision::AmpBf16), 16);
    // Pure bf16 keeps the moments in bf16: 2 + 2 + 4.
    assert_eq!(adam_bytes_per_param(Precision::Bf16), 8);
}

#[test]
fn zero_paper_baseline_is_120_gb_for_7_5b() {
    // Rajbhandari et al. 2020, Figure 1: Ψ = 7.5B, K = 12 → (2 + 2 + 12)·Ψ = 120 GB (10^9).
    let m = memplan::model::derive::decoder_for_params(7_500_000_000);
    let info = ParamInfo::with_count(&m, 7_500_000_000);
    let e = estimate(&m, &info, &Setup::default(), &OverheadConfig::default());
    assert_eq!(e.states.weights + e.states.gradients + e.states.optimizer, 120_000_000_000);
}

#[test]
fn gpt2_peak_follows_the_measured_ledger_by_hand() {
    // GPT-2 small, fp32, eager, b 2, s 512, dropout 0.1, CUDA rules (bool masks). Written out:
    // E = b·s·h = 786,432; S = b·a·s² = 6,291,456; F = 4E.
    let (e, s, f, bs) = (786_432u64, 6_291_456u64, 4 * 786_432u64, 1024u64);
    let per_layer = 4 * e + 8 * bs // ln_1 input + mean/rstd
        + 4 * e                    // c_attn input
        + 3 * 4 * e                // q, k, v copies for the batched matmuls
        + 4 * s + s + 4 * s        // softmax out, bool mask, dropped-out probabilities
        + 4 * e + e                // c_proj input, residual dropout mask
        + 4 * e + 8 * bs + 4 * e   // ln_2 input + stats, c_fc input
        + 4 * 4 * f                // gelu_new: input, tanh, 0.5·x, 1 + tanh
        + 4 * f + e; // c_proj input, MLP dropout mask
    let vocab = 50_257u64;
    let other = 8 * 512 + e        // position ids (int64), embedding dropout mask
        + 4 * e + 8 * bs + 4 * e    // ln_f input + stats, lm_head input
        + 4 * bs * vocab + 8 * bs   // fp32 log-softmax, shifted targets
        + 2 * 8 * bs; // input ids and labels
    let params = 124_439_808u64;
    // Peak at the loss gradient: fp32 weights and Adam states (grads not yet allocated), every
    // saved tensor, and two b·s·V fp32 gradients.
    let expected = 4 * params + 8 * params + 12 * per_layer + other + 2 * 4 * bs * vocab;
    let m = presets::model("gpt2").unwrap();
    let setup = Setup {
        precision: Precision::Fp32,
        attention: AttentionKernel::Eager,
        micro_batch: 2,
        seq: 512,
        ..Setup::default()
    };
    let est = estimate(&m, &ParamInfo::of(&m), &setup, &OverheadConfig::default());
    assert_eq!(est.peak_allocated, expected);
    // And it is within 0.01% of the CUDA-like measurement (dropout-native): 3,873,455,704 bytes.
    let measured = 3_873_455_704f64;
    assert!((est.peak_allocated as f64 - measured).abs() / measured < 1e-4);
}

#[test]
fn inference_peaks_at_the_logits_for_gpt2() {
    // gpt2 inference, b 1, s 1024, fp32, no KV cache: weights + ids + last hidden + logits.
    let m = presets::model("gpt2").unwrap();
    let setup = Setup {
        phase: Phase::Inference,
        precision: Precision::Fp32,
        micro_batch: 1,
        seq: 1024,
        kv_cache: false,
        ..Setup::default()
    };
    let est = estimate(&m, &ParamInfo::of(&m), &setup, &OverheadConfig::default());
    let expected = 4 * 124_439_808 + 8 * 1024 + 4 * 1024 * 768 + 4 * 1024 * 50_257;
    assert_eq!(est.peak_allocated, expected);
}

#[test]
fn kv_cache_is_two_layers_batch_tokens_kv_heads_head_dim() {
    // Llama-2-7B-shaped: 32 layers, 32 KV heads of 128, bf16, batch 4, 4096 tokens:
    // 2 · 32 · 4 · 4096 · 32 · 128 · 2 bytes = 8 GiB.
    let m = memplan::model::derive::decoder_for_params(6_738_415_616);
    let setup = Setup {
        phase: Phase::Inference,
        precision: Precision::Bf16,
        micro_batch: 4,
        seq: 4096,
        kv_cache: true,
        ..Setup::default()
    };
    let est = estimate(&m, &ParamInfo::of(&m), &setup, &OverheadConfig::default());
    assert_eq!(est.kv_cache, 8 << 30);
}

fn memplan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn estimate_params_1b_answers_with_stated_defaults() {
    let (code, stdout, _) = memplan(&["estimate", "--params", "1b"]);
    assert_eq!(code, 0);
    for stated in ["shape derived", "mixed-bf16", "micro-batch 1", "seq 2048", "GiB", "peak allocated", "CUDA context"]
    {
        assert!(stdout.contains(stated), "missing `{stated}` in:\n{stdout}");
    }
}

#[test]
fn json_output_has_the_contract_fields() {
    let (code, stdout, _) = memplan(&["estimate", "--model", "gpt2", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["model"]["name"], "gpt2");
    assert_eq!(v["model"]["architecture"], "decoder");
    assert_eq!(v["model"]["parameters"], 124_439_808u64);
    for field in [
        "weights_bytes",
        "gradients_bytes",
        "optimizer_states_bytes",
        "activations_bytes",
        "other_activations_bytes",
        "kv_cache_bytes",
        "peak_allocated_bytes",
        "total_bytes",
    ] {
        assert!(v["per_gpu"][field].is_u64(), "per_gpu.{field} missing or not an integer");
    }
    let p = &v["per_gpu"];
    assert!(p["total_bytes"].as_u64() > p["peak_allocated_bytes"].as_u64());
}

#[test]
fn csv_and_markdown_render() {
    let (code, csv, _) = memplan(&["estimate", "--model", "gpt2", "--format", "csv"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    let (code, md, _) = memplan(&["estimate", "--model", "gpt2", "--format", "markdown"]);
    assert_eq!(code, 0);
    assert!(md.contains("| term |") && md.contains("**total**"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["estimate", "--params", "1x"], "`1x`"),
        (&["estimate", "--params", "-5"], "-5"),
        (&["estimate", "--params", "0"], "`0`"),
        (&["estimate", "--batch", "0"], "--batch"),
        (&["estimate", "--seq", "0"], "--seq"),
        (&["estimate", "--model", "gtp2"], "did you mean gpt2"),
        (&["estimate", "--model", "gpt2", "--heads", "7"], "7 heads do not divide hidden size 768"),
        (&["estimate", "--model-file", "/nonexistent/model.toml"], "/nonexistent/model.toml"),
        (&["estimate", "--gpu", "h1000"], "unknown gpu preset"),
        (&["estimate", "--precision", "fp64"], "fp64"),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = memplan(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: `{needle}` not in {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    }
}

#[test]
fn absurd_sizes_print_a_number() {
    let (code, stdout, stderr) = memplan(&["estimate", "--params", "1e15", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // 10^15 parameters × 16 bytes of model states alone.
    assert!(v["per_gpu"]["total_bytes"].as_u64().unwrap() > 16_000_000_000_000_000);
}

#[test]
fn a_preset_toml_with_a_wrong_type_names_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("memplan-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    let good = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/presets/models/gpt2.toml")).unwrap();
    std::fs::write(&path, good.replace("layers = 12", "layers = \"twelve\"")).unwrap();
    let (code, _, stderr) = memplan(&["estimate", "--model-file", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    let line = good.lines().position(|l| l.starts_with("layers = 12")).unwrap() + 1;
    assert!(stderr.contains(&format!("bad.toml:{line}")), "{stderr}");
    assert!(stderr.contains("layers"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gpu_that_does_not_fit_exits_1() {
    // Llama-2-7B-sized full training with Adam needs ~16 bytes × 6.7B ≫ 80 GiB.
    let (code, stdout, _) = memplan(&["estimate", "--params", "7b", "--gpu", "h100-sxm"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("no"));
}
