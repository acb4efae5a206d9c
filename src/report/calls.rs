//! `results.json` written streaming, and `calls.jsonl`: where a large run's outputs go.
//!
//! A run of up to [`INLINE_MAX_CALLS`] calls writes schema 1: every call's `output` inline, as
//! it always was. A larger run writes schema 2: the same document without the calls' `output`
//! keys, and beside it `calls.jsonl`, one line per call that has an output:
//!
//! ```json
//! {"experiment":"support","case":"refund-late","arm":"candidate","repeat":0,"output":"…"}
//! ```
//!
//! (experiment name, case id, arm and repeat join the line to its call). Either file is
//! serialized piece by piece into `output::write_file_with`'s temporary file, never as one
//! string, and every line passes through the redactor on its way.
//!
//! Reading a schema 2 file keeps in memory only the outputs the report shows (the flipped
//! cases it quotes) and remembers the `calls.jsonl` in [`Results::outputs_from`]; writing such
//! results copies their outputs from there, line by line. Invariant: when `outputs_from` is
//! not empty, every output is in those files and an `output` in memory is a copy.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Diagnostic, Error};
use crate::results::{self, Arm, Call, Flip, Results};
pub use crate::results::{CallLine, SHOWN_FLIPS};

/// The most calls whose outputs stay inline in `results.json` (schema 1): small runs and
/// existing readers see no change.
pub const INLINE_MAX_CALLS: usize = 10_000;

/// The file beside `results.json` that holds a schema 2 run's outputs.
pub const CALLS_FILE: &str = "calls.jsonl";

/// Lowers [`INLINE_MAX_CALLS`] for the integration tests, which check a schema 2 run end to end
/// on a handful of cases. Not a user setting: the README documents the threshold only.
const INLINE_MAX_VARIABLE: &str = "PROMPTGATE_TEST_INLINE_MAX_CALLS";

/// The longest `calls.jsonl` line read. The file may come from an untrusted artifact
/// (`ci --publish-only`), and only one line is held at a time; but every line a run writes must
/// read back (a run's own outputs are copied through here): an output is at most 16 MiB (a
/// provider's body, an `exec` provider's stdout), JSON escapes a byte to at most six (`\u0001`),
/// and the names beside it are far under the rest.
pub const MAX_LINE_BYTES: u64 = 6 * LONGEST_OUTPUT + (16 << 20);

use crate::results::LONGEST_OUTPUT;

/// The lines of `reader`, each at most [`MAX_LINE_BYTES`] (a longer one is an error).
fn capped_lines(reader: impl std::io::BufRead) -> impl Iterator<Item = std::io::Result<String>> {
    lines_of_at_most(reader, MAX_LINE_BYTES)
}

fn lines_of_at_most(mut reader: impl std::io::BufRead, max: u64) -> impl Iterator<Item = std::io::Result<String>> {
    use std::io::{BufRead as _, Read as _};
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut line = Vec::new();
        let read = (&mut reader).take(max + 1).read_until(b'\n', &mut line);
        match read {
            Ok(0) => {
                done = true;
                None
            }
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.len() as u64 > max {
                    done = true;
                    return Some(Err(std::io::Error::other(format!("a line is longer than {max} bytes"))));
                }
                Some(String::from_utf8(line).map_err(std::io::Error::other))
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    })
}

/// Whether `results` are written as schema 2, outputs in `calls.jsonl`.
pub fn outputs_in_file(results: &Results) -> bool {
    !results.outputs_from.is_empty() || in_file_at(call_count(results))
}

/// Whether results of `calls` calls are written as schema 2: then a run writes the outputs
/// to a file as it scores them, and holds only the ones the report quotes.
pub fn in_file_at(calls: usize) -> bool {
    calls > inline_max()
}

fn inline_max() -> usize {
    std::env::var(INLINE_MAX_VARIABLE)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(INLINE_MAX_CALLS)
}

fn call_count(results: &Results) -> usize {
    calls(results).count()
}

/// Every call with its experiment, case and arm.
fn calls(results: &Results) -> impl Iterator<Item = (&str, &str, Arm, &Call)> {
    results.experiments.iter().flat_map(|e| {
        e.cases.iter().flat_map(move |c| {
            let baseline = c.baseline.iter().map(|call| (Arm::Baseline, call));
            let candidate = c.candidate.iter().map(|call| (Arm::Candidate, call));
            baseline
                .chain(candidate)
                .map(move |(arm, call)| (e.name.as_str(), c.id(), arm, call))
        })
    })
}

/// Streams `results.json` into `out` (schema 2, without outputs, when `outputs_in_file`).
/// Returns whether the redactor changed anything.
pub fn write_results_json(results: &Results, out: &mut dyn Write, outputs_in_file: bool) -> std::io::Result<bool> {
    let mut lines = RedactedLines::new(out);
    let written = if outputs_in_file {
        results::outputs_elsewhere(|| serde_json::to_writer_pretty(&mut lines, results))
    } else {
        serde_json::to_writer_pretty(&mut lines, results)
    };
    written.map_err(std::io::Error::other)?;
    lines.write_all(b"\n")?;
    lines.flush()?;
    Ok(lines.redacted)
}

/// Streams `calls.jsonl` into `out`: copied from `results.outputs_from`, else from the outputs
/// in memory. Returns whether the redactor changed anything.
pub fn write_calls(results: &Results, out: &mut dyn Write) -> std::io::Result<bool> {
    let mut lines = RedactedLines::new(out);
    if results.outputs_from.is_empty() {
        let mut line = Vec::new();
        for (experiment, case, arm, call) in calls(results) {
            let Some(output) = &call.output else { continue };
            line.clear();
            let value = CallLine {
                experiment: experiment.into(),
                case: case.into(),
                arm,
                repeat: call.repeat,
                output: (&**output).into(),
            };
            serde_json::to_writer(&mut line, &value).map_err(std::io::Error::other)?;
            line.push(b'\n');
            lines.write_all(&line)?;
        }
    } else {
        // Read back when the results were, so every line is a call line.
        for path in &results.outputs_from {
            let reader = std::io::BufReader::new(std::fs::File::open(path)?);
            for line in capped_lines(reader) {
                let line = line?;
                if !line.trim().is_empty() {
                    lines.write_all(line.as_bytes())?;
                    lines.write_all(b"\n")?;
                }
            }
        }
    }
    lines.flush()?;
    Ok(lines.redacted)
}

/// A writer that passes every complete line through `secrets::redact`. JSON keeps line breaks
/// inside strings escaped, so a secret never spans two lines of what is written through it, and
/// redacting line by line finds what redacting the whole text would.
struct RedactedLines<'a> {
    out: &'a mut dyn Write,
    line: Vec<u8>,
    redacted: bool,
}

impl<'a> RedactedLines<'a> {
    fn new(out: &'a mut dyn Write) -> Self {
        RedactedLines {
            out,
            line: Vec::new(),
            redacted: false,
        }
    }

    fn emit(&mut self) -> std::io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        match std::str::from_utf8(&self.line) {
            Ok(text) if crate::secrets::needs_redaction(text) => {
                self.redacted = true;
                let clean = crate::secrets::redact(text);
                self.out.write_all(clean.as_bytes())?;
            }
            _ => self.out.write_all(&self.line)?,
        }
        self.line.clear();
        Ok(())
    }
}

impl Write for RedactedLines<'_> {
    fn write(&mut self, mut buf: &[u8]) -> std::io::Result<usize> {
        let len = buf.len();
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&buf[..=end]);
            self.emit()?;
            buf = &buf[end + 1..];
        }
        self.line.extend_from_slice(buf);
        Ok(len)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()?;
        self.out.flush()
    }
}

/// Fills in, for a `results.json` promptgate did not write (no `tool_version`: another tool's,
/// or a hand-written one holding only the keys DESIGN.md's contract names), what promptgate
/// would have written beside those keys and can be told from them: a blocking gated metric
/// that regressed fails its gate, a case whose majority outcome changed is a flip, the reasons
/// are the verdicts' sentences, and the run's counts are the calls'. The verdicts are kept as
/// written.
fn complete_hand_written(results: &mut Results) {
    use results::{ExperimentStatus, MetricVerdict};
    for e in &mut results.experiments {
        let compared = e.status != ExperimentStatus::New;
        // A run that failed judged nothing: no metric of it fails a gate (as in the judge).
        let failed = e.verdict == results::ExperimentVerdict::Error;
        for m in e.metrics.iter_mut().filter(|_| !failed) {
            // As `verdict::judge` decides: a blocking metric fails on a regression, and, where
            // there is a baseline, when it could not be measured.
            m.fails_gate |= m.blocking
                && m.gated
                && (m.verdict == MetricVerdict::Regression || (compared && m.verdict == MetricVerdict::NoData));
        }
        for case in &mut e.cases {
            if case.flip.is_none() {
                case.flip = crate::metrics::flip(&case.baseline, &case.candidate);
            }
        }
        if e.reason.is_empty() {
            e.reason = crate::verdict::experiment_verdict(e).1;
        }
    }
    if results.reason.is_empty() {
        results.reason = crate::verdict::overall_verdict(&results.experiments).1;
    }
    if results.run.calls == 0 {
        results.run = results::RunFacts {
            duration_ms: results.run.duration_ms,
            estimated_usd: results.run.estimated_usd,
            simulated: results.run.simulated,
            ..crate::verdict::count_calls(&results.experiments)
        };
    }
}

/// Reads a `results.json` of schema 1 or 2 (then with its `calls.jsonl`, keeping in memory only
/// the outputs the report shows).
pub fn read_results(path: &Path) -> Result<Results, Error> {
    let rerun = "pass the results.json that `promptgate run` wrote into its --out folder";
    let open = || {
        let file = std::fs::File::open(path)?;
        if file.metadata()?.len() > super::MAX_RESULTS_BYTES {
            return Err(std::io::Error::other(format!(
                "it is larger than {} MiB",
                super::MAX_RESULTS_BYTES >> 20
            )));
        }
        Ok(std::io::BufReader::with_capacity(1 << 16, file))
    };
    let unreadable = |e: std::io::Error| {
        Error::from(
            Diagnostic::new(format!(
                "cannot read {}: {}",
                path.display(),
                e.to_string().to_lowercase()
            ))
            .hint(rerun),
        )
    };
    // The version first, from a pass that keeps nothing else: a file of another schema gets
    // this message, not the first key our model misses.
    #[derive(Deserialize)]
    struct Version {
        schema_version: Option<u64>,
    }
    // A read's error where it stands: the line quoted, what was found, what to pass instead.
    let located = |what: &str, e: serde_json::Error| {
        if e.is_io() {
            return unreadable(std::io::Error::other(e.to_string()));
        }
        let message = e.to_string();
        let message = message.split(" at line").next().unwrap_or(&message).to_owned();
        // The text only now, to quote the line: an error path.
        let text = super::read_capped(path).unwrap_or_default();
        Error::from(
            Diagnostic::new(format!("{} {what}: {message}", path.display()))
                .in_file(path.display().to_string())
                .at_byte(&text, e.line() as u64, e.column() as u64)
                .hint(rerun),
        )
    };
    // JSON of another shape (a list, a version written as a string) is not "not JSON"; a list
    // would read as the version's one field (`[3]`: "schema_version 3").
    let not_an_object = || {
        Error::from(
            Diagnostic::new(format!(
                "{} is JSON, but not a results object: a results.json is one JSON object (schema_version, verdict, experiments, …)",
                path.display()
            ))
            .in_file(path.display().to_string())
            .hint(rerun),
        )
    };
    // Whether the file's first character other than white space opens an object.
    let object = || -> std::io::Result<bool> {
        let mut file = std::io::BufReader::new(open()?);
        let mut first = [0u8; 1];
        loop {
            std::io::Read::read_exact(&mut file, &mut first)?;
            if !first[0].is_ascii_whitespace() {
                return Ok(first[0] == b'{');
            }
        }
    };
    let object = object().unwrap_or(true);
    let version: Version = serde_json::from_reader(open().map_err(unreadable)?).map_err(|e| match e.is_data() {
        true if !object => not_an_object(),
        true => located("is JSON, but not a results object", e),
        false => located("is not JSON", e),
    })?;
    if !object {
        return Err(not_an_object());
    }
    let known = [results::SCHEMA_VERSION, results::SCHEMA_VERSION_CALLS_FILE];
    let Some(version) = version
        .schema_version
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| known.contains(v))
    else {
        let found = version
            .schema_version
            .map_or_else(|| "no schema_version".to_owned(), |v| format!("schema_version {v}"));
        return Err(Diagnostic::new(format!(
            "{} has {found}; this promptgate reads schema_version {} or {}",
            path.display(),
            results::SCHEMA_VERSION,
            results::SCHEMA_VERSION_CALLS_FILE
        ))
        .hint("re-run the gate with this version of promptgate")
        .into());
    };
    let mut results: Results = serde_json::from_reader(open().map_err(unreadable)?)
        .map_err(|e| located("does not match the results schema", e))?;
    results.schema_version = version;
    // A case listed twice would be counted twice in every figure re-rendered from it.
    for e in &results.experiments {
        let mut seen = std::collections::HashSet::with_capacity(e.cases.len());
        if let Some(twice) = e.cases.iter().find(|c| !seen.insert(c.id())) {
            return Err(Diagnostic::new(format!(
                "{} lists case `{}` of experiment `{}` twice",
                path.display(),
                crate::output::inert(twice.id()),
                crate::output::inert(&e.name)
            ))
            .in_file(path.display().to_string())
            .hint("a case is one entry of its experiment's `cases`: pass the results.json that `promptgate run` or `merge` wrote")
            .into());
        }
    }
    if results.tool_version.is_empty() {
        complete_hand_written(&mut results);
    }
    if version == results::SCHEMA_VERSION_CALLS_FILE {
        let calls = path.with_file_name(CALLS_FILE);
        load_shown_outputs(&mut results, &calls)?;
        results.outputs_from = vec![calls];
    }
    Ok(results)
}

/// Checks every line of `calls` against `results` and loads the outputs of the flipped cases
/// the report quotes.
fn load_shown_outputs(results: &mut Results, calls: &Path) -> Result<(), Error> {
    let name = calls.display().to_string();
    let hint = "calls.jsonl is written beside results.json by the same run: keep the two together, or re-run the gate";
    let file = std::fs::File::open(calls).map_err(|e| {
        Error::from(
            Diagnostic::new(format!(
                "cannot read {name}, which holds the outputs of this schema 2 results.json: {}",
                e.to_string().to_lowercase()
            ))
            .in_file(name.clone())
            .hint(hint),
        )
    })?;
    let experiments: HashMap<&str, usize> = results
        .experiments
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    let cases: Vec<HashMap<&str, usize>> = results
        .experiments
        .iter()
        .map(|e| e.cases.iter().enumerate().map(|(i, c)| (c.id(), i)).collect())
        .collect();
    let shown = shown_cases(results);
    let mut found: BTreeMap<(usize, usize, Arm, u32), String> = BTreeMap::new();
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    for (index, line) in capped_lines(reader).enumerate() {
        let number = index as u64 + 1;
        let bad = |message: String, column: u64, text: &str| {
            let mut d = Diagnostic::new(message).in_file(name.clone()).hint(hint);
            d.line = Some(number);
            d.column = (column > 0).then_some(column);
            d.source_line = Some(text.chars().take(200).collect());
            Error::from(d)
        };
        let line = line.map_err(|e| bad(format!("cannot read {name}: {e}"), 0, ""))?;
        if line.trim().is_empty() {
            continue;
        }
        let call: CallLine<'_> = serde_json::from_str(&line).map_err(|e| {
            let message = e.to_string();
            let message = message.split(" at line").next().unwrap_or(&message).to_owned();
            bad(
                format!("{name}:{number} is not a call line: {message}"),
                e.column() as u64,
                &line,
            )
        })?;
        let at = experiments.get(call.experiment.as_ref()).and_then(|&ei| {
            let ci = *cases[ei].get(call.case.as_ref())?;
            let case = &results.experiments[ei].cases[ci];
            case.calls(call.arm)
                .iter()
                .any(|c| c.repeat == call.repeat)
                .then_some((ei, ci))
        });
        let Some((ei, ci)) = at else {
            return Err(bad(
                format!(
                    "{name}:{number} names a call results.json does not have: experiment `{}`, case `{}`, {} repeat {}",
                    call.experiment,
                    call.case,
                    call.arm.name(),
                    call.repeat
                ),
                1,
                &line,
            ));
        };
        if shown.contains(&(ei, ci)) {
            found.insert((ei, ci, call.arm, call.repeat), call.output.into_owned());
        }
    }
    drop((experiments, cases));
    for ((ei, ci, arm, repeat), output) in found {
        let case = &mut results.experiments[ei].cases[ci];
        let arm_calls = match arm {
            Arm::Baseline => &mut case.baseline,
            Arm::Candidate => &mut case.candidate,
        };
        if let Some(call) = arm_calls.iter_mut().find(|c| c.repeat == repeat) {
            call.output = Some(output.into());
        }
    }
    Ok(())
}

/// (experiment, case) of the flipped cases the comment can quote: the first [`SHOWN_FLIPS`] of
/// each direction in each experiment.
pub fn shown_cases(results: &Results) -> BTreeSet<(usize, usize)> {
    let mut shown = BTreeSet::new();
    for (ei, e) in results.experiments.iter().enumerate() {
        for flip in [Flip::PassToFail, Flip::FailToPass] {
            shown.extend(
                e.cases
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.flip == Some(flip))
                    .take(SHOWN_FLIPS)
                    .map(|(ci, _)| (ei, ci)),
            );
        }
    }
    shown
}

/// Moves every output of `results` into the file `path` (then in `outputs_from`), keeping in
/// memory only the ones the report shows: how `merge` combines a schema 1 shard with schema 2
/// ones without holding all their outputs.
pub fn spill(results: &mut Results, path: PathBuf) -> anyhow::Result<()> {
    debug_assert!(results.outputs_from.is_empty());
    crate::output::write_file_with(&path, |out| write_calls(results, out).map(drop))?;
    let shown = shown_cases(results);
    for (ei, e) in results.experiments.iter_mut().enumerate() {
        for (ci, c) in e.cases.iter_mut().enumerate() {
            if !shown.contains(&(ei, ci)) {
                for call in c.baseline.iter_mut().chain(c.candidate.iter_mut()) {
                    call.output = None;
                }
            }
        }
    }
    results.outputs_from = vec![path];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown::test_fixtures::demo_results;
    use crate::verdict::{Policy, judge};

    #[test]
    fn every_line_a_run_can_write_reads_back() {
        // MAX_LINE_BYTES assumes JSON grows an output at most sixfold: check every character
        // class serde_json escapes (controls, quote, backslash) and the widest UTF-8.
        let widest = (0..=0x7f_u32)
            .chain([0x80, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff])
            .filter_map(char::from_u32)
            .map(|c| (serde_json::to_string(&c.to_string()).unwrap().len() - 2) / c.len_utf8())
            .max();
        assert_eq!(widest, Some(6));
        // A whole line of the worst output reads back: checked at a sixteenth of the size.
        let output: String = "\u{1}".repeat((LONGEST_OUTPUT / 16) as usize);
        let value = CallLine {
            experiment: "e".into(),
            case: "c".into(),
            arm: Arm::Candidate,
            repeat: 0,
            output: output.as_str().into(),
        };
        let line = serde_json::to_vec(&value).unwrap();
        let read: Vec<String> = lines_of_at_most(&line[..], MAX_LINE_BYTES / 16)
            .collect::<std::io::Result<_>>()
            .unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].len(), line.len());
    }

    /// Writes `results` into `dir` as `write_outputs` does, schema 2 when `in_file`.
    #[track_caller]
    fn write(results: &Results, dir: &Path, in_file: bool) -> PathBuf {
        if in_file {
            crate::output::write_file_with(&dir.join(CALLS_FILE), |out| write_calls(results, out).map(drop)).unwrap();
        }
        let path = dir.join("results.json");
        crate::output::write_file_with(&path, |out| write_results_json(results, out, in_file).map(drop)).unwrap();
        path
    }

    /// The analysis of `results` re-run from their calls, as bytes.
    fn analysis(results: &Results) -> Vec<u8> {
        let mut experiments = results.experiments.clone();
        let defaults = AnalysisDefaults {
            alpha: 0.05,
            seed: 11,
            max_error_rate: 0.1,
            sequential: false,
            aa: false,
        };
        let gates = vec![GateRecord {
            metric: "pass_rate".to_owned(),
            direction: crate::results::Direction::Higher,
            margin: 0.02,
            relative: false,
            alpha: 0.05,
            blocking: true,
            slo: None,
            require_non_inferiority: false,
            require_equivalence: false,
            pending: false,
        }];
        judge(&mut experiments, &Policy::recorded(&gates, &defaults), None);
        let metrics: Vec<_> = experiments.iter().map(|e| (&e.metrics, e.verdict)).collect();
        serde_json::to_vec(&metrics).unwrap()
    }

    use crate::results::{AnalysisDefaults, GateRecord};

    #[test]
    fn schema_1_round_trips_with_every_output_inline() {
        let dir = tempfile::tempdir().unwrap();
        let results = demo_results();
        let path = write(&results, dir.path(), false);
        let text = std::fs::read_to_string(&path).unwrap();
        // What `write_outputs` wrote before it streamed: one pretty document and a newline.
        assert_eq!(text, serde_json::to_string_pretty(&results).unwrap() + "\n");
        let back = read_results(&path).unwrap();
        assert_eq!(back, results);
        assert!(!dir.path().join(CALLS_FILE).exists());
    }

    #[test]
    fn schema_2_round_trips_keeping_only_the_shown_outputs_and_the_same_analysis() {
        let dir = tempfile::tempdir().unwrap();
        let results = demo_results();
        let path = write(&results, dir.path(), true);
        let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["schema_version"], 2);
        let call = &json["experiments"][0]["cases"][0]["baseline"][0];
        assert!(call.get("output").is_none(), "{call}");
        assert!(
            call.get("latency_ms").is_some() && call.get("scores").is_some(),
            "{call}"
        );

        let lines = std::fs::read_to_string(dir.path().join(CALLS_FILE)).unwrap();
        let with_output = calls(&results).filter(|(.., c)| c.output.is_some()).count();
        assert_eq!(lines.lines().count(), with_output);
        let first: CallLine<'_> = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
        let (experiment, case, arm, call) = calls(&results).find(|(.., c)| c.output.is_some()).unwrap();
        assert_eq!(
            first,
            CallLine {
                experiment: experiment.into(),
                case: case.into(),
                arm,
                repeat: call.repeat,
                output: call.output.as_deref().unwrap().into(),
            }
        );

        let back = read_results(&path).unwrap();
        assert_eq!(back.schema_version, 2);
        assert_eq!(back.outputs_from, vec![dir.path().join(CALLS_FILE)]);
        let shown = shown_cases(&results);
        assert!(!shown.is_empty(), "the fixture has flipped cases");
        let mut expected = results.clone();
        for (ei, e) in expected.experiments.iter_mut().enumerate() {
            for (ci, c) in e.cases.iter_mut().enumerate() {
                if !shown.contains(&(ei, ci)) {
                    c.baseline
                        .iter_mut()
                        .chain(c.candidate.iter_mut())
                        .for_each(|c| c.output = None);
                }
            }
        }
        expected.schema_version = 2;
        expected.outputs_from = back.outputs_from.clone();
        assert_eq!(back, expected);
        assert_eq!(analysis(&back), analysis(&results));
        // The report quotes the same outputs from either file.
        assert_eq!(
            crate::report::markdown::render_report(&back).unwrap(),
            crate::report::markdown::render_report(&results).unwrap()
        );

        // Written again (as `report` does into the same folder), the outputs are copied.
        let again = tempfile::tempdir().unwrap();
        let path_again = write(&back, again.path(), true);
        assert_eq!(
            std::fs::read_to_string(&path_again).unwrap(),
            std::fs::read_to_string(&path).unwrap()
        );
        assert_eq!(std::fs::read_to_string(again.path().join(CALLS_FILE)).unwrap(), lines);
    }

    #[track_caller]
    fn check_bad_calls(calls_text: &str, expected: &[&str]) {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&demo_results(), dir.path(), true);
        std::fs::write(dir.path().join(CALLS_FILE), calls_text).unwrap();
        let error = read_results(&path).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let shown = error.summary();
        for part in expected {
            assert!(shown.contains(part), "{part:?} not in {shown}");
        }
    }

    #[test]
    fn a_malformed_or_stray_calls_line_is_bad_input_at_its_line() {
        let good = r#"{"experiment":"customer-support","case":"refund-late","arm":"baseline","repeat":0,"output":"x"}"#;
        check_bad_calls(
            &format!("{good}\n{{\"experiment\": \"customer-support\", oops}}\n"),
            &["calls.jsonl:2", "is not a call line"],
        );
        check_bad_calls(
            r#"{"experiment":"customer-support","case":"no-such-case","arm":"baseline","repeat":0,"output":"x"}"#,
            &["calls.jsonl:1", "no-such-case", "does not have"],
        );
        check_bad_calls(
            r#"{"experiment":"customer-support","case":"refund-late","arm":"baseline","repeat":0,"output":"x","extra":1}"#,
            &["calls.jsonl:1", "unknown field"],
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_is_bad_input_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&demo_results(), dir.path(), true);
        let good = r#"{"experiment":"customer-support","case":"refund-late","arm":"baseline","repeat":0,"output":"x"}"#;
        let mut bytes = format!("{good}\n{good}\n").into_bytes();
        bytes.extend_from_slice(b"{\"output\": \"\xff\"}\n");
        std::fs::write(dir.path().join(CALLS_FILE), bytes).unwrap();
        let error = read_results(&path).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.summary().contains("calls.jsonl:3"), "{}", error.summary());
        // A line past the cap ends the reading with an error; the lines before it are read.
        let lines: Vec<_> = lines_of_at_most(&b"abcd\nabcde\nab\n"[..], 4).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].as_ref().unwrap(), "abcd");
        assert!(
            lines[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("longer than 4 bytes")
        );
    }

    #[test]
    fn a_missing_calls_file_or_an_unknown_schema_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&demo_results(), dir.path(), true);
        std::fs::remove_file(dir.path().join(CALLS_FILE)).unwrap();
        let error = read_results(&path).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.summary().contains("calls.jsonl"), "{}", error.summary());

        std::fs::write(&path, r#"{"schema_version": 3, "experiments": []}"#).unwrap();
        let error = read_results(&path).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(
            error
                .summary()
                .contains("has schema_version 3; this promptgate reads schema_version 1 or 2"),
            "{}",
            error.summary()
        );
    }

    /// A results.json whose JSON is sound but whose shape is not (a case's id a number, a
    /// call's field given twice) is bad input at the field, quoted, with what to pass instead.
    #[test]
    fn a_results_json_of_the_wrong_shape_is_bad_input_at_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&demo_results(), dir.path(), false);
        let text = std::fs::read_to_string(&path).unwrap();
        let (field, _) = text.match_indices("\"id\": \"").next().unwrap();
        let end = field + text[field + 7..].find('"').unwrap() + 8;
        // serde_json stands just past the value `5` of `"id": 5`.
        let line = text[..field].matches('\n').count() + 1;
        let column = field - text[..field].rfind('\n').map_or(0, |n| n + 1) + 8;
        for (bad, message) in [
            (
                format!("{}\"id\": 5{}", &text[..field], &text[end..]),
                "invalid type: integer `5`",
            ),
            (
                text.replacen("\"error\": null", "\"error\": null, \"error\": null", 1),
                "duplicate field `error`",
            ),
        ] {
            std::fs::write(&path, bad).unwrap();
            let error = read_results(&path).unwrap_err();
            assert_eq!(error.exit_code(), 2);
            let Error::Input(d) = &error else {
                panic!("{}", error.summary())
            };
            let shown = format!("{error}");
            assert!(shown.contains("does not match the results schema"), "{shown}");
            assert!(shown.contains(message), "{shown}");
            assert!(shown.contains("hint: pass the results.json"), "{shown}");
            if message.starts_with("invalid") {
                assert_eq!(
                    d.location(),
                    Some(format!("{}:{line}:{column}", path.display())),
                    "{shown}"
                );
            } else {
                assert!(d.location().is_some(), "{shown}");
            }
        }
    }

    /// JSON of another shape than a results object (a list, a version written as a string)
    /// is told apart from text that is not JSON.
    #[test]
    fn json_that_is_not_a_results_object_is_not_called_not_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        for (text, says) in [
            (
                "[]",
                "is JSON, but not a results object: a results.json is one JSON object",
            ),
            (
                "\"results\"",
                "is JSON, but not a results object: a results.json is one JSON object",
            ),
            (
                "[3]",
                "is JSON, but not a results object: a results.json is one JSON object",
            ),
            (
                "{\"schema_version\": \"1\"}",
                "is JSON, but not a results object: invalid type: string",
            ),
            ("{\"schema_version\": 1", "is not JSON"),
            ("verdict: pass", "is not JSON"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = read_results(&path).unwrap_err();
            assert_eq!(error.exit_code(), 2);
            let shown = format!("{error}");
            assert!(shown.contains(says), "{text}: {shown}");
            assert!(shown.contains("hint: pass the results.json"), "{shown}");
        }
    }

    #[test]
    fn lines_are_redacted_as_the_whole_text_would_be() {
        crate::secrets::register("PROMPTGATE_TEST_CALLS_KEY", "calls-secret-0123456789");
        let mut out = Vec::new();
        let mut lines = RedactedLines::new(&mut out);
        // Written in pieces that split the secret and the lines.
        for piece in ["{\"a\": \"calls-sec", "ret-0123456789\",\n \"b\"", ": 1}\n", "tail"] {
            lines.write_all(piece.as_bytes()).unwrap();
        }
        lines.flush().unwrap();
        assert!(lines.redacted);
        let text = String::from_utf8(out).unwrap();
        let whole = crate::secrets::redact("{\"a\": \"calls-secret-0123456789\",\n \"b\": 1}\ntail");
        assert_eq!(text, whole);
        assert!(!text.contains("calls-secret"), "{text}");
    }
}
