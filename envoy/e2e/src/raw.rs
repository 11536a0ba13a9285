//! Requests written byte for byte on a plain TCP connection, for what an HTTP client library
//! will not send: header values that are not UTF-8. Envoy passes such bytes (obs-text) to the
//! module, and no other host of the golden scenarios can, since their headers are strings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long one request may take, connecting, writing and reading.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response read; the echo upstream's answers are far shorter.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// The status, the `x-taskgate-reason` header and the body of a response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub reason: Option<String>,
    pub body: String,
}

/// Sends `GET path` to `listener` with `host` and `headers` as given, on a connection of its
/// own that the request closes.
pub fn get(
    listener: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &[u8])],
) -> Result<Answer, String> {
    let mut request =
        format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n").into_bytes();
    for (name, value) in headers {
        request.extend_from_slice(name.as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let failed =
        |what: &str, error: std::io::Error| format!("raw request to {listener}: {what}: {error}");
    let mut stream =
        TcpStream::connect_timeout(&listener, TIMEOUT).map_err(|e| failed("connect", e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| failed("timeouts", e))?;
    stream.write_all(&request).map_err(|e| failed("write", e))?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut response)
        .map_err(|e| failed("read", e))?;
    parse(&response).ok_or_else(|| {
        format!(
            "raw request to {listener}: no HTTP response in {} bytes",
            response.len()
        )
    })
}

fn parse(response: &[u8]) -> Option<Answer> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let reason = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("x-taskgate-reason"))
        .map(|(_, value)| value.trim().to_owned());
    Some(Answer {
        status,
        reason,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_and_the_reason() {
        let answer =
            parse(b"HTTP/1.1 401 Unauthorized\r\nX-Taskgate-Reason: token_malformed\r\n\r\n{}")
                .unwrap();
        assert_eq!(answer.status, 401);
        assert_eq!(answer.reason.as_deref(), Some("token_malformed"));
        let allowed = parse(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((allowed.status, allowed.reason), (200, None));
        assert_eq!(allowed.body, "{}");
        assert!(parse(b"HTTP/1.1 200 OK\r\n").is_none());
    }
}
