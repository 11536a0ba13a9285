//! The harness's error type: one enum covering loading, instantiating, configuring and running
//! the module. Messages are lowercase, name the callback or export involved in backticks, and
//! carry the module's own words (its error log lines, its panic message) where it gave any.

use std::path::PathBuf;

/// Everything that can go wrong between reading a `.wasm` file and answering a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    #[error("cannot read module `{path}`: {source}")]
    ReadModule {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot compile module `{path}`: {message}")]
    Compile { path: PathBuf, message: String },

    #[error(
        "module does not speak proxy-wasm abi 0.2.1: it has no `proxy_abi_version_0_2_1` export"
    )]
    UnsupportedAbi,

    #[error("module does not export `{name}`")]
    MissingExport { name: &'static str },

    #[error("module export `{name}` has the wrong signature: {message}")]
    ExportSignature { name: &'static str, message: String },

    #[error("cannot instantiate module: {message}")]
    Instantiate { message: String },

    #[error("module trapped in `{callback}`: {message}{}", panic_suffix(.panic))]
    Trap {
        callback: &'static str,
        message: String,
        /// The panic message the module logged at critical level just before trapping.
        panic: Option<String>,
    },

    #[error("module exited with code {code} in `{callback}`")]
    Exit { callback: &'static str, code: u32 },

    #[error("module rejected the vm configuration in `proxy_on_vm_start`{}", log_suffix(.errors))]
    VmStartRejected { errors: Vec<String> },

    #[error("module rejected the plugin configuration in `proxy_on_configure`{}", log_suffix(.errors))]
    ConfigRejected {
        /// The lines the module logged at error level or above while configuring.
        errors: Vec<String>,
    },

    #[error("module is not configured: call `configure` first")]
    NotConfigured,

    #[error("module crashed earlier in `{callback}` and must be reloaded")]
    Crashed { callback: &'static str },

    #[error("module paused the request in `{callback}` and never resumed or answered it")]
    Stalled { callback: &'static str },

    #[error("module closed the stream in `{callback}` without answering it")]
    StreamReset { callback: &'static str },
}

fn panic_suffix(panic: &Option<String>) -> String {
    panic
        .as_ref()
        .map(|message| format!(": {message}"))
        .unwrap_or_default()
}

fn log_suffix(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}
