//! How a run is shown: a table for people (`demo`) or a terse list of
//! failures for CI (`test`); both end with the line `N passed, N failed`.

use std::fmt::Write as _;

use taskgate_scenario::{clip, CaseResult, Report};

const CASE_WIDTH: usize = 50;
const REQUEST_WIDTH: usize = 46;
const DECISION_WIDTH: usize = 26;

/// One row per case, grouped by suite, with the expected and the observed
/// decision side by side and what differed below a mismatch.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let mut suite = None;
    for result in &report.results {
        if suite != Some(result.suite.as_str()) {
            suite = Some(result.suite.as_str());
            let _ = writeln!(out, "\n{}", result.suite);
            let _ = writeln!(
                out,
                "  {:<CASE_WIDTH$} {:<REQUEST_WIDTH$} {:<DECISION_WIDTH$}    {:<DECISION_WIDTH$} verdict",
                "case", "request", "expected", "observed"
            );
        }
        let _ = writeln!(
            out,
            "  {:<CASE_WIDTH$} {:<REQUEST_WIDTH$} {:<DECISION_WIDTH$} -> {:<DECISION_WIDTH$} {}",
            clip(&result.case, CASE_WIDTH),
            clip(&result.request, REQUEST_WIDTH),
            clip(&expected(result), DECISION_WIDTH),
            clip(&observed(result), DECISION_WIDTH),
            verdict(result),
        );
        for detail in details(result) {
            let _ = writeln!(out, "      {detail}");
        }
    }
    let _ = writeln!(out, "\n{}", summary(report));
    out
}

/// Only the cases that failed, one line each, then the summary.
pub fn terse(report: &Report) -> String {
    let mut out = String::new();
    for result in report.results.iter().filter(|result| !result.passed()) {
        let details = result.mismatches.join("; ");
        let _ = writeln!(out, "FAIL {}/{}: {details}", result.suite, result.case);
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

/// The closing line, exactly `N passed, N failed`.
pub fn summary(report: &Report) -> String {
    format!("{} passed, {} failed", report.passed(), report.failed())
}

fn expected(result: &CaseResult) -> String {
    format!("{} {}", result.expected.status, result.expected.reason)
}

fn observed(result: &CaseResult) -> String {
    match &result.observed {
        Ok(observed) => format!("{} {}", observed.status, observed.reason),
        Err(_) => "error".to_owned(),
    }
}

fn verdict(result: &CaseResult) -> &'static str {
    if result.passed() {
        "ok"
    } else {
        "MISMATCH"
    }
}

/// What differed, or the error, less the status line that the row shows.
fn details(result: &CaseResult) -> Vec<String> {
    result
        .mismatches
        .iter()
        .filter(|mismatch| !mismatch.starts_with("expected "))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskgate_scenario::{Expect, Observed};

    fn result(observed: Result<Observed, String>, mismatches: Vec<String>) -> CaseResult {
        CaseResult {
            suite: "k8s".into(),
            case: "allows_the_job".into(),
            request: "GET api/v1".into(),
            expected: Expect {
                status: 200,
                reason: "allowed".into(),
                upstream_headers: Default::default(),
                www_authenticate: None,
            },
            observed,
            mismatches,
        }
    }

    fn allowed() -> Observed {
        Observed {
            status: 200,
            reason: "allowed".into(),
            ..Observed::default()
        }
    }

    #[test]
    fn ends_with_the_summary_line_alone() {
        let report = Report {
            results: vec![result(Ok(allowed()), vec![])],
        };
        assert_eq!(terse(&report).lines().last(), Some("1 passed, 0 failed"));
        assert_eq!(table(&report).lines().last(), Some("1 passed, 0 failed"));
    }

    #[test]
    fn shows_expected_and_observed_side_by_side() {
        let report = Report {
            results: vec![result(Ok(allowed()), vec![])],
        };
        let row = table(&report);
        assert!(row.contains("200 allowed"));
        assert!(row.contains("-> 200 allowed"));
        assert!(row.contains(" ok\n"));
    }

    #[test]
    fn shows_the_error_of_a_failed_case() {
        let error = "envoy exited".to_owned();
        let report = Report {
            results: vec![result(Err(error.clone()), vec![error])],
        };
        assert!(table(&report).contains("MISMATCH\n      envoy exited"));
        assert!(terse(&report).starts_with("FAIL k8s/allows_the_job: envoy exited"));
    }

    #[test]
    fn names_a_status_mismatch_in_the_terse_list() {
        let denied = Observed {
            status: 403,
            reason: "scope_missing".into(),
            ..Observed::default()
        };
        let mismatch = "expected 200 allowed, observed 403 scope_missing".to_owned();
        let report = Report {
            results: vec![result(Ok(denied), vec![mismatch])],
        };
        assert!(terse(&report).contains("expected 200 allowed, observed 403 scope_missing"));
    }
}
