//! Bad input: every broken suite, dataset, template, ref or results file gets one clear error
//! (what was expected, where, and a hint) and exit code 2 — never a panic, never a silent pass.
//!
//! Each case breaks the demo's base suite. Breakages only `validate` needs run in-process on an
//! in-memory tree, and the whole diagnostic is compared with its snapshot
//! (`tests/integration/snapshots/`), so a changed message is seen whole. Those that must also
//! stop the gate commit the breakage on a branch and run the binary; what only a real checkout
//! can show (bytes that are not UTF-8, a folder where a file should be, refs, watchdogs) runs
//! the binary too.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use promptgate::error::Error;
use promptgate::workspace::{FileSource, MemTree};

use crate::support::{Run, TestRepo, fixture, promptgate_in};

const SUITE: &str = "promptgate.yaml";
const VARIANT: &str = "configs/customer-support.yaml";
const PROMPT: &str = "prompts/customer-support.md";
const JSONL: &str = "datasets/customer-support.jsonl";
const CSV: &str = "datasets/product-faq.csv";

/// The edits a breakage makes, the same on a repository's working tree and on a tree in memory.
trait Tree {
    fn read(&self, path: &str) -> String;
    fn write(&self, path: &str, text: &str);
    fn remove(&self, path: &str);

    /// Replaces the first `from` with `to` in a file, which must contain it.
    #[track_caller]
    fn edit(&self, path: &str, from: &str, to: &str) {
        let text = self.read(path);
        assert!(text.contains(from), "{path} does not contain {from:?}");
        self.write(path, &text.replacen(from, to, 1));
    }
}

impl Tree for TestRepo {
    fn read(&self, path: &str) -> String {
        TestRepo::read(self, path)
    }

    fn write(&self, path: &str, text: &str) {
        TestRepo::write(self, path, text);
    }

    fn remove(&self, path: &str) {
        TestRepo::remove(self, path);
    }
}

/// The demo's base tree, in memory.
struct Files(RefCell<BTreeMap<String, String>>);

impl Files {
    fn demo_base() -> Files {
        let root = fixture("base");
        let mut files = BTreeMap::new();
        let mut folders = vec![root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).expect("fixture folder") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    let name = path
                        .strip_prefix(&root)
                        .expect("under root")
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.insert(name, std::fs::read_to_string(&path).expect("fixture text"));
                }
            }
        }
        Files(RefCell::new(files))
    }

    fn tree(&self) -> Arc<dyn FileSource> {
        let files = self.0.borrow();
        Arc::new(MemTree::new(files.iter().map(|(p, t)| (p.as_str(), t.as_str()))))
    }
}

impl Tree for Files {
    fn read(&self, path: &str) -> String {
        self.0
            .borrow()
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("no file {path}"))
    }

    fn write(&self, path: &str, text: &str) {
        self.0.borrow_mut().insert(path.to_owned(), text.to_owned());
    }

    fn remove(&self, path: &str) {
        assert!(self.0.borrow_mut().remove(path).is_some(), "no file {path}");
    }
}

/// Applies `break_it` to the demo's base tree in memory and validates it as `promptgate
/// validate` does: exactly one error, an input error (exit code 2), with a hint and every
/// `expect`ed fragment; the whole diagnostic, as printed, matches the test's snapshot.
#[track_caller]
fn check(break_it: impl Fn(&dyn Tree), expect: &[&str]) {
    let files = Files::demo_base();
    break_it(&files);
    let errors = match promptgate::suite::lint(files.tree(), SUITE) {
        Ok(_) => panic!("the broken suite validated"),
        Err(errors) => errors,
    };
    assert_eq!(errors.len(), 1, "expected exactly one error, got {errors:#?}");
    let printed = errors[0].to_string();
    assert!(
        matches!(errors[0], Error::Input(_)),
        "not an input error (exit 2):\n{printed}"
    );
    assert!(printed.contains("\nhint: "), "no hint:\n{printed}");
    for fragment in expect {
        assert!(printed.contains(fragment), "lacks {fragment:?}:\n{printed}");
    }
    let test = std::thread::current()
        .name()
        .expect("a test thread is named")
        .to_owned();
    let name = test.rsplit("::").next().expect("a name");
    insta::assert_snapshot!(name, printed);
}

/// Like [`check`], and also commits the breakage on a branch and runs the gate against `main`:
/// the gate must stop with the same error and write nothing that claims a verdict.
#[track_caller]
fn check_with_run(break_it: impl Fn(&dyn Tree), expect: &[&str]) {
    check(&break_it, expect);
    run_broken(|r| break_it(r), expect);
}

/// Commits `break_it` on a branch of a demo-base repository and runs the gate against `main`.
#[track_caller]
fn run_broken(break_it: impl Fn(&TestRepo), expect: &[&str]) {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    break_it(&repo);
    repo.commit("break it");
    let run = repo.promptgate(&["run", "--base", "main", "--head", "HEAD", "--out", "out"]);
    expect_one_error(&run, expect);
    assert!(
        !repo.path().join("out").join("results.json").exists(),
        "a results.json was written\n{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("PASS") && !run.stdout.contains("verdict"),
        "stdout claims a verdict\n{}",
        run.stdout
    );
}

/// Applies `break_it` to a demo-base repository's working tree and runs the binary's
/// `promptgate validate`, for what only a real checkout can hold.
#[track_caller]
fn validate_broken(break_it: impl Fn(&TestRepo), expect: &[&str]) {
    let repo = TestRepo::with_demo_base();
    break_it(&repo);
    let run = repo.promptgate(&["validate"]);
    expect_one_error(&run, expect);
}

#[track_caller]
fn expect_one_error(run: &Run, expect: &[&str]) {
    run.expect_code(2);
    assert!(!run.stderr.contains("panicked"), "panic\n{}", run.stderr);
    let errors = run.stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "expected exactly one error\n{}", run.stderr);
    run.stderr_has("\nhint: ");
    for fragment in expect {
        run.stderr_has(fragment);
    }
}

// 1. Malformed YAML.

#[test]
fn unclosed_bracket_in_suite_file() {
    check_with_run(
        |r| {
            r.edit(SUITE, "experiments:", "experiments: [");
        },
        &[
            "not valid YAML",
            "promptgate.yaml:16:3",
            "hint: look for an unclosed `[`",
        ],
    );
}

#[test]
fn unclosed_bracket_in_variant() {
    check(
        |r| {
            r.edit(VARIANT, "temperature: 0.2", "temperature: [0.2");
        },
        &[
            "not valid YAML",
            "configs/customer-support.yaml:6:11",
            "hint: look for an unclosed `[`",
        ],
    );
}

#[test]
fn unclosed_quote_in_variant() {
    check(
        |r| {
            r.edit(VARIANT, "prompt: ../prompts", "prompt: \"../prompts");
        },
        &["unclosed quote", "configs/customer-support.yaml:4:9", "hint: "],
    );
}

#[test]
fn empty_suite_file() {
    check(
        |r| {
            r.write(SUITE, "\n");
        },
        &["the suite file is empty", "promptgate.yaml", "hint: `promptgate init`"],
    );
}

fn a_budget_that_is_no_amount_of_dollars(edit: &str, broken: &str, at: &str) {
    check(
        |r| {
            r.edit(SUITE, edit, broken);
        },
        &["must be an amount of dollars, 0 or more", at, "hint: "],
    );
}

/// A number beyond a float's range is valid YAML promptgate does not take: the hint says so,
/// not that a bracket is unclosed (the audit).
#[test]
fn a_number_beyond_a_floats_range() {
    check(
        |r| {
            r.edit(
                SUITE,
                "pass_rate:        {direction: higher, margin: 0.02,",
                "pass_rate:        {direction: higher, margin: 1e400,",
            );
        },
        &["non-finite", "promptgate.yaml:29:", "hint: write a finite number"],
    );
}

#[test]
fn a_budget_cap_below_zero() {
    a_budget_that_is_no_amount_of_dollars("max_usd: 5.00", "max_usd: -1", "promptgate.yaml:12:44");
}

#[test]
fn a_budget_cap_that_is_not_a_number() {
    a_budget_that_is_no_amount_of_dollars("max_usd: 5.00", "max_usd: .nan", "promptgate.yaml:12:44");
}

#[test]
fn an_approval_amount_that_is_infinite() {
    a_budget_that_is_no_amount_of_dollars(
        "approve_above_usd: 0.50",
        "approve_above_usd: .inf",
        "promptgate.yaml:12:29",
    );
}

#[test]
fn value_of_the_wrong_type() {
    check(
        |r| {
            r.edit(SUITE, "alpha: 0.05", "alpha: low");
        },
        &["this value is not a number", "promptgate.yaml:13:31", "hint: "],
    );
}

#[test]
fn zero_repeats_or_concurrency_in_the_defaults() {
    for (key, edit, at) in [
        ("repeats", "repeats: 0", "promptgate.yaml:13:21"),
        ("concurrency", "repeats: 1, concurrency: 0", "promptgate.yaml:13:37"),
    ] {
        validate_broken(
            |r| {
                r.edit(SUITE, "repeats: 1", edit);
            },
            &[&format!("defaults.{key} must be at least 1, got 0"), at],
        );
    }
}

/// A plan holds every call's job: repeats past the limit are bad input at `validate`, not an
/// allocation that fails (exit 134) when the run builds the jobs.
#[test]
fn too_many_repeats_in_the_defaults() {
    validate_broken(
        |r| {
            r.edit(SUITE, "repeats: 1", "repeats: 100000000");
        },
        &[
            "defaults.repeats must be at most 100, got 100000000",
            "promptgate.yaml:13:21",
            "hint: each repeat is one more call",
        ],
    );
}

/// A run plans at most `plan::MAX_CALLS` calls: past it the run stops before it builds a job.
#[test]
fn a_plan_past_the_most_calls_a_run_holds_is_bad_input() {
    run_broken(
        |r| {
            let cases: String = (0..60_000)
                .map(|n| {
                    format!(
                        "{{\"id\": \"q{n}\", \"vars\": {{\"input\": \"question {n}\", \"customer_name\": \"Ann\"}}}}\n"
                    )
                })
                .collect();
            r.write(JSONL, &cases);
            r.edit(
                SUITE,
                "    dataset: datasets/customer-support.jsonl\n",
                "    dataset: datasets/customer-support.jsonl\n    repeats: 100\n",
            );
        },
        &[
            "the run plans 12000000 calls (cases × repeats × arms); promptgate runs at most 10000000 in one run",
            "hint: lower `repeats` or the number of cases",
        ],
    );
}

/// `--approve-cost` takes an amount of dollars: `nan` is a usage error (exit 2), not a
/// threshold that fails closed at the budget (exit 3).
#[test]
fn approve_cost_that_is_not_an_amount_is_a_usage_error() {
    let repo = TestRepo::with_demo_base();
    for value in ["nan", "inf", "-1", "ten"] {
        let flag = format!("--approve-cost={value}");
        let run = repo.promptgate(&["run", "--base", "main", "--head", "HEAD", &flag]);
        run.expect_code(2);
        run.stderr_has("is not an amount of US dollars");
        run.stderr_has("hint: write a number of dollars");
    }
}

/// `--cache-dir` naming a file is a usage error: the run went on without a cache, warning
/// twice that it could not lock it (the audit).
#[test]
fn a_cache_dir_that_is_a_file_is_a_usage_error() {
    let repo = TestRepo::with_demo_base();
    // Also a path through a file (the review).
    for dir in ["promptgate.yaml", "promptgate.yaml/sub"] {
        let run = repo.promptgate(&["run", "--base", "main", "--head", "HEAD", "--cache-dir", dir]);
        run.expect_code(2);
        run.stderr_has("`promptgate.yaml` is a file, not a folder for the response cache");
        run.stderr_has("hint: name a folder");
    }
}

#[test]
fn a_case_without_the_input_var_is_named_where_it_is_written() {
    validate_broken(
        |r| {
            let path = "datasets/customer-support.jsonl";
            let text = r.read(path);
            let third = text.lines().nth(2).unwrap().replacen("\"input\"", "\"question\"", 1);
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .map(|(i, l)| if i == 2 { third.clone() } else { l.to_owned() })
                .collect();
            r.write(path, &(lines.join("\n") + "\n"));
        },
        &[
            "the case has no `input` var",
            "--> datasets/customer-support.jsonl:3\n",
            "hint: in case `refund-to-card`",
        ],
    );
}

#[test]
fn a_value_out_of_its_range_is_named_where_it_is_written() {
    for (from, to, expected, at) in [
        (
            "alpha: 0.05",
            "alpha: 2",
            "defaults.alpha must be between 0 and 0.5, got 2",
            "promptgate.yaml:13:31",
        ),
        (
            "alpha: 0.05",
            "alpha: 0.05, max_error_rate: 1.5",
            "defaults.max_error_rate must be between 0 and 1, got 1.5",
            "promptgate.yaml:13:53",
        ),
        (
            "alpha: 0.05",
            "alpha: 0.05, sequential_looks: 1",
            "defaults.sequential_looks must be between 2 and 10, got 1",
            "promptgate.yaml:13:55",
        ),
        (
            "judge_model: gpt-4o-mini",
            "judge_model: gpt-4o-mini, judge_repeats: 11",
            "defaults.judge_repeats must be between 1 and 10, got 11",
            "promptgate.yaml:13:",
        ),
        (
            "judge: offline, judge_model",
            "judge_model",
            "defaults.judge_model and judge_repeats need defaults.judge",
            "promptgate.yaml:13:69",
        ),
        (
            "{input: 0.15,",
            "{input: -0.15,",
            "pricing for `gpt-4o-mini` must not be negative",
            "promptgate.yaml:9:16",
        ),
        (
            "offline: {type: mock}",
            "offline: {type: mock, concurrency: 0}",
            "provider `offline`: concurrency must be at least 1",
            "promptgate.yaml:6:38",
        ),
        // A variant with no model, or with no room to answer: every call would be refused.
        (
            "model: gpt-4o-mini",
            "model: \"\"",
            "model is empty",
            "configs/customer-support.yaml:3:8",
        ),
        (
            "max_tokens: 400",
            "max_tokens: 0",
            "max_tokens must be at least 1, got 0",
            "configs/customer-support.yaml:6:13",
        ),
    ] {
        // The file edited is the one the error names.
        let file = at.split(':').next().unwrap();
        validate_broken(
            |r| {
                r.edit(file, from, to);
            },
            &[expected, at, "hint: "],
        );
    }
}

#[test]
fn an_slo_in_percent_is_for_a_rate() {
    // A rate's objective may be a percentage, as a margin may...
    let repo = TestRepo::with_demo_base();
    repo.edit(
        SUITE,
        "  pass_rate:        {direction: higher, margin: 0.02, blocking: true}",
        "  pass_rate:        {direction: higher, margin: 0.02, blocking: true, slo: \"90%\"}",
    );
    repo.promptgate(&["validate"]).expect_code(0);
    // ...and a latency's is a number of milliseconds, not a percentage.
    validate_broken(
        |r| {
            r.edit(SUITE, "slo: 800", "slo: \"5%\"");
        },
        &[
            "gate `latency_p95_ms`: slo \"5%\" is a percentage",
            "promptgate.yaml:30:",
        ],
    );
}

// 2. Malformed JSON lines.

#[test]
fn malformed_json_on_line_7() {
    check(
        |r| {
            r.edit(JSONL, r#""id": "return-gift","#, r#""id" "return-gift","#);
        },
        &[
            "expected `:`",
            "a JSON object per line",
            "datasets/customer-support.jsonl:7:7",
            "hint: each line is one complete JSON object",
        ],
    );
}

/// A line of JSON that is not an object says so (read as a case's fields in order, `[1, 2]`
/// said "expected a string").
#[test]
fn a_jsonl_line_that_is_not_an_object() {
    let errors = every_error(|r| {
        r.write(
            JSONL,
            "{\"id\": \"a\", \"vars\": {\"input\": \"hi\", \"customer_name\": \"Ann\"}}\n[\"b\", \"c\", null]\n",
        )
    });
    assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
    assert!(
        errors[0].contains("this line is JSON, but not an object")
            && errors[0].contains("datasets/customer-support.jsonl:2:")
            && errors[0].contains("hint: "),
        "{}",
        errors[0]
    );
}

#[test]
fn truncated_json_line() {
    check(
        |r| {
            r.edit(
                JSONL,
                r#"{"type": "icontains", "value": "photo"}]}"#,
                r#"{"type": "icontains", "value": "photo"}"#,
            );
        },
        &[
            "EOF while parsing",
            "datasets/customer-support.jsonl:8:",
            "hint: each line is one complete JSON object",
        ],
    );
}

#[test]
fn case_of_the_wrong_shape() {
    check(
        |r| {
            r.edit(
                JSONL,
                r#""assert": [{"type": "icontains", "value": "30 days"}]"#,
                r#""assert": "30 days""#,
            );
        },
        &[
            "invalid type",
            "datasets/customer-support.jsonl:1:",
            "hint: a case looks like",
        ],
    );
}

// 3. Malformed CSV.

#[test]
fn csv_row_with_too_many_fields() {
    check(
        |r| {
            r.edit(CSV, "set up the tent?,5 minutes", "set up the tent?,5 minutes,extra");
        },
        &[
            "row has 4 fields, the header has 3",
            "datasets/product-faq.csv:5",
            "hint: quote cells that contain commas",
        ],
    );
}

/// Spreadsheets save UTF-8 CSV with a byte order mark; it must not turn the `id` column into a
/// var (which would silently derive ids instead). The duplicate is only caught through `id`.
#[test]
fn csv_with_a_byte_order_mark_keeps_its_id_column() {
    check(
        |r| {
            let text = r.read(CSV).replacen("tent-weight", "tent-capacity", 1);
            r.write(CSV, &format!("\u{feff}{text}"));
        },
        &[
            "duplicate case id `tent-capacity`",
            "datasets/product-faq.csv:3",
            "hint: the first `tent-capacity` is on line 2",
        ],
    );
}

// 4. Unknown keys and values.

#[test]
fn unknown_key_in_suite_file() {
    check(
        |r| {
            r.edit(SUITE, "experiments:", "experimnts:");
        },
        &[
            "unknown key `experimnts`",
            "promptgate.yaml:15:1",
            "hint: did you mean `experiments`?",
        ],
    );
}

#[test]
fn unknown_key_in_variant() {
    check(
        |r| {
            r.edit(VARIANT, "temperature:", "temprature:");
        },
        &[
            "unknown key `temprature`",
            "configs/customer-support.yaml:5:1",
            "hint: did you mean `temperature`?",
        ],
    );
}

#[test]
fn unknown_key_in_experiment_entry() {
    check(
        |r| {
            r.edit(
                SUITE,
                "    dataset: datasets/product-faq.csv",
                "    dataset: datasets/product-faq.csv\n    repeat: 3",
            );
        },
        &[
            "unknown key `repeat`",
            "promptgate.yaml:23:5",
            "hint: did you mean `repeats`?",
        ],
    );
}

#[test]
fn unknown_key_in_jsonl_case() {
    check(
        |r| {
            r.edit(
                JSONL,
                r#""customer_name": "Aisha"}, "assert""#,
                r#""customer_name": "Aisha"}, "asert""#,
            );
        },
        &[
            "unknown key `asert`",
            "datasets/customer-support.jsonl:3:",
            "hint: did you mean `assert`?",
        ],
    );
}

#[test]
fn unknown_provider_type() {
    check_with_run(
        |r| {
            r.edit(SUITE, "{type: mock}", "{type: opnai}");
        },
        &[
            "unknown value `opnai`",
            "promptgate.yaml:6:19",
            "hint: did you mean `openai`?",
        ],
    );
}

#[test]
fn unknown_gate_direction() {
    check(
        |r| {
            r.edit(SUITE, "{direction: higher", "{direction: up");
        },
        &[
            "unknown value `up`",
            "promptgate.yaml:29:33",
            "hint: expected one of: higher, lower",
        ],
    );
}

#[test]
fn unknown_provider_name() {
    check(
        |r| {
            r.edit(SUITE, "provider: offline", "provider: ofline");
        },
        &[
            "unknown provider `ofline`",
            "promptgate.yaml:13:",
            "hint: did you mean `offline`?",
        ],
    );
}

/// Several providers and none the default: an experiment that names none is the error, at
/// the experiment.
#[test]
fn several_providers_and_an_experiment_that_names_none() {
    let errors = every_error(|r| {
        r.edit(
            SUITE,
            "  offline: {type: mock}\n",
            "  offline: {type: mock}\n  other: {type: mock}\n",
        );
        r.edit(SUITE, " provider: offline,", "");
    });
    // Each of the three experiments, at its name.
    assert_eq!(errors.len(), 3, "{}", errors.join("\n"));
    for (error, (name, at)) in errors.iter().zip([
        ("customer-support", "promptgate.yaml:17:11"),
        ("product-faq", "promptgate.yaml:21:11"),
        ("help-center", "promptgate.yaml:24:11"),
    ]) {
        for fragment in [
            &format!("experiment `{name}` names no provider, and several are configured with none the default"),
            at,
            "hint: set `provider:` on this experiment, or `defaults: {provider: NAME}` (one of `offline`, `other`)",
        ] {
            assert!(error.contains(fragment), "lacks {fragment:?}:\n{error}");
        }
    }
}

/// Several providers and none the default is a valid suite when every experiment names its own
/// (`provider:` is optional, else `defaults.provider`).
#[test]
fn several_providers_without_a_default_when_every_experiment_names_its_own() {
    let files = Files::demo_base();
    files.edit(
        SUITE,
        "  offline: {type: mock}\n",
        "  offline: {type: mock}\n  other: {type: mock}\n",
    );
    files.edit(SUITE, " provider: offline,", "");
    for name in ["customer-support", "product-faq", "help-center"] {
        files.edit(
            SUITE,
            &format!("    variant: configs/{name}.yaml\n"),
            &format!("    provider: other\n    variant: configs/{name}.yaml\n"),
        );
    }
    let suite = promptgate::suite::lint(files.tree(), SUITE).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(suite.experiments.iter().all(|e| e.provider == "other"));
}

/// `gates:` is the canary's too: a metric only a canary measures is its gate in a file with a
/// `canary:` section, and an error (saying where it belongs) in one without.
#[test]
fn a_canary_metric_in_gates_needs_a_canary() {
    let gate = "gates:\n  thumbs_down_rate: {direction: lower, margin: 0.02, blocking: true}\n";
    check(
        |r| r.edit(SUITE, "gates:\n", gate),
        &[
            "gate on unknown metric `thumbs_down_rate`",
            "hint: `thumbs_down_rate` is measured by `promptgate canary` on production logs",
        ],
    );
    let files = Files::demo_base();
    files.edit(SUITE, "gates:\n", gate);
    let text = files.read(SUITE)
        + "canary:\n  source: {type: jsonl, path: logs/requests.jsonl, arm_field: variant, baseline: v1, canary: v2}\n";
    files.write(SUITE, &text);
    let suite = promptgate::suite::lint(files.tree(), SUITE).unwrap_or_else(|e| panic!("{e:#?}"));
    assert!(suite.gates.iter().any(|g| g.metric == "thumbs_down_rate"));
}

// 5. Missing files.

#[test]
fn missing_prompt_file() {
    check(
        |r| {
            r.edit(VARIANT, "customer-support.md", "customer-suport.md");
        },
        &[
            "prompt file `prompts/customer-suport.md` not found",
            "configs/customer-support.yaml:4:9",
            "hint: the prompt path is relative to the variant file",
        ],
    );
}

#[test]
fn missing_dataset_file() {
    check(
        |r| {
            r.remove(CSV);
        },
        &[
            "dataset `datasets/product-faq.csv`",
            "promptgate.yaml:22:14",
            "hint: paths are relative to the suite file",
        ],
    );
}

#[test]
fn missing_variant_file() {
    check(
        |r| {
            r.remove("configs/product-faq.yaml");
        },
        &[
            "variant file `configs/product-faq.yaml`",
            "promptgate.yaml:21:14",
            "hint: paths are relative to the suite file",
        ],
    );
}

#[test]
fn missing_suite_file() {
    check(
        |r| {
            r.remove(SUITE);
        },
        &[
            "no suite file `promptgate.yaml`",
            "hint: create one with `promptgate init`",
        ],
    );
}

// 6. and 7. Templates.

/// An undefined variable is named wherever it stands in an expression: under a filter, or as
/// the start of an attribute path whose first part is not a var (its did-you-mean then finds
/// the var meant).
#[test]
fn an_undefined_variable_in_an_expression_is_named() {
    for (written, named, meant) in [
        ("{{ customer_nam | upper }}", "customer_nam", Some("customer_name")),
        ("{{ customer_nam.first }}", "customer_nam", Some("customer_name")),
        (
            "{% if customer_nam and input %}x{% endif %}",
            "customer_nam",
            Some("customer_name"),
        ),
        ("{{ \"Hi \" ~ customer_nam }}", "customer_nam", Some("customer_name")),
        ("{{ customer_name.first | upper }}", "customer_name.first", None),
    ] {
        let errors = every_error(|r| r.edit(PROMPT, "{{ customer_name }}", written));
        assert_eq!(errors.len(), 1, "{written}: {}", errors.join("\n"));
        assert!(
            errors[0].contains(&format!("undefined variable `{named}`")),
            "{written}: {}",
            errors[0]
        );
        if let Some(meant) = meant {
            assert!(
                errors[0].contains(&format!("did you mean `{meant}`?")),
                "{written}: {}",
                errors[0]
            );
        }
    }
}

#[test]
fn undefined_template_variable() {
    check_with_run(
        |r| {
            r.edit(PROMPT, "{{ customer_name }}", "{{ customer_nam }}");
        },
        &[
            "undefined variable `customer_nam`",
            "prompts/customer-support.md:4:26",
            "case `refund-window`",
            "datasets/customer-support.jsonl:1",
            "hint: did you mean `customer_name`?",
        ],
    );
}

#[test]
fn undefined_variable_in_a_partial() {
    check(
        |r| {
            r.edit("prompts/partials/tone.md", "## Tone", "## Tone for {{ shop }}");
        },
        &[
            "undefined variable `shop`",
            "prompts/partials/tone.md:1:",
            "case `refund-window`",
        ],
    );
}

#[test]
fn include_of_a_missing_partial() {
    check_with_run(
        |r| {
            r.edit(PROMPT, "partials/refunds.md", "partials/refund.md");
        },
        &[
            "included template `prompts/partials/refund.md` not found",
            "prompts/customer-support.md:14:",
            "hint: include names are relative to the including file's folder",
        ],
    );
}

#[test]
fn template_syntax_error() {
    check(
        |r| {
            r.edit(PROMPT, "{{ customer_name }}", "{{ customer_name }");
        },
        &["template syntax error", "prompts/customer-support.md:4:", "hint: "],
    );
}

// 8. Invalid regexes.

#[test]
fn invalid_regex_in_jsonl_case() {
    check_with_run(
        |r| {
            r.edit(
                JSONL,
                r#""value": "(?i)human agent|sorry|not sure"}]}"#,
                r#""value": "(unclosed"}]}"#,
            );
        },
        &[
            "case `restock`: invalid regex `(unclosed`: unclosed group",
            "datasets/customer-support.jsonl:42:",
            "hint: the regex syntax is Rust's",
        ],
    );
}

#[test]
fn invalid_regex_in_suite_assert() {
    check(
        |r| {
            r.edit(
                SUITE,
                "{type: max-length, value: 1200}",
                r#"{type: regex, value: "(unclosed"}"#,
            );
        },
        &[
            "invalid regex `(unclosed`: unclosed group",
            "promptgate.yaml:19:14",
            "hint: the regex syntax is Rust's",
        ],
    );
}

// 9. Paths that leave the repository.

#[test]
fn dataset_path_escaping_the_repository() {
    check(
        |r| {
            r.edit(SUITE, "dataset: datasets/product-faq.csv", "dataset: ../../etc/passwd");
        },
        &[
            "dataset path `../../etc/passwd` leaves the repository",
            "promptgate.yaml:22:14",
            "hint: paths in the suite are relative",
        ],
    );
}

#[test]
fn prompt_path_escaping_the_repository() {
    check(
        |r| {
            r.edit(
                VARIANT,
                "prompt: ../prompts/customer-support.md",
                "prompt: ../../../x.md",
            );
        },
        &[
            "prompt path `../../../x.md` leaves the repository",
            "configs/customer-support.yaml:4:9",
            "hint: the prompt path is relative",
        ],
    );
}

#[test]
fn include_escaping_the_repository() {
    check_with_run(
        |r| {
            r.edit(PROMPT, "partials/refunds.md", "../../../../etc/passwd");
        },
        &[
            "include `../../../../etc/passwd` leaves the repository",
            "prompts/customer-support.md:14:",
            "hint: include names are relative to the including file's folder and must stay inside the repository",
        ],
    );
}

// 10. Empty datasets.

#[test]
fn empty_jsonl_dataset() {
    check(
        |r| {
            r.write(JSONL, "");
        },
        &[
            "dataset `datasets/customer-support.jsonl` has no cases",
            "hint: an experiment needs at least one case",
        ],
    );
}

#[test]
fn csv_dataset_with_only_a_header() {
    check(
        |r| {
            r.write(CSV, "id,input,assert.icontains\n");
        },
        &[
            "dataset `datasets/product-faq.csv` has no cases",
            "hint: an experiment needs at least one case",
        ],
    );
}

// 11. Duplicates.

#[test]
fn duplicate_experiment_name() {
    check(
        |r| {
            r.edit(SUITE, "name: product-faq", "name: customer-support");
        },
        &[
            "duplicate experiment name `customer-support`",
            "promptgate.yaml:20:11",
            "hint: the first `customer-support` is on line 16",
        ],
    );
}

#[test]
fn duplicate_case_id() {
    check(
        |r| {
            r.edit(JSONL, r#""id": "exchange-size""#, r#""id": "refund-late""#);
        },
        &[
            "duplicate case id `refund-late`",
            "datasets/customer-support.jsonl:9:2",
            "hint: the first `refund-late` is on line 2",
        ],
    );
}

#[test]
fn duplicate_key_in_suite_file() {
    check(
        |r| {
            r.edit(SUITE, "traffic:", "budget: {max_usd: 1}\ntraffic:");
        },
        &[
            "duplicate key `budget`",
            "promptgate.yaml:13:1",
            "hint: a key may appear only once",
        ],
    );
}

// 12. Assertions, gates and versions.

#[test]
fn unknown_assertion_type_in_jsonl_case() {
    check(
        |r| {
            r.edit(
                JSONL,
                r#""type": "icontains", "value": "original payment method""#,
                r#""type": "icontain", "value": "original payment method""#,
            );
        },
        &[
            "case `refund-to-card`: unknown assertion type `icontain`",
            "datasets/customer-support.jsonl:3:",
            "hint: did you mean `icontains`?",
        ],
    );
}

#[test]
fn unknown_assertion_type_in_suite_assert() {
    check(
        |r| {
            r.edit(SUITE, "type: max-length", "type: max-lenght");
        },
        &[
            "unknown assertion type `max-lenght`",
            "promptgate.yaml:19:14",
            "hint: did you mean `max-length`?",
        ],
    );
}

/// YAML reads an unquoted `no` as false and `1.50` as 1.5: a text assertion's value must be
/// the text written, so either is bad input at the assertion, with a hint to quote it.
#[test]
fn a_text_assertion_whose_value_yaml_read_as_a_boolean() {
    check(
        |r| {
            r.edit(
                SUITE,
                "{type: max-length, value: 1200}",
                "{type: not-icontains, value: no}",
            );
        },
        &[
            "assertion `not-icontains` needs a text `value`, but it was read as the boolean false",
            "promptgate.yaml:19:14",
            "hint: quote it",
        ],
    );
}

/// A setting on a type that takes none is said, not dropped (docs/scorers.md).
#[test]
fn json_valid_with_a_value() {
    check(
        |r| {
            r.edit(SUITE, "{type: max-length, value: 1200}", "{type: json-valid, value: x}");
        },
        &[
            "assertion `json-valid` takes no `value`",
            "promptgate.yaml:19:14",
            "hint: write {type: json-valid}",
        ],
    );
}

#[test]
fn a_text_assertion_whose_value_yaml_read_as_a_fraction() {
    check(
        |r| {
            r.edit(
                SUITE,
                "{type: max-length, value: 1200}",
                "{type: contains, value: 1.50}",
            );
        },
        &[
            "assertion `contains` needs a text `value`, but it was read as the number 1.5",
            "promptgate.yaml:19:14",
            "hint: quote it, e.g. {type: contains, value: \"1.50\"}",
        ],
    );
}

// 12b. Scorers: personal data, forbidden terms, JSON Schema, similarity, exec.

/// Replaces the demo suite's experiment-level assertion with `assertion`.
fn suite_assert(r: &dyn Tree, assertion: &str) {
    r.edit(SUITE, "{type: max-length, value: 1200}", assertion);
}

#[test]
fn unknown_kind_of_personal_data() {
    check(
        |r| suite_assert(r, "{type: pii, value: [email, iabn]}"),
        &[
            "unknown kind of personal data `iabn`",
            "promptgate.yaml:19:14",
            "hint: did you mean `iban`?",
        ],
    );
}

#[test]
fn invalid_pattern_for_a_national_id() {
    check(
        |r| suite_assert(r, r#"{type: pii, value: [email, {us-ssn: '\d{3}-(\d{2}'}]}"#),
        &["invalid regex", "promptgate.yaml:19:14", "hint: the regex syntax"],
    );
}

#[test]
fn pii_metric_named_as_if_higher_were_better() {
    check(
        |r| suite_assert(r, "{type: pii, metric: privacy_score}"),
        &[
            "its metric `privacy_score` must read lower-is-better",
            "promptgate.yaml:19:14",
            "hint: name it as a leak",
        ],
    );
}

#[test]
fn a_higher_is_better_score_named_as_if_lower_were_better() {
    // A rubric's score rises with a better output: named as a hallucination (or a leak, a
    // time, a cost) with no gate to say otherwise, its fall would be judged an improvement
    // and the gate would pass it.
    check(
        |r| {
            suite_assert(
                r,
                "{type: llm-rubric, value: 'Makes no unsupported claim', metric: no_hallucination}",
            )
        },
        &[
            "the `no_hallucination` score is higher for a better output, but it reads lower-is-better",
            "promptgate.yaml:19:",
            "hint: give it a gate with `direction: higher`",
        ],
    );
    let lint = |assertion: &str, gates: Option<&str>| {
        let files = Files::demo_base();
        suite_assert(&files, assertion);
        if let Some(gates) = gates {
            files.edit(SUITE, "gates:\n", &format!("gates:\n{gates}\n"));
        }
        promptgate::suite::lint(files.tree(), SUITE)
            .err()
            .map(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
    };
    for (assertion, name) in [
        (
            "{type: relevance, metric: no_hallucination_score}",
            "no_hallucination_score",
        ),
        ("{type: icontains, value: refund, metric: no_leak}", "no_leak"),
        (
            "{type: llm-rubric, value: 'Is quick to read', metric: reading_ms}",
            "reading_ms",
        ),
        ("{type: similarity, value: 'a refund', metric: cost_fit}", "cost_fit"),
    ] {
        let errors = lint(assertion, None).unwrap_or_else(|| panic!("{assertion} validated"));
        assert!(
            errors.contains(&format!(
                "the `{name}` score is higher for a better output, but it reads lower-is-better"
            )),
            "{assertion}: {errors}"
        );
    }
    // Its gate's direction is the word on it: `direction: higher` keeps the name (the
    // reviewer: `hallucination_free`, `bleak_tone` were refused whatever their gate said);
    // `direction: lower` is refused too.
    let rubric = "{type: llm-rubric, value: 'Is not bleak', metric: bleak_tone}";
    assert_eq!(
        lint(rubric, Some("  bleak_tone: {direction: higher, margin: 0.05}")),
        None
    );
    let lower = lint(rubric, Some("  bleak_tone: {direction: lower, margin: 0.05}")).expect("refused");
    assert!(lower.contains("or its gate says `direction: lower`"), "{lower}");
    // A name that reads higher-is-better stays as it is.
    assert_eq!(
        lint(
            "{type: llm-rubric, value: 'Makes no unsupported claim', metric: grounded}",
            None
        ),
        None
    );
}

#[test]
fn an_empty_rubric() {
    check(
        |r| suite_assert(r, "{type: llm-rubric, value: '  ', metric: grounded}"),
        &[
            "assertion `llm-rubric` needs the rubric as its `value` (a judge asked an empty rubric judges nothing)",
            "promptgate.yaml:19:14",
            "hint: e.g. {type: llm-rubric",
        ],
    );
}

/// The help-center experiment's hallucination assertion, recorded under `metric`.
fn hallucination_named(r: &dyn Tree, metric: &str) {
    r.edit(
        SUITE,
        "{type: hallucination, context_var: context}",
        &format!("{{type: hallucination, context_var: context, metric: {metric}}}"),
    );
}

/// A `hallucination` judgement is 1 for an unsupported claim: a metric that reads
/// higher-is-better, by its name without a gate or by its gate's direction, would report more
/// hallucinations as an improvement. A gate with `direction: lower` makes any name right.
#[test]
fn hallucination_metric_read_as_if_higher_were_better() {
    check(
        |r| {
            hallucination_named(r, "faithfulness");
            // Its gate goes with it (a gate on `hallucination_rate` would now name a metric
            // nothing feeds: an error of its own).
            r.edit(SUITE, "  hallucination_rate: {", "  # hallucination_rate: {");
        },
        &[
            "its metric `faithfulness` must read lower-is-better",
            "promptgate.yaml:26:66",
            "hint: give its gate `direction: lower`, or name it as a hallucination rate",
        ],
    );
}

#[test]
fn hallucination_metric_gated_as_if_higher_were_better() {
    check(
        |r| {
            hallucination_named(r, "unsupported_claims");
            r.edit(
                SUITE,
                "  hallucination_rate: {direction: lower",
                "  unsupported_claims: {direction: higher",
            );
        },
        &[
            "its metric `unsupported_claims` must read lower-is-better",
            "promptgate.yaml:33:3",
        ],
    );
    let files = Files::demo_base();
    hallucination_named(&files, "unsupported_claims");
    files.edit(SUITE, "  hallucination_rate: {", "  unsupported_claims: {");
    if let Err(errors) = promptgate::suite::lint(files.tree(), SUITE) {
        panic!(
            "{}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn forbidden_terms_without_terms() {
    check(
        |r| suite_assert(r, "{type: forbidden-terms}"),
        &[
            "assertion `forbidden-terms` needs a list of terms",
            "promptgate.yaml:19:14",
            "hint: e.g. {type: forbidden-terms",
        ],
    );
}

#[test]
fn json_schema_that_is_not_a_schema() {
    check(
        |r| suite_assert(r, "{type: json-schema, value: {type: objekt}}"),
        &[
            "invalid JSON Schema",
            "promptgate.yaml:19:14",
            "hint: the schema must itself be valid",
        ],
    );
}

#[test]
fn json_schema_file_that_is_not_json() {
    check(
        |r| {
            r.write("schemas/answer.json", "{type: object");
            suite_assert(r, "{type: json-schema, value: file://schemas/answer.json}");
        },
        &[
            "the schema is not valid JSON",
            "promptgate.yaml:19:14",
            "hint: e.g. {type: json-schema",
        ],
    );
}

#[test]
fn json_schema_with_a_remote_reference() {
    check(
        |r| {
            suite_assert(
                r,
                r#"{type: json-schema, value: {"$ref": "https://example.com/answer.json"}}"#,
            )
        },
        &[
            "invalid JSON Schema",
            "promptgate.yaml:19:14",
            "hint: promptgate resolves no `$ref`",
        ],
    );
}

#[test]
fn similarity_threshold_out_of_range() {
    check(
        |r| {
            suite_assert(
                r,
                r#"{type: similarity, value: "Refunds within 30 days.", threshold: 80}"#,
            )
        },
        &[
            "similarity threshold must be between 0 and 1, got 80",
            "promptgate.yaml:19:14",
            "hint: the score is a ROUGE-L F-measure",
        ],
    );
}

#[test]
fn unknown_similarity_method() {
    check(
        |r| {
            suite_assert(
                r,
                r#"{type: similarity, value: "Refunds within 30 days.", method: rouge}"#,
            )
        },
        &[
            "unknown similarity method `rouge`",
            "promptgate.yaml:19:14",
            "hint: did you mean `rouge-l`?",
        ],
    );
}

#[test]
fn similarity_without_an_expected_answer() {
    check(
        |r| suite_assert(r, "{type: similarity, threshold: 0.5}"),
        &[
            "case `refund-window` has no `expected` var for its similarity assertion",
            "datasets/customer-support.jsonl:1:",
            "hint: add the reference answer to the case's vars",
        ],
    );
}

#[test]
fn hallucination_without_its_context_var() {
    check(
        |r| {
            // The demo's suite names its judge (`defaults.judge`) already.
            suite_assert(r, "{type: hallucination, context_var: article}");
        },
        &[
            "case `refund-window` has no `article` var for its hallucination assertion to judge against",
            "datasets/customer-support.jsonl:1:25",
            "hint: add the grounding text to the case's vars",
        ],
    );
}

#[test]
fn embedder_without_an_embeddings_endpoint() {
    check(
        |r| {
            r.edit(
                SUITE,
                "offline: {type: mock}",
                "offline: {type: mock}\n  claude: {type: anthropic, model: claude-3-5-haiku}",
            );
            r.edit(
                SUITE,
                "judge_model: gpt-4o-mini}",
                "judge_model: gpt-4o-mini, embedder: claude}",
            );
            suite_assert(
                r,
                "{type: similarity, method: embeddings, value: \"Refunds within 30 days.\"}",
            );
        },
        &[
            "the embedder `claude` has type `anthropic`, which has no embeddings endpoint",
            "promptgate.yaml:14:108",
            "hint: embed through an `openai` or `openai-compatible` provider",
        ],
    );
}

#[test]
fn embedding_similarity_without_an_embedder() {
    check(
        |r| {
            suite_assert(
                r,
                "{type: similarity, method: embeddings, value: \"Refunds within 30 days.\"}",
            )
        },
        &[
            "experiment `customer-support` has a similarity with `method: embeddings` but the suite names no embedder",
            "promptgate.yaml:19:33",
            "hint: name the provider that embeds",
        ],
    );
}

#[test]
fn threshold_on_an_assertion_that_has_none() {
    check(
        |r| suite_assert(r, "{type: max-length, value: 1200, threshold: 0.5}"),
        &[
            "assertion `max-length` takes no `threshold`",
            "promptgate.yaml:19:14",
            "hint: `threshold` belongs to similarity assertions",
        ],
    );
}

#[test]
fn exec_scorer_without_a_command() {
    check(
        |r| suite_assert(r, "{type: exec, metric: tone}"),
        &[
            "assertion `exec` needs `command`",
            "promptgate.yaml:19:14",
            "hint: e.g. {type: exec, command: [python3, scripts/score.py], metric: tone}",
        ],
    );
}

#[test]
fn exec_scorer_taking_a_reserved_name() {
    check(
        |r| {
            suite_assert(
                r,
                "{type: exec, command: [python3, scripts/score.py], metric: [tone, consistency]}",
            )
        },
        &[
            "`consistency` is promptgate's own metric",
            "promptgate.yaml:19:14",
            "hint: name it differently",
        ],
    );
}

/// A score named as a metric promptgate computes from the calls would be read as neither: the
/// assertion's score vanished behind the built-in `cost_per_request`, and the call failed.
#[test]
fn an_assertion_named_as_a_computed_metric() {
    for metric in [
        "cost_per_request",
        "latency_p95_ms",
        "error_rate",
        "pass_rate",
        "flaky_share",
        "judge_error_rate",
    ] {
        let errors = every_error(|r| suite_assert(r, &format!("{{type: icontains, value: refund, metric: {metric}}}")));
        assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
        assert!(
            errors[0].contains(&format!("`{metric}` is promptgate's own metric"))
                && errors[0].contains("promptgate.yaml:19:"),
            "{}",
            errors[0]
        );
    }
}

#[test]
fn several_metric_names_on_an_assertion_with_one_score() {
    check(
        |r| suite_assert(r, "{type: max-length, value: 1200, metric: [short, brief]}"),
        &[
            "assertion `max-length` records one score: `metric` takes one name",
            "promptgate.yaml:19:14",
            "hint: several names belong to exec scorers",
        ],
    );
}

#[test]
fn exec_scorer_in_a_csv_column() {
    check(
        |r| {
            r.edit(CSV, "assert.icontains", "assert.exec");
        },
        &[
            "exec scorers need a command, which a CSV cell cannot hold",
            "datasets/product-faq.csv:1:",
            "hint: write this dataset as JSONL or YAML",
        ],
    );
}

#[test]
fn refusal_given_a_value_in_a_jsonl_case() {
    check(
        |r| {
            r.edit(
                JSONL,
                r#""type": "icontains", "value": "original payment method""#,
                r#""type": "not-refusal", "value": "original payment method""#,
            );
        },
        &[
            "case `refund-to-card`: assertion `not-refusal` takes no `value`",
            "datasets/customer-support.jsonl:3:",
            "hint: write {type: not-refusal}",
        ],
    );
}

#[test]
fn unknown_key_on_an_assertion() {
    check(
        |r| suite_assert(r, r#"{type: similarity, value: "x", treshold: 0.5}"#),
        &[
            "unknown key `treshold`",
            "promptgate.yaml:19:",
            "hint: did you mean `threshold`?",
        ],
    );
}

#[test]
fn unknown_assertion_column_in_csv() {
    check(
        |r| {
            r.edit(CSV, "assert.icontains", "assert.icontain");
        },
        &[
            "unknown assertion column `assert.icontain`",
            "datasets/product-faq.csv:1:",
            "hint: did you mean `assert.icontains`?",
        ],
    );
}

/// A column meant as an assertion but not written `assert.<type>` would be read as a var and
/// the assertion never applied: an error, never a silent skip.
#[test]
fn misspelt_assertion_column_in_csv() {
    check(
        |r| {
            r.edit(CSV, "assert.icontains", "Assert.icontains");
        },
        &[
            "column `Assert.icontains` (column 3) looks like an assertion but is not written `assert.<type>`",
            "datasets/product-faq.csv:1:",
            "hint: did you mean `assert.icontains`?",
        ],
    );
}

#[test]
fn gate_on_an_unknown_metric() {
    check(
        |r| {
            r.edit(SUITE, "  pass_rate: ", "  pass_rat: ");
        },
        &[
            "gate on unknown metric `pass_rat`",
            "promptgate.yaml:29:3",
            "hint: did you mean `pass_rate`?",
        ],
    );
}

#[test]
fn margin_that_is_not_a_percentage() {
    check(
        |r| {
            r.edit(SUITE, r#"margin: "10%""#, r#"margin: "ten%""#);
        },
        &[
            "`ten%` is not a percentage",
            "promptgate.yaml:31:48",
            "hint: a margin is",
        ],
    );
}

#[test]
fn unsupported_suite_version() {
    check(
        |r| {
            r.edit(SUITE, "version: 1", "version: 2");
        },
        &[
            "unsupported suite version 2",
            "promptgate.yaml:3:10",
            "hint: this promptgate reads `version: 1`",
        ],
    );
}

#[test]
fn temperature_out_of_range() {
    check(
        |r| {
            r.edit(VARIANT, "temperature: 0.2", "temperature: 7");
        },
        &[
            "temperature must be between 0 and 2, got 7",
            "configs/customer-support.yaml:5:",
            "hint: ",
        ],
    );
}

/// A `value` on a judge that grades by its own rubric is a rubric in the wrong place: said.
#[test]
fn a_rubric_written_on_relevance() {
    check(
        |r| {
            r.edit(
                SUITE,
                "{type: relevance}]",
                "{type: relevance, value: \"Answers the refund question.\"}]",
            );
        },
        &[
            "assertion `relevance` takes no `value`: it judges by its own rubric",
            "promptgate.yaml:",
            "hint: for a rubric of your own write {type: llm-rubric",
        ],
    );
}

/// An anthropic provider `claude`, which customer-support calls as `how` says
/// (`provider: claude` or `fallback: [claude]`).
fn with_claude(r: &dyn Tree, how: &str) {
    r.edit(
        SUITE,
        "offline: {type: mock}",
        "offline: {type: mock}\n  claude: {type: anthropic, api_key_env: ANTHROPIC_API_KEY}",
    );
    r.edit(
        SUITE,
        "    dataset: datasets/customer-support.jsonl\n",
        &format!("    dataset: datasets/customer-support.jsonl\n    {how}\n"),
    );
}

/// Anthropic refuses a stop sequence of whitespace only: said when the suite loads.
#[test]
fn a_blank_stop_sequence_for_an_anthropic_provider() {
    check(
        |r| {
            with_claude(r, "fallback: [claude]");
            r.edit(
                VARIANT,
                "temperature: 0.2",
                "temperature: 0.2\nstop: [\"###\", \"\\n\"]",
            );
        },
        &[
            "a stop sequence of whitespace only is refused by the `claude` provider (anthropic)",
            "configs/customer-support.yaml:6:",
            "hint: ",
        ],
    );
}

#[test]
fn a_penalty_out_of_range() {
    check(
        |r| {
            r.edit(VARIANT, "temperature: 0.2", "temperature: 0.2\nfrequency_penalty: 3");
        },
        &[
            "frequency_penalty must be between -2 and 2, got 3",
            "configs/customer-support.yaml:6:",
            "hint: ",
        ],
    );
}

#[test]
fn too_many_stop_sequences() {
    check(
        |r| {
            r.edit(VARIANT, "temperature: 0.2", "temperature: 0.2\nstop: [a, b, c, d, e]");
        },
        &[
            "stop takes 1 to 4 sequences, got 5",
            "configs/customer-support.yaml:6:",
            "hint: ",
        ],
    );
}

/// Anthropic's Messages API has no penalties: said when the suite loads, at the penalty.
#[test]
fn a_penalty_for_an_anthropic_provider() {
    check(
        |r| {
            with_claude(r, "provider: claude");
            r.edit(VARIANT, "temperature: 0.2", "temperature: 0.2\npresence_penalty: 0.5");
        },
        &[
            "presence_penalty is refused by the `claude` provider (anthropic)",
            "configs/customer-support.yaml:6:",
            "hint: Anthropic's Messages API takes",
        ],
    );
}

// 13. Files that are not what they claim, and hostile YAML.

#[test]
fn prompt_file_that_is_not_utf8() {
    let break_it = |r: &TestRepo| {
        std::fs::write(
            r.path().join(PROMPT),
            b"You are \xff\xfe helpful, {{ customer_name }}.\n",
        )
        .expect("write");
    };
    let expect = ["not UTF-8", "prompts/customer-support.md", "hint: "];
    validate_broken(break_it, &expect);
    run_broken(break_it, &expect);
}

#[test]
fn dataset_that_is_a_directory() {
    validate_broken(
        |r| {
            r.remove(CSV);
            r.write(&format!("{CSV}/cases.csv"), "id,input\na,b\n");
        },
        &["datasets/product-faq.csv", "promptgate.yaml:22:14", "hint: "],
    );
}

/// Nine levels of nine aliases each: ~387 million nodes if expanded.
const BILLION_LAUGHS: &str = r#"
        value:
          a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
          b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
          c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
          d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
          e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
          f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
          g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
          h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
          i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]"#;

#[test]
fn yaml_alias_bomb_errors_quickly() {
    let repo = TestRepo::with_demo_base();
    // An assertion's `value` takes any YAML, so the aliases would really be expanded.
    repo.edit(
        SUITE,
        "    dataset: datasets/product-faq.csv",
        &format!("    dataset: datasets/product-faq.csv\n    assert:\n      - type: equals{BILLION_LAUGHS}"),
    );
    let started = Instant::now();
    let run = promptgate_with_timeout(repo.path(), &["validate"], Duration::from_secs(60));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    expect_one_error(&run, &["aliases", "promptgate.yaml:", "hint: "]);
}

// 14. Git refs and the command line.

#[test]
fn unknown_git_ref() {
    let repo = TestRepo::with_demo_base();
    let run = repo.promptgate(&["run", "--base", "nope"]);
    expect_one_error(&run, &["unknown git ref `nope`", "hint: fetch it first"]);
}

#[test]
fn run_outside_a_git_repository() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = promptgate_in(dir.path(), &["run", "--base", "main"]);
    expect_one_error(
        &run,
        &[
            "is not inside a git repository",
            "hint: run promptgate from your prompt repository",
        ],
    );
}

#[test]
fn run_without_base_is_a_usage_error() {
    let repo = TestRepo::with_demo_base();
    let run = repo.promptgate(&["run"]);
    run.expect_code(2).stderr_has("--base");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// An `--out` that names a file (or a path under one) is the command line's mistake: exit 2
/// with a hint, before any call is sent.
#[test]
fn an_out_folder_that_is_a_file_is_a_usage_error() {
    let repo = TestRepo::with_demo_base();
    repo.write("notes.txt", "mine\n");
    for out in ["notes.txt", "notes.txt/out"] {
        let run = repo.promptgate(&["run", "--base", "main", "--out", out]);
        run.expect_code(2)
            .stderr_has("`notes.txt` is a file, not a folder")
            .stderr_has("hint: name a folder");
    }
    assert_eq!(
        std::fs::read_to_string(repo.path().join("notes.txt")).unwrap(),
        "mine\n"
    );
}

#[test]
fn validate_at_an_unknown_ref() {
    let repo = TestRepo::with_demo_base();
    let run = repo.promptgate(&["validate", "--ref", "nope"]);
    expect_one_error(&run, &["unknown git ref `nope`", "hint: "]);
}

// 15. Results files for `report`.

#[test]
fn report_on_a_file_that_is_not_json() {
    let repo = TestRepo::with_demo_base();
    repo.write("results.json", "verdict: pass\n");
    let run = repo.promptgate(&["report", "results.json", "--out", "out"]);
    run.expect_code(2)
        .stderr_has("results.json is not JSON")
        .stderr_has("results.json:1:1");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(!repo.path().join("out").join("report.md").exists());
}

#[test]
fn report_on_the_wrong_schema_version() {
    let repo = TestRepo::with_demo_base();
    repo.write(
        "results.json",
        r#"{"schema_version": 99, "verdict": "pass", "experiments": []}"#,
    );
    let run = repo.promptgate(&["report", "results.json", "--out", "out"]);
    expect_one_error(&run, &["schema_version", "99", "hint: re-run the gate"]);
    assert!(!repo.path().join("out").join("report.md").exists());
}

/// A case listed twice would count twice in every figure re-rendered from the file.
#[test]
fn report_on_results_that_list_a_case_twice() {
    let repo = TestRepo::with_demo_base();
    repo.promptgate(&["demo", "--out", "demo"]).expect_code(0);
    let text = std::fs::read_to_string(repo.path().join("demo/results.json")).unwrap();
    let mut results: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = results["experiments"][0]["cases"].as_array_mut().unwrap();
    let id = cases[0]["id"].as_str().unwrap().to_owned();
    cases.push(cases[0].clone());
    repo.write("results.json", &serde_json::to_string(&results).unwrap());
    let run = repo.promptgate(&["report", "results.json", "--out", "out"]);
    expect_one_error(&run, &[&format!("lists case `{id}` of experiment"), "twice", "hint: "]);
    assert!(!repo.path().join("out").join("report.md").exists());
}

#[test]
fn report_on_a_missing_file() {
    let repo = TestRepo::with_demo_base();
    let run = repo.promptgate(&["report", "nothing.json", "--out", "out"]);
    run.expect_code(2).stderr_has("nothing.json");
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

/// Runs the binary and kills it after `limit`, so a hang fails the test instead of stalling it.
fn promptgate_with_timeout(dir: &Path, args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(dir)
        .args(args)
        .env("XDG_CACHE_HOME", crate::support::test_cache_home(dir))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            child.kill().expect("kill");
            panic!("promptgate {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// Bounded by construction: inputs of untrusted size are refused, not allocated.

#[test]
fn a_template_that_doubles_a_list_stops_in_seconds_with_exit_2() {
    let repo = TestRepo::with_demo_base();
    repo.write(
        PROMPT,
        "{% set ns = namespace(x=[1]) %}{% for i in range(33) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}\n",
    );
    let started = Instant::now();
    let run = promptgate_with_timeout(repo.path(), &["validate"], Duration::from_secs(60));
    run.expect_code(2)
        .stderr_has("error: the prompt template ran longer than 5 s")
        .stderr_has("hint: look for a loop that doubles a list");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
}

#[test]
fn an_oversized_prompt_is_refused() {
    check(
        |r| {
            r.write(PROMPT, &"Refunds are possible within 30 days. ".repeat(40_000));
        },
        &[
            "prompt `prompts/customer-support.md` is 1445 KiB; a prompt may be at most 1024 KiB",
            "hint: ",
        ],
    );
}

#[test]
fn a_template_that_renders_too_much_is_refused() {
    check(
        |r| {
            r.write(
                PROMPT,
                "{% for i in range(50000) %}Refunds take thirty days. {% endfor %}\n",
            );
        },
        &["the rendered prompt `prompts/customer-support.md` is 1269 KiB; a prompt may be at most 1024 KiB"],
    );
}

#[test]
fn regexes_are_compiled_once_and_bounded() {
    // A thousand cases sharing one heavy pattern validate quickly: compiled once.
    let repo = TestRepo::with_demo_base();
    let cases: String = (0..1_000)
        .map(|i| format!("{{\"id\": \"c{i}\", \"vars\": {{\"input\": \"q{i}\", \"customer_name\": \"Ana\"}}, \"assert\": [{{\"type\": \"regex\", \"value\": \"\\\\w{{60}}\"}}]}}\n"))
        .collect();
    repo.write(JSONL, &cases);
    let started = Instant::now();
    promptgate_with_timeout(repo.path(), &["validate"], Duration::from_secs(120)).expect_code(0);
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    // A pattern too large to compile is an input error with a hint.
    check(
        |r| {
            r.edit(
                JSONL,
                r#""value": "(?i)human agent|sorry|not sure"}]}"#,
                r#""value": "\\w{1000}{1000}"}]}"#,
            );
        },
        &["invalid regex", "hint: the pattern compiles too large"],
    );
}

#[test]
fn a_dataset_beyond_the_case_limit_is_refused() {
    check(
        |r| {
            let cases: String = (0..100_001)
                .map(|i| format!("{{\"vars\": {{\"input\": \"q{i}\"}}}}\n"))
                .collect();
            r.write(JSONL, &cases);
        },
        &[
            "has 100001 cases; promptgate runs at most 100000 per experiment",
            "hint: split it",
        ],
    );
}

#[test]
fn the_github_token_is_never_a_providers_key() {
    check(
        |r| {
            r.edit(
                SUITE,
                "offline: {type: mock}",
                "offline: {type: openai, api_key_env: GITHUB_TOKEN}",
            );
        },
        &[
            "provider `offline`: `GITHUB_TOKEN` is the GitHub Actions token",
            "promptgate.yaml:",
        ],
    );
}

/// A provider entry a run could not build (its type's required setting missing, a setting only
/// another type reads) is `validate`'s error too, pointed at the entry, not an "ok" the run
/// then contradicts.
#[test]
fn validate_builds_each_provider_as_a_run_would() {
    for (entry, expect) in [
        (
            "  offline: {type: openai-compatible}",
            [
                "provider `offline` (type openai-compatible) needs `base_url`",
                "promptgate.yaml:6:3",
            ],
        ),
        (
            "  offline: {type: mock, deployment: gpt4}",
            ["deployment", "promptgate.yaml:6:3"],
        ),
        (
            "  offline: {type: exec}",
            ["provider `offline` (type exec) needs `command`", "promptgate.yaml:6:3"],
        ),
    ] {
        let break_it = |repo: &TestRepo| {
            repo.edit("promptgate.yaml", "  offline: {type: mock}", entry);
        };
        validate_broken(break_it, &expect);
        // A run says the same, at the same place, before any call.
        run_broken(break_it, &expect);
    }
    // An entry nothing names is not built, by a run or by validate, which notes what a run
    // could not build of it (not a silent "ok").
    let repo = TestRepo::with_demo_base();
    repo.edit(
        "promptgate.yaml",
        "  offline: {type: mock}",
        "  offline: {type: mock}\n  spare: {type: azure-openai}",
    );
    repo.promptgate(&["validate"])
        .expect_code(0)
        .stderr_has("note: provider `spare` is used by nothing")
        .stderr_has("a run could not build it as written: provider `spare` (type azure-openai) needs");
}

// Every error at once (DESIGN: `validate` lints "every error with file:line:column and a hint").

/// The errors `validate` reports for the broken tree, each an input error with a hint and a
/// place in a file.
#[track_caller]
fn every_error(break_it: impl Fn(&dyn Tree)) -> Vec<String> {
    let files = Files::demo_base();
    break_it(&files);
    let errors = match promptgate::suite::lint(files.tree(), SUITE) {
        Ok(_) => panic!("the broken suite validated"),
        Err(errors) => errors,
    };
    errors
        .iter()
        .map(|e| {
            let printed = e.to_string();
            assert!(matches!(e, Error::Input(_)), "not an input error:\n{printed}");
            assert!(printed.contains("\nhint: "), "no hint:\n{printed}");
            assert!(printed.contains("  --> "), "no place:\n{printed}");
            printed
        })
        .collect()
}

#[test]
fn every_error_of_a_variant_a_dataset_and_an_experiment_is_reported() {
    let errors = every_error(|r| {
        // Two settings out of range in one variant, and an unknown assertion type beside it.
        r.edit(VARIANT, "temperature: 0.2", "temperature: 3");
        r.edit(VARIANT, "top_p: 0.9", "top_p: 1.5");
        suite_assert(r, "{type: icontain, value: x}");
        // In the dataset: a line that is not JSON, a duplicate id further down, and a case
        // whose assertion type is unknown; the cases around them still read.
        r.edit(JSONL, r#""id": "return-gift","#, r#""id" "return-gift","#);
        r.edit(JSONL, r#""id": "refund-timing""#, r#""id": "refund-window""#);
        r.edit(
            JSONL,
            r#"{"type": "icontains", "value": "original payment method"}"#,
            r#"{"type": "icontain", "value": "original payment method"}"#,
        );
        // And another experiment's template names a var its cases do not have.
        r.edit("prompts/help-center.md", "{{ context }}", "{{ contxt }}");
    });
    let expect = [
        (
            "temperature must be between 0 and 2, got 3",
            "configs/customer-support.yaml:5:",
        ),
        (
            "top_p must be between 0 and 1, got 1.5",
            "configs/customer-support.yaml:7:",
        ),
        ("expected `:`", "datasets/customer-support.jsonl:7:7"),
        (
            "duplicate case id `refund-window`",
            "datasets/customer-support.jsonl:4:",
        ),
        (
            "case `refund-to-card`: unknown assertion type `icontain`",
            "datasets/customer-support.jsonl:3:",
        ),
        ("unknown assertion type `icontain`", "promptgate.yaml:19:"),
        ("undefined variable `contxt`", "prompts/help-center.md:7:"),
    ];
    for (message, at) in expect {
        assert!(
            errors.iter().any(|e| e.contains(message) && e.contains(at)),
            "no error {message:?} at {at}:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expect.len(), "one error each:\n{}", errors.join("\n"));
}

#[test]
fn a_dataset_wrong_on_every_line_shows_twenty_errors_and_counts_the_rest() {
    let errors = every_error(|r| {
        let broken: String = (0..45)
            .map(|i| format!("{{\"id\": \"c{i}\", \"vars\": {{\"input\": \"q\"}}, \"bogus\": 1}}\n"))
            .collect();
        r.write(JSONL, &broken);
    });
    assert_eq!(errors.len(), 21, "{}", errors.join("\n"));
    assert!(
        errors[0].contains("`bogus`") && errors[0].contains("datasets/customer-support.jsonl:1:"),
        "{}",
        errors[0]
    );
    assert!(
        errors[19].contains("datasets/customer-support.jsonl:20:"),
        "{}",
        errors[19]
    );
    assert!(
        errors[20].contains("25 more error(s) like these in `datasets/customer-support.jsonl`, not shown"),
        "{}",
        errors[20]
    );
}

#[test]
fn validate_prints_every_error_and_their_count() {
    validate_all(
        |r| {
            r.edit(VARIANT, "temperature: 0.2", "temperature: 3");
            r.edit("prompts/help-center.md", "{{ context }}", "{{ contxt }}");
        },
        2,
    );
}

/// Runs the binary's `validate` on the broken working tree: exit 2, `count` errors, each with
/// a hint, and the count said.
#[track_caller]
fn validate_all(break_it: impl Fn(&TestRepo), count: usize) {
    let repo = TestRepo::with_demo_base();
    break_it(&repo);
    let run = repo.promptgate(&["validate"]);
    run.expect_code(2);
    let errors = run.stderr.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, count, "{}", run.stderr);
    assert!(run.stderr.matches("\nhint: ").count() >= count, "{}", run.stderr);
    run.stderr_has(&format!("{count} error(s)"));
}

#[test]
fn every_gate_on_an_unknown_metric_is_reported() {
    let errors = every_error(|r| {
        r.edit(SUITE, "pass_rate:        {", "pass_rat:        {");
        r.edit(SUITE, "latency_p95_ms:   {", "latency_p59_ms:   {");
    });
    assert_eq!(errors.len(), 2, "{}", errors.join("\n"));
    for (metric, line, hint) in [("pass_rat", 29, "pass_rate"), ("latency_p59_ms", 30, "latency_p50_ms")] {
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("gate on unknown metric `{metric}`"))
                    && e.contains(&format!("promptgate.yaml:{line}:"))
                    && e.contains(&format!("did you mean `{hint}`?"))),
            "no error for `{metric}`:\n{}",
            errors.join("\n")
        );
    }
}

/// A rate limit of 0 let no call go: the run waited for ever after its plan.
#[test]
fn a_rate_limit_or_timeout_of_zero() {
    for (setting, field) in [
        ("requests_per_minute: 0", "requests_per_minute"),
        ("tokens_per_minute: 0", "tokens_per_minute"),
        ("timeout_ms: 0", "timeout_ms"),
    ] {
        let errors = every_error(|r| {
            r.edit(
                SUITE,
                "offline: {type: mock",
                &format!("offline: {{{setting}, type: mock"),
            )
        });
        assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
        assert!(
            errors[0].contains(&format!("provider `offline`: {field} must be at least 1, got 0"))
                && errors[0].contains("promptgate.yaml:"),
            "{}",
            errors[0]
        );
    }
}

/// Each of these errors is placed at its key's line and column, with a hint (the repeats error
/// pointed at the experiment's name line, column 0; the alpha one had no hint; a malformed
/// objective was hinted as a margin).
#[test]
fn settings_out_of_range_are_placed_and_hinted() {
    for (edit, message, at, hint) in [
        (
            (
                "    dataset: datasets/customer-support.jsonl\n",
                "    dataset: datasets/customer-support.jsonl\n    repeats: 0\n",
            ),
            "experiment `customer-support`: repeats must be at least 1",
            "promptgate.yaml:19:14",
            "hint: leave `repeats` out",
        ),
        (
            (
                "    dataset: datasets/customer-support.jsonl\n",
                "    dataset: datasets/customer-support.jsonl\n    repeats: 101\n",
            ),
            "experiment `customer-support`: repeats must be at most 100, got 101",
            "promptgate.yaml:19:14",
            "hint: each repeat is one more call per case and arm",
        ),
        (
            ("slo: 800}", "slo: \"800ms\"}"),
            "`800ms` is not a number or a percentage",
            "promptgate.yaml:30:",
            "hint: an objective is a number in the metric's unit",
        ),
        (
            ("slo: 800}", "slo: 800, alpha: 0.9}"),
            "alpha must be between 0 and 0.5, got 0.9",
            "promptgate.yaml:30:",
            "hint: alpha is the chance",
        ),
        // A rate's margin of 5 (meant as 5 points) panicked after every call was paid for;
        // one of 1 let 100% → 0% pass.
        (
            (
                "pass_rate:        {direction: higher, margin: 0.02,",
                "pass_rate:        {direction: higher, margin: 5,",
            ),
            "gate `pass_rate`: a margin of 5 is a rate's whole range (0 to 1): no change could fail it",
            "promptgate.yaml:29:",
            "`5` looks meant as `0.05`",
        ),
        // As is a share of the baseline of 100% for a rate better higher (the review).
        (
            (
                "pass_rate:        {direction: higher, margin: 0.02,",
                "pass_rate:        {direction: higher, margin: \"100%\",",
            ),
            "gate `pass_rate`: a margin of 100% of the baseline is all of it: no fall could fail it",
            "promptgate.yaml:29:",
            "hint: a margin of a share of the baseline is below 100%",
        ),
        // So is `consistency`'s, a share of 0 to 1 (a score a scorer records may be on any
        // scale: `relevance` from an `exec` script on 0–100 is not refused).
        (
            (
                "relevance:        {direction: higher, margin: 0.05}",
                "relevance:        {direction: higher, margin: 0.05}\n  consistency:      {margin: 1}",
            ),
            "gate `consistency`: a margin of 1 is its whole range (0 to 1): no change could fail it",
            "promptgate.yaml:35:",
            "`1` looks meant as `0.01`",
        ),
        // A direction against the metric's own turned the gate upside down.
        (
            (
                "pass_rate:        {direction: higher,",
                "pass_rate:        {direction: lower,",
            ),
            "gate `pass_rate`: `direction: lower` contradicts the metric: a higher `pass_rate` is better",
            "promptgate.yaml:29:",
            "hint: remove `direction:` from this gate",
        ),
    ] {
        let errors = every_error(|r| r.edit(SUITE, edit.0, edit.1));
        assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
        for fragment in [message, at, hint] {
            assert!(errors[0].contains(fragment), "lacks {fragment:?}:\n{}", errors[0]);
        }
    }
}

/// The experiment's prompt replaced by the YAML `prompt` (a `messages:` list).
fn messages_prompt(r: &dyn Tree, prompt: &str) {
    r.write("prompts/customer-support.yaml", prompt);
    r.edit(
        VARIANT,
        "prompt: ../prompts/customer-support.md",
        "prompt: ../prompts/customer-support.yaml",
    );
}

/// A template error in a `messages:` prompt is placed on the file's line: a flow-style message
/// was one line late; a literal block's line is exact, a folded or escaped one's its first.
#[test]
fn a_template_error_in_a_messages_prompt_is_on_its_line() {
    for (prompt, line) in [
        (
            "messages:\n  - {role: system, content: \"Hello {{ nope }}\"}\n  - {role: user, content: \"{{ input }}\"}\n",
            2,
        ),
        (
            "messages:\n  - role: system\n    content: |\n      Be brief.\n      Hello {{ nope }}\n  - {role: user, content: \"{{ input }}\"}\n",
            5,
        ),
        (
            "messages:\n  - role: system\n    content: |-  # literal, chomped\n      Be brief.\n\n      Hello {{ nope }}\n  - {role: user, content: \"{{ input }}\"}\n",
            6,
        ),
        // A folded block or an escaped line break joins or splits lines: the error is placed at
        // the content's first line, never beyond the content.
        (
            "messages:\n  - role: system\n    content: >-\n\n      Be brief.\n      Hello {{ nope }}\n  - {role: user, content: \"{{ input }}\"}\n",
            5,
        ),
        (
            "messages:\n  - {role: system, content: \"Be brief.\\nHello {{ nope }}\"}\n  - {role: user, content: \"{{ input }}\"}\n",
            2,
        ),
    ] {
        let errors = every_error(|r| messages_prompt(r, prompt));
        assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
        assert!(
            errors[0].contains("undefined variable `nope`")
                && errors[0].contains(&format!("prompts/customer-support.yaml:{line}")),
            "{}",
            errors[0]
        );
    }
}

/// An empty case id and an empty `messages:` list say what to write instead.
#[test]
fn an_empty_case_id_or_messages_list_has_a_hint() {
    let errors = every_error(|r| r.edit(JSONL, "\"id\": \"refund-window\"", "\"id\": \"\""));
    assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
    assert!(
        errors[0].contains("case id is empty") && errors[0].contains("hint: give the case a name of its own"),
        "{}",
        errors[0]
    );
    let errors = every_error(|r| messages_prompt(r, "messages: []\n"));
    assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
    assert!(
        errors[0].contains("empty `messages:` list") && errors[0].contains("hint: list the messages to send"),
        "{}",
        errors[0]
    );
}

/// The suite file's unknown keys, each at its place (serde stops at the first: the file is read
/// again without it). A key inside a `{…}` mapping ends the search; a field missing because
/// its key was misspelled is not a second error (and ends it).
#[test]
fn every_unknown_key_of_the_suite_file_is_reported() {
    let errors = every_error(|r| {
        r.edit(SUITE, "traffic:", "trafic:");
        r.edit(
            SUITE,
            "    dataset: datasets/help-center.jsonl\n",
            "    dataset: datasets/help-center.jsonl\n    bogus:\n      nested: 1\n",
        );
    });
    let expect = [
        (
            "unknown key `trafic`",
            "promptgate.yaml:11:1",
            "did you mean `traffic`?",
        ),
        ("unknown key `bogus`", "promptgate.yaml:26:5", "expected one of"),
    ];
    assert_eq!(errors.len(), expect.len(), "{}", errors.join("\n"));
    for ((message, at, hint), error) in expect.iter().zip(&errors) {
        for fragment in [message, at, hint] {
            assert!(error.contains(fragment), "lacks {fragment:?}:\n{error}");
        }
    }
    // A misspelt `name:` leaves its experiment without one: that is the same mistake.
    let errors = every_error(|r| {
        r.edit(SUITE, "traffic:", "trafic:");
        r.edit(SUITE, "  - name: product-faq\n", "  - nme: product-faq\n");
    });
    assert_eq!(errors.len(), 2, "{}", errors.join("\n"));
    assert!(errors[1].contains("unknown key `nme`") && errors[1].contains("promptgate.yaml:20:5"));
}

/// A misspelt key does not hide what lies behind it: the suite read without its unknown keys
/// is checked on, so a template's unknown variable and a gate on an unknown metric are
/// reported beside it (they were found only once the key was fixed, a round trip each).
#[test]
fn an_unknown_key_does_not_hide_the_experiments_and_gates_problems() {
    let errors = every_error(|r| {
        r.edit(SUITE, "traffic:", "trafic:");
        r.edit(SUITE, "pass_rate:        {", "pass_rat:        {");
    });
    assert_eq!(errors.len(), 2, "{}", errors.join("\n"));
    assert!(errors[0].contains("unknown key `trafic`"), "{}", errors[0]);
    assert!(errors[1].contains("gate on unknown metric `pass_rat`"), "{}", errors[1]);
    let errors = every_error(|r| {
        r.edit(SUITE, "traffic:", "trafic:");
        r.edit("prompts/help-center.md", "{{ context }}", "{{ contxt }}");
    });
    assert_eq!(errors.len(), 2, "{}", errors.join("\n"));
    assert!(errors[1].contains("contxt"), "{}", errors[1]);
    // Nor a setting's own problem (a review's `alpha: 0.5` beside a misspelt key).
    let errors = every_error(|r| {
        r.edit(SUITE, "traffic:", "trafic:");
        r.edit(SUITE, "alpha: 0.05", "alpha: 0.5");
    });
    assert_eq!(errors.len(), 2, "{}", errors.join("\n"));
    assert!(errors.iter().any(|e| e.contains("alpha")), "{}", errors.join("\n"));
}

/// `errors` are exactly `expect`, in order: each its message and its place.
#[track_caller]
fn exactly_these(errors: &[String], expect: &[(&str, &str)]) {
    assert_eq!(errors.len(), expect.len(), "{}", errors.join("\n"));
    for ((message, at), error) in expect.iter().zip(errors) {
        for fragment in [message, at] {
            assert!(error.contains(fragment), "lacks {fragment:?}:\n{error}");
        }
    }
}

/// Each section and entry of the suite file read on its own: a value of the wrong shape in
/// one provider, one gate and one price are three errors, each at its place (serde stops at
/// the first), and a sound entry beside them adds none.
#[test]
fn every_wrong_shape_of_the_suite_file_is_reported() {
    let errors = every_error(|r| {
        r.edit(SUITE, "offline: {type: mock}", "offline: {type: mock, concurrency: -3}");
        r.edit(
            SUITE,
            r#"latency_p95_ms:   {direction: lower, margin: "15%", slo: 800}"#,
            r#"latency_p95_ms:   {direction: sideways, margin: "15%", slo: 800}"#,
        );
        r.edit(
            SUITE,
            "gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}",
            "gpt-4o-mini: {input: cheap, cached_input: 0.075, output: 0.60}",
        );
        r.edit(
            SUITE,
            "  - name: product-faq\n",
            "  - name: product-faq\n    repeats: many\n",
        );
    });
    let expect = [
        ("not a whole number", "promptgate.yaml:6:38"),
        ("not a number", "promptgate.yaml:9:24"),
        ("not a whole number", "promptgate.yaml:21:14"),
        ("unknown value `sideways`", "promptgate.yaml:31:33"),
    ];
    exactly_these(&errors, &expect);
}

/// The suite's settings are checked whole: each value out of range is an error at its place,
/// and a gate that takes the suite's alpha does not repeat the suite's problem with it.
#[test]
fn every_setting_out_of_range_is_reported() {
    let errors = every_error(|r| {
        r.edit(SUITE, "offline: {type: mock}", "offline: {type: mock, timeout_ms: 0}");
        r.edit(
            SUITE,
            "defaults: {repeats: 1, alpha: 0.05,",
            "defaults: {repeats: 0, alpha: 0.9,",
        );
        r.edit(SUITE, "max_usd: 5.00}", "max_usd: -5}");
        r.edit(SUITE, "gpt-4o-mini: {input: 0.15,", "gpt-4o-mini: {input: -0.15,");
        r.edit(
            SUITE,
            "pass_rate:        {direction: higher, margin: 0.02, blocking: true}",
            "pass_rate:        {direction: higher, margin: 0.02, blocking: true, alpha: 0.7}",
        );
    });
    let expect = [
        ("timeout_ms must be at least 1", "promptgate.yaml:6:"),
        ("pricing for `gpt-4o-mini` must not be negative", "promptgate.yaml:9:"),
        ("budget.max_usd", "promptgate.yaml:12:"),
        ("defaults.repeats must be at least 1", "promptgate.yaml:13:"),
        (
            "defaults.alpha must be between 0 and 0.5, got 0.9",
            "promptgate.yaml:13:",
        ),
        (
            "gate `pass_rate`: alpha must be between 0 and 0.5, got 0.7",
            "promptgate.yaml:29:",
        ),
    ];
    exactly_these(&errors, &expect);
}

/// A section written with nothing under it is an empty one, as if left out (it was "expected
/// mapping start"): `gates:` alone keeps the default gates.
#[test]
fn an_empty_section_is_left_out() {
    let files = Files::demo_base();
    let suite = files.read(SUITE);
    let gates_at = suite.find("\ngates:\n").expect("a gates section") + 1;
    files.write(SUITE, &format!("{}gates:\n", &suite[..gates_at]));
    files.edit(SUITE, "pricing:                                   # USD per million tokens\n  gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}\n", "pricing:\n");
    let variant = files.read(VARIANT);
    let metrics_at = variant.find("evaluation_metrics:\n").expect("recorded metrics");
    files.write(VARIANT, &format!("{}evaluation_metrics:\n", &variant[..metrics_at]));
    let suite = promptgate::suite::lint(files.tree(), SUITE).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!suite.gates.is_empty(), "the default gates");
}

/// A gate on `hallucination_rate` (or `relevance`) with no assertion feeding it says how to
/// feed it; it said only that a canary measures it.
#[test]
fn a_gate_on_a_judged_metric_nothing_feeds_says_which_assertion_would() {
    let errors = every_error(|r| {
        r.edit(
            SUITE,
            "assert: [{type: hallucination, context_var: context}, {type: relevance}]",
            "assert: [{type: relevance}]",
        );
    });
    assert_eq!(errors.len(), 1, "{}", errors.join("\n"));
    assert!(
        errors[0].contains("gate on unknown metric `hallucination_rate`")
            && errors[0].contains("add one, e.g. `{type: hallucination, context_var: context}`"),
        "{}",
        errors[0]
    );
}

/// Every experiment declaration's problem in the suite file, not the first: an unknown
/// provider in one, a repeats of 0 in another.
#[test]
fn every_experiment_declarations_problem_is_reported() {
    let errors = every_error(|r| {
        r.edit(
            SUITE,
            "    variant: configs/product-faq.yaml\n",
            "    variant: configs/product-faq.yaml\n    provider: nope\n",
        );
        r.edit(
            SUITE,
            "    dataset: datasets/help-center.jsonl\n",
            "    dataset: datasets/help-center.jsonl\n    repeats: 0\n",
        );
    });
    let expect = [
        ("unknown provider `nope`", "promptgate.yaml:22:15"),
        (
            "experiment `help-center`: repeats must be at least 1",
            "promptgate.yaml:27:14",
        ),
    ];
    assert_eq!(errors.len(), expect.len(), "{}", errors.join("\n"));
    for ((message, at), error) in expect.iter().zip(&errors) {
        assert!(error.contains(message) && error.contains(at), "{error}");
    }
}
