//! Escaping of untrusted text (model outputs, case inputs, names from the PR's own config) for
//! the Markdown that GitHub renders in the PR comment and the step summary.
//!
//! The output of [`escape_untrusted`] is inert in every place the templates put it: a table
//! cell, a heading, a list item, the body of a `<details>` block. It contains no HTML, no
//! character that ends a table cell or opens a code span or fence (backticks, and `~` of a
//! `~~~` fence or strikethrough), no line break, nothing GitHub turns into a notification (an
//! `@mention` or an issue reference) or a link (a bare `https://…` or `www.…` a model wrote),
//! no invisible bidirectional control that would make the text read differently from what it
//! is, and so never the comment's hidden marker. It must not be placed inside a code span or
//! fence: there entities are not decoded and would show literally.

/// Escapes `text` for Markdown and caps it at `max_chars` characters of the original text,
/// adding a visible "… (N more characters)" marker when it cut.
///
/// - `&`, `<`, `>` become entities, so no HTML tag, `</details>`, `<!--` or `-->` survives.
/// - `|` (ends a table cell), `` ` `` (opens a code span or fence), `\` (would escape the cell's
///   closing pipe), `[` and `]` (links and images: a bot comment must not carry a model's
///   phishing link or tracking pixel) become numeric entities.
/// - Line breaks become `<br>`, which keeps the text in one table cell or paragraph.
/// - A zero-width joiner follows every `@` and the `#` (or `GH-`) of an issue reference.
///   GitHub links mentions and references in the rendered text, after entities are decoded,
///   so `&#64;` would still ping; an invisible joiner is a real character in that text and
///   breaks the match, while the reader still sees `@octocat`. Backticks were the other
///   option, but a code span changes how the text looks and cannot hold escaped text.
/// - `~` becomes an entity: `~~~` opens a code fence and `~~x~~` strikes text through.
/// - A zero-width joiner breaks the autolinks GitHub makes of bare URLs (`https://`, `http://`,
///   `www.`): model output is evidence, not a link to follow.
/// - Bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) become a
///   visible `⟨U+202E⟩`: invisible, they reorder what a reviewer reads (CVE-2021-42574,
///   "Trojan Source").
/// - Other control characters become U+FFFD, as GitHub would do with NUL anyway.
pub fn escape_untrusted(text: &str, max_chars: usize) -> String {
    let total = text.chars().count();
    let kept: &str = match text.char_indices().nth(max_chars) {
        Some((byte, _)) => &text[..byte],
        None => text,
    };
    let mut out = String::with_capacity(kept.len() + kept.len() / 8 + 32);
    let mut chars = kept.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '`' => out.push_str("&#96;"),
            '\\' => out.push_str("&#92;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            '~' => out.push_str("&#126;"),
            // Emphasis: `*` anywhere, `_` where it may open or close one (GitHub leaves an
            // underscore between letters alone, so `pass_rate` reads as written).
            '*' => out.push_str("&#42;"),
            '_' if !(out.chars().next_back().is_some_and(char::is_alphanumeric)
                && chars.peek().is_some_and(|c| c.is_alphanumeric())) =>
            {
                out.push_str("&#95;");
            }
            ':' if chars.clone().take(2).eq("//".chars()) && ends_with_scheme(&out) => {
                out.push(':');
                out.push(ZERO_WIDTH_JOINER);
            }
            '.' if ends_with_www(&out) => {
                out.push(ZERO_WIDTH_JOINER);
                out.push('.');
            }
            c if is_bidi_control(c) => out.push_str(&format!("⟨U+{:04X}⟩", u32::from(c))),
            '\r' => {
                // A CRLF pair is one line break, not two.
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            '@' => {
                out.push('@');
                out.push(ZERO_WIDTH_JOINER);
            }
            '#' if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('#');
                out.push(ZERO_WIDTH_JOINER);
            }
            '-' if chars.peek().is_some_and(char::is_ascii_digit) && ends_with_gh(&out) => {
                out.push('-');
                out.push(ZERO_WIDTH_JOINER);
            }
            '\t' => out.push(' '),
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
    if total > max_chars {
        let more = total - max_chars;
        let unit = if more == 1 { "character" } else { "characters" };
        out.push_str(&format!("… ({more} more {unit})"));
    }
    out
}

const ZERO_WIDTH_JOINER: char = '\u{200D}';

/// The characters that change the direction text is displayed in.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether `out` ends with a URL scheme GitHub autolinks (`http`, `https`, any case).
fn ends_with_scheme(out: &str) -> bool {
    let lower = out
        .get(out.len().saturating_sub(5)..)
        .unwrap_or(out)
        .to_ascii_lowercase();
    lower.ends_with("http") || lower.ends_with("https")
}

/// Whether `out` ends with a `www` that starts a word, as in an autolinked `www.example.com`.
fn ends_with_www(out: &str) -> bool {
    let Some(before) = out
        .len()
        .checked_sub(3)
        .filter(|at| out.is_char_boundary(*at) && out[*at..].eq_ignore_ascii_case("www"))
        .map(|at| &out[..at])
    else {
        return false;
    };
    !before.chars().next_back().is_some_and(char::is_alphanumeric)
}

/// Whether `out` ends with a `GH` that starts a word, as in the `GH-123` issue reference.
fn ends_with_gh(out: &str) -> bool {
    let Some(before) = out
        .strip_suffix("GH")
        .or_else(|| out.strip_suffix("gh"))
        .or_else(|| out.strip_suffix("Gh"))
        .or_else(|| out.strip_suffix("gH"))
    else {
        return false;
    };
    !before.chars().next_back().is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZWJ: &str = "\u{200D}";

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(escape_untrusted(input, 10_000), expected);
    }

    #[test]
    fn plain_text_is_unchanged() {
        check(
            "Refunds are possible within 30 days.",
            "Refunds are possible within 30 days.",
        );
        check("", "");
        check("naïve café — ok ✓", "naïve café — ok ✓");
    }

    #[test]
    fn html_is_escaped() {
        check("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;");
        check("a & b", "a &amp; b");
        check("&lt;", "&amp;lt;");
        check("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;");
    }

    #[test]
    fn details_and_comment_markers_cannot_break_out() {
        for hostile in [
            "</details>",
            "</DETAILS >",
            "<!-- promptgate:report -->",
            "-->",
            "<!--",
            "</summary></details><details open>",
        ] {
            let escaped = escape_untrusted(hostile, 10_000);
            assert!(!escaped.contains('<'), "{escaped}");
            assert!(!escaped.contains('>'), "{escaped}");
        }
        check("<!-- promptgate:report -->", "&lt;!-- promptgate:report --&gt;");
    }

    /// Emphasis markers in a name or a case id read as written (`*exp*` was set in italics);
    /// an underscore between letters, which opens no emphasis, is left as it is.
    #[test]
    fn emphasis_markers_read_as_written() {
        check("*exp* and **bold**", "&#42;exp&#42; and &#42;&#42;bold&#42;&#42;");
        check("_star_ in pass_rate", "&#95;star&#95; in pass_rate");
        check("snake_case_", "snake_case&#95;");
    }

    #[test]
    fn mentions_are_neutralised() {
        check("@octocat", &format!("@{ZWJ}octocat"));
        check("cc @org/team please", &format!("cc @{ZWJ}org/team please"));
        check("mail a@b.com", &format!("mail a@{ZWJ}b.com"));
    }

    #[test]
    fn issue_references_are_neutralised() {
        check("fixes #1", &format!("fixes #{ZWJ}1"));
        check("see GH-42", &format!("see GH-{ZWJ}42"));
        check("gh-7", &format!("gh-{ZWJ}7"));
        // Not references: left alone so ordinary text reads the same.
        check("# heading", "# heading");
        check("C#", "C#");
        check("HIGH-5", "HIGH-5");
    }

    #[test]
    fn table_and_code_syntax_is_escaped() {
        check("a | b", "a &#124; b");
        check("`x`", "&#96;x&#96;");
        check(
            "```rust\nfn main() {}\n```",
            "&#96;&#96;&#96;rust<br>fn main() {}<br>&#96;&#96;&#96;",
        );
        check("ends with \\", "ends with &#92;");
        check(
            "![pixel](https://evil.example/p.png)",
            &format!("!&#91;pixel&#93;(https:{ZWJ}//evil.example/p.png)"),
        );
    }

    #[test]
    fn fences_links_and_bidi_controls_are_neutralised() {
        check("~~~", "&#126;&#126;&#126;");
        check("~~struck~~", "&#126;&#126;struck&#126;&#126;");
        check(
            "see https://evil.example/x and HTTP://a.b",
            &format!("see https:{ZWJ}//evil.example/x and HTTP:{ZWJ}//a.b"),
        );
        check("go to www.evil.example", &format!("go to www{ZWJ}.evil.example"));
        // Not autolinks: left as they are.
        check("a ratio 3:2, std::env, awww.x", "a ratio 3:2, std::env, awww.x");
        check("admin\u{202E}gnp.exe", "admin⟨U+202E⟩gnp.exe");
        check("\u{2066}x\u{2069}", "⟨U+2066⟩x⟨U+2069⟩");
    }

    #[test]
    fn line_breaks_stay_in_one_line() {
        check("a\nb\r\nc\rd", "a<br>b<br>c<br>d");
        check("a\tb", "a b");
        check("nul\0bell\u{7}", "nul\u{FFFD}bell\u{FFFD}");
    }

    #[test]
    fn long_text_is_truncated_with_a_marker() {
        assert_eq!(escape_untrusted("abcdef", 3), "abc… (3 more characters)");
        assert_eq!(escape_untrusted("abcd", 3), "abc… (1 more character)");
        assert_eq!(escape_untrusted("abc", 3), "abc");
        assert_eq!(escape_untrusted("abc", 0), "… (3 more characters)");
        // Characters, not bytes: never cuts inside a UTF-8 sequence.
        assert_eq!(escape_untrusted("ééé", 2), "éé… (1 more character)");
        // The cap counts characters of the original, before escaping.
        assert_eq!(escape_untrusted("<<<<", 2), "&lt;&lt;… (2 more characters)");
    }

    #[test]
    fn a_100_kb_output_is_capped() {
        let huge = "<x>|`@a\n".repeat(100_000 / 8);
        let escaped = escape_untrusted(&huge, 1_000);
        assert!(
            escaped.ends_with("… (99000 more characters)"),
            "{}",
            &escaped[escaped.len() - 40..]
        );
        assert!(escaped.len() < 10_000);
    }
}
