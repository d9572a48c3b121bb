//! Parallel plans against the papers that define them. Each expected number is written from its
//! source (paper, figure/table) or as a hand calculation beside the test.

use memplan::memory::estimate::estimate_plan;
use memplan::memory::sharding::rank_states;
use memplan::memory::states::ParamInfo;
use memplan::memory::{AttentionKernel, OverheadConfig, Precision, Recompute, Setup};
use memplan::model::{derive, presets, spec::*};
use memplan::parallel::layout::{layer_params, shard_sizes, stage_params};
use memplan::parallel::{deepspeed, ParallelPlan, Schedule};
use std::process::Command;

const GIB: f64 = (1u64 << 30) as f64;

fn plan(dp: u64, zero: u8) -> ParallelPlan {
    ParallelPlan { dp, zero, ..ParallelPlan::single() }
}

/// Model states (weights + gradients + optimizer states) of one rank for a bare parameter count.
fn model_states(params: u64, precision: Precision, plan: &ParallelPlan) -> u64 {
    let m = derive::decoder_for_params(params);
    let mut st = stage_params(&m, plan, 0);
    st.params = params;
    let info = ParamInfo::with_count(&m, params);
    let setup = Setup { precision, ..Setup::default() };
    let r = rank_states(&st, &info, &setup, plan).states;
    r.weights + r.gradients + r.optimizer
}

#[test]
fn zero_paper_figure_1_and_table_1() {
    // Rajbhandari et al. 2020 (arXiv:1910.02054) Figure 1: Ψ = 7.5B, K = 12, N_d = 64:
    // baseline 120 GB, P_os 31.4 GB, P_os+g 16.6 GB, P_os+g+p 1.9 GB (GB = 10^9).
    let gb = |b: u64| b as f64 / 1e9;
    let psi = 7_500_000_000;
    let fig1 = [(0u8, 120.0), (1, 31.4), (2, 16.6), (3, 1.9)];
    for (zero, expected) in fig1 {
        let got = gb(model_states(psi, Precision::MixedBf16, &plan(64, zero)));
        assert!((got - expected).abs() < 0.05, "zero {zero}: {got} GB vs {expected} GB");
    }
    // Table 1 (GB), rows Ψ = 7.5B and 128B, columns P_os, P_os+g, P_os+g+p, printed to three
    // significant figures.
    let table: [(u64, u64, [f64; 3]); 9] = [
        (psi, 1, [120.0, 120.0, 120.0]),
        (psi, 4, [52.5, 41.3, 30.0]),
        (psi, 16, [35.6, 21.6, 7.5]),
        (psi, 64, [31.4, 16.6, 1.88]),
        (psi, 256, [30.4, 15.4, 0.47]),
        (psi, 1024, [30.1, 15.1, 0.12]),
        (128_000_000_000, 16, [608.0, 368.0, 128.0]),
        (128_000_000_000, 64, [536.0, 284.0, 32.0]),
        (128_000_000_000, 1024, [513.0, 257.0, 2.0]),
    ];
    for (params, nd, row) in table {
        for (i, expected) in row.iter().enumerate() {
            let got = gb(model_states(params, Precision::MixedBf16, &plan(nd, i as u8 + 1)));
            let tolerance = expected * 0.005 + 0.005;
            assert!((got - expected).abs() <= tolerance, "Ψ {params} N_d {nd} stage {}: {got} vs {expected}", i + 1);
        }
    }
}

#[test]
fn megatron_distributed_optimizer_bytes_per_parameter() {
    // Megatron-LM README, distributed optimizer: non-distributed vs distributed over d ranks:
    // bf16 params/fp32 grads 18 vs 6 + 12/d; fp16 20 vs 4 + 16/d; fp32 16 vs 8 + 8/d.
    let p = 1_920_000_000u64; // divisible by every d below
    for d in [1u64, 2, 8, 64] {
        let dist = ParallelPlan { dp: d, distributed_optimizer: true, ..ParallelPlan::single() };
        let cases = [
            (Precision::MegatronBf16, 18, 6 * p + 12 * p / d),
            (Precision::MegatronFp16, 20, 4 * p + 16 * p / d),
            (Precision::Fp32, 16, 8 * p + 8 * p / d),
        ];
        for (precision, plain, distributed) in cases {
            assert_eq!(model_states(p, precision, &plan(d, 0)), plain * p, "{precision:?} d {d}");
            assert_eq!(model_states(p, precision, &dist), distributed, "{precision:?} distributed d {d}");
        }
    }
}

/// The GPT model of Korthikanti et al. 2022 Table 3 with the paper's settings.
fn korthikanti(h: u64, a: u64, layers: u64) -> ModelSpec {
    let mut m = presets::model("gpt2").unwrap();
    m.tokens = Some(TokenEmbedding { vocab: 51200, dim: h });
    let s = &mut m.stacks[0];
    s.positions = Positions::Learned { max: 2048, offset: 0 };
    s.layers = layers;
    s.layer.hidden = h;
    s.layer.attention.heads = a;
    s.layer.mlp.ffn = 4 * h;
    s.layer.mlp.activation = Activation::Gelu;
    m
}

fn first_stage_activations(m: &ModelSpec, batch: u64, plan: &ParallelPlan, recompute: Recompute) -> u64 {
    let setup = Setup {
        precision: Precision::MegatronBf16,
        attention: AttentionKernel::Eager,
        micro_batch: batch,
        seq: 2048,
        recompute,
        ..Setup::default()
    };
    let est = estimate_plan(m, &ParamInfo::of(m), &setup, plan, &OverheadConfig::default());
    est.stages[0].estimate.activations
}

#[test]
fn korthikanti_figure_1() {
    // Figure 1 (GiB; s 2048, V 51200, t 8): activations of the first stage with no optimization
    // and with sequence parallelism + selective recomputation. The paper does not count the two
    // LayerNorms' fp32 mean/rstd (2 × 2 × 4·s·b bytes per layer, divided by t under SP), so they
    // are taken off before comparing.
    struct Row {
        h: u64,
        a: u64,
        l: u64,
        p: u64,
        v: u64,
        b: u64,
        none: f64,
        sp_selective: f64,
        layers_in_flight: u64,
    }
    let rows = [
        // 22B: 48 layers, one stage, b 4.
        Row { h: 6144, a: 64, l: 48, p: 1, v: 1, b: 4, none: 59.25, sp_selective: 9.5625, layers_in_flight: 48 },
        // 175B: p 8, v 3: stage 0 holds 2(p−1) + (v−1)p + 1 = 31 chunks of 4 layers = 124.
        Row { h: 12288, a: 96, l: 96, p: 8, v: 3, b: 1, none: 66.84, sp_selective: 12.35, layers_in_flight: 124 },
        // 530B: p 35, v 3: 2·34 + 2·35 + 1 = 139 chunks of 1 layer.
        Row { h: 20480, a: 128, l: 105, p: 35, v: 3, b: 1, none: 114.02, sp_selective: 23.08, layers_in_flight: 139 },
        // 1T: p 64, 1F1B: 64 microbatches of 2 layers = 128.
        Row { h: 25600, a: 160, l: 128, p: 64, v: 1, b: 1, none: 131.25, sp_selective: 26.56, layers_in_flight: 128 },
    ];
    for r in rows {
        let m = korthikanti(r.h, r.a, r.l);
        let schedule = if r.v > 1 { Schedule::Interleaved } else { Schedule::OneFOneB };
        let base = ParallelPlan { tp: 8, pp: r.p, vpp: r.v, schedule, microbatches: 4 * r.p, ..ParallelPlan::single() };
        base.validate(&m, 2048).unwrap();
        let ln_stats = 2 * 2 * 4 * 2048 * r.b;
        let none = first_stage_activations(&m, r.b, &base, Recompute::None) - r.layers_in_flight * ln_stats;
        let sp = ParallelPlan { sp: true, ..base.clone() };
        let sel = first_stage_activations(&m, r.b, &sp, Recompute::Selective) - r.layers_in_flight * ln_stats / 8;
        assert!((none as f64 / GIB - r.none).abs() < 0.006, "h {}: {} GiB vs {}", r.h, none as f64 / GIB, r.none);
        assert!(
            (sel as f64 / GIB - r.sp_selective).abs() < 0.006,
            "h {}: {} GiB vs {}",
            r.h,
            sel as f64 / GIB,
            r.sp_selective
        );
    }
}

#[test]
fn korthikanti_weights_follow_the_tensor_parallel_split() {
    // Figure 1's weights + optimizer count 12·h²·L parameters at 18 bytes over t·p:
    // 22B: 12 · 6144² · 48 · 18 / 8 bytes = 45.5625 GiB.
    let (h, t) = (6144u64, 8u64);
    let m = korthikanti(h, 64, 48);
    let layer = &m.stacks[0].layer;
    // Per rank: the 12h²/t matrix parameters, the column-parallel biases (QKV 3h/t, fc1 4h/t),
    // the replicated row-parallel biases (out-projection h, fc2 h) and two LayerNorms (4h).
    assert_eq!(layer_params(layer, t, 1), 12 * h * h / t + 3 * h / t + 4 * h / t + 2 * h + 4 * h);
    assert_eq!((48 * 12 * h * h / t * 18) as f64 / GIB, 45.5625);
}

#[test]
fn deepspeed_zero3_estimator_for_t5_3b_on_8_gpus() {
    // DeepSpeed estimate_zero3_model_states_mem_needs (current code): t5-3b, P = 2,851,598,336,
    // largest layer = the shared embedding 32128 × 1024; one node of 8 GPUs prints
    // 6.09 / 0.78 / 0.12 "GB" (GiB) for no offload / optimizer offload / both.
    let e = deepspeed::zero3(2_851_598_336, 32128 * 1024, 8);
    for (got, expected) in [(e.no_offload, 6.09), (e.offload_optimizer, 0.78), (e.offload_optimizer_and_params, 0.12)] {
        assert!((got as f64 / GIB - expected).abs() < 0.01, "{} vs {expected}", got as f64 / GIB);
    }
    // Through the CLI, from t5-3b's config.json (huggingface.co/t5-3b): the report carries the
    // same numbers and the exact parameter count.
    let dir = std::env::temp_dir().join(format!("memplan-t5-3b-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"architectures": ["T5WithLMHeadModel"], "d_ff": 16384, "d_kv": 128, "d_model": 1024, "dropout_rate": 0.1, "feed_forward_proj": "relu", "model_type": "t5", "num_heads": 32, "num_layers": 24, "relative_attention_num_buckets": 32, "vocab_size": 32128}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_memplan"))
        .args([
            "estimate",
            "--hf-config",
            config.to_str().unwrap(),
            "--zero",
            "3",
            "--dp",
            "8",
            "--format",
            "json",
            "--seq",
            "512",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["model"]["parameters"], 2_851_598_336u64);
    assert_eq!(v["deepspeed_zero3_estimator"]["no_offload"], e.no_offload);
    std::fs::remove_dir_all(&dir).ok();
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
fn impossible_plans_are_clear_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["estimate", "--model", "gpt2", "--tp", "5"], "a divisor of its 12 attention heads"),
        (&["estimate", "--model", "gpt2", "--pp", "13"], "at most the model's 12 layers"),
        (&["estimate", "--model", "gpt2", "--ep", "2"], "model without experts"),
        (&["estimate", "--model", "gpt2", "--dp", "2", "--tp", "2", "--gpus", "8"], "dp·tp·pp·cp = 2·2·1·1 = 4"),
        (&["estimate", "--model", "gpt2", "--zero", "3", "--distributed-optimizer"], "distributed-optimizer"),
        (&["estimate", "--model", "gpt2", "--sp"], "needs tensor parallelism"),
        (&["estimate", "--model", "gpt2", "--offload", "params", "--zero", "2"], "--zero 3"),
        (
            &["estimate", "--model", "gpt2", "--pp", "4", "--schedule", "interleaved", "--vpp", "2"],
            "pp · vpp dividing the 12 layers",
        ),
        (&["estimate", "--model", "gpt2", "--zero", "4"], "4"),
        (&["estimate", "--model", "gpt2", "--cp", "3", "--seq", "1024"], "a divisor of the sequence length 1024"),
        (&["estimate", "--model", "gpt2", "--fsdp", "full", "--zero", "2"], "choose one"),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = memplan(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: `{needle}` not in {stderr}");
        assert!(!stderr.contains("panicked"));
    }
}

#[test]
fn pipeline_report_has_every_stage_and_the_worst() {
    let (code, stdout, stderr) = memplan(&[
        "estimate", "--params", "13b", "--pp", "4", "--tp", "2", "--dp", "4", "--zero", "1", "--format", "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let stages = v["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 4);
    assert_eq!(v["plan"]["tp"], 2);
    assert_eq!(v["plan"]["microbatches"], 4);
    let layers: u64 = stages.iter().map(|s| s["layers"].as_u64().unwrap()).sum();
    assert_eq!(layers, v["model"]["shape"][0]["layers"].as_u64().unwrap());
    // 1F1B: stage i holds p − i microbatches.
    let in_flight: Vec<f64> = stages.iter().map(|s| s["microbatches_in_flight"].as_f64().unwrap()).collect();
    assert_eq!(in_flight, vec![4.0, 3.0, 2.0, 1.0]);
    let worst = v["worst_stage"].as_u64().unwrap() as usize;
    let max_total = stages.iter().map(|s| s["total_bytes"].as_u64().unwrap()).max().unwrap();
    assert_eq!(stages[worst]["total_bytes"].as_u64().unwrap(), max_total);
    assert_eq!(v["per_gpu"]["total_bytes"].as_u64().unwrap(), max_total);
    let (_, table, _) = memplan(&["estimate", "--params", "13b", "--pp", "4", "--tp", "2", "--dp", "4", "--zero", "1"]);
    assert!(table.contains("pipeline stages (worst: stage"));
}

#[test]
fn offload_moves_optimizer_states_to_host() {
    let run = |extra: &[&str]| {
        let mut args = vec!["estimate", "--params", "7b", "--dp", "8", "--format", "json"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = memplan(&args);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let on_gpu = run(&["--zero", "2"]);
    let offloaded = run(&["--zero", "2", "--offload", "optimizer"]);
    assert_eq!(offloaded["per_gpu"]["optimizer_states_bytes"], 0);
    // Host: the optimizer shard (12 bytes/param / 8) plus fp32 gradients (4 bytes/param / 8).
    let p = 7_000_000_000u64;
    assert_eq!(
        offloaded["per_gpu"]["host_offload_bytes"].as_u64().unwrap(),
        (12 * p).div_ceil(8) + (4 * p).div_ceil(8)
    );
    assert!(offloaded["per_gpu"]["total_bytes"].as_u64() < on_gpu["per_gpu"]["total_bytes"].as_u64());
}

#[test]
fn shard_sizes_add_up() {
    for (total, n) in [(10u64, 3u64), (7_500_000_000, 64), (5, 8), (0, 4)] {
        let s = shard_sizes(total, n);
        assert_eq!(s.len() as u64, n);
        assert_eq!(s.iter().sum::<u64>(), total);
        assert!(s.iter().max().unwrap() - s.iter().min().unwrap() <= 1);
    }
}

#[test]
fn expert_parallel_splits_experts_and_capacity_pads_routed_tokens() {
    // Mixtral-8x7B layer (h 4096, 32 heads, 8 KV heads of 128, ffn 14336, 8 experts, top-2),
    // written out: attention 4096·4096 + 2·4096·1024 + 4096·4096 = 41,943,040; one SwiGLU expert
    // 3·4096·14336 = 176,160,768; router 4096·8 = 32,768; two RMSNorms 8,192.
    let m = presets::model("mixtral-8x7b").unwrap();
    let layer = &m.stacks[0].layer;
    assert_eq!(layer_params(layer, 1, 8), 41_943_040 + 176_160_768 + 32_768 + 8_192);
    assert_eq!(layer_params(layer, 1, 1), 41_943_040 + 8 * 176_160_768 + 32_768 + 8_192);
    let run = |cf: &str| {
        let (code, stdout, stderr) = memplan(&[
            "estimate",
            "--model",
            "mixtral-8x7b",
            "--dp",
            "8",
            "--ep",
            "8",
            "--zero",
            "1",
            "--seq",
            "4096",
            "--capacity-factor",
            cf,
            "--format",
            "json",
        ]);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()["per_gpu"]["activations_bytes"].as_u64().unwrap()
    };
    assert!(run("1.25") > run("1.0"));
    let (code, _, stderr) = memplan(&["estimate", "--model", "mixtral-8x7b", "--ep", "3", "--dp", "3"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("a divisor of the 8 experts"), "{stderr}");
}
