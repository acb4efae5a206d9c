//! Judge scorers: `llm-rubric`, `relevance` and `hallucination` ask the suite's judge (any
//! configured provider) about an output, through the runner like any call.
//!
//! The judge sees the input, the output and, for a grounded case, its context, between tags,
//! and is asked for one JSON object `{"pass": bool, "score": 1–5, "reason": "…"}` (through the
//! provider's JSON mode where it has one: [`Request::json`]). A reply that is not that object
//! is asked again once, with another seed; a second bad reply, or a failed call, is that
//! output's error for the metric: it has no value there, and `judge_error_rate` counts it.
//! Never a silent 0.
//!
//! What a judgement feeds: `relevance` and a rubric's metric take the score scaled to 0–1,
//! (score − 1) / 4, higher is better; `hallucination_rate` takes 1 when the judge found an
//! unsupported claim (`pass: false`), else 0. A judge's `pass: false` fails the call like any
//! assertion, with the judge's reason as the failure, so flipped cases show why.

use serde_json::Value;

use crate::plan::{Job, JudgeTag, Planned};
use crate::providers::{JUDGE_MARK, Message, Request, Role};
use crate::results::{Judgement, Score};
use crate::runner::Outcome;
use crate::suite::{Assertion, Case, Check, JudgeCheck, JudgeSettings};

/// A judge's reply, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub pass: bool,
    pub score: u8,
    pub reason: String,
}

/// Most characters of a reason kept: a judge that writes an essay is cut, not stored whole.
const MAX_REASON_CHARS: usize = 600;

/// Tokens a judge may answer with: a JSON object with one sentence of reason.
const JUDGE_MAX_TOKENS: u32 = 300;

/// What each finished call of `jobs` (generation jobs of `planned`) asks the runner for: its
/// judge calls, and a judge call's retry when its reply was not the object.
pub fn follow_up<'a>(
    planned: &'a [Planned<'a>],
    settings: Option<&'a JudgeSettings>,
    jobs: &'a [Job],
) -> impl Fn(usize, Option<(&JudgeTag, &Job)>, &Outcome) -> Vec<(JudgeTag, Job)> + 'a {
    move |parent, derived, outcome| match (derived, settings, jobs.get(parent)) {
        (Some((tag, job)), _, _) => retry(tag, job, outcome).into_iter().collect(),
        (None, Some(settings), Some(generation)) => {
            let experiment = planned[generation.experiment].candidate;
            let case = &experiment.cases[generation.case];
            judge_jobs(
                settings,
                experiment.asserts.iter().chain(&case.asserts),
                case,
                generation,
                outcome,
            )
        }
        (None, _, _) => Vec::new(),
    }
}

/// The judge jobs an output asks for: one per judge assertion and judge repeat, in the
/// generation job's experiment, case, arm and repeat. `assertions` are the call's, in order.
pub fn judge_jobs<'a>(
    settings: &JudgeSettings,
    assertions: impl IntoIterator<Item = &'a Assertion>,
    case: &Case,
    generation: &Job,
    outcome: &Outcome,
) -> Vec<(JudgeTag, Job)> {
    let Ok(response) = &outcome.result else {
        return Vec::new();
    };
    let mut jobs = Vec::new();
    for (index, assertion) in assertions.into_iter().enumerate() {
        let Check::Judge(check) = &assertion.check else {
            continue;
        };
        for repeat in 0..settings.repeats {
            let tag = JudgeTag {
                assertion: index,
                repeat,
                attempt: 0,
            };
            let job = job(settings, check, case, &response.text, generation, &tag);
            jobs.push((tag, job));
        }
    }
    jobs
}

/// The retry a judge job's outcome asks for: one, when the first reply was not the object.
/// The same question with another seed, so it is a call of its own (and cache entry).
pub fn retry(tag: &JudgeTag, job: &Job, outcome: &Outcome) -> Option<(JudgeTag, Job)> {
    let malformed = matches!(&outcome.result, Ok(response) if parse(&response.text).is_err());
    if !malformed || tag.attempt > 0 {
        return None;
    }
    let mut job = job.clone();
    if let Ok(request) = &mut job.request {
        request.seed = request.seed.rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    }
    Some((
        JudgeTag {
            attempt: tag.attempt + 1,
            ..tag.clone()
        },
        job,
    ))
}

/// One judge call.
fn job(
    settings: &JudgeSettings,
    check: &JudgeCheck,
    case: &Case,
    output: &str,
    generation: &Job,
    tag: &JudgeTag,
) -> Job {
    // Repeats and the retry differ by seed, so each is its own call (and cache entry).
    let seed = crate::stats::fnv1a(
        generation
            .request
            .as_ref()
            .map_or(0, |r| r.seed)
            .to_le_bytes()
            .into_iter()
            .chain(tag.repeat.to_le_bytes())
            .chain(tag.attempt.to_le_bytes()),
    );
    Job {
        experiment: generation.experiment,
        case: generation.case,
        arm: generation.arm,
        repeat: generation.repeat,
        provider: settings.provider.clone(),
        fallbacks: Vec::new(),
        request: request(check, &settings.model, case, output, seed),
        retime: false,
    }
}

/// The request that asks `model` to judge `output` of `case`. An error (a grounded case
/// without its context) is the judgement's error.
pub fn request(check: &JudgeCheck, model: &str, case: &Case, output: &str, seed: u64) -> Result<Request, String> {
    let task = match check {
        JudgeCheck::Relevance => {
            "Judge whether the output answers the input. Score 5 when it answers it fully and \
             directly, 1 when it does not address it at all. pass is true when the score is 3 or more."
        }
        JudgeCheck::Rubric(_) => {
            "Judge whether the output meets the rubric. Score 5 when it meets it fully, 1 when it \
             does not meet it at all. pass is true when it meets the rubric."
        }
        JudgeCheck::Hallucination { .. } => {
            "Check each claim of the output against the context. pass is true only when every \
             claim is supported by the context. Score 5 when every claim is supported, 1 when \
             none is. When a claim is unsupported, quote it in the reason."
        }
    };
    let mut user = format!(
        "<input>\n{}\n</input>\n<output>\n{output}\n</output>\n",
        case.input_text()
    );
    match check {
        JudgeCheck::Hallucination { context_var } => {
            let context = match case.vars.get(context_var) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => {
                    return Err(format!(
                        "case `{}` has no `{context_var}` var to judge against",
                        case.id
                    ));
                }
                Some(other) => other.to_string(),
            };
            user.push_str(&format!("<context>\n{context}\n</context>\n"));
        }
        JudgeCheck::Rubric(rubric) => user.push_str(&format!("<rubric>\n{rubric}\n</rubric>\n")),
        JudgeCheck::Relevance => {}
    }
    let system = format!(
        "{JUDGE_MARK} {task}\nReply with only a JSON object: \
         {{\"pass\": true or false, \"score\": an integer from 1 to 5, \"reason\": \"one sentence\"}}."
    );
    Ok(Request {
        model: model.to_owned(),
        messages: vec![
            Message {
                role: Role::System,
                content: system,
            },
            Message {
                role: Role::User,
                content: user,
            },
        ],
        temperature: Some(0.0),
        max_tokens: Some(JUDGE_MAX_TOKENS),
        top_p: None,
        seed,
        json: true,
    })
}

/// Reads a judge's reply: the JSON object, alone or inside a code fence or a sentence.
pub fn parse(text: &str) -> Result<Reply, String> {
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err(format!("the judge's reply is not a JSON object: {}", preview(text)));
    };
    let object: serde_json::Map<String, Value> = text
        .get(start..=end)
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| format!("the judge's reply is not a JSON object: {}", preview(text)))?;
    let pass = match object.get("pass") {
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("the judge's `pass` is {other}, not true or false")),
        None => return Err("the judge's reply has no `pass`".to_owned()),
    };
    let score = match object.get("score") {
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && (1.0..=5.0).contains(&x) => x as u8,
            _ => return Err(format!("the judge's `score` is {n}, not an integer from 1 to 5")),
        },
        Some(other) => return Err(format!("the judge's `score` is {other}, not an integer from 1 to 5")),
        None => return Err("the judge's reply has no `score`".to_owned()),
    };
    let reason = match object.get("reason") {
        Some(Value::String(s)) => s.chars().take(MAX_REASON_CHARS).collect(),
        _ => return Err("the judge's reply has no `reason`".to_owned()),
    };
    Ok(Reply { pass, score, reason })
}

/// The value a judgement gives its metric.
pub fn value(check: &JudgeCheck, reply: &Reply) -> f64 {
    match check {
        JudgeCheck::Hallucination { .. } => f64::from(u8::from(!reply.pass)),
        JudgeCheck::Relevance | JudgeCheck::Rubric(_) => (f64::from(reply.score) - 1.0) / 4.0,
    }
}

/// A judge call's outcome as the results record it: the reply, or why there is none.
pub fn judgement(metric: &str, repeat: u32, outcome: &Outcome, cost_usd: f64) -> (Judgement, Option<Reply>) {
    let mut judgement = Judgement {
        metric: metric.to_owned(),
        repeat,
        cached: outcome.cached,
        cost_usd: if outcome.cached { 0.0 } else { cost_usd },
        ..Judgement::default()
    };
    let reply = match &outcome.result {
        Ok(response) => match parse(&response.text) {
            Ok(reply) => Some(reply),
            Err(e) => {
                judgement.error = Some(format!("{e} (asked twice)"));
                None
            }
        },
        Err(e) => {
            judgement.error = Some(format!("the judge call failed: {e}"));
            None
        }
    };
    if let Some(reply) = &reply {
        judgement.score = Some(reply.score);
        judgement.pass = Some(reply.pass);
        judgement.reason = Some(reply.reason.clone());
    }
    (judgement, reply)
}

/// Adds a call's judgements to its scores: each judged metric the mean of its judgements'
/// values (judge repeats averaged), and a judge's `pass: false` as a failure with its reason.
/// `judged` holds, per judgement, its check and its reply (`None`: the judge failed).
pub fn apply(
    scores: &mut std::collections::BTreeMap<String, Score>,
    failures: &mut Vec<String>,
    judged: &[(&Assertion, Option<&Reply>)],
) {
    let mut sums: std::collections::BTreeMap<&str, (f64, usize)> = std::collections::BTreeMap::new();
    for (assertion, reply) in judged {
        let (Check::Judge(check), Some(reply)) = (&assertion.check, reply) else {
            continue;
        };
        let entry = sums.entry(assertion.metric.as_str()).or_default();
        entry.0 += value(check, reply);
        entry.1 += 1;
        let failure = format!("{}: {}", assertion.metric, reply.reason);
        if !reply.pass && !failures.contains(&failure) {
            failures.push(failure);
        }
    }
    for (metric, (sum, n)) in sums {
        scores.insert(metric.to_owned(), Score::Number(sum / n as f64));
    }
    scores.insert("pass".to_owned(), Score::Bool(failures.is_empty()));
}

fn preview(text: &str) -> String {
    let short: String = text.chars().take(80).collect();
    if short.len() < text.len() {
        format!("{short:?}…")
    } else {
        format!("{short:?}")
    }
}
