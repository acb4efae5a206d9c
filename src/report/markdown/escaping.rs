//! Escaping by default: the template environment, where every value a template prints goes
//! through [`escape_untrusted`] unless the view marked it [`Safe`].

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, Value};
use serde::Serialize;

use super::describe;
use crate::report::escape::escape_untrusted;

/// The environment every report template renders in, ours or a user's: undefined values are
/// errors, block tags leave no blank lines, values are escaped by default, `untrusted(n)` is
/// there, and `fuel` bounds the work.
pub(super) fn environment(fuel: u64) -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Markdown has no escaping minijinja knows: every template, whatever its name, escapes by
    // ours. `{% autoescape false %}` turns it off for a block, on the template author's word.
    env.set_auto_escape_callback(|_| AutoEscape::Custom(MARKDOWN.into()));
    env.set_formatter(markdown_formatter);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(describe)?,
    );
    env.add_filter("untrusted", untrusted_filter);
    env.set_fuel(Some(fuel));
    Ok(env)
}

/// The name of our auto-escape format.
const MARKDOWN: &str = "markdown";

/// How `{{ value }}` prints: a value marked safe (the view's [`Safe`] text, a filter's or a
/// macro's output) as it is, anything else through [`escape_untrusted`] at
/// [`DEFAULT_UNTRUSTED_CHARS`]. Outside our auto-escape (an `{% autoescape false %}` block) it
/// prints raw.
fn markdown_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), minijinja::Error> {
    let escape = matches!(state.auto_escape(), AutoEscape::Custom(name) if name == MARKDOWN) && !value.is_safe();
    let written = if escape {
        out.write_str(&escape_untrusted(&text_of(value), DEFAULT_UNTRUSTED_CHARS))
    } else {
        write!(out, "{value}")
    };
    written.map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "writing the report"))
}

/// `{{ text | untrusted }}` or `{{ text | untrusted(300) }}`: [`escape_untrusted`] with a cap
/// of one's choosing, marked safe so it is not escaped twice. `none` renders as nothing, so
/// optional fields need no `if` around them.
fn untrusted_filter(value: Value, max_chars: Option<usize>) -> Value {
    let max_chars = max_chars.unwrap_or(DEFAULT_UNTRUSTED_CHARS);
    if value.is_none() || value.is_undefined() {
        Value::from_safe_string(String::new())
    } else {
        Value::from_safe_string(escape_untrusted(&text_of(&value), max_chars))
    }
}

/// A value as text: a string's own characters, anything else as minijinja prints it.
fn text_of(value: &Value) -> std::borrow::Cow<'_, str> {
    match value.as_str() {
        Some(text) => text.into(),
        None => value.to_string().into(),
    }
}

const DEFAULT_UNTRUSTED_CHARS: usize = 1_000;

/// Text the view built itself (our formatted numbers and words, notes whose names it escaped, a
/// checked image URL, lines for a code block): the formatter prints it as it is. Anything else
/// the view holds is escaped when printed.
#[derive(Debug, PartialEq)]
pub(super) struct Safe(pub(super) String);

impl Serialize for Safe {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Within `Value::from(Serde(..))` a `Value` keeps its safe mark.
        Value::from_safe_string(self.0.clone()).serialize(serializer)
    }
}

impl From<String> for Safe {
    fn from(text: String) -> Safe {
        Safe(text)
    }
}

impl From<&str> for Safe {
    fn from(text: &str) -> Safe {
        Safe(text.to_owned())
    }
}

impl std::ops::Deref for Safe {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}
