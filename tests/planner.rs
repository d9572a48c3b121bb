//! The planner: FLOPs against Megatron's formula, the framework rules of the search, uneven
//! pipelines, warnings and limits, calibration. Step times against published runs are in
//! tests/planner_runs.rs; launch configs and their round trip in tests/emit_roundtrip.rs.

use memplan::framework::Framework;
use memplan::hw::GpuSpec;
use memplan::memory::estimate::estimate_plan;
use memplan::memory::states::ParamInfo;
use memplan::memory::{AttentionKernel, Precision, Recompute, Setup};
use memplan::model::presets;
use memplan::parallel::Schedule;
use memplan::plan::flops::{megatron_formula, step_flops};
use memplan::plan::frameworks::capabilities;
use memplan::plan::search::{search, SearchConfig};
use serde_json::Value;
use std::process::Command;

fn gpt(h: u64, a: u64, layers: u64) -> memplan::model::ModelSpec {
    let mut m = presets::model("megatron-175b").unwrap();
    let s = &mut m.stacks[0];
    s.layers = layers;
    s.layer.hidden = h;
    s.layer.attention.heads = a;
    s.layer.mlp.ffn = 4 * h;
    m
}

/// Narayanan et al. 2021 (arXiv:2104.04473) Table 1: (params, h, heads, L, GPUs, batch,
/// achieved TFLOP/s per GPU, aggregate PFLOP/s); s 2048, V 51200, full recomputation.
/// (name, h, heads, L, GPUs, batch, TFLOP/s per GPU, aggregate PFLOP/s)
type Row = (&'static str, u64, u64, u64, u64, u64, f64, f64);
const TABLE_1: [Row; 10] = [
    ("1.7B", 2304, 24, 24, 32, 512, 137.0, 4.4),
    ("3.6B", 3072, 32, 30, 64, 512, 138.0, 8.8),
    ("7.5B", 4096, 32, 36, 128, 512, 142.0, 18.2),
    ("18.4B", 6144, 48, 40, 256, 1024, 135.0, 34.6),
    ("39.1B", 8192, 64, 48, 512, 1536, 138.0, 70.8),
    ("76.1B", 10240, 80, 60, 1024, 1792, 140.0, 143.8),
    ("145.6B", 12288, 96, 80, 1536, 2304, 148.0, 227.1),
    ("310.1B", 16384, 128, 96, 1920, 2160, 155.0, 297.4),
    ("529.6B", 20480, 128, 105, 2520, 2520, 163.0, 410.2),
    ("1008B", 25600, 160, 128, 3072, 3072, 163.0, 502.0),
];

#[test]
fn flops_match_megatron_formula() {
    // Narayanan et al. 2021 Eq. 3: FLOPs of one step with and without recomputation. (Whether
    // the step *time* matches the paper's throughput is tests/planner_runs.rs, which predicts it.)
    for (name, h, a, l, _gpus, batch, _per_gpu, _aggregate) in TABLE_1 {
        let m = gpt(h, a, l);
        let setup =
            Setup { precision: Precision::MegatronBf16, seq: 2048, recompute: Recompute::Full, ..Setup::default() };
        let ours = step_flops(&m, &setup, batch);
        let megatron = megatron_formula(batch as f64, 2048.0, l as f64, h as f64, 51200.0, true);
        assert!((ours.hardware / megatron - 1.0).abs() < 1e-9, "{name}: {} vs {megatron}", ours.hardware);
        let no_rc = megatron_formula(batch as f64, 2048.0, l as f64, h as f64, 51200.0, false);
        assert!((ours.model / no_rc - 1.0).abs() < 1e-9);
    }
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
fn every_listed_plan_fits_when_re_estimated() {
    // GPT-3 175B on 1536 A100s (Narayanan et al. 2021 §5): each listed plan, estimated again
    // through the full estimate (every stage), needs the bytes the search reported, which fit.
    let model = presets::model("megatron-175b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("a100-80gb").unwrap();
    let setup = Setup { precision: Precision::MegatronBf16, seq: 2048, ..Setup::default() };
    let mut cfg = SearchConfig::new(1536, 8, 1536, &gpu, &setup);
    cfg.top_k = 40;
    let r = search(&model, &info, &setup, &gpu, &cfg).unwrap();
    assert_eq!(r.plans.len(), 40);
    for c in &r.plans {
        let s = Setup { micro_batch: c.micro_batch, recompute: c.recompute, ..setup.clone() };
        let est = estimate_plan(&model, &info, &s, &c.plan, &cfg.overhead);
        assert_eq!(est.worst().total, c.worst_total_bytes, "{}", c.plan.describe());
        assert!(c.worst_total_bytes <= r.usable_bytes);
        // And the framework named runs it.
        let caps = capabilities(c.framework).unwrap();
        assert!(
            caps.refuses_plan(&c.plan, c.recompute, setup.precision, 96, 2048).is_none(),
            "{} by {}",
            c.plan.describe(),
            c.framework
        );
    }
    // The published plan family (tp 8, pp 8 or 12, micro-batch 1) is among the fitting plans.
    cfg.top_k = usize::MAX;
    cfg.frameworks = vec![Framework::Megatron];
    let all = search(&model, &info, &setup, &gpu, &cfg).unwrap();
    assert!(all.plans.iter().any(|c| c.plan.tp == 8 && (c.plan.pp == 8 || c.plan.pp == 12) && c.micro_batch == 1));
}

#[test]
fn deepspeed_plans_never_combine_zero_2_with_pipelines() {
    // deepspeed/runtime/pipe/engine.py asserts ZeRO stage < 2 under the pipe engine; torchtitan and
    // Megatron label their own plans.
    let model = presets::model("llama-2-70b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("a100-80gb").unwrap();
    let setup = Setup { precision: Precision::MixedBf16, seq: 4096, ..Setup::default() };
    let mut cfg = SearchConfig::new(256, 8, 512, &gpu, &setup);
    cfg.top_k = usize::MAX;
    let r = search(&model, &info, &setup, &gpu, &cfg).unwrap();
    assert!(r.plans.iter().any(|c| c.framework == Framework::Deepspeed && c.plan.pp > 1));
    assert!(r.plans.iter().any(|c| c.framework == Framework::Deepspeed && c.plan.zero == 2));
    for c in &r.plans {
        if c.framework == Framework::Deepspeed || c.also_runs_on.contains(&Framework::Deepspeed) {
            assert!(!(c.plan.pp > 1 && c.plan.zero >= 2), "{}", c.plan.describe());
        }
        assert!(!(c.plan.pp > 1 && c.plan.zero >= 2), "no framework runs {}", c.plan.describe());
    }
}

#[test]
fn plans_are_labelled_with_their_framework_and_framework_restricts() {
    let base = ["plan", "--model", "llama-2-7b", "--gpus", "16xa100-80gb", "--global-batch", "64", "--seq", "4096"];
    let (code, stdout, stderr) = memplan(&[&base[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    for p in v["plans"].as_array().unwrap() {
        assert!(p["framework"].is_string(), "{p}");
    }
    let (code, stdout, _) = memplan(&[&base[..], &["--framework", "torchtitan", "--format", "json"]].concat());
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["plans"].as_array().unwrap().iter().all(|p| p["framework"] == "torchtitan"));
    let (code, table, _) = memplan(&base);
    assert_eq!(code, 0);
    assert!(table.contains("framework"), "{table}");
    // The framework's own recipe is the default (Megatron: bf16 with fp32 main grads); a recipe
    // it does not keep, or a recompute policy it lacks, is an error.
    let (code, stdout, err) = memplan(&[&base[..], &["--framework", "megatron", "--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["plans"].as_array().unwrap().iter().all(|p| p["framework"] == "megatron"));
    assert_eq!(v["setup"]["precision"], "megatron-bf16");
    let (code, _, err) = memplan(&[&base[..], &["--framework", "megatron", "--precision", "mixed-bf16"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("megatron-bf16"), "{err}");
    let (code, _, err) = memplan(&[&base[..], &["--framework", "hf-trainer", "--recompute", "selective"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("selective"), "{err}");
    let (code, _, err) = memplan(&[&base[..], &["--framework", "jax"]].concat());
    assert_eq!(code, 2);
    assert!(err.contains("jax") && err.contains("megatron"), "{err}");
}

#[test]
fn settings_outside_physical_sense_are_stated() {
    let base = ["plan", "--model", "gpt2", "--gpus", "16xh100-sxm", "--global-batch", "64", "--seq", "1024"];
    let (code, out, _) = memplan(&[&base[..], &["--efficiency", "0.95"]].concat());
    assert_eq!(code, 0);
    assert!(out.contains("warning: --efficiency 0.95 is above the best GEMM throughput measured on h100-sxm"), "{out}");
    let (code, out, _) = memplan(&[&base[..], &["--max-tp", "16"]].concat());
    assert_eq!(code, 0);
    assert!(out.contains("warning: --max-tp 16 is above the 8 GPUs per node"), "{out}");
    let (code, out, _) = memplan(&[&base[..], &["--efficiency", "0.5", "--format", "json"]].concat());
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

#[test]
fn huge_clusters_answer_promptly_and_the_search_is_capped() {
    // 10^12 GPUs: divisors by factorisation; the global batch cannot feed that many ranks.
    let t = std::time::Instant::now();
    let (code, _, err) =
        memplan(&["plan", "--model", "gpt2", "--gpus", "1000000000000xh100-sxm", "--global-batch", "1024"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--gpus") && err.contains("2^24"), "{err}");
    // The largest cluster accepted (2^24 GPUs) with a sequence for every rank: it searches and
    // answers (divisors by factorisation: 25 of them).
    let (code, out, err) = memplan(&[
        "plan",
        "--model",
        "gpt2",
        "--gpus",
        "16777216xh100-sxm",
        "--global-batch",
        "16777216",
        "--seq",
        "1024",
        "--max-pp",
        "4",
        "--format",
        "json",
        "--top",
        "1",
    ]);
    assert!(code == 0 || code == 1, "{err}");
    if code == 0 {
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["plans"][0]["time"]["total_s"].as_f64().unwrap().is_finite());
    }
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
    // The cap on candidates is a clear error naming the ways to narrow the space.
    let model = presets::model("llama-2-70b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("h100-sxm").unwrap();
    let setup = Setup { precision: Precision::MegatronBf16, seq: 8192, ..Setup::default() };
    let mut cfg = SearchConfig::new(1024, 8, 2048, &gpu, &setup);
    cfg.max_candidates = 1000;
    let e = search(&model, &info, &setup, &gpu, &cfg).unwrap_err().to_string();
    assert!(e.contains("more than 1000 candidates"), "{e}");
    let err = search(&model, &info, &setup, &gpu, &cfg).unwrap_err();
    assert!(err.hint().unwrap().contains("--framework"));
}

#[test]
fn uneven_pipelines_are_searched_where_frameworks_support_them() {
    // Llama 3 405B (126 layers) on pp 16: no even split exists; Megatron's
    // --account-for-embedding/loss-in-pipeline-split and torchtitan's default split give the
    // first and last stage 7 layers and the others 8 (Llama 3 §3.3.2), interleaved too.
    let model = presets::model("llama-3.1-405b").unwrap();
    let info = ParamInfo::of(&model);
    let gpu = GpuSpec::preset("h100-sxm").unwrap();
    let setup = Setup { precision: Precision::MixedBf16, seq: 8192, ..Setup::default() };
    let mut cfg = SearchConfig::new(2048, 8, 256, &gpu, &setup);
    cfg.top_k = usize::MAX;
    cfg.max_cp = 1;
    let r = search(&model, &info, &setup, &gpu, &cfg).unwrap();
    let found = r
        .plans
        .iter()
        .find(|c| c.plan.pp == 16 && c.plan.schedule == Schedule::Interleaved && c.plan.first_stage_layers == Some(7));
    let c = found.expect("an interleaved pp 16 plan with 7 layers on the first stage");
    assert_eq!(c.plan.last_stage_layers, Some(7));
    assert_eq!(c.framework, Framework::Torchtitan);
}

#[test]
fn nothing_fits_exits_1_with_the_explanation() {
    // Llama-2-7B full training on two 40 GB GPUs: 16 bytes × 6.7B = 108 GB of model states
    // cannot fit 2 × 40 GB without moving the optimizer states to the host.
    let (code, stdout, _) =
        memplan(&["plan", "--model", "llama-2-7b", "--gpus", "2xa100-40gb", "--global-batch", "16", "--seq", "4096"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("no plan fits"), "{stdout}");
    assert!(stdout.contains("over by"), "{stdout}");
    assert!(stdout.contains("smallest change that would fit: offloading optimizer states"), "{stdout}");
    // Seventy billion parameters on two 24 GB cards fit only with parameters and optimizer in
    // host memory (FSDP CPU offload), and it says so.
    let (code, stdout, _) =
        memplan(&["plan", "--model", "llama-2-70b", "--gpus", "2xrtx-4090", "--global-batch", "8", "--seq", "4096"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("offload params+optimizer"), "{stdout}");
    // A trillion parameters on one 24 GB card: nothing within reach helps.
    let (code, stdout, _) =
        memplan(&["plan", "--params", "1t", "--gpus", "1xrtx-4090", "--global-batch", "8", "--seq", "4096"]);
    assert_eq!(code, 1);
    assert!(stdout.contains("would fit either"), "{stdout}");
}

#[test]
fn invalid_clusters_are_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["plan", "--model", "gpt2", "--gpus", "0xh100-sxm", "--global-batch", "8"], "at least 1 GPU"),
        (&["plan", "--model", "gpt2", "--gpus", "8xh1000", "--global-batch", "8"], "unknown gpu preset"),
        (
            &["plan", "--model", "gpt2", "--gpus", "16xh100-sxm", "--gpus-per-node", "3", "--global-batch", "16"],
            "--gpus-per-node",
        ),
        (&["plan", "--model", "gpt2", "--gpus", "1024xh100-sxm", "--global-batch", "4"], "smaller than"),
        (&["plan", "--model", "gpt2", "--gpus", "eight", "--global-batch", "4"], "<count>x<gpu preset>"),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = memplan(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: `{needle}` not in {stderr}");
    }
}

#[test]
fn eager_attention_and_dtype_reach_the_flops() {
    // Attention kernels change memory, not FLOPs.
    let m = gpt(4096, 32, 4);
    let a = Setup { attention: AttentionKernel::Eager, seq: 1024, ..Setup::default() };
    let b = Setup { attention: AttentionKernel::Flash, seq: 1024, ..Setup::default() };
    assert_eq!(step_flops(&m, &a, 2), step_flops(&m, &b, 2));
}

#[test]
fn calibration_file_sets_the_efficiency() {
    // A bench file measured on an H100 SXM at 494.7 TFLOP/s fp16: half the 989.4 dense peak.
    let dir = std::env::temp_dir().join(format!("memplan-cal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.json");
    std::fs::write(&path, r#"{"gpu_preset": "h100-sxm", "adapter": {"name": "NVIDIA H100 80GB HBM3"}, "calibration": {"matmul_tflops": {"fp32": 30.0, "fp16": 494.7}}}"#).unwrap();
    let p = path.to_str().unwrap();
    let (code, stdout, stderr) = memplan(&[
        "plan",
        "--model",
        "gpt2",
        "--gpus",
        "8xh100-sxm",
        "--global-batch",
        "64",
        "--seq",
        "1024",
        "--calibration",
        p,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    assert!((v["efficiency"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    assert!(v["warnings"].as_array().unwrap().is_empty());
    // Measured elsewhere: the plan still runs and says so.
    let (code, stdout, _) = memplan(&[
        "plan",
        "--model",
        "gpt2",
        "--gpus",
        "8xa100-80gb",
        "--global-batch",
        "64",
        "--seq",
        "1024",
        "--calibration",
        p,
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("warning: calibration measured on h100-sxm"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}
