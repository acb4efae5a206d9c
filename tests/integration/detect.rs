//! `promptgate detect`: the affected experiments and the paths that made them so.

use serde_json::Value;

use crate::support::TestRepo;

#[test]
fn lists_affected_experiments_with_reasons() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.edit("configs/product-faq.yaml", "temperature:", "# cooler\ntemperature:");
    repo.commit("faq config");
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stdout_has("product-faq\tchanged\tconfigs/product-faq.yaml\n  - variant configs/product-faq.yaml changed\n")
        .stdout_has("customer-support\tunaffected");
}

#[test]
fn detect_names_each_reason_and_the_policy_changes() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.edit("configs/product-faq.yaml", "model: gpt-4o-mini", "model: gpt-4o");
    repo.edit("promptgate.yaml", "margin: 0.02", "margin: 0.5");
    repo.commit("a bigger model, a looser gate");
    let run = repo.promptgate(&["detect", "--base", "main"]);
    run.expect_code(0)
        .stdout_has(
            "product-faq\tchanged\tconfigs/product-faq.yaml\n  - variant configs/product-faq.yaml: model gpt-4o-mini → gpt-4o\n  - variant configs/product-faq.yaml: what it produces changed but its `version:` is still v1.4.2\n",
        )
        .stdout_has("policy (takes effect after merge): gate pass_rate: margin 0.02 → 0.5\n");
    let json: Value = serde_json::from_str(&repo.promptgate(&["detect", "--base", "main", "--json"]).stdout).unwrap();
    assert_eq!(
        json["policy_changes"],
        serde_json::json!(["gate pass_rate: margin 0.02 → 0.5"])
    );
    assert_eq!(
        json["affected"][0]["changes"][0],
        "variant configs/product-faq.yaml: model gpt-4o-mini → gpt-4o"
    );
    assert_eq!(json["base_error"], Value::Null);
}

#[test]
fn json_output_and_all() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.commit("empty");
    let run = repo.promptgate(&["detect", "--base", "main", "--json", "--all"]);
    run.expect_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["affected"].as_array().unwrap().len(),
        3,
        "all three experiments of the demo suite"
    );
    assert!(
        json["affected"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status"] == "forced" && a["affected_by"] == serde_json::json!([]))
    );
    assert_eq!(json["base"]["ref"], "main");
}

#[test]
fn an_assertion_file_is_a_dependency() {
    let repo = TestRepo::with_demo_base();
    repo.write("scorers/no-promises.txt", "guarantee");
    repo.edit(
        "promptgate.yaml",
        "assert: [{type: max-length, value: 1200},",
        "assert: [{type: max-length, value: 1200}, {type: not-icontains, value: \"file://scorers/no-promises.txt\"},",
    );
    repo.commit("scorer file");
    repo.checkout_new("pr");
    repo.write("scorers/no-promises.txt", "we promise");
    repo.commit("edit scorer file");
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stdout_has("customer-support\tchanged\tscorers/no-promises.txt");
}

#[test]
fn depends_on_globs_match_changed_paths() {
    let repo = TestRepo::with_demo_base();
    repo.edit(
        "promptgate.yaml",
        "    dataset: datasets/product-faq.csv\n",
        "    dataset: datasets/product-faq.csv\n    depends_on: [\"catalog/**/*.md\"]\n",
    );
    repo.write("catalog/tents/ridgeline.md", "2 people");
    repo.commit("catalog");
    repo.checkout_new("pr");
    repo.write("catalog/tents/ridgeline.md", "3 people");
    repo.write("catalog.md", "not matched: * does not cross folders");
    repo.commit("catalog edit");
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stdout_has("product-faq\tchanged\tcatalog/tents/ridgeline.md")
        .stdout_has("customer-support\tunaffected");
}

/// An experiment the change removes is among `affected` with `status: removed`, as the text
/// lists it and results.json holds it (and in `removed`).
#[test]
fn json_lists_a_removed_experiment_among_the_affected() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.edit(
        "promptgate.yaml",
        "  - name: product-faq\n    variant: configs/product-faq.yaml\n    dataset: datasets/product-faq.csv\n",
        "",
    );
    repo.commit("retire the faq experiment");
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stdout_has("product-faq\tremoved");
    let json: Value = serde_json::from_str(&repo.promptgate(&["detect", "--base", "main", "--json"]).stdout).unwrap();
    let faq: Vec<&Value> = json["affected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == "product-faq")
        .collect();
    assert_eq!(faq.len(), 1, "{json}");
    assert_eq!(faq[0]["status"], "removed");
    assert_eq!(json["removed"][0]["name"], "product-faq");
}

/// A dependency read through a symbolic link depends on the link and on its target: a PR that
/// edits only the target, points the link elsewhere, or edits a file under a linked folder
/// changes what the experiment reads (before, only the link's own path counted, and such a PR
/// ran nothing: "no experiment is affected").
#[test]
fn an_edit_behind_a_link_affects_the_experiments_reading_through_it() {
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
    repo.checkout_new("pr");
    repo.edit("docs/refund-policy.md", "30 days", "14 days");
    repo.commit("only the target changes");
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stdout_has("customer-support\tchanged\tdocs/refund-policy.md\n");
    // The working tree reads the same links.
    repo.edit("docs/refund-policy.md", "14 days", "7 days");
    repo.promptgate(&["detect", "--base", "main", "--head", "WORKTREE"])
        .expect_code(0)
        .stdout_has("customer-support\tchanged\tdocs/refund-policy.md\n");

    // A linked folder: an edit to a file below its target.
    let repo = TestRepo::with_demo_base();
    std::fs::rename(
        repo.path().join("prompts/partials"),
        repo.path().join("shared-partials"),
    )
    .unwrap();
    std::os::unix::fs::symlink("../shared-partials", repo.path().join("prompts/partials")).unwrap();
    repo.commit("the partials folder is a link");
    repo.promptgate(&["validate"]).expect_code(0);
    repo.checkout_new("pr");
    repo.edit("shared-partials/refunds.md", "30 days", "14 days");
    repo.commit("a partial changes behind the folder link");
    repo.promptgate(&["detect", "--base", "main"])
        .expect_code(0)
        .stdout_has("customer-support\tchanged\tshared-partials/refunds.md\n");
}
