//! taskgate-harness: a proxy-wasm host on wasmtime that loads the very `.wasm` Envoy loads and
//! drives it the way Envoy does, against explicit, inspectable host state: a controllable
//! clock, scripted upstreams for callouts, header maps, properties, shared data, metrics and
//! captured logs. It lets a policy be tried and tested without a proxy, and lets the golden
//! scenarios run on the real module.
//!
//! ```no_run
//! use taskgate_harness::{Harness, Request};
//!
//! let mut harness = Harness::new("target/taskgate.wasm")?;
//! harness.configure(br#"{"providers": {}}"#)?;
//! let exchange = harness.send(&Request::get("api.internal", "/v1/items"))?;
//! println!("{}", exchange.status());
//! # Ok::<(), taskgate_harness::HarnessError>(())
//! ```

pub mod abi;
pub mod callout;
pub mod clock;
pub mod error;
pub mod exchange;
mod guest;
pub mod harness;
pub mod headers;
mod imports;
pub mod logs;
pub mod metrics;
pub mod module;
pub mod properties;
pub mod scenario;
pub mod shared;
pub mod state;

pub use abi::LogLevel;
pub use callout::{CalloutRecord, CalloutReply, CalloutScript};
pub use clock::Clock;
pub use error::HarnessError;
pub use exchange::{Exchange, LocalResponse, Outcome, Request, Response};
pub use harness::{Harness, HostOptions};
pub use logs::{LogLine, LogSource};
pub use module::Plugin;
pub use scenario::WasmtimeHost;

/// Where `scripts/build-module` puts the module a proxy loads, relative to the workspace root.
pub const RELEASE_MODULE: &str = "target/taskgate.wasm";

/// The release module of this workspace: under `$CARGO_TARGET_DIR` when that is set, else
/// under the workspace's own `target/`.
pub fn default_module_path() -> std::path::PathBuf {
    let relative = "taskgate.wasm";
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join(relative),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(RELEASE_MODULE),
    }
}

/// The command that builds the release module, for messages that tell a reader how to get it.
pub const BUILD_COMMAND: &str = "scripts/build-module";
