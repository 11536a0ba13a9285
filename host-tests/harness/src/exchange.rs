//! What goes into the harness for one request and what comes out: the downstream request, the
//! upstream's scripted answer, and the outcome the module decided (forwarded upstream with its
//! changes to the headers, or answered locally).

use std::collections::BTreeMap;

use crate::headers::HeaderMap;
use crate::logs::LogLine;

/// A downstream HTTP request as Envoy hands it to the filter chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub scheme: String,
    /// Regular headers, without pseudo-headers; names are lowercased on the way in.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Connection and request facts the module reads with `proxy_get_property`, by dotted
    /// name (`connection.uri_san_peer_certificate`, `connection.mtls`, `source.address`).
    pub properties: BTreeMap<String, String>,
    /// What the upstream answers if the module lets the request through.
    pub upstream_response: Response,
}

impl Request {
    pub fn get(authority: &str, path: &str) -> Self {
        Self {
            method: "GET".into(),
            authority: authority.into(),
            path: path.into(),
            scheme: "https".into(),
            headers: Vec::new(),
            body: Vec::new(),
            properties: BTreeMap::new(),
            upstream_response: Response::ok(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn property(mut self, name: &str, value: &str) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// The header map Envoy gives the module: pseudo-headers first, then the rest in order.
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.add(":authority", self.authority.clone());
        map.add(":path", self.path.clone());
        map.add(":method", self.method.clone());
        map.add(":scheme", self.scheme.clone());
        for (name, value) in &self.headers {
            map.add(name, value.clone());
        }
        map
    }
}

/// An HTTP response: the upstream's, or one the module sent itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Headers without `:status`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok() -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The first value of header `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A response the module produced with `proxy_send_local_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub response: Response,
    /// Envoy's `response_code_details` string.
    pub details: String,
    /// The gRPC status the module asked for; `-1` means none.
    pub grpc_status: i32,
}

/// What the module decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The request went upstream. `upstream_headers` is what the upstream received, after the
    /// module's changes; `response` is what reached the client, after the module's changes to
    /// the response headers.
    Forwarded {
        upstream_headers: Vec<(String, String)>,
        response: Response,
    },
    /// The module answered the request itself; nothing went upstream.
    Local(LocalResponse),
}

/// One request's trip through the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub outcome: Outcome,
    /// What the module logged while it handled this request.
    pub logs: Vec<LogLine>,
}

impl Exchange {
    /// The status the client saw.
    pub fn status(&self) -> u16 {
        self.response().status
    }

    /// The response the client saw.
    pub fn response(&self) -> &Response {
        match &self.outcome {
            Outcome::Forwarded { response, .. } => response,
            Outcome::Local(local) => &local.response,
        }
    }

    pub fn forwarded(&self) -> bool {
        matches!(self.outcome, Outcome::Forwarded { .. })
    }

    /// The headers the upstream received, or `None` when the module answered locally.
    pub fn upstream_headers(&self) -> Option<&[(String, String)]> {
        match &self.outcome {
            Outcome::Forwarded {
                upstream_headers, ..
            } => Some(upstream_headers),
            Outcome::Local(_) => None,
        }
    }

    /// The first value of `name` among the headers the upstream received.
    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        self.upstream_headers()?
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}
