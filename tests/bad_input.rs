//! The bad-input corpus (tests/data/bad_input/cases.txt, written as a table so it stays
//! readable): hundreds of bad or extreme inputs across every subcommand and every input file, each
//! run through the real binary. A case passes when the exit code is the expected one (2 bad input,
//! 1 valid but does not fit, 0 valid), the process ends within 20 s, nothing panics, a bad input
//! gets exactly one `error:` line naming the offending value, the output folder is left as it was,
//! and a valid huge input's JSON has a per-GPU total of at least its weights and below 2^63.
//!
//! Cases tagged `LEAD` or `PLANNER` are known failures in code owned elsewhere; they run and are
//! reported, and fail the test only with MEMPLAN_STRICT_CORPUS=1 (see the header of cases.txt).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Directories every output folder starts with (outputs aimed at a directory).
const PRESENT: [&str; 5] = ["adir.svg", "adir.md", "adir.json", "adir.png", "r-breakdown.svg"];

struct Case {
    line: usize,
    tags: Vec<String>,
    exit: i32,
    needle: String,
    args: String,
}

impl Case {
    fn known_elsewhere(&self) -> bool {
        self.tags.iter().any(|t| t == "LEAD" || t == "PLANNER")
    }
}

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad_input")
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(data().join("cases.txt")).unwrap();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = l.splitn(4, '|').map(str::trim).collect();
        assert_eq!(parts.len(), 4, "cases.txt:{}: `TAG | EXIT | NEEDLE | ARGUMENTS`", i + 1);
        out.push(Case {
            line: i + 1,
            tags: parts[0].split(',').map(|t| t.trim().to_string()).collect(),
            exit: parts[1].parse().unwrap_or_else(|_| panic!("cases.txt:{}: exit code", i + 1)),
            needle: parts[2].to_string(),
            args: parts[3].to_string(),
        });
    }
    out
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().is_ok_and(|s| s.success());
    assert!(ok, "mkfifo {}", path.display());
}

/// The special files of the placeholders, in `dir`.
fn special_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut s = vec![("d".to_string(), data())];
    for ext in ["toml", "json"] {
        let p = |n: &str| dir.join(format!("{n}.{ext}"));
        mkfifo(&p("fifo"));
        let huge = std::fs::File::create(p("huge")).unwrap();
        huge.set_len(17 << 20).unwrap();
        std::fs::write(p("nonutf8"), b"name = \"\xff\xfe\"\n").unwrap();
        std::fs::write(p("empty"), b"").unwrap();
        std::fs::create_dir(p("dir")).unwrap();
        for n in ["fifo", "huge", "nonutf8", "empty", "dir"] {
            s.push((format!("{n}.{ext}"), p(n)));
        }
    }
    std::fs::create_dir(dir.join("adir")).unwrap();
    s.push(("dir".into(), dir.join("adir")));
    std::fs::create_dir_all(dir.join("fifodir/models")).unwrap();
    mkfifo(&dir.join("fifodir/models/x.toml"));
    s.push(("fifodir".into(), dir.join("fifodir")));
    std::fs::create_dir_all(dir.join("dirdir/models/x.toml")).unwrap();
    s.push(("dirdir".into(), dir.join("dirdir")));
    std::fs::create_dir_all(dir.join("filedir")).unwrap();
    std::fs::write(dir.join("filedir/models"), "not a folder").unwrap();
    s.push(("filedir".into(), dir.join("filedir")));
    s
}

fn substitute(text: &str, subs: &[(String, PathBuf)]) -> String {
    let mut t = text.to_string();
    for (k, v) in subs {
        t = t.replace(&format!("{{{k}}}"), &v.display().to_string());
    }
    t
}

fn listing(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()
}

/// Run one case; the problems found (empty: it passed).
fn run(case: &Case, special: &[(String, PathBuf)], scratch: &Path) -> Vec<String> {
    let out = scratch.join(format!("out-{}", case.line));
    std::fs::create_dir(&out).unwrap();
    for d in PRESENT {
        std::fs::create_dir(out.join(d)).unwrap();
    }
    let before = listing(&out);
    let mut subs = special.to_vec();
    subs.push(("out".into(), out.clone()));
    let args: Vec<String> = case.args.split_whitespace().map(|w| substitute(w, &subs)).collect();
    // Output goes to files outside the output folder (no pipe to fill while waiting).
    let (so_path, se_path) =
        (scratch.join(format!("{}.stdout", case.line)), scratch.join(format!("{}.stderr", case.line)));
    let mut child = Command::new(env!("CARGO_BIN_EXE_memplan"))
        .args(&args)
        .current_dir(&out)
        .env_remove("MEMPLAN_PRESET_DIR")
        .env_remove("MEMPLAN_ADAPTER")
        .env("NODEVICE_SELECT", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&so_path).unwrap())
        .stderr(std::fs::File::create(&se_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&std::fs::read(&so_path).unwrap()).to_string();
    let stderr = String::from_utf8_lossy(&std::fs::read(&se_path).unwrap()).to_string();
    let mut problems = Vec::new();
    let Some(status) = status else {
        return vec![format!("still running after {} s", TIMEOUT.as_secs())];
    };
    if status.code() != Some(case.exit) {
        problems.push(format!("exit {:?}, expected {}", status.code(), case.exit));
    }
    if case.exit == 2 {
        let errors = stderr.lines().filter(|l| l.starts_with("error:")).count();
        if errors != 1 {
            problems.push(format!("{errors} `error:` lines"));
        }
        let needle = substitute(&case.needle, &subs);
        if case.needle != "-" && !stderr.contains(&needle) {
            problems.push(format!("stderr does not name `{needle}`"));
        }
    }
    for text in [&stdout, &stderr] {
        if text.contains("panicked") || text.contains("RUST_BACKTRACE") {
            problems.push("panic".into());
        }
    }
    let left: Vec<String> = listing(&out).difference(&before).cloned().collect();
    if !left.is_empty() {
        problems.push(format!("left {left:?} in the output folder"));
    }
    if case.tags.iter().any(|t| t == "json") && status.code().is_some_and(|c| c == 0 || c == 1) {
        match serde_json::from_str::<serde_json::Value>(&stdout) {
            Ok(v) => {
                let g = &v["per_gpu"];
                match (g["total_bytes"].as_u64(), g["weights_bytes"].as_u64()) {
                    (Some(t), Some(w)) if t >= w && t < 1 << 63 => {}
                    other => problems.push(format!("per-GPU total and weights {other:?}")),
                }
                // Every byte count is an integer (serde writes a non-finite float as null).
                if let Some(m) = g.as_object() {
                    for (k, x) in m.iter().filter(|(k, _)| k.ends_with("_bytes")) {
                        if !x.is_u64() && !x.is_null() {
                            problems.push(format!("per_gpu.{k} = {x} is not a byte count"));
                        }
                    }
                }
            }
            Err(e) => problems.push(format!("stdout is not JSON: {e}")),
        }
    }
    if !problems.is_empty() {
        let first = stderr.lines().next().unwrap_or("").chars().take(200).collect::<String>();
        problems.push(format!("stderr: {first}"));
    }
    let _ = std::fs::remove_dir_all(&out);
    problems
}

#[test]
fn every_bad_input_gets_a_clear_error_and_leaves_nothing_behind() {
    let cases = cases();
    assert!(cases.len() >= 300, "{} cases", cases.len());
    let commands: BTreeSet<&str> = cases
        .iter()
        .filter_map(|c| c.args.split_whitespace().find(|w| !w.starts_with('-') && !w.starts_with('{')))
        .collect();
    for c in
        ["estimate", "plan", "compare", "chart", "report", "presets", "completions", "devices", "bench", "validate"]
    {
        assert!(commands.contains(c), "no case for `{c}`");
    }
    let scratch = tempfile::tempdir().unwrap();
    let special = special_files(scratch.path());
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<String>)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let problems = run(case, &special, scratch.path());
                results.lock().unwrap().push((i, problems));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    let strict = std::env::var("MEMPLAN_STRICT_CORPUS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut known = Vec::new();
    let mut fixed = Vec::new();
    for (i, problems) in &results {
        let c = &cases[*i];
        let line = format!("cases.txt:{} `{}`: {}", c.line, c.args, problems.join("; "));
        match (problems.is_empty(), c.known_elsewhere()) {
            (true, true) => fixed.push(format!("cases.txt:{} `{}`", c.line, c.args)),
            (true, false) => {}
            (false, true) if !strict => known.push(line),
            (false, _) => failures.push(line),
        }
    }
    if !known.is_empty() {
        eprintln!("{} known failures owned elsewhere (LEAD/PLANNER tags):\n  {}", known.len(), known.join("\n  "));
    }
    if !fixed.is_empty() {
        eprintln!("tagged cases that now pass (remove their tag):\n  {}", fixed.join("\n  "));
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), cases.len(), failures.join("\n  "));
}

/// A report whose chart cannot be written leaves no document and no other chart behind.
#[test]
fn a_report_with_an_unwritable_chart_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cap-sweep.svg")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_memplan"))
        .args(["report", "gpt2", "--gpus", "rtx-4090", "-o"])
        .arg(dir.path().join("cap.md"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cap-sweep.svg"), "{stderr}");
    assert_eq!(listing(dir.path()), BTreeSet::from(["cap-sweep.svg".to_string()]));
    // The same report in a clean folder writes the document and its four charts.
    std::fs::remove_dir(dir.path().join("cap-sweep.svg")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_memplan"))
        .args(["report", "gpt2", "--gpus", "rtx-4090", "-o"])
        .arg(dir.path().join("cap.md"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let files = listing(dir.path());
    assert!(files.contains("cap.md") && files.contains("cap-sweep.svg"), "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with('.')), "no temporary left: {files:?}");
}
