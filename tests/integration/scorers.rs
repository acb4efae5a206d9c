//! Scorers end to end: a similarity, an `exec` scorer and consistency across repeats go
//! through the same paired statistics, gates and comment as pass/fail; a broken scorer is a
//! run error, never a quiet "no change".

use serde_json::Value;

use crate::gate::{experiment, metric};
use crate::support::{TestRepo, fixture, results};

/// Scores an output's length in words, and whether the output is under 40 words; the marker
/// file shows the script runs in the head's tree.
const SCORER: &str = r#"input=$(cat)
words=$(printf '%s' "$input" | sed 's/.*"output":"\([^"]*\)".*/\1/' | wc -w)
short=false; [ "$words" -lt 40 ] && short=true
echo "{\"scores\": {\"words\": $words, \"short\": $short, \"tree\": $(cat scripts/marker)}}"
"#;

/// The demo's base and its pull request, both with `edit` applied to the suite, the scorer
/// script committed (`marker` 1 at base, 2 at head) and three repeats.
fn demo_with_scorers(assert: &str) -> TestRepo {
    let edit = |repo: &TestRepo, marker: &str| {
        repo.edit("promptgate.yaml", "defaults: {repeats: 1,", "defaults: {repeats: 3,");
        repo.edit(
            "promptgate.yaml",
            "assert: [{type: max-length, value: 1200},",
            &format!("assert: [{assert}, {{type: max-length, value: 1200}},"),
        );
        repo.write("scripts/score.sh", SCORER);
        repo.write("scripts/marker", marker);
    };
    let repo = TestRepo::with_demo_base();
    edit(&repo, "1");
    repo.commit("scorers at base");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    edit(&repo, "2");
    repo.commit("pr");
    repo
}

fn scores<'a>(e: &'a Value, arm: &str) -> impl Iterator<Item = &'a Value> {
    e["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(move |c| c[arm].as_array().unwrap().iter().map(|call| &call["scores"]))
}

/// The demo's PR with `assert` added, run twice: inline, and over the inline threshold (each
/// answer to a file as it arrives, each case's outputs as it is scored). Both score the same:
/// the second's results are the first's without the outputs, and it leaves no scratch file
/// behind. Gives both results.
fn inline_and_on_disk(repo: &TestRepo, args: &[&str]) -> (Value, Value) {
    let run = |name: &str, vars: &[(&str, &str)]| {
        let out = repo.path().join(name);
        crate::support::run_pr_uncached(repo.path(), &out, args, vars).expect_code(1);
        out
    };
    let inline = results(&run("inline", &[]));
    let on_disk_out = run("on-disk", &[("PROMPTGATE_TEST_INLINE_MAX_CALLS", "20")]);
    let on_disk = results(&on_disk_out);
    assert_eq!(
        (inline["schema_version"].as_u64(), on_disk["schema_version"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        on_disk["experiments"],
        crate::support::without_outputs(&inline["experiments"])
    );
    assert!(
        std::fs::read_dir(&on_disk_out)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')),
        "no scratch file left behind"
    );
    (inline, on_disk)
}

/// With `exec` scorers (which read every answer before scoring) and three repeats (consistency
/// reads a case's answers together), a run over the threshold scores exactly what the same run
/// held in memory does.
#[test]
fn a_run_that_keeps_its_answers_on_disk_scores_exec_and_consistency_as_one_in_memory() {
    let (_, on_disk) = inline_and_on_disk(
        &demo_with_scorers(
            r#"{type: similarity, value: "You can send back unused items within 30 days of delivery for a full refund."}, {type: exec, command: [/bin/sh, scripts/score.sh], metric: [words, short, tree]}"#,
        ),
        &[],
    );
    let words = scores(experiment(&on_disk, "customer-support"), "candidate").filter(|s| s["words"].is_number());
    assert!(words.count() > 0, "the exec scorer read the answers");
}

/// Without `exec` scorers a run over the threshold reads each outcome back from its file only
/// when it scores that call: what it scores is still what the run held in memory scores.
#[test]
fn a_run_that_reads_each_outcome_back_as_it_scores_scores_as_one_in_memory() {
    let (inline, on_disk) = inline_and_on_disk(
        &demo_with_scorers(
            r#"{type: similarity, value: "You can send back unused items within 30 days of delivery for a full refund."}"#,
        ),
        &[],
    );
    assert_eq!(on_disk["run"]["cache_hits"], inline["run"]["cache_hits"]);
}

#[test]
fn similarity_exec_scores_and_consistency_are_paired_means_in_the_comment() {
    let repo = demo_with_scorers(
        r#"{type: similarity, value: "You can send back unused items within 30 days of delivery for a full refund."}, {type: exec, command: [/bin/sh, scripts/score.sh], metric: [words, short, tree]}"#,
    );
    let out = repo.path().join("out");
    let run = repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()]);
    run.expect_code(1);
    let r = results(&out);
    let support = experiment(&r, "customer-support");

    // Numbers in [0, 1] (similarity, consistency) and the scorer's number are reported
    // ungated, each a per-case mean compared with the paired t-test.
    for name in ["similarity", "consistency", "words"] {
        let m = metric(support, name);
        assert_eq!(m["test"], "paired-t", "{name}: {m}");
        assert_eq!(m["estimand"], "mean-difference", "{name}");
        assert_eq!(m["gated"], false, "{name}");
        assert_eq!(m["n"], 44, "{name}");
        assert!(m["baseline"].is_number() && m["candidate"].is_number(), "{name}: {m}");
    }
    // The PR drops the refund policy: answers move away from the refund reference.
    let similarity = metric(support, "similarity");
    assert!(similarity["delta"].as_f64().unwrap() < 0.0, "{similarity}");
    for arm in ["baseline", "candidate"] {
        for s in scores(support, arm) {
            let x = s["similarity"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x), "{s}");
            let c = s["consistency"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&c), "{s}");
            // Scorers come from head for both arms: the head's script scored the baseline too.
            assert_eq!(s["tree"].as_f64(), Some(2.0), "{s}");
            assert!(s["short"].is_boolean() && s["words"].is_number(), "{s}");
        }
    }
    // A boolean from the scorer is an assertion: long answers fail `pass`.
    let failing_short = support["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["candidate"].as_array().unwrap())
        .find(|call| call["scores"]["short"] == false);
    if let Some(call) = failing_short {
        assert_eq!(call["scores"]["pass"], false);
        assert!(
            call["failures"]
                .as_array()
                .unwrap()
                .contains(&Value::from("short: the scorer said false"))
        );
    }

    // The least consistent cases, least first, each below 1 in some arm.
    let least = support["least_consistent"].as_array().cloned().unwrap_or_default();
    let lowest = |c: &Value| {
        [&c["baseline"], &c["candidate"]]
            .iter()
            .filter_map(|v| v.as_f64())
            .fold(f64::INFINITY, f64::min)
    };
    assert!(least.len() <= 5);
    assert!(least.iter().all(|c| lowest(c) < 1.0), "{least:?}");
    assert!(least.windows(2).all(|w| lowest(&w[0]) <= lowest(&w[1])), "{least:?}");
    let any_disagreement = ["baseline", "candidate"]
        .iter()
        .any(|arm| scores(support, arm).any(|s| s["consistency"].as_f64().unwrap() < 1.0));
    assert_eq!(!least.is_empty(), any_disagreement);

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for row in ["| similarity |", "| consistency |", "| words |"] {
        assert!(report.contains(row), "no {row} row:\n{report}");
    }
    if !least.is_empty() {
        assert!(report.contains("Least consistent cases (agreement between repeats, baseline → candidate): "));
    }
}

#[test]
fn a_scorer_that_fails_on_most_outputs_is_a_run_error() {
    let repo = demo_with_scorers(
        r#"{type: exec, command: [/bin/sh, -c, "cat >/dev/null; echo 'no model file' >&2; exit 1"], metric: tone}"#,
    );
    let out = repo.path().join("out");
    let run = repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()]);
    run.expect_code(3)
        .stderr_has("a scorer could not score 132 of 132 baseline outputs")
        .stderr_has("tone: exec: `/bin/sh` exited with status 1: no model file");
    let r = results(&out);
    assert_eq!(r["verdict"], "error");
    let call = &experiment(&r, "customer-support")["cases"][0]["candidate"][0];
    assert_eq!(
        call["scorer_errors"],
        serde_json::json!(["tone: exec: `/bin/sh` exited with status 1: no model file"])
    );
    assert!(call["scores"].get("tone").is_none());
}

/// The demo's base and pull request without judges: nothing reads a case while the calls run.
fn demo_without_judges() -> TestRepo {
    let repo = TestRepo::with_demo_base();
    let without_judges = |repo: &TestRepo| {
        repo.edit("promptgate.yaml", ", judge: offline, judge_model: gpt-4o-mini}", "}");
        repo.edit(
            "promptgate.yaml",
            "assert: [{type: hallucination, context_var: context}, {type: relevance}]",
            "assert: [{type: max-length, value: 2000}]",
        );
        for gate in ["  hallucination_rate:", "  relevance:"] {
            let text = repo.read("promptgate.yaml");
            let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with(gate)).collect();
            repo.write("promptgate.yaml", &(kept.join("\n") + "\n"));
        }
    };
    without_judges(&repo);
    repo.commit("no judges at base");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    without_judges(&repo);
    repo.commit("pr");
    repo
}

/// Read back from disk, the cases keep their own assertions (`customer-support`'s check
/// different phrases, and some fail), a CSV dataset's cases their vars.
#[test]
fn a_run_that_reads_its_cases_back_from_disk_scores_as_one_in_memory() {
    // Over the threshold the run writes its cases to a scratch file as it renders their jobs,
    // and scoring reads them back a case at a time.
    let (_, on_disk) = inline_and_on_disk(&demo_without_judges(), &[]);
    let support = experiment(&on_disk, "customer-support");
    let failing = scores(support, "candidate").filter(|s| s["pass"] == false).count();
    assert!(failing > 0 && failing < 44, "{failing}");
}

/// A shard's run reads every case back, its own and the other shards' (whose ids it lists for
/// `merge`), and scores only its own.
#[test]
fn a_shard_that_reads_its_cases_back_from_disk_lists_and_scores_as_one_in_memory() {
    let (_, on_disk) = inline_and_on_disk(&demo_without_judges(), &["--shard", "1/2"]);
    let support = experiment(&on_disk, "customer-support");
    let listed = support["dataset_cases"].as_array().unwrap();
    let scored = support["cases"].as_array().unwrap();
    assert_eq!(listed.len(), 44);
    assert!(!scored.is_empty() && scored.len() < 44, "{}", scored.len());
    assert!(scored.iter().all(|c| listed.contains(&c["id"])));
}

/// An `exec` scorer written in one case's own assertions (not the experiment's) still reads
/// every answer before any call is scored, in a run over the threshold whose cases scoring
/// takes out of the suite: it scores what the same run held in memory does.
#[test]
fn an_exec_scorer_of_one_case_scores_a_run_on_disk_as_one_in_memory() {
    let repo = demo_with_scorers("{type: max-length, value: 1500}");
    let exec =
        r#"{"type": "exec", "command": ["/bin/sh", "scripts/score.sh"], "metric": ["words", "short", "tree"]}, "#;
    repo.edit(
        "datasets/customer-support.jsonl",
        r#""assert": [{"type": "icontains", "value": "30 days"}]"#,
        &format!(r#""assert": [{exec}{{"type": "icontains", "value": "30 days"}}]"#),
    );
    repo.commit("one case scored by a command");
    let (_, on_disk) = inline_and_on_disk(&repo, &[]);
    let scored = scores(experiment(&on_disk, "customer-support"), "candidate").filter(|s| s["words"].is_number());
    assert_eq!(scored.count(), 3, "the first case's three repeats");
}
