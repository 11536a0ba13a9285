//! The echo upstream: the service that Envoy forwards allowed requests to.
//!
//! It answers every request with a JSON body listing the request headers it
//! received, so that a test can see what the module forwarded upstream (the
//! verified identity) and what it stripped (the token). It listens on
//! 127.0.0.1 only, on a port the system picks, serves a bounded number of
//! requests, and stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// The field that marks a body as written by this upstream, so that a 200
/// produced by anything else (a direct response, a misrouted request) is
/// never taken for an allowed request.
pub const ECHO_MARKER: &str = "taskgate_echo";

/// How often the serving thread looks at the stop flag while idle.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A running echo upstream; dropping it stops the server and joins its thread.
#[derive(Debug)]
pub struct EchoUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoUpstream {
    /// Starts the upstream on `127.0.0.1:0`; it serves at most `max_requests`.
    pub fn start(max_requests: usize) -> Result<Self, String> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|error| format!("cannot start the echo upstream: {error}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the echo upstream has no ip address")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("echo-upstream".into())
            .spawn(move || serve(&server, &flag, max_requests))
            .map_err(|error| format!("cannot start the echo upstream thread: {error}"))?;
        Ok(Self {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread only ever returns; a join error would mean it
            // panicked, and there is nothing left to clean up then.
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, stop: &AtomicBool, max_requests: usize) {
    let mut served = 0;
    while served < max_requests && !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(POLL_INTERVAL) {
            Ok(Some(request)) => {
                served += 1;
                answer(request);
            }
            Ok(None) => {}
            Err(error) => {
                eprintln!("echo upstream: stopped on an accept error: {error}");
                return;
            }
        }
    }
}

fn answer(request: tiny_http::Request) {
    let body = echo_body(&request).to_string();
    let content_type =
        tiny_http::Header::from_bytes(&b"content-type"[..], &b"application/json"[..]);
    let mut response = tiny_http::Response::from_string(body);
    if let Ok(header) = content_type {
        response.add_header(header);
    }
    // A client that went away is not this server's failure; Envoy reports
    // its own side of it.
    let _ = request.respond(response);
}

/// The body for one request: its method, its path, and its headers in the
/// order they arrived, as `[name, value]` pairs so that repeated headers
/// stay visible.
fn echo_body(request: &tiny_http::Request) -> Value {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|header| {
            let name = header.field.as_str().as_str().to_ascii_lowercase();
            json!([name, header.value.as_str()])
        })
        .collect();
    json!({
        ECHO_MARKER: true,
        "method": request.method().as_str(),
        "path": request.url(),
        "headers": headers,
    })
}

/// The headers that the echo upstream saw, if `body` is one of its answers.
pub fn parse_echo(body: &str) -> Option<Vec<(String, String)>> {
    let value: Value = serde_json::from_str(body).ok()?;
    if value.get(ECHO_MARKER) != Some(&Value::Bool(true)) {
        return None;
    }
    value
        .get("headers")?
        .as_array()?
        .iter()
        .map(|pair| match pair.as_array()?.as_slice() {
            [name, value] => Some((name.as_str()?.to_owned(), value.as_str()?.to_owned())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_the_headers_it_echoed() {
        let body = json!({
            ECHO_MARKER: true,
            "headers": [["x-a", "1"], ["x-a", "2"]],
        });
        let headers = parse_echo(&body.to_string()).unwrap();
        assert_eq!(
            headers,
            vec![("x-a".into(), "1".into()), ("x-a".into(), "2".into())]
        );
    }

    #[test]
    fn refuses_a_json_body_without_the_marker() {
        let body = json!({"headers": [["x-a", "1"]]});
        assert_eq!(parse_echo(&body.to_string()), None);
    }

    #[test]
    fn refuses_a_body_that_is_not_json() {
        assert_eq!(parse_echo("hello\n"), None);
    }
}
