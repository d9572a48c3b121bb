//! The one way into the library: `Scenario` → `resolve()`. Every value and combination is
//! checked there, whichever face the settings came from.

use memplan::scenario::{settings, Kind, Scenario};
use std::process::Command;

fn scenario(pairs: &[(&str, &str)]) -> Scenario {
    Scenario::from_pairs(pairs.iter().copied()).unwrap()
}

fn resolve_err(pairs: &[(&str, &str)]) -> String {
    let s = scenario(pairs);
    match s.resolve() {
        Ok(_) => panic!("{pairs:?} resolved"),
        Err(e) => format!("{e} | {}", e.hint().unwrap_or_default()),
    }
}

#[test]
fn a_library_caller_cannot_build_an_invalid_scenario() {
    // Plain data can hold anything; resolve() refuses it with the setting's name.
    let zero_batch = Scenario { batch: Some(memplan::scenario::value::Count(0)), ..scenario(&[("model", "gpt2")]) };
    assert!(zero_batch.resolve().unwrap_err().to_string().contains("--batch"));
    let zero_pp = Scenario { pp: Some(0), ..scenario(&[("model", "gpt2")]) };
    assert!(zero_pp.resolve().unwrap_err().to_string().contains("--pp"));
    // GPT-2 has 12 heads: tp 5 does not divide them.
    let e = resolve_err(&[("model", "gpt2"), ("tp", "5")]);
    assert!(e.contains("--tp") && e.contains("12 attention heads"), "{e}");
}

#[test]
fn values_are_checked_when_they_are_set() {
    let mut s = Scenario::default();
    for (key, bad) in [
        ("batch", "0"),
        ("batch", "9007199254740992"),
        ("seq", "-4"),
        ("tp", "1.5"),
        ("zero", "4"),
        ("precision", "fp64"),
        ("fragmentation", "1.0"),
        ("fragmentation", "NaN"),
        ("capacity-factor", "inf"),
        ("cuda-context", "512"),
        ("gpus", "0xh100-sxm"),
        ("hidden", "99999999999999999999999999"),
    ] {
        let e = s.set(key, bad).unwrap_err();
        assert!(e.to_string().contains(&format!("--{key}")) && e.to_string().contains(bad), "{key}={bad}: {e}");
        assert!(e.hint().is_some(), "{key}={bad}: no hint");
    }
    let e = s.set("batch", "9007199254740992").unwrap_err();
    assert!(e.hint().unwrap().contains("2^24 (16,777,216)"), "{e:?}");
}

#[test]
fn one_model_source_at_a_time() {
    let e = resolve_err(&[("model", "gpt2"), ("params", "7b")]);
    assert!(e.contains("--params") && e.contains("--model"), "{e}");
}

#[test]
fn learned_positions_bound_the_sequence() {
    // GPT-2's wpe table has n_positions = 1024 rows (HF GPT2Config).
    let e = resolve_err(&[("model", "gpt2"), ("seq", "1025")]);
    assert!(e.contains("1024 positions"), "{e}");
    assert!(scenario(&[("model", "gpt2"), ("seq", "1024")]).resolve().is_ok());
    // LLaMA's rotary positions take any length.
    assert!(scenario(&[("model", "llama-2-7b"), ("seq", "65536")]).resolve().is_ok());
}

#[test]
fn sizes_beyond_exact_integer_range_are_refused_not_wrapped() {
    // Eager attention scores of 2^14 sequences × 2^20 tokens: b·a·s² ≈ 2^78 bytes.
    let e = resolve_err(&[("model", "llama-2-7b"), ("batch", "4096"), ("seq", "1048576"), ("attention", "eager")]);
    assert!(e.starts_with("too large:") && e.contains("exceeds"), "{e}");
    // micro-batch × sequence beyond 2^32 tokens.
    let e = resolve_err(&[("model", "llama-2-7b"), ("batch", "16777216"), ("seq", "16777216")]);
    assert!(e.contains("too large") && e.contains("tokens per micro-batch"), "{e}");
    // A legal but enormous scenario keeps exact, ordered numbers (total ≥ weights).
    let r = scenario(&[("params", "1e15")]).resolve().unwrap();
    let w = r.estimate().worst().clone();
    assert!(w.total >= w.peak_allocated && w.peak_allocated > 1_000_000_000_000_000 * 2, "{w:?}");
}

#[test]
fn a_deepspeed_config_and_a_flag_that_disagree_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("ds.json");
    std::fs::write(
        &ds,
        r#"{"train_batch_size": 64, "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2,
            "zero_optimization": {"stage": 2}, "bf16": {"enabled": true}}"#,
    )
    .unwrap();
    let path = ds.to_str().unwrap();
    // The config alone: dp = 64 / (4 × 2) = 8, ZeRO-2, bf16 mixed precision.
    let r = scenario(&[("model", "gpt2"), ("deepspeed-config", path)]).resolve().unwrap();
    assert_eq!((r.plan().dp, r.plan().zero, r.plan().microbatches, r.setup().micro_batch), (8, 2, 2, 4));
    // A flag that agrees is fine; one that disagrees names both values.
    assert!(scenario(&[("model", "gpt2"), ("deepspeed-config", path), ("batch", "4")]).resolve().is_ok());
    for (key, value, field) in [
        ("batch", "8", "train_micro_batch_size_per_gpu"),
        ("zero", "3", "zero_optimization.stage"),
        ("precision", "fp32", "bf16"),
        ("dp", "4", "train_batch_size"),
    ] {
        let e = resolve_err(&[("model", "gpt2"), ("deepspeed-config", path), (key, value)]);
        assert!(e.contains(&format!("--{key} {value}")) && e.contains(field), "{key}: {e}");
    }
    // QLoRA needs 16-bit compute; an fp32 DeepSpeed config cannot slip it through.
    let fp32 = dir.path().join("fp32.json");
    std::fs::write(&fp32, r#"{"train_micro_batch_size_per_gpu": 1}"#).unwrap();
    let e =
        resolve_err(&[("model", "llama-2-7b"), ("finetune", "qlora"), ("deepspeed-config", fp32.to_str().unwrap())]);
    assert!(e.contains("QLoRA"), "{e}");
    // micro-batch × accumulation beyond the bounds: an error, not an overflow.
    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, r#"{"train_micro_batch_size_per_gpu": 18446744073709551615, "gradient_accumulation_steps": 18446744073709551615}"#).unwrap();
    let e = resolve_err(&[("model", "gpt2"), ("deepspeed-config", huge.to_str().unwrap())]);
    assert!(e.contains("train_micro_batch_size_per_gpu"), "{e}");
}

#[test]
fn every_setting_has_a_flag_a_default_or_a_reason() {
    for d in settings() {
        assert!(!d.help.is_empty(), "{}: no help", d.key);
        if d.kind == Kind::Choice {
            assert!(!d.choices.is_empty(), "{}: a choice without choices", d.key);
        }
    }
    // The CLI offers every setting of one plan as a flag, with the table's help.
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(["estimate", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for d in settings().iter().filter(|d| d.group != memplan::scenario::Group::Search) {
        assert!(help.contains(&format!("--{}", d.key)), "--{} missing from estimate --help", d.key);
    }
}

#[test]
fn json_round_trips_and_reads_like_the_flags() {
    let s = scenario(&[("model", "llama-2-7b"), ("batch", "4"), ("tp", "2"), ("sp", "on"), ("gpus", "8xh100-sxm")]);
    let json = serde_json::to_string(&s).unwrap();
    let back: Scenario = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    // Numbers and booleans from JSON mean what their text means on the command line.
    let typed: Scenario =
        serde_json::from_str(r#"{"model":"llama-2-7b","batch":4,"tp":2,"sp":true,"gpus":"8xh100-sxm"}"#).unwrap();
    assert_eq!(typed, s);
    let e = serde_json::from_str::<Scenario>(r#"{"model":"gpt2","batchh":4}"#).unwrap_err().to_string();
    assert!(e.contains("batchh") && e.contains("`batch`"), "{e}");
}

#[test]
fn a_comparison_is_capped_before_its_rows_are_built() {
    // Eight lists of ten values would be 10^8 rows.
    let mut args = vec!["compare", "gpt2"];
    let lists: Vec<String> = ["batch", "seq", "tp", "pp", "dp", "microbatches", "lora-rank", "vpp"]
        .iter()
        .map(|k| format!("{k}=1,2,3,4,5,6,7,8,9,10"))
        .collect();
    for l in &lists {
        args.push("--vary");
        args.push(l);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("100000000") && stderr.contains("4096 rows"), "{stderr}");
}
