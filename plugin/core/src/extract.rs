//! Token locations: where a provider's tokens are looked for, and how they are taken out.
//!
//! Providers that read the same place share one location, so a token is read once and its `iss`
//! picks the provider. Two values at one location are refused rather than choosing one: a proxy
//! and an upstream that pick differently would disagree about who is calling.

use crate::decision::Reason;
use crate::request::Request;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Header name in lower case, and the prefix before the token (matched without case).
    Header {
        name: String,
        prefix: String,
    },
    Cookie(String),
}

/// A place tokens are found, and the providers that read it.
#[derive(Debug)]
pub struct Location {
    pub source: Source,
    pub providers: Vec<usize>,
}

impl Source {
    /// The token at this place, if any.
    pub fn find<'r>(&self, request: &Request<'r>) -> Result<Option<&'r str>, Reason> {
        // Two are enough to tell one token from an ambiguous place.
        let found: Vec<&'r str> = match self {
            Self::Header { name, prefix } => request
                .header_values(name)
                .filter_map(|value| strip_prefix_ignore_case(value, prefix))
                .take(2)
                .collect(),
            Self::Cookie(name) => request
                .header_values("cookie")
                .flat_map(|header| header.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .filter(|(key, _)| key == name)
                .map(|(_, value)| value)
                .take(2)
                .collect(),
        };
        match found.as_slice() {
            [] => Ok(None),
            // A comma is never part of a JWS; it is a proxy folding two header lines into one.
            [token] if !token.contains(',') => Ok(Some(token.trim())),
            _ => Err(Reason::TokenAmbiguous {
                location: self.describe(),
            }),
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Self::Header { name, .. } => format!("header {name}"),
            Self::Cookie(name) => format!("cookie {name}"),
        }
    }

    /// The header changes that take this place's token out of the request: `(remove, set)`.
    pub fn removal(&self, request: &Request<'_>) -> (String, Option<(String, String)>) {
        match self {
            Self::Header { name, .. } => (name.clone(), None),
            Self::Cookie(name) => {
                let kept: Vec<&str> = request
                    .header_values("cookie")
                    .flat_map(|header| header.split(';'))
                    .map(str::trim)
                    .filter(|pair| pair.split_once('=').is_none_or(|(key, _)| key != name))
                    .filter(|pair| !pair.is_empty())
                    .collect();
                let set = (!kept.is_empty()).then(|| ("cookie".to_owned(), kept.join("; ")));
                ("cookie".to_owned(), set)
            }
        }
    }
}

fn strip_prefix_ignore_case<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    // Proxies drop trailing white space, so `Bearer ` arrives as `Bearer`: still a (empty)
    // bearer credential, to be refused as malformed rather than ignored.
    let bare = prefix.trim_end();
    if !bare.is_empty() && value.trim_end().eq_ignore_ascii_case(bare) {
        return Some("");
    }
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| value.get(prefix.len()..))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn find(source: &Source, headers: &[(String, String)]) -> Result<Option<String>, Reason> {
        let request = Request {
            method: "GET",
            authority: "a",
            path: "/",
            headers,
            peer: Default::default(),
        };
        source.find(&request).map(|t| t.map(str::to_owned))
    }

    fn bearer() -> Source {
        Source::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }
    }

    #[test]
    fn the_bearer_scheme_is_matched_without_case() {
        let found = find(&bearer(), &headers(&[("authorization", "bEARER abc")]));
        assert_eq!(found.unwrap().as_deref(), Some("abc"));
        assert_eq!(
            find(&bearer(), &headers(&[("authorization", "Basic abc")])).unwrap(),
            None
        );
    }

    #[test]
    fn two_tokens_in_one_place_are_refused() {
        let two = headers(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]);
        assert!(matches!(
            find(&bearer(), &two),
            Err(Reason::TokenAmbiguous { .. })
        ));
        let folded = headers(&[("authorization", "Bearer a,Bearer b")]);
        assert!(matches!(
            find(&bearer(), &folded),
            Err(Reason::TokenAmbiguous { .. })
        ));
    }

    #[test]
    fn a_scheme_without_a_token_is_an_empty_token() {
        let bare = headers(&[("authorization", "Bearer")]);
        assert_eq!(find(&bearer(), &bare).unwrap().as_deref(), Some(""));
    }

    #[test]
    fn a_cookie_is_found_and_removed_alone() {
        let source = Source::Cookie("session".into());
        let h = headers(&[("cookie", "theme=dark; session=tok; lang=en")]);
        assert_eq!(find(&source, &h).unwrap().as_deref(), Some("tok"));
        let request = Request {
            method: "GET",
            authority: "a",
            path: "/",
            headers: &h,
            peer: Default::default(),
        };
        let (_, set) = source.removal(&request);
        assert_eq!(set.unwrap().1, "theme=dark; lang=en");
    }
}
