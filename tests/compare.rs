//! `memplan compare`: rows, settings, the four formats (snapshots), budgets and baselines.
//! Expected numbers come from the precision recipes (bytes per parameter) and the published
//! parameter counts, not from the program's output; the snapshots are the reviewed exception.

use serde_json::Value;
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

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let (code, out, err) = memplan(&a);
    assert!(code == 0 || code == 1, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn row<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["rows"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no row {name}: {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

/// GPT-2 small: 124,439,808 parameters (GPT2LMHeadModel.num_parameters()); BERT-base uncased:
/// 109,482,240 (BertModel with pooler, as the preset's source states).
const GPT2: u64 = 124_439_808;

#[test]
fn rows_follow_the_precision_recipes() {
    let v = json(&["compare", "gpt2", "--precision", "mixed-bf16"]);
    let r = row(&v, "gpt2");
    assert_eq!(u(&r["parameters"]), GPT2);
    // ZeRO paper §3.1: 2 + 2 + 12 bytes per parameter.
    assert_eq!(u(&r["weights_bytes"]), 2 * GPT2);
    assert_eq!(u(&r["gradients_bytes"]), 2 * GPT2);
    assert_eq!(u(&r["optimizer_states_bytes"]), 12 * GPT2);
    // total = live peak + CUDA context (512 MiB) + cuBLAS workspace (32 MiB) + 5 % of the peak.
    let peak = u(&r["peak_allocated_bytes"]);
    let frag = (peak as f64 * 0.05).round() as u64;
    assert_eq!(u(&r["total_bytes"]), peak + (512 << 20) + (32 << 20) + frag);
    assert_eq!(u(&r["runtime_overhead_bytes"]), (512 << 20) + (32 << 20) + frag);
    // Without --gpu every preset is checked.
    assert_eq!(r["fits"].as_array().unwrap().len(), 16);
}

#[test]
fn vary_makes_a_row_per_value_and_activations_scale_with_the_batch() {
    let v = json(&["compare", "gpt2", "--vary", "batch=1,2,4", "--gpu", "rtx-4090"]);
    let names: Vec<&str> = v["rows"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["gpt2 batch=1", "gpt2 batch=2", "gpt2 batch=4"]);
    let act = |n: &str| u(&row(&v, n)["activations_bytes"]);
    // Every saved activation of a layer has a batch dimension.
    assert_eq!(act("gpt2 batch=2"), 2 * act("gpt2 batch=1"));
    assert_eq!(act("gpt2 batch=4"), 4 * act("gpt2 batch=1"));
    assert_eq!(row(&v, "gpt2 batch=4")["settings"]["batch"], "4");
    // Model states do not depend on the batch.
    assert_eq!(u(&row(&v, "gpt2 batch=4")["weights_bytes"]), 2 * GPT2);
}

#[test]
fn two_vary_flags_give_the_product_and_variants_shard_as_zero_says() {
    let v = json(&["compare", "gpt2", "--vary", "batch=1,2", "--vary", "recompute=none,full"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 4);
    assert!(v["rows"].as_array().unwrap().iter().any(|r| r["name"] == "gpt2 batch=2 recompute=full"));

    let v = json(&["compare", "gpt2", "--variant", "dp=8,zero=1", "--variant", "dp=8,zero=3"]);
    let z1 = row(&v, "gpt2 dp=8 zero=1");
    let z3 = row(&v, "gpt2 dp=8 zero=3");
    // ZeRO-1 shards the 12 optimizer bytes over 8 ranks; ZeRO-3 also the 2 + 2 bytes.
    assert_eq!(u(&z1["optimizer_states_bytes"]), 12 * GPT2 / 8);
    assert_eq!(u(&z1["weights_bytes"]), 2 * GPT2);
    assert_eq!(u(&z3["weights_bytes"]), 2 * GPT2 / 8);
    assert_eq!(u(&z3["gradients_bytes"]), 2 * GPT2 / 8);
    assert_eq!(z3["plan"], "dp 8 · zero 3");
}

#[test]
fn settings_errors_name_the_key_and_the_valid_values() {
    let (code, _, err) = memplan(&["compare", "gpt2", "--set", "bach=2"]);
    assert_eq!(code, 2);
    assert!(err.contains("`bach`") && err.contains("`batch`?"), "{err}");
    let (code, _, err) = memplan(&["compare", "gpt2", "--vary", "recompute=none,sometimes"]);
    assert_eq!(code, 2);
    assert!(err.contains("`sometimes`") && err.contains("none, selective, full"), "{err}");
    let (code, _, err) = memplan(&["compare", "gpt2", "--set", "batch"]);
    assert_eq!(code, 2);
    assert!(err.contains("key=value"), "{err}");
}

#[test]
fn csv_has_a_header_and_one_line_per_row_in_bytes() {
    let (code, out, _) = memplan(&["compare", "gpt2", "bert-base-uncased", "--gpu", "a100-80gb", "--format", "csv"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[0], "name");
    assert!(header.contains(&"total_bytes") && header.contains(&"fits_a100-80gb"));
    let gpt2: Vec<&str> = lines[1].split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    assert_eq!(gpt2[col("weights_bytes")], (2 * GPT2).to_string());
    assert_eq!(gpt2[col("fits_a100-80gb")], "yes");
}

// Snapshots: a change in the numbers or the layout is a reviewed change.
const SNAPSHOT_ARGS: &[&str] =
    &["compare", "gpt2", "bert-base-uncased", "--vary", "batch=1,8", "--gpu", "rtx-4090,a100-80gb"];

fn snapshot_run(format: &str) -> String {
    let mut a = SNAPSHOT_ARGS.to_vec();
    a.extend(["--format", format]);
    let (code, out, err) = memplan(&a);
    assert_eq!(code, 0, "{err}");
    out
}

#[test]
fn snapshot_table() {
    insta::assert_snapshot!("compare_table", snapshot_run("table"));
}

#[test]
fn snapshot_markdown() {
    insta::assert_snapshot!("compare_markdown", snapshot_run("markdown"));
}

#[test]
fn snapshot_json() {
    let v: Value = serde_json::from_str(&snapshot_run("json")).unwrap();
    insta::assert_json_snapshot!("compare_json", v);
}

// ---------------------------------------------------------------------------------------------
// budgets

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn the_example_budget_holds() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/budget.toml");
    let (code, out, err) = memplan(&["compare", "--budget", path]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("all 8 limits of 4 scenarios hold"), "{out}");
}

#[test]
fn a_broken_budget_lists_what_broke_it_and_by_how_much() {
    let dir = tempfile::tempdir().unwrap();
    // Model states alone: GPT-2 mixed precision Adam, 16 × 124,439,808 = 1,991,036,928 bytes
    // (1.854 GiB), so a 1.8 GiB total cannot hold. LLaMA-2-7B's 16 × 6.74e9 bytes (about
    // 100 GiB) of states cannot fit an 80 GiB A100. GPT-2 at 16 GiB holds.
    let budget = write(
        dir.path(),
        "budget.toml",
        r#"
[[scenario]]
name = "tight"
model = "gpt2"
max_total = "1.8GiB"

[[scenario]]
name = "roomy"
model = "gpt2"
max_total = "16GiB"

[[scenario]]
name = "7b on one a100"
model = "llama-2-7b"
must_fit = ["a100-80gb"]
"#,
    );
    let (code, out, _) = memplan(&["compare", "--budget", &budget]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 of 3 limits broken in 2 of 3 scenarios"), "{out}");
    assert!(out.contains("OVER tight: total"), "{out}");
    assert!(out.contains("OVER 7b on one a100: total"), "{out}");
    assert!(!out.contains("OVER roomy"), "{out}");

    let v = json(&["compare", "--budget", &budget]);
    let checks = v["budget"]["checks"].as_array().unwrap();
    let tight = checks.iter().find(|c| c["scenario"] == "tight").unwrap();
    let allowed = (1.8 * (1u64 << 30) as f64).round() as u64;
    assert_eq!(u(&tight["allowed_bytes"]), allowed);
    assert!(u(&tight["actual_bytes"]) > 16 * GPT2);
    assert_eq!(u(&tight["over_bytes"]), u(&tight["actual_bytes"]) - allowed);
    assert_eq!(u(&tight["actual_bytes"]), u(&row(&v, "tight")["total_bytes"]));
    let a100 = checks.iter().find(|c| c["scenario"] == "7b on one a100").unwrap();
    assert_eq!(a100["gpu"], "a100-80gb");
    assert_eq!(a100["passed"], false);
    assert!(u(&a100["actual_bytes"]) > 16 * 6_738_415_616);
    assert_eq!(v["budget"]["passed"], false);
}

#[test]
fn budget_errors_name_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nset = { bach = 2 }\nmax_total = \"1GiB\"\n", ":4: field `scenario[0].set.bach`"),
        ("[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nmax_total = \"lots\"\n", ":4: field `scenario[0].max_total`"),
        ("[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nmust_fit = [\"h100\", \"a100-80gbb\"]\n", ":4: field `scenario[0].must_fit`"),
        ("[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nmax_totl = \"1GiB\"\n", "field `max_totl`"),
        ("[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nmax_total = \"1GiB\"\n[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nmax_total = \"1GiB\"\n", ":6: field `scenario[1].name`"),
        ("[[scenario]]\nname = \"a\"\nmax_total = \"1GiB\"\n", "names no model"),
        ("[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\n", "has no limit"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("b{i}.toml"), text);
        let (code, _, err) = memplan(&["compare", "--budget", &path]);
        assert_eq!(code, 2, "{text}");
        assert!(err.contains(&format!("b{i}.toml")) && err.contains(expected), "{expected}: {err}");
    }
    let (code, _, err) = memplan(&[
        "compare",
        "gpt2",
        "--budget",
        &write(dir.path(), "ok.toml", "[[scenario]]\nname = \"a\"\nmodel = \"gpt2\"\nmax_total = \"9GiB\"\n"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("--budget takes its scenarios from the file"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// baselines

#[test]
fn baseline_shows_every_change_and_fails_over_max_growth() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["compare", "gpt2", "bert-base-uncased", "--gpu", "a100-80gb"];
    let mut now = json(&args);
    // The same result as baseline: every change is zero.
    let same = write(dir.path(), "same.json", &now.to_string());
    let mut a = args.to_vec();
    a.extend(["--baseline", &same, "--max-growth", "0%"]);
    let (code, out, err) = memplan(&a);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("none grew over the limit"), "{out}");

    // A baseline whose GPT-2 total was 90 % of today's: today is +11.1 % (1/0.9 − 1).
    let total = u(&row(&now, "gpt2")["total_bytes"]);
    let old_total = total * 9 / 10;
    let rows = now["rows"].as_array_mut().unwrap();
    rows.iter_mut().find(|r| r["name"] == "gpt2").unwrap()["total_bytes"] = old_total.into();
    // ... and a row that no longer exists.
    let mut gone = rows[1].clone();
    gone["name"] = "t5-small".into();
    rows.push(gone);
    let old = write(dir.path(), "old.json", &now.to_string());

    let mut a = args.to_vec();
    a.extend(["--baseline", &old, "--max-growth", "5%", "--format", "json"]);
    let (code, out, _) = memplan(&a);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    let changes = v["baseline"]["changes"].as_array().unwrap();
    let c = changes.iter().find(|c| c["scenario"] == "gpt2" && c["term"] == "total_bytes").unwrap();
    assert_eq!(u(&c["baseline_bytes"]), old_total);
    assert_eq!(c["delta_bytes"].as_i64().unwrap(), (total - old_total) as i64);
    let pct = c["change_percent"].as_f64().unwrap();
    assert!((pct - (total as f64 / old_total as f64 - 1.0) * 100.0).abs() < 1e-9 && (pct - 11.11).abs() < 0.01);
    assert_eq!(c["over_max_growth"], true);
    // Every other number is unchanged and within the limit.
    assert_eq!(changes.iter().filter(|c| c["over_max_growth"] == true).count(), 1);
    assert_eq!(v["baseline"]["removed"], serde_json::json!(["t5-small"]));

    let mut a = args.to_vec();
    a.extend(["--baseline", &old, "--max-growth", "12%"]);
    let (code, out, _) = memplan(&a);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("+11.1%") && out.contains("in the baseline only: t5-small"), "{out}");

    let mut a = args.to_vec();
    a.extend(["--baseline", &old, "--max-growth", "5%", "--format", "markdown"]);
    let (code, out, _) = memplan(&a);
    assert_eq!(code, 1);
    assert!(out.contains("❌ Change against the baseline") && out.contains("| gpt2 | total |"), "{out}");
}

#[test]
fn a_baseline_that_is_not_a_compare_result_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, est, _) = memplan(&["estimate", "--model", "gpt2", "--format", "json"]);
    let path = write(dir.path(), "estimate.json", &est);
    let (code, _, err) = memplan(&["compare", "gpt2", "--baseline", &path]);
    assert_eq!(code, 2);
    assert!(err.contains("estimate.json") && err.contains("not a `memplan compare --format json` result"), "{err}");
    let (code, _, err) = memplan(&["compare", "gpt2", "--max-growth", "5%"]);
    assert_eq!(code, 2);
    assert!(err.contains("--baseline"), "{err}");
}

/// The README's GitHub Actions snippet runs these commands: they must parse and pass today.
#[test]
fn the_readme_ci_commands_run() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("# memplan-ci-begin").expect("README has the CI snippet");
    let end = readme.find("# memplan-ci-end").unwrap();
    let snippet = &readme[start..end];
    assert!(snippet.contains("memplan compare --budget examples/budget.toml"));
    let dir = tempfile::tempdir().unwrap();
    let budget = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/budget.toml");
    let base = dir.path().join("memplan-baseline.json");
    let (code, out, _) = memplan(&["compare", "--budget", budget, "--format", "json"]);
    assert_eq!(code, 0);
    std::fs::write(&base, out).unwrap();
    let (code, out, err) = memplan(&[
        "compare",
        "--budget",
        budget,
        "--baseline",
        base.to_str().unwrap(),
        "--max-growth",
        "5%",
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("✅ Budget") && out.contains("✅ Change against the baseline"), "{out}");
}
