//! Publishing a run to the pull request: the sticky comment (with the state promptgate keeps
//! in it), the check run and the optional review, in the order a run needs them —
//! [`Publisher::connect`] before anything is evaluated, [`Publisher::progress`] before the first
//! call, then [`Publisher::apply_waiver`] and [`Publisher::finish`] on the results, or
//! [`Publisher::could_not_finish`]. [`Publisher::republish`] is a waiver's whole run: it
//! re-publishes the last results from the comment's state and evaluates nothing.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde_json::Value;

use super::check::{self, Annotation};
use super::client::Client;
use super::event::PullRequest;
use super::state::{self, Published, State};
use super::{CommentMode, assets, comment, review, waiver};
use crate::error::Error;
use crate::plan::PlanFacts;
use crate::report::{charts, markdown};
use crate::results::{ExperimentStatus, Results, Verdict};

/// What to publish, from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: CommentMode,
    pub check: bool,
    pub review: bool,
    /// Where the chart PNGs go, unless `--no-assets`.
    pub assets: Option<AssetTarget>,
    /// The login our comments are posted as, when the token cannot say.
    pub bot_login: Option<String>,
    /// The check run's details link (the workflow run).
    pub details_url: Option<String>,
}

#[derive(Clone, Debug)]
pub struct AssetTarget {
    pub branch: String,
    pub server_url: String,
    /// The run's output folder, holding `charts/*.png`.
    pub out: PathBuf,
}

/// A verdict re-published by a waiver: what the check and the exit code say.
#[derive(Clone, Debug, PartialEq)]
pub struct Republished {
    pub verdict: Verdict,
    pub reason: String,
    pub conclusion: &'static str,
}

/// How many times a waiver's re-publication starts over when a gate run wrote the comment
/// meanwhile.
const REPUBLISH_TRIES: u32 = 3;

/// What [`Publisher::republish`] returns.
type Republishing = Result<Option<(Republished, Result<(), Error>)>, Error>;

pub struct Publisher<'a> {
    client: &'a Client,
    pub pr: PullRequest,
    bot: String,
    /// The token did not say who it is (an installation token): `bot` is told from the
    /// comments (`github::logins_among`, `comment::own_among`) each time they are read, until
    /// a comment this run wrote tells it.
    installation: bool,
    comments: Vec<Value>,
    /// Whether `comment::own_among` was asked this run.
    probed: bool,
    sticky: Option<u64>,
    /// The comment this run wrote: the one it keeps writing, though the listing lags behind
    /// or shows another token's promptgate comment first.
    written: Option<u64>,
    /// The state of the sticky comment (a new one when there is none).
    pub state: State,
    settings: Settings,
}

impl<'a> Publisher<'a> {
    /// Who the token posts as, the pull request's comments, and promptgate's sticky comment
    /// with its state.
    pub async fn connect(client: &'a Client, pr: &PullRequest, settings: Settings) -> Result<Publisher<'a>, Error> {
        let known = match settings.bot_login.as_deref().filter(|l| !l.is_empty()) {
            Some(login) => Some(login.to_owned()),
            None => super::identity(client).await?,
        };
        let mut publisher = Publisher {
            client,
            pr: pr.clone(),
            installation: known.is_none(),
            bot: known.unwrap_or_else(|| super::ACTIONS_BOT.to_owned()),
            comments: Vec::new(),
            probed: false,
            sticky: None,
            written: None,
            state: State::new(&pr.head_sha),
            settings,
        };
        publisher.refresh().await?;
        Ok(publisher)
    }

    /// Reads the comments again: a waiver's run may have recorded a waiver meanwhile.
    async fn refresh(&mut self) -> Result<(), Error> {
        self.comments = comment::list(self.client, &self.pr).await?;
        if self.installation {
            let logins = super::logins_among(&self.comments);
            self.bot = logins[0].clone();
            if logins.len() > 1 && !self.probed {
                // Promptgate comments by more than one bot (the repository changed tokens): the
                // one this token may edit is its own, and its state is the one to carry on.
                // Asked once a run.
                self.probed = true;
                if let Some(login) = comment::own_among(self.client, &self.comments, &logins).await {
                    self.bot = login;
                    self.installation = false;
                }
            }
        }
        // A comment this run wrote may not be listed yet (the list lags behind): keep its id.
        self.sticky = self
            .written
            .or_else(|| comment::find_sticky(&self.comments, &self.bot))
            .or(self.sticky);
        let found = self
            .sticky
            .and_then(|id| self.comments.iter().find(|c| c["id"].as_u64() == Some(id)))
            .and_then(|c| c["body"].as_str())
            .and_then(state::parse);
        if let Some(found) = found {
            // Keep approvals granted by this run before the refresh.
            let approvals = std::mem::take(&mut self.state.approvals);
            self.state = found;
            for a in approvals {
                self.state.approve(a);
            }
        }
        Ok(())
    }

    /// Writes promptgate's comment (`comment::upsert`). Once written, who the token posts as
    /// is known (the comment it edited or posted), and that comment is the one this run keeps.
    async fn upsert(&mut self, body: &str) -> Result<(), Error> {
        let written = comment::upsert(self.client, &self.pr, &mut self.bot, &mut self.sticky, body).await;
        if written.is_ok() {
            self.written = self.sticky;
            self.installation = false;
        }
        written
    }

    /// Replaces the previous report with "evaluating…" before the first call, keeping the
    /// state (the last results, the waiver, the approvals) under it.
    pub async fn progress(&mut self, facts: Option<&PlanFacts>) -> Result<(), Error> {
        self.state.head_sha = self.pr.head_sha.clone();
        // Without the plan (the Action's prepare step) nothing is known to be affected yet: an
        // `affected` comment waits for the results, which say.
        let affected = facts.map_or(0, |f| f.experiments);
        if self.sticky.is_some() || comment::wanted(self.settings.mode, affected, None) {
            let body = state::body(&comment::progress_body(facts, &self.pr.head_sha), "", &self.state);
            self.upsert(&body).await?;
        }
        Ok(())
    }

    /// [`Publisher::progress`], whose failure stops nothing: the evaluation goes on and its
    /// results are published at the end, the check run carrying the verdict even when the
    /// comment cannot be written then either (docs/github.md, Errors). Says what failed.
    pub async fn progress_or_warn(&mut self, facts: Option<&PlanFacts>) {
        if let Err(e) = self.progress(facts).await {
            let text = crate::secrets::redact(&e.to_string());
            println!(
                "::warning title=promptgate: progress comment not written::{}",
                super::actions::escape_data(&format!(
                    "{}\nThe evaluation goes on; its results are published when it ends.",
                    text.trim_start_matches("error: ")
                ))
            );
        }
    }

    /// The results of `sha` evaluated with secrets that the state holds, if any: untrusted
    /// code's evaluation of the same commit (a fork's pull request closed and reopened re-runs
    /// the fork-safe pair), finished or failed, adds nothing to them.
    pub fn trusted_results(&self, sha: &str) -> Option<&Published> {
        (self.state.results.as_ref()).filter(|p| !p.untrusted && p.sha == sha)
    }

    /// The verdict the check shows for `sha`'s trusted results in the state, when it has any:
    /// theirs, or waived when the state's waiver covers their regressions (as
    /// [`Publisher::republish`] publishes them).
    pub fn trusted_verdict_shown(&self, sha: &str) -> Option<Verdict> {
        let trusted = self.trusted_results(sha)?;
        Some(match &self.state.waiver {
            Some(w) if trusted.waivable() && waiver::cover(w, &trusted.regressions_to_waive()).is_ok() => {
                Verdict::Waived
            }
            _ => trusted.verdict,
        })
    }

    /// Whether untrusted code's evaluation of `sha` is kept from being published over the
    /// state's [`Publisher::trusted_results`], saying so when it is.
    pub fn keeps_trusted_results(&self, sha: &str) -> bool {
        let Some(trusted) = self.trusted_results(sha) else {
            return false;
        };
        eprintln!(
            "promptgate: {} already has results evaluated with secrets ({}); this evaluation without them, by untrusted code, is not published over them",
            crate::format::short_sha(&trusted.sha),
            trusted.verdict.as_str()
        );
        true
    }

    pub async fn could_not_finish(&mut self, message: &str) -> Result<(), Error> {
        let head = self.pr.head_sha.clone();
        let mut commented = Ok(());
        if self.sticky.is_some() {
            let body = state::body(&comment::failed_body(message, &head), "", &self.state);
            commented = self.upsert(&body).await;
        }
        // The check carries the outcome whether or not the comment could be written.
        if self.settings.check {
            let body = check::body(
                &head,
                "failure",
                &format!("promptgate could not finish: {}", crate::secrets::redact(message)),
                // The message may be a fork's (its error.json): escaped like any untrusted text.
                &format!(
                    "The gate stopped before a verdict: {}",
                    crate::report::escape::escape_untrusted(&crate::secrets::redact(message), 1_000)
                ),
                &[],
                self.settings.details_url.as_deref(),
            );
            first_of(commented, check::create(self.client, &body).await)?;
            return Ok(());
        }
        commented
    }

    /// Applies the waiver in force, as the sticky comment recorded it, to failing results: the
    /// verdict becomes `waived` when the waiver covers every regression, and otherwise the
    /// reason says what it does not cover. A waiver that was never bound to results (given
    /// while none were published) or whose label or comment is gone counts for nothing.
    pub async fn apply_waiver(&mut self, results: &mut Results) -> Result<(), Error> {
        results.waiver = None;
        if !crate::verdict::waivable(results) {
            return Ok(());
        }
        self.refresh().await?;
        // The state is a comment anyone with write access can edit: the waiver it records
        // counts only while GitHub still shows it given, by that maintainer, from that source.
        let confirmed = match &self.state.waiver {
            Some(w) => waiver::confirmed(self.client, &self.pr, &self.comments, w).await?,
            None => false,
        };
        match &self.state.waiver {
            Some(w) if confirmed => {
                let w = w.clone();
                waiver::apply(results, &w);
            }
            Some(w) => {
                eprintln!(
                    "promptgate: the waiver by {} no longer counts: its {} is gone, is not theirs, or they are no longer an admin or maintainer",
                    super::actions::inert(&w.by),
                    w.via
                );
                self.state.waiver = None;
            }
            None => {}
        }
        Ok(())
    }

    /// Publishes finished results: the comment (report, notes, state), the check run, the review.
    /// `evaluated` is the verdict and reason before any waiver, which the state keeps so that a
    /// withdrawn waiver can be re-published without evaluating.
    pub async fn finish(
        &mut self,
        results: &Results,
        evaluated: (Verdict, &str),
        run_error: Option<&Error>,
        annotations: &[Annotation],
    ) -> Result<(), Error> {
        // A fork's re-run (its pull request closed and reopened) evaluated without secrets adds
        // nothing to a maintainer's evaluation of the same commit: it is not published over it.
        // The pull request's head: the commit the check, the state and a waiver are bound to,
        // which GitHub shows and branch protection reads. The results' head is the commit
        // evaluated, another only when the workflow named one (`--head`: its merge commit, say).
        let head = self.pr.head_sha.clone();
        if results.trust.untrusted && self.keeps_trusted_results(&head) {
            return Ok(());
        }
        self.state.head_sha = head.clone();
        let mut published = Published::of(results, evaluated.0, evaluated.1, self.client.now());
        published.sha = head.clone();
        self.state.results = Some(published);
        // A base that does not load is an `error` verdict on a run that finished: the check
        // says so by its verdict, not as a run that could not finish.
        let run_error = run_error.filter(|_| !crate::verdict::base_error_only(results));
        let affected = results
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .count()
            + results.trust.approval.as_ref().map_or(0, |a| a.experiments.len());
        let mut commented = Ok(());
        if self.sticky.is_some() || comment::wanted(self.settings.mode, affected, Some(results.verdict)) {
            let images = self.publish_images(results).await;
            let report = markdown::render_report_with_images(results, &images)
                .map_err(|e| Error::run(format!("rendering the report: {e:#}")))?;
            let body = state::body(&report, &comment::notes(results), &self.state);
            commented = self.upsert(&body).await;
            if let (Ok(()), Some(kept)) = (&commented, self.written) {
                comment::remove_newer(self.client, &self.comments, &self.bot, kept).await;
            }
        }
        // The check carries the verdict whether or not the comment could be written (a required
        // check must not go missing because a comment was deleted or GitHub failed once); the
        // comment's error is the run's after it.
        if self.settings.check {
            let summary = match markdown::render_summary(results) {
                Ok(summary) => summary,
                Err(e) => return first_of(commented, Err(Error::run(format!("rendering the summary: {e:#}")))),
            };
            let (conclusion, title) = match run_error {
                Some(e) => (
                    "failure",
                    format!("promptgate could not finish: {}", first_line(&e.to_string())),
                ),
                None => (check::conclusion_of(results), check::title(results)),
            };
            let body = check::body(
                &head,
                conclusion,
                &title,
                &(summary + &comment::notes(results)),
                annotations,
                self.settings.details_url.as_deref(),
            );
            commented = first_of(commented, check::create(self.client, &body).await);
        }
        // Untrusted code's verdict neither requests changes nor dismisses a review.
        if self.settings.review && run_error.is_none() && !results.trust.untrusted {
            commented = first_of(
                commented,
                review::sync(self.client, &self.pr, &self.bot, results.verdict, &results.reason).await,
            );
        }
        commented
    }

    /// A waiver's run: re-publishes the last results with the waiver now in force, evaluating
    /// nothing. A new waiver is bound to the results last published (their commit and
    /// regressions); the one already recorded stays as it was bound; a withdrawn one is dropped.
    /// `None` when promptgate has published no results on this pull request yet. A waiver given
    /// before the results were published does not accept them; the one this run's event gave
    /// (`fresh`) is dated by the API unless that date cannot be its ([`waiver::Fresh::given_at`]).
    /// What was re-published comes back with the error of a step that failed after the check
    /// carried it (the comment, the review), for the outputs to say what the check says.
    pub async fn republish(&mut self, fresh: waiver::Fresh) -> Republishing {
        self.republish_within(fresh, REPUBLISH_TRIES).await
    }

    /// [`Publisher::republish`], starting over from the comment as it is now when a gate run
    /// wrote it while this one looked the waiver up (its permission lookups take seconds): the
    /// waiver's run wrote the older results back over the newer ones. Up to `tries` times.
    fn republish_within(
        &mut self,
        fresh: waiver::Fresh,
        tries: u32,
    ) -> Pin<Box<dyn Future<Output = Republishing> + '_>> {
        Box::pin(async move { self.republish_once(fresh, tries).await })
    }

    async fn republish_once(&mut self, fresh: waiver::Fresh, tries: u32) -> Republishing {
        let Some(published) = self.state.results.clone() else {
            return Ok(None);
        };
        let given = waiver::find(self.client, &self.pr, &self.comments, &self.bot).await?;
        let recorded = self
            .state
            .waiver
            .clone()
            .filter(|w| waiver::still_given(w, &self.pr, &self.comments));
        self.state.waiver = match (given, recorded) {
            (Some(given), Some(recorded)) if given.source_id == recorded.source_id => Some(recorded),
            // A waiver given before these results were published accepted earlier ones (an
            // old `/promptgate accept` comment left when a later label is removed): not these.
            (Some(given), _)
                if published.accepts_waiver_given_at(fresh.given_at(&given, &self.client.now()).as_deref()) =>
            {
                Some(waiver::bind(given, &published))
            }
            (Some(given), _) => {
                eprintln!(
                    "promptgate: the waiver by {} ({}) was given before these results were published: it does not accept them",
                    super::actions::inert(&given.by),
                    given.via
                );
                None
            }
            (None, _) => None,
        };
        let (verdict, reason) = match (&self.state.waiver, published.verdict) {
            // Untrusted results are matched by name, as the waiver bound to them holds them
            // (their numbers are the fork's word); they stay `action_required` when waived.
            (Some(w), evaluated) if published.waivable() => match waiver::cover(w, &published.regressions_to_waive()) {
                Ok(()) => (
                    Verdict::Waived,
                    format!(
                        "{} by {}: {}",
                        crate::report::words::accepted(published.any_regression()),
                        w.by,
                        w.reason
                    ),
                ),
                Err(uncovered) => (
                    evaluated,
                    format!(
                        "{}; the waiver by {} does not cover {}",
                        published.reason,
                        w.by,
                        uncovered.join(", ")
                    ),
                ),
            },
            _ => (published.verdict, published.reason.clone()),
        };
        let conclusion = check::conclusion_for(verdict, published.untrusted);
        let sticky_body = self
            .sticky
            .and_then(|id| self.comments.iter().find(|c| c["id"].as_u64() == Some(id)))
            .and_then(|c| c["body"].as_str())
            .unwrap_or("")
            .to_owned();
        let mut report = state::report_part(&sticky_body).to_owned();
        // The comment shows these results (not "evaluating" a newer push): its heading follows.
        if self.state.head_sha == published.sha {
            report = comment::with_heading(&report, &comment::heading(verdict, published.any_regression(), &reason));
        }
        let mut notes = String::new();
        if published.untrusted {
            notes.push_str("\n🔓 **Evaluated without secrets by untrusted code** (a fork's change, run by the fork-safe workflow).\n");
        }
        let applied = self.state.waiver.clone().filter(|_| verdict == Verdict::Waived);
        if let Some(w) = &applied {
            notes.push_str(&comment::waiver_note(w));
        }
        let body = state::body(&report, &notes, &self.state);
        if tries > 1 && self.written_since(&sticky_body).await? {
            eprintln!(
                "promptgate: the promptgate comment changed while the waiver was looked up; starting over from it"
            );
            self.refresh().await?;
            return self.republish_within(fresh, tries - 1).await;
        }
        let mut commented = self.upsert(&body).await;
        if self.settings.check {
            let title = check::title_for(verdict, published.any_regression(), &reason, published.untrusted);
            let summary = format!(
                "Re-published without a new evaluation: {}\n\nThe numbers are in the promptgate comment.",
                match &applied {
                    Some(w) => format!("a waiver by {} applies.", w.by),
                    None if self.state.waiver.is_some() =>
                        "the waiver in force does not cover these results.".to_owned(),
                    None => "no waiver is in force.".to_owned(),
                }
            );
            let body = check::body(
                &published.sha,
                conclusion,
                &title,
                &summary,
                &[],
                self.settings.details_url.as_deref(),
            );
            commented = first_of(commented, check::create(self.client, &body).await);
        }
        if self.settings.review {
            commented = first_of(
                commented,
                review::sync(self.client, &self.pr, &self.bot, verdict, &reason).await,
            );
        }
        Ok(Some((
            Republished {
                verdict,
                reason,
                conclusion,
            },
            commented,
        )))
    }

    /// Whether the sticky comment's body is no longer `read` (another run wrote it since).
    async fn written_since(&self, read: &str) -> Result<bool, Error> {
        let Some(id) = self.sticky.filter(|_| !self.client.is_dry_run()) else {
            return Ok(false);
        };
        let now = comment::list(self.client, &self.pr).await?;
        Ok(now
            .iter()
            .find(|c| c["id"].as_u64() == Some(id))
            .and_then(|c| c["body"].as_str())
            .is_some_and(|body| body != read))
    }

    /// Publishes the run's chart PNGs and returns their URLs by chart name. A failure (most
    /// often a token without `contents: write`) is a warning: the comment falls back to the
    /// text form of the charts, and the gate's verdict stands.
    async fn publish_images(&self, results: &Results) -> BTreeMap<String, String> {
        let Some(target) = &self.settings.assets else {
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
            &results.head.sha,
            &images,
        )
        .await
        {
            Ok(_) if self.client.is_dry_run() => {
                eprintln!(
                    "promptgate: dry run: would publish {} chart image(s) to `{}` (the comment shows the text charts)",
                    images.len(),
                    target.branch
                );
                BTreeMap::new()
            }
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
                    super::actions::escape_data(&format!(
                        "{}\nThe comment shows the charts as text only. Publishing the images needs the `contents: write` permission; pass `asset-branch: ''` (--no-assets) to stop trying.",
                        text.trim_start_matches("error: ")
                    ))
                );
                BTreeMap::new()
            }
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim_start_matches("error: ")
        .to_owned()
}

/// The first of two steps' errors, the second printed when both failed: publishing goes on
/// past a failed step (the check after a comment that could not be written), and the run's
/// error is the first that failed.
fn first_of(first: Result<(), Error>, second: Result<(), Error>) -> Result<(), Error> {
    match (first, second) {
        // Both refused: the run's error is the first, and says the second too (the step
        // summary quotes it: the check run, say, which branch protection reads).
        (Err(Error::Run { message, hint }), Err(Error::Run { message: second, .. })) => Err(Error::Run {
            message: format!("{message}; and {}", crate::secrets::redact(&second)),
            hint,
        }),
        (Err(first), Err(second)) => {
            eprintln!("{}", crate::secrets::redact(&second.to_string()));
            Err(first)
        }
        (first, second) => first.and(second),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The comment and the check run both refused: the run's error names both (the step
    /// summary quotes it), the second redacted as the first is where it is shown.
    #[test]
    fn two_refusals_make_one_error_naming_both() {
        let comment = Err(Error::run_with_hint(
            "GitHub refused to update the comment (403)",
            "fix it",
        ));
        let check = Err(Error::run(
            "GitHub refused to create the check run (403 sk-abcdefghijklmnopqrstuvwx)",
        ));
        let text = first_of(comment, check).unwrap_err().to_string();
        assert!(
            text.contains("the comment (403)") && text.contains("; and GitHub refused to create the check run"),
            "{text}"
        );
        assert!(!text.contains("sk-abcdefghijklmnopqrstuvwx"), "{text}");
        assert!(first_of(Ok(()), Ok(())).is_ok());
        let one = first_of(Ok(()), Err(Error::run("check"))).unwrap_err().to_string();
        assert!(one.contains("check"), "{one}");
    }
}
