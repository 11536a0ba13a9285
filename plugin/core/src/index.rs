//! The rule index: which rules could cover a path, found without looking at the others.
//!
//! Rules sit in a tree keyed by their leading literal path segments (`/tickets/{ticket}` under
//! `tickets`, `/payments` under `payments`, a prefix `/api/v1/` under `api`/`v1`). A request
//! walks the tree along its own segments and collects the rules met on the way, so the work
//! grows with the depth of the path, not with the number of rules. Candidates keep their
//! configuration order, since the first rule that allows decides; each is still matched in full.

use std::collections::HashMap;

use crate::rule::{PathMatcher, Rule, Segment};

#[derive(Debug, Default)]
pub struct RuleIndex {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    /// Rules whose literal path ends at this node, in configuration order.
    rules: Vec<usize>,
    children: HashMap<String, Node>,
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> Self {
        Self::from_paths(rules.iter().map(|rule| &rule.route.path))
    }

    fn from_paths<'a>(paths: impl IntoIterator<Item = &'a PathMatcher>) -> Self {
        let mut index = Self::default();
        for (position, path) in paths.into_iter().enumerate() {
            let mut node = &mut index.root;
            for segment in literal_segments(path) {
                node = node.children.entry(segment).or_default();
            }
            node.rules.push(position);
        }
        index
    }

    /// Positions of the rules that may cover `path` (without query), in ascending order.
    pub fn candidates(&self, path: &str) -> Vec<usize> {
        let mut found: Vec<usize> = self.root.rules.clone();
        let mut node = &self.root;
        for segment in path.trim_start_matches('/').split('/') {
            let Some(child) = node.children.get(segment) else {
                break;
            };
            found.extend_from_slice(&child.rules);
            node = child;
        }
        found.sort_unstable();
        found
    }
}

/// The path segments every path the matcher covers must start with.
fn literal_segments(path: &PathMatcher) -> Vec<String> {
    match path {
        PathMatcher::Exact(exact) => split(exact),
        PathMatcher::Prefix(prefix) => {
            let mut segments = split(prefix);
            // `/pay` also covers `/payments`: only segments followed by a `/` are whole.
            if !prefix.ends_with('/') {
                segments.pop();
            }
            segments
        }
        PathMatcher::Template(template) => template
            .iter()
            .map_while(|segment| match segment {
                Segment::Literal(literal) => Some(literal.clone()),
                Segment::Param(_) => None,
            })
            .collect(),
    }
}

fn split(path: &str) -> Vec<String> {
    path.trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> PathMatcher {
        if let Some(prefix) = text.strip_prefix("prefix:") {
            return PathMatcher::Prefix(prefix.to_owned());
        }
        if text.contains('{') {
            let segments = text
                .trim_start_matches('/')
                .split('/')
                .map(
                    |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Segment::Param(name.to_owned()),
                        None => Segment::Literal(s.to_owned()),
                    },
                )
                .collect();
            return PathMatcher::Template(segments);
        }
        PathMatcher::Exact(text.to_owned())
    }

    fn index(paths: &[&str]) -> RuleIndex {
        let matchers: Vec<PathMatcher> = paths.iter().map(|text| path(text)).collect();
        RuleIndex::from_paths(&matchers)
    }

    #[test]
    fn finds_only_rules_on_the_request_path_in_configuration_order() {
        let index = index(&[
            "prefix:/",
            "/tickets/{ticket}",
            "/payments",
            "prefix:/pay",
            "/{tenant}/reports",
            "prefix:/tickets/",
            "/tickets/{ticket}/comments",
        ]);
        assert_eq!(index.candidates("/tickets/T-1"), [0, 1, 3, 4, 5, 6]);
        assert_eq!(index.candidates("/payments"), [0, 2, 3, 4]);
        assert_eq!(index.candidates("/acme/reports"), [0, 3, 4]);
    }

    #[test]
    fn a_thousand_distinct_rules_leave_one_candidate() {
        let paths: Vec<String> = (0..1000)
            .map(|i| format!("/svc{i}/items/{{item}}"))
            .collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let index = index(&refs);
        assert_eq!(index.candidates("/svc999/items/7"), [999]);
    }
}
