//! Checks a user-facing bootstrap (`envoy/envoy.yaml`) against the real
//! module with `envoy --mode validate`, which loads the module and hands it
//! the policy without opening any port: an example whose policy the module
//! refuses fails here instead of in a reader's hands.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The module path that the example bootstraps name, relative to the
/// repository root.
const EXAMPLE_WASM_PATH: &str = "target/taskgate.wasm";
/// The longest a validation may take.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Validates `config` with the module at `wasm`; `Err` holds Envoy's reason.
pub fn validate(envoy: &Path, config: &Path, wasm: &Path, work_dir: &Path) -> Result<(), String> {
    let text = fs::read_to_string(config)
        .map_err(|error| format!("cannot read `{}`: {error}", config.display()))?;
    if !text.contains(EXAMPLE_WASM_PATH) {
        return Err(format!(
            "`{}` does not load the module from `{EXAMPLE_WASM_PATH}`",
            config.display()
        ));
    }
    let wasm = wasm
        .to_str()
        .ok_or_else(|| format!("module path `{}` is not utf-8", wasm.display()))?;
    fs::create_dir_all(work_dir)
        .map_err(|error| format!("cannot create `{}`: {error}", work_dir.display()))?;
    let stem = config
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("config");
    let rendered = work_dir.join(format!("validate-{stem}.yaml"));
    fs::write(&rendered, text.replace(EXAMPLE_WASM_PATH, wasm))
        .map_err(|error| format!("cannot write `{}`: {error}", rendered.display()))?;
    let output = Command::new("timeout")
        .arg(format!("{}s", VALIDATE_TIMEOUT.as_secs()))
        .arg(envoy)
        .args(["--mode", "validate", "--log-level", "warning"])
        .arg("--config-path")
        .arg(&rendered)
        .output()
        .map_err(|error| format!("cannot run `{}`: {error}", envoy.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let log = String::from_utf8_lossy(&output.stderr);
    let said = String::from_utf8_lossy(&output.stdout);
    Err(format!(
        "envoy refused `{}` ({})\n{}{}",
        config.display(),
        output.status,
        said.trim(),
        log.trim()
    ))
}
