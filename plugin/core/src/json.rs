//! Strict JSON for untrusted input: one object, no duplicate member names, bounded nesting.
//!
//! serde_json keeps the last of two members with the same name, which lets a token carry a second
//! `sub` that one reader sees and another does not; and its recursion limit is far deeper than any
//! real claim set. The parsing stays serde_json's; this module only refuses what a token or a
//! configuration must never contain, and says which rule was broken.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a JSON document was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    NotUtf8,
    /// Not JSON, trailing data, or a number out of range.
    Syntax,
    NotObject,
    DuplicateMember,
    TooDeep,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotUtf8 => "is not UTF-8",
            Self::Syntax => "is not valid JSON",
            Self::NotObject => "is not a JSON object",
            Self::DuplicateMember => "has a member name twice",
            Self::TooDeep => "nests deeper than allowed",
        })
    }
}

/// Parses `bytes` as one JSON object with unique member names at every level and at most
/// `max_depth` levels of nested objects and arrays.
pub fn parse_object(bytes: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonError> {
    let text = std::str::from_utf8(bytes).map_err(|_| JsonError::NotUtf8)?;
    match parse_value(text, max_depth)? {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotObject),
    }
}

/// Parses `text` as one JSON value under the same rules as [`parse_object`].
pub fn parse_value(text: &str, max_depth: usize) -> Result<Value, JsonError> {
    parse_with_path(text, max_depth).map_err(|(why, _)| why)
}

/// Like [`parse_value`], and on failure also says where: `rules[2].name` for a duplicate member
/// or a nesting past the limit (empty for a syntax error, which serde_json places by line).
pub fn parse_with_path(text: &str, max_depth: usize) -> Result<Value, (JsonError, String)> {
    let failure = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = Strict {
        depth: 0,
        max_depth,
        failure: &failure,
    };
    let value = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    value.map_err(|_| match failure.into_inner() {
        Some(Failure { why, path }) => (why, path),
        None => (JsonError::Syntax, String::new()),
    })
}

struct Failure {
    why: JsonError,
    /// Built from the inside out while the error unwinds, so success pays nothing for it.
    path: String,
}

struct Strict<'a> {
    depth: usize,
    max_depth: usize,
    /// Records our own refusals, which serde would otherwise flatten into a message string.
    failure: &'a RefCell<Option<Failure>>,
}

impl Strict<'_> {
    fn nested<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(self.refuse(JsonError::TooDeep));
        }
        Ok(Strict {
            depth: self.depth + 1,
            max_depth: self.max_depth,
            failure: self.failure,
        })
    }

    fn refuse<E: de::Error>(&self, why: JsonError) -> E {
        *self.failure.borrow_mut() = Some(Failure {
            why,
            path: String::new(),
        });
        E::custom(why)
    }

    /// Puts `step` in front of the recorded path of a refusal unwinding through this level.
    fn locate<E>(&self, step: String) -> impl FnOnce(E) -> E + '_ {
        move |error| {
            if let Some(failure) = self.failure.borrow_mut().as_mut() {
                let joiner = if failure.path.is_empty() || failure.path.starts_with('[') {
                    ""
                } else {
                    "."
                };
                failure.path = format!("{step}{joiner}{}", failure.path);
            }
            error
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| self.refuse(JsonError::Syntax))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq
            .next_element_seed(self.nested()?)
            .map_err(self.locate(format!("[{}]", items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                let error = self.refuse(JsonError::DuplicateMember);
                return Err(self.locate(name)(error));
            }
            let value = map
                .next_value_seed(self.nested()?)
                .map_err(self.locate(name.clone()))?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_member_named_twice() {
        let err = parse_object(br#"{"sub":"a","sub":"b"}"#, 8).unwrap_err();
        assert_eq!(err, JsonError::DuplicateMember);
    }

    #[test]
    fn refuses_a_member_named_twice_in_a_nested_object() {
        let err = parse_object(br#"{"act":{"sub":"a","sub":"b"}}"#, 8).unwrap_err();
        assert_eq!(err, JsonError::DuplicateMember);
    }

    #[test]
    fn says_where_a_duplicate_member_stands() {
        let text = r#"{"rules":[{"name":"a"},{"name":"b","name":"c"}]}"#;
        let (why, path) = parse_with_path(text, 8).unwrap_err();
        assert_eq!(why, JsonError::DuplicateMember);
        assert_eq!(path, "rules[1].name");
    }

    #[test]
    fn refuses_nesting_past_the_limit_and_accepts_it_at_the_limit() {
        assert_eq!(
            parse_object(br#"{"a":[[[]]]}"#, 3).unwrap_err(),
            JsonError::TooDeep
        );
        assert!(parse_object(br#"{"a":[[]]}"#, 3).is_ok());
    }

    #[test]
    fn refuses_five_thousand_nested_arrays() {
        let text = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(
            parse_object(text.as_bytes(), 32).unwrap_err(),
            JsonError::TooDeep
        );
    }

    #[test]
    fn refuses_numbers_out_of_range_non_objects_and_trailing_data() {
        assert_eq!(
            parse_object(br#"{"exp":1e309}"#, 8).unwrap_err(),
            JsonError::Syntax
        );
        assert_eq!(parse_object(b"[1]", 8).unwrap_err(), JsonError::NotObject);
        assert_eq!(parse_object(b"{} {}", 8).unwrap_err(), JsonError::Syntax);
        assert_eq!(
            parse_object(b"{\"a\":\"\xff\"}", 8).unwrap_err(),
            JsonError::NotUtf8
        );
    }
}
