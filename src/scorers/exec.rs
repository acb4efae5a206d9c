//! `exec` scorers: a command of the team's own (a Python or JS check) scores each output.
//!
//! Protocol, one process per distinct (command, case, output):
//! - the command runs the way `exec` providers run (`providers::exec::Program`): an argv list
//!   without a shell, from the root of the head's tree (scoring comes from head for both arms,
//!   so both are scored by the same script), stdout read up to `providers::exec::MAX_STDOUT`,
//!   killed after [`TIMEOUT`]. Its environment is only the harmless base set
//!   (`secrets::CHILD_BASE_ENV`): a scorer is handed no variable, so no key;
//! - stdin receives `{"case": {"id", "vars"}, "output": "…", "scores": ["tone", …]}` — the
//!   case as the dataset wrote it, the output scored, and the names the config expects back;
//! - stdout is `{"scores": {"tone": 0.8, "polite": true}}`: every expected name, each a finite
//!   number or a boolean (other names are ignored). Exit status 0 is success; any other
//!   status, or stdout of another shape, is the scorer's failure for that call.
//!
//! A boolean score is an assertion (false fails the call); a number is a metric only. A failed
//! run leaves its scores out of that call (so the metric is not computed from a broken
//! scorer) and is recorded as the call's scorer error; `verdict` makes an experiment whose
//! scorer failed too often a run error. The same (command, case, output) runs once per run,
//! however many repeats or arms produced that output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::providers::exec::Program;
use crate::results::Score;

/// How long one scorer run may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Scorer runs at once: they are processes of their own, mostly waiting on an interpreter's
/// start-up.
const PARALLEL: usize = 8;

/// What one scorer run gave: its scores, or why it failed.
pub type Outcome = Result<BTreeMap<String, Score>, String>;

/// One scorer run to make: the command, the case it scores, the output, the names expected.
pub struct Request<'a> {
    pub command: &'a [String],
    pub case_id: &'a str,
    pub vars: &'a crate::suite::Vars,
    pub output: &'a str,
    pub scores: &'a [String],
}

/// The exec scorers of a run: where they run, and every outcome so far, so a sequential run's
/// later looks do not run a scorer again on the same output.
pub struct ExecScorers {
    dir: Option<PathBuf>,
    done: Mutex<HashMap<[u8; 32], Outcome>>,
}

impl ExecScorers {
    /// Scorers running in `dir` (the head's tree); `None`: promptgate's working directory.
    pub fn new(dir: Option<&Path>) -> Self {
        ExecScorers {
            dir: dir.map(Path::to_owned),
            done: Mutex::new(HashMap::new()),
        }
    }

    /// Runs every request not run yet, [`PARALLEL`] at a time.
    pub fn run(&self, requests: &[Request<'_>]) {
        let mut pending: Vec<([u8; 32], &Request<'_>, Vec<u8>)> = Vec::new();
        {
            let done = self.done.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for request in requests {
                let (key, input) = key_and_input(request);
                if !done.contains_key(&key) && !pending.iter().any(|(k, ..)| *k == key) {
                    pending.push((key, request, input));
                }
            }
        }
        if pending.is_empty() {
            return;
        }
        let next = AtomicUsize::new(0);
        let workers = PARALLEL.min(pending.len());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((key, request, input)) = pending.get(i) else {
                            break;
                        };
                        let outcome = self.run_one(request, input);
                        self.done
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(*key, outcome);
                    }
                });
            }
        });
    }

    /// The outcome of a request [`ExecScorers::run`] ran; `None` if it did not.
    pub fn outcome(&self, request: &Request<'_>) -> Option<Outcome> {
        let (key, _) = key_and_input(request);
        self.done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned()
    }

    fn run_one(&self, request: &Request<'_>, input: &[u8]) -> Outcome {
        let program = Program::new(request.command, &[])
            .ok_or_else(|| "the scorer has no command".to_owned())?
            .in_dir(self.dir.as_deref());
        let stdout = program.run_blocking(input, TIMEOUT).map_err(|f| f.message)?;
        parse(&String::from_utf8_lossy(&stdout), request.scores)
    }
}

/// What the command reads on stdin, and the key its outcome is kept under: the command and
/// that input.
fn key_and_input(request: &Request<'_>) -> ([u8; 32], Vec<u8>) {
    let input = json!({
        "case": {"id": request.case_id, "vars": request.vars},
        "output": request.output,
        "scores": request.scores,
    })
    .to_string()
    .into_bytes();
    let mut hash = Sha256::new();
    for arg in request.command {
        hash.update(arg.as_bytes());
        hash.update([0]);
    }
    hash.update([1]);
    hash.update(&input);
    (hash.finalize().into(), input)
}

/// Reads `{"scores": {...}}`, keeping the `expected` names. Also read: the scores as a flat
/// object (`{"tone": 0.8}`), and, for a scorer of one metric, the bare number or true/false.
pub fn parse(stdout: &str, expected: &[String]) -> Outcome {
    let shape = "print {\"scores\": {\"name\": number or true/false}}";
    let value: Value = serde_json::from_str(stdout.trim()).map_err(|e| {
        let start: String = stdout.trim().chars().take(80).collect();
        format!("the scorer's stdout is not JSON ({e}); it begins {start:?}; {shape}")
    })?;
    let bare;
    let scores = match (&value, expected) {
        (Value::Object(o), _) => match o.get("scores") {
            Some(Value::Object(scores)) => scores,
            Some(_) => return Err(format!("the scorer's `scores` is not an object; {shape}")),
            None => o,
        },
        (Value::Number(_) | Value::Bool(_), [name]) => {
            bare = serde_json::Map::from_iter([(name.clone(), value.clone())]);
            &bare
        }
        _ => return Err(format!("the scorer's stdout has no `scores` object; {shape}")),
    };
    let mut out = BTreeMap::new();
    for name in expected {
        let score = match scores.get(name) {
            Some(Value::Bool(b)) => Score::Bool(*b),
            Some(Value::Number(n)) => match n.as_f64().filter(|x| x.is_finite()) {
                Some(x) => Score::Number(x),
                None => return Err(format!("score `{name}` is not a finite number")),
            },
            Some(other) => {
                return Err(format!(
                    "score `{name}` is {}, not a number or true/false",
                    json_kind(other)
                ));
            }
            None => {
                let returned: Vec<&str> = scores.keys().map(String::as_str).collect();
                return Err(format!(
                    "the scorer returned no `{name}` (it returned: {}); the config names {}",
                    if returned.is_empty() {
                        "nothing".to_owned()
                    } else {
                        returned.join(", ")
                    },
                    expected.join(", ")
                ));
            }
        };
        out.insert(name.clone(), score);
    }
    Ok(out)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn reads_named_numbers_and_booleans() {
        let scores = parse(
            r#"{"scores": {"tone": 0.75, "polite": true, "extra": "ignored"}}"#,
            &names(&["tone", "polite"]),
        )
        .unwrap();
        assert_eq!(
            scores,
            BTreeMap::from([
                ("polite".to_owned(), Score::Bool(true)),
                ("tone".to_owned(), Score::Number(0.75)),
            ])
        );
        // The scores as a flat object, and a scorer of one metric's bare value.
        let flat = parse(r#"{"tone": 0.75, "polite": true}"#, &names(&["tone", "polite"])).unwrap();
        assert_eq!(flat, scores);
        assert_eq!(
            parse("0.8\n", &names(&["tone"])).unwrap(),
            BTreeMap::from([("tone".to_owned(), Score::Number(0.8))])
        );
        assert_eq!(
            parse("true", &names(&["polite"])).unwrap(),
            BTreeMap::from([("polite".to_owned(), Score::Bool(true))])
        );
    }

    #[test]
    fn malformed_answers_say_what_was_expected() {
        let expected = names(&["tone"]);
        // A bare value names no metric when the scorer has two.
        assert!(
            parse("0.8", &names(&["tone", "polite"]))
                .unwrap_err()
                .starts_with("the scorer's stdout has no `scores` object")
        );
        for (stdout, message) in [
            ("\"high\"", "the scorer's stdout has no `scores` object"),
            (r#"{"scores": 0.8}"#, "the scorer's `scores` is not an object"),
            ("tone: high", "the scorer's stdout is not JSON"),
            (
                r#"{"scores": {"tonne": 1}}"#,
                "the scorer returned no `tone` (it returned: tonne)",
            ),
            (
                r#"{"scores": {"tone": "high"}}"#,
                "score `tone` is text, not a number or true/false",
            ),
            (
                r#"{"scores": {}}"#,
                "the scorer returned no `tone` (it returned: nothing)",
            ),
        ] {
            let error = parse(stdout, &expected).unwrap_err();
            assert!(error.starts_with(message), "{stdout}: {error}");
        }
    }

    fn request<'a>(
        command: &'a [String],
        vars: &'a crate::suite::Vars,
        output: &'a str,
        scores: &'a [String],
    ) -> Request<'a> {
        Request {
            command,
            case_id: "refund-late",
            vars,
            output,
            scores,
        }
    }

    #[test]
    fn runs_each_distinct_output_once_in_the_tree_with_the_case_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        // Scores the output's length, and records every run (one line each) and what it read.
        std::fs::write(
            dir.path().join("scripts/score.sh"),
            "input=$(cat); echo run >> runs.log; printf '%s' \"$input\" > last.$$ && mv last.$$ last.json\n\
             n=$(printf '%s' \"$input\" | wc -c); echo \"{\\\"scores\\\": {\\\"size\\\": $n, \\\"ok\\\": true}}\"\n",
        )
        .unwrap();
        let command = names(&["/bin/sh", "scripts/score.sh"]);
        let scores = names(&["size", "ok"]);
        let mut vars = serde_json::Map::new();
        vars.insert("input".to_owned(), Value::String("Can I return boots?".to_owned()));
        let vars = crate::suite::Vars::from(vars);
        let scorers = ExecScorers::new(Some(dir.path()));
        let a = request(&command, &vars, "Yes, within 30 days.", &scores);
        let b = request(&command, &vars, "No.", &scores);
        let again = request(&command, &vars, "Yes, within 30 days.", &scores);
        scorers.run(&[a, b, again]);
        scorers.run(&[request(&command, &vars, "No.", &scores)]);
        let runs = std::fs::read_to_string(dir.path().join("runs.log")).unwrap();
        assert_eq!(runs.lines().count(), 2, "one run per distinct output");
        let outcome = scorers
            .outcome(&request(&command, &vars, "Yes, within 30 days.", &scores))
            .unwrap()
            .unwrap();
        assert_eq!(outcome["ok"], Score::Bool(true));
        assert!(matches!(outcome["size"], Score::Number(n) if n > 20.0));
        let last: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("last.json")).unwrap()).unwrap();
        assert_eq!(last["case"]["id"], "refund-late");
        assert_eq!(last["case"]["vars"]["input"], "Can I return boots?");
        assert_eq!(last["scores"], json!(["size", "ok"]));
        assert!(
            scorers
                .outcome(&request(&command, &vars, "never run", &scores))
                .is_none()
        );
    }

    #[test]
    fn a_failing_scorer_is_that_call_s_error_with_the_end_of_stderr() {
        let command = names(&["/bin/sh", "-c", "cat >/dev/null; echo 'KeyError: tone' >&2; exit 1"]);
        let scores = names(&["tone"]);
        let vars = crate::suite::Vars::default();
        let scorers = ExecScorers::new(None);
        let r = request(&command, &vars, "hi", &scores);
        scorers.run(std::slice::from_ref(&r));
        assert_eq!(
            scorers.outcome(&r).unwrap().unwrap_err(),
            "exec: `/bin/sh` exited with status 1: KeyError: tone"
        );
        let missing = names(&["/nonexistent/promptgate-scorer"]);
        let r = request(&missing, &vars, "hi", &scores);
        scorers.run(std::slice::from_ref(&r));
        assert!(
            scorers
                .outcome(&r)
                .unwrap()
                .unwrap_err()
                .starts_with("exec: cannot run `/nonexistent/promptgate-scorer`")
        );
    }

    #[test]
    fn a_scorer_gets_no_variable_but_the_harmless_base_set() {
        let command = names(&[
            "/bin/sh",
            "-c",
            "cat >/dev/null; printf '{\"scores\": {\"vars\": %s}}' $(env | wc -l)",
        ]);
        let scores = names(&["vars"]);
        let vars = crate::suite::Vars::default();
        let scorers = ExecScorers::new(None);
        let r = request(&command, &vars, "hi", &scores);
        scorers.run(std::slice::from_ref(&r));
        let Score::Number(n) = scorers.outcome(&r).unwrap().unwrap()["vars"] else {
            panic!("a number");
        };
        // `sh` itself adds PWD (and may add SHLVL and `_`).
        assert!(n <= (crate::secrets::CHILD_BASE_ENV.len() + 3) as f64, "{n} variables");
    }
}
