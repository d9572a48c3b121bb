//! The planner: FLOPs against Megatron's formula, times against Narayanan et al. 2021, the search
//! against the paper's GPT-3 plan, launch configs and their round trip.

use memplan::memory::{AttentionKernel, Precision, Recompute, Setup};
use memplan::model::presets;
use memplan::plan::flops::{megatron_formula, step_flops};
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
fn flops_match_megatron_and_table_1_aggregates() {
    for (name, h, a, l, gpus, batch, per_gpu, aggregate) in TABLE_1 {
        let m = gpt(h, a, l);
        let setup =
            Setup { precision: Precision::MegatronBf16, seq: 2048, recompute: Recompute::Full, ..Setup::default() };
        let ours = step_flops(&m, &setup, batch);
        let megatron = megatron_formula(batch as f64, 2048.0, l as f64, h as f64, 51200.0, true);
        assert!((ours.hardware / megatron - 1.0).abs() < 1e-9, "{name}: {} vs {megatron}", ours.hardware);
        // Compute time at the paper's achieved TFLOP/s per GPU gives its aggregate throughput.
        let step_s = ours.hardware / (gpus as f64 * per_gpu * 1e12);
        let pflops = ours.hardware / step_s / 1e15;
        assert!((pflops / aggregate - 1.0).abs() < 0.02, "{name}: {pflops} vs {aggregate} PFLOP/s");
        // Without recomputation the model FLOPs follow the 72·B·s·L·h² form.
        let no_rc = megatron_formula(batch as f64, 2048.0, l as f64, h as f64, 51200.0, false);
        assert!((ours.model / no_rc - 1.0).abs() < 1e-9);
    }
}

#[test]
fn gpt3_175b_takes_84_days_on_384_gpus() {
    // Narayanan et al. Table 2: GPT-3 175B, 300B tokens, 384 A100s at 153 TFLOP/s: 84 days.
    let m = gpt(12288, 96, 96);
    let setup = Setup { precision: Precision::MegatronBf16, seq: 2048, recompute: Recompute::Full, ..Setup::default() };
    let per_sequence = step_flops(&m, &setup, 1).hardware;
    let days = 300e9 / 2048.0 * per_sequence / (384.0 * 153e12) / 86400.0;
    assert!((days / 84.0 - 1.0).abs() < 0.02, "{days} days");
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
fn planner_finds_the_papers_gpt3_plan_and_every_plan_fits() {
    // Narayanan et al. §5.1: GPT-3 175B on 1536 A100-80GB, global batch 1536: tp 8, pp 8/12,
    // micro-batch 1 with the interleaved schedule.
    let args = [
        "plan",
        "--model",
        "megatron-175b",
        "--gpus",
        "1536xa100-80gb",
        "--global-batch",
        "1536",
        "--seq",
        "2048",
        "--precision",
        "megatron-bf16",
        "--format",
        "json",
    ];
    let (code, stdout, stderr) = memplan(&args);
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let plans = v["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 10);
    let papers = plans.iter().any(|p| {
        let plan = &p["plan"];
        plan["tp"] == 8
            && (plan["pp"] == 8 || plan["pp"] == 12)
            && p["micro_batch"] == 1
            && plan["schedule"] == "interleaved"
    });
    assert!(
        papers,
        "no tp 8 / pp 8|12 / mb 1 interleaved plan among {:#?}",
        plans.iter().map(|p| p["description"].clone()).collect::<Vec<_>>()
    );
    let usable = v["usable_bytes_per_gpu"].as_u64().unwrap();
    // Each listed plan, re-estimated through `memplan estimate`, fits.
    for p in plans.iter().take(4) {
        let plan = &p["plan"];
        let s = |k: &str| plan[k].to_string();
        let recompute = p["recompute"].as_str().unwrap().to_string();
        let mut e: Vec<String> = [
            "estimate",
            "--model",
            "megatron-175b",
            "--seq",
            "2048",
            "--precision",
            "megatron-bf16",
            "--format",
            "json",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        e.extend([
            "--dp".into(),
            s("dp"),
            "--tp".into(),
            s("tp"),
            "--pp".into(),
            s("pp"),
            "--microbatches".into(),
            s("microbatches"),
            "--zero".into(),
            s("zero"),
        ]);
        e.extend(["--batch".into(), p["micro_batch"].to_string(), "--recompute".into(), recompute]);
        e.extend(["--schedule".into(), plan["schedule"].as_str().unwrap().into(), "--vpp".into(), s("vpp")]);
        if plan["sp"] == true {
            e.push("--sp".into());
        }
        if plan["distributed_optimizer"] == true {
            e.push("--distributed-optimizer".into());
        }
        let refs: Vec<&str> = e.iter().map(String::as_str).collect();
        let (code, out, err) = memplan(&refs);
        assert_eq!(code, 0, "{err}");
        let est: Value = serde_json::from_str(&out).unwrap();
        let total = est["per_gpu"]["total_bytes"].as_u64().unwrap();
        assert_eq!(total, p["worst_total_bytes"].as_u64().unwrap());
        assert!(total <= usable);
    }
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
    // Seventy billion parameters on two 24 GB cards: nothing within reach helps, and it says so.
    let (code, stdout, _) =
        memplan(&["plan", "--model", "llama-2-70b", "--gpus", "2xrtx-4090", "--global-batch", "8", "--seq", "4096"]);
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
fn deepspeed_config_round_trips_through_estimate() {
    let dir = std::env::temp_dir().join(format!("memplan-emit-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let common = ["--model", "llama-2-7b", "--seq", "2048", "--precision", "mixed-bf16"];
    let mut args = vec![
        "plan",
        "--gpus",
        "8xa100-80gb",
        "--global-batch",
        "64",
        "--max-tp",
        "1",
        "--max-pp",
        "1",
        "--format",
        "json",
        "--emit",
        "deepspeed",
        "--out",
        d,
    ];
    args.extend_from_slice(&common);
    let (code, stdout, stderr) = memplan(&args);
    assert_eq!(code, 0, "{stderr}");
    let json_end = stdout.rfind('}').unwrap() + 1;
    let v: Value = serde_json::from_str(&stdout[..json_end]).unwrap();
    let best = &v["plans"][0];
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("ds_config.json")).unwrap()).unwrap();
    // Key names from DeepSpeed's configuration documentation; its batch-size identity holds.
    let (tb, mb, gas) = (
        cfg["train_batch_size"].as_u64().unwrap(),
        cfg["train_micro_batch_size_per_gpu"].as_u64().unwrap(),
        cfg["gradient_accumulation_steps"].as_u64().unwrap(),
    );
    assert_eq!(tb, 64);
    assert_eq!(tb, mb * gas * best["plan"]["dp"].as_u64().unwrap());
    assert_eq!(cfg["zero_optimization"]["stage"], best["plan"]["zero"]);
    assert_eq!(cfg["bf16"]["enabled"], true);
    // Reading it back gives the same per-GPU memory.
    let recompute = best["recompute"].as_str().unwrap();
    let mut e = vec![
        "estimate",
        "--deepspeed-config",
        dir.join("ds_config.json").to_str().unwrap().to_owned().leak(),
        "--recompute",
        recompute,
        "--format",
        "json",
    ];
    e.extend_from_slice(&common);
    let (code, out, err) = memplan(&e);
    assert_eq!(code, 0, "{err}");
    let est: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(est["per_gpu"]["total_bytes"], best["worst_total_bytes"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn megatron_and_fsdp_launchers_name_the_plan() {
    let dir = std::env::temp_dir().join(format!("memplan-emit-mg-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let (code, _, stderr) = memplan(&[
        "plan",
        "--model",
        "megatron-22b",
        "--gpus",
        "64xa100-80gb",
        "--global-batch",
        "256",
        "--seq",
        "2048",
        "--precision",
        "megatron-bf16",
        "--emit",
        "megatron",
        "--out",
        d,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let args = std::fs::read_to_string(dir.join("megatron_args.txt")).unwrap();
    for flag in [
        "--tensor-model-parallel-size",
        "--pipeline-model-parallel-size",
        "--micro-batch-size",
        "--global-batch-size 256",
        "--bf16",
        "--seq-length 2048",
        "--num-layers 48",
        "--hidden-size 6144",
    ] {
        assert!(args.contains(flag), "{flag} missing from\n{args}");
    }
    let (code, _, stderr) = memplan(&[
        "plan",
        "--model",
        "gpt2",
        "--gpus",
        "8xa100-80gb",
        "--global-batch",
        "64",
        "--seq",
        "1024",
        "--max-tp",
        "1",
        "--max-pp",
        "1",
        "--emit",
        "fsdp",
        "--out",
        d,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let script = std::fs::read_to_string(dir.join("launch_fsdp.sh")).unwrap();
    assert!(script.contains("torchrun --nnodes 1 --nproc-per-node 8"), "{script}");
    assert!(script.contains("--fsdp \""), "{script}");
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("fsdp_config.json")).unwrap()).unwrap();
    assert_eq!(cfg["backward_prefetch"], "backward_pre");
    std::fs::remove_dir_all(&dir).ok();
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
    assert!(v["calibration_note"].is_null());
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
