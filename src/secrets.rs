//! Every secret value promptgate knows, and the one redactor that keeps them out of every
//! output.
//!
//! Threat model: a model, an `exec` program, a provider's error body or a pull request's own
//! suite may put a key into text promptgate then writes — `results.json` (an uploaded
//! artifact), `report.md`, the step summary, `junit.xml`, the log, the check run, the comment,
//! the response cache. Patterns ("`sk-…`", "`Bearer …`") catch only keys of known shapes, so
//! the values themselves are known here: each provider key promptgate reads (registered by
//! `providers::http::api_key`, and up front for every configured provider), the variables an
//! `exec` provider receives, and the GitHub token. [`redact`] replaces every one of them,
//! whatever its shape, then the known shapes, and every writer calls it last: the runner
//! before a response is cached or recorded, `report::write_outputs` for every file, the GitHub
//! client for every request body, `main` for every error, the terminal summary.
//!
//! A value shorter than [`MIN_LEN`] characters is not redacted (it would eat ordinary words
//! such as a local server's placeholder key "none"); a warning says so.
//!
//! The other half is keeping secrets out of reach: [`child_env`] is the whole environment of an
//! `exec` program (its config's variables plus a few harmless ones), and [`SCRUBBED`] lists
//! what every other child (git) never inherits.

use std::collections::BTreeSet;
use std::sync::{LazyLock, RwLock};

/// Shorter values are not redacted: see the module documentation.
pub const MIN_LEN: usize = 8;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Variables no child process of promptgate inherits: the GitHub token and the Actions
/// runtime's own credentials.
pub const SCRUBBED: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "INPUT_GITHUB-TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
];

/// Variables an `exec` program gets besides those its config lists: where programs are
/// found, the home folder, the locale and the temporary folder. None of them is a secret.
pub const CHILD_BASE_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
];

/// The key variables of the built-in provider types, redacted whenever they are set.
pub const DEFAULT_KEY_VARIABLES: &[&str] = &["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY"];

/// The known values and their encoded forms, and one automaton that finds them all in a
/// single pass over a text (a results.json is scanned once, whatever the number of secrets).
#[derive(Default)]
struct Known {
    values: Vec<String>,
    finder: Option<aho_corasick::AhoCorasick>,
}

static KNOWN: LazyLock<RwLock<Known>> = LazyLock::new(RwLock::default);
static WARNED: LazyLock<RwLock<BTreeSet<String>>> = LazyLock::new(RwLock::default);

/// `url` as outputs show it: without the user name or password it may carry
/// (`https://user:token@host…`), since what is shown goes to a log, a job summary or a
/// comment. Text that is no URL is shown as such, not as written.
pub fn url_shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string().trim_end_matches('/').to_owned()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Registers the credentials `url` carries (`https://reader:TOKEN@host`, or a token as the user
/// name alone) as secrets named `name`, as written and percent-decoded: no error, output or log
/// repeats them (a server or a proxy may echo them in an error's body).
pub fn register_url_credentials(name: &str, url: &str) {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return;
    };
    let secret = match parsed.password() {
        Some(password) => password,
        None if !parsed.username().is_empty() => parsed.username(),
        None => return,
    };
    register(name, secret);
    register(name, &percent_decoded(secret));
}

/// `%XX` sequences as the bytes they stand for (a URL's user information is percent-encoded).
pub fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Remembers the value of the variable `name` as a secret.
pub fn register(name: &str, value: &str) {
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    if value.chars().count() < MIN_LEN {
        let first = WARNED.write().map(|mut w| w.insert(name.to_owned())).unwrap_or(false);
        if first {
            eprintln!(
                "warning: the value of `{name}` is shorter than {MIN_LEN} characters, so it is not redacted from outputs (it would hide ordinary words)"
            );
        }
        return;
    }
    if let Ok(mut known) = KNOWN.write()
        && !known.values.iter().any(|k| k == value)
    {
        let Known { values, finder } = &mut *known;
        values.push(value.to_owned());
        for form in encoded_forms(value) {
            if !values.contains(&form) {
                values.push(form);
            }
        }
        // Leftmost-longest: a key that contains another is replaced whole.
        *finder = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(values.iter())
            .ok();
    }
}

/// The forms a secret takes when a service echoes it encoded: base64, standard and URL-safe,
/// alone or inside a longer encoded text (HTTP Basic credentials, `user:key`), and
/// percent-encoding. For base64, each of the three alignments the value can have gives the run
/// of characters that only its own bytes decide (what comes before and after it changes the
/// ends). Forms shorter than [`MIN_LEN`] + 2 are left out, as they could match ordinary text.
fn encoded_forms(value: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let n = value.len();
    for offset in 0..3 {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(value.as_bytes());
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
        // Character i holds bits 6i..6i+6: those wholly within the value's bits.
        let (first, end) = ((8 * offset).div_ceil(6), 8 * (offset + n) / 6);
        if let Some(core) = encoded.get(first..end).filter(|c| c.len() >= MIN_LEN + 2) {
            forms.push(core.to_owned());
            let url_safe = core.replace('+', "-").replace('/', "_");
            if url_safe != core {
                forms.push(url_safe);
            }
        }
    }
    let percent: String = value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    if percent != value {
        // Either case of hex digit: encoders differ.
        let lower = percent_lowercase(&percent);
        if lower != percent {
            forms.push(lower);
        }
        forms.push(percent);
    }
    forms
}

/// Registers the value of each variable in `names` that is set.
pub fn register_env<'a>(names: impl IntoIterator<Item = &'a str>) {
    for name in names {
        if let Ok(value) = std::env::var(name) {
            register(name, &value);
        }
    }
}

/// `%2F` as `%2f`: a percent-encoding's hex digits in lower case.
fn percent_lowercase(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex = 0;
    for c in encoded.chars() {
        if hex > 0 {
            out.push(c.to_ascii_lowercase());
            hex -= 1;
        } else {
            out.push(c);
            if c == '%' {
                hex = 2;
            }
        }
    }
    out
}

/// Whether [`redact`] would change `text` (without making a copy of it, unless it holds JSON
/// escapes).
pub fn needs_redaction(text: &str) -> bool {
    holds_secret(text) || !hidden_by_escapes(text).is_empty()
}

fn holds_secret(text: &str) -> bool {
    let known = KNOWN
        .read()
        .is_ok_and(|k| k.finder.as_ref().is_some_and(|f| f.is_match(text)));
    known || patterns().is_match(text)
}

/// The byte ranges of `text` that hold a secret written with JSON escapes (`\u0073k-…`, a
/// key's `/` as `\/`): a model's JSON answer (a judge's) may echo a key so, which no pattern
/// sees and parsing the JSON then restores. The escapes of printable ASCII are read as what
/// they stand for (an escaped backslash stays one), the secrets found in that reading, and
/// each mapped back to the escaped text it came from; the rest of `text` is untouched.
fn hidden_by_escapes(text: &str) -> Vec<(usize, usize)> {
    if !text.contains("\\u") && !text.contains("\\/") {
        return Vec::new();
    }
    // The reading, and for each of its bytes where its piece of `text` starts.
    let mut read = String::with_capacity(text.len());
    let mut from: Vec<usize> = Vec::with_capacity(text.len() + 1);
    let mut unescaped = false;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let escaped = match rest.as_bytes() {
            [b'\\', b'\\', ..] => None,
            [b'\\', b'/', ..] => Some((b'/', 2)),
            [b'\\', b'u', ..] => rest
                .get(2..6)
                .and_then(|hex| u8::try_from(u32::from_str_radix(hex, 16).ok()?).ok())
                .filter(|b| (b.is_ascii_graphic() || *b == b' ') && !matches!(b, b'"' | b'\\'))
                .map(|b| (b, 6)),
            _ => None,
        };
        // (bytes of `text` read, bytes of the reading written)
        let (width, written) = match escaped {
            Some((b, width)) => {
                unescaped = true;
                read.push(char::from(b));
                (width, 1)
            }
            None => {
                // An escaped backslash is read whole, so its second half opens no escape.
                let width = match rest.starts_with("\\\\") {
                    true => 2,
                    false => rest.chars().next().map_or(1, char::len_utf8),
                };
                read.push_str(&rest[..width]);
                (width, width)
            }
        };
        from.extend(std::iter::repeat_n(i, written));
        i += width;
    }
    from.push(text.len());
    if !unescaped || !holds_secret(&read) {
        return Vec::new();
    }
    let mut found: Vec<(usize, usize)> = patterns().find_iter(&read).map(|m| (m.start(), m.end())).collect();
    if let Ok(known) = KNOWN.read()
        && let Some(finder) = &known.finder
    {
        found.extend(finder.find_iter(&read).map(|m| (m.start(), m.end())));
    }
    found.sort_unstable();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (start, end) in found.into_iter().map(|(s, e)| (from[s], from[e])) {
        match spans.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => spans.push((start, end)),
        }
    }
    spans
}

/// `text` without any secret promptgate knows, and without anything shaped like a credential
/// (`Bearer …` tokens, `sk-…` keys, including the half-masked ones OpenAI echoes in 401s),
/// also where JSON escapes hide one.
pub fn redact(text: &str) -> String {
    let hidden = hidden_by_escapes(text);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in hidden {
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    if let Ok(known) = KNOWN.read()
        && let Some(finder) = &known.finder
        && finder.is_match(&out)
    {
        out = finder.replace_all(&out, &vec![REDACTED; known.values.len()]);
    }
    match patterns().replace_all(&out, REDACTED) {
        std::borrow::Cow::Borrowed(_) => out,
        std::borrow::Cow::Owned(replaced) => replaced,
    }
}

/// Credentials of known shapes: `Bearer …` tokens, `sk-…` keys (OpenAI, Anthropic, including
/// the half-masked ones OpenAI echoes in its 401 messages), GitHub tokens.
fn patterns() -> &'static regex::Regex {
    static PATTERNS: LazyLock<regex::Regex> = LazyLock::new(|| {
        // ASCII word boundaries: the lazy DFA handles them, so scanning a whole results.json
        // stays linear and fast (Unicode `\b` would fall back to a much slower engine).
        regex::Regex::new(
            // A JSON escape before a key (`\nsk-…`) ends a word as a space would: the key and
            // the escape go together.
            r"(?i-u)(?:\b|\\[ntrfb])bearer\s+[A-Za-z0-9._~+/=*-]+|(?:(?-u:\b)|\\[ntrfb])sk-[A-Za-z0-9_*-]{4,}|(?:(?-u:\b)|\\[ntrfb])gh[pousr]_[A-Za-z0-9]{20,}",
        )
        .expect("valid pattern")
    });
    &PATTERNS
}

/// Redacts every string of a JSON value in place (keys included).
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            let clean = redact(s);
            if clean != *s {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut v) in entries {
                redact_json(&mut v);
                map.insert(redact(&key), v);
            }
        }
        _ => {}
    }
}

/// A copy of `results` with every string redacted (outputs, errors, inputs, names), so that
/// everything rendered from it is clean before the final pass over the rendered text.
pub fn redacted(results: &crate::results::Results) -> crate::results::Results {
    let Ok(mut value) = serde_json::to_value(results) else {
        return results.clone();
    };
    redact_json(&mut value);
    serde_json::from_value(value).unwrap_or_else(|_| results.clone())
}

/// Why `name` may not be handed to a provider or program, if it may not.
pub fn refused_variable(name: &str) -> Option<String> {
    if SCRUBBED.contains(&name) || name.starts_with("ACTIONS_") {
        return Some(format!(
            "`{name}` is the GitHub Actions token or runtime credential, which promptgate never hands to a provider"
        ));
    }
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (!valid).then(|| format!("`{name}` is not an environment variable name (letters, digits and `_`)"))
}

/// The whole environment of an `exec` program: [`CHILD_BASE_ENV`] and the variables its
/// config lists, as far as they are set. The listed ones are registered as secrets: they are
/// what the program was given to do its work, and it might echo them.
pub fn child_env(listed: &[String]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for name in CHILD_BASE_ENV.iter().copied().chain(listed.iter().map(String::as_str)) {
        if refused_variable(name).is_some() && !CHILD_BASE_ENV.contains(&name) {
            continue;
        }
        if let Ok(value) = std::env::var(name) {
            if !CHILD_BASE_ENV.contains(&name) {
                register(name, &value);
            }
            env.push((name.to_owned(), value));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_redacted_whatever_their_shape() {
        register("PROMPTGATE_TEST_SECRET", "not-a-key-shape-7f3a9");
        register("PROMPTGATE_TEST_SHORT", "abc");
        assert_eq!(
            redact("echo not-a-key-shape-7f3a9 twice not-a-key-shape-7f3a9"),
            "echo [redacted] twice [redacted]"
        );
        // Too short to redact without eating words.
        assert_eq!(redact("abc def"), "abc def");
        assert_eq!(redact("Authorization: Bearer eyJ.x-y"), "Authorization: [redacted]");
        assert_eq!(redact("key sk-test-*******ET-42."), "key [redacted].");
        assert_eq!(redact("token ghs_0123456789abcdefghijABCDEFGHIJ"), "token [redacted]");
        assert_eq!(redact("ask-me and risk-free"), "ask-me and risk-free");
        assert!(!needs_redaction("ask-me and risk-free"));
        assert!(needs_redaction("x not-a-key-shape-7f3a9"));
        assert!(needs_redaction("Bearer abc"));
        let mut value = serde_json::json!({"a": ["x not-a-key-shape-7f3a9"], "not-a-key-shape-7f3a9": 1});
        redact_json(&mut value);
        assert_eq!(value, serde_json::json!({"a": ["x [redacted]"], "[redacted]": 1}));
    }

    /// A judge's JSON answer may echo a key with a character escaped (`\u0073` is `s`): no
    /// pattern saw it, and parsing the answer restored it (the cache kept it whole, the
    /// comment its tail).
    #[test]
    fn a_key_behind_json_escapes_is_redacted() {
        register("PROMPTGATE_TEST_ESCAPED", "sk-test-SECRETSECRET1234");
        for echoed in [
            r#"{"reason": "leak \u0073k-test-SECRETSECRET1234 end"}"#,
            r#"{"reason": "leak sk-test-SECRET\u0053ECRET1234 end"}"#,
            r#"{"reason": "leak sk-other-\u0041BCDEFGH end"}"#,
        ] {
            assert!(needs_redaction(echoed), "{echoed}");
            let clean = redact(echoed);
            assert_eq!(clean.matches(REDACTED).count(), 1, "{clean}");
            let parsed: serde_json::Value = serde_json::from_str(&clean).unwrap();
            let reason = parsed["reason"].as_str().unwrap();
            assert!(!reason.contains("SECRET") && !reason.contains("ABCD"), "{reason}");
        }
        // Escapes that hide nothing are left as they are, beside a secret too; an escaped
        // backslash opens no escape (`\\u0041` read as `\A` made results.json invalid).
        let plain = r#"{"reason": "caf\u00e9 \u0041 \\u0022"}"#;
        assert!(!needs_redaction(plain));
        assert_eq!(redact(plain), plain);
        let beside = r#"{"input": "In JS \"\u0041\" or \\u0041; never print sk-proj-ABCDEFGHIJKLMNOP"}"#;
        assert_eq!(
            redact(beside),
            r#"{"input": "In JS \"\u0041\" or \\u0041; never print [redacted]"}"#
        );
        // A key with a `/`, echoed as JSON writes it (`\/`).
        register("PROMPTGATE_TEST_SLASHED", "abc/def/ghi-123456");
        let slashed = r#"{"reason": "key abc\/def\/ghi-123456!"}"#;
        assert_eq!(redact(slashed), r#"{"reason": "key [redacted]!"}"#);
        // After an escaped line break or space, where no word boundary is.
        for (echoed, clean) in [
            (r#"{"r": "Key:\nsk-proj-ABCDEFGHIJ"}"#, r#"{"r": "Key:[redacted]"}"#),
            (
                r#"{"r": "Key:\tghp_0123456789abcdefghijABCD"}"#,
                r#"{"r": "Key:[redacted]"}"#,
            ),
            (
                r#"{"r": "Key:\u0020sk-proj-ABCDEFGHIJ"}"#,
                r#"{"r": "Key:\u0020[redacted]"}"#,
            ),
            (r#"{"r": "Bearer\u0020abcdefghijkl"}"#, r#"{"r": "[redacted]"}"#),
        ] {
            assert!(needs_redaction(echoed), "{echoed}");
            assert_eq!(redact(echoed), clean);
            serde_json::from_str::<serde_json::Value>(&redact(echoed)).unwrap();
        }
    }

    /// A key echoed encoded (a service quoting the Authorization header it got, a URL) is
    /// redacted too. The encodings are Python's (`base64.b64encode`, `base64.urlsafe_b64encode`,
    /// `urllib.parse.quote(k, safe='')`) of k = "Zq9TESTSECRET77 ?&>~~~", with what comes before
    /// and after it shown.
    #[test]
    fn a_key_echoed_encoded_is_redacted() {
        register("PROMPTGATE_TEST_ENCODED", "Zq9TESTSECRET77 ?&>~~~");
        for (echoed, kept) in [
            // b64encode(k)
            ("auth=WnE5VEVTVFNFQ1JFVDc3ID8mPn5+fg== end", ["auth=", " end"]),
            // b64encode(b"apikey:" + k): HTTP Basic credentials
            (
                "Basic YXBpa2V5OlpxOVRFU1RTRUNSRVQ3NyA/Jj5+fn4=",
                ["Basic YXBpa2V5", "="],
            ),
            // urlsafe_b64encode(b"x" + k)
            ("t=eFpxOVRFU1RTRUNSRVQ3NyA_Jj5-fn4=", ["t=eF", "="]),
            // b64encode(b"ab" + k + b"tail")
            ("YWJacTlURVNUU0VDUkVUNzcgPyY+fn5+dGFpbA==", ["YWJ", "GFpbA=="]),
            // quote(k, safe='')
            ("?key=Zq9TESTSECRET77%20%3F%26%3E~~~&x=1", ["?key=", "&x=1"]),
            // the same with lower-case hex digits
            ("?key=Zq9TESTSECRET77%20%3f%26%3e~~~&x=1", ["?key=", "&x=1"]),
        ] {
            let redacted = redact(echoed);
            assert!(redacted.contains(REDACTED), "{echoed} -> {redacted}");
            assert!(
                redacted.starts_with(kept[0]) && redacted.ends_with(kept[1]),
                "{echoed} -> {redacted}"
            );
            assert!(needs_redaction(echoed));
        }
        // What only looks alike is kept: the encoding of another value.
        assert_eq!(redact("WnE5VEVTVFNFQ1JFVDc4"), "WnE5VEVTVFNFQ1JFVDc4");
    }

    #[test]
    fn the_github_token_is_never_a_providers() {
        assert!(refused_variable("GITHUB_TOKEN").is_some());
        assert!(refused_variable("ACTIONS_RUNTIME_TOKEN").is_some());
        assert!(refused_variable("OPENAI API KEY").is_some());
        assert!(refused_variable("OPENAI_API_KEY").is_none());
    }
}
