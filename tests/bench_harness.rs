//! The harness without a GPU: statistics, reports, JSON, tables and the commands, on the mock
//! backend (scripted times, planned buffers), so every number here is deterministic.

use clap::Parser;
use memplan::bench::backend::{Backend, MockBackend, RunOptions};
use memplan::bench::cli::{self, BenchArgs, ValidateArgs};
use memplan::bench::kernels::{AttentionKernel, AttentionShape, MatmulShape, MatmulVariant};
use memplan::bench::report::{BenchFile, SCHEMA_VERSION};
use memplan::bench::timing::{measure, MockRunner, Plan, TimingMethod};
use memplan::bench::workload::{self, CaseSpec};
use memplan::bench::Precision;

#[derive(Parser)]
struct Bench {
    #[command(flatten)]
    args: BenchArgs,
}

#[derive(Parser)]
struct Validate {
    #[command(flatten)]
    args: ValidateArgs,
}

fn bench(argv: &str) -> (i32, String) {
    let parsed = Bench::try_parse_from(std::iter::once("bench").chain(argv.split_whitespace()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let code = cli::run_bench_with(&mut MockBackend::new(), &parsed.args, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn measure_warms_up_then_times_every_rep() {
    let mut r = MockRunner::new(vec![3.0, 1.0, 2.0]);
    let mut progress = Vec::new();
    let s = measure(&mut r, Plan { warmup: 2, reps: 5 }, &mut |d, t, _| progress.push((d, t))).unwrap();
    assert_eq!(r.calls, 7);
    // warm-up consumed 3.0, 1.0; timed: 2.0, 3.0, 1.0, 2.0, 3.0
    assert_eq!((s.samples, s.median, s.min, s.max), (5, 2.0, 1.0, 3.0));
    assert_eq!(progress.first(), Some(&(0, 5)));
    assert_eq!(progress.last(), Some(&(5, 5)));
    assert!(measure(&mut r, Plan { warmup: 0, reps: 0 }, &mut |_, _, _| {}).is_err());
}

#[test]
fn mock_reports_are_deterministic() {
    let case = CaseSpec::Matmul {
        shape: MatmulShape::new(1000, 1000, 500),
        precision: Precision::Fp32,
        variant: MatmulVariant::Auto,
    };
    let opts = RunOptions { plan: Plan { warmup: 0, reps: 5 }, ..RunOptions::default() };
    let a = MockBackend::new().run(&case, &opts, &mut |_, _, _| {}).unwrap();
    let b = MockBackend::new().run(&case, &opts, &mut |_, _, _| {}).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.flops, 1e9);
    assert_eq!(a.stats.median, 1e-3); // 1 TFLOP/s nominal
    assert!((a.tflops - 1.0).abs() < 1e-9);
    assert_eq!(a.timing, TimingMethod::Mock);
    assert_eq!(a.memory.harness.total_bytes, (1000 * 500 + 500 * 1000 + 1000 * 1000) * 4);
    assert_eq!(a.bytes_moved, 8e6);
}

#[test]
fn planned_bytes_follow_the_kernel() {
    let shape = AttentionShape { batch: 2, heads: 8, kv_heads: 2, seq: 1024, head_dim: 64, causal: true };
    let bytes = |kernel| {
        workload::plan(&CaseSpec::Attention { shape, precision: Precision::Fp16, kernel })
            .iter()
            .map(|b| b.bytes)
            .sum::<u64>()
    };
    let q = 2 * 1024 * 8 * 64 * 2;
    let kv = 2 * 1024 * 2 * 64 * 2;
    assert_eq!(bytes(AttentionKernel::Flash), 2 * q + 2 * kv + 2 * 8 * 1024 * 4);
    assert_eq!(bytes(AttentionKernel::Naive), 2 * q + 2 * kv + 2 * 8 * 1024 * 1024 * 2);
}

#[test]
fn matmul_table_and_json() {
    let (code, table) = bench("matmul --m 256 --n 128 --k 64 --reps 5 --warmup 1 --mock");
    assert_eq!(code, 0);
    insta::assert_snapshot!("matmul_table", table);
    let (_, json) = bench("matmul --m 256 --n 128 --k 64 --reps 5 --warmup 1 --format json --mock");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema_version"], SCHEMA_VERSION);
    assert_eq!(v["timing"], "mock");
    assert_eq!(v["results"][0]["shape"], serde_json::json!({"m": 256, "n": 128, "k": 64}));
    assert_eq!(v["results"][0]["stats"]["samples"], 5);
    assert_eq!(v["achieved"][0]["kernel"], "matmul");
}

#[test]
fn attention_memory_curve_over_seq_and_kernels() {
    let (code, out) = bench(
        "attention --heads 4 --head-dim 32 --seq 128,256 --kernel naive,flash --causal --reps 3 --format json --mock",
    );
    assert_eq!(code, 0);
    let file: BenchFile = serde_json::from_str(&out).unwrap();
    let mem: Vec<(String, u64, u64)> = file
        .results
        .iter()
        .map(|r| (r.variant.clone(), r.shape["seq"].as_u64().unwrap(), r.memory.harness.total_bytes))
        .collect();
    assert_eq!(mem.len(), 4);
    // naive grows with s², flash with s
    let growth = |kernel: &str| {
        let v: Vec<u64> = mem.iter().filter(|m| m.0 == kernel).map(|m| m.2).collect();
        v[1] as f64 / v[0] as f64
    };
    assert!(growth("naive") > 2.9, "{mem:?}");
    assert!((growth("flash") - 2.0).abs() < 1e-9, "{mem:?}");
}

#[test]
fn bad_values_are_errors_naming_the_value() {
    let parsed = Bench::try_parse_from(["bench", "matmul", "--m", "0", "--n", "8", "--k", "8", "--mock"]).unwrap();
    let e = cli::run_bench_with(&mut MockBackend::new(), &parsed.args, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "invalid --m: `0`");
    let parsed =
        Bench::try_parse_from(["bench", "matmul", "--m", "8", "--n", "8", "--k", "8", "--dtype", "bf16", "--mock"])
            .unwrap();
    let e = cli::run_bench_with(&mut MockBackend::new(), &parsed.args, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "invalid --dtype: `bf16`");
    assert!(e.hint().unwrap().contains("fp32 or fp16"));
    let parsed = Bench::try_parse_from([
        "bench",
        "attention",
        "--heads",
        "6",
        "--kv-heads",
        "4",
        "--seq",
        "8",
        "--head-dim",
        "8",
        "--mock",
    ])
    .unwrap();
    let e = cli::run_bench_with(&mut MockBackend::new(), &parsed.args, &mut Vec::new()).unwrap_err();
    assert_eq!(e.to_string(), "invalid --kv-heads: `4`");
    let parsed = Bench::try_parse_from(["bench", "layer", "--model", "gpt3-mystery", "--seq", "8", "--mock"]).unwrap();
    let e = cli::run_bench_with(&mut MockBackend::new(), &parsed.args, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("gpt3-mystery"), "{e}");
}

#[test]
fn suite_writes_the_calibration_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.json");
    let (code, out) = bench(&format!("suite --reps 2 --warmup 0 -o {} --mock", path.display()));
    assert_eq!(code, 0);
    assert!(out.contains(&format!("wrote {}", path.display())), "{out}");
    let file = BenchFile::load(&path).unwrap();
    assert_eq!(file.timing, TimingMethod::Mock);
    assert!(file.achieved_tflops("matmul", "fp32").is_some());
    assert!(file.achieved_tflops("matmul", "fp16").is_some());
    assert!(file.achieved_tflops("attention", "fp32").is_some());
    // The lookup `memplan plan --calibration` does.
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let fp32 = v.pointer("/calibration/matmul_tflops/fp32").and_then(|x| x.as_f64());
    assert_eq!(fp32, file.achieved_tflops("matmul", "fp32"));
    assert!(v.pointer("/calibration/layer_tflops/fp16").is_some());
    // Only bench.json remains: the temporary file was renamed over it.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("bench.json")]);
    // CPU adapters get the small set.
    assert!(file.results.iter().all(|r| r.shape.get("m").is_none_or(|m| m.as_u64() <= Some(512))));
}

#[test]
fn calibration_file_with_another_schema_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    let (_, json) = bench("matmul --m 8 --n 8 --k 8 --reps 1 --format json --mock");
    std::fs::write(&path, json.replace("\"schema_version\": 1", "\"schema_version\": 99")).unwrap();
    let e = BenchFile::load(&path).unwrap_err();
    assert!(e.to_string().contains("schema version 99"), "{e}");
}

fn validate_on(backend: &mut MockBackend, argv: &str) -> (i32, String) {
    let parsed = Validate::try_parse_from(std::iter::once("validate").chain(argv.split_whitespace()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let code = cli::run_validate_with(backend, &parsed.args, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

fn validate(argv: &str) -> (i32, String) {
    validate_on(&mut MockBackend::new(), argv)
}

#[test]
fn validate_without_a_device_allocator_measures_nothing_and_decides_nothing() {
    // The mock has no allocator report and scripted times: no row may show a measurement, and
    // even a zero tolerance cannot fail, because nothing was measured.
    for kernel in ["flash", "naive"] {
        for dtype in ["fp32", "fp16"] {
            let (code, json) = validate(&format!(
                "--model gpt2 --batch 2 --seq 128 --kernel {kernel} --dtype {dtype} --reps 2 --tolerance 0 --format json --mock"
            ));
            assert_eq!(code, 0, "{json}");
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(v["verdict"], "not-measured");
            for row in v["rows"].as_array().unwrap() {
                assert!(row["measured"].is_null(), "{row}");
                assert_eq!(row["checked"], false, "{row}");
            }
            let saved = &v["rows"][0];
            assert_eq!(saved["quantity"], "saved activations per layer");
            assert_eq!(saved["estimate_source"], "analytic model");
            assert!(saved["estimate"].as_f64().unwrap() > 0.0);
            assert_eq!(
                saved["measured_source"],
                "not measurable on this adapter: the mock backend gives no allocator report"
            );
        }
    }
    let (code, table) = validate("--model gpt2 --batch 1 --seq 64 --reps 2 --mock");
    assert_eq!(code, 0);
    assert!(table.contains("result: nothing checked"), "{table}");
    insta::assert_snapshot!("validate_gpt2_table", table);
}

#[test]
fn validate_holds_device_allocations_to_the_estimate() {
    // A scripted allocator that rounds every buffer up to 4 KiB pages stands in for a driver.
    // GPT-2 layer, fp32, flash, batch 1 × seq 64: tokens t = 64, hidden 768, ffn 3072, 12 heads.
    // Saved buffers (bench::workload::layer_plan): x, norm 1 out, q, k, v, attn out, x1, norm 2
    // out: 8 × t·768·4 = 8 × 196,608; two LayerNorm mean/rstd 2·t·4 = 512 → 4,096 each; lse
    // 12·64·4 = 3,072 → 4,096; act in, the three gelu_new intermediates and act out: 5 × t·3072·4
    // = 5 × 786,432. All but the small ones are multiples of 4 KiB.
    let page = 4096u64;
    let expected = 8 * 196_608 + 3 * page + 5 * 786_432;
    let mut backend = MockBackend { allocator_alignment: Some(page), ..MockBackend::new() };
    let (code, json) = validate_on(&mut backend, "--model gpt2 --batch 1 --seq 64 --reps 2 --format json --mock");
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["verdict"], "within-tolerance");
    let saved = &v["rows"][0];
    assert_eq!(saved["measured"].as_f64().unwrap(), expected as f64);
    assert_eq!(saved["measured_source"], "scripted allocator (mock backend)");
    assert_eq!(saved["checked"], true);
    // The ledger: the same tensors at their exact sizes (4 KiB pages cost 3·4096 − 2·512 − 3072).
    let estimate = saved["estimate"].as_f64().unwrap();
    assert_eq!(expected as f64 - estimate, (3 * page - 2 * 512 - 3072) as f64);
    // A zero tolerance trips on the page rounding and the missing biases: exit 1.
    let (code, table) = validate_on(&mut backend, "--model gpt2 --seq 64 --reps 2 --tolerance 0 --mock");
    assert_eq!(code, 1);
    assert!(table.contains("OVER tolerance"), "{table}");
}

#[test]
fn adapter_names_match_the_gpu_presets() {
    use memplan::bench::peak::preset_for;
    let name = |adapter: &str| preset_for(adapter).map(|p| p.name);
    for (adapter, preset) in [
        ("NVIDIA H200", Some("h200")),
        ("NVIDIA H100 80GB HBM3", Some("h100-sxm")),
        ("NVIDIA H100 PCIe", Some("h100-pcie")),
        ("NVIDIA A100-SXM4-80GB", Some("a100-80gb")),
        ("NVIDIA A100-PCIE-40GB", Some("a100-40gb")),
        ("NVIDIA A10G", Some("a10g")),
        ("NVIDIA L4", Some("l4")),
        ("NVIDIA L40S", Some("l40s")),
        ("Tesla V100-SXM2-32GB", Some("v100-32gb")),
        ("NVIDIA GeForce RTX 3090", Some("rtx-3090")),
        ("AMD Instinct MI300X", Some("mi300x")),
        ("llvmpipe (LLVM 15.0.6, 256 bits)", None),
        ("Intel(R) UHD Graphics 630", None),
    ] {
        assert_eq!(name(adapter).as_deref(), preset, "{adapter}");
    }
}

#[test]
fn fraction_of_peak_and_throughput_estimate_with_a_matched_preset() {
    let h200 = memplan::hw::GpuSpec::preset("h200").unwrap();
    let mut backend = MockBackend { preset: Some(h200.clone()), ..MockBackend::new() };
    let case = CaseSpec::Matmul {
        shape: MatmulShape::new(512, 512, 512),
        precision: Precision::Fp32,
        variant: MatmulVariant::Auto,
    };
    let r = backend.run(&case, &RunOptions::default(), &mut |_, _, _| {}).unwrap();
    let peak = r.peak.unwrap();
    assert_eq!(peak.preset, "h200");
    assert_eq!(peak.dtype, "fp32");
    assert!((peak.fraction_of_peak_flops - 1e12 / h200.peak_flops.fp32).abs() < 1e-9);
    // validate: the time row now has an estimate; it only counts with --check-throughput.
    let parsed = Validate::try_parse_from([
        "validate", "--model", "gpt2", "--seq", "64", "--reps", "2", "--format", "json", "--mock",
    ])
    .unwrap();
    let mut out = Vec::new();
    let code = cli::run_validate_with(&mut backend, &parsed.args, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let time = &v["rows"][2];
    assert_eq!(time["quantity"], "layer forward time");
    assert!(time["estimate"].as_f64().unwrap() > 0.0);
    assert_eq!(time["checked"], false);
    assert_eq!(code, 0);
    // Scripted times are not a measurement: --check-throughput has nothing to hold.
    let parsed = Validate::try_parse_from([
        "validate",
        "--model",
        "gpt2",
        "--seq",
        "64",
        "--reps",
        "2",
        "--check-throughput",
        "--mock",
    ])
    .unwrap();
    let mut out = Vec::new();
    let code = cli::run_validate_with(&mut backend, &parsed.args, &mut out).unwrap();
    let table = String::from_utf8(out).unwrap();
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("not measured: the mock backend's times are scripted"), "{table}");
}
