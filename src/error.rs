//! Expected errors: what the user or the outside world got wrong, with the exit code to leave
//! with and a hint. Internal plumbing uses `anyhow`; anything that reaches `main` without being
//! one of these is a run error (exit 3).

use std::fmt;

/// Exit codes of the user-facing contract.
pub mod exit {
    pub const PASS: u8 = 0;
    pub const FAIL: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const RUN: u8 = 3;
    /// `canary`: not enough evidence yet to promote or roll back.
    pub const HOLD: u8 = 4;
    /// Ctrl-C stopped a run (128 + SIGINT); its journal resumes it.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug)]
pub enum Error {
    /// Bad input: a config, dataset, template or flag. Exit 2.
    Input(Box<Diagnostic>),
    /// The run could not complete: provider failures beyond tolerance, a refused budget,
    /// git or GitHub unreachable. Exit 3.
    Run { message: String, hint: Option<String> },
    /// Ctrl-C stopped the run after the calls in flight finished. Exit 130.
    Interrupted { message: String, hint: String },
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => exit::USAGE,
            Error::Run { .. } => exit::RUN,
            Error::Interrupted { .. } => exit::INTERRUPTED,
        }
    }

    pub fn run(message: impl Into<String>) -> Self {
        Error::Run {
            message: message.into(),
            hint: None,
        }
    }

    pub fn run_with_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Run {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// The error on one line, for a verdict's reason: `file:line:column: message`.
    pub fn summary(&self) -> String {
        match self {
            Error::Input(d) => match d.location() {
                Some(location) => format!("{location}: {}", d.message),
                None => d.message.clone(),
            },
            Error::Run { message, .. } | Error::Interrupted { message, .. } => message.clone(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input(d) => d.fmt(f),
            Error::Run { message, hint } => {
                write!(f, "error: {message}")?;
                if let Some(hint) = hint {
                    write!(f, "\nhint: {hint}")?;
                }
                Ok(())
            }
            Error::Interrupted { message, hint } => write!(f, "error: {message}\nhint: {hint}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Input(Box::new(d))
    }
}

/// One problem in the user's input, pointing at the place it was found.
///
/// Rendered like a compiler message:
///
/// ```text
/// error: unknown key `temprature` in variant config
///   --> configs/support.yaml:4:1
///    |
///  4 | temprature: 0.5
///    | ^
/// hint: did you mean `temperature`?
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub file: Option<String>,
    /// 1-based.
    pub line: Option<u64>,
    /// 1-based.
    pub column: Option<u64>,
    /// The text of `line`, shown under the location.
    pub source_line: Option<String>,
    pub hints: Vec<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            file: None,
            line: None,
            column: None,
            source_line: None,
            hints: Vec::new(),
        }
    }

    pub fn in_file(mut self, file: impl Into<String>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// Points at `line:column` of `source` (1-based; 0 means unknown).
    pub fn at(mut self, source: &str, line: u64, column: u64) -> Self {
        if line > 0 {
            self.line = Some(line);
            self.column = (column > 0).then_some(column);
            self.source_line = usize::try_from(line - 1)
                .ok()
                .and_then(|i| source.lines().nth(i))
                .map(str::to_owned);
        }
        self
    }

    /// [`Diagnostic::at`] for a column counted in bytes, as serde_json counts it: turned into
    /// characters on the line, so the caret (and a long line's quoted part) falls on the
    /// character meant when the line holds other than ASCII.
    pub fn at_byte(self, source: &str, line: u64, byte_column: u64) -> Self {
        let text = usize::try_from(line.saturating_sub(1))
            .ok()
            .and_then(|i| source.lines().nth(i))
            .unwrap_or_default();
        self.at(source, line, char_column(text, byte_column))
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// `file:line:column`, as far as it is known.
    pub fn location(&self) -> Option<String> {
        let file = self.file.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}"),
            (Some(l), None) => format!("{file}:{l}"),
            _ => file.to_owned(),
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(location) = self.location() {
            write!(f, "\n  --> {location}")?;
        }
        if let (Some(line), Some(text)) = (self.line, &self.source_line) {
            let number = line.to_string();
            let pad = " ".repeat(number.len());
            let caret = self
                .column
                .map(|c| usize::try_from(c.saturating_sub(1)).unwrap_or(usize::MAX));
            let (text, caret) = window(text, caret);
            write!(f, "\n {pad} |\n {number} | {text}")?;
            if let Some(caret) = caret {
                let indent: String = text
                    .chars()
                    .take(caret)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(f, "\n {pad} | {indent}^")?;
            }
        }
        for hint in &self.hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// The 1-based character column of the 1-based byte column `byte_column` of `line` (0 stays
/// 0: no column).
pub fn char_column(line: &str, byte_column: u64) -> u64 {
    if byte_column == 0 {
        return 0;
    }
    let mut end = usize::try_from(byte_column - 1).unwrap_or(usize::MAX).min(line.len());
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].chars().count() as u64 + 1
}

/// The longest source line an error quotes whole. A longer one (a minified JSON file is one
/// line) is quoted as [`QUOTED_CHARS`] characters around the error's column, its cut ends
/// marked `…`.
const WHOLE_LINE_CHARS: usize = 400;
const QUOTED_CHARS: usize = 240;

/// `text` as quoted and the caret's index in it (`caret`: a 0-based character index).
fn window(text: &str, caret: Option<usize>) -> (std::borrow::Cow<'_, str>, Option<usize>) {
    let length = text.chars().count();
    if length <= WHOLE_LINE_CHARS {
        return (text.into(), caret);
    }
    let at = caret.unwrap_or(0).min(length);
    let start = at.saturating_sub(QUOTED_CHARS / 2).min(length - QUOTED_CHARS);
    let end = start + QUOTED_CHARS;
    let mut quoted = String::with_capacity(QUOTED_CHARS * 4 + 6);
    if start > 0 {
        quoted.push('…');
    }
    quoted.extend(text.chars().skip(start).take(QUOTED_CHARS));
    if end < length {
        quoted.push('…');
    }
    (
        quoted.into(),
        caret.map(|c| c.min(length) - start + usize::from(start > 0)),
    )
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a plausible
/// typo ("did you mean …?").
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(word: &str, candidates: &[&str], expected: Option<&str>) {
        assert_eq!(did_you_mean(word, candidates.iter().copied()), expected);
    }

    #[test]
    fn suggestions() {
        check("temprature", &["model", "temperature", "top_p"], Some("temperature"));
        check("max_token", &["max_tokens", "model"], Some("max_tokens"));
        check("colour", &["model", "prompt"], None);
        check("", &["a"], Some("a"));
        check("x", &[], None);
    }

    /// serde_json counts columns in bytes: a line of other than ASCII is quoted, and its caret
    /// placed, at the character the byte column falls in.
    #[test]
    fn a_byte_column_is_placed_on_its_character() {
        assert_eq!(char_column("abc", 2), 2);
        assert_eq!(char_column("héllo", 4), 3); // 'h' 1 byte, 'é' 2 bytes: byte 4 is 'l'
        assert_eq!(char_column("日本語x", 10), 4);
        assert_eq!(char_column("日本語x", 3), 1); // inside the first character
        assert_eq!(char_column("ab", 99), 3);
        assert_eq!(char_column("ab", 0), 0);
        // A 600-character line of three-byte characters with an `X` at character 335: at
        // its byte column the window holds the `X` and the caret is under it.
        let mut line: String = "語".repeat(600);
        line.replace_range(334 * 3..335 * 3, "X");
        let byte = line.find('X').unwrap() as u64 + 1;
        let printed = Diagnostic::new("bad").at_byte(&line, 1, byte).to_string();
        let quoted = printed.lines().nth(2).unwrap().strip_prefix(" 1 | ").unwrap();
        let caret = printed.lines().nth(3).unwrap().strip_prefix("   | ").unwrap();
        assert_eq!(quoted.chars().nth(caret.chars().count() - 1), Some('X'), "{printed}");
    }

    /// A minified file is one long line: the error quotes the part around its column, and
    /// the caret still points at the column's character.
    #[test]
    fn a_long_line_is_quoted_around_the_column() {
        let line: String = (0..10_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let mut source = line.clone();
        source.replace_range(5_000..5_001, "X");
        let d = Diagnostic::new("bad").in_file("r.json").at(&source, 1, 5_001);
        let printed = d.to_string();
        assert!(printed.len() < 1_000, "{} bytes", printed.len());
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines[1], "  --> r.json:1:5001");
        let quoted = lines[3].strip_prefix(" 1 | ").unwrap();
        assert!(quoted.starts_with('…') && quoted.ends_with('…'), "{quoted}");
        assert_eq!(quoted.chars().count(), QUOTED_CHARS + 2);
        let caret = lines[4].strip_prefix("   | ").unwrap();
        assert_eq!(caret.trim_start(), "^");
        assert_eq!(quoted.chars().nth(caret.len() - 1), Some('X'), "{quoted}\n{caret}");
        // At either end of the line, one cut only.
        let start = Diagnostic::new("bad").at(&source, 1, 1).to_string();
        let first = start.lines().nth(2).unwrap().strip_prefix(" 1 | ").unwrap();
        assert!(
            !first.starts_with('…') && first.ends_with('…') && first.starts_with("abc"),
            "{first}"
        );
        let end = Diagnostic::new("bad").at(&source, 1, 10_000).to_string();
        let last = end.lines().nth(2).unwrap();
        assert!(last.contains('…') && !last.ends_with('…'), "{last}");
        let caret = end.lines().nth(3).unwrap().strip_prefix("   | ").unwrap();
        assert_eq!(
            last.strip_prefix(" 1 | ").unwrap().chars().nth(caret.len() - 1),
            line.chars().last()
        );
    }

    #[test]
    fn renders_location_and_caret() {
        let d = Diagnostic::new("unknown key `temprature`")
            .in_file("configs/a.yaml")
            .at("model: x\n  temprature: 0.5\n", 2, 3)
            .hint("did you mean `temperature`?");
        assert_eq!(
            d.to_string(),
            "error: unknown key `temprature`\n  --> configs/a.yaml:2:3\n   |\n 2 |   temprature: 0.5\n   |   ^\nhint: did you mean `temperature`?"
        );
    }

    #[test]
    fn line_past_the_end_has_no_snippet() {
        let d = Diagnostic::new("m").in_file("f").at("one line", 5, 1);
        assert_eq!(d.to_string(), "error: m\n  --> f:5:1");
    }
}
