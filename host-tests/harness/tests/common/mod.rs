//! What the tests of the release module share: the module itself, compiled once per test binary.

use std::sync::OnceLock;

use taskgate_harness::Plugin;

#[expect(
    clippy::panic,
    reason = "a test helper: a missing module fails the test that needs it"
)]
pub fn plugin() -> Plugin {
    static PLUGIN: OnceLock<Result<Plugin, String>> = OnceLock::new();
    let loaded = PLUGIN.get_or_init(|| {
        let path = taskgate_harness::default_module_path();
        if !path.is_file() {
            return Err(format!(
                "the release module is missing at `{}`: build it with `{}`",
                path.display(),
                taskgate_harness::BUILD_COMMAND
            ));
        }
        Plugin::from_file(&path).map_err(|error| error.to_string())
    });
    match loaded {
        Ok(plugin) => plugin.clone(),
        Err(message) => panic!("{message}"),
    }
}
