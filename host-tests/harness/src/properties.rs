//! Properties a module reads with `proxy_get_property`: the path arrives as NUL-separated
//! segments (`connection` NUL `mtls`), is looked up here by its dotted name, and the value is
//! encoded the way Envoy encodes its attribute of that name (strings as bytes, booleans as one
//! byte, integers as eight little-endian bytes), so that a module reading it here reads it the
//! same way in Envoy.

use std::collections::BTreeMap;

use crate::abi::encode_map;
use crate::headers::HeaderMap;

/// Joins the ABI's NUL-separated path into the dotted name Envoy documents (`request.path`).
pub fn dotted_path(raw: &[u8]) -> String {
    raw.split(|byte| *byte == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".")
}

/// How Envoy types the attribute of a given name; anything not listed is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Text,
}

fn kind_of(name: &str) -> Kind {
    match name {
        "connection.mtls" => Kind::Bool,
        "source.port" | "destination.port" | "connection.id" | "request.size"
        | "request.total_size" | "response.code" | "response.size" => Kind::Int,
        _ => Kind::Text,
    }
}

/// Encodes a textual property value as Envoy would hand over an attribute of that name.
/// A boolean or integer that does not parse is passed as text, so a wrong scenario value is
/// visible to the module (and fails its check) rather than silently becoming `false` or `0`.
pub fn encode_value(name: &str, value: &str) -> Vec<u8> {
    match kind_of(name) {
        Kind::Bool => match value {
            "true" => vec![1],
            "false" => vec![0],
            _ => value.as_bytes().to_vec(),
        },
        Kind::Int => match value.parse::<i64>() {
            Ok(number) => number.to_le_bytes().to_vec(),
            Err(_) => value.as_bytes().to_vec(),
        },
        Kind::Text => value.as_bytes().to_vec(),
    }
}

/// The request-derived attributes of Envoy (`request.*`), computed from the request headers.
pub fn request_attribute(name: &str, headers: &HeaderMap) -> Option<Vec<u8>> {
    let path = headers.get(":path").unwrap_or("");
    let text = |value: &str| Some(value.as_bytes().to_vec());
    match name {
        "request.path" => text(path),
        "request.url_path" => text(path.split('?').next().unwrap_or("")),
        "request.query" => text(path.split_once('?').map_or("", |(_, query)| query)),
        "request.method" => text(headers.get(":method")?),
        "request.host" => text(headers.get(":authority")?),
        "request.scheme" => text(headers.get(":scheme")?),
        "request.protocol" => text("HTTP/1.1"),
        "request.id" => text(headers.get("x-request-id")?),
        "request.useragent" => text(headers.get("user-agent")?),
        "request.referer" => text(headers.get("referer")?),
        "request.headers" => Some(encode_map(headers.pairs())),
        _ => {
            let header = name.strip_prefix("request.headers.")?;
            text(headers.get(header)?)
        }
    }
}

/// Properties layered from the most specific to the most general; the first that knows a name
/// answers.
#[derive(Debug)]
pub struct Layers<'a> {
    /// Values the module itself set with `proxy_set_property` on this stream.
    pub set_by_module: Option<&'a BTreeMap<String, Vec<u8>>>,
    /// Values given with this request (connection facts such as the peer's SAN).
    pub request: Option<&'a BTreeMap<String, String>>,
    /// The request's headers, for `request.*`.
    pub headers: Option<&'a HeaderMap>,
    /// Plugin facts (`plugin_root_id`, `plugin_name`, `plugin_vm_id`).
    pub plugin: &'a BTreeMap<String, String>,
    /// Defaults that hold for every request of this harness.
    pub defaults: &'a BTreeMap<String, String>,
}

impl Layers<'_> {
    pub fn lookup(&self, name: &str) -> Option<Vec<u8>> {
        if let Some(value) = self.set_by_module.and_then(|set| set.get(name)) {
            return Some(value.clone());
        }
        if let Some(value) = self.request.and_then(|given| given.get(name)) {
            return Some(encode_value(name, value));
        }
        if let Some(value) = self
            .headers
            .and_then(|headers| request_attribute(name, headers))
        {
            return Some(value);
        }
        self.plugin
            .get(name)
            .or_else(|| self.defaults.get(name))
            .map(|value| encode_value(name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_separated_path_reads_as_its_dotted_name() {
        assert_eq!(
            dotted_path(b"connection\0uri_san_peer_certificate"),
            "connection.uri_san_peer_certificate"
        );
    }

    #[test]
    fn mtls_is_one_byte_and_ports_are_eight_little_endian_bytes() {
        assert_eq!(encode_value("connection.mtls", "true"), vec![1]);
        assert_eq!(
            encode_value("source.port", "443"),
            443i64.to_le_bytes().to_vec()
        );
        assert_eq!(
            encode_value("source.address", "10.1.2.3:5"),
            b"10.1.2.3:5".to_vec()
        );
    }

    #[test]
    fn request_attributes_come_from_the_pseudo_headers() {
        let headers = HeaderMap::from_pairs([
            (":method", "GET"),
            (":path", "/v1/items?x=1"),
            (":authority", "api.internal"),
            ("x-task", "t-1"),
        ]);
        let read = |name| request_attribute(name, &headers).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(read("request.url_path").as_deref(), Some("/v1/items"));
        assert_eq!(read("request.query").as_deref(), Some("x=1"));
        assert_eq!(read("request.host").as_deref(), Some("api.internal"));
        assert_eq!(read("request.headers.x-task").as_deref(), Some("t-1"));
        assert_eq!(read("request.headers.absent"), None);
    }
}
