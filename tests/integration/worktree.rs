//! The working tree: uncommitted edits are named, not silently ignored; `--head WORKTREE` gates
//! them; and a symbolic link reads the same in a commit as on disk.

use serde_json::Value;

use crate::gate::{experiment, metric};
use crate::support::{TestRepo, fixture, results};

/// The demo's base committed on `main`, a `pr` branch at the same commit, and the demo's PR
/// edits in the working tree, uncommitted.
fn uncommitted_pr() -> TestRepo {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    repo
}

#[test]
fn uncommitted_edits_are_named_as_not_part_of_the_comparison() {
    let repo = uncommitted_pr();
    repo.write("notes/todo.txt", "unrelated, untracked\n");
    let hint = "hint: commit them, or gate the working tree as the candidate with `--head WORKTREE`";
    let run = repo.promptgate(&["run", "--base", "main", "--out", "out"]);
    run.expect_code(0)
        .stderr_has("warning: 7 uncommitted change(s) the suite may read are not part of this comparison, which reads the commit HEAD (")
        .stderr_has("\n  modified prompts/help-center.md\n")
        .stderr_has("\n  deleted prompts/partials/refunds.md\n")
        .stderr_has("\n  modified prompts/customer-support.md\n")
        .stderr_has(hint);
    assert!(!run.stderr.contains("notes/todo.txt"), "{}", run.stderr);
    assert_eq!(results(&repo.path().join("out"))["experiments"], serde_json::json!([]));
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stderr_has("modified prompts/customer-support.md")
        .stderr_has(hint);
}

#[test]
fn head_worktree_gates_the_working_tree_as_the_candidate() {
    let repo = uncommitted_pr();
    // An untracked partial the edited prompt includes is part of the candidate too.
    repo.write(
        "prompts/partials/returns.md",
        "### Returns\n- Returns are handled by the help center.\n",
    );
    repo.edit(
        "prompts/customer-support.md",
        "### Returns and refunds\n- Returns and refunds are handled by the help center at trailheadoutfitters.com/returns.\n",
        "{% include \"partials/returns.md\" %}\n",
    );
    let head = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    let out = repo.path().join("out");
    let run = repo.promptgate(&[
        "run",
        "--base",
        "main",
        "--head",
        "WORKTREE",
        "--out",
        out.to_str().unwrap(),
    ]);
    run.expect_code(1)
        .stderr_has("promptgate: the candidate is the working tree on");
    assert!(!run.stderr.contains("not part of this comparison"), "{}", run.stderr);
    let r = results(&out);
    assert_eq!(r["head"]["ref"], "WORKTREE");
    assert_eq!(r["head"]["sha"], head.as_str());
    assert_eq!(r["head"]["dirty"], true);
    let support = experiment(&r, "customer-support");
    assert_eq!(metric(support, "pass_rate")["verdict"], "regression");
    let by: Vec<&str> = support["affected_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(by.contains(&"prompts/partials/returns.md"), "{by:?}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains(", with uncommitted edits)"), "{report}");

    let detected = repo.promptgate(&["detect", "--base", "main", "--head", "WORKTREE", "--json"]);
    detected.expect_code(0);
    let json: Value = serde_json::from_str(&detected.stdout).unwrap();
    assert_eq!(json["head"]["dirty"], true);
    assert!(
        json["affected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "customer-support")
    );
}

#[test]
fn a_committed_link_inside_the_repository_reads_as_its_target_everywhere() {
    let repo = TestRepo::with_demo_base();
    let refunds = repo.read("prompts/partials/refunds.md");
    repo.write("docs/refund-policy.md", &refunds);
    repo.remove("prompts/partials/refunds.md");
    std::os::unix::fs::symlink(
        "../../docs/refund-policy.md",
        repo.path().join("prompts/partials/refunds.md"),
    )
    .unwrap();
    repo.commit("the partial is a link to the policy document");
    repo.promptgate(&["validate"]).expect_code(0);
    let out = repo.path().join("out");
    repo.promptgate(&[
        "run",
        "--base",
        "main",
        "--head",
        "main",
        "--all",
        "--out",
        out.to_str().unwrap(),
    ])
    .expect_code(0);
    // Read as its target, the refunds paragraph answers the refund cases: 42 of 44 pass, as
    // in the demo's base. Read as the link's own text, they would fail.
    let r = results(&out);
    let pass_rate = metric(experiment(&r, "customer-support"), "pass_rate");
    assert!(
        (pass_rate["baseline"].as_f64().unwrap() - 42.0 / 44.0).abs() < 1e-12,
        "{pass_rate}"
    );
}

#[test]
fn a_committed_link_leaving_the_repository_is_the_same_error_in_validate_and_run() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.remove("prompts/partials/refunds.md");
    std::os::unix::fs::symlink("../../../outside.md", repo.path().join("prompts/partials/refunds.md")).unwrap();
    repo.commit("a link out of the repository");
    let message = "prompts/partials/refunds.md is a link that leaves the repository";
    repo.promptgate(&["validate"]).expect_code(2).stderr_has(message);
    repo.promptgate(&["run", "--base", "main", "--out", "out"])
        .expect_code(2)
        .stderr_has(message);
}
