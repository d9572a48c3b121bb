//! `memplan serve`: a single page and a JSON API on the library, for 127.0.0.1 only.
//!
//! The API is the library's JSON contract over HTTP: `POST /api/estimate` and `POST /api/plan`
//! take a scenario as a JSON object of settings (`{"model": "gpt2", "batch": 4}`, a pasted
//! config.json as `"hf-config": "<text>"`) and answer exactly what `memplan estimate
//! --format json` and `memplan plan --format json` print. Bad input answers 400 with the CLI's
//! `error:` and `hint:` lines as `{"error", "hint"}`. The page (HTML, CSS, JS in `assets/`,
//! embedded in the binary) reads `/api/settings` to build its form; it converts inputs and
//! shows results, and never validates on its own.

pub mod http;

use crate::api::{self, Entry};
use crate::error::{Error, Result};
use crate::scenario::Scenario;
use http::{Request, Response};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Arc;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Nothing is loaded from elsewhere: scripts, styles, images and requests stay on this server.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'none'";

/// Worker threads answering requests.
pub const THREADS: usize = 4;

/// A server bound to 127.0.0.1.
pub struct Server {
    listener: TcpListener,
}

impl Server {
    /// Bind 127.0.0.1:`port` (0: a free port chosen by the system).
    pub fn bind(port: u16) -> Result<Server> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = TcpListener::bind(addr).map_err(|e| {
            Error::conflict(
                format!("cannot listen on 127.0.0.1:{port}: {e}"),
                "pick another port with --port, or --port 0 for a free one",
            )
        })?;
        Ok(Server { listener })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    /// Answer requests until the process ends.
    pub fn run(self) {
        http::run(self.listener, THREADS, Arc::new(handle));
    }
}

/// Answer one request (no I/O: the router the server and the tests call).
pub fn handle(req: &Request) -> Response {
    if let Some(host) = req.header("host") {
        if !local_host(host) {
            // A page on another site that resolves its name to 127.0.0.1 (DNS rebinding) names
            // its own host here; only this machine's names are answered.
            return Response::error(
                403,
                &format!("requests to this server must name 127.0.0.1 or localhost, not `{host}`"),
                Some("open the URL that `memplan serve` printed"),
            );
        }
    }
    let (allowed, route): (&str, fn(&Request) -> Response) = match req.path.as_str() {
        "/" | "/index.html" => ("GET", |_| page(INDEX_HTML, "text/html; charset=utf-8")),
        "/app.js" => ("GET", |_| page(APP_JS, "text/javascript; charset=utf-8")),
        "/style.css" => ("GET", |_| page(STYLE_CSS, "text/css; charset=utf-8")),
        "/api/settings" => ("GET", |_| json_ok(to_json(&api::settings_table()))),
        "/api/presets" => ("GET", |_| match api::presets() {
            Ok(p) => json_ok(to_json(&p)),
            Err(e) => error_response(&e),
        }),
        "/api/estimate" => ("POST", |r| run_entry(r, Entry::Estimate)),
        "/api/plan" => ("POST", |r| run_entry(r, Entry::Plan)),
        other => {
            return Response::error(
                404,
                &format!("no such path `{}`", other.chars().take(200).collect::<String>()),
                Some("the API is GET /api/settings, GET /api/presets, POST /api/estimate, POST /api/plan"),
            )
        }
    };
    if req.method != allowed {
        return Response::error(
            405,
            &format!("{} takes {allowed}, not {}", req.path, req.method.chars().take(20).collect::<String>()),
            None,
        )
        .with_header("Allow", allowed);
    }
    route(req)
}

fn local_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().map(|h| format!("[{h}]")).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_string()
    };
    matches!(name.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "[::1]")
}

fn page(text: &'static str, content_type: &'static str) -> Response {
    Response::new(200, content_type, text).with_header("Content-Security-Policy", CSP)
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).expect("API data serialises") + "\n"
}

fn json_ok(body: String) -> Response {
    Response::new(200, "application/json", body)
}

fn error_response(e: &Error) -> Response {
    Response::error(400, &e.to_string(), e.hint().as_deref())
}

/// The settings of a request body: a JSON object, each field set as Python and `--set` would.
pub fn scenario_from_body(req: &Request) -> std::result::Result<Scenario, Response> {
    let content_type = req.header("content-type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        let shown = if content_type.is_empty() { "none".to_string() } else { format!("`{content_type}`") };
        return Err(Response::error(
            415,
            &format!("the request body must be JSON (Content-Type: application/json), not {shown}"),
            Some("send the settings as a JSON object with Content-Type: application/json"),
        ));
    }
    let example = r#"send the settings as a JSON object, e.g. {"model": "gpt2", "batch": 4}"#;
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| Response::error(400, "the request body is not UTF-8 text", Some(example)))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Response::error(400, &format!("the request body is not valid JSON: {e}"), Some(example)))?;
    let serde_json::Value::Object(map) = value else {
        return Err(Response::error(400, "the request body must be a JSON object of settings", Some(example)));
    };
    let mut s = Scenario::default();
    for (k, v) in &map {
        s.set_json(k, v).map_err(|e| error_response(&e))?;
    }
    Ok(s)
}

fn run_entry(req: &Request, entry: Entry) -> Response {
    let s = match scenario_from_body(req) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let result = entry.check(&s).and_then(|()| match entry {
        // The same text the CLI prints with --format json (it ends with a newline).
        Entry::Estimate => api::estimate(&s).map(|r| r.to_json() + "\n"),
        Entry::Plan => api::plan(&s).map(|p| p.report.to_json() + "\n"),
    });
    match result {
        Ok(body) => json_ok(body),
        Err(e) => error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_answered() {
        for ok in ["127.0.0.1:8765", "localhost:1", "LOCALHOST", "[::1]:8765", "127.0.0.1"] {
            assert!(local_host(ok), "{ok}");
        }
        for bad in ["evil.example:8765", "127.0.0.2:80", "localhost.evil.example", "[::2]:1", ""] {
            assert!(!local_host(bad), "{bad}");
        }
    }
}
