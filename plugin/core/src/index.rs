//! The rule index: which rules could cover a path, found without looking at the others.
//!
//! Rules sit in a tree keyed by their path segments: `/tickets/{ticket}/comments` under
//! `tickets`, any segment, `comments`; `/payments` under `payments`; a prefix `/api/v1/` under
//! `api`, `v1` (a prefix that ends inside a segment stops before it). A request walks the tree
//! along its own segments, taking both the literal branch and the any-segment branch at each
//! step, and collects the rules met on the way, so the work grows with the depth of the path, not
//! with the number of rules. Candidates keep their configuration order, since the first rule that
//! allows decides; each is still matched in full.

use std::collections::HashMap;

use crate::rule::{PathMatcher, Rule, Segment};

#[derive(Debug, Default)]
pub struct RuleIndex {
    root: Node,
}

#[derive(Debug, Default)]
struct Node {
    /// Exact and template rules whose path ends at this node: candidates only for a request
    /// path that ends here too.
    rules: Vec<usize>,
    /// Prefix rules whose whole segments end at this node: candidates for every path below.
    prefix_rules: Vec<usize>,
    children: HashMap<String, Node>,
    /// The branch for a template parameter: any one non-empty segment.
    any: Option<Box<Node>>,
}

/// One step of a rule's indexed path.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Literal(String),
    Any,
}

impl RuleIndex {
    pub fn new(rules: &[Rule]) -> Self {
        Self::from_paths(rules.iter().map(|rule| &rule.route.path))
    }

    fn from_paths<'a>(paths: impl IntoIterator<Item = &'a PathMatcher>) -> Self {
        let mut index = Self::default();
        for (position, path) in paths.into_iter().enumerate() {
            let mut node = &mut index.root;
            for step in steps(path) {
                node = match step {
                    Step::Literal(segment) => node.children.entry(segment).or_default(),
                    Step::Any => node.any.get_or_insert_with(Box::default),
                };
            }
            match path {
                PathMatcher::Prefix(_) => node.prefix_rules.push(position),
                PathMatcher::Exact(_) | PathMatcher::Template(_) => node.rules.push(position),
            }
        }
        index
    }

    /// Positions of the rules that may cover `path` (without query), in ascending order.
    pub fn candidates(&self, path: &str) -> Vec<usize> {
        // Empty segments are skipped on both sides; that can only add candidates, which the full
        // match then refuses, never drop one.
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut found = Vec::new();
        collect(&self.root, &segments, &mut found);
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// Gathers the prefix rules met along `rest` from `node`, and the rules where it ends.
fn collect(node: &Node, rest: &[&str], found: &mut Vec<usize>) {
    found.extend_from_slice(&node.prefix_rules);
    let Some((segment, rest)) = rest.split_first() else {
        found.extend_from_slice(&node.rules);
        return;
    };
    if let Some(child) = node.children.get(*segment) {
        collect(child, rest, found);
    }
    if let Some(any) = &node.any {
        collect(any, rest, found);
    }
}

/// The steps every path the matcher covers must start with.
fn steps(path: &PathMatcher) -> Vec<Step> {
    match path {
        PathMatcher::Exact(exact) => split(exact),
        PathMatcher::Prefix(prefix) => {
            let mut steps = split(prefix);
            // `/pay` also covers `/payments`: only segments followed by a `/` are whole.
            if !prefix.ends_with('/') {
                steps.pop();
            }
            steps
        }
        PathMatcher::Template(template) => template
            .iter()
            .map(|segment| match segment {
                Segment::Literal(literal) => Step::Literal(literal.clone()),
                Segment::Param(_) => Step::Any,
            })
            .collect(),
    }
}

fn split(path: &str) -> Vec<Step> {
    path.trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| Step::Literal(s.to_owned()))
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
            "/",
        ]);
        assert_eq!(index.candidates("/"), [0, 3, 7]);
        assert_eq!(index.candidates("/tickets/T-1"), [0, 1, 3, 5]);
        assert_eq!(index.candidates("/tickets/T-1/comments"), [0, 3, 5, 6]);
        assert_eq!(index.candidates("/payments"), [0, 2, 3]);
        assert_eq!(index.candidates("/acme/reports"), [0, 3, 4]);
    }

    #[test]
    fn rules_behind_a_shared_parameter_are_still_told_apart() {
        let paths: Vec<String> = (0..1000)
            .map(|i| format!("/api/{{tenant}}/svc{i}"))
            .collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let index = index(&refs);
        assert_eq!(index.candidates("/api/acme/svc999"), [999]);
        assert!(index.candidates("/api/acme/other").is_empty());
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
