//! Header maps with Envoy's semantics as a proxy-wasm module sees them: names are lowercased,
//! order is kept, a lookup returns the first value, a replace keeps one value in place of all,
//! and a remove of an absent name succeeds.

/// An ordered multimap of lowercase header names to values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Vec<(String, String)>,
}

impl HeaderMap {
    pub const fn new() -> Self {
        Self { pairs: Vec::new() }
    }

    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: Into<String>,
    {
        let mut map = Self::new();
        for (key, value) in pairs {
            map.add(key.as_ref(), value);
        }
        map
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// The first value of `name`, as Envoy's `getHeaderMapValue` returns it.
    pub fn get(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.pairs
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn add(&mut self, name: &str, value: impl Into<String>) {
        self.pairs.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Sets `name` to one value: the first occurrence keeps its place, the others go.
    pub fn replace(&mut self, name: &str, value: impl Into<String>) {
        let name = name.to_ascii_lowercase();
        match self.pairs.iter().position(|(key, _)| *key == name) {
            Some(first) => {
                let value = value.into();
                let mut index = 0;
                self.pairs.retain(|(key, _)| {
                    let keep = *key != name || index == first;
                    index += 1;
                    keep
                });
                if let Some(slot) = self.pairs.get_mut(first) {
                    slot.1 = value;
                }
            }
            None => self.pairs.push((name, value.into())),
        }
    }

    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.pairs.retain(|(key, _)| *key != name);
    }

    /// `proxy_set_header_map_pairs` as Envoy implements it: each given name is removed and then
    /// added with its value; names that are not given stay.
    pub fn set_pairs(&mut self, pairs: Vec<(String, String)>) {
        for (name, value) in pairs {
            self.remove(&name);
            self.add(&name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_return_the_first_value() {
        let map = HeaderMap::from_pairs([("X-A", "1"), ("x-a", "2")]);
        assert_eq!(map.get("x-A"), Some("1"));
    }

    #[test]
    fn replace_keeps_the_first_position_and_drops_the_other_values() {
        let mut map = HeaderMap::from_pairs([("a", "1"), ("b", "2"), ("a", "3")]);
        map.replace("A", "9");
        assert_eq!(
            map.pairs(),
            &[
                ("a".to_string(), "9".to_string()),
                ("b".to_string(), "2".to_string())
            ]
        );
    }

    #[test]
    fn set_pairs_overwrites_given_names_and_keeps_the_rest() {
        let mut map = HeaderMap::from_pairs([("a", "1"), ("b", "2")]);
        map.set_pairs(vec![("a".into(), "3".into())]);
        assert_eq!(map.get("a"), Some("3"));
        assert_eq!(map.get("b"), Some("2"));
    }
}
