//! Every emitter writes exactly the plan: its files, read back through
//! `memplan estimate --from-config FILE`, give the same per-GPU memory as the plan the planner
//! chose — on dense, GQA, MoE and recompute plans — and what a target cannot express is refused
//! with an error naming it, leaving no file behind.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn memplan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("memplan-rt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

struct Case {
    name: &'static str,
    model: &'static str,
    gpus: &'static str,
    batch: &'static str,
    seq: &'static str,
    precision: &'static str,
    framework: &'static str,
    emit: &'static str,
    extra: &'static [&'static str],
    /// The file `--from-config` reads.
    file: &'static str,
}

/// Plan, emit, read back, compare. Returns the plan's JSON row.
fn round_trip(c: &Case) -> Value {
    let dir = tmp(c.name);
    let d = dir.to_str().unwrap();
    let mut args = vec![
        "plan",
        "--model",
        c.model,
        "--gpus",
        c.gpus,
        "--global-batch",
        c.batch,
        "--seq",
        c.seq,
        "--precision",
        c.precision,
        "--framework",
        c.framework,
        "--emit",
        c.emit,
        "--out",
        d,
        "--format",
        "json",
        "--top",
        "1",
    ];
    args.extend_from_slice(c.extra);
    let (code, stdout, stderr) = memplan(&args);
    assert_eq!(code, 0, "{}: {stderr}\n{stdout}", c.name);
    let end = stdout.rfind("\n}").map(|i| i + 2).unwrap();
    let v: Value = serde_json::from_str(&stdout[..end]).unwrap();
    let best = v["plans"][0].clone();
    assert_eq!(best["framework"], c.framework, "{}", c.name);
    let file = dir.join(c.file);
    assert!(file.exists(), "{}: {} not written; wrote:\n{}", c.name, c.file, &stdout[end..]);
    let (code, out, err) =
        // The config names no GPU: the cluster's GPU gives the runtime overheads, as in the plan.
        memplan(&[
            "estimate",
            "--model",
            c.model,
            "--from-config",
            file.to_str().unwrap(),
            "--gpu",
            c.gpus.split_once('x').unwrap().1,
            "--format",
            "json",
        ]);
    assert_eq!(code, 0, "{}: {err}", c.name);
    let est: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        est["per_gpu"]["total_bytes"], best["worst_total_bytes"],
        "{}: read back {} vs planned {} for {}",
        c.name, est["per_gpu"]["total_bytes"], best["worst_total_bytes"], best["description"]
    );
    std::fs::remove_dir_all(&dir).ok();
    best
}

fn text(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

const MEGATRON: &str = "launch_megatron.sh";
const DEEPSPEED: &str = "launch_deepspeed.sh";
const TITAN: &str = "torchtitan_job.toml";
const FSDP: &str = "launch_fsdp.sh";

#[test]
fn megatron_round_trips_dense_gqa_moe_and_recompute() {
    let cases = [
        Case {
            name: "mg-dense",
            model: "gpt2-medium",
            gpus: "16xa100-80gb",
            batch: "64",
            seq: "1024",
            precision: "megatron-bf16",
            framework: "megatron",
            emit: "megatron",
            extra: &["--max-tp", "2"],
            file: MEGATRON,
        },
        Case {
            name: "mg-gqa",
            model: "llama-3-8b",
            gpus: "16xh100-sxm",
            batch: "64",
            seq: "4096",
            precision: "megatron-bf16",
            framework: "megatron",
            emit: "megatron",
            extra: &[],
            file: MEGATRON,
        },
        Case {
            name: "mg-moe",
            model: "mixtral-8x7b",
            gpus: "32xh100-sxm",
            batch: "64",
            seq: "4096",
            precision: "megatron-bf16",
            framework: "megatron",
            emit: "megatron",
            extra: &[],
            file: MEGATRON,
        },
        Case {
            name: "mg-selective",
            model: "llama-2-13b",
            gpus: "16xa100-80gb",
            batch: "64",
            seq: "4096",
            precision: "megatron-bf16",
            framework: "megatron",
            emit: "megatron",
            extra: &["--recompute", "selective"],
            file: MEGATRON,
        },
        Case {
            name: "mg-full-pp",
            model: "megatron-175b",
            gpus: "64xa100-80gb",
            batch: "64",
            seq: "2048",
            precision: "megatron-bf16",
            framework: "megatron",
            emit: "megatron",
            extra: &["--recompute", "full"],
            file: MEGATRON,
        },
    ];
    for c in &cases {
        let best = round_trip(c);
        if c.name == "mg-moe" {
            assert!(best["plan"]["ep"].as_u64().unwrap() >= 1);
        }
    }
}

#[test]
fn megatron_flags_name_the_whole_plan() {
    let dir = tmp("mg-flags");
    let d = dir.to_str().unwrap();
    let (code, _, err) = memplan(&[
        "plan",
        "--model",
        "llama-3-8b",
        "--gpus",
        "64xh100-sxm",
        "--global-batch",
        "256",
        "--seq",
        "8192",
        "--precision",
        "megatron-bf16",
        "--framework",
        "megatron",
        "--recompute",
        "full",
        "--emit",
        "megatron",
        "--out",
        d,
    ]);
    assert_eq!(code, 0, "{err}");
    let s = text(&dir, MEGATRON);
    // LLaMA's shape (Megatron's names for RMSNorm, RoPE, untied head, no biases, SwiGLU, GQA).
    for flag in [
        "--normalization RMSNorm",
        "--position-embedding-type rope",
        "--untie-embeddings-and-output-weights",
        "--disable-bias-linear",
        "--swiglu",
        "--group-query-attention",
        "--num-query-groups 8",
        "--ffn-hidden-size 14336",
        "--vocab-size 128256",
        "--num-layers 32",
        "--hidden-size 4096",
        "--seq-length 8192",
        // The precision recipe and the recompute policy.
        "--bf16",
        "--accumulate-allreduce-grads-in-fp32",
        "--recompute-granularity full",
        "--recompute-method uniform",
        "--recompute-num-layers 1",
        "--global-batch-size 256",
        "torchrun --nnodes 8 --nproc-per-node 8",
    ] {
        assert!(s.contains(flag), "{flag} missing from\n{s}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn deepspeed_round_trips_and_never_puts_zero_2_under_the_pipe_engine() {
    let cases = [
        Case {
            name: "ds-dense",
            model: "gpt2-medium",
            gpus: "8xa100-80gb",
            batch: "64",
            seq: "1024",
            precision: "mixed-bf16",
            framework: "deepspeed",
            emit: "deepspeed",
            extra: &["--max-tp", "1", "--max-pp", "1"],
            file: DEEPSPEED,
        },
        Case {
            name: "ds-gqa",
            model: "llama-3-8b",
            gpus: "16xa100-80gb",
            batch: "64",
            seq: "4096",
            precision: "mixed-bf16",
            framework: "deepspeed",
            emit: "deepspeed",
            extra: &[],
            file: DEEPSPEED,
        },
        Case {
            name: "ds-moe",
            model: "mixtral-8x7b",
            gpus: "32xh100-sxm",
            batch: "64",
            seq: "4096",
            precision: "mixed-bf16",
            framework: "deepspeed",
            emit: "deepspeed",
            extra: &[],
            file: DEEPSPEED,
        },
        Case {
            name: "ds-full-pp",
            model: "megatron-175b",
            gpus: "128xa100-80gb",
            batch: "128",
            seq: "2048",
            precision: "mixed-bf16",
            framework: "deepspeed",
            emit: "deepspeed",
            extra: &["--recompute", "full", "--max-tp", "4"],
            file: DEEPSPEED,
        },
    ];
    for c in &cases {
        let best = round_trip(c);
        let plan = &best["plan"];
        if plan["pp"].as_u64().unwrap() > 1 {
            assert!(plan["zero"].as_u64().unwrap() <= 1, "{}: ZeRO {} under pp {}", c.name, plan["zero"], plan["pp"]);
        }
    }
    // The JSON alone (data-parallel plans) reads back too.
    let dir = tmp("ds-json");
    let d = dir.to_str().unwrap();
    let (code, stdout, err) = memplan(&[
        "plan",
        "--model",
        "gpt2",
        "--gpus",
        "8xa100-80gb",
        "--global-batch",
        "64",
        "--seq",
        "1024",
        "--framework",
        "deepspeed",
        "--max-tp",
        "1",
        "--max-pp",
        "1",
        "--emit",
        "deepspeed",
        "--out",
        d,
        "--format",
        "json",
        "--top",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let end = stdout.rfind("\n}").unwrap() + 2;
    let v: Value = serde_json::from_str(&stdout[..end]).unwrap();
    let cfg: Value = serde_json::from_str(&text(&dir, "ds_config.json")).unwrap();
    let (tb, mb, gas) = (
        cfg["train_batch_size"].as_u64().unwrap(),
        cfg["train_micro_batch_size_per_gpu"].as_u64().unwrap(),
        cfg["gradient_accumulation_steps"].as_u64().unwrap(),
    );
    // DeepSpeed's identity: train_batch_size = micro-batch × accumulation × data-parallel ranks.
    assert_eq!(tb, 64);
    assert_eq!(tb, mb * gas * v["plans"][0]["plan"]["dp"].as_u64().unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn torchtitan_round_trips_its_registered_models() {
    let cases = [
        Case {
            name: "tt-gqa",
            model: "llama-3-8b",
            gpus: "16xh100-sxm",
            batch: "64",
            seq: "8192",
            precision: "mixed-bf16",
            framework: "torchtitan",
            emit: "torchtitan",
            extra: &[],
            file: TITAN,
        },
        Case {
            name: "tt-full",
            model: "llama-3-70b",
            gpus: "64xh100-sxm",
            batch: "128",
            seq: "8192",
            precision: "mixed-bf16",
            framework: "torchtitan",
            emit: "torchtitan",
            extra: &["--recompute", "full"],
            file: TITAN,
        },
        Case {
            name: "tt-moe",
            model: "deepseek-v2-lite",
            gpus: "16xh100-sxm",
            batch: "64",
            seq: "4096",
            precision: "mixed-bf16",
            framework: "torchtitan",
            emit: "torchtitan",
            extra: &[],
            file: TITAN,
        },
    ];
    for c in &cases {
        round_trip(c);
    }
}

#[test]
fn fsdp_round_trips_and_sets_activation_checkpointing_once() {
    let cases = [
        Case {
            name: "fs-dense",
            model: "gpt2-medium",
            gpus: "8xa100-80gb",
            batch: "64",
            seq: "1024",
            precision: "mixed-bf16",
            framework: "accelerate-fsdp",
            emit: "fsdp",
            extra: &[],
            file: FSDP,
        },
        Case {
            name: "fs-gqa",
            model: "llama-3-8b",
            gpus: "8xa100-80gb",
            batch: "32",
            seq: "4096",
            precision: "mixed-bf16",
            framework: "accelerate-fsdp",
            emit: "fsdp",
            extra: &["--recompute", "full"],
            file: FSDP,
        },
        Case {
            name: "fs-moe",
            model: "mixtral-8x7b",
            gpus: "16xh100-sxm",
            batch: "32",
            seq: "2048",
            precision: "mixed-bf16",
            framework: "accelerate-fsdp",
            emit: "fsdp",
            extra: &["--recompute", "full"],
            file: FSDP,
        },
        Case {
            name: "fs-ddp",
            model: "gpt2",
            gpus: "8xa100-80gb",
            batch: "64",
            seq: "1024",
            precision: "amp-bf16",
            framework: "hf-trainer",
            emit: "fsdp",
            // The Trainer's gradient_checkpointing: HF's per-layer checkpointing.
            extra: &["--recompute", "hf"],
            file: FSDP,
        },
    ];
    for c in &cases {
        round_trip(c);
    }
    // With FSDP the checkpointing lives in fsdp_config.json only (transformers raises a
    // ValueError when --gradient_checkpointing is set too).
    let dir = tmp("fs-ac");
    let d = dir.to_str().unwrap();
    let (code, _, err) = memplan(&[
        "plan",
        "--model",
        "llama-3-8b",
        "--gpus",
        "8xa100-80gb",
        "--global-batch",
        "32",
        "--seq",
        "4096",
        "--framework",
        "accelerate-fsdp",
        "--recompute",
        "full",
        "--emit",
        "fsdp",
        "--out",
        d,
    ]);
    assert_eq!(code, 0, "{err}");
    let script = text(&dir, FSDP);
    assert!(!script.contains("--gradient_checkpointing"), "{script}");
    let cfg: Value = serde_json::from_str(&text(&dir, "fsdp_config.json")).unwrap();
    assert_eq!(cfg["activation_checkpointing"], true);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn what_a_target_cannot_express_is_refused_and_nothing_is_written() {
    let cases: &[(&[&str], &str)] = &[
        // torchtitan builds models from its registry only.
        (
            &[
                "--model",
                "gpt2",
                "--gpus",
                "8xa100-80gb",
                "--global-batch",
                "64",
                "--seq",
                "1024",
                "--precision",
                "mixed-bf16",
                "--emit",
                "torchtitan",
            ],
            "registry",
        ),
        // Megatron's GPT has no plain-ReLU MLP (OPT).
        (
            &[
                "--model",
                "opt-1.3b",
                "--gpus",
                "8xa100-80gb",
                "--global-batch",
                "64",
                "--seq",
                "2048",
                "--precision",
                "megatron-bf16",
                "--emit",
                "megatron",
            ],
            "relu",
        ),
        // The HF Trainer has no selective recomputation.
        (
            &[
                "--model",
                "gpt2",
                "--gpus",
                "8xa100-80gb",
                "--global-batch",
                "64",
                "--seq",
                "1024",
                "--precision",
                "mixed-bf16",
                "--framework",
                "accelerate-fsdp",
                "--recompute",
                "selective",
                "--emit",
                "fsdp",
            ],
            "selective",
        ),
        // Encoder-decoder models are no GPT.
        (
            &[
                "--model",
                "t5-base",
                "--gpus",
                "8xa100-80gb",
                "--global-batch",
                "64",
                "--seq",
                "512",
                "--precision",
                "megatron-bf16",
                "--emit",
                "megatron",
            ],
            "decoder stack",
        ),
    ];
    for (i, (extra, needle)) in cases.iter().enumerate() {
        let dir = tmp(&format!("refuse-{i}"));
        let mut args = vec!["plan", "--out", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = memplan(&args);
        assert_ne!(code, 0, "{extra:?}: {stdout}");
        let all = format!("{stdout}{stderr}").to_lowercase();
        assert!(all.contains(needle), "{extra:?}: `{needle}` not in {all}");
        let left: Vec<_> = std::fs::read_dir(&dir).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "{extra:?}: files left behind: {left:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
