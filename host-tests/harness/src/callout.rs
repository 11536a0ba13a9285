//! HTTP callouts (`proxy_http_call`). Nothing leaves the machine: each upstream cluster a test
//! names gets scripted replies (a response, a timeout or a reset), the host queues each call a
//! module makes, and the harness answers the queue through `proxy_on_http_call_response` when
//! the module waits for it, the way Envoy does once the upstream has answered.

use std::collections::{BTreeMap, VecDeque};

use crate::headers::HeaderMap;

/// What the scripted upstream does with one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutReply {
    /// The upstream answers with this status, headers and body.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The upstream never answers: after the call's own timeout the module is told the call
    /// failed (no headers, no body), and the harness clock has moved by that timeout.
    Timeout,
    /// The connection fails at once; the module is told the call failed.
    Reset,
}

impl CalloutReply {
    /// A `200` with a JSON body, the shape of a JWKS or token endpoint answer.
    pub fn json(body: impl Into<Vec<u8>>) -> Self {
        CalloutReply::Respond {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }
}

/// Scripted replies, per upstream cluster name.
///
/// One-shot replies are used first, in the order given; then the standing reply, if any.
/// A call to a cluster that has neither is refused at dispatch with `BadArgument`, which is
/// what Envoy answers for a cluster it does not know.
#[derive(Debug, Clone, Default)]
pub struct CalloutScript {
    once: BTreeMap<String, VecDeque<CalloutReply>>,
    always: BTreeMap<String, CalloutReply>,
}

impl CalloutScript {
    pub fn respond_always(&mut self, upstream: &str, reply: CalloutReply) {
        self.always.insert(upstream.to_string(), reply);
    }

    pub fn respond_once(&mut self, upstream: &str, reply: CalloutReply) {
        self.once
            .entry(upstream.to_string())
            .or_default()
            .push_back(reply);
    }

    pub fn clear(&mut self) {
        self.once.clear();
        self.always.clear();
    }

    /// The reply for the next call to `upstream`, or `None` for a cluster nobody scripted.
    pub(crate) fn next_reply(&mut self, upstream: &str) -> Option<CalloutReply> {
        if let Some(reply) = self.once.get_mut(upstream).and_then(VecDeque::pop_front) {
            return Some(reply);
        }
        self.always.get(upstream).cloned()
    }
}

/// A call the module made, as a test can inspect it afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutRecord {
    pub token: u32,
    pub context_id: u32,
    pub upstream: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

/// A call made and not yet answered.
#[derive(Debug, Clone)]
pub struct PendingCallout {
    pub token: u32,
    pub context_id: u32,
    pub timeout_ms: u32,
    pub reply: CalloutReply,
}

/// The answer being delivered right now, readable by the module during
/// `proxy_on_http_call_response` and gone afterwards.
#[derive(Debug, Clone, Default)]
pub struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}
