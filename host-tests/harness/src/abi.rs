//! The numbers and byte layouts of proxy-wasm ABI 0.2.1 that cross the boundary between the
//! host and the module: status codes, buffer and map selectors, actions, log levels, metric
//! kinds, and the serialized header-map format. Nothing here touches wasmtime, so the layout
//! can be tested on its own.

use std::fmt;

/// The export a module must have to be run by this host.
pub const ABI_VERSION_EXPORT: &str = "proxy_abi_version_0_2_1";

/// Status codes returned by host functions, as the ABI numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

impl Status {
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// What a stream callback asks the host to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hand the request on to the next filter (and so the upstream).
    Continue,
    /// Stop iteration until the module resumes the stream or answers it locally.
    Pause,
}

impl Action {
    /// Envoy reads any value but 0 as a stop, so this host does too.
    pub fn from_code(code: u32) -> Self {
        if code == 0 {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

/// Severity of a line the module logged, in the ABI's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// Unknown levels are read as critical so that nothing a module says is dropped.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }

    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which byte buffer a `proxy_get_buffer_bytes` call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    HttpRequestBody,
    HttpResponseBody,
    HttpCallResponseBody,
    VmConfiguration,
    PluginConfiguration,
    /// Downstream/upstream data, gRPC buffers and call data: streams this host does not carry.
    Unsupported,
}

impl BufferType {
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => BufferType::HttpRequestBody,
            1 => BufferType::HttpResponseBody,
            4 => BufferType::HttpCallResponseBody,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            2 | 3 | 5 | 8 => BufferType::Unsupported,
            _ => return None,
        })
    }
}

/// Which header map a `proxy_*_header_map_*` call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
    HttpCallResponseHeaders,
    HttpCallResponseTrailers,
    /// gRPC metadata: this host makes no gRPC calls, so these maps are always empty.
    GrpcMetadata,
}

impl MapType {
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            4 | 5 => MapType::GrpcMetadata,
            6 => MapType::HttpCallResponseHeaders,
            7 => MapType::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// The kind of a metric defined with `proxy_define_metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(MetricType::Counter),
            1 => Some(MetricType::Gauge),
            2 => Some(MetricType::Histogram),
            _ => None,
        }
    }
}

/// Which stream `proxy_continue_stream` and `proxy_close_stream` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    HttpRequest,
    HttpResponse,
    Other,
}

impl StreamType {
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => StreamType::HttpRequest,
            1 => StreamType::HttpResponse,
            _ => StreamType::Other,
        }
    }
}

/// Serializes header pairs the way the ABI passes maps: a little-endian pair count, then each
/// pair's key and value lengths, then each key and value followed by a NUL byte.
pub fn encode_map<K, V>(pairs: &[(K, V)]) -> Vec<u8>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let data: usize = pairs
        .iter()
        .map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2)
        .sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + data);
    out.extend_from_slice(&len_u32(pairs.len()).to_le_bytes());
    for (key, value) in pairs {
        out.extend_from_slice(&len_u32(key.as_ref().len()).to_le_bytes());
        out.extend_from_slice(&len_u32(value.as_ref().len()).to_le_bytes());
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    out
}

/// Reads a serialized map written by the module. Returns `None` when the bytes do not hold the
/// layout they announce; an empty buffer is an empty map, as the SDK writes it.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(bytes, 0)? as usize;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut pairs = Vec::with_capacity(count.min(1024));
    for index in 0..count {
        let sizes = 4 + index * 8;
        let key_len = read_u32(bytes, sizes)? as usize;
        let value_len = read_u32(bytes, sizes + 4)? as usize;
        let key = bytes.get(data..data.checked_add(key_len)?)?.to_vec();
        data = data.checked_add(key_len + 1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?.to_vec();
        data = data.checked_add(value_len + 1)?;
        pairs.push((key, value));
    }
    Some(pairs)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(word))
}

/// Every length this host serializes came from wasm32 memory or from maps far smaller than
/// 4 GiB, so saturating is only a guard, never a silent truncation in practice.
fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_survives_encoding_and_decoding() {
        let pairs = [(":path", "/a"), ("x-empty", ""), ("k", "v")];
        let decoded = decode_map(&encode_map(&pairs)).unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn a_map_that_announces_more_pairs_than_it_holds_is_refused() {
        let mut bytes = encode_map(&[("a", "b")]);
        bytes[0] = 2;
        assert_eq!(decode_map(&bytes), None);
    }

    #[test]
    fn an_empty_buffer_is_an_empty_map() {
        assert_eq!(decode_map(&[]), Some(Vec::new()));
    }
}
