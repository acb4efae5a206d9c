//! The hand-off between an evaluating job and a publishing one (the fork-safe pair, a
//! matrix's merge job, the Action's two steps): the files the first leaves beside its results,
//! and `promptgate ci --publish-only`, which publishes them.

use std::path::Path;

use super::ci::{PULL, connect, settings, side_channels, write_dry_run};
use super::run::GateRun;
use crate::cli::CiArgs;
use crate::error::{Diagnostic, Error};
use crate::format::short_sha;
use crate::github::check;
use crate::github::client::Client;
use crate::github::event::{self, ActionsEnv, PullRequest, Trigger};
use crate::github::publish::Publisher;
use crate::github::waiver;
use crate::report;

/// The file the evaluating job leaves for the publishing one, next to `results.json`.
pub(super) const PR_FILE: &str = "pr.json";
/// Written instead of results when the evaluating job could not finish, so the publishing job
/// can say why.
const ERROR_FILE: &str = "error.json";

/// The trusted half of the fork-safe pair (and of the Action's own evaluate-then-publish
/// steps): publishes results an evaluating job computed. The pull request is re-read from the
/// API and must still point at the commit evaluated. Results that came through a
/// `workflow_run` are a fork's code's word: never published as a success.
pub(super) fn publish_only(
    runtime: &tokio::runtime::Runtime,
    env: &ActionsEnv,
    repo_dir: &Path,
    dir: &Path,
    args: &CiArgs,
) -> anyhow::Result<u8> {
    let handoff_path = dir.join(PR_FILE);
    let trigger = env.trigger()?;
    let Handoff { pr: claimed, evaluated } = match (read_small(&handoff_path), &trigger) {
        (Ok(text), _) => serde_json::from_str(&text).map_err(|e| {
            Error::from(Diagnostic::new(format!(
                "{} is not a pr.json: {e}",
                handoff_path.display()
            )))
        })?,
        // On the pull request's own event (a matrix's merge job, the Action's publishing
        // step) the event names it: an evaluation that crashed before writing pr.json is
        // still published as one that could not finish. A `workflow_run` has no such word.
        (Err(e), Trigger::PullRequest { pr, .. }) if e.kind() == std::io::ErrorKind::NotFound => Handoff {
            pr: pr.clone(),
            evaluated: None,
        },
        (Err(e), _) => {
            return Err(Error::from(
                Diagnostic::new(format!("cannot read {}: {e}", handoff_path.display()))
                    .hint("the evaluating job writes it with `promptgate ci --no-publish`; if it failed before that, its log says why"),
            )
            .into());
        }
    };
    let repository = env.require_repository()?;
    if claimed.repository != repository {
        return Err(Error::run(format!("the results are for {}, not {repository}", claimed.repository)).into());
    }
    // The files come from an evaluation that ran the pull request's code: on an event that
    // names a pull request, they may speak only of that one (and, on its own event, of the
    // commit the event is about), never get another's results published.
    let named = match &trigger {
        Trigger::PullRequest { pr, .. } => Some((pr.number, Some(pr.head_sha.as_str()))),
        Trigger::Dispatch { pr: Some(number), .. } => Some((*number, None)),
        Trigger::WorkflowRun { pull_requests, .. } => {
            // A same-repository run names its pull requests; a fork's names none.
            if !pull_requests.is_empty() && !pull_requests.contains(&claimed.number) {
                return Err(Error::run(format!(
                    "{} names pull request #{}, which the evaluating workflow run is not about: nothing was published",
                    handoff_path.display(),
                    claimed.number
                ))
                .into());
            }
            None
        }
        Trigger::Dispatch { pr: None, .. } => None,
        // Nothing there says which pull request or commit was evaluated, nor whose code it was.
        Trigger::PullRequestComment { .. } | Trigger::Other(_) => {
            return Err(Error::from(
                Diagnostic::new("--publish-only publishes an evaluation for the event that ran it: a pull request's, a `workflow_run` or a maintainer's `workflow_dispatch`")
                    .hint("run it in the job that evaluated (the Action's publish step), in the fork-safe publish workflow, or in a matrix's merge job"),
            )
            .into());
        }
    };
    if let Some((number, sha)) = named
        && (claimed.number != number || sha.is_some_and(|sha| sha != claimed.head_sha))
    {
        return Err(Error::run(format!(
            "{} names pull request #{} at {}, but this job's event is about #{number}{}: nothing was published",
            handoff_path.display(),
            claimed.number,
            short_sha(&claimed.head_sha),
            sha.map(|s| format!(" at {}", short_sha(s))).unwrap_or_default()
        ))
        .into());
    }
    // The evaluating run ended badly: say so, whatever files it left.
    let failed = match &trigger {
        Trigger::WorkflowRun { conclusion, .. } => conclusion.as_deref().filter(|c| *c != "success"),
        _ => None,
    };
    let error = match read_small(&dir.join(ERROR_FILE)) {
        Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(format!("the evaluation left an {ERROR_FILE} that cannot be read: {e}")),
    };
    let results_path = dir.join("results.json");
    if error.is_some() || failed.is_some() || !results_path.is_file() {
        let message = match (error, failed) {
            (Some(message), _) => message,
            (None, Some(conclusion)) => format!("the evaluating workflow run concluded `{conclusion}`"),
            (None, None) => format!("{} is missing", results_path.display()),
        };
        let message = crate::secrets::redact(&message);
        same_commit(&trigger, &claimed)?;
        let client = connect(runtime, env, args)?;
        let pr = current_pull_request(runtime, &client, &claimed)?;
        evaluated_this_head(&trigger, &pr)?;
        if pr.head_sha == claimed.head_sha {
            let mut publisher = runtime.block_on(Publisher::connect(&client, &pr, settings(env, args)))?;
            // Only when the state holds trusted results is it asked whether this evaluation was
            // untrusted (a dispatch asks the API); a failed question keeps them.
            let keep = publisher.trusted_results(&claimed.head_sha).is_some()
                && untrusted(runtime, &client, &trigger, &claimed.head_sha, &pr, args).unwrap_or(true);
            if !(keep && publisher.keeps_trusted_results(&claimed.head_sha)) {
                // The outputs say what the check says.
                super::ci::error_side_channels(env, &message);
                runtime.block_on(publisher.could_not_finish(&message))?;
            } else {
                // The check keeps the trusted verdict: no `verdict=error` either.
                super::ci::outputs_settled();
            }
        }
        write_dry_run(Some(&client), args.dry_run.as_deref())?;
        return Err(Error::run_with_hint(
            format!("the evaluation of #{} could not finish: {message}", claimed.number),
            "the evaluating job's log says more",
        )
        .into());
    }
    let mut results = report::read_results(&results_path)?;
    if let Some(shard) = results.shard {
        return Err(Error::from(
            Diagnostic::new(format!(
                "{} holds shard {}/{} only: its verdict covers a share of the cases",
                results_path.display(),
                shard.index,
                shard.count
            ))
            .hint("run `promptgate merge shard-*/results.json --out DIR` first and publish DIR"),
        )
        .into());
    }
    same_commit(&trigger, &claimed)?;
    let evaluated = evaluated_commit(&trigger, &claimed, evaluated, repo_dir)?;
    if results.head.sha != evaluated {
        return Err(Error::run(format!(
            "results.json is for commit {}, pr.json for {evaluated}",
            results.head.sha
        ))
        .into());
    }
    let client = connect(runtime, env, args)?;
    let pr = current_pull_request(runtime, &client, &claimed)?;
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
    evaluated_this_head(&trigger, &pr)?;
    let untrusted = untrusted(runtime, &client, &trigger, &claimed.head_sha, &pr, args)?;
    // The verdict is the evaluating job's, but the waiver is ours to decide: an untrusted job
    // cannot waive its own regression.
    waiver::withdraw(&mut results);
    results.trust.untrusted = untrusted;
    let evaluated = (results.verdict, results.reason.clone());
    let mut publisher = runtime.block_on(Publisher::connect(&client, &pr, settings(env, args)))?;
    runtime.block_on(publisher.apply_waiver(&mut results))?;
    let written = report::write_outputs(&results, &args.out)?;
    let run = GateRun {
        results,
        written,
        run_error: None,
    };
    // On the changed lines when the checkout holds both commits (the Action's publishing step
    // runs in the evaluating job's checkout); else, as a fork-safe publisher that checked
    // nothing out, on the files' first lines. The lines are the pull request's head's, where
    // the check run is (an evaluated merge commit's lines may differ); the head and the base
    // are the API's, and only hexadecimal names reach git.
    let (head, base) = (&pr.head_sha, &pr.base_sha);
    let annotations = match crate::workspace::Repo::open(repo_dir) {
        Ok(repo)
            if super::ci::is_sha(head) && super::ci::is_sha(base) && repo.has_commit(head) && repo.has_commit(base) =>
        {
            super::ci::annotations_between(&repo, &run.results, base, head)
        }
        _ => check::annotations(&run.results, &|_| true, &|_| Vec::new()),
    };
    // Untrusted results are not published over a trusted evaluation of the same commit
    // (`Publisher::finish`): the outputs give the check's conclusion as it stays (the audit:
    // `conclusion=action_required` beside a check left at `success`).
    // The step's exit code follows what stands, too.
    let kept = (run.results.trust.untrusted)
        .then(|| publisher.trusted_verdict_shown(&pr.head_sha))
        .flatten();
    side_channels(env, &run, &args.out, &annotations, kept)?;
    super::run::print_outcome(&run);
    let finished = runtime.block_on(publisher.finish(&run.results, (evaluated.0, &evaluated.1), None, &annotations));
    published_or_said(env, finished)?;
    write_dry_run(Some(&client), args.dry_run.as_deref())?;
    match kept {
        Some(crate::results::Verdict::Pass | crate::results::Verdict::Waived) => Ok(crate::error::exit::PASS),
        Some(crate::results::Verdict::Fail | crate::results::Verdict::NeedsApproval) => Ok(crate::error::exit::FAIL),
        Some(crate::results::Verdict::Error) => Ok(crate::error::exit::RUN),
        None => run.exit_code(),
    }
}

/// Whether the evaluation handed on is untrusted code's word: a `workflow_run` (a fork's
/// evaluation, or any run the pair cannot tell from one), a dispatch by someone who is not an
/// admin or maintainer or not for the commit evaluated, and otherwise a fork's head.
fn untrusted(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    trigger: &Trigger,
    evaluated_sha: &str,
    pr: &PullRequest,
    args: &CiArgs,
) -> Result<bool, Error> {
    Ok(match trigger {
        Trigger::WorkflowRun { .. } => true,
        Trigger::Dispatch { actor, sha, .. } => {
            sha.as_deref() != Some(evaluated_sha) || !runtime.block_on(waiver::is_maintainer(client, actor))?
        }
        _ => pr.fork && !args.allow_fork_head,
    })
}

/// A `workflow_run`'s evaluation is of its own head commit: `pr.json` must name that commit.
fn same_commit(trigger: &Trigger, claimed: &PullRequest) -> Result<(), Error> {
    match trigger {
        Trigger::WorkflowRun { head_sha, .. } if *head_sha != claimed.head_sha => Err(Error::run(format!(
            "the results are for commit {}, but the workflow run evaluated {head_sha}",
            claimed.head_sha
        ))),
        _ => Ok(()),
    }
}

/// A `workflow_run` evaluated one repository's branch: the pull request published to must have
/// its head there, not only at the same commit (a fork can push another pull request's commit
/// to a branch of its own, and name that pull request in its `pr.json`). The repository matches
/// by id (which a rename keeps) or by name; what a side does not say (a payload without the
/// run's head, a deleted fork's `head.repo: null`) is not held against it, with a warning, and
/// the commit still binds.
fn evaluated_this_head(trigger: &Trigger, pr: &PullRequest) -> Result<(), Error> {
    let Trigger::WorkflowRun {
        head_repository,
        head_repository_id,
        head_branch,
        ..
    } = trigger
    else {
        return Ok(());
    };
    let ids = head_repository_id
        .zip(pr.head_repository_id)
        .map(|(run, head)| run == head);
    let names = (head_repository.as_deref())
        .zip(pr.head_repository.as_deref())
        .map(|(run, head)| run.eq_ignore_ascii_case(head));
    let same_repository = match (ids, names) {
        (None, None) => None,
        (ids, names) => Some(ids == Some(true) || names == Some(true)),
    };
    let same_branch = head_branch.as_deref().map(|branch| branch == pr.head_ref);
    if same_repository == Some(false) || same_branch == Some(false) {
        return Err(Error::run_with_hint(
            format!(
                "the evaluating workflow run was for {}:{}, but pull request #{}'s head is {}:{}: nothing was published",
                head_repository.as_deref().unwrap_or("an unnamed repository"),
                head_branch.as_deref().unwrap_or("an unnamed branch"),
                pr.number,
                pr.head_repository.as_deref().unwrap_or("a deleted repository"),
                pr.head_ref
            ),
            "the run's pr.json names another pull request than the one it evaluated, or the branch was renamed since: a push to the pull request evaluates it again",
        ));
    }
    if same_repository.is_none() || same_branch.is_none() {
        eprintln!(
            "promptgate: warning: the workflow run or pull request #{} does not name its head's repository or branch; bound to the pull request by commit only",
            pr.number
        );
    }
    Ok(())
}

/// The pull request as the API has it now (a dry run, which reads nothing, takes `claimed`).
fn current_pull_request(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    claimed: &PullRequest,
) -> Result<PullRequest, Error> {
    if client.is_dry_run() {
        return Ok(claimed.clone());
    }
    let value = runtime.block_on(client.get(&client.repo_route(&format!("/pulls/{}", claimed.number)), PULL))?;
    event::pull_request_from_api(&value, &client.repository)
}

/// Refuses to publish for a pull request whose head GitHub says is another commit than the
/// event's: a re-run of an older push's workflow would put that push's numbers (or its
/// "evaluating") over the newer one's, and the state's results would go back to the old commit.
/// Asked of re-runs only (`GITHUB_RUN_ATTEMPT` above 1): right after a push GitHub may still
/// answer with the previous head, and a first run refused for that would leave a required
/// check missing.
/// The run for the newer commit publishes its own. A pull request GitHub does not show (no
/// `pull-requests: read`, say) is not checked: the event's head stands.
pub(super) fn not_moved_on(runtime: &tokio::runtime::Runtime, client: &Client, pr: &PullRequest) -> Result<(), Error> {
    if client.is_dry_run() {
        return Ok(());
    }
    let route = client.repo_route(&format!("/pulls/{}", pr.number));
    let Ok(value) = runtime.block_on(client.try_get(&route, super::ci::PULL))? else {
        return Ok(());
    };
    match value["head"]["sha"].as_str() {
        Some(now) if now != pr.head_sha => Err(Error::run_with_hint(
            format!(
                "pull request #{} has moved on to {}; this run is for {}",
                pr.number,
                short_sha(now),
                short_sha(&pr.head_sha)
            ),
            "nothing was published: the run for the newer commit publishes its own results (a re-run of an older push's workflow does not)",
        )),
        _ => Ok(()),
    }
}

/// What `pr.json` holds: the pull request, and the commit evaluated when `--head` named another
/// than its head (the Action's `head` input: the pull request's merge commit, say).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Handoff {
    #[serde(flatten)]
    pub pr: PullRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated: Option<String>,
}

/// The commit the results must be of: the one `pr.json` says was evaluated, which may differ
/// from the pull request's head only on the pull request's own event (the Action's publishing
/// step: the workflow chose the commit). A fork's evaluation handed on by a `workflow_run`, or
/// a maintainer's dispatch of the commit they reviewed, is of the head.
///
/// `pr.json` is written after the pull request's code ran in the same job: another commit must
/// be named in full, be in the checkout (`repo_dir`) and hold the head in its history (the merge
/// commit does), so the results cannot speak for an unrelated commit.
fn evaluated_commit(
    trigger: &Trigger,
    claimed: &PullRequest,
    evaluated: Option<String>,
    repo_dir: &Path,
) -> Result<String, Error> {
    let full = |sha: &str| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    let contains_head = |other: &str| {
        full(other)
            && full(&claimed.head_sha)
            && crate::workspace::Repo::open(repo_dir)
                .is_ok_and(|repo| repo.has_commit(other) && repo.is_ancestor(&claimed.head_sha, other))
    };
    match evaluated {
        Some(other)
            if other != claimed.head_sha
                && matches!(trigger, Trigger::PullRequest { .. })
                && !contains_head(&other) =>
        {
            Err(Error::run_with_hint(
                format!(
                    "pr.json says commit {} was evaluated, which is not pull request #{}'s head {} nor a commit of this checkout built on it: nothing was published",
                    short_sha(&other),
                    claimed.number,
                    short_sha(&claimed.head_sha)
                ),
                "another head (the Action's `head` input) is published by the job that checked it out and evaluated it, and must contain the pull request's head (its merge commit does)",
            ))
        }
        Some(other) if other != claimed.head_sha && !matches!(trigger, Trigger::PullRequest { .. }) => {
            Err(Error::run_with_hint(
                format!(
                    "pr.json says commit {} was evaluated, not pull request #{}'s head {}: nothing was published",
                    short_sha(&other),
                    claimed.number,
                    short_sha(&claimed.head_sha)
                ),
                "only a run on the pull request's own event may evaluate another commit (the Action's `head` input); a fork-safe or dispatched evaluation is of the head",
            ))
        }
        Some(other) => Ok(other),
        None => Ok(claimed.head_sha.clone()),
    }
}

pub(super) fn write_handoff(out: &Path, handoff: &Handoff) -> anyhow::Result<()> {
    crate::output::create_dir(out)?;
    let handoff = serde_json::to_string_pretty(handoff)? + "\n";
    crate::output::write_file(&out.join(PR_FILE), handoff.as_bytes())?;
    Ok(())
}

pub(super) fn write_error(out: &Path, message: &str) -> anyhow::Result<()> {
    crate::output::create_dir(out)?;
    let text = serde_json::to_string_pretty(&serde_json::json!({ "message": message }))? + "\n";
    crate::output::write_file(&out.join(ERROR_FILE), text.as_bytes())?;
    Ok(())
}

/// The most `pr.json` and `error.json` hold: a few hundred bytes each when the evaluation wrote
/// them, which ran the pull request's code and may have written anything there.
const MAX_SMALL_FILE: u64 = 64 * 1024;

/// A hand-off file's text, refused (as invalid data) past [`MAX_SMALL_FILE`].
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SMALL_FILE + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SMALL_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB", MAX_SMALL_FILE / 1024),
        ));
    }
    Ok(text)
}

/// What finishing the publication (the comment, the check run) came to: a failure keeps the
/// outputs, which name the evaluation's verdict, and the step summary says what GitHub refused,
/// as it does for every other GitHub error.
pub(super) fn published_or_said(env: &ActionsEnv, finished: Result<(), Error>) -> anyhow::Result<()> {
    if let Err(e) = finished {
        error_summary(env, "results not fully published", &format!("{e:#}"));
        return Err(e.into());
    }
    Ok(())
}

/// Appends `detail` to the step summary under "promptgate: `heading`".
pub(super) fn error_summary(env: &ActionsEnv, heading: &str, detail: &str) {
    if let Some(file) = &env.step_summary {
        // Redacted, and escaped line by line: it may quote the pull request's own files.
        let lines: Vec<String> = crate::secrets::redact(detail)
            .lines()
            .take(40)
            .map(|line| crate::report::escape::escape_untrusted(line, 1_000))
            .collect();
        let summary = format!("## promptgate: {heading}\n\n{}\n", lines.join("  \n"));
        if let Err(e) = crate::github::actions::append_summary(file, &summary) {
            eprintln!("warning: {e:#}");
        }
    }
}
