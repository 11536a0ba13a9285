//! The Envoy bootstrap for one suite, rendered from `envoy/taskgate.yaml.tmpl`.
//!
//! The template is compiled into the binary so that the test cannot run
//! against a file other than the one committed beside it. Values are written
//! as JSON strings, which YAML reads as double-quoted scalars: a policy's
//! quotes, newlines and backslashes reach the module exactly as written.

use std::path::Path;

const TEMPLATE: &str = include_str!("../../taskgate.yaml.tmpl");
/// The block of the wasm filter.
const FILTER_BLOCK: &str = "taskgate";
/// The block of the listener's TLS context.
const TLS_BLOCK: &str = "tls";

/// The module and the plugin configuration it starts with.
#[derive(Debug, Clone, Copy)]
pub struct Module<'a> {
    pub wasm: &'a Path,
    pub config: &'a str,
}

/// The listener's certificate and the CA its clients' certificates chain to.
#[derive(Debug, Clone, Copy)]
pub struct Tls<'a> {
    pub server_cert_pem: &'a str,
    pub server_key_pem: &'a str,
    pub ca_cert_pem: &'a str,
}

/// Renders the bootstrap; without `module`, Envoy runs with no wasm filter,
/// and without `tls` its listener speaks plain HTTP.
pub fn render(
    upstream_port: u16,
    module: Option<Module<'_>>,
    tls: Option<Tls<'_>>,
) -> Result<String, String> {
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
        None => without_block(TEMPLATE, FILTER_BLOCK),
    };
    let text = match tls {
        Some(tls) => text
            .replace("{{SERVER_CERT}}", &json_string(tls.server_cert_pem)?)
            .replace("{{SERVER_KEY}}", &json_string(tls.server_key_pem)?)
            .replace("{{CA_CERT}}", &json_string(tls.ca_cert_pem)?),
        None => without_block(&text, TLS_BLOCK),
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

/// `template` without the lines between `# <block>:begin` and
/// `# <block>:end`, markers included.
fn without_block(template: &str, block: &str) -> String {
    let begin = format!("# {block}:begin");
    let end = format!("# {block}:end");
    let mut inside = false;
    let mut kept = String::with_capacity(template.len());
    for line in template.lines() {
        let trimmed = line.trim();
        if trimmed == begin {
            inside = true;
        } else if trimmed == end {
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
        let text = render(8080, Some(module), None).unwrap();
        assert!(text.contains("port_value: 8080"));
        assert!(!text.contains("transport_socket"));
        assert!(text.contains("filename: \"/m/taskgate_proxy.wasm\""));
        assert!(text.contains(r#"value: "{\"providers\": {}}""#));
        assert!(!text.contains("{{"));
    }

    #[test]
    fn drops_the_wasm_filter_without_a_module() {
        let text = render(8080, None, None).unwrap();
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
        let text = render(1, Some(module), None).unwrap();
        assert!(text.contains(r#"value: "{\n  \"a\": \"b\\\\c\"\n}""#));
    }

    #[test]
    fn gives_the_listener_the_suite_certificates() {
        let tls = Tls {
            server_cert_pem: "-----BEGIN CERTIFICATE-----\nS\n",
            server_key_pem: "-----BEGIN PRIVATE KEY-----\nK\n",
            ca_cert_pem: "-----BEGIN CERTIFICATE-----\nC\n",
        };
        let text = render(1, None, Some(tls)).unwrap();
        assert!(text.contains("transport_socket"));
        assert!(text.contains(r#"trusted_ca: {inline_string: "-----BEGIN CERTIFICATE-----\nC\n"}"#));
        assert!(!text.contains("{{"));
    }
}
