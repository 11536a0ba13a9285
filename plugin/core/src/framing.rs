//! Framing: from the header's text to a decoded header and claim set, before any key is touched.
//!
//! Every check here is about shape, and runs before any base64 or JSON decoding it guards: a size
//! cap, exactly three non-empty segments, the base64url alphabet without padding, and then header
//! and payload as strict JSON objects (see [`crate::json`]). A token that passes is [`Framed`]; its
//! claims are still unverified and are only read to pick the issuer's provider.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::json::{self, JsonError};

/// Deepest nesting of arrays and objects accepted in a token header or claim set. Real claim
/// sets, delegation chains included, stay well under it.
pub const MAX_JSON_DEPTH: usize = 32;

/// A token whose shape is sound; nothing about it is trusted yet.
pub struct Framed<'t> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t str,
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Framed<'_> {
    // The signing input is most of the token, and the claims are the holder's: neither is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.header.keys().collect();
        f.debug_struct("Framed")
            .field("header_members", &names)
            .field("claims", &self.claims.len())
            .finish_non_exhaustive()
    }
}

/// Which framing rule a token broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    TooLarge,
    Segments,
    Alphabet,
    Base64,
    Header(JsonError),
    Payload(JsonError),
}

impl Malformed {
    /// The fixed sentence for each rule, used in deny messages.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::TooLarge => "token is larger than the configured limit",
            Self::Segments => "token does not have exactly three non-empty segments",
            Self::Alphabet => "token has a character outside unpadded base64url",
            Self::Base64 => "token segment is not canonical base64url",
            Self::Header(JsonError::NotUtf8) => "token header is not UTF-8",
            Self::Header(JsonError::Syntax) => "token header is not valid JSON",
            Self::Header(JsonError::NotObject) => "token header is not a JSON object",
            Self::Header(JsonError::DuplicateMember) => "token header names a member twice",
            Self::Header(JsonError::TooDeep) => "token header nests too deep",
            Self::Payload(JsonError::NotUtf8) => "token payload is not UTF-8",
            Self::Payload(JsonError::Syntax) => "token payload is not valid JSON",
            Self::Payload(JsonError::NotObject) => "token payload is not a JSON object",
            Self::Payload(JsonError::DuplicateMember) => "token payload names a claim twice",
            Self::Payload(JsonError::TooDeep) => "token payload nests too deep",
        }
    }
}

/// Checks the shape of `token` and decodes its header and claims.
pub fn frame(token: &str, max_bytes: usize) -> Result<Framed<'_>, Malformed> {
    if token.len() > max_bytes {
        return Err(Malformed::TooLarge);
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(Malformed::Segments);
    };
    if [header, payload, signature].iter().any(|s| s.is_empty()) {
        return Err(Malformed::Segments);
    }
    let in_alphabet = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if ![header, payload, signature].iter().all(|s| in_alphabet(s)) {
        return Err(Malformed::Alphabet);
    }
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| Malformed::Base64);
    let header_bytes = decode(header)?;
    let payload_bytes = decode(payload)?;
    let signature = decode(signature)?;
    let header = json::parse_object(&header_bytes, MAX_JSON_DEPTH).map_err(Malformed::Header)?;
    let claims = json::parse_object(&payload_bytes, MAX_JSON_DEPTH).map_err(Malformed::Payload)?;
    // Three segments were found above, so the last dot exists.
    let signing_input = token.rsplit_once('.').map_or(token, |(input, _)| input);
    Ok(Framed {
        header,
        claims,
        signing_input,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        URL_SAFE_NO_PAD.encode(text)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }

    #[test]
    fn accepts_three_segments_and_keeps_the_signing_input() {
        let text = token(r#"{"alg":"ES256"}"#, r#"{"sub":"a"}"#);
        let framed = frame(&text, 8192).unwrap();
        assert_eq!(framed.header["alg"], "ES256");
        assert_eq!(framed.claims["sub"], "a");
        assert_eq!(framed.signature, b"sig");
        assert_eq!(framed.signing_input, text.rsplit_once('.').unwrap().0);
    }

    #[test]
    fn refuses_two_segments_four_segments_and_empty_ones() {
        let text = token(r#"{"alg":"ES256"}"#, r#"{}"#);
        let two = text.rsplit_once('.').unwrap().0;
        assert_eq!(frame(two, 8192).unwrap_err(), Malformed::Segments);
        assert_eq!(
            frame(&format!("{text}.x"), 8192).unwrap_err(),
            Malformed::Segments
        );
        assert_eq!(
            frame(&format!("{two}."), 8192).unwrap_err(),
            Malformed::Segments
        );
        assert_eq!(frame("..", 8192).unwrap_err(), Malformed::Segments);
    }

    #[test]
    fn refuses_padding_and_the_standard_alphabet() {
        let text = token(r#"{"alg":"ES256"}"#, r#"{"a":1}"#);
        assert_eq!(
            frame(&format!("{text}=="), 8192).unwrap_err(),
            Malformed::Alphabet
        );
        assert!(frame(&format!("+{text}"), 8192).is_err());
    }

    #[test]
    fn refuses_a_token_over_the_size_cap_before_decoding_it() {
        let dots = ".".repeat(100_000);
        assert_eq!(frame(&dots, 8192).unwrap_err(), Malformed::TooLarge);
    }

    #[test]
    fn refuses_non_canonical_base64() {
        // `ab` decodes one byte with non-zero trailing bits when the last char is `b`.
        let text = format!("{}.{}.ab", b64(r#"{"alg":"ES256"}"#), b64("{}"));
        assert_eq!(frame(&text, 8192).unwrap_err(), Malformed::Base64);
    }
}
