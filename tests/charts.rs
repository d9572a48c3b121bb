//! `memplan chart`: every kind as SVG and PNG (produced, non-empty, a real PNG; the SVG carries
//! the labels and series names a reader needs), the largest micro-batch against the estimate,
//! and atomic writes.

use memplan::scenario::Scenario;
use std::path::Path;
use std::process::Command;

fn memplan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_memplan")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Draw `args` to `name.svg` and `name.png` in `dir`; check both, return the SVG text.
fn both(dir: &Path, name: &str, args: &[&str]) -> String {
    let mut svg_text = String::new();
    for ext in ["svg", "png"] {
        let path = dir.join(format!("{name}.{ext}"));
        let mut a = args.to_vec();
        let p = path.to_str().unwrap().to_string();
        a.extend(["-o", &p]);
        let (code, out, err) = memplan(&a);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(out.contains(&format!("wrote {p}")), "{out}");
        let bytes = std::fs::read(&path).unwrap();
        match ext {
            "png" => {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is a PNG");
                // Not a blank image: a 1200-wide chart with text compresses to well over 10 kB.
                assert!(bytes.len() > 10_000, "{name}.png: {} bytes", bytes.len());
            }
            _ => {
                svg_text = String::from_utf8(bytes).unwrap();
                assert!(svg_text.starts_with("<svg") && svg_text.trim_end().ends_with("</svg>"));
            }
        }
    }
    // Nothing but the two charts: no temporary files left behind.
    let stray: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    svg_text
}

fn has(svg: &str, texts: &[&str]) {
    for t in texts {
        assert!(svg.contains(t), "SVG lacks `{t}`");
    }
}

#[test]
fn breakdown_stacks_the_terms_with_gpu_lines() {
    let dir = tempfile::tempdir().unwrap();
    let svg = both(
        dir.path(),
        "breakdown",
        &["chart", "breakdown", "gpt2", "bert-base-uncased", "--gpu", "rtx-4090,a100-80gb"],
    );
    has(
        &svg,
        &[
            "Memory per GPU at the peak of the step",
            "memory per GPU (GiB)",
            "gpt2",
            "bert-base-uncased",
            "weights",
            "gradients",
            "optimizer states",
            "activations (layers)",
            "runtime overheads",
            "rtx-4090 (23.99 GiB)",
            "a100-80gb (80.00 GiB)",
        ],
    );
    // Variants name their settings; --units gb labels the axis in GB.
    let svg = both(dir.path(), "vary", &["chart", "breakdown", "gpt2", "--vary", "batch=1,8", "--units", "gb"]);
    has(&svg, &["gpt2 batch=1", "gpt2 batch=8", "memory per GPU (GB)"]);
}

#[test]
fn sweep_draws_a_line_per_policy_and_marks_where_gpus_run_out() {
    let dir = tempfile::tempdir().unwrap();
    let svg = both(dir.path(), "sweep", &["chart", "sweep", "gpt2", "--gpu", "rtx-4090,a100-40gb"]);
    has(
        &svg,
        &[
            "micro-batch per GPU (sequences of 1024 tokens)",
            "memory per GPU (GiB)",
            "recompute none",
            "recompute selective",
            "recompute full",
            "rtx-4090 (23.99 GiB)",
            "runs out of memory",
            ">\n64\n<",
        ],
    );
    let svg = both(dir.path(), "seq", &["chart", "sweep", "gpt2", "--over", "seq", "--series", "attention"]);
    has(&svg, &["sequence length (tokens)", "attention eager", "attention flash", ">\n1024\n<"]);
    let (code, _, err) = memplan(&["chart", "sweep", "gpt2", "--over", "batch", "--series", "batch", "-o", "x.svg"]);
    assert_eq!(code, 2);
    assert!(err.contains("both vary `batch`"), "{err}");
}

#[test]
fn the_crossing_is_interpolated_between_points() {
    use memplan::api::charts::crossing;
    // 10 → 20 → 40 crosses 30 halfway between the second and third points.
    assert_eq!(crossing(&[Some(10.0), Some(20.0), Some(40.0)], 30.0), Some(1.5));
    assert_eq!(crossing(&[Some(10.0), Some(20.0)], 30.0), None);
    // Already over at the first point: no crossing to mark.
    assert_eq!(crossing(&[Some(50.0), Some(60.0)], 30.0), None);
}

#[test]
fn max_batch_is_the_largest_micro_batch_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let svg = both(dir.path(), "max-batch", &["chart", "max-batch", "gpt2", "llama-2-7b", "--gpu", "t4,a100-80gb"]);
    has(
        &svg,
        &["Largest micro-batch per GPU", "largest micro-batch that fits", "t4 (15.00 GiB)", "gpt2", "llama-2-7b"],
    );
    // LLaMA-2-7B's model states alone (16 B × 6.74e9 ≈ 100 GiB) exceed both GPUs.
    assert!(svg.contains("does not fit"));

    // The search against the estimate itself: b fits, b + 1 does not.
    let mut s = Scenario::default();
    s.set_model("gpt2").unwrap();
    let ev = s.resolve().unwrap();
    let cap = 40_000_000_000u64;
    let b = ev.max_micro_batch(cap, 1 << 16);
    let total = |b: u64| ev.total_at_micro_batch(b).unwrap();
    assert!(b > 1 && total(b) <= cap && total(b + 1) > cap, "b = {b}");
    // Below the model states (16 B per parameter for mixed-precision Adam) nothing fits.
    assert_eq!(ev.max_micro_batch(16 * 124_439_808, 1 << 16), 0);
    // The limit caps the search.
    assert_eq!(ev.max_micro_batch(u64::MAX / 4, 100), 100);
}

#[test]
fn plans_show_step_time_against_memory() {
    let dir = tempfile::tempdir().unwrap();
    let svg = both(
        dir.path(),
        "plans",
        &["chart", "plans", "llama-2-7b", "--gpus", "8xh100-sxm", "--global-batch", "512", "--top", "20"],
    );
    has(
        &svg,
        &[
            "Planner: step time against memory per GPU",
            "step time (s)",
            "memory per GPU, worst rank (GiB)",
            "usable on h100-sxm",
            "on 8 × h100-sxm",
            "#1 ",
            // Each point is labelled with its plan (the ranking itself is the step-time model's).
            "dp ",
        ],
    );
}

#[test]
fn bench_compares_estimate_and_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let bench = dir.path().join("bench.json");
    let (code, _, err) =
        memplan(&["bench", "matmul", "--m", "256", "--n", "128", "--k", "64", "--mock", "-o", bench.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = memplan(&["validate", "--model", "gpt2", "--seq", "128", "--mock", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let validate = dir.path().join("validate.json");
    std::fs::write(&validate, out).unwrap();
    let charts = dir.path().join("charts");
    std::fs::create_dir(&charts).unwrap();
    let svg = both(&charts, "bench", &["chart", "bench", bench.to_str().unwrap(), validate.to_str().unwrap()]);
    has(
        &svg,
        &[
            "Measured against estimated",
            "estimate",
            "measured",
            "matmul fp32 256×128×64",
            "gpt2: saved activations per layer",
            "gpt2: layer forward",
            "throughput (TFLOP/s)",
            "bytes (MiB)",
        ],
    );
    let not_bench = dir.path().join("x.json");
    std::fs::write(&not_bench, "{\"a\": 1}").unwrap();
    let (code, _, err) = memplan(&["chart", "bench", not_bench.to_str().unwrap(), "-o", "y.svg"]);
    assert_eq!(code, 2);
    assert!(err.contains("x.json") && err.contains("neither"), "{err}");
}

#[test]
fn unwritable_paths_and_unknown_formats_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    // A file where a directory should be: root can write anywhere else.
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    for ext in ["svg", "png"] {
        let out = file.join(format!("chart.{ext}"));
        let (code, _, err) = memplan(&["chart", "breakdown", "gpt2", "-o", out.to_str().unwrap()]);
        assert_eq!(code, 2);
        assert!(err.contains("cannot write") && err.contains(&format!("chart.{ext}")), "{err}");
    }
    let missing = dir.path().join("no/such/dir/chart.png");
    let (code, _, err) = memplan(&["chart", "breakdown", "gpt2", "-o", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
    let (code, _, err) = memplan(&["chart", "breakdown", "gpt2", "-o", dir.path().join("c.jpg").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("c.jpg") && err.contains(".svg or .png"), "{err}");
    // Only the file we made is there: nothing half-written.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names, ["file"]);
}

#[test]
fn an_existing_chart_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.svg");
    std::fs::write(&path, "old").unwrap();
    let (code, _, _) = memplan(&["chart", "breakdown", "gpt2", "-o", path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(std::fs::read_to_string(&path).unwrap().starts_with("<svg"));
}
