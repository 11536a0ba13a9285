//! `taskgate-envoy jwks`: remote keys in a real Envoy, against an issuer this test controls.
//!
//! The issuer is a JWKS server on 127.0.0.1 (a port the system picks) whose answer the test
//! switches between good key sets and faults, and which counts the requests it gets. Envoy
//! reaches it through a cluster `issuer_jwks` added to the suite bootstrap; the module fetches
//! through that cluster. The server serves a bounded number of requests and stops when dropped.
//!
//! Checks: the first fetch; header values that are not UTF-8, sent byte for byte ([`raw`]); a
//! rotation picked up by the first request that needs it, without a failed request; each fault
//! (slow, 500, redirect, not JSON, huge, key-less, unusable keys) leaving traffic with the old
//! keys flowing, the probes spaced by the growing retry delay; and a flood of 1,000 made-up
//! `kid`s causing at most one fetch per `kid_refetch_interval`, counted at the server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use taskgate_scenario::{KeyRing, MintSpec, PreparedRequest, TestKey};

use crate::bootstrap::{self, Module};
use crate::client::{Client, ALLOWED};
use crate::envoy::{Envoy, EnvoyOptions};
use crate::raw;
use crate::upstream::{parse_echo, EchoUpstream};

const ISSUER: &str = "https://issuer.test";
const SUBJECT: &str = "spiffe://prod.acme/ns/shop/sa/checkout";
const HOST: &str = "api.internal";
const PATH: &str = "/v1/items";
const CLUSTER: &str = "issuer_jwks";
/// Requests the JWKS server answers before it stops.
const MAX_JWKS_REQUESTS: usize = 200;
/// Requests in the flood of made-up `kid`s.
const FLOOD: usize = 1000;
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Envoy worker threads.
const WORKERS: usize = 2;
/// Requests sent at once for a key of a rotation.
const CONCURRENT: usize = 8;

/// What the JWKS server answers.
#[derive(Debug, Clone)]
enum Answer {
    Json(String),
    Status(u16),
    Redirect,
    NotJson,
    /// Waits this long before answering (past the fetch timeout), then answers the JSON.
    Slow(Duration, String),
}

/// The issuer's JWKS endpoint.
struct JwksServer {
    addr: SocketAddr,
    answer: Arc<Mutex<Answer>>,
    served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl JwksServer {
    fn start(answer: Answer) -> Result<Self, String> {
        let server = tiny_http::Server::http("127.0.0.1:0")
            .map_err(|error| format!("cannot start the JWKS server: {error}"))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the JWKS server has no ip address")?;
        let answer = Arc::new(Mutex::new(answer));
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, f) = (Arc::clone(&answer), Arc::clone(&served), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("jwks-server".into())
            .spawn(move || serve(&server, &a, &s, &f))
            .map_err(|error| format!("cannot start the JWKS server thread: {error}"))?;
        Ok(Self {
            addr,
            answer,
            served,
            stop,
            thread: Some(thread),
        })
    }

    fn set(&self, answer: Answer) {
        if let Ok(mut current) = self.answer.lock() {
            *current = answer;
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    server: &tiny_http::Server,
    answer: &Mutex<Answer>,
    served: &AtomicUsize,
    stop: &AtomicBool,
) {
    while served.load(Ordering::SeqCst) < MAX_JWKS_REQUESTS && !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(POLL_INTERVAL) {
            Ok(Some(request)) => {
                served.fetch_add(1, Ordering::SeqCst);
                let current = answer
                    .lock()
                    .map(|a| a.clone())
                    .unwrap_or(Answer::Status(500));
                respond(request, current);
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

fn respond(request: tiny_http::Request, answer: Answer) {
    let header = |name: &str, value: &str| {
        tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
    };
    let json = |body: String| {
        let mut response = tiny_http::Response::from_string(body);
        if let Some(h) = header("content-type", "application/json") {
            response.add_header(h);
        }
        response
    };
    let response = match answer {
        Answer::Json(body) => json(body),
        Answer::Slow(wait, body) => {
            std::thread::sleep(wait);
            json(body)
        }
        Answer::Status(status) => {
            tiny_http::Response::from_string("unavailable").with_status_code(status)
        }
        Answer::Redirect => {
            let mut response = tiny_http::Response::from_string("").with_status_code(302);
            if let Some(h) = header("location", "http://127.0.0.1:9/jwks.json") {
                response.add_header(h);
            }
            response
        }
        Answer::NotJson => tiny_http::Response::from_string("<html>maintenance</html>"),
    };
    let _ = request.respond(response);
}

/// Outcomes other than allowed, for a failure message.
fn summarize(outcomes: &[Result<(u16, String), String>]) -> String {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Ok((200, reason)) if reason == ALLOWED => None,
            Ok((status, reason)) => Some(format!("{status} {reason}")),
            Err(error) => Some(error.clone()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bootstrap with a cluster to the JWKS server.
fn with_jwks_cluster(bootstrap: &str, port: u16) -> String {
    let cluster = format!(
        "  clusters:\n  - name: {CLUSTER}\n    type: STATIC\n    connect_timeout: 1s\n    \
         load_assignment:\n      cluster_name: {CLUSTER}\n      endpoints:\n      - lb_endpoints:\n        \
         - endpoint:\n            address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}\n"
    );
    // Each allowed request gets a connection of its own to the echo upstream: its server
    // (tiny_http) was seen to leave requests on reused connections unanswered when several
    // arrive at once, which Envoy reports as a 504 for a request the module allowed.
    let echo = "  - name: echo\n    type: STATIC\n    typed_extension_protocol_options:\n      \
                envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n        \
                \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n        \
                common_http_protocol_options: {max_requests_per_connection: 1}\n        \
                explicit_http_config: {http_protocol_options: {}}\n";
    bootstrap.replacen("  clusters:\n", &cluster, 1).replacen(
        "  - name: echo\n    type: STATIC\n",
        echo,
        1,
    )
}

fn policy(kid_refetch_interval: &str) -> String {
    json!({
        "providers": {"issuer": {
            "issuer": ISSUER,
            "remote_jwks": {
                "http_uri": {"uri": "http://issuer.test/jwks.json", "cluster": CLUSTER, "timeout": "1s"},
                "cache_duration": "600s",
                "kid_refetch_interval": kid_refetch_interval,
                "retry_interval": "1s",
                "max_response_bytes": 4096
            }
        }},
        "rules": [{"name": "any", "match": {"path": {"prefix": "/"}}, "providers": ["issuer"]}]
    })
    .to_string()
}

struct Run<'a> {
    keys: &'a KeyRing,
    client: Client,
    listener: SocketAddr,
    passed: usize,
    failed: usize,
}

impl Run<'_> {
    fn token(&self, key: &str, kid: Option<&str>) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let mut header = serde_json::Map::new();
        if let Some(kid) = kid {
            header.insert("kid".into(), kid.into());
        }
        let spec: MintSpec = serde_json::from_value(json!({
            "key": key, "header": header,
            "claims": {"iss": ISSUER, "sub": SUBJECT}
        }))
        .map_err(|e| e.to_string())?;
        spec.mint(self.keys, now).map_err(|e| e.to_string())
    }

    fn send(&self, key: &str, kid: Option<&str>) -> Result<(u16, String), String> {
        self.send_token(&self.token(key, kid)?)
    }

    fn send_token(&self, token: &str) -> Result<(u16, String), String> {
        let request = PreparedRequest {
            method: "GET".into(),
            host: HOST.into(),
            path: PATH.into(),
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            properties: Default::default(),
            peer: None,
        };
        let observed = self.client.send(self.listener, &request, None)?;
        Ok((observed.status, observed.reason))
    }

    /// Sends one request and checks its outcome.
    fn expect(
        &mut self,
        what: &str,
        key: &str,
        kid: Option<&str>,
        want: (u16, &str),
    ) -> Result<(), String> {
        let (status, reason) = self.send(key, kid)?;
        self.check(
            what,
            (status, reason.as_str()) == want,
            &format!("{status} {reason}"),
        );
        Ok(())
    }

    /// Header values that are not UTF-8, which only a real proxy hands the module: a client's
    /// identity headers holding such bytes (under both spellings) are replaced by the verified
    /// ones, so the echo upstream, which reads ASCII only, sees the token's subject alone; such a
    /// byte inside the token makes the token malformed.
    fn raw_bytes(&mut self) -> Result<(), String> {
        let bearer = format!("Bearer {}", self.token("old", None)?);
        let headers: [(&str, &[u8]); 3] = [
            ("authorization", bearer.as_bytes()),
            ("x-taskgate-subject", b"caf\xe9"),
            ("x_taskgate-subject", b"cr\xe8me"),
        ];
        let answer = raw::get(self.listener, HOST, PATH, &headers)?;
        let subjects: Vec<String> = parse_echo(&answer.body)
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| name.replace('_', "-") == "x-taskgate-subject")
            .map(|(_, value)| value)
            .collect();
        self.check(
            "identity headers that are not UTF-8 are replaced by the verified subject",
            answer.status == 200 && subjects == [SUBJECT],
            &format!("{} subjects {subjects:?}", answer.status),
        );
        let broken = [bearer.as_bytes(), b"\xff"].concat();
        let answer = raw::get(self.listener, HOST, PATH, &[("authorization", &broken)])?;
        let observed = (answer.status, answer.reason.as_deref());
        self.check(
            "a token holding a byte that is not UTF-8 is malformed",
            observed == (401, Some("token_malformed")),
            &format!("{} {}", observed.0, observed.1.unwrap_or("-")),
        );
        Ok(())
    }

    fn check(&mut self, what: &str, ok: bool, observed: &str) {
        if ok {
            self.passed += 1;
            println!("ok       {what:<64} {observed}");
        } else {
            self.failed += 1;
            println!("MISMATCH {what:<64} {observed}");
        }
    }
}

/// How long to wait before the probe that follows `failures` failed fetches in a row, so that
/// it may fetch: past the 1 s refetch interval and past the retry delay, the policy's 1 s
/// `retry_interval` doubled for each failure after the first, up to 8 × it (three doublings, the
/// module's `MAX_BACKOFF_DOUBLINGS`); keys came before the faults, so the delay grows.
fn probe_wait(failures: usize) -> Duration {
    let retry_ms: u64 = match failures {
        0 => 0,
        n => 1000 << (n - 1).min(3),
    };
    Duration::from_millis(retry_ms.max(1000) + 1100)
}

/// Generates two test keys (`old`, `new`) into a temporary folder and loads them.
fn test_keys(work_dir: &Path) -> Result<KeyRing, String> {
    let dir = work_dir.join("jwks-keys");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (name, kid) in [("old", "old-1"), ("new", "new-1"), ("next", "next-1")] {
        let jwk = TestKey::generate("ES256", kid)?;
        std::fs::write(dir.join(format!("{name}.jwk.json")), jwk.to_string())
            .map_err(|e| e.to_string())?;
    }
    let ring = KeyRing::load(&dir).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    ring
}

fn jwks_text(keys: &KeyRing, names: &[&str]) -> Result<String, String> {
    Ok(keys.jwks(names)?.to_string())
}

/// Runs every check; `Ok(false)` when one failed.
pub fn run(options: &EnvoyOptions, wasm: &Path, deadline: Instant) -> Result<bool, String> {
    let keys = test_keys(&options.work_dir)?;
    let old = jwks_text(&keys, &["old"])?;
    let both = jwks_text(&keys, &["old", "new"])?;
    let server = JwksServer::start(Answer::Json(old.clone()))?;
    let upstream = EchoUpstream::start(FLOOD + 200)?;
    let lifetime = deadline.saturating_duration_since(Instant::now());
    // Two workers, two instances of the module: fetches are counted for the whole proxy.
    let options = EnvoyOptions {
        lifetime,
        concurrency: WORKERS,
        ..options.clone()
    };
    let start = |name: &str, interval: &str| -> Result<Envoy, String> {
        let config = policy(interval);
        let text = bootstrap::render(
            upstream.port(),
            Some(Module {
                wasm,
                config: &config,
            }),
            None,
        )?;
        Envoy::start(
            &options,
            name,
            &with_jwks_cluster(&text, server.addr.port()),
        )
    };

    let envoy = start("remote-jwks", "1s")?;
    let mut run = Run {
        keys: &keys,
        client: Client::new(),
        listener: envoy.listener(),
        passed: 0,
        failed: 0,
    };
    run.expect(
        "the first request is allowed once the first fetch ends",
        "old",
        None,
        (200, ALLOWED),
    )?;
    run.raw_bytes()?;
    server.set(Answer::Json(both.clone()));
    let before = server.served();
    run.expect(
        "a rotated key is picked up by the first request needing it",
        "new",
        None,
        (200, ALLOWED),
    )?;
    let rotation = server.served() - before;
    run.check(
        "the rotation cost one fetch",
        rotation == 1,
        &format!("{rotation} fetches"),
    );
    // A second rotation met by several requests at once, on both workers: they wait on one
    // fetch and are all allowed.
    server.set(Answer::Json(jwks_text(&keys, &["old", "new", "next"])?));
    std::thread::sleep(Duration::from_millis(1100));
    let before = server.served();
    let tokens = (0..CONCURRENT)
        .map(|_| run.token("next", None))
        .collect::<Result<Vec<_>, _>>()?;
    let outcomes: Vec<Result<(u16, String), String>> = std::thread::scope(|scope| {
        let run = &run;
        let handles: Vec<_> = tokens
            .iter()
            .map(|token| scope.spawn(move || run.send_token(token)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a client thread failed".to_owned()))
            })
            .collect()
    });
    let allowed = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok((200, reason)) if reason == ALLOWED))
        .count();
    run.check(
        &format!("{CONCURRENT} requests at once for a rotated key are all allowed"),
        allowed == CONCURRENT,
        &format!("{allowed} allowed {}", summarize(&outcomes)),
    );
    let fetched = server.served() - before;
    run.check(
        "they waited on one fetch for the whole proxy",
        fetched == 1,
        &format!("{fetched} fetches"),
    );

    let huge =
        json!({"keys": keys.jwks(&["new"])?.get("keys"), "padding": "x".repeat(8000)}).to_string();
    let faults = [
        (
            "slow",
            Answer::Slow(Duration::from_millis(1500), both.clone()),
        ),
        ("500", Answer::Status(500)),
        ("redirect", Answer::Redirect),
        ("not json", Answer::NotJson),
        ("huge", Answer::Json(huge)),
        ("key-less", Answer::Json(r#"{"keys": []}"#.into())),
        (
            "unusable keys",
            Answer::Json(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.into()),
        ),
    ];
    for (i, (name, answer)) in faults.into_iter().enumerate() {
        std::thread::sleep(probe_wait(i));
        server.set(answer);
        let before = server.served();
        let probe = format!("probe-{i}");
        run.expect(
            &format!("{name}: a token naming an unknown kid is refused"),
            "old",
            Some(&probe),
            (401, "kid_unknown"),
        )?;
        run.check(
            &format!("{name}: it caused one fetch"),
            server.served() - before == 1,
            &format!("{} fetches", server.served() - before),
        );
        run.expect(
            &format!("{name}: traffic with the old keys flows"),
            "old",
            None,
            (200, ALLOWED),
        )?;
        run.expect(
            &format!("{name}: traffic with the rotated key flows"),
            "new",
            None,
            (200, ALLOWED),
        )?;
    }
    drop(envoy);

    server.set(Answer::Json(both));
    let envoy = start("remote-jwks-flood", "30s")?;
    run.listener = envoy.listener();
    run.expect("flood: warm-up request", "new", None, (200, ALLOWED))?;
    let before = server.served();
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..FLOOD {
        let (status, reason) = run.send("old", Some(&format!("made-up-{i}")))?;
        if (status, reason.as_str()) == (401, "kid_unknown") {
            refused += 1;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let fetched = server.served() - before;
    let bound = 1 + (elapsed / 30.0) as usize;
    run.check(
        &format!("flood: {FLOOD} made-up kids refused"),
        refused == FLOOD,
        &format!("{refused} refused"),
    );
    run.check(
        &format!("flood: at most {bound} fetch(es) in {elapsed:.1} s"),
        fetched <= bound,
        &format!("{fetched} fetches at the JWKS server"),
    );
    run.expect(
        "flood: traffic with good keys flows",
        "new",
        None,
        (200, ALLOWED),
    )?;
    drop(envoy);
    println!("{} passed, {} failed", run.passed, run.failed);
    Ok(run.failed == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn probes_wait_out_the_growing_retry_delay() {
        let waits: Vec<u128> = (0..6).map(|n| probe_wait(n).as_millis()).collect();
        assert_eq!(waits, [2100, 2100, 3100, 5100, 9100, 9100]);
    }

    #[test]
    fn adds_the_jwks_cluster_before_the_others() {
        let text = with_jwks_cluster("static_resources:\n  clusters:\n  - name: echo\n", 4000);
        assert!(text.contains("  - name: issuer_jwks\n"));
        assert!(text.contains("port_value: 4000}}"));
        assert!(text.ends_with("  - name: echo\n"));
    }

    #[test]
    fn a_policy_names_the_cluster() {
        let value: Value = serde_json::from_str(&policy("30s")).unwrap();
        assert_eq!(
            value["providers"]["issuer"]["remote_jwks"]["http_uri"]["cluster"],
            CLUSTER
        );
    }
}
