//! The request as the gate sees it: method, authority, path, headers and the connection's peer,
//! borrowed from the host.

/// A request to decide. Header names are expected in lower case, as HTTP/2 and Envoy give them.
#[derive(Clone, Copy)]
pub struct Request<'r> {
    pub method: &'r str,
    /// `:authority` (or `Host`), possibly with a port.
    pub authority: &'r str,
    /// `:path`, possibly with a query string.
    pub path: &'r str,
    pub headers: &'r [(String, String)],
    /// The mTLS peer, when the connection has one.
    pub peer: Peer<'r>,
}

/// What the proxy knows of the connection's client certificate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer<'r> {
    /// The first URI SAN of the peer certificate (`connection.uri_san_peer_certificate`).
    pub uri_san: Option<&'r str>,
    /// Hex SHA-256 of the peer certificate (`connection.sha256_peer_certificate_digest`).
    pub certificate_sha256: Option<&'r str>,
}

impl std::fmt::Debug for Request<'_> {
    // Header values carry tokens: only the names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("authority", &self.authority)
            .field("path", &self.path)
            .field("header_names", &names)
            .finish_non_exhaustive()
    }
}

impl<'r> Request<'r> {
    /// A request on a connection without a peer certificate.
    pub fn new(
        method: &'r str,
        authority: &'r str,
        path: &'r str,
        headers: &'r [(String, String)],
    ) -> Self {
        Self {
            method,
            authority,
            path,
            headers,
            peer: Peer::default(),
        }
    }

    /// Every value of header `name` (lower case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'r str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of header `name` when it appears exactly once.
    pub fn single_header(&self, name: &str) -> Option<&'r str> {
        let mut values = self.header_values(name);
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value),
            _ => None,
        }
    }

    pub fn path_without_query(&self) -> &'r str {
        self.path
            .split_once('?')
            .map_or(self.path, |(path, _)| path)
    }

    /// The authority without its port (`[::1]:8080` gives `[::1]`).
    pub fn host_without_port(&self) -> &'r str {
        let authority = self.authority;
        match authority.rfind(':') {
            Some(colon) if !authority.get(colon..).unwrap_or_default().contains(']') => {
                authority.get(..colon).unwrap_or(authority)
            }
            _ => authority,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authority: &str, path: &str) -> Request<'static> {
        Request {
            method: "GET",
            authority: Box::leak(authority.to_owned().into_boxed_str()),
            path: Box::leak(path.to_owned().into_boxed_str()),
            headers: &[],
            peer: Peer::default(),
        }
    }

    #[test]
    fn strips_the_port_and_the_query() {
        assert_eq!(
            request("api.internal:8080", "/").host_without_port(),
            "api.internal"
        );
        assert_eq!(request("[::1]:8080", "/").host_without_port(), "[::1]");
        assert_eq!(request("[::1]", "/").host_without_port(), "[::1]");
        assert_eq!(request("a", "/x?y=1").path_without_query(), "/x");
    }
}
