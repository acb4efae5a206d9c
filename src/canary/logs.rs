//! Request logs as JSON lines or CSV, read through the configured field map, streamed line by
//! line: a 200 MB log is never held in memory, only its records (a few numbers each).

use std::io::BufRead;

use super::jsonline::{self, Light, Wanted};

use super::records::{Costing, Problem, ReadNotes, Record, Records};
use super::time::{from_epoch_number, parse_rfc3339};
use crate::providers::Usage;
use crate::suite::canary::{ArmSelector, Fields, LogFormat};

/// Everything a reader needs besides the bytes.
pub struct LogSpec<'a> {
    pub format: LogFormat,
    pub arms: &'a ArmSelector,
    pub fields: &'a Fields,
    pub costing: Costing<'a>,
    /// Seconds a timestamp may lag the latest one seen before it counts as out of order.
    pub max_clock_skew: f64,
}

/// Reads every line of `input` into records of the two arms; unusable lines go to the notes.
/// Only an unreadable stream (an I/O error) is an `Err`.
pub fn read_logs(input: impl BufRead, spec: &LogSpec<'_>) -> std::io::Result<(Records, ReadNotes)> {
    match spec.format {
        LogFormat::Jsonl => read_jsonl(input, spec),
        LogFormat::Csv => read_csv(input, spec),
    }
}

/// One quantity's value as found in a line: JSON or CSV text, read by one set of rules.
#[derive(Clone, Copy)]
enum Cell<'a> {
    Json(&'a Light<'a>),
    Text(&'a str),
}

/// A field whose value does not fit: the line is unusable (wrong type), with what was expected.
struct Misfit(String);

impl Cell<'_> {
    fn number(self, name: &str) -> Result<Option<f64>, Misfit> {
        match self {
            Cell::Json(Light::Null) => Ok(None),
            Cell::Json(Light::Number(n)) => Ok(n.as_f64()),
            Cell::Json(Light::Str(s)) => Cell::Text(s).number(name),
            Cell::Text(t) if t.trim().is_empty() => Ok(None),
            Cell::Text(t) => match t.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(Misfit(format!("`{name}` is `{t}`, expected a number"))),
            },
            Cell::Json(other) => Err(Misfit(format!("`{name}` is {}, expected a number", kind(other)))),
        }
    }

    /// Booleans as logs write them: true/false, 1/0, yes/no, and the field's own words.
    fn flag(self, name: &str, words: (&str, &str)) -> Result<Option<bool>, Misfit> {
        match self {
            Cell::Json(Light::Null) => Ok(None),
            Cell::Json(Light::Bool(b)) => Ok(Some(*b)),
            Cell::Json(Light::Number(n)) => match n.as_f64() {
                Some(1.0) => Ok(Some(true)),
                Some(0.0) => Ok(Some(false)),
                _ => Err(Misfit(format!("`{name}` is {n}, expected true or false"))),
            },
            Cell::Json(Light::Str(s)) => Cell::Text(s).flag(name, words),
            Cell::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "" => Ok(None),
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                w if w == words.0 => Ok(Some(true)),
                w if w == words.1 => Ok(Some(false)),
                _ => Err(Misfit(format!("`{name}` is `{t}`, expected true or false"))),
            },
            Cell::Json(other) => Err(Misfit(format!("`{name}` is {}, expected true or false", kind(other)))),
        }
    }

    /// An error field: anything but null, false, 0 or an empty string means the request failed
    /// (logs often write the error's message or object there).
    fn error(self) -> bool {
        match self {
            Cell::Json(Light::Null) => false,
            Cell::Json(Light::Bool(b)) => *b,
            Cell::Json(Light::Number(n)) => n.as_f64() != Some(0.0),
            Cell::Json(Light::Str(s)) => Cell::Text(s).error(),
            Cell::Json(_) => true,
            Cell::Text(t) => !matches!(
                t.trim().to_ascii_lowercase().as_str(),
                "" | "false" | "0" | "no" | "null"
            ),
        }
    }

    fn text(self) -> Option<String> {
        match self {
            Cell::Json(Light::Str(s)) => Some(s.to_string()),
            Cell::Json(Light::Number(n)) => Some(n.to_string()),
            Cell::Json(Light::Bool(b)) => Some(b.to_string()),
            Cell::Text(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            _ => None,
        }
    }

    fn timestamp(self) -> Result<Option<f64>, Misfit> {
        let misfit = |shown: String| Misfit(format!("timestamp `{shown}` is neither RFC 3339 nor Unix epoch"));
        match self {
            Cell::Json(Light::Null) => Ok(None),
            Cell::Json(Light::Number(n)) => n
                .as_f64()
                .and_then(from_epoch_number)
                .map(Some)
                .ok_or_else(|| misfit(n.to_string())),
            Cell::Json(Light::Str(s)) => Cell::Text(s).timestamp(),
            Cell::Text(t) if t.trim().is_empty() => Ok(None),
            Cell::Text(t) => parse_rfc3339(t)
                .or_else(|| t.trim().parse::<f64>().ok().and_then(from_epoch_number))
                .map(Some)
                .ok_or_else(|| misfit(t.to_owned())),
            Cell::Json(other) => Err(misfit(kind(other).to_owned())),
        }
    }
}

fn kind(v: &Light<'_>) -> &'static str {
    match v {
        Light::Null => "null",
        Light::Bool(_) => "a boolean",
        Light::Number(_) => "a number",
        Light::Str(_) => "a string",
        Light::List => "a list",
        Light::Object(_) => "an object",
    }
}

/// The quantities of the field map, in one order, with the names notes count them by.
const QUANTITIES: [&str; 12] = [
    "timestamp",
    "model",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cost_usd",
    "error",
    "thumbs_up",
    "thumbs_down",
    "quality",
    "hallucination",
];

fn paths(fields: &Fields) -> [&str; 12] {
    [
        &fields.timestamp,
        &fields.model,
        &fields.latency_ms,
        &fields.input_tokens,
        &fields.output_tokens,
        &fields.cached_input_tokens,
        &fields.cost_usd,
        &fields.error,
        &fields.thumbs_up,
        &fields.thumbs_down,
        &fields.quality,
        &fields.hallucination,
    ]
}

/// Records per quantity (in [`QUANTITIES`]' order) that carried it, counted in an array while
/// reading and added to [`ReadNotes::present`] at the end.
#[derive(Default)]
struct Present([u64; 12]);

impl Present {
    fn into_notes(self, notes: &mut ReadNotes) {
        for (quantity, n) in QUANTITIES.iter().zip(self.0) {
            if n > 0 {
                *notes.present.entry(quantity).or_default() += n;
            }
        }
    }
}

/// Where a parsed line goes: a record of one arm, another arm's, or no arm at all.
enum Routed {
    Arm(bool, Record),
    Other(String),
    NoArm,
}

/// Turns one line's cells (looked up by `cell`) into a record. Shared by JSON and CSV, so both
/// read values by the same rules.
fn build<'a>(
    spec: &LogSpec<'_>,
    notes: &mut ReadNotes,
    present: &mut Present,
    arm: Option<Cell<'a>>,
    cell: impl Fn(usize) -> Option<Cell<'a>>,
) -> Result<Routed, (Problem, Misfit)> {
    let value = |i: usize| cell(i);
    // Compared where it lies: a million lines need not each copy their arm.
    let arm_text = match arm {
        Some(Cell::Json(Light::Str(s))) => Some(s.as_ref()),
        Some(Cell::Text(t)) if !t.trim().is_empty() => Some(t.trim()),
        _ => None,
    };
    let is_canary = match arm_text {
        Some(a) if a == spec.arms.canary => true,
        Some(a) if a == spec.arms.baseline => false,
        _ => match arm.and_then(Cell::text) {
            Some(other) if other == spec.arms.canary => true,
            Some(other) if other == spec.arms.baseline => false,
            Some(other) => return Ok(Routed::Other(other)),
            None => return Ok(Routed::NoArm),
        },
    };
    let bad = |m: Misfit| (Problem::BadValue, m);
    let num = |i: usize| value(i).map_or(Ok(None), |c| c.number(QUANTITIES[i])).map_err(bad);
    let time = value(0)
        .map_or(Ok(None), Cell::timestamp)
        .map_err(|m| (Problem::BadTimestamp, m))?;
    let model = value(1).and_then(Cell::text);
    let latency_ms = num(2)?;
    let tokens = [num(3)?, num(4)?, num(5)?];
    let logged_cost = num(6)?;
    let error = value(7).is_some_and(Cell::error);
    let thumbs_up = value(8)
        .map_or(Ok(None), |c| c.flag("thumbs_up", ("up", "down")))
        .map_err(bad)?;
    let thumbs_down = value(9)
        .map_or(Ok(None), |c| c.flag("thumbs_down", ("down", "up")))
        .map_err(bad)?;
    let quality = num(10)?;
    let hallucination = value(11)
        .map_or(Ok(None), |c| c.flag("hallucination", ("hallucinated", "grounded")))
        .map_err(bad)?;
    // No time, token count or cost is negative: such a value is the export's mistake, and
    // counted as one (a negative cost made a mean no ratio could be taken of, and the canary
    // held with "no request carries" the cost every request carried).
    for (i, v) in [
        (2, latency_ms),
        (3, tokens[0]),
        (4, tokens[1]),
        (5, tokens[2]),
        (6, logged_cost),
    ] {
        if v.is_some_and(|x| x < 0.0) {
            return Err(bad(Misfit(format!("`{}` is negative", QUANTITIES[i]))));
        }
    }
    let usage = match tokens {
        [Some(input), Some(output), cached] if input >= 0.0 && output >= 0.0 => Some(Usage {
            input: input as u64,
            output: output as u64,
            cached_input: cached.unwrap_or(0.0).max(0.0) as u64,
        }),
        _ => None,
    };
    for (i, present_here) in [
        time.is_some(),
        model.is_some(),
        latency_ms.is_some(),
        tokens[0].is_some(),
        tokens[1].is_some(),
        tokens[2].is_some(),
        logged_cost.is_some(),
        value(7).is_some(),
        thumbs_up.is_some(),
        thumbs_down.is_some(),
        quality.is_some(),
        hallucination.is_some(),
    ]
    .into_iter()
    .enumerate()
    {
        present.0[i] += u64::from(present_here);
    }
    let (cost_usd, unpriced) = spec.costing.cost(logged_cost, model.as_deref(), usage, notes);
    let record = Record {
        time: time.unwrap_or(f64::NAN),
        latency_ms,
        cost_usd,
        error,
        thumbs_down: thumbs_down.or(thumbs_up.map(|up| !up)),
        quality,
        hallucination,
        unpriced,
    };
    Ok(Routed::Arm(is_canary, record))
}

/// Each arm's requests are logged in time order, though servers' clocks may interleave a
/// little; beyond the allowed skew a line is out of order, which means two logs of the arm were
/// concatenated (a rotated file after the current one, or the same file twice), whose requests
/// the run would count twice. The arms are apart: logs written arm by arm (every baseline
/// request, then every canary request over the same hours) are in order.
struct Clock {
    latest: f64,
    latest_line: u64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            latest: f64::NEG_INFINITY,
            latest_line: 0,
        }
    }
}

/// The baseline's clock and the canary's.
#[derive(Default)]
struct Clocks([Clock; 2]);

impl Clocks {
    fn arm(&mut self, canary: bool) -> &mut Clock {
        &mut self.0[usize::from(canary)]
    }
}

impl Clock {
    fn check(&mut self, time: f64, line: u64, skew: f64) -> Result<(), String> {
        if !time.is_finite() {
            return Ok(());
        }
        if time + skew < self.latest {
            return Err(format!(
                "{} is {} before line {}'s {}",
                super::time::format_utc(time),
                super::time::span(self.latest - time),
                self.latest_line,
                super::time::format_utc(self.latest)
            ));
        }
        if time > self.latest || !self.latest.is_finite() {
            self.latest = time;
            self.latest_line = line;
        }
        Ok(())
    }
}

fn route(records: &mut Records, notes: &mut ReadNotes, routed: Routed) {
    match routed {
        Routed::Arm(true, r) => records.canary.push(r),
        Routed::Arm(false, r) => records.baseline.push(r),
        Routed::Other(arm) => *notes.other_arms.entry(arm).or_default() += 1,
        Routed::NoArm => notes.without_arm += 1,
    }
}

fn read_jsonl(mut input: impl BufRead, spec: &LogSpec<'_>) -> std::io::Result<(Records, ReadNotes)> {
    let mut records = Records::default();
    let mut notes = ReadNotes::default();
    let mut present = Present::default();
    let field_paths = paths(spec.fields).map(split_path);
    let arm_path = split_path(&spec.arms.field);
    let wanted = Wanted::for_paths(field_paths.iter().chain([&arm_path]).map(|p| p.parts.as_slice()));
    let mut clocks = Clocks::default();
    let mut buffer = Vec::with_capacity(1024);
    let mut line_no = 0u64;
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        line_no += 1;
        let bytes = line_bytes(&buffer, line_no);
        if bytes.is_empty() {
            continue;
        }
        notes.lines += 1;
        let text = || String::from_utf8_lossy(bytes).into_owned();
        let value = match jsonline::parse(bytes, &wanted) {
            Ok(v) => v,
            Err(e) => {
                notes
                    .problems
                    .add(Problem::Malformed, line_no, e.column() as u64, json_error(&e), &text());
                continue;
            }
        };
        if !matches!(value, Light::Object(_)) {
            notes.problems.add(
                Problem::NotObject,
                line_no,
                1,
                format!("the line is {}, expected an object", kind(&value)),
                &text(),
            );
            continue;
        }
        let arm = lookup(&value, &arm_path).map(Cell::Json);
        match build(spec, &mut notes, &mut present, arm, |i| {
            lookup(&value, &field_paths[i]).map(Cell::Json)
        }) {
            Ok(routed) => {
                if let Routed::Arm(canary, r) = &routed
                    && let Err(why) = clocks.arm(*canary).check(r.time, line_no, spec.max_clock_skew)
                {
                    notes.problems.add(Problem::OutOfOrder, line_no, 1, why, &text());
                    continue;
                }
                route(&mut records, &mut notes, routed);
            }
            Err((problem, Misfit(why))) => notes.problems.add(problem, line_no, 1, why, &text()),
        }
    }
    present.into_notes(&mut notes);
    Ok((records, notes))
}

fn read_csv(input: impl BufRead, spec: &LogSpec<'_>) -> std::io::Result<(Records, ReadNotes)> {
    let mut records = Records::default();
    let mut notes = ReadNotes::default();
    let mut present = Present::default();
    // Every byte read goes through a scan of its quotes: the `csv` crate reads a quote never
    // closed as a cell running to the end of the file, every row after it lost.
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(Scanned {
        inner: input,
        scan: crate::suite::QuoteScan::default(),
    });
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            notes.lines += 1;
            notes
                .problems
                .add(Problem::Malformed, 1, 1, format!("the header is not CSV: {e}"), "");
            return Ok((records, notes));
        }
    };
    let column = |name: &str| headers.iter().position(|h| h.trim() == name);
    let field_columns = paths(spec.fields).map(column);
    let arm_column = column(&spec.arms.field);
    let mut clocks = Clocks::default();
    let mut row = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(std::io::Error::other(e.to_string()));
                }
                let line = e.position().map_or(0, csv::Position::line);
                notes.lines += 1;
                notes.problems.add(
                    Problem::Malformed,
                    line,
                    1,
                    format!("not a CSV row like the header: {e}"),
                    "",
                );
                continue;
            }
        }
        let line_no = row.position().map_or(0, csv::Position::line);
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        notes.lines += 1;
        let arm = arm_column.and_then(|i| row.get(i)).map(Cell::Text);
        let routed = build(spec, &mut notes, &mut present, arm, |i| {
            field_columns[i].and_then(|c| row.get(c)).map(Cell::Text)
        });
        let text = || row.iter().collect::<Vec<_>>().join(",");
        match routed {
            Ok(routed) => {
                if let Routed::Arm(canary, r) = &routed
                    && let Err(why) = clocks.arm(*canary).check(r.time, line_no, spec.max_clock_skew)
                {
                    notes.problems.add(Problem::OutOfOrder, line_no, 1, why, &text());
                    continue;
                }
                route(&mut records, &mut notes, routed);
            }
            Err((problem, Misfit(why))) => notes.problems.add(problem, line_no, 1, why, &text()),
        }
    }
    if let Some((_, line)) = reader.get_ref().scan.unclosed() {
        notes.cut = Some((
            line,
            "a quoted cell opened on it is never closed: every line after it would be read as part of that cell"
                .to_owned(),
        ));
    }
    present.into_notes(&mut notes);
    Ok((records, notes))
}

/// A reader whose bytes pass through a [`crate::suite::QuoteScan`] as they are read.
struct Scanned<R> {
    inner: R,
    scan: crate::suite::QuoteScan,
}

impl<R: std::io::Read> std::io::Read for Scanned<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan.feed(&buf[..n]);
        Ok(n)
    }
}

/// serde_json's message without its "at line 1 column 55": the line is the log's, not 1.
pub(super) fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Line `line_no`'s bytes without the whitespace around them, nor, on the first line, the
/// byte-order mark some editors and Windows tools put first, which is no part of the JSON (the
/// audit: the first line was counted malformed).
pub(super) fn line_bytes(buffer: &[u8], line_no: u64) -> &[u8] {
    match line_no {
        1 => trim_ascii(buffer.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buffer)),
        _ => trim_ascii(buffer),
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A dotted path split once per run: `rest[k]` is `parts[k..]` joined again, the whole key
/// tried at level `k` before descending, so no line pays for joining it.
struct FieldPath {
    parts: Vec<String>,
    rest: Vec<String>,
}

fn split_path(path: &str) -> FieldPath {
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    let rest = (0..parts.len()).map(|k| parts[k..].join(".")).collect();
    FieldPath { parts, rest }
}

/// The value at a dotted path. A key that itself contains dots (`gen_ai.usage` written flat)
/// is tried whole before the path is split.
fn lookup<'v, 'a>(value: &'v Light<'a>, path: &FieldPath) -> Option<&'v Light<'a>> {
    let mut value = value;
    for k in 0..path.parts.len() {
        if path.parts.len() - k > 1
            && let Some(v) = value.get(&path.rest[k])
        {
            return Some(v);
        }
        value = value.get(&path.parts[k])?;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::pricing::PriceTable;
    use crate::suite::canary::RawFields;

    fn arms() -> ArmSelector {
        ArmSelector {
            field: "variant".to_owned(),
            baseline: "v1".to_owned(),
            canary: "v2".to_owned(),
        }
    }

    fn read(format: LogFormat, fields: &Fields, text: &str) -> (Records, ReadNotes) {
        let prices = PriceTable::default();
        let arms = arms();
        let spec = LogSpec {
            format,
            arms: &arms,
            fields,
            costing: Costing { prices: &prices },
            max_clock_skew: 300.0,
        };
        read_logs(text.as_bytes(), &spec).unwrap()
    }

    fn contract_fields() -> Fields {
        // The field map of DESIGN.md's canary example.
        let raw: RawFields = serde_saphyr::from_str(
            "{timestamp: ts, model: model, latency_ms: latency_ms, input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, error: error, thumbs_up: feedback.up, quality: quality, hallucination: hallucinated}",
        )
        .unwrap();
        Fields::resolve(Some(&raw))
    }

    #[test]
    fn json_lines_through_the_field_map() {
        let text = r#"{"ts": "2026-12-01T10:00:00Z", "variant": "v1", "model": "gpt-4o", "latency_ms": 420, "usage": {"input_tokens": 1000, "output_tokens": 200}, "error": null, "feedback": {"up": false}, "quality": 0.9, "hallucinated": false}
{"ts": "2026-12-01T10:00:01Z", "variant": "v2", "model": "gpt-4o", "latency_ms": "510.5", "usage": {"input_tokens": 900, "output_tokens": 100}, "error": "timeout", "feedback": {"up": true}}

{"ts": 1796119202, "variant": "v3", "latency_ms": 1}
{"ts": 1796119203000, "latency_ms": 1}
"#;
        let (records, notes) = read(LogFormat::Jsonl, &contract_fields(), text);
        assert_eq!(notes.lines, 4, "the blank line is not counted");
        assert_eq!(notes.problems.total(), 0, "{:?}", notes.problems);
        // gpt-4o: $2.50 input, $10 output per million tokens (providers/pricing.rs).
        let b = records.baseline[0];
        assert_eq!(b.time, 1_796_119_200.0);
        assert_eq!(b.latency_ms, Some(420.0));
        assert!((b.cost_usd.unwrap() - (1000.0 * 2.5 + 200.0 * 10.0) / 1e6).abs() < 1e-15);
        assert_eq!(
            (b.error, b.thumbs_down, b.quality, b.hallucination),
            (false, Some(true), Some(0.9), Some(false))
        );
        let c = records.canary[0];
        assert_eq!(
            (c.latency_ms, c.error, c.thumbs_down, c.quality),
            (Some(510.5), true, Some(false), None)
        );
        assert_eq!(notes.other_arms.get("v3"), Some(&1));
        assert_eq!(notes.without_arm, 1);
    }

    /// A log that starts with a byte-order mark and ends its lines with CRLF (a Windows tool's)
    /// reads whole: the first line was counted malformed.
    #[test]
    fn a_byte_order_mark_and_crlf_lines_read_whole() {
        let text = "\u{feff}{\"variant\": \"v1\", \"latency_ms\": 10}\r\n{\"variant\": \"v2\", \"latency_ms\": 12}\r\n";
        let (records, notes) = read(LogFormat::Jsonl, &Fields::resolve(Some(&RawFields::default())), text);
        assert_eq!(notes.problems.total(), 0, "{:?}", notes.problems);
        assert_eq!((records.baseline.len(), records.canary.len()), (1, 1));
        let text = "\u{feff}variant,latency_ms\r\nv1,10\r\nv2,12\r\n";
        let (records, notes) = read(LogFormat::Csv, &Fields::resolve(Some(&RawFields::default())), text);
        assert_eq!(notes.problems.total(), 0, "{:?}", notes.problems);
        assert_eq!((records.baseline.len(), records.canary.len()), (1, 1));
    }

    #[test]
    fn bad_lines_are_counted_with_their_numbers() {
        let text = "{\"variant\": \"v1\", \"latency_ms\": 10}\n{not json\n[1, 2]\n{\"variant\": \"v2\", \"latency_ms\": \"fast\"}\n{\"variant\": \"v2\", \"timestamp\": \"noon\"}\n";
        let (records, notes) = read(LogFormat::Jsonl, &Fields::resolve(Some(&RawFields::default())), text);
        assert_eq!(records.baseline.len(), 1);
        assert_eq!(records.canary.len(), 0);
        let lines = |p: Problem| -> Vec<u64> { notes.problems.by_kind[&p].1.iter().map(|b| b.line).collect() };
        assert_eq!(lines(Problem::Malformed), [2]);
        assert_eq!(lines(Problem::NotObject), [3]);
        assert_eq!(lines(Problem::BadValue), [4]);
        assert_eq!(lines(Problem::BadTimestamp), [5]);
        assert_eq!(
            notes.problems.by_kind[&Problem::BadValue].1[0].detail,
            "`latency_ms` is `fast`, expected a number"
        );
    }

    #[test]
    fn a_negative_time_token_count_or_cost_is_a_bad_value() {
        let text = "{\"variant\": \"v2\", \"cost_usd\": -100}\n{\"variant\": \"v2\", \"latency_ms\": -1}\n{\"variant\": \"v2\", \"usage\": {\"input_tokens\": -5, \"output_tokens\": 3}}\n{\"variant\": \"v2\", \"cost_usd\": 0.002}\n";
        let fields = Fields::resolve(Some(
            &serde_saphyr::from_str(
                "{cost_usd: cost_usd, input_tokens: usage.input_tokens, output_tokens: usage.output_tokens}",
            )
            .unwrap(),
        ));
        let (records, notes) = read(LogFormat::Jsonl, &fields, text);
        assert_eq!(records.canary.len(), 1);
        let bad: Vec<(u64, &str)> = notes.problems.by_kind[&Problem::BadValue]
            .1
            .iter()
            .map(|b| (b.line, b.detail.as_str()))
            .collect();
        assert_eq!(
            bad,
            [
                (1, "`cost_usd` is negative"),
                (2, "`latency_ms` is negative"),
                (3, "`input_tokens` is negative")
            ]
        );
    }

    #[test]
    fn timestamps_out_of_order_beyond_the_skew_within_an_arm() {
        let text = "{\"variant\": \"v1\", \"timestamp\": \"2026-12-01T10:00:00Z\"}\n{\"variant\": \"v1\", \"timestamp\": \"2026-12-01T09:58:00Z\"}\n{\"variant\": \"v1\", \"timestamp\": \"2026-12-01T08:00:00Z\"}\n{\"variant\": \"v2\", \"timestamp\": \"2026-12-01T08:00:00Z\"}\n";
        let (records, notes) = read(LogFormat::Jsonl, &Fields::resolve(Some(&RawFields::default())), text);
        assert_eq!(records.baseline.len(), 2, "two minutes back is within the default skew");
        assert_eq!(records.canary.len(), 1, "the other arm's clock is its own");
        let bad = &notes.problems.by_kind[&Problem::OutOfOrder].1[0];
        assert_eq!(bad.line, 3);
        assert_eq!(
            bad.detail,
            "2026-12-01T08:00:00Z is 2h before line 1's 2026-12-01T10:00:00Z"
        );
    }

    #[test]
    fn csv_with_the_same_rules() {
        let fields = Fields::resolve(Some(
            &serde_saphyr::from_str("{cost_usd: cost, thumbs_down: down}").unwrap(),
        ));
        let text = "timestamp,variant,latency_ms,cost,error,down\n2026-12-01T10:00:00Z,v1,300,0.002,,no\n2026-12-01T10:00:01Z,v2,350,0.003,500,yes\n2026-12-01T10:00:02Z,v2,abc,,,\n2026-12-01T10:00:03Z,v2\n";
        let (records, notes) = read(LogFormat::Csv, &fields, text);
        assert_eq!(records.baseline[0].cost_usd, Some(0.002));
        assert_eq!(records.baseline[0].thumbs_down, Some(false));
        assert!(records.canary[0].error);
        assert_eq!(notes.problems.by_kind[&Problem::BadValue].1[0].line, 4);
        assert_eq!(notes.problems.by_kind[&Problem::Malformed].1[0].line, 5);
        assert_eq!(notes.lines, 4);
        assert_eq!(notes.cut, None);
    }

    /// A quoted cell never closed once took every later row into itself with no error: the
    /// canary held for want of requests where the whole log showed a rollback.
    #[test]
    fn a_csv_quote_never_closed_cuts_the_reading_where_it_opens() {
        let fields = Fields::resolve(None);
        let row = |i: usize| format!("2026-12-01T10:00:{i:02}Z,v2,350,\n");
        let mut text = "timestamp,variant,latency_ms,error\n".to_owned();
        (0..3).for_each(|i| text.push_str(&row(i)));
        text.push_str("2026-12-01T10:00:03Z,v2,350,\"truncated\n");
        (4..40).for_each(|i| text.push_str(&row(i)));
        let (_, notes) = read(LogFormat::Csv, &fields, &text);
        let (line, why) = notes.cut.clone().expect("cut");
        assert_eq!(line, 5);
        assert!(why.contains("never closed"), "{why}");
        let arms = arms();
        let e = crate::canary::records::check_reading("logs.csv", &Records::default(), &notes, &arms, &[], 0.01, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be read past line 5"), "{e}");
        // Opened in the header: no record was read, and the file is not called empty.
        let mut text = "\"timestamp,variant,latency_ms,error\n".to_owned();
        (0..40).for_each(|i| text.push_str(&row(i)));
        let (_, notes) = read(LogFormat::Csv, &fields, &text);
        let e = crate::canary::records::check_reading("logs.csv", &Records::default(), &notes, &arms, &[], 0.01, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be read past line 1"), "{e}");
    }
}
