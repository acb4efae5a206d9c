//! Datasets: JSONL, JSON, CSV and YAML files of cases (vars plus per-case assertions).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::diag::{user_words, with_serde_hint, yaml_diagnostic};
use super::raw::RawAssertion;
use super::{Assertion, Case, resolve_assertion};
use crate::error::{Diagnostic, Error};
use crate::workspace::{FileSource, parent_dir};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    id: Option<String>,
    /// For the people who read the dataset: accepted, and not held (no output shows it).
    #[allow(dead_code, reason = "read so that a dataset may carry it; nothing reports it")]
    description: Option<String>,
    /// Cases that share a passage, a template or a conversation: resampled and tested together.
    group: Option<String>,
    #[serde(default)]
    vars: serde_json::Map<String, Value>,
    #[serde(default)]
    assert: Vec<RawAssertion>,
}

/// Parses a dataset by its extension. Cases without an `id` get one derived from their vars, so
/// it stays stable when cases are reordered. The cases that read well, and an error for each
/// that did not (or for the file, when it does not parse at all).
#[cfg(test)]
pub(super) fn parse(
    source: &dyn FileSource,
    path: &str,
    text: &str,
    dependencies: &mut BTreeSet<String>,
    similarity: super::SimilarityMethod,
) -> (Vec<Case>, Vec<Error>) {
    parse_like(source, path, text, dependencies, similarity, &[])
}

/// [`parse`], each case that has the same id and vars as a case of `like` (the same dataset as
/// the other arm read it) holding that case's vars, not a copy.
pub(super) fn parse_like(
    source: &dyn FileSource,
    path: &str,
    text: &str,
    dependencies: &mut BTreeSet<String>,
    similarity: super::SimilarityMethod,
    like: &[Case],
) -> (Vec<Case>, Vec<Error>) {
    // Spreadsheets export UTF-8 CSV with a byte order mark, which would otherwise stick to the
    // first column's name (`\u{feff}id` is a var, not the id).
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let extension = path.rsplit_once('.').map_or("", |(_, e)| e).to_ascii_lowercase();
    // A JSON-lines dataset is read a line at a time, each case resolved before the next is
    // parsed: the parsed form of every case is never held at once (for a large dataset, more
    // than the cases themselves). The other formats parse as one document.
    type Located<'t> = Box<dyn Iterator<Item = Result<(RawCase, u64), Error>> + 't>;
    let (count, located): (usize, Located<'_>) = match extension.as_str() {
        "jsonl" | "ndjson" => (
            jsonl_lines(text).count(),
            Box::new(jsonl_lines(text).map(|(number, line)| parse_jsonl_line(path, number, line).map(as_json_wrote))),
        ),
        "json" | "yaml" | "yml" | "csv" => {
            let parsed = match extension.as_str() {
                "json" => parse_json(path, text).map(|cases| cases.into_iter().map(as_json_wrote).collect()),
                "csv" => parse_csv(path, text),
                _ => parse_yaml(path, text),
            };
            let parsed = match parsed {
                Ok(parsed) => parsed,
                Err(e) => return (Vec::new(), vec![e]),
            };
            (parsed.len(), Box::new(parsed.into_iter().map(Ok)))
        }
        _ => {
            return (
                Vec::new(),
                vec![
                    Diagnostic::new(format!("dataset `{path}` has an unknown format"))
                        .in_file(path)
                        .hint("datasets are .jsonl, .json, .csv or .yaml files")
                        .into(),
                ],
            );
        }
    };
    if count > super::MAX_CASES {
        return (
            Vec::new(),
            vec![
                Diagnostic::new(format!(
                    "dataset `{path}` has {count} cases; promptgate runs at most {} per experiment",
                    super::MAX_CASES
                ))
                .in_file(path)
                .hint(
                    "split it into several experiments, or sample it: a few hundred cases already detect small changes",
                )
                .into(),
            ],
        );
    }
    let dir = parent_dir(path);
    let mut ids = BTreeMap::new();
    let mut shared = Shared::default();
    let mut names = super::Names::default();
    let mut cases = Vec::with_capacity(count);
    let mut like_by_id = None;
    // Every case is checked, a bad one reported and passed over, so `validate` lists them all.
    let mut errors = super::problems::Capped::new(path);
    let lines = LineIndex::new(text);
    for located in located {
        let (raw, line) = match located {
            Ok(located) => located,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match case(
            source,
            path,
            &lines,
            dir,
            (raw, line),
            &mut ids,
            &mut shared,
            &mut names,
            dependencies,
            similarity,
        ) {
            Ok(mut case) => {
                take_vars_like(&mut case, like, cases.len(), &mut like_by_id);
                cases.push(case);
            }
            Err(e) => errors.push(e),
        }
    }
    (cases, errors.into_vec())
}

/// `case` takes the vars of its namesake in `like` when they are equal. The namesake is looked
/// for at the same place first (a dataset read twice lists its cases in the same order), and
/// through an index of `like` by id, built the first time that misses.
fn take_vars_like<'l>(
    case: &mut Case,
    like: &'l [Case],
    at: usize,
    by_id: &mut Option<HashMap<&'l str, &'l super::Vars>>,
) {
    if like.is_empty() {
        return;
    }
    let theirs = match like.get(at) {
        Some(same) if same.id == case.id => Some(&same.vars),
        _ => by_id
            .get_or_insert_with(|| like.iter().map(|c| (c.id.as_str(), &c.vars)).collect())
            .get(case.id.as_str())
            .copied(),
    };
    if let Some(vars) = theirs
        && *vars == case.vars
    {
        case.vars = vars.clone();
    }
}

/// One case of the dataset, resolved.
#[allow(
    clippy::too_many_arguments,
    reason = "the dataset's state, threaded through its cases"
)]
fn case(
    source: &dyn FileSource,
    path: &str,
    lines: &LineIndex<'_>,
    dir: &str,
    (raw, line): (RawCase, u64),
    ids: &mut BTreeMap<String, u64>,
    shared: &mut Shared,
    names: &mut super::Names,
    dependencies: &mut BTreeSet<String>,
    similarity: super::SimilarityMethod,
) -> Result<Case, Error> {
    let at = |message: String, key: &str| {
        let column = key_column_in(lines.line(line), key);
        lines.place(Diagnostic::new(message).in_file(path), line, column)
    };
    let id = match raw.id {
        Some(id) if id.trim().is_empty() => {
            return Err(at("case id is empty".to_owned(), "id")
                .hint("give the case a name of its own (it names the case in the report and keeps it paired across runs), or leave `id` out to derive one from its vars")
                .into());
        }
        Some(id) => id,
        None => derived_id(&raw.vars),
    };
    if let Some(first) = ids.get(&id) {
        return Err(at(format!("duplicate case id `{id}`"), "id")
            .hint(format!(
                "the first `{id}` is on line {first}; ids pair baseline and candidate calls, so they must be unique"
            ))
            .into());
    }
    ids.insert(id.clone(), line);
    let written = serde_json::to_string(&raw.assert).unwrap_or_default();
    let (asserts, assert_source) = match shared.get(&written) {
        Some(both) => both,
        None => {
            let mut asserts = Vec::with_capacity(raw.assert.len());
            for a in &raw.assert {
                let assertion =
                    resolve_assertion(source, dir, a, dependencies, similarity).map_err(|(message, hint)| {
                        let d = at(format!("case `{id}`: {message}"), "assert");
                        match hint {
                            Some(h) => d.hint(h),
                            None => d,
                        }
                    })?;
                asserts.push(assertion);
            }
            shared.keep(written, asserts)
        }
    };
    if raw.group.as_deref().is_some_and(|g| g.trim().is_empty()) {
        return Err(at(format!("case `{id}`: group is empty"), "group")
            .hint("leave `group` out, or name the passage, template or conversation the case shares")
            .into());
    }
    Ok(Case {
        id,
        group: raw.group.map(String::into_boxed_str),
        vars: names.vars(raw.vars),
        assert_source,
        asserts,
        // A dataset read whole is far shorter than four billion lines.
        line: u32::try_from(line).unwrap_or(u32::MAX),
    })
}

/// The 1-based column of `"key"` on a JSON line, so a per-case error points at the field it is
/// about; 0 (unknown) when the line does not spell it that way (CSV, YAML).
pub(super) fn key_column(text: &str, line: u64, key: &str) -> u64 {
    usize::try_from(line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|i| text.lines().nth(i))
        .map_or(0, |source| key_column_in(source, key))
}

/// [`key_column`] in the line's own text.
fn key_column_in(source: &str, key: &str) -> u64 {
    source
        .find(&format!("\"{key}\""))
        .map_or(0, |byte| source[..byte].chars().count() as u64 + 1)
}

/// Where each line of a dataset's text starts, found once, when the first error needs it: an
/// error placed at a case's line reads that line at once, not by counting every line before it
/// (a dataset wrong on each of its 100,000 lines took minutes to report).
struct LineIndex<'t> {
    text: &'t str,
    starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'t> LineIndex<'t> {
    fn new(text: &'t str) -> Self {
        LineIndex {
            text,
            starts: std::cell::OnceCell::new(),
        }
    }

    /// Line `number` (1-based), without its line break; empty past the end.
    fn line(&self, number: u64) -> &'t str {
        let starts = self.starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(at, _)| at + 1))
                .collect()
        });
        let Some(i) = usize::try_from(number).ok().and_then(|n| n.checked_sub(1)) else {
            return "";
        };
        let (Some(&start), end) = (starts.get(i), starts.get(i + 1)) else {
            return "";
        };
        let end = end.map_or(self.text.len(), |&next| next - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// `d` placed at `column` of line `number`, the line shown under it.
    fn place(&self, d: Diagnostic, number: u64, column: u64) -> Diagnostic {
        placed(d, self.line(number), number, column)
    }
}

/// `d` placed at `column` of line `number`, whose text is `source`.
fn placed(d: Diagnostic, source: &str, number: u64, column: u64) -> Diagnostic {
    let mut d = d.at(source, 1, column);
    if number > 0 {
        d.line = Some(number);
    } else {
        (d.line, d.column, d.source_line) = (None, None, None);
    }
    d
}

/// The assertion lists a dataset's cases have written so far, resolved, by their canonical JSON:
/// a case whose assertions are written like an earlier case's holds that case's list (and its
/// text), not a copy. A dataset of distinct lists keeps only the first [`Shared::MAX`].
#[derive(Default)]
struct Shared {
    lists: HashMap<Arc<str>, Arc<[Assertion]>>,
}

impl Shared {
    const MAX: usize = 64;

    fn get(&self, written: &str) -> Option<(Arc<[Assertion]>, Arc<str>)> {
        let (text, list) = self.lists.get_key_value(written)?;
        Some((Arc::clone(list), Arc::clone(text)))
    }

    fn keep(&mut self, written: String, asserts: Vec<Assertion>) -> (Arc<[Assertion]>, Arc<str>) {
        let (list, text): (Arc<[Assertion]>, Arc<str>) = (asserts.into(), written.into());
        if self.lists.len() < Self::MAX {
            self.lists.insert(Arc::clone(&text), Arc::clone(&list));
        }
        (list, text)
    }
}

/// The id of a case written without one: 64 bits of the SHA-256 of its vars (as JSON), so
/// that even a million cases collide with a chance of about 3·10⁻⁸. Ids of 40 bits, as
/// earlier versions derived, collide at two million cases; they kept the same `case-` form.
fn derived_id(vars: &serde_json::Map<String, Value>) -> String {
    let digest = Sha256::digest(Value::Object(vars.clone()).to_string().as_bytes());
    format!("case-{}", &hex::encode(digest)[..16])
}

/// The case lines of a JSON-lines text, numbered from 1: blank lines and `//` comments skipped.
fn jsonl_lines(text: &str) -> impl Iterator<Item = (u64, &str)> {
    text.lines()
        .enumerate()
        .map(|(index, line)| (index as u64 + 1, line))
        .filter(|(_, line)| !(line.trim().is_empty() || line.trim_start().starts_with("//")))
}

fn parse_jsonl_line(path: &str, number: u64, line: &str) -> Result<(RawCase, u64), Error> {
    // A case is an object: a list would read as the case's fields in order (`["a", "b"]` an
    // id and a description).
    if !line.trim_start().starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok() {
        let d = Diagnostic::new(
            "this line is JSON, but not an object (expected a JSON object per line: {\"id\", \"vars\", \"assert\"})",
        )
        .in_file(path);
        let column = line.len() - line.trim_start().len() + 1;
        return Err(placed(d, line, number, column as u64)
            .hint("a case looks like {\"id\": \"refund-late\", \"vars\": {\"input\": \"…\"}, \"assert\": [{\"type\": \"icontains\", \"value\": \"30 days\"}]}")
            .into());
    }
    let case: RawCase = serde_json::from_str(line).map_err(|e| {
        let message = user_words(&e.to_string());
        let d = Diagnostic::new(format!(
            "{message} (expected a JSON object per line: {{\"id\", \"vars\", \"assert\"}})"
        ))
        .in_file(path);
        let d = placed(d, line, number, crate::error::char_column(line, e.column() as u64));
        json_hint(
            d,
            &e,
            &message,
            "each line is one complete JSON object: check the quotes, commas, colons and brackets near the caret",
        )
    })?;
    Ok((case, number))
}

fn parse_json(path: &str, text: &str) -> Result<Vec<(RawCase, u64)>, Error> {
    // `{"cases": [...]}`, as a YAML dataset may be written: its cases one level deeper.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        cases: Vec<RawCase>,
    }
    let wrapped = text.trim_start().starts_with('{');
    let parsed = if wrapped {
        serde_json::from_str::<Wrapped>(text).map(|w| w.cases)
    } else {
        serde_json::from_str::<Vec<RawCase>>(text)
    };
    let cases: Vec<RawCase> = parsed.map_err(|e| {
        let message = user_words(&e.to_string());
        let shape = if wrapped {
            "expected {\"cases\": [...]} or a JSON array of cases"
        } else {
            "expected a JSON array of cases"
        };
        let d = Diagnostic::new(format!("{message} ({shape})")).in_file(path).at_byte(
            text,
            e.line() as u64,
            e.column() as u64,
        );
        json_hint(
            d,
            &e,
            &message,
            "the file is one JSON array of cases: check the quotes, commas, colons and brackets near the caret",
        )
    })?;
    // serde_json does not report where each element starts: one pass over the text finds them.
    let lines = Some(element_lines(text, if wrapped { 2 } else { 1 }))
        .filter(|lines| lines.len() == cases.len())
        .unwrap_or_else(|| vec![0; cases.len()]);
    Ok(cases.into_iter().zip(lines).collect())
}

/// The line each element of a JSON array of objects starts on: every `{` `depth` levels inside
/// the document (1 for an array of cases, 2 for `{"cases": [...]}`), outside strings.
fn element_lines(text: &str, at: usize) -> Vec<u64> {
    let (mut lines, mut line, mut depth) = (Vec::new(), 1u64, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for b in text.bytes() {
        match b {
            b'\n' => line += 1,
            _ if in_string => match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            },
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == at && b == b'{' {
                    lines.push(line);
                }
                depth += 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    lines
}

/// A syntax hint for malformed JSON; for JSON of the wrong shape, "did you mean" or the shape.
fn json_hint(d: Diagnostic, e: &serde_json::Error, message: &str, syntax_hint: &str) -> Diagnostic {
    if e.is_syntax() || e.is_eof() {
        return d.hint(syntax_hint);
    }
    let d = with_serde_hint(d, message);
    if d.hints.is_empty() {
        d.hint(r#"a case looks like {"id": "refund-late", "vars": {"input": "…"}, "assert": [{"type": "icontains", "value": "30 days"}]}"#)
    } else {
        d
    }
}

/// A JSON dataset's text assertion with a number or a boolean for its `value` checks that
/// value's JSON text (`1.5`, `false`): JSON has no unquoted words that change their meaning,
/// unlike YAML, whose such values are refused.
fn as_json_wrote((mut case, line): (RawCase, u64)) -> (RawCase, u64) {
    for a in &mut case.assert {
        let texty = matches!(
            a.kind.as_str(),
            "equals" | "contains" | "icontains" | "not-contains" | "not-icontains" | "starts-with" | "regex"
        );
        if let Some(v @ (Value::Number(_) | Value::Bool(_))) = &a.value
            && texty
        {
            a.value = Some(Value::String(v.to_string()));
        }
    }
    (case, line)
}

fn parse_yaml(path: &str, text: &str) -> Result<Vec<(RawCase, u64)>, Error> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        cases: Vec<serde_saphyr::Spanned<RawCase>>,
    }
    // A case's vars are the text the dataset writes: YAML 1.1's booleans (`country: NO`) and
    // numbers with leading zeros (`zip: 01234`) stay strings, as YAML 1.2 has them.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    let read = |text| serde_saphyr::from_str_with_options(text, options.clone());
    let cases: Vec<serde_saphyr::Spanned<RawCase>> = match read(text) {
        Ok(cases) => cases,
        Err(list_error) => match serde_saphyr::from_str_with_options::<Wrapped>(text, options.clone()) {
            Ok(w) => w.cases,
            // Report the error of the shape the file most looks like.
            Err(wrapped_error) if text.trim_start().starts_with("cases:") => {
                return Err(yaml_diagnostic(
                    path,
                    text,
                    &wrapped_error,
                    "a dataset: `cases:` followed by a list of {id, vars, assert}",
                )
                .into());
            }
            Err(_) => {
                return Err(yaml_diagnostic(path, text, &list_error, "a dataset: a list of {id, vars, assert}").into());
            }
        },
    };
    Ok(cases.into_iter().map(|s| (s.value, s.referenced.line())).collect())
}

/// CSV: one column per var, `id` and `description` columns, and `assert.<type>` columns whose
/// non-empty cells become assertions.
fn parse_csv(path: &str, text: &str) -> Result<Vec<(RawCase, u64)>, Error> {
    // The `csv` crate reads a quote never closed as a cell running to the end of the file: the
    // rows after it would vanish into one cell, or one row, with no error.
    if let Some(opened) = unclosed_quote(text) {
        let line = 1 + text.as_bytes()[..opened].iter().filter(|&&b| b == b'\n').count() as u64;
        let line_start = text[..opened].rfind('\n').map_or(0, |n| n + 1);
        let column = 1 + text[line_start..opened].chars().count() as u64;
        return Err(Diagnostic::new(
            "a quoted cell opened here is never closed: every line after it would be read as part of this cell",
        )
        .in_file(path)
        .at(text, line, column)
        .hint("close the cell with a \" (write a quote inside a quoted cell as \"\"), or leave the cell unquoted")
        .into());
    }
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| csv_diagnostic(path, text, &e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect::<Vec<_>>();
    if headers.iter().all(String::is_empty) {
        return Err(Diagnostic::new("the CSV dataset has no header row")
            .in_file(path)
            .at(text, 1, 1)
            .hint("the first row names the columns: id, input, assert.icontains, …")
            .into());
    }
    for (i, h) in headers.iter().enumerate() {
        let header_line = text.lines().next().unwrap_or_default();
        let column = header_line
            .find(h.as_str())
            .map_or(0, |byte| header_line[..byte].chars().count() as u64 + 1);
        if let Some(meant) = misspelt_assertion(h) {
            // Taken as a var, it would be an assertion silently never applied.
            return Err(Diagnostic::new(format!(
                "column `{h}` (column {}) looks like an assertion but is not written `assert.<type>`",
                i + 1
            ))
            .in_file(path)
            .at(text, 1, column)
            .hint(format!(
                "did you mean `{meant}`? Assertion columns are `assert.` (lowercase) and the type; a var of that name is written `vars.{h}`"
            ))
            .into());
        }
        if let Some(kind) = h.strip_prefix("assert.") {
            if kind == "json-path" || kind == "exec" {
                let (what, instead) = if kind == "exec" {
                    (
                        "exec scorers need a command",
                        "or put the scorer in the experiment's `assert:`",
                    )
                } else {
                    (
                        "json-path assertions need a path and a value",
                        "or use a regex assertion",
                    )
                };
                return Err(Diagnostic::new(format!("{what}, which a CSV cell cannot hold"))
                    .in_file(path)
                    .at(text, 1, column)
                    .hint(format!("write this dataset as JSONL or YAML, {instead}"))
                    .into());
            }
            if !super::ASSERTION_TYPES.contains(&kind) {
                let d = Diagnostic::new(format!("unknown assertion column `{h}` (column {})", i + 1))
                    .in_file(path)
                    .at(text, 1, column);
                let d = match crate::error::did_you_mean(kind, super::ASSERTION_TYPES.iter().copied()) {
                    Some(s) => d.hint(format!("did you mean `assert.{s}`?")),
                    None => d.hint(format!(
                        "assertion columns are assert.<type>, types: {}",
                        super::ASSERTION_TYPES.join(", ")
                    )),
                };
                return Err(d.into());
            }
        }
    }
    // A var named twice (`input` and `vars.input`, or one column twice) would let the later
    // column overwrite the earlier silently.
    let mut vars = std::collections::BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        if matches!(h.as_str(), "id" | "description" | "group") || h.starts_with("assert.") {
            continue;
        }
        let name = h.strip_prefix("vars.").filter(|n| !n.is_empty()).unwrap_or(h);
        if let Some(first) = vars.insert(name, i) {
            return Err(Diagnostic::new(format!(
                "columns {} and {} both name the var `{name}`",
                first + 1,
                i + 1
            ))
            .in_file(path)
            .at(text, 1, 1)
            .hint("keep one of them (`vars.input` is `input`)")
            .into());
        }
    }
    let mut cases = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_diagnostic(path, text, &e))?;
        let line = record.position().map_or(0, |p| csv_line(text, p));
        let mut case = RawCase {
            id: None,
            description: None,
            group: None,
            vars: serde_json::Map::new(),
            assert: Vec::new(),
        };
        for (header, cell) in headers.iter().zip(record.iter()) {
            match header.as_str() {
                // An empty cell is an id left out (a row cannot leave out a column): derived.
                "id" => case.id = Some(cell.to_owned()).filter(|c| !c.is_empty()),
                "description" => case.description = Some(cell.to_owned()).filter(|c| !c.is_empty()),
                "group" => case.group = Some(cell.to_owned()).filter(|c| !c.is_empty()),
                h if h.starts_with("assert.") => {
                    if !cell.is_empty() {
                        let kind = &h["assert.".len()..];
                        let value = match kind {
                            "max-length" => cell
                                .trim()
                                .parse::<u64>()
                                .map(Value::from)
                                .unwrap_or_else(|_| Value::String(cell.to_owned())),
                            // Types that need no value: any mark in the cell applies them
                            // (`pii` then with every built-in detector).
                            "json-valid" | "refusal" | "not-refusal" | "pii" => Value::Null,
                            _ => Value::String(cell.to_owned()),
                        };
                        case.assert.push(RawAssertion {
                            kind: kind.to_owned(),
                            value: Some(value).filter(|v| !v.is_null()),
                            path: None,
                            metric: None,
                            threshold: None,
                            method: None,
                            command: None,
                            allow: None,
                            context_var: None,
                        });
                    }
                }
                // `vars.input` is `input`, as the JSONL shape nests it.
                h => {
                    let name = h.strip_prefix("vars.").filter(|n| !n.is_empty()).unwrap_or(h);
                    case.vars.insert(name.to_owned(), Value::String(cell.to_owned()));
                }
            }
        }
        cases.push((case, line));
    }
    Ok(cases)
}

/// The `assert.<type>` column a CSV header was meant as, when it looks like one but is not
/// (`Assert.icontains`, `assert_icontains`, `assertcontains`, a bare `assert`,
/// `asert.icontains`): read as a var, it would be an assertion never applied. A column that
/// only starts alike (`asset`, `assertion`, `asset_contains`, `alert_regex`) is a var.
fn misspelt_assertion(header: &str) -> Option<String> {
    if header.starts_with("assert.") || header.starts_with("vars.") {
        return None;
    }
    let types = || super::ASSERTION_TYPES.iter().copied();
    let lower = header.to_lowercase();
    let (head, separator, rest) = match lower.find(['.', '_', '-', ':', ' ']) {
        Some(at) => (&lower[..at], &lower[at..=at], lower[at + 1..].trim()),
        None => (lower.as_str(), "", ""),
    };
    // The type meant: one written out, or nearly so when long enough not to be another word.
    let kind = |rest: &str| {
        (types().find(|t| *t == rest)).or_else(|| {
            (rest.chars().count() >= 6)
                .then(|| crate::error::did_you_mean(rest, types()))
                .flatten()
        })
    };
    let meant = |kind: Option<&str>| format!("assert.{}", kind.unwrap_or("<type>"));
    if head == "assert" || (head == "asserts" && rest.is_empty()) {
        return Some(meant(kind(rest)));
    }
    // Joined without a separator: `assertcontains`.
    if let Some(joined) = lower.strip_prefix("assert")
        && types().any(|t| t == joined)
    {
        return Some(meant(Some(joined)));
    }
    // `assert.` misspelt, the dot kept and a type written out: `asert.icontains`.
    let misspelt = separator == "." && crate::error::did_you_mean(head, ["assert"]).is_some();
    (misspelt && types().any(|t| t == rest)).then(|| meant(Some(rest)))
}

/// The line a CSV position starts on, counted from its byte offset: on a file whose lines end
/// in `\r\n` (as spreadsheets write them) the `csv` crate places a record at the `\n` that
/// ends the line before it, so its own line count lags one behind there. (A file whose lines
/// end in a lone `\r` is one line to every reader of lines here.)
fn csv_line(text: &str, position: &csv::Position) -> u64 {
    let bytes = text.as_bytes();
    let mut byte = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(bytes.len());
    // After blank lines it is placed at the first of their line ends: the record starts after
    // the last (a record never starts with a line end: a quoted field starts with its quote).
    while matches!(bytes.get(byte), Some(b'\n' | b'\r')) {
        byte += 1;
    }
    1 + bytes[..byte].iter().filter(|&&b| b == b'\n').count() as u64
}

/// Where a quoted CSV cell that is never closed opens (its byte offset), read as the `csv`
/// crate reads quotes: a quote opens a quoted cell only at the cell's start (elsewhere it is
/// text), `""` inside one is a quote, and the quote that closes it may be followed by more text.
fn unclosed_quote(text: &str) -> Option<usize> {
    let mut scan = QuoteScan::default();
    scan.feed(text.as_bytes());
    scan.unclosed().map(|(byte, _)| byte)
}

/// [`unclosed_quote`] over a stream, a piece at a time (a canary's CSV log is read so).
#[derive(Clone, Copy, Debug)]
pub struct QuoteScan {
    state: QuoteState,
    /// Bytes and line ends seen so far.
    bytes: usize,
    lines: u64,
    /// Every byte so far was the start of a byte-order mark.
    bom_so_far: bool,
}

impl Default for QuoteScan {
    fn default() -> QuoteScan {
        QuoteScan {
            state: QuoteState::CellStart,
            bytes: 0,
            lines: 0,
            bom_so_far: true,
        }
    }
}

/// Where a scan stands; a quoted cell keeps where it opened (byte offset, line from 1).
#[derive(Clone, Copy, Debug, Default)]
enum QuoteState {
    #[default]
    CellStart,
    Unquoted,
    Quoted(usize, u64),
    QuoteInQuoted(usize, u64),
}

impl QuoteScan {
    pub fn feed(&mut self, piece: &[u8]) {
        use QuoteState::*;
        const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
        for &b in piece {
            // A byte-order mark the file starts with is no text (the crate drops it), so a
            // quote right after it opens the first cell.
            if self.bytes < BOM.len() && self.bom_so_far && b == BOM[self.bytes] {
                self.bytes += 1;
                continue;
            }
            self.bom_so_far = false;
            let separator = matches!(b, b',' | b'\n' | b'\r');
            self.state = match (self.state, b) {
                (CellStart, b'"') => Quoted(self.bytes, self.lines + 1),
                (CellStart | Unquoted, _) if separator => CellStart,
                (CellStart | Unquoted, _) => Unquoted,
                (Quoted(at, line), b'"') => QuoteInQuoted(at, line),
                (Quoted(at, line), _) => Quoted(at, line),
                (QuoteInQuoted(at, line), b'"') => Quoted(at, line),
                (QuoteInQuoted(..), _) if separator => CellStart,
                (QuoteInQuoted(..), _) => Unquoted,
            };
            self.bytes += 1;
            self.lines += u64::from(b == b'\n');
        }
    }

    /// At the end of the text: where a quoted cell never closed opens (byte offset, line).
    pub fn unclosed(&self) -> Option<(usize, u64)> {
        match self.state {
            QuoteState::Quoted(at, line) => Some((at, line)),
            _ => None,
        }
    }
}

fn csv_diagnostic(path: &str, text: &str, e: &csv::Error) -> Error {
    let line = e.position().map_or(0, |p| csv_line(text, p));
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} fields, the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the CSV is not valid UTF-8".to_owned(),
        _ => e.to_string(),
    };
    Diagnostic::new(format!("{message} (expected CSV with a header row)"))
        .in_file(path)
        .at(text, line, 0)
        .hint("quote cells that contain commas or line breaks with \"…\"")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_meant_as_an_assertion_is_told_from_a_var() {
        for (header, meant) in [
            ("Assert.icontains", "assert.icontains"),
            ("ASSERT.icontains", "assert.icontains"),
            ("assert_icontains", "assert.icontains"),
            ("assert-regex", "assert.regex"),
            ("assert", "assert.<type>"),
            ("asert.icontains", "assert.icontains"),
            ("assret.contains", "assert.contains"),
            ("assertcontains", "assert.contains"),
            ("asserticontains", "assert.icontains"),
            ("assert_message", "assert.<type>"),
            ("assert_id", "assert.<type>"),
        ] {
            assert_eq!(misspelt_assertion(header).as_deref(), Some(meant), "{header}");
        }
        for var in [
            "assert.icontains",
            "vars.assert",
            "asset",
            "asset_id",
            "asset_contains",
            "alert_regex",
            "asset_regex",
            "insert_contains",
            "assets_pii",
            "alert_relevance",
            "assertive",
            "assertion",
            "assessment.notes",
            "input",
            "id",
            "group",
            "expected",
        ] {
            assert_eq!(misspelt_assertion(var), None, "{var}");
        }
    }

    /// [`parse`] of `text` as the file `path`, a similarity without a method being ROUGE-L.
    fn parse_rouge(tree: &crate::workspace::MemTree, path: &str, text: &str) -> (Vec<Case>, Vec<Error>) {
        parse(
            tree,
            path,
            text,
            &mut BTreeSet::new(),
            super::super::SimilarityMethod::RougeL,
        )
    }

    /// A parse's cases when it found no error, or its first error.
    trait Parsed {
        fn unwrap(self) -> Vec<Case>;
        fn unwrap_err(self) -> Error;
    }

    impl Parsed for (Vec<Case>, Vec<Error>) {
        fn unwrap(self) -> Vec<Case> {
            assert!(self.1.is_empty(), "{:?}", self.1);
            self.0
        }

        fn unwrap_err(self) -> Error {
            self.1.into_iter().next().expect("an error")
        }
    }

    /// A similarity that names no method takes the one the suite gives (embeddings when it has
    /// an embedder); one that names a method keeps it.
    #[test]
    fn a_similarity_without_a_method_takes_the_suites_default() {
        use super::super::{Check, SimilarityMethod};
        let tree = crate::workspace::MemTree::default();
        let text = "{\"id\": \"a\", \"vars\": {\"input\": \"q\"}, \"assert\": [{\"type\": \"similarity\", \"value\": \"x\"}]}\n\
                    {\"id\": \"b\", \"vars\": {\"input\": \"q\"}, \"assert\": [{\"type\": \"similarity\", \"value\": \"x\", \"method\": \"rouge-l\"}]}\n";
        let method = |default| -> Vec<SimilarityMethod> {
            parse(&tree, "cases.jsonl", text, &mut BTreeSet::new(), default)
                .unwrap()
                .iter()
                .map(|c| match &c.asserts[0].check {
                    Check::Similarity { method, .. } => *method,
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        assert_eq!(
            method(SimilarityMethod::Embeddings),
            [SimilarityMethod::Embeddings, SimilarityMethod::RougeL]
        );
        assert_eq!(
            method(SimilarityMethod::RougeL),
            [SimilarityMethod::RougeL, SimilarityMethod::RougeL]
        );
    }

    #[test]
    fn derived_ids_have_64_bits() {
        let mut vars = serde_json::Map::new();
        vars.insert("input".to_owned(), Value::String("hi".to_owned()));
        // python3 -c 'import hashlib; print(hashlib.sha256(b"{\"input\":\"hi\"}").hexdigest()[:16])'
        assert_eq!(derived_id(&vars), "case-ee1235d4b1b4d1b5");
    }

    /// A dataset written as one JSON array numbers its cases by the line each starts on.
    /// A YAML dataset's vars are the text written: `NO` is not false, `01234` not 1234.0, and
    /// a text assertion's `no` is the word.
    #[test]
    fn a_yaml_datasets_vars_keep_the_text_written() {
        let text = "- id: a\n  vars: {input: Q, country: NO, zip: 01234, answer: yes, flag: true, n: 12}\n  assert: [{type: not-icontains, value: no}]\n";
        let cases = parse_yaml("cases.yaml", text).unwrap();
        let vars = &cases[0].0.vars;
        assert_eq!(vars["country"], Value::String("NO".to_owned()));
        assert_eq!(vars["zip"], Value::String("01234".to_owned()));
        assert_eq!(vars["answer"], Value::String("yes".to_owned()));
        assert_eq!(vars["flag"], Value::Bool(true));
        assert_eq!(vars["n"], serde_json::json!(12));
        assert_eq!(cases[0].0.assert[0].value, Some(Value::String("no".to_owned())));
    }

    /// JSON has no words that change meaning unquoted: a text assertion's number or boolean
    /// there is its JSON text, as before YAML's were refused.
    #[test]
    fn a_json_datasets_text_assertion_checks_a_numbers_json_text() {
        let (case, _) = parse_jsonl_line(
            "cases.jsonl",
            1,
            r#"{"id": "a", "vars": {"input": "q"}, "assert": [{"type": "contains", "value": 1.5}, {"type": "equals", "value": false}, {"type": "max-length", "value": 10}]}"#,
        )
        .map(as_json_wrote)
        .unwrap();
        let values: Vec<&Value> = case.assert.iter().filter_map(|a| a.value.as_ref()).collect();
        assert_eq!(
            values,
            [
                &serde_json::json!("1.5"),
                &serde_json::json!("false"),
                &serde_json::json!(10)
            ]
        );
    }

    #[test]
    fn a_json_array_dataset_keeps_each_cases_line() {
        let text = "[\n  {\"id\": \"a\", \"vars\": {\"input\": \"x\"}},\n\n  {\"id\": \"b\",\n   \"vars\": {\"input\": \"y\"}}\n]\n";
        let lines: Vec<u64> = parse_json("cases.json", text)
            .unwrap()
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        assert_eq!(lines, [2, 4]);
    }

    /// A JSON dataset may wrap its cases as a YAML one may (`{"cases": [...]}`), each case
    /// keeping its line.
    #[test]
    fn a_json_dataset_may_wrap_its_cases() {
        let text = "{\"cases\": [\n  {\"id\": \"a\", \"vars\": {\"input\": \"x\"}},\n  {\"id\": \"b\", \"vars\": {\"input\": \"y\"}}\n]}\n";
        let cases = parse_json("cases.json", text).unwrap();
        let read: Vec<(Option<&str>, u64)> = cases.iter().map(|(c, line)| (c.id.as_deref(), *line)).collect();
        assert_eq!(read, [(Some("a"), 2), (Some("b"), 3)]);
        // A wrapper that does not fit says what it expected.
        let e = parse_json("cases.json", "{\"case\": []}")
            .map(|_| ())
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("expected {\"cases\": [...]} or a JSON array of cases"),
            "{e}"
        );
    }

    /// An error on each of many lines is placed at its own line, read from an index of the
    /// lines made once (counting the lines before each error made a dataset wrong on all of its
    /// 100,000 lines take minutes to report; not timed here), and reads as before.
    #[test]
    fn errors_on_many_lines_are_placed_at_once() {
        let tree = crate::workspace::MemTree::default();
        let text: String = (0..30_000)
            .map(|i| format!("{{\"id\": \"c{i}\", \"bogus\": 1}}\n"))
            .collect();
        let (cases, errors) = parse_rouge(&tree, "cases.jsonl", &text);
        assert!(cases.is_empty());
        assert_eq!(errors.len(), super::super::problems::SHOWN + 1);
        let first = errors[0].to_string();
        assert!(
            first.contains("cases.jsonl:1:") && first.contains("{\"id\": \"c0\", \"bogus\": 1}"),
            "{first}"
        );
        assert!(errors[19].to_string().contains("cases.jsonl:20:"), "{}", errors[19]);
        let dup = "{\"id\": \"a\"}\n\n{\"id\": \"a\"}\r\n";
        let (_, errors) = parse_rouge(&tree, "d.jsonl", dup);
        let e = errors[0].to_string();
        assert!(e.contains("d.jsonl:3:2") && e.contains(" 3 | {\"id\": \"a\"}\n"), "{e}");
    }

    /// A CSV's lines are counted alike whether they end in `\n` or `\r\n` (spreadsheets
    /// write the second; the `csv` crate's own count lagged one behind there), and an empty
    /// `id` cell is an id left out: derived from the vars, as a JSONL case without one is.
    #[test]
    fn csv_lines_ending_in_crlf_are_placed_and_an_empty_id_cell_is_derived() {
        for end in ["\n", "\r\n"] {
            let text = ["id,input", "c1,a", "c2,b,extra", "c3,c"].join(end) + end;
            let tree = crate::workspace::MemTree::new([("d.csv", text.as_str())]);
            let e = parse_rouge(&tree, "d.csv", &text).unwrap_err().to_string();
            assert!(e.contains("d.csv:3") && e.contains(" 3 | c2,b,extra"), "{end:?}: {e}");
            // After blank lines (the review's case: placed at the first blank line's end).
            let text = ["id,input", "c1,a", "", "", "c2,b,extra", "c3,c"].join(end) + end;
            let tree = crate::workspace::MemTree::new([("d.csv", text.as_str())]);
            let e = parse_rouge(&tree, "d.csv", &text).unwrap_err().to_string();
            assert!(e.contains("d.csv:5") && e.contains(" 5 | c2,b,extra"), "{end:?}: {e}");
            let text = ["id,input", "c1,a", ",b", "c3,c"].join(end) + end;
            let tree = crate::workspace::MemTree::new([("d.csv", text.as_str())]);
            let cases = parse_rouge(&tree, "d.csv", &text).unwrap();
            let b = cases[1].id.as_str();
            assert!(!b.is_empty() && b != "c1" && b != "c3", "{end:?}: {b:?}");
            assert_eq!(cases[2].line, 4, "{end:?}");
        }
    }

    /// A CSV column may name a var as the JSONL shape nests it: `vars.input` is `input`.
    /// A quote never closed once swallowed every row after it into one cell: `validate` read
    /// one case of four and passed.
    #[test]
    fn a_csv_quote_never_closed_is_an_error_where_it_opens() {
        for (text, line) in [
            ("id,vars.input\nc0,\"oops\nc1,hello\nc2,world\n", 2),
            ("id,input,assert.icontains\nc0,\"a, b\",x\nc1,\"oops,y\nc2,z,w\n", 3),
            ("id,input\r\nc0,ok\r\nc1,\"never \"\"closed\r\n", 3),
            ("id,input,x\nc1,ééé,\"oops\n", 2),
        ] {
            let tree = crate::workspace::MemTree::new([("d.csv", text)]);
            let e = parse_rouge(&tree, "d.csv", text).unwrap_err().to_string();
            assert!(
                e.contains("never closed") && e.contains(&format!("d.csv:{line}:")),
                "{text:?}: {e}"
            );
            // Its column counts characters: the quote after `ééé,` is the eighth.
            if text.contains('é') {
                assert!(e.contains("d.csv:2:8"), "{e}");
            }
            assert!(e.contains("hint:"), "{e}");
        }
        // Closed quotes, doubled quotes, a quote inside an unquoted cell, text after a closing
        // quote and a quoted cell over two lines all read as the crate reads them.
        // After a byte-order mark a quote still opens the first cell.
        assert_eq!(unclosed_quote("\u{FEFF}\"id,\",input\nc0,x\n"), None);
        assert_eq!(unclosed_quote("\u{FEFF}\"id,input\nc0,x\n"), Some(3));
        for text in [
            "id,input\nc0,\"a \"\"b\"\" c\"\nc1,say \"hi\nc2,\"x\"y\n",
            "id,input\nc0,\"two\nlines\"\nc1,z",
        ] {
            assert_eq!(unclosed_quote(text), None, "{text:?}");
            let tree = crate::workspace::MemTree::new([("d.csv", text)]);
            assert_eq!(
                parse_rouge(&tree, "d.csv", text).unwrap().len(),
                3 - usize::from(text.contains("lines")),
                "{text:?}"
            );
        }
    }

    #[test]
    fn csv_vars_columns_with_or_without_their_prefix() {
        let text = "id,vars.input,context,assert.icontains\nrefund,Can I get a refund?,Policy: 30 days.,30 days\n";
        let tree = crate::workspace::MemTree::new([("cases.csv", text)]);
        let cases = parse_rouge(&tree, "cases.csv", text).unwrap();
        assert_eq!(
            cases[0].vars.get("input"),
            Some(&Value::String("Can I get a refund?".to_owned()))
        );
        assert_eq!(
            cases[0].vars.get("context"),
            Some(&Value::String("Policy: 30 days.".to_owned()))
        );
        assert!(cases[0].vars.get("vars.input").is_none());
        assert_eq!(cases[0].asserts.len(), 1);
        let both = "id,input,vars.input\nrefund,a,b\n";
        let tree = crate::workspace::MemTree::new([("both.csv", both)]);
        let e = parse_rouge(&tree, "both.csv", both).unwrap_err().to_string();
        assert!(e.contains("columns 2 and 3 both name the var `input`"), "{e}");
    }

    #[test]
    fn cases_whose_assertions_are_written_alike_share_one_list_and_an_error_names_its_case() {
        let text = concat!(
            r#"{"id": "a", "vars": {"input": "x"}, "assert": [{"type": "icontains", "value": "30 days"}]}"#,
            "\n",
            r#"{"id": "b", "vars": {"input": "y"}, "assert": [{"type": "icontains", "value": "30 days"}]}"#,
            "\n",
            r#"{"id": "c", "vars": {"input": "z"}, "assert": [{"type": "icontains", "value": "45 days"}]}"#,
            "\n",
            r#"{"id": "d", "vars": {"input": "w"}}"#,
            "\n",
        );
        let tree = crate::workspace::MemTree::new([("cases.jsonl", text)]);
        let cases = parse_rouge(&tree, "cases.jsonl", text).unwrap();
        let [a, b, c, d] = &cases[..] else {
            panic!("{} cases", cases.len())
        };
        assert!(Arc::ptr_eq(&a.asserts, &b.asserts) && Arc::ptr_eq(&a.assert_source, &b.assert_source));
        assert!(!Arc::ptr_eq(&a.asserts, &c.asserts));
        // Each case still holds its own checks, and an absent list is empty, not another's.
        let value = |case: &Case| match &case.asserts[0].check {
            super::super::Check::IContains(v) => v.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (value(a), value(b), value(c)),
            ("30 days".into(), "30 days".into(), "45 days".into())
        );
        assert!(d.asserts.is_empty());
        assert_eq!(&*d.assert_source, "[]");
        assert_ne!(a.assert_source, c.assert_source);

        // A bad list's first error is at its first case (a later case written alike is
        // reported after it).
        let bad = concat!(
            r#"{"id": "ok", "vars": {"input": "x"}}"#,
            "\n",
            r#"{"id": "first", "vars": {"input": "y"}, "assert": [{"type": "regex", "value": "("}]}"#,
            "\n",
            r#"{"id": "second", "vars": {"input": "z"}, "assert": [{"type": "regex", "value": "("}]}"#,
            "\n",
        );
        let tree = crate::workspace::MemTree::new([("cases.jsonl", bad)]);
        let error = parse_rouge(&tree, "cases.jsonl", bad).unwrap_err().to_string();
        assert!(error.contains("case `first`") && !error.contains("second"), "{error}");
    }
}
