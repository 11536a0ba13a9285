//! The functions the host gives the module: the proxy-wasm ABI under `env`, and the WASI
//! preview 1 subset under `wasi_snapshot_preview1`. Any other import the module declares is
//! linked to a trap that names it, so a module that needs more still loads and fails only
//! when it calls the missing function.

pub mod proxy;
pub mod wasi;
