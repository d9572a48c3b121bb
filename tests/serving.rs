//! Serving frameworks: vLLM's start-up budget against the terms its own logs print, its defaults
//! by release as read in its source, and transformers `generate`'s prefill peak against live
//! tensor bytes measured on the CPU (`scripts/measure_serving_generate.py`,
//! `tests/data/serving/generate_measured.json`).

use memplan::dtype::DType;
use memplan::memory::serving::*;
use memplan::model::{hf, presets, ModelSpec};
use std::process::Command;

const GIB: f64 = (1u64 << 30) as f64;

fn memplan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b
}

fn h100(total_gib: f64) -> VllmDevice {
    VllmDevice {
        name: "h100-sxm".into(),
        total_memory: (total_gib * GIB) as u64,
        cuda_context: 512 << 20,
        nvlink: true,
    }
}

fn release(v: &str) -> Release {
    Release::parse(v).unwrap()
}

fn weights_bf16(m: &ModelSpec) -> u64 {
    2 * memplan::model::params::count(m)
}

fn line(b: &VllmBudget, term: &str) -> u64 {
    b.lines.iter().find(|l| l.term == term).map_or(0, |l| l.bytes)
}

#[test]
fn vllm_llama3_8b_h100_matches_its_memory_profiling_log() {
    // vLLM PR #10511 (0.6.5 development, v0 engine), `vllm serve meta-llama/Meta-Llama-3-8B` on
    // one H100, defaults (max_model_len 8192, gpu_memory_utilization 0.9). Its log:
    //   total_gpu_memory 79.22GiB; the current vLLM instance can use 71.29GiB;
    //   model weights take 14.96GiB; PyTorch activation peak memory 1.26GiB;
    //   available_kv_cache_memory 53.29GiB
    // (that build also counted 1.79 GiB of non-torch memory, which the released memory_profiling
    // no longer does: PR #12126's H100 log shows 0.16 GiB).
    let m = presets::model("llama-3-8b").unwrap();
    let settings = VllmSettings { max_model_len: 8192, ..VllmSettings::default() };
    let b = vllm_budget(&m, weights_bf16(&m), 1, DType::Bf16, DType::Bf16, &h100(79.22), &settings, release("0.6.5"))
        .unwrap();
    assert_eq!(b.engine, "v0");
    assert_eq!((b.max_num_batched_tokens, b.max_num_seqs), (8192, 256), "v0: max(max_model_len, 2048), 256");
    assert!(rel(b.usable as f64 / GIB, 71.29) < 0.001);
    assert!(rel(line(&b, "weights") as f64 / GIB, 14.96) < 0.002);
    assert!(rel(line(&b, "activation peak") as f64 / GIB, 1.26) < 0.05, "{}", line(&b, "activation peak") as f64 / GIB);
    assert!(rel(b.kv_budget as f64 / GIB, 53.29) < 0.05, "{}", b.kv_budget as f64 / GIB);
    // Block: 16 tokens × 32 layers × K and V × 8 KV heads × 128 × 2 bytes = 2 MiB.
    assert_eq!(b.block_bytes, 16 * 32 * 2 * 8 * 128 * 2);
    assert_eq!(b.num_gpu_blocks, (b.kv_budget as u64) / b.block_bytes);
    assert_eq!(b.kv_tokens, b.num_gpu_blocks * 16);
}

#[test]
fn vllm_sampler_peak_matches_a_qwen2_5_log() {
    // vLLM issue #13882 (0.7.x, v0 engine, Feb 2025): Qwen2.5-7B, max_model_len 4096, on an
    // 8 GiB RTX 4060: "PyTorch activation peak memory takes 1.42GiB". The profile run is 4096
    // tokens over 256 prompts; the sampler's [256 × 152064] logits dominate the forward.
    let m = hf::from_hf_config(std::path::Path::new("tests/data/serving/qwen2.5-7b-instruct.json")).unwrap();
    let device = VllmDevice { name: "rtx-4060".into(), total_memory: 8 << 30, cuda_context: 0, nvlink: false };
    let settings = VllmSettings { max_model_len: 4096, gpu_memory_utilization: Some(0.7), ..VllmSettings::default() };
    let b = vllm_budget(&m, 5_587_000_000, 1, DType::Bf16, DType::Bf16, &device, &settings, release("0.7.3")).unwrap();
    let act = line(&b, "activation peak") as f64 / GIB;
    assert!(rel(act, 1.42) < 0.05, "{act}");
    // The log: "the rest of the memory reserved for KV Cache is -1.05GiB" → 0 blocks.
    assert_eq!(b.num_gpu_blocks, 0);
    assert!(b.kv_budget < 0);
}

#[test]
fn vllm_defaults_follow_the_release_and_the_gpu() {
    let m = presets::model("llama-3-8b").unwrap();
    let w = weights_bf16(&m);
    let a100 = VllmDevice { name: "a100-80gb".into(), total_memory: (79.15 * GIB) as u64, ..h100(79.15) };
    let run = |d: &VllmDevice, v: &str, s: VllmSettings| {
        vllm_budget(&m, w, 1, DType::Bf16, DType::Bf16, d, &s, release(v)).unwrap()
    };
    let s = VllmSettings { max_model_len: 8192, ..VllmSettings::default() };
    // v1 _set_default_args_v1 (0.8.5): >= 70 GiB → 8192 tokens (serve), 1024 seqs, A100 included.
    let b = run(&a100, "0.8.5", s.clone());
    assert_eq!((b.max_num_batched_tokens, b.max_num_seqs, b.engine), (8192, 1024, "v1"));
    // From 0.9.2 A100s keep the small-GPU defaults: 2048 and 256.
    let b = run(&a100, "0.11.0", s.clone());
    assert_eq!((b.max_num_batched_tokens, b.max_num_seqs), (2048, 256));
    // The offline LLM class: 16384 on an H100.
    let b = run(&h100(79.22), "0.11.0", VllmSettings { entrypoint: Entrypoint::Llm, ..s.clone() });
    assert_eq!(b.max_num_batched_tokens, 16384);
    // v0 past 32K: chunked prefill with 512 tokens.
    let b = run(&h100(79.22), "0.6.3", VllmSettings { max_model_len: 131072, ..s.clone() });
    assert_eq!(b.max_num_batched_tokens, 512);
    // User settings win.
    let b =
        run(&h100(79.22), "0.11.0", VllmSettings { max_num_seqs: Some(64), max_num_batched_tokens: Some(4096), ..s });
    assert_eq!((b.max_num_batched_tokens, b.max_num_seqs), (4096, 64));
}

#[test]
fn vllm_terms_appear_only_in_the_releases_that_subtract_them() {
    let m = presets::model("llama-3-8b").unwrap();
    let w = weights_bf16(&m);
    let s = VllmSettings { max_model_len: 8192, ..VllmSettings::default() };
    let run = |v: &str, s: &VllmSettings| {
        vllm_budget(&m, w, 1, DType::Bf16, DType::Bf16, &h100(79.22), s, release(v)).unwrap()
    };
    // v1 0.8.0–0.9.1 counted every byte torch had not allocated, the CUDA context included.
    assert_eq!(line(&run("0.8.5", &s), "CUDA context"), 512 << 20);
    assert_eq!(line(&run("0.9.2", &s), "CUDA context"), 0);
    assert_eq!(line(&run("0.6.3", &s), "CUDA context"), 0);
    // CUDA graphs are budgeted from 0.20 (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS default 1),
    // never under --enforce-eager.
    assert_eq!(line(&run("0.18.0", &s), "CUDA graphs"), 0);
    let graphs = line(&run("0.20.0", &s), "CUDA graphs");
    // Largest capture size min(2·1024, 512, 8192) = 512 tokens; 51 sizes; 2 modes × 50 × 1 MiB.
    assert_eq!(graphs, forward_peak_bytes(&m, 512, 1, DType::Bf16) + 2 * 50 * (1 << 20));
    let eager = VllmSettings { enforce_eager: true, ..s.clone() };
    assert_eq!(line(&run("0.20.0", &eager), "CUDA graphs"), 0);
    // No fragmentation margin on the blocks: the KV budget is exactly usable − the terms.
    let b = run("0.11.0", &s);
    let terms: u64 = b.lines.iter().map(|l| l.bytes).sum();
    assert_eq!(b.kv_budget, b.usable as i128 - terms as i128);
}

#[test]
fn vllm_tensor_parallel_splits_kv_heads_and_adds_nccl() {
    // Llama-3-70B (80 layers, 8 KV heads of 128) at tp 4: 2 KV heads per rank; a block is
    // 16 × 80 × 2 × 2 × 128 × 2 = 1,310,720 bytes. At tp 16 the 8 heads are replicated: 1 head.
    let m = presets::model("llama-3-70b").unwrap();
    assert_eq!(16 * kv_bytes_per_token(&m, 4, DType::Bf16), 1_310_720);
    assert_eq!(kv_bytes_per_token(&m, 16, DType::Bf16), 80 * 2 * 128 * 2);
    // fp8 KV halves the block.
    assert_eq!(kv_bytes_per_token(&m, 4, DType::Fp8) * 2, kv_bytes_per_token(&m, 4, DType::Bf16));
    // DeepSeek-V2-Lite's MLA: one latent of 512 + a rotary key of 64 per token per layer, 27 layers.
    let ds = presets::model("deepseek-v2-lite").unwrap();
    assert_eq!(kv_bytes_per_token(&ds, 1, DType::Bf16), 27 * (512 + 64) * 2);
    let s = VllmSettings { max_model_len: 8192, ..VllmSettings::default() };
    let w = weights_bf16(&m) / 4;
    let one = vllm_budget(&m, w, 4, DType::Bf16, DType::Bf16, &h100(79.22), &s, release("0.11.0")).unwrap();
    let pcie = VllmDevice { nvlink: false, ..h100(79.22) };
    let other = vllm_budget(&m, w, 4, DType::Bf16, DType::Bf16, &pcie, &s, release("0.11.0")).unwrap();
    // Two NCCL communicators of 288 MiB on NVLink; none counted on PCIe (host staging).
    assert_eq!(line(&one, "non-torch memory") - line(&other, "non-torch memory"), (2 * 288) << 20);
}

#[test]
fn vllm_concurrency_is_blocks_over_blocks_per_request() {
    let m = presets::model("mistral-7b").unwrap();
    let s = VllmSettings { max_model_len: 32768, ..VllmSettings::default() };
    let b =
        vllm_budget(&m, weights_bf16(&m), 1, DType::Bf16, DType::Bf16, &h100(79.22), &s, release("0.11.0")).unwrap();
    // kv_cache_utils.get_max_concurrency_for_kv_cache_config: blocks / cdiv(32768, 16).
    assert_eq!(b.max_concurrency, b.num_gpu_blocks as f64 / 2048.0);
}

/// Measured `generate` records: (id, transformers version, batch, prompt, prefill peak bytes).
fn generate_records() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string("tests/data/serving/generate_measured.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn estimate_json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = memplan(args);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn generate_prefill_peaks_match_the_cpu_measurements_by_version() {
    let records = generate_records();
    assert_eq!(records.len(), 12, "two models × two shapes × transformers 4.44.2, 4.45.2, 5.24.0");
    for r in &records {
        let family = r["family"].as_str().unwrap();
        let config = format!("tests/data/serving/tiny-{family}.json");
        let (batch, prompt) = (r["batch"].to_string(), r["prompt"].to_string());
        let version = r["transformers"].as_str().unwrap();
        let v = estimate_json(&[
            "estimate",
            "--hf-config",
            &config,
            "--phase",
            "inference",
            "--framework",
            "hf-generate",
            "--framework-version",
            version,
            "--batch",
            &batch,
            "--seq",
            &prompt,
            "--precision",
            "bf16",
            "--runtime",
            "cpu",
            "--format",
            "json",
        ]);
        let est = v["per_gpu"]["peak_allocated_bytes"].as_u64().unwrap() as f64;
        let measured = r["prefill_peak_bytes"].as_u64().unwrap() as f64;
        assert_eq!(v["model"]["parameters"].as_u64().unwrap() * 2, r["parameter_bytes"].as_u64().unwrap());
        assert!(rel(est, measured) < 0.03, "{} {version}: estimate {est} vs measured {measured}", r["id"]);
    }
}

#[test]
fn generate_logits_by_version_by_hand() {
    // tiny LLaMA, batch 4 × 512, vocab 32000, bf16. transformers 4.44.2 makes the logits of all
    // 2048 positions and upcasts them: 2 + 4 bytes each; 4.45 keeps the last position.
    let args = |v: &str| {
        estimate_json(&[
            "estimate",
            "--hf-config",
            "tests/data/serving/tiny-llama.json",
            "--phase",
            "inference",
            "--framework",
            "hf-generate",
            "--framework-version",
            v,
            "--batch",
            "4",
            "--seq",
            "512",
            "--precision",
            "bf16",
            "--format",
            "json",
        ])
    };
    let old = args("4.44.2");
    assert_eq!(old["peak"]["point"], "forward-logits");
    let alive = &old["peak"]["alive"];
    let other = alive["other_activations"].as_u64().unwrap();
    // hidden states [4, 512, 256] bf16 + logits 4·512·32000 · (2 + 4) + token ids 4·512·8 +
    // the rotary buffers inv_freq and original_inv_freq (fp32 [head_dim / 2 = 16] each).
    assert_eq!(other, 4 * 512 * 256 * 2 + 4 * 512 * 32000 * 6 + 4 * 512 * 8 + 2 * 16 * 4);
    let new = args("4.45");
    assert_eq!(new["peak"]["point"], "forward-layer");
}

#[test]
fn serving_flags_are_checked() {
    let base = ["estimate", "--model", "llama-3-8b"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = base.to_vec();
        a.extend_from_slice(extra);
        memplan(&a)
    };
    let (code, _, err) = run(&["--phase", "inference", "--framework", "vllm", "--gpu-memory-utilization", "1.5"]);
    assert_eq!(code, 2);
    assert!(err.contains("1.5") && err.contains("gpu-memory-utilization"), "{err}");
    let (code, _, err) = run(&["--phase", "inference", "--max-num-seqs", "64"]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-num-seqs") && err.contains("vllm"), "{err}");
    let (code, _, err) = run(&["--framework", "vllm"]);
    assert_eq!(code, 2);
    assert!(err.contains("inference"), "{err}");
    let (code, _, err) = run(&["--phase", "inference", "--framework", "vllm", "--framework-version", "x.y"]);
    assert_eq!(code, 2);
    assert!(err.contains("x.y"), "{err}");
    let (code, _, err) = run(&["--phase", "inference", "--framework", "vllm", "--framework-version", "0.1"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["--phase", "inference", "--framework", "vllm", "--max-num-seqs", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-num-seqs"), "{err}");
}

#[test]
fn the_estimate_prints_the_block_count_and_the_release() {
    let (code, out, err) = memplan(&[
        "estimate",
        "--model",
        "llama-3-8b",
        "--phase",
        "inference",
        "--framework",
        "vllm",
        "--framework-version",
        "0.6.3",
        "--context",
        "8192",
        "--seq",
        "8192",
        "--gpu",
        "h100-sxm",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("vllm 0.6.3 (v0 engine) on h100-sxm"), "{out}");
    assert!(out.contains("# GPU blocks: "), "{out}");
    let (_, json, _) = memplan(&[
        "estimate",
        "--model",
        "llama-3-8b",
        "--phase",
        "inference",
        "--framework",
        "vllm",
        "--context",
        "8192",
        "--seq",
        "8192",
        "--gpu",
        "h100-sxm",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let b = &v["serving_framework"]["per_gpu"][0][1];
    let blocks = b["num_gpu_blocks"].as_u64().unwrap();
    assert_eq!(v["serving_framework"]["version"], "0.11");
    // The table's "max sequences" is vLLM's concurrency: blocks / (8192 / 16).
    assert_eq!(v["fits"][0]["max_concurrent_sequences"].as_u64().unwrap(), blocks / 512);
}
