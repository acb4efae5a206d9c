//! `promptgate ci`: the GitHub Actions entry. Reads the event, makes sure base and head are
//! present, runs the gate, applies a maintainer's waiver, and publishes: `$GITHUB_OUTPUT`, the
//! step summary, workflow-command annotations, the sticky comment, the check run, the review.
//!
//! The gate itself is synchronous and builds its own runtime; GitHub calls run on a small
//! runtime of this command's, entered only around each publishing step.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::run::{GateOptions, GateRun, run_gate_with};
use crate::cli::CiArgs;
use crate::error::{Diagnostic, Error};
use crate::github::check::{self, Annotation};
use crate::github::client::{Client, Purpose};
use crate::github::event::{self, ActionsEnv, PullRequest, Trigger};
use crate::github::{actions, assets, comment, review, waiver};
use crate::plan::PlanFacts;
use crate::report::{self, charts, markdown};
use crate::results::*;
use crate::workspace::{FileSource, GitTree, Repo};

/// The file the untrusted job leaves for the trusted one, next to `results.json`.
const PR_FILE: &str = "pr.json";

const PULL: Purpose = Purpose {
    what: "read the pull request",
    permission: "pull-requests: read",
};

pub fn ci(repo_dir: &Path, config: &str, args: &CiArgs) -> anyhow::Result<u8> {
    let env = ActionsEnv::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(dir) = &args.publish_only {
        return publish_only(&runtime, &env, dir, args);
    }
    if let Some(shard) = args.gate.shard.filter(|_| !args.no_publish) {
        // A shard's verdict covers a share of the cases: it must not become the PR's comment
        // and check run. The merged results are published once, by the trusted half.
        return Err(Error::from(
            Diagnostic::new(format!(
                "--shard {}/{} would publish one shard's partial verdict to the pull request",
                shard.index, shard.count
            ))
            .hint("add --no-publish to each shard, then `promptgate merge shard-*/results.json --out DIR`, copy a shard's pr.json into DIR and run `promptgate ci --publish-only DIR`"),
        )
        .into());
    }
    let trigger = env.trigger()?;
    let client = if args.no_publish {
        None
    } else {
        Some(connect(&runtime, &env, args)?)
    };
    let pr = match trigger {
        Trigger::PullRequest(pr) => pr,
        Trigger::PullRequestComment { number } => {
            let Some(client) = &client else {
                return Err(Error::from(
                    Diagnostic::new("an `issue_comment` run needs the API to read the pull request")
                        .hint("drop --no-publish"),
                )
                .into());
            };
            let value = runtime.block_on(client.get(&client.repo_route(&format!("/pulls/{number}")), PULL))?;
            event::pull_request_from_api(&value, &client.repository)?
        }
        Trigger::WorkflowRun { .. } => {
            return Err(Error::from(
                Diagnostic::new("a `workflow_run` event carries no checkout to evaluate").hint(
                    "in the trusted workflow, download the results artifact and run `promptgate ci --publish-only DIR`",
                ),
            )
            .into());
        }
        Trigger::Other(name) => {
            return Err(Error::from(
                Diagnostic::new(format!("`promptgate ci` gates pull requests; this run was triggered by `{name}`"))
                    .hint("trigger the workflow on `pull_request` (see docs/github.md), or use `promptgate run --base REF --head REF`"),
            )
            .into());
        }
    };
    let base = args.base.clone().unwrap_or_else(|| pr.base_sha.clone());
    let head = args.head.clone().unwrap_or_else(|| pr.head_sha.clone());
    let repo = Repo::open(repo_dir)?;
    let missing: Vec<&str> = [base.as_str(), head.as_str()]
        .into_iter()
        .filter(|sha| !repo.has_commit(sha))
        .collect();
    if !missing.is_empty() && missing.iter().all(|s| is_sha(s)) {
        println!("{}", actions::group("promptgate: fetching the pull request's commits"));
        eprintln!(
            "promptgate: {} not in the checkout; fetching from origin",
            missing.join(", ")
        );
        let fetched = repo.fetch_commits(&missing);
        println!("{}", actions::endgroup());
        fetched?;
    }

    let publisher = match &client {
        Some(client) => Some(runtime.block_on(Publisher::prepare(client, &pr, args, &env))?),
        None => None,
    };
    let publisher = RefCell::new(publisher);
    let options = GateOptions::from_flags(repo.root(), base, head.clone(), config, &args.out, &args.gate);
    let on_plan = |facts: &PlanFacts| -> anyhow::Result<()> {
        if let Some(p) = publisher.borrow_mut().as_mut() {
            runtime.block_on(p.progress(facts, &head))?;
        }
        Ok(())
    };
    println!("{}", actions::group("promptgate: evaluating"));
    let gate = run_gate_with(repo.root(), &options, &on_plan);
    println!("{}", actions::endgroup());
    let mut publisher = publisher.into_inner();

    let mut run = match gate {
        Ok(run) => run,
        Err(e) => {
            if let Some(p) = publisher.as_mut() {
                let message = gate_error_line(&e);
                if let Err(publish_error) = runtime.block_on(p.could_not_finish(&message, &head)) {
                    eprintln!("{publish_error}");
                }
            }
            return Err(e);
        }
    };
    if let Some(p) = publisher.as_ref() {
        runtime.block_on(p.apply_waiver(&mut run.results))?;
        if run.results.waiver.is_some() {
            run.written = report::write_outputs(&run.results, &args.out)?;
        }
    }
    if args.no_publish {
        let handoff = serde_json::to_string_pretty(&pr)? + "\n";
        let path = args.out.join(PR_FILE);
        std::fs::write(&path, handoff).with_context(|| format!("writing {}", path.display()))?;
        run.written.push(path);
    }

    let exists = |path: &str| {
        GitTree::new(repo.root(), &run.results.head.sha)
            .read(path)
            .is_ok_and(|f| f.is_some())
    };
    let annotations = check::annotations(&run.results, &exists);
    side_channels(&env, &run, &args.out, &annotations)?;
    super::run::print_outcome(&run);
    if let Some(p) = publisher.as_mut() {
        runtime.block_on(p.finish(
            &run.results,
            run.run_error.as_ref(),
            &annotations,
            env.run_url.as_deref(),
        ))?;
    }
    write_dry_run(client.as_ref(), args.dry_run.as_deref())?;
    run.exit_code()
}

/// The trusted half of the fork-safe pair: publishes results an untrusted job computed. The
/// pull request is re-read from the API, and must still point at the commit evaluated.
fn publish_only(runtime: &tokio::runtime::Runtime, env: &ActionsEnv, dir: &Path, args: &CiArgs) -> anyhow::Result<u8> {
    let handoff_path = dir.join(PR_FILE);
    let text = std::fs::read_to_string(&handoff_path).map_err(|e| {
        Error::from(
            Diagnostic::new(format!("cannot read {}: {e}", handoff_path.display()))
                .hint("the evaluating job writes it with `promptgate ci --no-publish`"),
        )
    })?;
    let claimed: PullRequest = serde_json::from_str(&text).map_err(|e| {
        Error::from(Diagnostic::new(format!(
            "{} is not a pr.json: {e}",
            handoff_path.display()
        )))
    })?;
    let mut results = report::read_results(&dir.join("results.json"))?;
    if let Some(shard) = results.shard {
        return Err(Error::from(
            Diagnostic::new(format!(
                "{} holds shard {}/{} only: its verdict covers a share of the cases",
                dir.join("results.json").display(),
                shard.index,
                shard.count
            ))
            .hint("run `promptgate merge shard-*/results.json --out DIR` first and publish DIR"),
        )
        .into());
    }
    let repository = env.require_repository()?;
    if claimed.repository != repository {
        return Err(Error::run(format!("the results are for {}, not {repository}", claimed.repository)).into());
    }
    if let Trigger::WorkflowRun { head_sha, .. } = env.trigger()?
        && head_sha != claimed.head_sha
    {
        return Err(Error::run(format!(
            "the results are for commit {}, but the workflow run evaluated {head_sha}",
            claimed.head_sha
        ))
        .into());
    }
    if results.head.sha != claimed.head_sha {
        return Err(Error::run(format!(
            "results.json is for commit {}, pr.json for {}",
            results.head.sha, claimed.head_sha
        ))
        .into());
    }
    let client = connect(runtime, env, args)?;
    let value = runtime.block_on(client.get(&client.repo_route(&format!("/pulls/{}", claimed.number)), PULL))?;
    let pr = event::pull_request_from_api(&value, repository)?;
    if pr.head_sha != claimed.head_sha {
        return Err(Error::run_with_hint(
            format!(
                "pull request #{} has moved on to {}; these results are for {}",
                pr.number, pr.head_sha, claimed.head_sha
            ),
            "nothing was published: the run for the newer commit publishes its own results",
        )
        .into());
    }
    // The verdict is recomputed from nothing here, but the waiver is ours to decide: an untrusted
    // job cannot waive its own regression.
    results.waiver = None;
    if results.verdict == Verdict::Waived {
        results.verdict = Verdict::Fail;
    }
    let mut publisher = runtime.block_on(Publisher::prepare(&client, &pr, args, env))?;
    runtime.block_on(publisher.apply_waiver(&mut results))?;
    let written = report::write_outputs(&results, &args.out)?;
    let run = GateRun {
        results,
        written,
        run_error: None,
    };
    let annotations = check::annotations(&run.results, &|_| true);
    side_channels(env, &run, &args.out, &annotations)?;
    super::run::print_outcome(&run);
    runtime.block_on(publisher.finish(&run.results, None, &annotations, env.run_url.as_deref()))?;
    write_dry_run(Some(&client), args.dry_run.as_deref())?;
    run.exit_code()
}

fn connect(runtime: &tokio::runtime::Runtime, env: &ActionsEnv, args: &CiArgs) -> Result<Client, Error> {
    let repository = env.require_repository()?;
    if args.dry_run.is_some() {
        return Ok(Client::dry_run(repository));
    }
    let Some(token) = env.token.clone() else {
        return Err(Diagnostic::new("GITHUB_TOKEN is not set: promptgate cannot publish")
            .hint(
                "pass `env: GITHUB_TOKEN: ${{ github.token }}` to the step, or run with --no-publish or --dry-run FILE",
            )
            .into());
    };
    let _entered = runtime.enter();
    Client::live(&env.api_url, token, repository)
}

/// What the sticky comment, check run and review need between the stages of the run.
struct Publisher<'a> {
    client: &'a Client,
    pr: PullRequest,
    bot: String,
    comments: Vec<serde_json::Value>,
    sticky: Option<u64>,
    mode: crate::github::CommentMode,
    check: bool,
    review: bool,
    /// Where the chart PNGs go, unless `--no-assets`.
    assets: Option<AssetTarget>,
}

struct AssetTarget {
    branch: String,
    server_url: String,
    /// The run's output folder, holding `charts/*.png`.
    out: PathBuf,
}

impl<'a> Publisher<'a> {
    async fn prepare(
        client: &'a Client,
        pr: &PullRequest,
        args: &CiArgs,
        env: &ActionsEnv,
    ) -> Result<Publisher<'a>, Error> {
        let bot = match args.bot_login.as_deref().filter(|l| !l.is_empty()) {
            Some(login) => login.to_owned(),
            None => crate::github::identity(client).await?,
        };
        let comments = comment::list(client, pr).await?;
        let sticky = comment::find_sticky(&comments, &bot);
        Ok(Publisher {
            client,
            pr: pr.clone(),
            bot,
            comments,
            sticky,
            mode: args.comment.into(),
            check: !args.no_check,
            review: args.review,
            assets: (!args.no_assets && !args.asset_branch.is_empty()).then(|| AssetTarget {
                branch: args.asset_branch.clone(),
                server_url: env.server_url.clone(),
                out: args.out.clone(),
            }),
        })
    }

    /// Replaces the previous report with "evaluating…" before the first call.
    async fn progress(&mut self, facts: &PlanFacts, head: &str) -> Result<(), Error> {
        if self.sticky.is_some() || comment::wanted(self.mode, facts.experiments, None) {
            comment::upsert(
                self.client,
                &self.pr,
                &mut self.sticky,
                &comment::progress_body(facts, head),
            )
            .await?;
        }
        Ok(())
    }

    async fn could_not_finish(&mut self, message: &str, head: &str) -> Result<(), Error> {
        if self.sticky.is_some() {
            comment::upsert(
                self.client,
                &self.pr,
                &mut self.sticky,
                &comment::failed_body(message, head),
            )
            .await?;
        }
        if self.check {
            let body = check::body(
                head,
                "failure",
                "promptgate could not finish",
                &format!("The gate stopped before a verdict: {message}"),
                &[],
                None,
            );
            check::create(self.client, &body).await?;
        }
        Ok(())
    }

    /// On a failing verdict, looks for a maintainer's waiver and records it in the results.
    async fn apply_waiver(&self, results: &mut Results) -> Result<(), Error> {
        if results.verdict != Verdict::Fail {
            return Ok(());
        }
        if let Some(mut w) = waiver::find(self.client, &self.pr, &self.comments, &self.bot).await? {
            eprintln!("promptgate: regression accepted by {} ({})", w.by, w.via);
            w.waived = results.reason.clone();
            results.verdict = Verdict::Waived;
            results.reason = format!("regression accepted by {}: {}", w.by, w.reason);
            results.waiver = Some(w);
        }
        Ok(())
    }

    /// Publishes the run's chart PNGs and returns their URLs by chart name. A failure (most
    /// often a token without `contents: write`) is a warning: the comment falls back to the
    /// text form of the charts, and the gate's verdict stands.
    async fn publish_images(&self, results: &Results) -> BTreeMap<String, String> {
        let Some(target) = &self.assets else {
            return BTreeMap::new();
        };
        let dir = target.out.join("charts");
        let images: Vec<assets::Image> = charts::plan_charts(results)
            .into_iter()
            .filter_map(|plan| {
                let png = std::fs::read(dir.join(format!("{}.png", plan.name))).ok()?;
                Some(assets::Image { name: plan.name, png })
            })
            .collect();
        if images.is_empty() {
            return BTreeMap::new();
        }
        match assets::publish(
            self.client,
            &target.branch,
            &target.server_url,
            self.pr.number,
            &self.pr.head_sha,
            &images,
        )
        .await
        {
            Ok(published) => {
                eprintln!(
                    "promptgate: published {} chart image(s) to `{}` at {}",
                    published.urls.len(),
                    target.branch,
                    published.commit
                );
                published.urls
            }
            Err(e) => {
                let text = e.to_string();
                println!(
                    "::warning title=promptgate: chart images not published::{}",
                    actions::escape_data(&format!(
                        "{}\nThe comment shows the charts as text only. Publishing the images needs the `contents: write` permission; pass `asset-branch: ''` (--no-assets) to stop trying.",
                        text.trim_start_matches("error: ")
                    ))
                );
                BTreeMap::new()
            }
        }
    }

    async fn finish(
        &mut self,
        results: &Results,
        run_error: Option<&Error>,
        annotations: &[Annotation],
        details_url: Option<&str>,
    ) -> Result<(), Error> {
        let affected = results
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .count();
        if self.sticky.is_some() || comment::wanted(self.mode, affected, Some(results.verdict)) {
            let images = self.publish_images(results).await;
            let report = markdown::render_report_with_images(results, &images)
                .map_err(|e| Error::run(format!("rendering the report: {e:#}")))?;
            comment::upsert(
                self.client,
                &self.pr,
                &mut self.sticky,
                &comment::final_body(results, &report),
            )
            .await?;
        }
        if self.check {
            let summary =
                markdown::render_summary(results).map_err(|e| Error::run(format!("rendering the summary: {e:#}")))?;
            let (conclusion, title) = match run_error {
                Some(e) => ("failure", format!("promptgate could not finish: {}", error_line(e))),
                None => (check::conclusion(results.verdict), check::title(results)),
            };
            let body = check::body(
                &self.pr.head_sha,
                conclusion,
                &title,
                &summary,
                annotations,
                details_url,
            );
            check::create(self.client, &body).await?;
        }
        if self.review && run_error.is_none() {
            review::sync(self.client, &self.pr, &self.bot, results).await?;
        }
        Ok(())
    }
}

/// `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, and `::error` annotations in the log.
fn side_channels(env: &ActionsEnv, run: &GateRun, out: &Path, annotations: &[Annotation]) -> anyhow::Result<()> {
    let r = &run.results;
    let verdict = r.verdict.as_str();
    if let Some(file) = &env.output {
        let affected = r
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .count();
        actions::write_outputs(
            file,
            &[
                ("verdict", verdict.to_owned()),
                ("report", path_string(&out.join("report.md"))),
                ("results", path_string(&out.join("results.json"))),
                ("experiments-affected", affected.to_string()),
                ("cost", format!("{:.6}", r.run.spend_usd)),
                ("conclusion", check::conclusion(r.verdict).to_owned()),
            ],
        )?;
    }
    if let Some(file) = &env.step_summary {
        actions::append_summary(file, &(markdown::render_summary(r)? + "\n"))?;
    }
    for a in annotations.iter().filter(|a| a.annotation_level == "failure") {
        println!("{}", actions::error(&a.path, a.start_line, &a.title, &a.message));
    }
    Ok(())
}

fn write_dry_run(client: Option<&Client>, file: Option<&Path>) -> anyhow::Result<()> {
    if let (Some(client), Some(file)) = (client, file) {
        let text = serde_json::to_string_pretty(&client.recorded())? + "\n";
        std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
        eprintln!(
            "promptgate: dry run: the requests that would have been sent are in {}",
            file.display()
        );
    }
    Ok(())
}

/// The first line of an error, for the comment and the check title.
fn gate_error_line(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(expected) => error_line(expected),
        None => format!("{e:#}").lines().next().unwrap_or("").to_owned(),
    }
}

fn error_line(e: &Error) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_owned()
}

fn is_sha(s: &str) -> bool {
    (7..=40).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn path_string(p: &Path) -> String {
    PathBuf::from(p).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shas() {
        assert!(is_sha("1f0e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c"));
        assert!(!is_sha("main"));
        assert!(!is_sha("--upload-pack=x"));
    }
}
