//! `promptgate ci`: the GitHub Actions entry. It strings stages together: read the event and
//! decide what it asks for (`github::route`), refuse what would hand untrusted code the job's
//! secrets, connect the publisher, run the gate, publish (`github::publish`).
//!
//! The gate itself is synchronous and builds its own runtime; GitHub calls run on a small
//! runtime of this command's, entered only around each publishing step.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::run::{GateOptions, GateRun, run_gate_with};
use crate::cli::CiArgs;
use crate::error::{Diagnostic, Error, exit};
use crate::format::short_sha;
use crate::github::approval::{self, Approvals};
use crate::github::check::{self, Annotation};
use crate::github::client::{Client, Purpose};
use crate::github::event::{self, ActionsEnv, PullRequest, PullRequestEvent, Trigger};
use crate::github::publish::{AssetTarget, Publisher, Settings};
use crate::github::route::{Route, route};
use crate::github::{actions, waiver};
use crate::plan::PlanFacts;
use crate::report::{self, markdown};
use crate::results::*;
use crate::trust;
use crate::workspace::{FileSource, GitTree, Repo};

pub(super) const PULL: Purpose = Purpose {
    what: "read the pull request",
    permission: "pull-requests: read",
};

pub fn ci(repo_dir: &Path, config: &str, args: &CiArgs) -> anyhow::Result<u8> {
    let env = ActionsEnv::from_env();
    OUTPUTS_WRITTEN.set(false);
    let outcome = ci_in(&env, repo_dir, config, args);
    // Whatever stopped the run before its outputs were written (GitHub refusing the token or
    // the comments' list, a bad event): a later step keyed on `verdict` sees the error.
    if let Err(e) = &outcome {
        error_side_channels(&env, &format!("{e:#}"));
    }
    outcome
}

/// The outputs say what they must without `verdict=error`: a hand-off that keeps trusted
/// results over an untrusted run's failure (the check keeps their verdict) returns its error
/// with nothing written, on purpose.
pub(super) fn outputs_settled() {
    OUTPUTS_WRITTEN.set(true);
}

thread_local! {
    /// Whether this run has written its `$GITHUB_OUTPUT` verdict and step summary: an error
    /// after them (publishing the comment) leaves the verdict they carry, and an error before
    /// them writes `error` once.
    static OUTPUTS_WRITTEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn ci_in(env: &ActionsEnv, repo_dir: &Path, config: &str, args: &CiArgs) -> anyhow::Result<u8> {
    if let Some(token) = &env.token {
        crate::secrets::register("GITHUB_TOKEN", token);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(dir) = &args.publish_only {
        return super::handoff::publish_only(&runtime, env, repo_dir, dir, args);
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
    let route = match route(&trigger) {
        Route::Evaluate if args.republish => {
            Route::Skip("--republish never evaluates; this event asks for an evaluation".to_owned())
        }
        other => other,
    };
    if args.prepare {
        return prepare(&runtime, env, &trigger, route, args);
    }
    match route {
        Route::Unsupported(message, hint) => Err(Error::from(Diagnostic::new(message).hint(hint)).into()),
        Route::Skip(why) => {
            eprintln!("promptgate: nothing to do: {}", actions::inert(&why));
            Ok(exit::PASS)
        }
        Route::Republish => republish(&runtime, env, &trigger, args),
        Route::Evaluate => evaluate(&runtime, env, &trigger, repo_dir, config, args),
    }
}

/// A waiver given or withdrawn: the last results, re-published with the waiver now in force.
/// Nothing is checked out, evaluated or sent to a provider.
fn republish(
    runtime: &tokio::runtime::Runtime,
    env: &ActionsEnv,
    trigger: &Trigger,
    args: &CiArgs,
) -> anyhow::Result<u8> {
    let client = connect(runtime, env, args)?;
    let number = match trigger {
        Trigger::PullRequest { pr, .. } => pr.number,
        Trigger::PullRequestComment { number, .. } => *number,
        _ => return Ok(exit::PASS),
    };
    if client.is_dry_run() {
        eprintln!(
            "promptgate: dry run: the pull request, its comments and its waivers were not looked up, so there is nothing to re-publish; a real run re-publishes the last results of #{number} with the waiver applied, evaluating nothing"
        );
        write_dry_run(Some(&client), args.dry_run.as_deref())?;
        return Ok(exit::PASS);
    }
    // The current labels and head: the payload's may be older than the waiver.
    let value = runtime.block_on(client.get(&client.repo_route(&format!("/pulls/{number}")), PULL))?;
    let pr = event::pull_request_from_api(&value, &client.repository)?;
    let mut publisher = runtime.block_on(Publisher::connect(&client, &pr, settings(env, args)))?;
    let Some((republished, published)) =
        runtime.block_on(publisher.republish(crate::github::waiver::Fresh::of(trigger, env.rerun)))?
    else {
        eprintln!(
            "promptgate: nothing to re-publish: promptgate has published no results on #{number} yet; a waiver applies to results once they are published (give it again then)"
        );
        return Ok(exit::PASS);
    };
    println!(
        "verdict: {}: {}",
        republished.verdict.as_str().to_uppercase().replace('_', " "),
        actions::inert(&crate::secrets::redact(&republished.reason))
    );
    OUTPUTS_WRITTEN.set(true);
    if let Some(file) = &env.output {
        actions::write_outputs(
            file,
            &[
                ("verdict", republished.verdict.as_str().to_owned()),
                ("conclusion", republished.conclusion.to_owned()),
            ],
        )?;
    }
    if let Some(file) = &env.step_summary {
        // What was re-published, in a word: nothing was evaluated, so there are no tables.
        let summary = format!(
            "## promptgate: re-published #{number}, nothing evaluated\n\n**{}**: {}\n",
            republished.verdict.as_str().to_uppercase().replace('_', " "),
            crate::report::escape::escape_untrusted(&crate::secrets::redact(&republished.reason), 2_000)
        );
        actions::append_summary(file, &summary)?;
    }
    // The check carries the verdict; a comment or review that failed after it is the run's
    // error, with the outputs already saying what the check says, and the summary what failed.
    super::handoff::published_or_said(env, published)?;
    Ok(match republished.verdict {
        Verdict::Pass | Verdict::Waived => exit::PASS,
        Verdict::Error => exit::RUN,
        Verdict::Fail | Verdict::NeedsApproval => exit::FAIL,
    })
}

/// What the evaluating step needs to know that only the API can tell: the pull request, the
/// approvals in force, whether a maintainer dispatched the run, whether its head is untrusted.
/// `--prepare` writes it before any of the pull request's code runs; `--no-publish
/// --prepared FILE` reads it, having no token to ask.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Prepared {
    pr: PullRequest,
    #[serde(default)]
    event_action: String,
    approvals: Approvals,
    dispatched_by: Option<String>,
    untrusted: bool,
}

/// The Action's first step: everything that needs the token before the pull request's code
/// runs (see `--prepare`).
fn prepare(
    runtime: &tokio::runtime::Runtime,
    env: &ActionsEnv,
    trigger: &Trigger,
    route: Route,
    args: &CiArgs,
) -> anyhow::Result<u8> {
    let route_output = |value: &str| -> anyhow::Result<()> {
        if let Some(file) = &env.output {
            actions::write_outputs(file, &[("route", value.to_owned())])?;
        }
        Ok(())
    };
    match route {
        Route::Unsupported(message, hint) => Err(Error::from(Diagnostic::new(message).hint(hint)).into()),
        Route::Skip(why) => {
            eprintln!("promptgate: nothing to do: {}", actions::inert(&why));
            route_output("skip")?;
            Ok(exit::PASS)
        }
        Route::Republish => {
            route_output("done")?;
            republish(runtime, env, trigger, args)
        }
        Route::Evaluate => {
            let client = connect(runtime, env, args)?;
            let mut prepared = resolve(runtime, Some(&client), trigger, args)?;
            if env.rerun {
                super::handoff::not_moved_on(runtime, &client, &prepared.pr)?;
            }
            let mut publisher = runtime.block_on(Publisher::connect(&client, &prepared.pr, settings(env, args)))?;
            let event = match trigger {
                Trigger::PullRequest { event, .. } => Some(event.clone()),
                _ => None,
            };
            prepared.approvals = runtime.block_on(approval::find(
                &client,
                &prepared.pr,
                event.as_ref(),
                &mut publisher.state,
            ))?;
            runtime.block_on(publisher.progress_or_warn(None));
            let path = args
                .prepared
                .as_deref()
                .expect("clap requires --prepared with --prepare");
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::output::create_dir(parent)?;
            }
            crate::output::write_file(path, (serde_json::to_string_pretty(&prepared)? + "\n").as_bytes())?;
            route_output("evaluate")?;
            write_dry_run(Some(&client), args.dry_run.as_deref())?;
            Ok(exit::PASS)
        }
    }
}

/// The pull request an evaluation is about, from the event (a dispatch reads it through the
/// API and checks the dispatcher), after refusing what would give untrusted code the job's
/// secrets.
fn resolve(
    runtime: &tokio::runtime::Runtime,
    client: Option<&Client>,
    trigger: &Trigger,
    args: &CiArgs,
) -> anyhow::Result<Prepared> {
    let (pr, event, dispatched_by) = match trigger {
        Trigger::PullRequest { pr, event } => (pr.clone(), Some(event.clone()), None),
        Trigger::Dispatch { pr, sha, actor } => {
            let (Some(number), Some(sha)) = (pr, sha) else {
                return Err(Error::from(
                    Diagnostic::new("a `workflow_dispatch` evaluation needs the inputs `pr` (the pull request's number) and `sha` (its head commit)")
                        .hint("see examples/workflows/promptgate-trusted.yml"),
                )
                .into());
            };
            let Some(client) = client.filter(|c| !c.is_dry_run()) else {
                return Err(Error::from(
                    Diagnostic::new("a `workflow_dispatch` evaluation reads the pull request and the dispatcher's permission through the API")
                        .hint("drop --no-publish and --dry-run (the Action's first step, `--prepare`, does this)"),
                )
                .into());
            };
            let value = runtime.block_on(client.get(&client.repo_route(&format!("/pulls/{number}")), PULL))?;
            let pr = event::pull_request_from_api(&value, &client.repository)?;
            dispatched(runtime, client, &pr, sha, actor)?;
            (pr, None, Some(actor.clone()))
        }
        _ => {
            return Err(Error::from(Diagnostic::new("this event carries no pull request to evaluate")).into());
        }
    };
    refuse_untrusted(&pr, event.as_ref(), dispatched_by.is_some(), args)?;
    // A fork's head evaluated by the untrusted half of the fork-safe pair: no key goes anywhere.
    let untrusted = pr.fork && dispatched_by.is_none() && !args.allow_fork_head;
    Ok(Prepared {
        pr,
        event_action: event.map(|e| e.action).unwrap_or_default(),
        approvals: Approvals::default(),
        dispatched_by,
        untrusted,
    })
}

fn evaluate(
    runtime: &tokio::runtime::Runtime,
    env: &ActionsEnv,
    trigger: &Trigger,
    repo_dir: &Path,
    config: &str,
    args: &CiArgs,
) -> anyhow::Result<u8> {
    let client = if args.no_publish {
        None
    } else {
        Some(connect(runtime, env, args)?)
    };
    let from_prepare = match (&args.prepared, args.no_publish) {
        (Some(path), true) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::from(
                    Diagnostic::new(format!("cannot read {}: {e}", path.display()))
                        .hint("`promptgate ci --prepare --prepared FILE` writes it, in the step before"),
                )
            })?;
            Some(serde_json::from_str::<Prepared>(&text).map_err(|e| {
                Error::from(Diagnostic::new(format!(
                    "{} is not a prepared file: {e}",
                    path.display()
                )))
            })?)
        }
        _ => None,
    };
    let prepared = match from_prepare {
        Some(prepared) => prepared,
        None => resolve(runtime, client.as_ref(), trigger, args)?,
    };
    let event = match trigger {
        Trigger::PullRequest { event, .. } => Some(event.clone()),
        _ => None,
    };
    let Prepared {
        pr,
        dispatched_by,
        untrusted,
        approvals: prepared_approvals,
        ..
    } = prepared;

    let base = args.base.clone().unwrap_or_else(|| pr.base_sha.clone());
    let head = args.head.clone().unwrap_or_else(|| pr.head_sha.clone());
    let repo = Repo::open(repo_dir)?;
    crate::output::create_dir(&args.out)?;
    if args.no_publish {
        // First, so that the publishing job hears of a run that could not finish.
        super::handoff::write_handoff(
            &args.out,
            &super::handoff::Handoff {
                pr: pr.clone(),
                evaluated: None,
            },
        )?;
    }
    // A failure before the gate runs is the publishing job's to report too.
    let stopped = |e: anyhow::Error| -> anyhow::Error {
        if args.no_publish
            && let Err(written) = super::handoff::write_error(&args.out, &crate::secrets::redact(&gate_error_line(&e)))
        {
            eprintln!("promptgate: {written:#}");
        }
        e
    };
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
        fetched.map_err(|e| stopped(e.into()))?;
    }
    // The commit evaluated, when `--head` names another than the pull request's head (the
    // working tree: the commit checked out). A maintainer's dispatch approved the head they
    // reviewed, and an untrusted head is the fork's word: either evaluates the head only.
    let checked_out = if head == crate::compare::WORKTREE {
        "HEAD"
    } else {
        head.as_str()
    };
    let evaluated = repo.resolve(checked_out).ok().filter(|sha| *sha != pr.head_sha);
    if let Some(other) = &evaluated
        && (dispatched_by.is_some() || untrusted)
    {
        let why = if untrusted {
            "a fork's untrusted evaluation"
        } else {
            "a maintainer's dispatch"
        };
        return Err(stopped(
            Error::from(
                Diagnostic::new(format!(
                    "--head names commit {}, not pull request #{}'s head {}: {why} evaluates the head",
                    short_sha(other),
                    pr.number,
                    short_sha(&pr.head_sha)
                ))
                .hint("leave `head` (--head) unset in this workflow"),
            )
            .into(),
        ));
    }
    if args.no_publish && evaluated.is_some() {
        let handoff = super::handoff::Handoff {
            pr: pr.clone(),
            evaluated,
        };
        super::handoff::write_handoff(&args.out, &handoff)?;
    }

    if let (Some(client), true) = (&client, env.rerun) {
        super::handoff::not_moved_on(runtime, client, &pr)?;
    }
    let mut publisher = match &client {
        Some(client) => Some(runtime.block_on(Publisher::connect(client, &pr, settings(env, args)))?),
        None => None,
    };
    if client.as_ref().is_some_and(Client::is_dry_run) {
        eprintln!(
            "promptgate: dry run: not looked up: the token's identity, the existing comments (the sticky comment is created, not updated), waivers and approval labels (none applies)"
        );
    }
    let approvals = match publisher.as_mut() {
        Some(p) => {
            let (client, pr) = (client.as_ref().expect("a publisher has a client"), p.pr.clone());
            runtime.block_on(approval::find(client, &pr, event.as_ref(), &mut p.state))?
        }
        None => prepared_approvals,
    };
    let policy = trust::KeyPolicy {
        untrusted_head: untrusted,
        config_approved: approvals.config.is_some()
            || dispatched_by.is_some()
            || args.approved_config.as_deref().is_some_and(|sha| sha == pr.head_sha),
        hold_over_budget: true,
        how_config: if untrusted {
            format!(
                "A maintainer who has reviewed the change runs the trusted evaluation: Actions → “promptgate (trusted)” → Run workflow, with pr {} and sha {}.",
                pr.number, pr.head_sha
            )
        } else {
            format!(
                "A repository admin or maintainer who has reviewed these settings approves commit {} by adding the label “{}” (for a later push, remove it and add it again).",
                short_sha(&pr.head_sha),
                approval::TRUST_CONFIG
            )
        },
        how_cost: format!(
            "A maintainer approves the cost of commit {} with the label “{}”, or the workflow sets the action's approve-cost input.",
            short_sha(&pr.head_sha),
            approval::APPROVE_COST
        ),
    };
    let approve_cost = match (&approvals.cost, args.gate.approve_cost) {
        (Some(by), _) => {
            eprintln!(
                "promptgate: cost approved by {} (`{}` label); the budget's hard cap still holds",
                actions::inert(by),
                approval::APPROVE_COST
            );
            Some(f64::INFINITY)
        }
        (None, flag) => flag,
    };
    let options = GateOptions {
        approve_cost,
        trust: Some(policy),
        ref_names: Some((pr.base_ref.clone(), pr.head_ref.clone())),
        ..GateOptions::from_flags(repo.root(), base, head.clone(), config, &args.out, &args.gate)
    };
    let publisher = RefCell::new(publisher);
    let on_plan = |facts: &PlanFacts| -> anyhow::Result<()> {
        if let Some(p) = publisher.borrow_mut().as_mut() {
            runtime.block_on(p.progress_or_warn(Some(facts)));
        }
        Ok(())
    };
    println!("{}", actions::group("promptgate: evaluating"));
    let gate = run_gate_with(&repo, &options, Some(&on_plan));
    println!("{}", actions::endgroup());
    let mut publisher = publisher.into_inner();

    let mut run = match gate {
        Ok(run) => run,
        Err(e) => {
            let message = crate::secrets::redact(&gate_error_line(&e));
            annotate_input_error(&e);
            error_side_channels(env, &format!("{e:#}"));
            if let Some(p) = publisher.as_mut()
                && let Err(publish_error) = runtime.block_on(p.could_not_finish(&message))
            {
                eprintln!("{}", crate::secrets::redact(&publish_error.to_string()));
            }
            if args.no_publish {
                super::handoff::write_error(&args.out, &message)?;
            }
            return Err(e);
        }
    };
    let evaluated = (run.results.verdict, run.results.reason.clone());
    let mut rewrite = false;
    if untrusted {
        run.results.trust.untrusted = true;
        rewrite = true;
    }
    if let Some(p) = publisher.as_mut() {
        runtime.block_on(p.apply_waiver(&mut run.results))?;
        rewrite |= run.results.waiver.is_some() || run.results.reason != evaluated.1;
        if run.results.verdict == Verdict::Waived {
            // A waived base that does not load is no longer the run's error.
            run.run_error = None;
        }
    }
    if rewrite {
        run.written = report::write_outputs(&run.results, &args.out)?;
    }
    if args.no_publish {
        run.written.push(args.out.join(super::handoff::PR_FILE));
    }

    // The changed lines of the pull request's head, where the check run is (another `--head`,
    // such as its merge commit, may number them otherwise).
    let annotations = annotations_between(&repo, &run.results, &run.results.base.sha, &pr.head_sha);
    side_channels(env, &run, &args.out, &annotations, None)?;
    super::run::print_outcome(&run);
    if let Some(a) = &run.results.trust.approval {
        eprintln!("{}", actions::inert(&crate::secrets::redact(&trust::describe(a))));
    }
    if let Some(p) = publisher.as_mut() {
        let finished = runtime.block_on(p.finish(
            &run.results,
            (evaluated.0, &evaluated.1),
            run.run_error.as_ref(),
            &annotations,
        ));
        super::handoff::published_or_said(env, finished)?;
    }
    write_dry_run(client.as_ref(), args.dry_run.as_deref())?;
    if args.no_publish {
        run.handed_on_exit_code()
    } else {
        run.exit_code()
    }
}

/// Refuses what would run untrusted code with this job's secrets: `pull_request_target` (a
/// base-repository context with secrets and a write token, whoever opened the pull request),
/// and a fork's head anywhere but in the fork-safe pair's untrusted half (`--no-publish`), a
/// maintainer's dispatch, or with `--allow-fork-head`.
fn refuse_untrusted(
    pr: &PullRequest,
    event: Option<&PullRequestEvent>,
    dispatched: bool,
    args: &CiArgs,
) -> Result<(), Error> {
    if event.is_some_and(|e| e.target) && !args.allow_pull_request_target {
        return Err(Diagnostic::new(
            "refusing to run under `pull_request_target`: it gives the job this repository's secrets and a write token whoever opened the pull request, and promptgate would run the pull request's prompts and `exec` programs with them",
        )
        .hint("trigger on `pull_request` (and the fork-safe pair for forks, see docs/github.md); if this workflow only ever evaluates code a maintainer reviewed, pass --allow-pull-request-target")
        .into());
    }
    if pr.fork && !dispatched && !args.allow_fork_head && !args.no_publish {
        return Err(Diagnostic::new(format!(
            "refusing to evaluate pull request #{}: its head is a fork's code, and this job publishes with a token (and may hold provider keys)",
            pr.number
        ))
        .hint("use the fork-safe pair (promptgate-evaluate.yml without secrets, promptgate-publish.yml to publish); a maintainer runs the keyed evaluation with promptgate-trusted.yml; --allow-fork-head overrides this after review")
        .into());
    }
    Ok(())
}

/// A maintainer's dispatch: the pull request must still be at the commit the dispatch names,
/// and the dispatcher must be an admin or maintainer (by the API, not the payload).
fn dispatched(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    pr: &PullRequest,
    sha: &str,
    actor: &str,
) -> Result<(), Error> {
    if pr.head_sha != sha {
        return Err(Error::run_with_hint(
            format!(
                "pull request #{} is at {}, not at {sha}, the commit this dispatch approves: nothing was evaluated",
                pr.number, pr.head_sha
            ),
            "review the new commit and dispatch again with its sha",
        ));
    }
    if !runtime.block_on(waiver::is_maintainer(client, actor))? {
        return Err(Error::run_with_hint(
            format!(
                "{} may not start a trusted evaluation: only repository admins and maintainers may",
                actions::inert(actor)
            ),
            "ask a maintainer to run the workflow",
        ));
    }
    eprintln!(
        "promptgate: trusted evaluation of #{} at {} dispatched by {}",
        pr.number,
        short_sha(sha),
        actions::inert(actor)
    );
    Ok(())
}

pub(super) fn connect(runtime: &tokio::runtime::Runtime, env: &ActionsEnv, args: &CiArgs) -> Result<Client, Error> {
    let repository = env.require_repository()?;
    if args.dry_run.is_some() {
        return Ok(Client::dry_run(&repository));
    }
    let Some(token) = env.token.clone() else {
        return Err(Diagnostic::new("GITHUB_TOKEN is not set: promptgate cannot publish")
            .hint(
                "pass `env: GITHUB_TOKEN: ${{ github.token }}` to the step, or run with --no-publish or --dry-run FILE",
            )
            .into());
    };
    let _entered = runtime.enter();
    Client::live(&env.api_url, token, &repository)
}

pub(super) fn settings(env: &ActionsEnv, args: &CiArgs) -> Settings {
    Settings {
        mode: args.comment.into(),
        check: !args.no_check,
        review: args.review,
        assets: (!args.no_assets && !args.asset_branch.is_empty()).then(|| AssetTarget {
            branch: args.asset_branch.clone(),
            server_url: env.server_url.clone(),
            out: args.out.clone(),
        }),
        bot_login: args.bot_login.clone(),
        details_url: env.run_url.clone(),
    }
}

/// The annotations: the changed lines of the files that affect each experiment, on the diff
/// from `base` (its merge base with `head`) to `head`.
pub(super) fn annotations_between(repo: &Repo, results: &Results, base: &str, head: &str) -> Vec<Annotation> {
    let head_sha = head;
    let head = GitTree::new(repo.root(), head_sha);
    // The diff the pull request shows: from the merge base, not from a base branch that moved.
    let merge_base = repo.merge_base(base, head_sha).unwrap_or_else(|_| base.to_owned());
    let base = GitTree::new(repo.root(), &merge_base);
    let exists = |path: &str| head.read(path).is_ok_and(|f| f.is_some());
    let changed = |path: &str| {
        let after = head.read(path).ok().flatten().unwrap_or_default();
        let before = base.read(path).ok().flatten().unwrap_or_default();
        crate::github::lines::changed(&before, &after)
    };
    check::annotations(results, &exists, &changed)
}

/// A suite error with a place becomes an annotation on that line of the file.
fn annotate_input_error(e: &anyhow::Error) {
    if let Some(Error::Input(d)) = e.downcast_ref::<Error>()
        && let Some(file) = &d.file
    {
        println!(
            "{}",
            actions::error(
                file,
                u32::try_from(d.line.unwrap_or(1)).unwrap_or(1),
                "promptgate: configuration error",
                &crate::secrets::redact(&format!(
                    "{}{}",
                    d.message,
                    d.hints.iter().map(|h| format!("\nhint: {h}")).collect::<String>()
                ))
            )
        );
    }
}

/// `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, and `::error` annotations in the log.
/// `kept`: the verdict the check shows for a trusted evaluation of the same commit that these
/// untrusted results are not published over: the outputs give that verdict and its conclusion,
/// as the check stays.
pub(super) fn side_channels(
    env: &ActionsEnv,
    run: &GateRun,
    out: &Path,
    annotations: &[Annotation],
    kept: Option<Verdict>,
) -> anyhow::Result<()> {
    let r = &run.results;
    let verdict = kept.unwrap_or(r.verdict).as_str();
    OUTPUTS_WRITTEN.set(true);
    if let Some(file) = &env.output {
        // The experiments held for a maintainer's approval are affected too: they are listed
        // in the results' `approval.experiments`, not run (a run holding its only experiment
        // said 0).
        let held = r.trust.approval.as_ref().map_or(0, |a| a.experiments.len());
        let affected = held
            + r.experiments
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
                (
                    "conclusion",
                    kept.map_or_else(|| check::conclusion_of(r), |v| check::conclusion_for(v, false))
                        .to_owned(),
                ),
            ],
        )?;
    }
    if let Some(file) = &env.step_summary {
        let kept = kept.map_or(String::new(), |v| {
            format!(
                "**Not published:** this commit already has results evaluated with secrets; its check stays `{}`, and these results of untrusted code are below for reference only.\n\n",
                check::conclusion_for(v, false)
            )
        });
        let summary = kept + &markdown::render_summary(r)? + &crate::github::comment::notes(r) + "\n";
        actions::append_summary(file, &crate::secrets::redact(&summary))?;
    }
    for a in annotations.iter().filter(|a| a.annotation_level == "failure") {
        println!("{}", actions::error(&a.path, a.start_line, &a.title, &a.message));
    }
    Ok(())
}

/// The outputs and step summary of a run that could not finish (`detail`: the whole error,
/// its location and hints too): the `verdict` output is `error` and the conclusion
/// `failure`, as the check says, so a later step keyed on them sees the error rather than
/// nothing. Failing to write them is a warning: the run's own error is the one to report.
pub(super) fn error_side_channels(env: &ActionsEnv, detail: &str) {
    if OUTPUTS_WRITTEN.replace(true) {
        return;
    }
    if let Some(file) = &env.output
        && let Err(e) = actions::write_outputs(
            file,
            &[
                ("verdict", crate::results::Verdict::Error.as_str().to_owned()),
                ("conclusion", "failure".to_owned()),
            ],
        )
    {
        eprintln!("warning: {e:#}");
    }
    super::handoff::error_summary(env, "could not finish", detail);
}

pub(super) fn write_dry_run(client: Option<&Client>, file: Option<&Path>) -> anyhow::Result<()> {
    if let (Some(client), Some(file)) = (client, file) {
        let text = serde_json::to_string_pretty(&client.recorded())? + "\n";
        std::fs::write(file, crate::secrets::redact(&text)).with_context(|| format!("writing {}", file.display()))?;
        eprintln!(
            "promptgate: dry run: nothing was sent; the requests that would have been sent are in {}",
            file.display()
        );
    }
    Ok(())
}

/// The first line of an error, for the comment and the check title.
fn gate_error_line(e: &anyhow::Error) -> String {
    match e.downcast_ref::<Error>() {
        Some(expected) => expected
            .to_string()
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("error: ")
            .to_owned(),
        None => format!("{e:#}").lines().next().unwrap_or("").to_owned(),
    }
}

pub(super) fn is_sha(s: &str) -> bool {
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
