//! `junit.xml`: one `<testsuite>` per experiment, one `<testcase>` per gated metric, so CI
//! systems that read JUnit (test tabs, flaky-test dashboards) show each gate as a test.

use super::words::{self, MetricText};
use crate::results::{ExperimentStatus, ExperimentVerdict, MetricResult, MetricVerdict, Results};

/// Renders the JUnit XML report. A metric that fails its gate is a failed testcase whose
/// message carries baseline, candidate, Δ, CI and p; a removed experiment is an empty suite,
/// or one failed testcase, `removed`, when its removal fails the change; an experiment the run
/// could not judge (its calls failed, or none was made), or one held for a maintainer's
/// approval, is one errored testcase, `run`, whose message is the reason, so a dashboard never
/// shows it green while the gate is red.
pub fn render_junit(results: &Results) -> String {
    let mut suites: Vec<TestSuite> = results.experiments.iter().map(TestSuite::new).collect();
    if let Some(approval) = &results.trust.approval {
        suites.extend(approval.experiments.iter().map(|name| TestSuite {
            name,
            cases: Vec::new(),
            error: Some(approval.reason.as_str()),
        }));
    }
    let tests: usize = suites
        .iter()
        .map(|s| s.cases.len() + usize::from(s.error.is_some()))
        .sum();
    let failures: usize = suites.iter().map(TestSuite::failures).sum();
    let errors = suites.iter().filter(|s| s.error.is_some()).count();

    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"promptgate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\">\n"
    ));
    for suite in &suites {
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
            xml_attribute(suite.name),
            suite.cases.len() + usize::from(suite.error.is_some()),
            suite.failures(),
            usize::from(suite.error.is_some()),
            suite.cases.iter().filter(|c| c.skipped.is_some()).count(),
        ));
        if let Some(reason) = suite.error {
            out.push_str(&format!(
                "    <testcase name=\"run\" classname=\"{}\">\n      <error message=\"{}\" type=\"run-error\"/>\n    </testcase>\n",
                xml_attribute(suite.name),
                xml_attribute(reason),
            ));
        }
        for case in &suite.cases {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\"",
                xml_attribute(case.name),
                xml_attribute(suite.name),
            );
            match &case.failure {
                None => match &case.skipped {
                    None => out.push_str(&format!("{open}/>\n")),
                    Some(why) => out.push_str(&format!(
                        "{open}>\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml_attribute(why)
                    )),
                },
                Some(failure) => {
                    out.push_str(&format!(
                        "{open}>\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        xml_attribute(&failure.message),
                        failure.kind,
                        xml_text(&failure.details),
                    ));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

struct TestSuite<'a> {
    name: &'a str,
    cases: Vec<TestCase<'a>>,
    /// Why the experiment could not be judged, when it could not.
    error: Option<&'a str>,
}

struct TestCase<'a> {
    name: &'a str,
    failure: Option<Failure>,
    /// Why a metric that does not fail was not judged (too few cases, no data): a skipped
    /// test, never a green one.
    skipped: Option<String>,
}

struct Failure {
    /// `regression`, `slo`, `no-data`, `too-few`, `equivalence` or `non-inferiority`: what a CI
    /// dashboard groups failures by.
    kind: &'static str,
    message: String,
    details: String,
}

impl<'a> TestSuite<'a> {
    fn new(e: &'a crate::results::ExperimentResult) -> TestSuite<'a> {
        // A removed experiment was not run: it has no testcases, but keeps its suite so the
        // experiment's disappearance is visible next to the others.
        let cases = if e.status == ExperimentStatus::Removed {
            // Its removal fails the change (its gates blocked): a failure, never an empty green.
            (e.verdict == ExperimentVerdict::Fail)
                .then(|| TestCase {
                    name: "removed",
                    failure: Some(Failure {
                        kind: "removed",
                        message: e.reason.clone(),
                        details: String::new(),
                    }),
                    skipped: None,
                })
                .into_iter()
                .collect()
        } else {
            e.metrics
                .iter()
                .filter(|m| m.gated)
                .map(|m| TestCase {
                    name: &m.name,
                    failure: m.fails_gate.then(|| Failure::new(m)),
                    skipped: (!m.fails_gate).then(|| unjudged(m)).flatten(),
                })
                .collect()
        };
        TestSuite {
            name: &e.name,
            cases,
            error: (e.verdict == ExperimentVerdict::Error).then_some(e.reason.as_str()),
        }
    }

    fn failures(&self) -> usize {
        self.cases.iter().filter(|c| c.failure.is_some()).count()
    }
}

/// Why `m` was not judged, if it was not: too few cases for its test, or no data.
fn unjudged(m: &MetricResult) -> Option<String> {
    match m.verdict {
        MetricVerdict::TooFew => Some(match m.details.min_n {
            Some(min) => format!("too few cases to judge (n {} < {min}); not gated", m.n),
            None => "too few cases to judge; not gated".to_owned(),
        }),
        MetricVerdict::NoData => Some("no data: the baseline or the candidate has no value for this metric".to_owned()),
        _ => None,
    }
}

impl Failure {
    fn new(m: &MetricResult) -> Failure {
        let text = MetricText::new(m);
        let needs_equivalence = m.details.require.as_deref() == Some("equivalence");
        let (kind, what) = if m.verdict == MetricVerdict::Regression {
            ("regression", "regression".to_owned())
        } else if let Some(slo) = &text.slo_missed {
            ("slo", slo.clone())
        } else if m.verdict == MetricVerdict::NoData {
            ("no-data", "no data for a blocking metric".to_owned())
        } else if m.verdict == MetricVerdict::TooFew {
            let needed = m
                .details
                .min_n
                .map(|min| format!(" (n {} < {min})", m.n))
                .unwrap_or_default();
            ("too-few", format!("too few cases to judge{needed}"))
        } else if needs_equivalence && m.details.equivalent != Some(true) {
            ("equivalence", "equivalence not shown".to_owned())
        } else if !m.non_inferior {
            ("non-inferiority", "non-inferiority not shown".to_owned())
        } else {
            ("gate", "fails the gate".to_owned())
        };
        let message = format!(
            "{what}: baseline {}, candidate {}, Δ {}, CI {}, p {}",
            text.baseline, text.candidate, text.delta, text.ci, text.p
        );
        let details = format!(
            "verdict: {}\nbaseline: {}\ncandidate: {}\ndelta: {}\nCI: {}\np: {}\ntest: {} (n = {})\nmargin: {}\nalpha: {}\nblocking: {}\n",
            words::verdict_text(m, false),
            text.baseline,
            text.candidate,
            text.delta,
            text.ci,
            text.p,
            m.test,
            m.n,
            text.margin,
            m.alpha,
            m.blocking,
        );
        Failure { kind, message, details }
    }
}

/// Escapes an attribute value. Line breaks and tabs become character references because XML
/// parsers turn literal ones in attributes into spaces.
fn xml_attribute(text: &str) -> String {
    escape(text, true)
}

/// Escapes element text; line breaks stay as they are.
fn xml_text(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\r' | '\t' => out.push(c),
            // XML 1.0 cannot carry other control characters or these two noncharacters, not
            // even as references: a parser rejects the whole file.
            c if (c as u32) < 0x20 => out.push(char::REPLACEMENT_CHARACTER),
            '\u{FFFE}' | '\u{FFFF}' => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::markdown::test_fixtures::demo_results;
    use super::*;

    #[track_caller]
    fn check(input: &str, attribute: &str, text: &str) {
        assert_eq!(xml_attribute(input), attribute);
        assert_eq!(xml_text(input), text);
    }

    #[test]
    fn escapes_markup_and_quotes() {
        check("plain", "plain", "plain");
        check(
            "<a href=\"x\">&'</a>",
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;",
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;",
        );
        check("]]>", "]]&gt;", "]]&gt;");
        check("&amp;", "&amp;amp;", "&amp;amp;");
    }

    #[test]
    fn keeps_line_breaks_in_attributes() {
        check("a\nb\tc\r", "a&#10;b&#9;c&#13;", "a\nb\tc\r");
    }

    #[test]
    fn replaces_characters_xml_cannot_carry() {
        check("nul\0esc\u{1b}", "nul\u{FFFD}esc\u{FFFD}", "nul\u{FFFD}esc\u{FFFD}");
        check("\u{FFFF}é✓", "\u{FFFD}é✓", "\u{FFFD}é✓");
    }

    #[test]
    fn junit_snapshot() {
        insta::assert_snapshot!("junit", render_junit(&demo_results()));
    }

    #[test]
    fn hostile_names_stay_inside_their_attributes() {
        let mut results = demo_results();
        results.experiments[0].name = "a\" onload=\"x</testsuite><testsuite name=\"".to_owned();
        results.experiments[0].metrics[0].name = "<![CDATA[ ]]> & '".to_owned();
        let xml = render_junit(&results);
        assert_eq!(xml.matches("<testsuite ").count(), results.experiments.len());
        assert_eq!(xml.matches("</testsuite>").count(), results.experiments.len());
        assert!(!xml.contains("<![CDATA["));
        assert!(xml.contains("name=\"a&quot; onload=&quot;x&lt;/testsuite&gt;"));
    }

    #[test]
    fn counts_gated_metrics_and_failures() {
        let results = demo_results();
        let xml = render_junit(&results);
        let gated: usize = results
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .map(|e| e.metrics.iter().filter(|m| m.gated).count())
            .sum();
        let failing: usize = results
            .experiments
            .iter()
            .flat_map(|e| &e.metrics)
            .filter(|m| m.gated && m.fails_gate)
            .count();
        assert_eq!(xml.matches("<testcase ").count(), gated);
        assert_eq!(xml.matches("<failure ").count(), failing);
        assert!(xml.contains(&format!("tests=\"{gated}\" failures=\"{failing}\"")));
    }

    #[test]
    fn an_experiment_not_judged_is_an_errored_testcase() {
        let mut results = demo_results();
        results.experiments.truncate(1);
        let e = &mut results.experiments[0];
        e.verdict = ExperimentVerdict::Error;
        e.reason = "not run: estimated cost $5.00 exceeds the budget's hard cap of $1.00 <&>".to_owned();
        e.metrics.clear();
        let xml = render_junit(&results);
        assert!(
            xml.contains("<testsuites name=\"promptgate\" tests=\"1\" failures=\"0\" errors=\"1\">"),
            "{xml}"
        );
        assert!(
            xml.contains("tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\">"),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"not run: estimated cost $5.00 exceeds the budget&apos;s hard cap of $1.00 &lt;&amp;&gt;\" type=\"run-error\"/>"),
            "{xml}"
        );
    }

    /// A removal that fails the change is a failed testcase, and an experiment held for a
    /// maintainer's approval an errored one: the audit's JUnit read green (tests="0") beside a
    /// red gate in both.
    #[test]
    fn a_failing_removal_and_a_held_experiment_are_never_green() {
        let mut results = demo_results();
        results.experiments.truncate(1);
        let e = &mut results.experiments[0];
        e.status = ExperimentStatus::Removed;
        e.verdict = ExperimentVerdict::Fail;
        e.reason = "removed at head: its blocking gates are not measured".to_owned();
        let xml = render_junit(&results);
        assert!(xml.contains("tests=\"1\" failures=\"1\" errors=\"0\">"), "{xml}");
        assert!(xml.contains("<testcase name=\"removed\""), "{xml}");
        results.experiments.clear();
        results.trust.approval = Some(crate::results::ApprovalNeeded {
            reason: "a maintainer must approve where a key goes".to_owned(),
            changes: Vec::new(),
            experiments: vec!["keyed".to_owned()],
            how: "add the label".to_owned(),
        });
        let xml = render_junit(&results);
        assert!(xml.contains("tests=\"1\" failures=\"0\" errors=\"1\">"), "{xml}");
        assert!(
            xml.contains("<testsuite name=\"keyed\"") && xml.contains("a maintainer must approve where a key goes"),
            "{xml}"
        );
    }

    /// Each failing gate says why it failed: a blocking metric with no data, or too few cases
    /// for a gate that requires a proof, is not "non-inferiority not shown".
    #[test]
    fn a_failure_names_its_reason() {
        let mut results = demo_results();
        results.experiments.truncate(1);
        let metric = results.experiments[0]
            .metrics
            .iter_mut()
            .find(|m| m.gated)
            .expect("a gated metric");
        metric.fails_gate = true;
        metric.slo = None;
        metric.n = 8;
        metric.details.min_n = Some(10);
        for (verdict, kind, what) in [
            (MetricVerdict::TooFew, "too-few", "too few cases to judge (n 8 &lt; 10)"),
            (MetricVerdict::NoData, "no-data", "no data for a blocking metric"),
        ] {
            results.experiments[0]
                .metrics
                .iter_mut()
                .find(|m| m.fails_gate)
                .unwrap()
                .verdict = verdict;
            let xml = render_junit(&results);
            assert!(xml.contains(&format!("type=\"{kind}\"")), "{xml}");
            assert!(xml.contains(&format!("message=\"{what}:")), "{xml}");
        }
    }

    /// A gated metric the run could not judge and that does not fail (too few cases for its
    /// test, no data for a non-blocking one) is a skipped test with the reason, not a pass.
    #[test]
    fn a_metric_not_judged_is_skipped_not_passed() {
        let mut results = demo_results();
        results.experiments.truncate(1);
        let metric = results.experiments[0]
            .metrics
            .iter_mut()
            .find(|m| m.gated && !m.fails_gate)
            .expect("a gated metric that passes");
        metric.verdict = MetricVerdict::TooFew;
        metric.n = 5;
        metric.details.min_n = Some(10);
        let name = metric.name.clone();
        let xml = render_junit(&results);
        assert!(
            xml.contains(&format!(
                "<testcase name=\"{name}\" classname=\"{}\">\n      <skipped message=\"too few cases to judge (n 5 &lt; 10); not gated\"/>\n    </testcase>",
                results.experiments[0].name
            )),
            "{xml}"
        );
        assert!(xml.contains("skipped=\"1\">"), "{xml}");
        results.experiments[0]
            .metrics
            .iter_mut()
            .find(|m| m.name == name)
            .unwrap()
            .verdict = MetricVerdict::NoData;
        let xml = render_junit(&results);
        assert!(
            xml.contains("<skipped message=\"no data: the baseline or the candidate has no value for this metric\"/>"),
            "{xml}"
        );
    }

    #[test]
    fn empty_results_are_an_empty_report() {
        let mut results = demo_results();
        results.experiments.clear();
        let xml = render_junit(&results);
        assert!(xml.contains("<testsuites name=\"promptgate\" tests=\"0\" failures=\"0\""));
        assert!(xml.ends_with("</testsuites>\n"));
    }
}
