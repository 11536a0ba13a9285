//! The Envoy bootstrap for one suite, rendered from `envoy/taskgate.yaml.tmpl`.
//!
//! The template is compiled into the binary so that the test cannot run
//! against a file other than the one committed beside it. Values are written
//! as JSON strings, which YAML reads as double-quoted scalars: a policy's
//! quotes, newlines and backslashes reach the module exactly as written.

use std::path::Path;

const TEMPLATE: &str = include_str!("../../taskgate.yaml.tmpl");
const FILTER_BEGIN: &str = "# taskgate:begin";
const FILTER_END: &str = "# taskgate:end";

/// The module and the plugin configuration it starts with.
#[derive(Debug, Clone, Copy)]
pub struct Module<'a> {
    pub wasm: &'a Path,
    pub config: &'a str,
}

/// Renders the bootstrap; without `module`, Envoy runs with no wasm filter.
pub fn render(upstream_port: u16, module: Option<Module<'_>>) -> Result<String, String> {
    let text = match module {
        Some(module) => {
            let wasm = module
                .wasm
                .to_str()
                .ok_or_else(|| format!("module path `{}` is not utf-8", module.wasm.display()))?;
            TEMPLATE
                .replace("{{WASM_PATH}}", &json_string(wasm)?)
                .replace("{{PLUGIN_CONFIG}}", &json_string(module.config)?)
        }
        None => without_filter(TEMPLATE),
    };
    let text = text.replace("{{UPSTREAM_PORT}}", &upstream_port.to_string());
    match text.find("{{") {
        Some(at) => Err(format!(
            "the bootstrap template left a placeholder unfilled near byte {at}"
        )),
        None => Ok(text),
    }
}

fn json_string(text: &str) -> Result<String, String> {
    serde_json::to_string(text).map_err(|error| format!("cannot quote a bootstrap value: {error}"))
}

/// The template without the lines of the wasm filter, markers included.
fn without_filter(template: &str) -> String {
    let mut inside = false;
    let mut kept = String::with_capacity(template.len());
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed == FILTER_BEGIN {
            inside = true;
        } else if trimmed == FILTER_END {
            inside = false;
        } else if !inside {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder_with_the_module() {
        let module = Module {
            wasm: Path::new("/m/taskgate_proxy.wasm"),
            config: "{\"providers\": {}}",
        };
        let text = render(8080, Some(module)).unwrap();
        assert!(text.contains("port_value: 8080"));
        assert!(text.contains("filename: \"/m/taskgate_proxy.wasm\""));
        assert!(text.contains(r#"value: "{\"providers\": {}}""#));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn drops_the_wasm_filter_without_a_module() {
        let text = render(8080, None).unwrap();
        assert!(!text.contains("envoy.filters.http.wasm"));
        assert!(text.contains("envoy.filters.http.router"));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn quotes_a_policy_with_newlines_and_backslashes() {
        let module = Module {
            wasm: Path::new("m.wasm"),
            config: "{\n  \"a\": \"b\\\\c\"\n}",
        };
        let text = render(1, Some(module)).unwrap();
        assert!(text.contains(r#"value: "{\n  \"a\": \"b\\\\c\"\n}""#));
    }
}
