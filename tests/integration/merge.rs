//! `promptgate run --shard K/N` and `promptgate merge`: a CI matrix of shards merges into exactly
//! the unsharded run, and shards that do not belong together are refused.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::gate::{demo_pr, experiment, metric};
use crate::support::{Run, TestRepo, results};

/// `promptgate run --base main --head pr` into `out`, with extra arguments.
fn run_into(repo: &TestRepo, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    repo.promptgate(&args)
}

/// Runs shard `k` of `n` (no cache, so every call is sent as in the full run) into `shard-k`.
fn shard(repo: &TestRepo, k: u32, n: u32) -> PathBuf {
    let out = repo.path().join(format!("shard-{k}"));
    let run = run_into(repo, &out, &["--no-cache", "--shard", &format!("{k}/{n}")]);
    assert!(matches!(run.code, 0 | 1 | 3), "shard {k}/{n}: {run:?}");
    out.join("results.json")
}

fn merge(repo: &TestRepo, shards: &[&Path], extra: &[&str]) -> Run {
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    args.extend_from_slice(extra);
    repo.promptgate(&args)
}

fn case_ids(experiment: &Value) -> Vec<&str> {
    experiment["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect()
}

/// Everything the analysis and the calls produced must be equal; only the facts of running
/// (duration, the summed estimate, the shard bookkeeping) may differ.
#[track_caller]
fn assert_same_run(full: &Value, merged: &Value) {
    assert_eq!(merged["verdict"], full["verdict"]);
    assert_eq!(merged["reason"], full["reason"]);
    assert_eq!(merged["base"], full["base"]);
    assert_eq!(merged["head"], full["head"]);
    assert_eq!(merged["unaffected"], full["unaffected"]);
    assert_eq!(merged["gates"], full["gates"]);
    assert_eq!(merged["defaults"], full["defaults"]);
    // Every other key of the run too (the audit found `unchecked_judges` dropped: the comment
    // lost its "unmeasured judge" warning), but what merging itself records.
    for (key, value) in full.as_object().unwrap() {
        if !["run", "experiments", "merged", "shard"].contains(&key.as_str()) {
            assert_eq!(&merged[key], value, "{key}");
        }
    }
    for key in ["cases", "calls", "completed", "errored", "spend_usd", "simulated"] {
        assert_eq!(merged["run"][key], full["run"][key], "run.{key}");
    }
    let (f, m) = (
        full["experiments"].as_array().unwrap(),
        merged["experiments"].as_array().unwrap(),
    );
    assert_eq!(f.len(), m.len());
    for (fe, me) in f.iter().zip(m) {
        let name = fe["name"].as_str().unwrap();
        assert_eq!(case_ids(me), case_ids(fe), "{name}: cases");
        for (fm, mm) in fe["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .zip(me["metrics"].as_array().unwrap())
        {
            for key in ["delta", "ci", "p_value", "p_adjusted", "verdict"] {
                assert_eq!(mm[key], fm[key], "{name} {} {key}", fm["name"]);
            }
        }
        // And, stronger, every key of the experiment: metrics, cases and calls, verdict.
        assert_eq!(me, fe, "{name}");
    }
}

#[test]
fn three_shards_merge_into_exactly_the_unsharded_run() {
    let repo = demo_pr();
    let full_out = repo.path().join("full");
    let full_run = run_into(&repo, &full_out, &["--no-cache"]);
    full_run.expect_code(1);
    let full = results(&full_out);

    let shards: Vec<PathBuf> = (1..=3).map(|k| shard(&repo, k, 3)).collect();
    let mut seen = 0;
    for (k, path) in shards.iter().enumerate() {
        let r: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(r["shard"], serde_json::json!({"index": k + 1, "count": 3}));
        let support = experiment(&r, "customer-support");
        assert!(case_ids(support).len() < case_ids(experiment(&full, "customer-support")).len());
        // Every shard lists the whole dataset, in order, for the merge to restore it.
        let all: Vec<&str> = support["dataset_cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap())
            .collect();
        assert_eq!(all, case_ids(experiment(&full, "customer-support")));
        seen += r["run"]["cases"].as_u64().unwrap();
    }
    assert_eq!(
        seen,
        full["run"]["cases"].as_u64().unwrap(),
        "the shards partition the cases"
    );

    let out = repo.path().join("merged");
    let refs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    merge(&repo, &refs, &["--out", out.to_str().unwrap()])
        .expect_code(1)
        .stdout_has("verdict: FAIL");
    let merged = results(&out);
    assert_same_run(&full, &merged);
    assert_eq!(
        merged["merged"],
        serde_json::json!({"count": 3, "shards": [1, 2, 3], "missing": []})
    );
    assert!(merged.get("shard").is_none());
    assert_eq!(
        metric(experiment(&merged, "customer-support"), "pass_rate")["verdict"],
        "regression"
    );
    for file in ["report.md", "summary.md", "junit.xml"] {
        assert!(out.join(file).is_file(), "{file}");
    }

    // A shard that measured pairs again paid for calls its results no longer hold: the merge
    // keeps that spend (it cannot count it from the calls).
    let mut second: Value = serde_json::from_str(&std::fs::read_to_string(&shards[1]).unwrap()).unwrap();
    let run = &mut second["run"];
    run["replaced"] = serde_json::json!({"generation_usd": 0.5, "judge_usd": 0.25, "embedding_usd": 0.0});
    run["spend_usd"] = (run["spend_usd"].as_f64().unwrap() + 0.75).into();
    let remeasured = repo.path().join("shard-2-remeasured.json");
    std::fs::write(&remeasured, serde_json::to_string(&second).unwrap()).unwrap();
    let again = repo.path().join("merged-again");
    merge(
        &repo,
        &[&shards[0], &remeasured, &shards[2]],
        &["--out", again.to_str().unwrap()],
    )
    .expect_code(1);
    let merged_again = results(&again);
    let spend = |r: &Value| r["run"]["spend_usd"].as_f64().unwrap();
    assert!((spend(&merged_again) - spend(&merged) - 0.75).abs() < 1e-9);
    assert_eq!(merged_again["run"]["replaced"]["judge_usd"], 0.25);
    assert!(
        merged.get("run").unwrap().get("replaced").is_none(),
        "absent when nothing"
    );

    // One unsharded results.json is a matrix of one: merging it reproduces it.
    let alone = repo.path().join("alone");
    merge(
        &repo,
        &[&full_out.join("results.json")],
        &["--out", alone.to_str().unwrap()],
    )
    .expect_code(1);
    assert_same_run(&full, &results(&alone));
}

#[test]
fn bad_shard_flags_are_usage_errors() {
    let repo = demo_pr();
    for bad in ["0/3", "4/3", "x", "1/0", "2", "-1/3", "1/x"] {
        let out = repo.path().join("out");
        run_into(&repo, &out, &[&format!("--shard={bad}")])
            .expect_code(2)
            .stderr_has("--shard")
            .stderr_has("hint: write K/N");
    }
    // A sequential design looks at all the cases: a shard cannot run it.
    let repo = crate::gate::demo_pr_with_suite("defaults: {repeats: 1,", "defaults: {sequential: true, repeats: 1,");
    run_into(&repo, &repo.path().join("out"), &["--shard", "1/2"])
        .expect_code(2)
        .stderr_has("sequential")
        .stderr_has("hint: ");
}

#[test]
fn merge_refuses_shards_that_do_not_belong_together() {
    let repo = demo_pr();
    let one = shard(&repo, 1, 3);
    let three = shard(&repo, 3, 3);
    let out = repo.path().join("merged");
    let out_flag = ["--out", out.to_str().unwrap()];

    merge(&repo, &[&one, &one], &out_flag)
        .expect_code(2)
        .stderr_has("are both shard 1/3")
        .stderr_has("hint: ");
    merge(&repo, &[&one, &three], &out_flag)
        .expect_code(2)
        .stderr_has("shard(s) 2/3 missing")
        .stderr_has("--allow-partial");
    assert!(!out.exists(), "a refused merge writes nothing");

    // The demo's pull request regresses in the shards merged: a fail, as the whole run is.
    let partial = merge(&repo, &[&one, &three], &[out_flag[0], out_flag[1], "--allow-partial"]);
    partial.expect_code(1);
    partial.stderr_has("warning: partial merge: shard(s) 2/3 missing");
    let r = results(&out);
    assert_eq!(r["merged"]["missing"], serde_json::json!([2]));
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("partial merge: shard(s) 2 of 3 missing")
    );
    assert!(
        std::fs::read_to_string(out.join("report.md"))
            .unwrap()
            .contains("partial merge")
    );

    // A corrupt shard: the file, line and column, and a hint.
    let corrupt = repo.path().join("corrupt.json");
    std::fs::write(&corrupt, "{\n  \"schema_version\": 1,\n  oops\n}\n").unwrap();
    merge(&repo, &[&one, &corrupt], &out_flag)
        .expect_code(2)
        .stderr_has(&format!("{}:3:3", corrupt.display()))
        .stderr_has("hint: ");
    let missing = repo.path().join("nowhere.json");
    merge(&repo, &[&one, &missing], &out_flag)
        .expect_code(2)
        .stderr_has("nowhere.json")
        .stderr_has("hint: ");

    // A results.json from before merge existed lacks what re-analysis needs.
    let mut old: Value = serde_json::from_str(&std::fs::read_to_string(&one).unwrap()).unwrap();
    old.as_object_mut().unwrap().remove("gates");
    let old_path = repo.path().join("old.json");
    std::fs::write(&old_path, serde_json::to_string(&old).unwrap()).unwrap();
    merge(&repo, &[&old_path, &three], &out_flag)
        .expect_code(2)
        .stderr_has("has no `gates`")
        .stderr_has("hint: re-run the shards");

    // A shard of the working tree (`--head WORKTREE`): its candidate is uncommitted, so the
    // shards cannot be shown to have gated the same files (an audit merged one with committed
    // shards into a pass rate of neither).
    let mut dirty: Value = serde_json::from_str(&std::fs::read_to_string(&three).unwrap()).unwrap();
    dirty["head"]["dirty"] = serde_json::json!(true);
    let dirty_path = repo.path().join("dirty.json");
    std::fs::write(&dirty_path, serde_json::to_string(&dirty).unwrap()).unwrap();
    merge(&repo, &[&one, &dirty_path], &out_flag)
        .expect_code(2)
        .stderr_has("gated the working tree (`--head WORKTREE`)")
        .stderr_has("hint: commit the edits");

    // A shard with a call cut out: every call a run planned is in its results, so the merge
    // would count a case measured on less than it was (an audit merged 23 calls of 24, exit 0).
    let mut cut: Value = serde_json::from_str(&std::fs::read_to_string(&three).unwrap()).unwrap();
    let case = cut["experiments"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .flat_map(|e| e["cases"].as_array_mut().unwrap())
        .find(|c| !c["candidate"].as_array().unwrap().is_empty())
        .unwrap();
    let id = case["id"].as_str().unwrap().to_owned();
    case["candidate"] = serde_json::json!([]);
    let cut_path = repo.path().join("cut.json");
    std::fs::write(&cut_path, serde_json::to_string(&cut).unwrap()).unwrap();
    let two = shard(&repo, 2, 3);
    merge(&repo, &[&one, &two, &cut_path], &out_flag)
        .expect_code(2)
        .stderr_has(&format!("case `{id}` of experiment"))
        .stderr_has("has 1 baseline and 0 candidate calls; its 1 repeat(s) make 1 and 1")
        .stderr_has("hint: ");

    // A shard of another head: both SHAs named.
    let first_head = repo.git(&["rev-parse", "pr"]).trim().to_owned();
    repo.write("notes.txt", "another push\n");
    let second_head = repo.commit("another push");
    let two = shard(&repo, 2, 3);
    merge(&repo, &[&one, &two, &three], &out_flag)
        .expect_code(2)
        .stderr_has(&first_head)
        .stderr_has(&second_head)
        .stderr_has("not shards of one run");
}

#[test]
fn a_base_that_does_not_load_is_an_error_of_the_merged_run_as_of_each_shard() {
    let repo = TestRepo::with_demo_base();
    repo.edit("configs/product-faq.yaml", "temperature:", "temprature:");
    repo.commit("break one variant on main");
    repo.checkout_new("pr");
    repo.replace_tree(&crate::support::fixture("pr"));
    repo.commit("pr");
    let full = repo.path().join("full");
    run_into(&repo, &full, &["--no-cache"]).expect_code(3);
    let (one, two) = (shard(&repo, 1, 2), shard(&repo, 2, 2));
    assert_eq!(results(one.parent().unwrap())["verdict"], "error");
    let out = repo.path().join("merged");
    merge(&repo, &[&one, &two], &["--out", out.to_str().unwrap()])
        .expect_code(3)
        .stderr_has("a maintainer may accept this run");
    let (full, merged) = (results(&full), results(&out));
    assert_eq!(merged["verdict"], "error");
    assert_eq!(merged["reason"], full["reason"]);
    assert_eq!(merged["base_error"], full["base_error"]);
    assert!(
        merged["base_error"]
            .as_str()
            .unwrap()
            .contains("configs/product-faq.yaml:5:1")
    );
}

/// The calls.jsonl lines in `out`, sorted (shards list them in their own order).
fn call_lines(out: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(out.join("calls.jsonl")).expect("calls.jsonl was written");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Over the inline threshold (lowered through the tests' variable), a run leaves its outputs to
/// calls.jsonl (schema 2); `report` re-renders it exactly, and `merge` of a schema 2 shard with
/// a schema 1 one reproduces it.
#[test]
fn a_run_over_the_inline_threshold_writes_calls_jsonl_that_report_and_merge_read() {
    let repo = demo_pr();
    let low = [("PROMPTGATE_TEST_INLINE_MAX_CALLS", "20")];
    let run_low = |out: &Path, extra: &[&str]| crate::support::run_pr_uncached(repo.path(), out, extra, &low);
    let full_out = repo.path().join("full");
    // A killed run's scratch file (no process holds its lock, last written a minute ago): the
    // next run in the folder removes it.
    std::fs::create_dir_all(&full_out).unwrap();
    let left = full_out.join(".promptgate-run.1.2.0.answers");
    std::fs::write(&left, "answers of a killed run").unwrap();
    let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&left)
        .unwrap()
        .set_modified(minute_ago)
        .unwrap();
    run_low(&full_out, &[]).expect_code(1);
    assert!(!left.exists(), "a killed run's scratch file stays");
    let full = results(&full_out);
    assert_eq!(full["schema_version"], 2);
    let calls: Vec<&Value> = full["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["cases"].as_array().unwrap())
        .flat_map(crate::support::case_calls)
        .collect();
    assert!(calls.len() > 20);
    assert!(
        calls
            .iter()
            .all(|c| c.get("output").is_none() && c.get("scores").is_some())
    );
    let lines = call_lines(&full_out);
    assert_eq!(lines.len(), calls.iter().filter(|c| c["error"].is_null()).count());
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    for key in ["experiment", "case", "arm", "repeat", "output"] {
        assert!(line.get(key).is_some(), "{key} in {line}");
    }
    let report_md = std::fs::read_to_string(full_out.join("report.md")).unwrap();
    assert!(report_md.contains("flipped"), "the comment quotes flipped cases");
    assert!(
        std::fs::read_dir(&full_out)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')),
        "the run leaves no scratch file behind"
    );

    // The same run under the threshold (schema 1, every output held to the end): the outputs
    // the schema 2 run wrote as it scored are the same, in the same order, and so is every
    // rendered file.
    let inline_out = repo.path().join("inline");
    let inline = run_into(&repo, &inline_out, &["--no-cache"]);
    assert_eq!(inline.code, 1, "{inline:?}");
    let inline_results = results(&inline_out);
    assert_eq!(inline_results["schema_version"], 1);
    let inline_lines: Vec<String> = inline_results["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["cases"].as_array().unwrap().iter().flat_map(move |c| {
                ["baseline", "candidate"].into_iter().flat_map(move |arm| {
                    c[arm]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|call| call["error"].is_null())
                        .map(move |call| {
                            serde_json::json!({
                                "experiment": e["name"],
                                "case": c["id"],
                                "arm": arm,
                                "repeat": call["repeat"],
                                "output": call["output"],
                            })
                            .to_string()
                        })
                })
            })
        })
        .collect();
    let in_order = std::fs::read_to_string(full_out.join("calls.jsonl")).unwrap();
    assert_eq!(in_order.lines().collect::<Vec<_>>(), inline_lines);
    assert_eq!(
        full["experiments"],
        crate::support::without_outputs(&inline_results["experiments"])
    );

    // `report` re-renders the same files from results.json and calls.jsonl.
    let again = repo.path().join("again");
    let rendered = repo.promptgate(&[
        "report",
        full_out.join("results.json").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(matches!(rendered.code, 0 | 1), "{rendered:?}");
    for file in ["results.json", "calls.jsonl", "report.md", "summary.md", "junit.xml"] {
        assert_eq!(
            std::fs::read_to_string(again.join(file)).unwrap(),
            std::fs::read_to_string(full_out.join(file)).unwrap(),
            "{file}"
        );
    }

    // Shard 1 over the threshold (schema 2), shard 2 under it (schema 1, outputs inline).
    let one = repo.path().join("shard-1");
    run_low(&one, &["--shard", "1/2"]).expect_code(1);
    let two = repo.path().join("shard-2");
    let shard_two = run_into(&repo, &two, &["--no-cache", "--shard", "2/2"]);
    assert!(matches!(shard_two.code, 0 | 1), "{shard_two:?}");
    assert_eq!(results(&one)["schema_version"], 2);
    assert_eq!(results(&two)["schema_version"], 1);
    let out = repo.path().join("merged");
    merge(
        &repo,
        &[&one.join("results.json"), &two.join("results.json")],
        &["--out", out.to_str().unwrap()],
    )
    .expect_code(1);
    let merged = results(&out);
    assert_eq!(merged["schema_version"], 2);
    assert_same_run(&full, &merged);
    assert_eq!(call_lines(&out), lines);
    assert!(
        std::fs::read_dir(&out)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')),
        "merge leaves no spill file behind"
    );
}

/// A partial merge can show a regression in the cases it has, but never pass a change: with
/// shards missing, what would be a pass is `error` (exit 3), the reason saying why.
#[test]
fn a_partial_merge_never_passes() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    // A change no answer sees: every experiment is compared, and none regresses.
    for config in ["customer-support", "product-faq", "help-center"] {
        let path = format!("configs/{config}.yaml");
        let text = repo.read(&path);
        repo.write(&path, &format!("{text}# reviewed\n"));
    }
    repo.commit("pr");
    let shards: Vec<PathBuf> = (1..=3).map(|k| shard(&repo, k, 3)).collect();
    let out = repo.path().join("merged");
    let out_flag = ["--out", out.to_str().unwrap()];
    merge(&repo, &[&shards[0], &shards[1], &shards[2]], &out_flag).expect_code(0);

    merge(
        &repo,
        &[&shards[0], &shards[2]],
        &[out_flag[0], out_flag[1], "--allow-partial"],
    )
    .expect_code(3)
    .stderr_has("no verdict: partial merge: shard(s) 2 of 3 missing, and a pass needs every case")
    .stderr_has("hint: the results were written; merge every shard's results.json");
    let r = results(&out);
    assert_eq!(r["verdict"], "error");
    assert_eq!(r["merged"]["missing"], serde_json::json!([2]));
}
