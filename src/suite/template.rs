//! Prompt templates: minijinja, strict about undefined variables, sandboxed to the repository.
//!
//! A text or Markdown prompt renders to the system message and the case's `input` var becomes
//! the user message. A YAML prompt with a `messages:` list renders each `{role, content}`.
//! `{% include "…" %}` names are relative to the including file's folder.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde::Deserialize;
use serde_json::Value;

use crate::chat::{Message, Role};
use crate::error::{Diagnostic, Error, did_you_mean};
use crate::suite::yaml_diagnostic;
use crate::workspace::{FileSource, join_in_repo, parent_dir};

/// Bounds template execution, so a runaway loop in a prompt cannot hang the gate.
const FUEL: u64 = 2_000_000;

/// A prompt (or its rendering) larger than [`super::MAX_PROMPT_BYTES`] is refused.
#[expect(
    clippy::result_large_err,
    reason = "the error ends the validation; it is not a hot path"
)]
fn too_large(what: &str, path: &str, bytes: usize) -> Result<(), Diagnostic> {
    if bytes <= super::MAX_PROMPT_BYTES {
        return Ok(());
    }
    Err(Diagnostic::new(format!(
        "{what} `{path}` is {} KiB; a prompt may be at most {} KiB",
        bytes >> 10,
        super::MAX_PROMPT_BYTES >> 10
    ))
    .in_file(path)
    .hint("a prompt is rendered and sent once per case: keep reference material in a retrieval step (an `exec` provider), not in the prompt"))
}

/// A prompt template of one tree.
pub struct Prompt {
    source: Arc<dyn FileSource>,
    path: String,
    shape: Shape,
}

enum Shape {
    /// The whole file is the system message.
    Text(String),
    /// A YAML list of messages, each content a template, and where it is written.
    Messages(Vec<(Role, String, Placed)>),
}

/// Where a message's content is written, for placing a template error on the file's line.
#[derive(Clone, Copy)]
struct Placed {
    /// The line before the content's first line (the scalar's own line, less one, or a block
    /// scalar's indicator line).
    before: u64,
    /// The template's line `n` is the file's `before + n`: a literal block (`|`), whose lines
    /// are the file's. A folded block or a quoted or plain scalar may join or split lines, so
    /// an error in it is placed at the scalar's first line.
    exact: bool,
}

impl Placed {
    /// A whole file that is the template.
    const FILE: Placed = Placed { before: 0, exact: true };

    fn line(self, template_line: u64) -> u64 {
        if self.exact {
            self.before + template_line
        } else {
            self.before + 1
        }
    }
}

/// A rendered prompt and the files it read.
pub struct Rendered {
    pub messages: Vec<Message>,
    pub files: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessages {
    messages: Vec<serde_saphyr::Spanned<RawMessage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    role: Role,
    content: serde_saphyr::Spanned<String>,
}

/// Where a message's content is written. The parser places a block scalar (`|`, `>`) at its
/// first line of content, after the indicator's line (or, in some versions, at the indicator
/// itself); a quoted or plain scalar at its own first line. Only a literal block keeps the
/// file's lines.
fn before_content(text: &str, at: &serde_saphyr::Location) -> Placed {
    let line = at.line();
    let nth = |n: u64| text.lines().nth(usize::try_from(n).ok()?.checked_sub(1)?);
    // A block indicator: `|` or `>`, then at most a chomping sign and an indentation digit.
    let indicator = |token: &str| {
        let mut chars = token.chars();
        let first = chars.next().filter(|c| *c == '|' || *c == '>')?;
        (token.len() <= 3 && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())).then_some(first)
    };
    let here = nth(line).and_then(|l| l.chars().nth(at.column().saturating_sub(1) as usize));
    if let Some(kind) = here.filter(|c| *c == '|' || *c == '>') {
        return Placed {
            before: line,
            exact: kind == '|',
        };
    }
    let above = nth(line.saturating_sub(1))
        .map(|l| l.split(" #").next().unwrap_or(l).trim_end())
        .and_then(|l| l.rsplit([' ', '\t']).next())
        .and_then(indicator);
    Placed {
        before: line.saturating_sub(1),
        exact: above == Some('|'),
    }
}

impl Prompt {
    pub fn load(source: Arc<dyn FileSource>, path: &str) -> Result<Prompt, Error> {
        let text = source
            .read(path)
            .map_err(|e| super::unreadable(path, &e))?
            .ok_or_else(|| Diagnostic::new(format!("prompt file `{path}` not found")).in_file(path))?;
        too_large("prompt", path, text.len())?;
        let is_yaml = path.ends_with(".yaml") || path.ends_with(".yml");
        let shape = if is_yaml {
            let raw: RawMessages = serde_saphyr::from_str(&text)
                .map_err(|e| yaml_diagnostic(path, &text, &e, "a prompt with a `messages:` list of {role, content}"))?;
            if raw.messages.is_empty() {
                return Err(Diagnostic::new("the prompt has an empty `messages:` list")
                    .in_file(path)
                    .hint("list the messages to send, e.g. `- {role: system, content: \"…\"}` and `- {role: user, content: \"{{ input }}\"}`")
                    .into());
            }
            Shape::Messages(
                raw.messages
                    .into_iter()
                    .map(|m| {
                        let first = before_content(&text, &m.value.content.referenced);
                        (m.value.role, m.value.content.value, first)
                    })
                    .collect(),
            )
        } else {
            Shape::Text(text)
        };
        Ok(Prompt {
            source,
            path: path.to_owned(),
            shape,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Renders the prompt for one case's vars.
    #[expect(
        clippy::result_large_err,
        reason = "a render error ends the case or the validation; it is not a hot path"
    )]
    pub fn render(&self, vars: &super::Vars) -> Result<Rendered, Diagnostic> {
        let _watched = watchdog::watch(&self.path);
        let files = Arc::new(Mutex::new(BTreeSet::from([self.path.clone()])));
        let env = self.environment(Arc::clone(&files));
        let context = minijinja::Value::from(minijinja::value::Serde(vars));
        let mut messages = Vec::new();
        match &self.shape {
            Shape::Text(text) => {
                let system = env
                    .render_named_str(&self.path, text, &context)
                    .map_err(|e| self.diagnostic(&e, text, Placed::FILE, vars))?;
                messages.push(Message {
                    role: Role::System,
                    content: system.into(),
                });
                match vars.get("input") {
                    Some(Value::String(input)) => messages.push(Message {
                        role: Role::User,
                        content: input.as_str().into(),
                    }),
                    Some(other) => messages.push(Message {
                        role: Role::User,
                        content: other.to_string().into(),
                    }),
                    None => {
                        return Err(
                            Diagnostic::new("the case has no `input` var, which becomes the user message").hint(
                                "give every case an `input` var, or write the prompt as YAML with a `messages:` list",
                            ),
                        );
                    }
                }
            }
            Shape::Messages(list) => {
                for (role, content, line) in list {
                    let rendered = env
                        .render_named_str(&self.path, content, &context)
                        .map_err(|e| self.diagnostic(&e, content, *line, vars))?;
                    messages.push(Message {
                        role: *role,
                        content: rendered.into(),
                    });
                }
            }
        }
        for m in &messages {
            too_large("the rendered prompt", &self.path, m.content.len())?;
        }
        let files = files.lock().map(|f| f.clone()).unwrap_or_default();
        Ok(Rendered { messages, files })
    }

    fn environment(&self, files: Arc<Mutex<BTreeSet<String>>>) -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // As release builds have it: the tests see the errors users see (without debug info an
        // undefined variable's error has no detail, and `diagnostic` names it from its span).
        env.set_debug(false);
        env.set_fuel(Some(FUEL));
        // Prompts are plain text: never HTML-escape what goes to a model.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_path_join_callback(|name, parent| match join_in_repo(parent_dir(parent), name) {
            Ok(p) => p.into(),
            // Keep the refusal visible to the loader, which turns it into an error.
            Err(_) => format!("\0escape\0{name}").into(),
        });
        let source = Arc::clone(&self.source);
        env.set_loader(move |name| {
            if let Some(original) = name.strip_prefix("\0escape\0") {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("include `{original}` leaves the repository"),
                ));
            }
            let text = source
                .read(name)
                .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("reading `{name}`: {e:#}")))?;
            if let Some(t) = &text
                && t.len() > super::MAX_PROMPT_BYTES
            {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!(
                        "`{name}` is larger than the {} KiB a prompt may be",
                        super::MAX_PROMPT_BYTES >> 10
                    ),
                ));
            }
            if text.is_some()
                && let Ok(mut f) = files.lock()
            {
                f.insert(name.to_owned());
            }
            Ok(text)
        });
        env
    }

    /// `rendered` is the template text the render started from (the file, or a message's
    /// content), where the error's span lies unless it is in an included file.
    fn diagnostic(&self, e: &minijinja::Error, rendered: &str, placed: Placed, vars: &super::Vars) -> Diagnostic {
        // An error inside an included template arrives wrapped ("error in …"); the inner error
        // knows the partial's name, line and what went wrong.
        let mut e = e;
        while e.kind() == ErrorKind::BadInclude {
            match std::error::Error::source(e).and_then(|s| s.downcast_ref::<minijinja::Error>()) {
                Some(inner) => e = inner,
                None => break,
            }
        }
        let file = e
            .name()
            .map(|n| n.trim_start_matches("\0escape\0").to_owned())
            .unwrap_or_else(|| self.path.clone());
        let detail = e.detail().unwrap_or_default();
        // The name a message is about: minijinja quotes it with backticks or quotes; an
        // undefined variable's error has no detail, and its name is the text of its span.
        let spanned = match (e.kind(), e.range()) {
            (ErrorKind::UndefinedError, Some(r)) if file == self.path => undefined_name(rendered, r, vars),
            (ErrorKind::UndefinedError, Some(r)) => {
                (self.source.read(&file).ok().flatten()).and_then(|text| undefined_name(&text, r, vars))
            }
            _ => None,
        };
        let quoted = detail
            .split(['`', '"', '\''])
            .nth(1)
            .filter(|q| !q.is_empty())
            .or(spanned.as_deref());
        let (message, hint) = match e.kind() {
            ErrorKind::UndefinedError => match quoted {
                Some(name) => {
                    let hint = match did_you_mean(name, vars.names()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "every variable the template uses must be a var of every case (undefined variables are errors, not empty strings)".to_owned(),
                    };
                    (format!("undefined variable `{name}` in template"), hint)
                }
                None => (
                    format!("undefined variable in template: {detail}"),
                    "every variable the template uses must be a var of every case (undefined variables are errors, not empty strings)".to_owned(),
                ),
            },
            ErrorKind::TemplateNotFound => {
                let dir = parent_dir(&file);
                let name = quoted.map(|n| join_in_repo(dir, n).unwrap_or_else(|_| n.to_owned()));
                (
                    match name {
                        Some(n) => format!("included template `{n}` not found"),
                        None => format!("included template not found: {detail}"),
                    },
                    if dir.is_empty() {
                        "include names are relative to the including file's folder (here the repository root)".to_owned()
                    } else {
                        format!("include names are relative to the including file's folder (`{dir}/`)")
                    },
                )
            }
            _ if detail.contains("leaves the repository") => {
                (detail.to_owned(), "include names are relative to the including file's folder and must stay inside the repository".to_owned())
            }
            ErrorKind::SyntaxError => (
                format!("template syntax error: {detail}"),
                "prompts are minijinja templates: `{{ var }}`, `{% if … %}…{% endif %}`, `{% include \"file\" %}`".to_owned(),
            ),
            ErrorKind::OutOfFuel => ("template ran too long".to_owned(), "look for a loop that never ends, or one over a very large value".to_owned()),
            _ => (
                if detail.is_empty() { format!("template error: {}", e.kind()) } else { format!("template error: {detail}") },
                "prompts are minijinja templates; see its documentation for the expressions, filters and tests it supports".to_owned(),
            ),
        };
        let mut d = Diagnostic::new(message).in_file(&file);
        if let Some(line) = e.line() {
            let line = line as u64;
            let text = if file == self.path {
                match &self.shape {
                    Shape::Text(t) => Some(t.clone()),
                    Shape::Messages(_) => None,
                }
            } else {
                self.source.read(&file).ok().flatten()
            };
            match (&self.shape, text) {
                (Shape::Messages(_), _) if file == self.path => {
                    d.line = Some(placed.line(line));
                }
                (_, Some(text)) => {
                    // The error's span is a byte range in this template's text.
                    let column = e.range().and_then(|r| text.get(..r.start)).map_or(0, |before| {
                        before.rsplit('\n').next().unwrap_or_default().chars().count() as u64 + 1
                    });
                    d = d.at(&text, line, column);
                }
                _ => d.line = Some(line),
            }
        }
        d.hint(hint)
    }
}

/// The undefined name an undefined variable's error is about, from its span in `text`: the
/// variable or attribute path the span starts with (`user.name`), cut to its first part when
/// that part is not a var of the case (`user`, so that a did-you-mean can find `users`). A
/// filter applied to an undefined value is the span (`upper` of `foo | upper`): the name is
/// the path before its `|`. `None` when no name stands there (`"a" ~ foo`).
fn undefined_name(text: &str, span: std::ops::Range<usize>, vars: &super::Vars) -> Option<String> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let before = text.get(..span.start)?.trim_end();
    let path = match before.strip_suffix('|') {
        // The path that ends just before the filter's bar.
        Some(left) => {
            let left = left.trim_end();
            let start = left
                .char_indices()
                .rev()
                .find(|&(_, c)| !(is_word(c) || c == '.'))
                .map_or(0, |(at, c)| at + c.len_utf8());
            &left[start..]
        }
        // The path the span starts with.
        None => {
            let spanned = text.get(span.clone())?.trim_start();
            let end = spanned
                .char_indices()
                .find(|&(_, c)| !(is_word(c) || c == '.'))
                .map_or(spanned.len(), |(at, _)| at);
            &spanned[..end]
        }
    };
    let path = path.trim_matches('.');
    let head = path.split('.').next().unwrap_or_default();
    if !head.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') {
        // An expression (`"Hi " ~ foo`): its first name outside a string that is not a var,
        // a keyword, a filter or test (after `|` or `is`) or a function (before `(`).
        return text
            .get(span)
            .and_then(|expression| first_unknown_name(expression, vars));
    }
    Some(match vars.names().any(|n| n == head) {
        true => path.to_owned(),
        false => head.to_owned(),
    })
}

/// See [`undefined_name`]: the first name in `expression` that no var, keyword, filter, test
/// or function accounts for.
fn first_unknown_name(expression: &str, vars: &super::Vars) -> Option<String> {
    const KEYWORDS: [&str; 13] = [
        "and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None",
    ];
    let mut chars = expression.char_indices().peekable();
    let mut previous = "";
    while let Some((at, c)) = chars.next() {
        if c == '"' || c == '\'' {
            // Skip the string literal.
            while let Some((_, d)) = chars.next() {
                if d == '\\' {
                    chars.next();
                } else if d == c {
                    break;
                }
            }
            previous = "";
            continue;
        }
        if !(c.is_alphabetic() || c == '_') {
            if !c.is_whitespace() {
                previous = if c == '|' { "|" } else { "" };
            }
            continue;
        }
        let mut end = at + c.len_utf8();
        while let Some(&(next, d)) = chars.peek() {
            if !(d.is_alphanumeric() || d == '_') {
                break;
            }
            end = next + d.len_utf8();
            chars.next();
        }
        let name = &expression[at..end];
        let called = expression[end..].trim_start().starts_with('(');
        let attribute = expression[..at].ends_with('.');
        let known = KEYWORDS.contains(&name) || previous == "|" || previous == "is" || called || attribute;
        let unknown = !(known || vars.names().any(|n| n == name));
        if unknown {
            return Some(name.to_owned());
        }
        previous = if name == "is" { "is" } else { "" };
    }
    None
}

/// Renders run under a watchdog. minijinja's fuel counts instructions, but one instruction can
/// be unbounded work: `{% set ns.x = ns.x + ns.x %}` in a loop of 33 builds a list of 2³³
/// items in 33 steps, which no fuel stops. A render cannot be cancelled from outside its
/// thread, so a render that runs longer than [`TIME_LIMIT`], or grows the process by more than
/// [`MEMORY_LIMIT`] (Linux, from `/proc/self/statm`), ends the process with a diagnostic and
/// exit code 2: the template is bad input, and nothing else could stop it.
mod watchdog {
    use std::sync::{Mutex, Once};
    use std::time::{Duration, Instant};

    pub const TIME_LIMIT: Duration = Duration::from_secs(5);
    pub const MEMORY_LIMIT: u64 = 1 << 30;
    const TICK: Duration = Duration::from_millis(50);

    struct Active {
        id: u64,
        path: String,
        started: Instant,
        /// The process's memory when the watchdog first saw this render (read by the
        /// watchdog, so a render pays no system call).
        resident_at_start: Option<u64>,
    }

    static ACTIVE: Mutex<Vec<Active>> = Mutex::new(Vec::new());
    static NEXT: Mutex<u64> = Mutex::new(0);
    static START: Once = Once::new();

    /// Removes its render from the watch when dropped.
    pub struct Watched(u64);

    impl Drop for Watched {
        fn drop(&mut self) {
            if let Ok(mut active) = ACTIVE.lock() {
                active.retain(|a| a.id != self.0);
            }
        }
    }

    pub fn watch(path: &str) -> Watched {
        START.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("promptgate-template-watchdog".to_owned())
                .spawn(run);
        });
        let id = NEXT.lock().map(|mut n| {
            *n += 1;
            *n
        });
        let id = id.unwrap_or(0);
        if let Ok(mut active) = ACTIVE.lock() {
            active.push(Active {
                id,
                path: path.to_owned(),
                started: Instant::now(),
                resident_at_start: None,
            });
        }
        Watched(id)
    }

    fn run() {
        loop {
            std::thread::sleep(TICK);
            let Ok(mut active) = ACTIVE.lock() else { return };
            if active.is_empty() {
                continue;
            }
            let resident = resident_bytes();
            for a in active.iter_mut() {
                let start = *a.resident_at_start.get_or_insert(resident.unwrap_or(0));
                let grown = resident.map_or(0, |r| r.saturating_sub(start));
                let why = if a.started.elapsed() > TIME_LIMIT {
                    format!("ran longer than {} s", TIME_LIMIT.as_secs())
                } else if grown > MEMORY_LIMIT {
                    format!("took more than {} MiB of memory", MEMORY_LIMIT >> 20)
                } else {
                    continue;
                };
                let path = crate::output::inert(&a.path);
                eprintln!(
                    "error: the prompt template {why} while rendering\n  --> {path}\nhint: look for a loop that doubles a list or a string (`x + x`), or that runs over a very large value; a template must render in well under a second"
                );
                std::process::exit(i32::from(crate::error::exit::USAGE));
            }
        }
    }

    /// The process's resident memory, where the system says (Linux).
    fn resident_bytes() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * 4096)
    }
}
