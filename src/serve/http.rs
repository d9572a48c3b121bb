//! A small HTTP/1.1 server on `std::net`, bounded everywhere: one request per connection
//! (`Connection: close`), a cap on header bytes (431) and body bytes (413), read and write
//! timeouts (408), a fixed pool of worker threads behind a bounded queue (full: 503). A
//! malformed request gets a 400, never a panic; a panicking handler gets a 500.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Request line and headers together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
/// A scenario with a pasted config.json is a few KiB; 1 MiB leaves room for any real config.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How long a client may take to send its request or read the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections waiting for a worker before new ones are turned away (503).
pub const QUEUE: usize = 64;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    /// `{"error": ..., "hint": ...}`: the same two lines the CLI prints as `error:` and `hint:`.
    pub fn error(status: u16, message: &str, hint: Option<&str>) -> Response {
        let body = serde_json::json!({ "error": message, "hint": hint });
        Response::new(status, "application/json", body.to_string() + "\n")
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
             Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (n, v) in &self.headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn bad(message: &str) -> Response {
    Response::error(400, message, Some("send an HTTP/1.1 request"))
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// Read one request. `Ok(None)`: the client closed the connection without sending anything.
pub fn read_request(stream: &mut impl Read) -> Result<Option<Request>, Response> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEADER_BYTES {
            return Err(too_large_headers());
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(bad("the request ended before its headers did")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {
                return Err(Response::error(408, "the request took too long to arrive", None));
            }
            Err(_) => return Ok(None),
        }
    };
    if head_end > MAX_HEADER_BYTES {
        return Err(too_large_headers());
    }
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("the request headers are not UTF-8 text"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad("malformed request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(bad("malformed request line"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("malformed header line"));
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad("malformed header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        if headers.len() > MAX_HEADERS {
            return Err(too_large_headers());
        }
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    };
    let mut req = Request { method: method.to_string(), path, query, headers, body: Vec::new() };
    if req.header("transfer-encoding").is_some() {
        return Err(Response::error(
            501,
            "chunked request bodies are not supported",
            Some("send the body with a Content-Length header"),
        ));
    }
    let lengths: Vec<&str> =
        req.headers.iter().filter(|(n, _)| n == "content-length").map(|(_, v)| v.as_str()).collect();
    let length = match lengths.as_slice() {
        [] => 0,
        [one] => {
            if one.is_empty() || !one.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("malformed Content-Length"));
            }
            // Longer than any usize: certainly over the cap.
            one.parse::<usize>().unwrap_or(usize::MAX)
        }
        _ => return Err(bad("more than one Content-Length header")),
    };
    if length > MAX_BODY_BYTES {
        return Err(Response::error(
            413,
            &format!("the request body ({length} bytes) is larger than the {MAX_BODY_BYTES} byte limit"),
            Some("a scenario is a small JSON object; paste only the model's config.json"),
        ));
    }
    let mut body = buf[head_end + 4..].to_vec();
    body.truncate(length);
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        match stream.read(&mut chunk[..want]) {
            Ok(0) => return Err(bad("the request body is shorter than its Content-Length")),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => {
                return Err(Response::error(408, "the request body took too long to arrive", None));
            }
            Err(_) => return Ok(None),
        }
    }
    req.body = body;
    Ok(Some(req))
}

fn too_large_headers() -> Response {
    Response::error(431, &format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"), None)
}

/// Answer one connection: read, handle (a panic becomes a 500), write, close.
fn serve_connection(mut stream: TcpStream, handler: &(dyn Fn(&Request) -> Response + Sync)) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&mut stream) {
        Ok(None) => return,
        Ok(Some(req)) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req)))
            .unwrap_or_else(|_| Response::error(500, "internal error while answering this request", None)),
        Err(r) => r,
    };
    finish(&mut stream, &response);
}

/// Write the answer, then read what the client still sends (bounded) so that closing the
/// socket does not reset the connection before the client has read the answer.
fn finish(stream: &mut TcpStream, response: &Response) {
    if response.write_to(stream).is_err() {
        return;
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 8192];
    let mut drained = 0usize;
    while drained < 4 * MAX_BODY_BYTES {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Accept connections on `listener` forever, answering each with `handler` on one of
/// `threads` workers.
pub fn run(listener: TcpListener, threads: usize, handler: Arc<dyn Fn(&Request) -> Response + Send + Sync>) {
    let (tx, rx) = sync_channel::<TcpStream>(QUEUE);
    let rx: Arc<Mutex<Receiver<TcpStream>>> = Arc::new(Mutex::new(rx));
    for _ in 0..threads.max(1) {
        let rx = Arc::clone(&rx);
        let handler = Arc::clone(&handler);
        std::thread::spawn(move || loop {
            // A poisoned lock only means another worker panicked while waiting: keep going.
            let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
            match next {
                Ok(stream) => serve_connection(stream, &*handler),
                Err(_) => return,
            }
        });
    }
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if let Err(TrySendError::Full(mut stream)) = tx.try_send(stream) {
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let busy = Response::error(503, "the server is busy", Some("try again in a moment"));
            let _ = busy.write_to(&mut stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<Option<Request>, Response> {
        read_request(&mut std::io::Cursor::new(raw.to_vec()))
    }

    #[test]
    fn reads_a_request_with_its_body() {
        let r = parse(b"POST /api/estimate?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nabcdEXTRA")
            .unwrap()
            .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_str()), ("POST", "/api/estimate", "x=1"));
        assert_eq!(r.header("HOST"), Some("localhost"));
        assert_eq!(r.body, b"abcd");
    }

    #[test]
    fn malformed_requests_get_400_oversized_ones_413_and_431() {
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -4\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
            b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n",
            b"GET / HTTP/1.1\r\n",
        ] {
            assert_eq!(parse(raw).unwrap_err().status, 400, "{}", String::from_utf8_lossy(raw));
        }
        let huge = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY_BYTES + 1);
        assert_eq!(parse(huge.as_bytes()).unwrap_err().status, 413);
        let beyond_usize = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        assert_eq!(parse(beyond_usize).unwrap_err().status, 413);
        let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(parse(long_header.as_bytes()).unwrap_err().status, 431);
        assert!(parse(b"").unwrap().is_none());
    }
}
