//! `promptgate judge-check`: a judge's agreement with labelled cases, before a gate relies on
//! it. Strings together the suite (which judge), `scorers::agreement` (the labels and the
//! agreement) and the runner (the judge calls: cached, rate limited, retried).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::JudgeCheckArgs;
use crate::error::{Diagnostic, Error, exit};
use crate::plan::{Arm, Job, JudgeTag};
use crate::providers::pricing::PriceTable;
use crate::results::Name;
use crate::runner;
use crate::scorers::{agreement, judge};
use crate::suite::{self, ProviderKind};
use crate::workspace::{DirTree, FileSource, Repo};

/// The labelled set shipped with promptgate (`fixtures/judge-check/labels.jsonl`).
const BUILT_IN_LABELS: &str = include_str!("../../fixtures/judge-check/labels.jsonl");

/// Judge calls that may fail before the check itself is a run error (exit 3), as in a gate.
const MAX_JUDGE_ERROR_RATE: f64 = crate::verdict::MAX_JUDGE_ERROR_RATE;

pub fn judge_check(repo_dir: &Path, config: &str, args: &JudgeCheckArgs) -> anyhow::Result<u8> {
    let root = Repo::open(repo_dir).map_or_else(|_| repo_dir.to_owned(), |r| r.root().to_owned());
    let tree: Arc<dyn FileSource> = Arc::new(DirTree::new(&root));
    // The judge, its provider and prices; a config may have no experiment (`experiments: []`).
    let suite = suite::load_judges(&*tree, config)?;
    let name = match (&args.judge, &suite.defaults.judge) {
        (Some(name), _) => name.clone(),
        (None, Some(judge)) => judge.provider.clone(),
        (None, None) => {
            return Err(Error::from(
                Diagnostic::new("no judge to check")
                    .in_file(config)
                    .hint("name one: `--judge PROVIDER`, or `defaults: {judge: PROVIDER}` in the suite"),
            )
            .into());
        }
    };
    let Some(spec) = suite.providers.get(&name) else {
        let known: Vec<&str> = suite.providers.keys().map(String::as_str).collect();
        let hint = match crate::error::did_you_mean(&name, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("configured providers: {}", known.join(", ")),
        };
        return Err(Error::from(Diagnostic::new(format!("unknown judge provider `{name}`")).hint(hint)).into());
    };
    let model = match (&suite.defaults.judge, &spec.model, spec.kind) {
        (Some(j), _, _) if j.provider == name => j.model.clone(),
        (_, Some(model), _) => model.clone(),
        (_, None, ProviderKind::Mock) => "mock-judge".to_owned(),
        _ => {
            return Err(Error::from(
                Diagnostic::new(format!("the judge provider `{name}` has no model")).hint(format!(
                    "set `model:` on provider `{name}`, or make it `defaults.judge`"
                )),
            )
            .into());
        }
    };
    let (label_name, text) = match &args.labels {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|e| {
                Error::from(
                    Diagnostic::new(format!("cannot read the labels file {}: {e}", path.display()))
                        .hint("a JSONL file: one {\"input\", \"output\", \"label\"} object a line"),
                )
            })?,
        ),
        None => ("the built-in labels".to_owned(), BUILT_IN_LABELS.to_owned()),
    };
    let labelled = agreement::parse_labels(&label_name, &text)?;

    let jobs: Vec<Job> = agreement::requests(&labelled, &model)
        .into_iter()
        .enumerate()
        .map(|(case, request)| Job {
            experiment: 0,
            case: crate::plan::narrow(case),
            arm: Arm::Candidate,
            repeat: 0,
            provider: Name::from(&name),
            fallbacks: Default::default(),
            request,
            retime: false,
        })
        .collect();
    let endpoint = crate::arms::endpoint_at_checkout(spec, &*tree, Some(root.clone()))?;
    let endpoints = BTreeMap::from([(name.clone(), endpoint)]);
    let prices = PriceTable::new(&suite.pricing);
    let options = runner::Options {
        cache_dir: runner::cache_dir(&root, None),
        progress: runner::ProgressMode::detect(),
        backoff_base: Duration::from_millis(500),
        max_usd: suite.budget.max_usd.filter(|_| spec.kind != ProviderKind::Mock),
        ..runner::Options::default()
    };
    let first = JudgeTag {
        assertion: 0,
        repeat: 0,
        attempt: 0,
        first: None,
    };
    // A reply that is not the object is asked again once, as in a gate.
    let then = |_: usize, asked: runner::Asked<'_>, outcome: &runner::Outcome| {
        let (tag, job) = match asked {
            runner::Asked::Derived(tag, job) => (tag, job),
            runner::Asked::Given(job) => (&first, job),
        };
        judge::retry(tag, job, outcome).into_iter().collect()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let ran = runtime.block_on(runner::run_then(&jobs, &endpoints, &prices, &options, &then))?;
    let replies: Vec<Option<judge::Reply>> = ran
        .outcomes
        .iter()
        .enumerate()
        .map(|(i, outcome)| {
            let last = ran
                .derived
                .iter()
                .find(|d| d.parent == i)
                .map_or(outcome, |d| &d.outcome);
            judge::judgement("judge-check", 0, last, 0.0).1
        })
        .collect();
    let result = agreement::agreement(&labelled, &replies, 0.95);

    let mut out = std::io::stdout().lock();
    if args.json {
        let mut json = serde_json::json!({
            "judge": name, "model": model, "labels": label_name, "agreement": result,
            "spend_usd": ran.spent_usd,
        });
        // The agreement's figures (accuracy, kappa, their intervals, …) at the top level too,
        // where a reader of "accuracy and Cohen's kappa" looks first.
        if let (Some(top), Ok(serde_json::Value::Object(figures))) =
            (json.as_object_mut(), serde_json::to_value(&result))
        {
            for (key, value) in figures {
                top.entry(key).or_insert(value);
            }
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        let percent = |x: f64| format!("{:.1}%", 100.0 * x);
        let interval = |ci: Option<[f64; 2]>, f: &dyn Fn(f64) -> String| {
            ci.map_or_else(String::new, |[lo, hi]| format!(" [{}, {}]", f(lo), f(hi)))
        };
        writeln!(
            out,
            "judge-check: `{name}` ({model}) on {} labelled cases ({}, {})",
            result.labelled, label_name, result.scale
        )?;
        writeln!(
            out,
            "  accuracy        {}{} ({} of {} agree; 95% Wilson interval)",
            result.accuracy.map_or("—".to_owned(), percent),
            interval(result.accuracy_ci, &percent),
            result.agreed,
            result.judged
        )?;
        let three = |x: f64| format!("{x:.3}");
        writeln!(
            out,
            "  Cohen's kappa   {}{}{}",
            match (result.judged, result.kappa) {
                (0, _) => "— (no case was judged)".to_owned(),
                (_, None) => "— (undefined: the labels and the answers fall in one category only)".to_owned(),
                (_, Some(k)) => three(k),
            },
            match (result.kappa, result.kappa_ci) {
                (Some(_), None) =>
                    " (no interval: the labels, or the judge's answers, fall in one category only)".to_owned(),
                (_, ci) => interval(ci, &three),
            },
            if result.kappa_weights == "quadratic" {
                " (quadratic-weighted)"
            } else {
                ""
            }
        )?;
        writeln!(out, "  judge errors    {} of {}", result.errors, result.labelled)?;
    }
    let broken = result.errors as f64 > MAX_JUDGE_ERROR_RATE * result.labelled as f64;
    if args.record && !broken {
        let path = root.join(agreement::RECORD_PATH);
        if let Some(dir) = path.parent() {
            crate::output::create_dir(dir)?;
        }
        let mut records = std::fs::read_to_string(&path).unwrap_or_default();
        let mut questions: Vec<String> = labelled.iter().map(|l| agreement::question_id(&l.check)).collect();
        questions.sort_unstable();
        questions.dedup();
        records.push_str(&agreement::record_line(&name, &model, &label_name, &questions, &result));
        records.push('\n');
        crate::output::write_file(&path, records.as_bytes())?;
        eprintln!("promptgate: recorded in {} (commit it)", agreement::RECORD_PATH);
        if !agreement::at_chance(&records, &name, &model, &questions).is_empty() {
            eprintln!(
                "warning: this judge's agreement with the labels is no better than chance: the gate's comment says so beside every metric it judges, until a better check is recorded"
            );
        }
    }
    if broken {
        let example = replies
            .iter()
            .zip(&ran.outcomes)
            .find(|(r, _)| r.is_none())
            .map(|(_, o)| judge::judgement("judge-check", 0, o, 0.0).0.error.unwrap_or_default())
            .unwrap_or_default();
        return Err(Error::run_with_hint(
            format!(
                "{} of {} judge calls failed; first error: {example}",
                result.errors, result.labelled
            ),
            "check the judge provider (its key, model and JSON mode) and run again",
        )
        .into());
    }
    Ok(exit::PASS)
}
