//! `memplan serve`'s JSON API over real sockets: the answers are the library's (and the CLI's)
//! byte for byte, bad input gets the CLI's error and hint lines with a 400, and the HTTP layer
//! stays bounded (413, 431, 415, 404, 405, 403) and alive after malformed requests.

mod support;

use memplan::scenario::Scenario;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use support::{error_lines, flags_of, memplan, post_json, request, send_raw};

/// One server for the whole file, on a free port, in this process.
fn addr() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| {
        let server = memplan::serve::Server::bind(0).unwrap();
        let addr = format!("127.0.0.1:{}", server.port());
        std::thread::spawn(move || server.run());
        addr
    })
}

fn scenario(v: &Value) -> Scenario {
    let mut s = Scenario::default();
    for (k, x) in v.as_object().unwrap() {
        s.set_json(k, x).unwrap();
    }
    s
}

/// GPT-2 small: 124,439,808 parameters (GPT2LMHeadModel.num_parameters(), tied head).
const GPT2: u64 = 124_439_808;

#[test]
fn estimates_are_the_librarys_and_the_clis_json_byte_for_byte() {
    let config = std::fs::read_to_string("tests/data/tinyllama-1.1b-config.json").unwrap();
    for body in [
        json!({"model": "gpt2", "batch": 4}),
        json!({"model": "gpt2", "batch": "4", "seq": "1k", "precision": "amp-bf16", "recompute": "full"}),
        json!({"model": "llama-2-7b", "batch": 2, "seq": 4096, "tp": 2, "pp": 2, "sp": true, "zero": 1, "dp": 2,
               "gpu": "h100-sxm,a100-80gb"}),
        json!({"model": "llama-2-7b", "phase": "inference", "weights": "int4", "context": 8192, "max-batch": 8,
               "framework": "vllm"}),
        json!({"hf-config": config, "batch": 2, "finetune": "lora", "lora-rank": 16}),
        json!({"params": "1.3b", "framework": "deepspeed", "zero": 3, "dp": 8, "offload": "optimizer"}),
    ] {
        let r = post_json(addr(), "/api/estimate", &body.to_string());
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let library = memplan::api::estimate(&scenario(&body)).unwrap().to_json() + "\n";
        assert_eq!(r.text(), library, "{body}");
        // The CLI with the same settings as flags (the config from its file).
        let mut flags = body.clone();
        let mut args = vec!["estimate".to_string()];
        if flags.as_object_mut().unwrap().remove("hf-config").is_some() {
            args.extend(["--hf-config".into(), "tests/data/tinyllama-1.1b-config.json".into()]);
        }
        args.extend(flags_of(&flags));
        args.extend(["--format".into(), "json".into()]);
        let (code, stdout, stderr) = memplan(&args);
        assert!(code == 0 || code == 1, "{args:?}: {stderr}");
        if body.get("hf-config").is_some() {
            // Same numbers; only the config's label differs (its path vs `config.json`).
            let (a, b): (Value, Value) = (serde_json::from_str(&stdout).unwrap(), r.json());
            assert_eq!(a["per_gpu"], b["per_gpu"]);
            assert_eq!(a["fits"], b["fits"]);
            assert_eq!(a["model"]["parameters"], b["model"]["parameters"]);
        } else {
            assert_eq!(r.text(), stdout, "{args:?}");
        }
    }
}

#[test]
fn the_numbers_follow_the_precision_recipe() {
    // ZeRO paper §3.1: mixed precision Adam keeps 2 + 2 + 12 bytes per parameter.
    let v = post_json(addr(), "/api/estimate", r#"{"model": "gpt2", "precision": "mixed-bf16"}"#).json();
    assert_eq!(v["model"]["parameters"], GPT2);
    assert_eq!(v["per_gpu"]["weights_bytes"], 2 * GPT2);
    assert_eq!(v["per_gpu"]["gradients_bytes"], 2 * GPT2);
    assert_eq!(v["per_gpu"]["optimizer_states_bytes"], 12 * GPT2);
    // A pasted config.json: TinyLlama 1.1B by hand, 22 × (2·2048² + 2·2048·256 + 3·2048·5632
    // + 2·2048) + 2·32000·2048 + 2048 = 1,100,048,384.
    let config = std::fs::read_to_string("tests/data/tinyllama-1.1b-config.json").unwrap();
    let v = post_json(addr(), "/api/estimate", &json!({ "hf-config": config }).to_string()).json();
    assert_eq!(v["model"]["parameters"], 1_100_048_384u64);
}

#[test]
fn plans_are_the_librarys_and_the_clis_json() {
    let body = json!({"model": "llama-2-7b", "gpus": "16xh100-sxm", "global-batch": 256, "seq": 2048, "top": 5});
    let r = post_json(addr(), "/api/plan", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let library = memplan::api::plan(&scenario(&body)).unwrap().report.to_json() + "\n";
    assert_eq!(r.text(), library);
    let mut args = vec!["plan".to_string()];
    args.extend(flags_of(&body));
    args.extend(["--format".into(), "json".into()]);
    let (code, stdout, stderr) = memplan(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(r.text(), stdout);
    assert_eq!(r.json()["plans"].as_array().unwrap().len(), 5);
}

/// The 400 answer's `error` and `hint` are the CLI's `error:` and `hint:` lines.
fn assert_same_error(path: &str, body: Value, cli: &[&str]) {
    let r = post_json(addr(), path, &body.to_string());
    assert_eq!(r.status, 400, "{body}: {}", r.text());
    let v = r.json();
    let args: Vec<String> = cli.iter().map(|s| s.to_string()).collect();
    let (code, _, stderr) = memplan(&args);
    assert_eq!(code, 2, "{args:?}: {stderr}");
    let (error, hint) = error_lines(&stderr);
    assert_eq!(v["error"], error, "{body}");
    assert_eq!(v["hint"], hint.map_or(Value::Null, Value::String), "{body}");
}

#[test]
fn bad_values_answer_400_with_the_clis_message() {
    assert_same_error(
        "/api/estimate",
        json!({"model": "gpt2", "batch": 0}),
        &["estimate", "-m", "gpt2", "--batch", "0"],
    );
    assert_same_error("/api/estimate", json!({"model": "gtp2"}), &["estimate", "-m", "gtp2"]);
    assert_same_error("/api/estimate", json!({"model": "gpt2", "tp": 5}), &["estimate", "-m", "gpt2", "--tp", "5"]);
    assert_same_error(
        "/api/estimate",
        json!({"model": "gpt2", "cuda-context": "512"}),
        &["estimate", "-m", "gpt2", "--cuda-context", "512"],
    );
    assert_same_error(
        "/api/estimate",
        json!({"model": "gpt2", "seq": 99999999999999999999u128.to_string()}),
        &["estimate", "-m", "gpt2", "--seq", "99999999999999999999"],
    );
    assert_same_error(
        "/api/estimate",
        json!({"model": "gpt2", "params": "1b"}),
        &["estimate", "-m", "gpt2", "--params", "1b"],
    );
    // An unknown key: the message of the CLI's unknown `--set` key, with the closest key.
    assert_same_error(
        "/api/estimate",
        json!({"model": "gpt2", "batchh": 4}),
        &["compare", "gpt2", "--set", "batchh=4"],
    );
    let v = post_json(addr(), "/api/estimate", r#"{"kv_headz": 4}"#).json();
    assert!(v["hint"].as_str().unwrap().contains("`kv-heads`?"), "{v}");
    // Plan: a cluster without its GPU, an unknown GPU.
    assert_same_error("/api/plan", json!({"model": "gpt2", "gpus": 8}), &["plan", "-m", "gpt2", "--gpus", "8"]);
    assert_same_error(
        "/api/plan",
        json!({"model": "gpt2", "gpus": "8xh100-sxn"}),
        &["plan", "-m", "gpt2", "--gpus", "8xh100-sxn"],
    );
}

#[test]
fn settings_of_the_other_entry_point_are_refused() {
    // The CLI refuses them as unknown flags; the API names the entry point that takes them.
    let r = post_json(addr(), "/api/estimate", r#"{"model": "gpt2", "top": 3}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "--top is a setting of `plan`, not of `estimate`");
    let r = post_json(addr(), "/api/plan", r#"{"model": "gpt2", "gpus": "8xh100-sxm", "kv-cache": true}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "--kv-cache is a setting of `estimate`, not of `plan`");
    // `plan` explains the plan-fixing settings itself, as the library words it.
    let r = post_json(addr(), "/api/plan", r#"{"model": "gpt2", "gpus": "8xh100-sxm", "zero": 3}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "--zero fixes part of a plan, and `plan` searches the plans");
}

#[test]
fn malformed_bodies_answer_400_415_and_413() {
    let a = addr();
    let r = post_json(a, "/api/estimate", r#"{"model": "gpt2", "batch": }"#);
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("the request body is not valid JSON"), "{}", r.text());
    let r = post_json(a, "/api/estimate", r#"["model", "gpt2"]"#);
    assert_eq!(
        (r.status, r.json()["error"].clone()),
        (400, json!("the request body must be a JSON object of settings"))
    );
    let r = post_json(a, "/api/estimate", r#"{"model": {"name": "gpt2"}}"#);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], r#"invalid --model: `{"name":"gpt2"}`"#);
    let r = request(a, "POST", "/api/estimate", Some("application/json"), b"{\"model\": \"gpt2\xff\"}");
    assert_eq!((r.status, r.json()["error"].clone()), (400, json!("the request body is not UTF-8 text")));
    let r = post_json(a, "/api/estimate", r#"{"hf-config": "{\"model_type\": \"llama\", "}"#);
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().starts_with("config.json"), "{}", r.text());
    let r = post_json(a, "/api/estimate", &format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    assert_eq!(r.status, 400, "deep nesting is refused, not a stack overflow");
    // Wrong or missing content type.
    let r = request(a, "POST", "/api/estimate", Some("text/plain"), br#"{"model": "gpt2"}"#);
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["error"], "the request body must be JSON (Content-Type: application/json), not `text/plain`");
    assert_eq!(request(a, "POST", "/api/estimate", None, br#"{"model": "gpt2"}"#).status, 415);
    let r = request(a, "POST", "/api/estimate", Some("application/json; charset=utf-8"), br#"{"model": "gpt2"}"#);
    assert_eq!(r.status, 200);
    // Over the 1 MiB cap: refused from the header, with or without the bytes sent.
    let big = format!(r#"{{"hf-config": "{}"}}"#, "x".repeat(2 << 20));
    let r = post_json(a, "/api/estimate", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("1048576 byte limit"));
    let r = send_raw(
        a,
        b"POST /api/estimate HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n",
    );
    assert_eq!(r.status, 413);
}

#[test]
fn paths_methods_and_hosts() {
    let a = addr();
    let r = request(a, "GET", "/api/nothing", None, b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no such path `/api/nothing`");
    let r = request(a, "GET", "/api/estimate", None, b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = request(a, "POST", "/api/settings", Some("application/json"), b"{}");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    assert_eq!(request(a, "DELETE", "/", None, b"").status, 405);
    // A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) is not answered.
    let r = send_raw(a, b"GET /api/presets HTTP/1.1\r\nHost: evil.example:8765\r\n\r\n");
    assert_eq!(r.status, 403);
    let r = send_raw(a, b"GET /api/presets HTTP/1.1\r\nHost: localhost:1234\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn malformed_requests_get_400_and_431_and_the_server_keeps_answering() {
    let a = addr();
    for raw in [
        &b"HELLO\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nbroken header\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"\x00\x01\x02\xff\r\n\r\n",
    ] {
        assert_eq!(send_raw(a, raw).status, 400, "{:?}", String::from_utf8_lossy(raw));
    }
    let long = format!("GET / HTTP/1.1\r\nX-Long: {}\r\n\r\n", "a".repeat(40_000));
    assert_eq!(send_raw(a, long.as_bytes()).status, 431);
    let chunked =
        b"POST /api/estimate HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(send_raw(a, chunked).status, 501);
    // A client that connects and sends nothing holds one worker, not the server.
    let _idle = std::net::TcpStream::connect(a).unwrap();
    let mut half = std::net::TcpStream::connect(a).unwrap();
    half.write_all(b"POST /api/estimate HTTP/1.1\r\nContent-Length: 10\r\n").unwrap();
    assert_eq!(request(a, "GET", "/api/presets", None, b"").status, 200);
}

#[test]
fn concurrent_requests_all_get_the_same_answer() {
    let a = addr();
    let expected = memplan::api::estimate(&scenario(&json!({"model": "gpt2", "batch": 8}))).unwrap().to_json() + "\n";
    let threads: Vec<_> = (0..12)
        .map(|_| std::thread::spawn(move || post_json(a, "/api/estimate", r#"{"model": "gpt2", "batch": 8}"#)))
        .collect();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), expected);
    }
}

#[test]
fn settings_and_presets_are_the_tables() {
    let a = addr();
    let v = request(a, "GET", "/api/settings", None, b"").json();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), memplan::scenario::settings().len());
    let (_, estimate_help, _) = memplan(&["estimate".into(), "--help".into()]);
    let (_, plan_help, _) = memplan(&["plan".into(), "--help".into()]);
    for (row, def) in rows.iter().zip(memplan::scenario::settings()) {
        assert_eq!(row["key"], def.key);
        assert_eq!(row["help"], def.help);
        // The flags the CLI's commands take are the entry points the table says.
        let flag = format!("--{} ", def.key);
        let flag_eq = format!("--{} <", def.key);
        let in_help = |h: &str| h.contains(&flag) || h.contains(&flag_eq) || h.contains(&format!("--{}\n", def.key));
        assert_eq!(row["estimate"], in_help(&estimate_help), "{}", def.key);
        assert_eq!(row["plan"], in_help(&plan_help), "{}", def.key);
    }
    let p = request(a, "GET", "/api/presets", None, b"").json();
    let gpt2 = p["models"].as_array().unwrap().iter().find(|m| m["name"] == "gpt2").unwrap();
    assert_eq!(gpt2["parameters"], GPT2);
    // NVIDIA's H100 SXM datasheet: 80 GB, which the preset states as 81,559 MiB usable.
    let h100 = p["gpus"].as_array().unwrap().iter().find(|g| g["name"] == "h100-sxm").unwrap();
    assert!(h100["memory_bytes"].as_u64().unwrap() > 79 << 30);
}

#[test]
fn the_page_is_served_whole_and_loads_nothing_from_elsewhere() {
    let a = addr();
    let page = request(a, "GET", "/", None, b"");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.header("content-security-policy").unwrap().starts_with("default-src 'self'"));
    let html = page.text();
    assert!(html.contains(r#"src="/app.js""#) && html.contains(r#"href="/style.css""#));
    let js = request(a, "GET", "/app.js", None, b"");
    assert_eq!(js.header("content-type"), Some("text/javascript; charset=utf-8"));
    let css = request(a, "GET", "/style.css", None, b"");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    for (name, text) in [("index.html", html), ("app.js", js.text()), ("style.css", css.text())] {
        // The only absolute URL is the SVG namespace name (an identifier, never fetched).
        let without_ns = text.replace("http://www.w3.org/2000/svg", "");
        for bad in ["http://", "https://", "//cdn", "@import", "@font-face"] {
            assert!(!without_ns.contains(bad), "{name} contains {bad}");
        }
    }
}

#[test]
fn the_serve_command_prints_its_url_and_refuses_a_taken_port() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_memplan"))
        .args(["serve", "--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.split_whitespace().find(|w| w.starts_with("http://127.0.0.1:")).unwrap().to_string();
    let port: u16 = url.trim_start_matches("http://127.0.0.1:").trim_end_matches('/').parse().unwrap();
    let r = request(&format!("127.0.0.1:{port}"), "GET", "/api/presets", None, b"");
    assert_eq!(r.status, 200);
    let (code, _, stderr) = memplan(&["serve".into(), "--port".into(), port.to_string()]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(code, 2);
    assert!(stderr.contains(&format!("error: cannot listen on 127.0.0.1:{port}")), "{stderr}");
}
