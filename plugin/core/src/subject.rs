//! Subjects: exact names, anchored patterns and SPIFFE IDs.
//!
//! A pattern is not a regular expression. It always covers the whole subject, every character
//! but `*` is literal (so `|`, `)` or `.` cannot widen it), and `*` stands for one or more
//! characters other than `/` and `:`, so it never reaches into the next segment of a SPIFFE path
//! or a Kubernetes `system:serviceaccount:<namespace>:<name>` subject.

/// A compiled subject pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    /// Literal pieces; a `*` stands between each two.
    pieces: Vec<String>,
}

fn is_separator(c: char) -> bool {
    c == '/' || c == ':'
}

impl Pattern {
    /// Compiles `text`; refuses an empty pattern and `**` (two wildcards with nothing between).
    pub fn new(text: &str) -> Result<Self, &'static str> {
        if text.is_empty() {
            return Err("a pattern cannot be empty");
        }
        if text.contains("**") {
            return Err("a pattern cannot contain `**`");
        }
        Ok(Self {
            pieces: text.split('*').map(str::to_owned).collect(),
        })
    }

    pub fn matches(&self, subject: &str) -> bool {
        // `reach[i]`: the pieces so far can cover exactly `subject[..i]`. Walking positions once
        // per piece keeps the cost linear in the subject for each piece, whatever the input.
        let chars: Vec<char> = subject.chars().collect();
        let mut reach = vec![false; chars.len() + 1];
        let mut pieces = self.pieces.iter();
        let Some(first) = pieces.next() else {
            return false;
        };
        if let Some(end) = literal_end(&chars, 0, first) {
            if let Some(slot) = reach.get_mut(end) {
                *slot = true;
            }
        }
        for piece in pieces {
            reach = extend_star(&chars, &reach);
            reach = extend_literal(&chars, &reach, piece);
        }
        reach.last().copied().unwrap_or(false)
    }
}

/// Where `piece` ends if it stands at `start`.
fn literal_end(chars: &[char], start: usize, piece: &str) -> Option<usize> {
    let mut at = start;
    for wanted in piece.chars() {
        if chars.get(at) != Some(&wanted) {
            return None;
        }
        at += 1;
    }
    Some(at)
}

fn extend_literal(chars: &[char], reach: &[bool], piece: &str) -> Vec<bool> {
    let mut next = vec![false; reach.len()];
    for (start, _) in reach.iter().enumerate().filter(|(_, &r)| r) {
        if let Some(slot) = literal_end(chars, start, piece).and_then(|end| next.get_mut(end)) {
            *slot = true;
        }
    }
    next
}

/// One or more non-separator characters after any reached position.
fn extend_star(chars: &[char], reach: &[bool]) -> Vec<bool> {
    let mut next = vec![false; reach.len()];
    let mut open = false;
    for (index, &c) in chars.iter().enumerate() {
        open = if is_separator(c) {
            false
        } else {
            open || reach.get(index).copied().unwrap_or(false)
        };
        if let Some(slot) = next.get_mut(index + 1) {
            *slot = open;
        }
    }
    next
}

/// Whether `id` is a well-formed SPIFFE ID: `spiffe://` then a lower-case trust domain of
/// `a-z 0-9 . - _`, then optional path segments of `a-z A-Z 0-9 . - _`, none empty, none `.` or
/// `..`; no percent-encoding, query, fragment, port, user info or trailing `/`.
pub fn is_spiffe_id(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("spiffe://") else {
        return false;
    };
    if id.len() > 2048 {
        return false;
    }
    let (domain, path) = rest
        .split_once('/')
        .map_or((rest, None), |(d, p)| (d, Some(p)));
    let domain_ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    let path_ok = path.is_none_or(|path| {
        path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
    });
    domain_ok && path_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pattern {
        Pattern::new(text).unwrap()
    }

    #[test]
    fn a_pattern_covers_the_whole_subject() {
        assert!(
            p("system:serviceaccount:shop:checkout").matches("system:serviceaccount:shop:checkout")
        );
        assert!(!p("system:serviceaccount:shop:checkout")
            .matches("system:serviceaccount:shop:checkout-evil"));
        assert!(!p("system:serviceaccount:shop:checkout")
            .matches("xsystem:serviceaccount:shop:checkout"));
    }

    #[test]
    fn a_star_stays_inside_one_segment() {
        let pattern = p("spiffe://prod.acme/ns/*/sa/payments");
        assert!(pattern.matches("spiffe://prod.acme/ns/shop/sa/payments"));
        assert!(!pattern.matches("spiffe://prod.acme/ns/shop/x/sa/payments"));
        assert!(!pattern.matches("spiffe://prod.acme/ns//sa/payments"));
        assert!(
            p("system:serviceaccount:*:checkout").matches("system:serviceaccount:shop:checkout")
        );
        assert!(
            !p("system:serviceaccount:*:checkout").matches("system:serviceaccount:a:b:checkout")
        );
    }

    #[test]
    fn regex_characters_are_literal() {
        assert!(!p("a|b").matches("a"));
        assert!(p("a|b").matches("a|b"));
        assert!(!p("ci-(prod)").matches("ci-prod"));
        assert!(!p("a.c").matches("abc"));
    }

    #[test]
    fn several_stars_backtrack_without_blowing_up() {
        let pattern = p("*a*a*a*a*a*b");
        assert!(!pattern.matches(&"a".repeat(5000)));
        assert!(pattern.matches(&format!("{}b", "a".repeat(5000))));
    }

    #[test]
    fn refuses_empty_and_double_star_patterns() {
        assert!(Pattern::new("").is_err());
        assert!(Pattern::new("spiffe://a/**").is_err());
    }

    #[test]
    fn parses_spiffe_ids_strictly() {
        assert!(is_spiffe_id("spiffe://prod.acme/ns/shop/sa/payments"));
        assert!(is_spiffe_id("spiffe://prod.acme"));
        for bad in [
            "spiffe://Prod.acme/ns/shop",
            "spiffe://prod.acme/ns/../admin",
            "spiffe://prod.acme/ns/./shop",
            "spiffe://prod.acme/ns/sh%6fp",
            "spiffe://prod.acme/ns/shop/",
            "spiffe://prod.acme//shop",
            "spiffe://prod.acme:8443/ns",
            "spiffe://user@prod.acme/ns",
            "spiffe://prod.acme/ns?x=1",
            "SPIFFE://prod.acme/ns",
            "spiffe:///ns",
            "https://prod.acme/ns",
        ] {
            assert!(!is_spiffe_id(bad), "{bad}");
        }
    }
}
