//! The web page in headless Chromium, driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; the client is plain HTTP on `std::net`): load, change inputs like a user,
//! and check that the numbers on the page are the CLI's for the same scenario — the bytes in
//! the tables, the GiB the CLI would print, and the JSON text itself. Screenshots go to
//! `target/tmp/web/`.
//!
//! Without a browser the test prints a notice and passes, unless MEMPLAN_REQUIRE_BROWSER=1
//! (scripts/test.sh sets it), where a missing browser is a failure.

mod support;

use memplan::units::ByteUnits;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{error_lines, flags_of, memplan};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain(["/usr/bin".into(), "/usr/lib/chromium".into()]) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// A child process killed when the test ends, passing or not.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `memplan serve --port 0`, and the URL it prints.
fn start_server() -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memplan"))
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).unwrap_or_else(|| panic!("{line}"));
    (Guard(child), url.to_string())
}

struct Driver {
    addr: String,
    session: String,
    _process: Guard,
    shots: PathBuf,
}

impl Driver {
    fn start(chromium: &Path, chromedriver: &Path, profile: &Path, shots: PathBuf) -> Driver {
        let port = free_port();
        let process = Guard(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", chromedriver.display())),
        );
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.display().to_string(),
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--disable-dev-shm-usage", format!("--user-data-dir={}", profile.display()),
                         "--window-size=1440,1000", "--hide-scrollbars", "--force-device-scale-factor=1"]
            }
        }}});
        let r = support::post_json(&addr, "/session", &caps.to_string());
        let v = r.json();
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        Driver { addr, session, _process: process, shots }
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let r = if method == "GET" {
            support::request(&self.addr, "GET", &path, None, b"")
        } else {
            support::post_json(&self.addr, &path, &body.to_string())
        };
        let v = r.json();
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", json!({ "script": script, "args": args }))
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd("POST", "/element", json!({"using": "css selector", "value": css}));
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("{css}: {v}")).to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    /// Clear a text input and type into it, as a user would.
    fn type_into(&self, key: &str, text: &str) {
        let e = self.find(&format!("#f-{key}"));
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}));
        if !text.is_empty() {
            self.cmd("POST", &format!("/element/{e}/value"), json!({ "text": text }));
        }
    }

    /// Pick an option of a select by clicking it.
    fn choose(&self, key: &str, value: &str) {
        self.click(&format!("#f-{key} option[value=\"{value}\"]"));
    }

    /// A Chrome DevTools command through chromedriver.
    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd("POST", "/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
    }

    /// The page's viewport (a headless window cannot grow past its screen; emulation can).
    fn window(&self, width: u32, height: u32) {
        let params = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600});
        self.cdp("Emulation.setDeviceMetricsOverride", params);
    }

    /// A screenshot of the whole page, not only the viewport.
    fn screenshot(&self, name: &str) -> PathBuf {
        let size =
            self.js("return [document.documentElement.scrollWidth, document.documentElement.scrollHeight];", json!([]));
        let clip = json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
        let shot =
            self.cdp("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": true, "clip": clip}));
        let png = support::base64_decode(shot["data"].as_str().unwrap());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Wait until the page has answered `state` (ready/error) for a request with these settings.
    fn wait_for(&self, state: &str, request: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let v = self.js(
                "const r = document.getElementById('results');
                 return {state: r.dataset.state, request: r.dataset.request ? JSON.parse(r.dataset.request) : null,
                         view: r.dataset.view, status: document.getElementById('status').textContent};",
                json!([]),
            );
            if v["state"] == state && &v["request"] == request {
                return v;
            }
            assert!(Instant::now() < deadline, "the page never reached {state} for {request}: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn quit(&self) {
        let path = format!("/session/{}", self.session);
        let _ = support::request(&self.addr, "DELETE", &path, None, b"");
    }
}

/// Everything the estimate view shows as numbers: the byte cells (exact integers kept in
/// `data-bytes`) and their text, by table row.
const READ_ESTIMATE: &str = "
  const rows = (sel) => [...document.querySelectorAll(sel)].map((tr) => ({
    key: tr.dataset.term || tr.dataset.gpu,
    cells: [...tr.querySelectorAll('td[data-bytes]')].map((td) => ({bytes: td.dataset.bytes, text: td.textContent})),
    text: tr.textContent }));
  const total = document.getElementById('total');
  return { total: {bytes: total.dataset.bytes, text: total.textContent},
           breakdown: rows('#breakdown tbody tr'), fits: rows('#fits tbody tr'),
           fitCard: document.getElementById('fit-card').textContent,
           cards: [...document.querySelectorAll('#estimate-view .card')].map((c) => c.textContent),
           json: window.memplan.state.last.estimate.text };";

fn gib(v: &Value) -> String {
    ByteUnits::Gib.format(v.as_u64().unwrap_or_else(|| panic!("bytes: {v}")))
}

fn cell<'a>(page: &'a Value, table: &str, key: &str) -> &'a Value {
    page[table]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {table}: {page}"))
}

/// The page's numbers equal the CLI's JSON for the scenario the page sent.
fn check_estimate_against_cli(d: &Driver, request: &Value) -> Value {
    let page = d.js(READ_ESTIMATE, json!([]));
    let mut args = vec!["estimate".to_string()];
    args.extend(flags_of(request));
    args.extend(["--format".into(), "json".into()]);
    let (code, stdout, stderr) = memplan(&args);
    assert!(code == 0 || code == 1, "{args:?}: {stderr}");
    // Byte for byte the text the CLI prints (what "Download JSON" saves).
    assert_eq!(page["json"].as_str().unwrap(), stdout, "{args:?}");
    let cli: Value = serde_json::from_str(&stdout).unwrap();
    let p = &cli["per_gpu"];
    assert_eq!(page["total"]["bytes"], p["total_bytes"].to_string());
    assert_eq!(page["total"]["text"], gib(&p["total_bytes"]));
    for (row, bytes) in [
        ("weights", &p["weights_bytes"]),
        ("other activations", &p["other_activations_bytes"]),
        ("peak", &p["peak_allocated_bytes"]),
        ("CUDA context", &cli["overheads"]["cuda_context_bytes"]),
        ("fragmentation margin", &cli["overheads"]["fragmentation_bytes"]),
        ("total", &p["total_bytes"]),
    ] {
        let c = &cell(&page, "breakdown", row)["cells"][0];
        assert_eq!(c["bytes"], bytes.to_string(), "{row}");
        assert_eq!(c["text"], gib(bytes), "{row}");
    }
    for f in cli["fits"].as_array().unwrap() {
        let row = cell(&page, "fits", f["gpu"].as_str().unwrap());
        assert_eq!(row["cells"][0]["text"], gib(&f["usable_bytes"]));
        assert_eq!(row["cells"][1]["bytes"], f["total_bytes"].to_string());
        assert_eq!(row["cells"][1]["text"], gib(&f["total_bytes"]));
        let head = f["headroom_bytes"].as_i64().unwrap();
        let shown = if head < 0 {
            format!("-{}", ByteUnits::Gib.format(head.unsigned_abs()))
        } else {
            ByteUnits::Gib.format(head as u64)
        };
        assert_eq!(row["cells"][2]["bytes"], head.to_string());
        assert_eq!(row["cells"][2]["text"], shown);
        assert!(row["text"].as_str().unwrap().contains(if f["fits"] == true { "yes" } else { "no" }));
    }
    cli
}

#[test]
fn the_page_shows_the_clis_numbers_in_headless_chromium() {
    let required = std::env::var("MEMPLAN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chromium = find_program("MEMPLAN_CHROMIUM", &["chromium", "chromium-browser"]);
    let driver = find_program("MEMPLAN_CHROMEDRIVER", &["chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, driver) else {
        assert!(
            !required,
            "MEMPLAN_REQUIRE_BROWSER=1 but chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!("notice: skipping the browser test: chromium and chromium-driver are not installed");
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("web");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let (_server, url) = start_server();
    let d = Driver::start(&chromium, &chromedriver, profile.path(), shots);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| session(&d, &url)));
    if result.is_err() {
        d.screenshot("failure");
    }
    d.quit();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn session(d: &Driver, url: &str) {
    d.window(1440, 1000);
    d.go(url);
    // A first visit starts from an example (LLaMA-2 7B, 4096 tokens, H100).
    let first = json!({"model": "llama-2-7b", "seq": "4096", "gpu": "h100-sxm"});
    d.wait_for("ready", &first);
    check_estimate_against_cli(d, &first);

    // Change inputs as a user: a preset, the batch, the sequence, tensor parallelism, precision.
    d.choose("model", "llama-2-7b");
    d.type_into("batch", "2");
    d.type_into("seq", "2048");
    d.type_into("tp", "2");
    d.choose("precision", "megatron-bf16");
    d.choose("recompute", "selective");
    let scenario = json!({"model": "llama-2-7b", "precision": "megatron-bf16", "batch": "2", "seq": "2048",
                          "recompute": "selective", "tp": "2", "gpu": "h100-sxm"});
    d.wait_for("ready", &scenario);
    let cli = check_estimate_against_cli(d, &scenario);
    // Independent of memplan: LLaMA-2 7B has 6,738,415,616 parameters (Hugging Face
    // `num_parameters()`), shown as the CLI shows counts; Megatron bf16 keeps 2 + 4 + 12 bytes
    // per parameter (weights, fp32 main grads, fp32 master + Adam moments) on each tp rank.
    let page = d.js(READ_ESTIMATE, json!([]));
    assert!(page["cards"][2].as_str().unwrap().contains("6.74B"), "{}", page["cards"]);
    let rank_params = cli["per_gpu"]["rank_parameters"].as_u64().unwrap();
    assert_eq!(cell(&page, "breakdown", "weights")["cells"][0]["bytes"], (2 * rank_params).to_string());
    assert_eq!(cell(&page, "breakdown", "gradients")["cells"][0]["bytes"], (4 * rank_params).to_string());
    assert_eq!(cell(&page, "breakdown", "optimizer states")["cells"][0]["bytes"], (12 * rank_params).to_string());
    d.screenshot("estimate");

    // "Download JSON" saves the CLI's text byte for byte.
    let downloads = tempfile::tempdir().unwrap();
    d.cdp(
        "Browser.setDownloadBehavior",
        json!({"behavior": "allow", "downloadPath": downloads.path().display().to_string()}),
    );
    d.click("#download");
    let saved = downloads.path().join("memplan-estimate-llama-2-7b.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !saved.is_file() {
        assert!(Instant::now() < deadline, "no download in {}", downloads.path().display());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut args = vec!["estimate".to_string()];
    args.extend(flags_of(&scenario));
    args.extend(["--format".into(), "json".into()]);
    assert_eq!(std::fs::read_to_string(&saved).unwrap(), memplan(&args).1);

    // A bad value: the library's message (the CLI's error and hint lines) next to the input.
    d.type_into("batch", "0");
    let bad = json!({"model": "llama-2-7b", "precision": "megatron-bf16", "batch": "0", "seq": "2048",
                     "recompute": "selective", "tp": "2", "gpu": "h100-sxm"});
    d.wait_for("error", &bad);
    let mut args = vec!["estimate".to_string()];
    args.extend(flags_of(&bad));
    let (code, _, stderr) = memplan(&args);
    assert_eq!(code, 2);
    let (error, hint) = error_lines(&stderr);
    let shown = d.js(
        "const p = document.getElementById('err-batch');
         return {hidden: p.hidden, text: p.firstChild.textContent, hint: p.querySelector('.hint').textContent,
                 invalid: document.querySelector('.field[data-key=batch]').hasAttribute('data-invalid')};",
        json!([]),
    );
    assert_eq!(shown["hidden"], false);
    assert_eq!(shown["invalid"], true);
    assert_eq!(shown["text"], error);
    assert_eq!(shown["hint"], format!("hint: {}", hint.unwrap()));
    d.screenshot("error");
    d.type_into("batch", "2");
    d.wait_for("ready", &scenario);

    // Serving with vLLM: the framework's start-up budget, line by line, as the CLI's JSON has it.
    d.choose("phase", "inference");
    d.choose("framework", "vllm");
    let mut serving = scenario.clone();
    serving["phase"] = json!("inference");
    serving["framework"] = json!("vllm");
    d.wait_for("ready", &serving);
    let served = check_estimate_against_cli(d, &serving);
    let budget = &served["serving_framework"]["per_gpu"][0][1];
    let shown = d.js(
        "return [...document.querySelectorAll('table.budget tr.sum td[data-bytes]')].map((td) => td.dataset.bytes);",
        json!([]),
    );
    assert_eq!(shown, json!([budget["usable"].to_string(), budget["kv_budget"].to_string()]));
    d.screenshot("serving");
    d.choose("phase", "");
    d.choose("framework", "");
    d.wait_for("ready", &scenario);

    // The link restores the inputs: load it fresh and get the same answer.
    let link = d.cmd("GET", "/url", Value::Null).as_str().unwrap().to_string();
    assert!(link.contains("batch=2") && link.contains("tp=2"), "{link}");
    d.go("about:blank");
    d.go(&link);
    d.wait_for("ready", &scenario);
    check_estimate_against_cli(d, &scenario);

    // Units: GB (10^9) as `--units gb` shows them.
    d.choose_units("gb");
    let total = d.js("return document.getElementById('total').textContent;", json!([]));
    assert_eq!(total, ByteUnits::Gb.format(cli["per_gpu"]["total_bytes"].as_u64().unwrap()));
    d.choose_units("gib");

    // A pasted config.json (TinyLlama 1.1B): 22 layers × (q 2048² + k,v 2·2048·256 + o 2048²
    // + MLP 3·2048·5632 + 2 norms 2048) + 2 untied 32000×2048 tables + final norm = 1,100,048,384.
    d.click("[data-source=\"hf-config\"]");
    let config = std::fs::read_to_string("tests/data/tinyllama-1.1b-config.json").unwrap();
    d.type_into("hf-config", &config);
    d.type_into("tp", "");
    d.type_into("seq", "");
    let pasted = json!({"hf-config": config, "precision": "megatron-bf16", "batch": "2",
                        "recompute": "selective", "gpu": "h100-sxm"});
    d.wait_for("ready", &pasted);
    let page = d.js(READ_ESTIMATE, json!([]));
    assert!(page["cards"][2].as_str().unwrap().contains("1.10B"), "{}", page["cards"]);
    let v: Value = serde_json::from_str(page["json"].as_str().unwrap()).unwrap();
    assert_eq!(v["model"]["parameters"], 1_100_048_384u64);
    // The CLI reads the same text from the file.
    let mut args: Vec<String> =
        ["estimate", "--hf-config", "tests/data/tinyllama-1.1b-config.json"].map(String::from).into();
    args.extend(flags_of(
        &json!({"precision": "megatron-bf16", "batch": "2", "recompute": "selective", "gpu": "h100-sxm"}),
    ));
    args.extend(["--format".into(), "json".into()]);
    let (_, stdout, _) = memplan(&args);
    let from_file: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(from_file["per_gpu"], v["per_gpu"]);
    assert_eq!(from_file["fits"], v["fits"]);
    d.screenshot("hf-config");
    d.click("[data-source=\"model\"]");

    // The plan search for a cluster: 16 H100s, a global batch of 256 sequences.
    d.click("#tab-plan");
    d.type_into("gpus", "16");
    d.type_into("global-batch", "256");
    // The micro-batch and recomputation are the search's to choose: the page does not send them.
    let search = json!({"model": "llama-2-7b", "precision": "megatron-bf16", "gpus": "16", "global-batch": "256",
                        "gpu": "h100-sxm"});
    let hidden = d.js(
        "return ['batch', 'recompute', 'tp'].map((k) => document.querySelector(`.field[data-key=${k}]`).hidden);",
        json!([]),
    );
    assert_eq!(hidden, json!([true, true, true]));
    d.wait_for("ready", &search);
    let mut args = vec!["plan".to_string()];
    args.extend(flags_of(&search));
    args.extend(["--format".into(), "json".into()]);
    let (code, stdout, stderr) = memplan(&args);
    assert_eq!(code, 0, "{stderr}");
    let page = d.js(
        "return {json: window.memplan.state.last.plan.text,
                 rows: [...document.querySelectorAll('#plans tbody tr')].map((tr) =>
                   ['.rank', '.plan .desc', '.memory', '.step', '.framework'].map((c) => tr.querySelector(c).textContent)),
                 memory: [...document.querySelectorAll('#plans tbody tr td[data-bytes]')].map((td) => td.dataset.bytes)};",
        json!([]),
    );
    assert_eq!(page["json"].as_str().unwrap(), stdout);
    let cli: Value = serde_json::from_str(&stdout).unwrap();
    let plans = cli["plans"].as_array().unwrap();
    assert!(!plans.is_empty());
    assert_eq!(page["rows"].as_array().unwrap().len(), plans.len());
    for (row, p) in page["rows"].as_array().unwrap().iter().zip(plans) {
        assert_eq!(row[0], p["rank"].to_string());
        assert_eq!(row[1], p["description"]);
        assert_eq!(row[2], format!("{} (stage {})", gib(&p["worst_total_bytes"]), p["worst_stage"]));
        assert_eq!(row[3], format!("{:.3}", p["time"]["total_s"].as_f64().unwrap()));
        // Each plan names the framework that runs it (and the others that run it too).
        let framework = p["framework"].as_str().unwrap();
        assert!(row[4].as_str().unwrap().starts_with(framework), "{row:?} vs {framework}");
        for also in p["also_runs_on"].as_array().unwrap() {
            assert!(row[4].as_str().unwrap().contains(also.as_str().unwrap()), "{row:?}");
        }
    }
    d.screenshot("plan");

    // "Estimate" on the best plan checks it term by term: the same live peak as the search's.
    // (The totals differ by the GPU runtime's overheads: the estimate counts the chosen GPU's
    // context and NCCL buffers, the search the default overheads.)
    d.click("#plans tbody tr:first-child button");
    let best = &plans[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let estimate = loop {
        let v = d.js(
            "const r = document.getElementById('results');
             return r.dataset.view === 'estimate' && r.dataset.state === 'ready' ? window.memplan.state.last.estimate.text : null;",
            json!([]),
        );
        if let Some(t) = v.as_str() {
            break serde_json::from_str::<Value>(t).unwrap();
        }
        assert!(Instant::now() < deadline, "the estimate of the best plan never came");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(estimate["per_gpu"]["peak_allocated_bytes"], best["worst_peak_allocated_bytes"]);
    assert_eq!(estimate["plan"], best["plan"]);
    assert_eq!(estimate["setup"]["micro_batch"], best["micro_batch"]);

    // A phone-sized window: the form stacks above the results.
    d.window(420, 900);
    d.go(&link);
    d.wait_for("ready", &scenario);
    let layout = d.js(
        "const f = document.getElementById('form').getBoundingClientRect();
         const r = document.getElementById('results').getBoundingClientRect();
         return {stacked: r.top >= f.bottom - 1, overflow: document.documentElement.scrollWidth > window.innerWidth + 1};",
        json!([]),
    );
    assert_eq!(layout["stacked"], true, "{layout}");
    assert_eq!(layout["overflow"], false, "{layout}");
    d.screenshot("narrow");
}

impl Driver {
    fn choose_units(&self, units: &str) {
        self.click(&format!("#units option[value=\"{units}\"]"));
    }
}
