//! taskgate's decision logic: holds every request to a short-lived, purpose-bound workload token.
//!
//! This crate is the whole product minus the host: it compiles a configuration into a [`Gate`],
//! finds tokens in a request, verifies them against each issuer's keys, evaluates rules and
//! returns a [`Decision`] with a stable reason. It does no I/O and knows no proxy: the proxy-wasm
//! module, the JavaScript binding and the test hosts are thin layers that hand it a [`Request`]
//! and the time, and act on the decision.
//!
//! The stages, in the order a request meets them: [`extract`] (token locations), [`framing`]
//! (shape and strict JSON), [`provider`] (issuer, header, [`jwks`] key, signature, times,
//! audience), [`rule`] (route, subject, claims, scopes, bindings) and [`decision`].

pub mod cache;
pub mod compile;
pub mod config;
pub mod decision;
pub mod extract;
pub mod framing;
pub mod gate;
pub mod index;
pub mod json;
pub mod jwks;
pub mod provider;
pub mod remote;
pub mod request;
pub mod rule;
pub mod signature;
pub mod subject;

pub use cache::TokenCache;
pub use compile::ConfigError;
pub use decision::{Decision, Reason, Verdict};
pub use gate::Gate;
pub use request::{Peer, Request};
