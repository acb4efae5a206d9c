//! `regex` assertions: each pattern compiled once, whatever the number of cases using it, and
//! with a size limit, so a dataset cannot make validation compile and keep thousands of large
//! automata (a thousand cases sharing `\w{60}` took 38 s and 3.5 GB, now 0.3 s and 27 MB).

use regex::Regex;

/// The compiled size of an ordinary `regex` assertion, and how many distinct ones a run keeps.
const REGEX_SIZE_LIMIT: usize = 256 << 10;
const MAX_REGEXES: usize = 1_000;
/// Larger patterns (a Unicode `\w{60}` compiles to a few MiB) are allowed up to the `regex`
/// crate's own default limit, a few of them: together at most about 400 MiB.
const LARGE_REGEX_SIZE_LIMIT: usize = 10 << 20;
const MAX_LARGE_REGEXES: usize = 16;

/// A `regex` assertion's pattern, compiled once per pattern however many cases use it, with a
/// size limit: a dataset of a thousand cases each with `\w{500}` would otherwise compile and
/// keep a thousand large automata.
pub(super) fn compiled(pattern: &str) -> Result<Regex, (String, Option<String>)> {
    #[derive(Default)]
    struct Compiled {
        by_pattern: std::collections::HashMap<String, Regex>,
        large: usize,
    }
    static COMPILED: std::sync::LazyLock<std::sync::Mutex<Compiled>> = std::sync::LazyLock::new(Default::default);
    let mut compiled = COMPILED
        .lock()
        .map_err(|_| ("the regex cache is unusable".to_owned(), None))?;
    if let Some(regex) = compiled.by_pattern.get(pattern) {
        return Ok(regex.clone());
    }
    if compiled.by_pattern.len() >= MAX_REGEXES {
        return Err((
            format!("more than {MAX_REGEXES} distinct regex patterns"),
            Some(
                "write the few patterns the cases share once (an experiment's `assert:`), or use contains assertions"
                    .to_owned(),
            ),
        ));
    }
    let build = |limit: usize| {
        regex::RegexBuilder::new(pattern)
            .size_limit(limit)
            .dfa_size_limit(limit)
            .build()
    };
    let mut result = build(REGEX_SIZE_LIMIT);
    if matches!(result, Err(regex::Error::CompiledTooBig(_))) && compiled.large < MAX_LARGE_REGEXES {
        result = build(LARGE_REGEX_SIZE_LIMIT);
        if result.is_ok() {
            compiled.large += 1;
        }
    }
    let regex = result.map_err(|e| {
        let detail = e.to_string();
        let detail = detail
            .lines()
            .last()
            .unwrap_or("syntax error")
            .trim()
            .trim_start_matches("error: ")
            .to_owned();
        let hint = if matches!(e, regex::Error::CompiledTooBig(_)) {
            format!(
                "the pattern compiles too large (a suite may use {MAX_LARGE_REGEXES} patterns of up to {} MiB): bound its repetitions, or use `(?-u)` for ASCII classes",
                LARGE_REGEX_SIZE_LIMIT >> 20
            )
        } else {
            "the regex syntax is Rust's `regex` crate (no look-around or backreferences)".to_owned()
        };
        (format!("invalid regex `{pattern}`: {detail}"), Some(hint))
    })?;
    compiled.by_pattern.insert(pattern.to_owned(), regex.clone());
    Ok(regex)
}
