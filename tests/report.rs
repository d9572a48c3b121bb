//! `memplan report`, user presets (`--preset-dir`, `MEMPLAN_PRESET_DIR`) and shell completions.

use std::path::Path;
use std::process::Command;

fn memplan_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_memplan"));
    cmd.args(args).env_remove("MEMPLAN_PRESET_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn memplan(args: &[&str]) -> (i32, String, String) {
    memplan_env(args, &[])
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn html_report_is_one_file_with_every_section_and_chart_inline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    let (code, stdout, err) =
        memplan(&["report", "gpt2", "--gpus", "rtx-4090,t4,8xa100-80gb", "--global-batch", "256", "-o", p(&out)]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("wrote"), "{stdout}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for section in
        ["Assumptions", "Memory per GPU", "GPUs that fit", "Best plans on 8 × a100-80gb", "How the numbers are made"]
    {
        assert!(html.contains(&format!("<h2>{section}</h2>")), "no section {section}");
    }
    // Breakdown, sweep, max-batch and plans, embedded (no XML declaration, no external files).
    assert_eq!(html.matches("<svg ").count(), 4);
    assert!(!html.contains("<?xml") && !html.contains("src=\""));
    // Mixed-precision Adam on GPT-2: weights 2 B × 124,439,808 = 248,879,616 B = 0.23 GiB;
    // optimizer states 12 B × 124,439,808 = 1,493,277,696 B = 1.39 GiB.
    assert!(html.contains("<td>weights</td><td class=\"num\">0.23 GiB</td>"), "weights row");
    assert!(html.contains("<td>optimizer states</td><td class=\"num\">1.39 GiB</td>"), "optimizer row");
    // The GPUs listed, in memory order, and the cluster's GPU.
    let (t4, rtx, a100) = (
        html.find("<td>t4</td>").unwrap(),
        html.find("<td>rtx-4090</td>").unwrap(),
        html.find("<td>a100-80gb</td>").unwrap(),
    );
    assert!(t4 < rtx && rtx < a100);
    assert!(html.contains("global batch 256 sequences × 1024 tokens"));
    // Assumptions are stated.
    assert!(html.contains("precision mixed-bf16"));
}

#[test]
fn markdown_report_links_chart_files_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cap.md");
    let (code, _, err) = memplan(&["report", "bert-base-uncased", "--gpus", "t4", "-o", p(&out)]);
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(&out).unwrap();
    assert!(md.starts_with("# Capacity report: bert-base-uncased"));
    for id in ["breakdown", "sweep", "max-batch", "plans"] {
        let file = format!("cap-{id}.svg");
        assert!(md.contains(&format!("]({file})")), "no link to {file}");
        let svg = std::fs::read_to_string(dir.path().join(&file)).unwrap();
        assert!(svg.starts_with("<svg") && svg.len() > 2000, "{file}");
    }
    // Without a cluster in --gpus, plans run on one node of the first GPU listed.
    assert!(md.contains("## Best plans on 8 × t4"));

    let (code, _, err) = memplan(&[
        "report",
        "gpt2",
        "--phase",
        "inference",
        "--gpus",
        "t4",
        "--charts",
        "png",
        "-o",
        p(&dir.path().join("inf.md")),
    ]);
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(dir.path().join("inf.md")).unwrap();
    // Inference: no training plans, and the KV cache is a line of the breakdown.
    assert!(!md.contains("## Best plans") && md.contains("| KV cache |"));
    let png = std::fs::read(dir.path().join("inf-sweep.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
}

#[test]
fn report_output_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = memplan(&["report", "gpt2", "-o", p(&dir.path().join("r.pdf"))]);
    assert_eq!(code, 2);
    assert!(err.contains("r.pdf") && err.contains(".html or .md"), "{err}");
    let (code, _, err) = memplan(&["report", "gpt2", "-o", p(&dir.path().join("missing/r.html"))]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot write") && err.contains("r.html"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing half-written");
}

// ---------------------------------------------------------------------------------------------
// user presets

fn preset_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::create_dir_all(dir.path().join("gpus")).unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    // A GPT-2 with 6 layers: 124,439,808 − 6 × 7,087,872 (one GPT-2 block) = 81,912,576 parameters.
    let gpt2 = std::fs::read_to_string(format!("{root}/presets/models/gpt2.toml")).unwrap();
    let small = gpt2.replace("name = \"gpt2\"", "name = \"gpt2-6l\"").replace("layers = 12 ", "layers = 6 ");
    assert_ne!(small, gpt2);
    std::fs::write(dir.path().join("models/gpt2-6l.toml"), small).unwrap();
    // A 12 GiB GPU.
    let h100 = std::fs::read_to_string(format!("{root}/presets/gpus/h100-sxm.toml")).unwrap();
    let lines: Vec<String> = h100
        .lines()
        .map(|l| {
            if l.starts_with("memory_bytes") {
                "memory_bytes = 12884901888".to_string()
            } else if l.starts_with("name") {
                "name = \"lab-12g\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(dir.path().join("gpus/lab-12g.toml"), lines.join("\n")).unwrap();
    dir
}

#[test]
fn preset_dir_adds_models_and_gpus_everywhere() {
    let dir = preset_dir();
    let d = p(dir.path());
    let (code, out, err) =
        memplan(&["estimate", "--model", "gpt2-6l", "--gpu", "lab-12g", "--format", "json", "--preset-dir", d]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["model"]["parameters"], 124_439_808u64 - 6 * 7_087_872);
    assert_eq!(v["fits"][0]["gpu"], "lab-12g");
    assert_eq!(v["fits"][0]["memory_bytes"], 12_884_901_888u64);
    // The environment variable works the same, and in compare, chart and presets list.
    let env = [("MEMPLAN_PRESET_DIR", d)];
    let (code, out, _) = memplan_env(&["presets", "list"], &env);
    assert_eq!(code, 0);
    assert!(
        out.contains("gpt2-6l")
            && out.contains("lab-12g")
            && out.contains("gpus/lab-12g.toml")
            && out.contains("built-in")
    );
    let (code, out, _) = memplan_env(&["compare", "gpt2", "gpt2-6l", "--gpu", "lab-12g", "--format", "csv"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("fits_lab-12g"));
    let (code, out, _) = memplan_env(&["presets", "show", "lab-12g"], &env);
    assert_eq!(code, 0);
    assert!(out.contains("memory_bytes = 12884901888") && out.contains("# NVIDIA H100"), "shown as written: {out}");
    // Without the directory the names are unknown.
    let (code, _, err) = memplan(&["estimate", "--model", "gpt2-6l"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown model preset `gpt2-6l`"), "{err}");
}

#[test]
fn preset_errors_name_file_line_and_field() {
    let dir = preset_dir();
    let models = dir.path().join("models");
    let bad = |name: &str, text: String| {
        std::fs::write(models.join(name), text).unwrap();
    };
    let gpt2 = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/presets/models/gpt2.toml")).unwrap();
    let line_of = |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;

    // 7 heads cannot divide 768.
    let text = gpt2.replace("heads = 12,", "heads = 7,");
    bad("bad.toml", text.clone());
    let (code, _, err) = memplan(&["presets", "list", "--preset-dir", p(dir.path())]);
    assert_eq!(code, 2);
    let expected = format!("bad.toml:{}: field `stacks.layer.attention.heads`", line_of(&text, "heads = 7"));
    assert!(err.contains(&expected) && err.contains("7 heads do not divide hidden size 768"), "{err}");

    // A misspelt key, and a value of the wrong type.
    let text = gpt2.replace("layers = 12 ", "layerz = 12 ");
    bad("bad.toml", text.clone());
    let (_, _, err) = memplan(&["presets", "list", "--preset-dir", p(dir.path())]);
    assert!(err.contains(&format!("bad.toml:{}: field `layerz`", line_of(&text, "layerz = 12"))), "{err}");
    let text = gpt2.replace("hidden = 768", "hidden = \"768\"");
    bad("bad.toml", text.clone());
    let (_, _, err) = memplan(&["presets", "list", "--preset-dir", p(dir.path())]);
    assert!(
        err.contains(&format!("bad.toml:{}", line_of(&text, "hidden = \"768\""))) && err.contains("hidden"),
        "{err}"
    );
    std::fs::remove_file(models.join("bad.toml")).unwrap();

    // A GPU with no memory.
    let gpu = dir.path().join("gpus/lab-12g.toml");
    let text = std::fs::read_to_string(&gpu).unwrap().replace("memory_bytes = 12884901888", "memory_bytes = 0");
    std::fs::write(&gpu, &text).unwrap();
    let (code, _, err) = memplan(&["presets", "list", "--preset-dir", p(dir.path())]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "lab-12g.toml:{}: field `memory_bytes`: must be positive",
            line_of(&text, "memory_bytes")
        )),
        "{err}"
    );

    // A directory without the layout, and one that does not exist.
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = memplan(&["presets", "list", "--preset-dir", p(empty.path())]);
    assert_eq!(code, 2);
    assert!(err.contains("neither a models/ nor a gpus/ folder") && err.contains("hint:"), "{err}");
    let (code, _, err) = memplan_env(&["presets", "list"], &[("MEMPLAN_PRESET_DIR", "/no/such/presets")]);
    assert_eq!(code, 2);
    assert!(err.contains("/no/such/presets"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// completions

#[test]
fn completions_cover_every_command() {
    let (code, bash, _) = memplan(&["completions", "bash"]);
    assert_eq!(code, 0);
    for sub in [
        "compare",
        "chart",
        "report",
        "completions",
        "estimate",
        "plan",
        "presets",
        "max-batch",
        "--preset-dir",
        "--budget",
    ] {
        assert!(bash.contains(sub), "bash completions lack {sub}");
    }
    // The script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("memplan.bash");
    std::fs::write(&script, &bash).unwrap();
    let status = Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(status.success());
    let (_, zsh, _) = memplan(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef memplan"));
    let (_, fish, _) = memplan(&["completions", "fish"]);
    assert!(fish.contains("complete -c memplan") && fish.contains("breakdown"));
    let (code, _, err) = memplan(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("tcsh"), "{err}");
}
