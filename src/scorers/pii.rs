//! Personal data in an output: e-mail addresses, phone numbers, IBANs (with their mod-97
//! checksum), payment card numbers (with the Luhn check) and patterns a suite configures.
//!
//! Each detector favours precision: a finding fails the call and is shown in the pull
//! request's comment, so strings that only look like personal data in code or numbers must
//! not be findings — `@app.route`, `git@github.com:org/repo.git`, `https://user@host/`, dates,
//! prices, order numbers, card-length numbers that fail Luhn, IBANs with a wrong checksum.
//!
//! A finding is reported masked ([`Finding::masked`]): the comment says what kind of data
//! leaked and shows its shape, never the data itself.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

use crate::suite::{PiiDetectors, PiiKind};

/// One piece of personal data found in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `email`, `phone`, `iban`, `card`, or a configured pattern's name.
    pub kind: String,
    /// The text found, masked: `j***@example.com`, `**** **** **** 1111`.
    pub masked: String,
}

/// Every finding of `detectors` in `text`, in the order of the detectors, then of the text;
/// what `detectors.allow` lists is not a finding.
pub fn find(detectors: &PiiDetectors, text: &str) -> Vec<Finding> {
    located(detectors, text).into_iter().map(|(_, f)| f).collect()
}

/// `text` with every finding of `detectors` replaced by its masked form, so an output that
/// leaked personal data can be stored and quoted (in `results.json`, in the pull request's
/// comment) without publishing the data again. Overlapping findings keep the earlier one.
pub fn mask<'a>(detectors: &PiiDetectors, text: &'a str) -> Cow<'a, str> {
    let mut found = located(detectors, text);
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    found.sort_by_key(|(at, _)| (at.start, std::cmp::Reverse(at.end)));
    let mut masked = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, finding) in found {
        if at.start < copied {
            continue;
        }
        masked.push_str(&text[copied..at.start]);
        masked.push_str(&finding.masked);
        copied = at.end;
    }
    masked.push_str(&text[copied..]);
    Cow::Owned(masked)
}

/// Every finding with the byte range it covers in `text`.
fn located(detectors: &PiiDetectors, text: &str) -> Vec<(Range<usize>, Finding)> {
    let allowed: Vec<String> = detectors.allow.iter().map(|a| canonical(a)).collect();
    let allowed = |s: &str| allowed.contains(&canonical(s));
    let mut found = Vec::new();
    // The digits of an account or card number are not a phone number too (`… 0417 1643 00`
    // ends an IBAN), whether or not those kinds are looked for.
    let span = |s: &str| {
        let start = s.as_ptr() as usize - text.as_ptr() as usize;
        start..start + s.len()
    };
    let accounts: Vec<std::ops::Range<usize>> = ibans(text).into_iter().chain(cards(text)).map(span).collect();
    for kind in &detectors.builtin {
        let spans: Vec<&str> = match kind {
            PiiKind::Email => emails(text),
            PiiKind::Phone => phones(text)
                .into_iter()
                .filter(|p| {
                    let p = span(p);
                    !accounts.iter().any(|a| a.start < p.end && p.start < a.end)
                })
                .collect(),
            PiiKind::Iban => ibans(text),
            PiiKind::Card => cards(text),
        };
        let keep = match kind {
            PiiKind::Email => 0,
            PiiKind::Phone => 2,
            PiiKind::Iban | PiiKind::Card => 4,
        };
        found.extend(spans.into_iter().filter(|s| !allowed(s)).map(|s| {
            let finding = Finding {
                kind: kind.as_str().to_owned(),
                masked: if *kind == PiiKind::Email {
                    mask_email(s)
                } else {
                    mask_digits(s, keep)
                },
            };
            (span(s), finding)
        }));
    }
    for (name, regex) in &detectors.custom {
        found.extend(
            regex
                .find_iter(text)
                .filter(|m| !m.as_str().is_empty() && !allowed(m.as_str()))
                .map(|m| {
                    let finding = Finding {
                        kind: name.clone(),
                        masked: mask_alphanumerics(m.as_str(), 2),
                    };
                    (m.range(), finding)
                }),
        );
    }
    found
}

/// E-mail addresses: `local@domain.tld`, not preceded by a word character or `//`, nor
/// followed by `/` or by `:` and a non-space (so URL credentials, `scheme://user@host` and
/// SSH remotes such as `git@github.com:org/repo.git` are not addresses). A decorator
/// (`@app.route`) has no local part and never matches.
fn emails(text: &str) -> Vec<&str> {
    static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}")
            .expect("a valid regex")
    });
    EMAIL
        .find_iter(text)
        .filter(|m| {
            let before = &text[..m.start()];
            let after = &text[m.end()..];
            let next = after.chars().next();
            let word_before = before
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let local = &m.as_str()[..m.as_str().find('@').unwrap_or(0)];
            // The word the address is in: `https://user:pass@host.com` holds a scheme.
            let token_start = before
                .char_indices()
                .rev()
                .find(|(_, c)| c.is_whitespace())
                .map_or(0, |(i, c)| i + c.len_utf8());
            let in_url = before[token_start..].contains("://") || next == Some('/');
            // `git@github.com:org/repo.git`: a colon and a path right after the host.
            let ssh_remote = next == Some(':') && after[1..].chars().next().is_some_and(|c| !c.is_whitespace());
            let dotted_edge = local.starts_with('.') || local.ends_with('.');
            let glued_after = next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '@');
            !(word_before || in_url || ssh_remote || dotted_edge || glued_after)
        })
        .map(|m| m.as_str())
        .collect()
}

/// Phone numbers, international (`+44 20 7946 0958`, `+1 (415) 555-2671`) or national
/// (`(415) 555-2671`, `415.555.2671`, `020 7946 0958`, `01 23 45 67 89`): digits in groups
/// separated by one space, `-` or `.` (one kind throughout), an area code optionally in
/// parentheses. What is not taken for one:
/// - fewer digits than a full number (8 with a `+`, 10 without; 7-digit local numbers look
///   like too many other things) or more than E.164 allows (15);
/// - one unseparated run of digits without a `+` (order numbers, timestamps, ids);
/// - numbers grouped in thousands (`1 234 567 890`, `1.234.567.890`);
/// - anything glued to a word, `#`, a currency sign or `-`/`/` (`ORD-2024-000123`,
///   `#4155552671`, `$1 234 567 890`), or followed by a decimal part or `%`.
fn phones(text: &str) -> Vec<&str> {
    static CANDIDATE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\+?\(?[0-9][0-9 \-.()]{6,24}[0-9]").expect("a valid regex"));
    CANDIDATE
        .find_iter(text)
        .filter(|m| {
            let before = text[..m.start()].chars().next_back();
            let after = &text[m.end()..];
            let mut next = after.chars();
            let (n1, n2) = (next.next(), next.next());
            let glued_before = before.is_some_and(|c| c.is_alphanumeric() || "#$€£¥_-/.,+:".contains(c));
            let glued_after = n1.is_some_and(|c| c.is_alphanumeric() || "%_-/€$£¥".contains(c))
                || (n1.is_some_and(|c| c == '.' || c == ',') && n2.is_some_and(|c| c.is_ascii_digit()));
            !glued_before && !glued_after && phone_shaped(m.as_str())
        })
        .map(|m| m.as_str())
        .collect()
}

fn phone_shaped(candidate: &str) -> bool {
    let international = candidate.starts_with('+');
    let body = candidate.trim_start_matches('+');
    // Digit groups and what separates them.
    let mut groups: Vec<usize> = Vec::new();
    let mut separators: Vec<String> = Vec::new();
    let mut run = 0;
    let mut between = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            if run == 0 && !groups.is_empty() {
                separators.push(std::mem::take(&mut between));
            }
            run += 1;
        } else {
            if run > 0 {
                groups.push(run);
                run = 0;
            }
            between.push(c);
        }
    }
    if run > 0 {
        groups.push(run);
    }
    if !between.is_empty() {
        return false;
    }
    let digits: usize = groups.iter().sum();
    let (fewest, most) = if international { (8, 15) } else { (10, 15) };
    if !(fewest..=most).contains(&digits) {
        return false;
    }
    if !international && (groups.len() < 2 || groups.len() > 5 || digits > 11) {
        return false;
    }
    // At most one pair of parentheses, around one of the first two groups: `(415) 555-2671`,
    // `+44 (0)20 7946 0958`.
    let opens = body.matches('(').count();
    if opens > 1 || opens != body.matches(')').count() {
        return false;
    }
    if opens == 1 {
        let at = body.find('(').unwrap_or(0);
        let closed = body.find(')').unwrap_or(0);
        // `415) 555-(2671`: closed before it opens.
        if closed < at {
            return false;
        }
        let inside = &body[at + 1..closed];
        let group_index = body[..at].chars().filter(char::is_ascii_digit).count();
        let first_groups: usize = groups.iter().take(2).sum();
        if inside.is_empty() || !inside.chars().all(|c| c.is_ascii_digit()) || group_index >= first_groups {
            return false;
        }
    }
    // Separators: one space, `-` or `.`, the same kind throughout (parentheses aside).
    let mut kind: Option<char> = None;
    for sep in &separators {
        let plain: String = sep.chars().filter(|c| *c != '(' && *c != ')').collect();
        match plain.chars().count() {
            0 if sep.contains('(') || sep.contains(')') => {}
            1 => {
                let c = plain.chars().next().unwrap_or(' ');
                if kind.is_some_and(|k| k != c) && !(sep.contains(')') || sep.contains('(')) {
                    return false;
                }
                if !sep.contains(')') && !sep.contains('(') {
                    kind = Some(c);
                }
            }
            _ => return false,
        }
    }
    // Thousands: a first group of 1–3 digits, then only groups of exactly three. An IPv4
    // address: four dotted groups of at most three digits.
    let thousands = groups.len() >= 3 && groups[0] <= 3 && groups[1..].iter().all(|g| *g == 3);
    let ipv4 = kind == Some('.') && groups.len() == 4 && groups.iter().all(|g| *g <= 3);
    !thousands && !ipv4
}

/// IBANs: a country code, two check digits and the account (letters and digits, optionally in
/// groups of four), exactly as long as the country's IBAN, whose ISO 13616 mod-97 checksum
/// holds.
fn ibans(text: &str) -> Vec<&str> {
    static CANDIDATE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){10,32}").expect("a valid regex"));
    let mut found = Vec::new();
    for m in CANDIDATE.find_iter(text) {
        let candidate = m.as_str();
        let country = candidate[..2].to_ascii_uppercase();
        let Some(length) = iban_length(&country) else {
            continue;
        };
        // The first `length` letters and digits (spaces between groups skipped): the match may
        // run on into a following word.
        let mut taken = 0;
        let mut end = 0;
        for (i, c) in candidate.char_indices() {
            if c.is_ascii_alphanumeric() {
                taken += 1;
                if taken == length {
                    end = i + c.len_utf8();
                    break;
                }
            }
        }
        if taken < length {
            continue;
        }
        let iban = &candidate[..end];
        let rest = &text[m.start() + end..];
        if rest.chars().next().is_some_and(|c| c.is_alphanumeric()) {
            continue;
        }
        if iban_checksum_holds(iban) {
            found.push(iban);
        }
    }
    found
}

/// ISO 13616 / ISO 7064 MOD 97-10: the first four characters moved to the end, letters as
/// 10–35, the number mod 97 is 1.
pub fn iban_checksum_holds(iban: &str) -> bool {
    let compact: Vec<char> = iban
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if compact.len() < 5 || !compact.iter().all(char::is_ascii_alphanumeric) {
        return false;
    }
    let rearranged = compact[4..].iter().chain(&compact[..4]);
    let mut remainder: u32 = 0;
    for c in rearranged {
        let value = c.to_digit(36).unwrap_or(0);
        // Letters are two digits (10–35), digits one.
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// The IBAN length of each country of the SWIFT IBAN registry (release 101; the table was
/// checked against python-stdnum's copy of that release, `stdnum/iban.dat`).
fn iban_length(country: &str) -> Option<usize> {
    #[rustfmt::skip]
    const LENGTHS: &[(&str, usize)] = &[
        ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16), ("BG", 22),
        ("BH", 22), ("BI", 27), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22), ("CY", 28), ("CZ", 24),
        ("DE", 22), ("DJ", 27), ("DK", 18), ("DO", 28), ("EE", 20), ("EG", 29), ("ES", 24), ("FI", 18),
        ("FK", 18), ("FO", 18), ("FR", 27), ("GB", 22), ("GE", 22), ("GI", 23), ("GL", 18), ("GR", 27),
        ("GT", 28), ("HN", 28), ("HR", 21), ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23), ("IS", 26), ("IT", 27),
        ("JO", 30), ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32), ("LI", 21), ("LT", 20), ("LU", 20),
        ("LV", 21), ("LY", 25), ("MC", 27), ("MD", 24), ("ME", 22), ("MK", 19), ("MN", 20), ("MR", 27),
        ("MT", 31), ("MU", 30), ("NI", 28), ("NL", 18), ("NO", 15), ("OM", 23), ("PK", 24), ("PL", 28),
        ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22), ("RU", 33), ("SA", 24), ("SC", 31),
        ("SD", 18), ("SE", 24), ("SI", 19), ("SK", 24), ("SM", 27), ("SO", 23), ("ST", 25), ("SV", 28),
        ("TL", 23), ("TN", 24), ("TR", 26), ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20), ("YE", 30),
    ];
    LENGTHS.iter().find(|(c, _)| *c == country).map(|(_, n)| *n)
}

/// Payment card numbers: 13 to 19 digits, unseparated or in groups separated by one kind of
/// separator (space or `-`), starting with an issuer digit 2–6 (Mastercard, Amex, Diners,
/// JCB, Visa, Discover, UnionPay, Maestro), whose Luhn check digit holds.
fn cards(text: &str) -> Vec<&str> {
    static CANDIDATE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\b[0-9](?:[ \-]?[0-9]){12,18}\b").expect("a valid regex"));
    CANDIDATE
        .find_iter(text)
        .filter(|m| {
            let s = m.as_str();
            let mut before = text[..m.start()].chars().rev();
            let mut after = text[m.end()..].chars();
            let (b1, b2) = (before.next(), before.next());
            let (a1, a2) = (after.next(), after.next());
            let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
            // Part of a longer number (`… 3456 7890`), or of an identifier or a path.
            let glued = b1.is_some_and(|c| "/.,_#".contains(c))
                || a1.is_some_and(|c| "/_".contains(c))
                || (b1.is_some_and(|c| c == ' ' || c == '-') && digit(b2))
                || (a1.is_some_and(|c| c == ' ' || c == '-') && digit(a2))
                || b1 == Some('-')
                || a1 == Some('-');
            let spaced = s.contains(' ');
            let dashed = s.contains('-');
            let digits: String = s.chars().filter(char::is_ascii_digit).collect();
            let mixed = spaced && dashed;
            let issuer = matches!(digits.bytes().next(), Some(b'2'..=b'6'));
            !glued && !mixed && issuer && luhn_holds(&digits)
        })
        .map(|m| m.as_str())
        .collect()
}

/// The Luhn check (ISO/IEC 7812-1 Annex B): doubling every second digit from the right, the sum
/// of the digits is a multiple of 10.
pub fn luhn_holds(digits: &str) -> bool {
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(d) = c.to_digit(10) else {
            return false;
        };
        sum += if i % 2 == 1 {
            let twice = d * 2;
            if twice > 9 { twice - 9 } else { twice }
        } else {
            d
        };
    }
    !digits.is_empty() && sum % 10 == 0
}

/// What an allowed entry and a finding are compared by: letters, digits and `@`, lowercased,
/// so `+1 (800) 555-0142` is `1-800-555-0142` and `Privacy@Example.com` is `privacy@example.com`.
fn canonical(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || *c == '@')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `jane.doe@example.com` → `j***@example.com`.
fn mask_email(email: &str) -> String {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let first = local.chars().next().map(String::from).unwrap_or_default();
    format!("{first}***@{domain}")
}

/// Every digit but the last `keep` as `*`, letters after the first two characters too (an
/// IBAN's country code stays): `4111 1111 1111 1111` → `**** **** **** 1111`.
fn mask_digits(text: &str, keep: usize) -> String {
    let total = text.chars().filter(char::is_ascii_alphanumeric).count();
    let mut seen = 0;
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if !c.is_ascii_alphanumeric() {
                return c;
            }
            seen += 1;
            let country = i < 2 && c.is_ascii_alphabetic();
            if country || seen > total.saturating_sub(keep) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// A configured pattern's match: every letter or digit but the last `keep` as `*` (all of
/// them when the match is short).
fn mask_alphanumerics(text: &str, keep: usize) -> String {
    let total = text.chars().filter(|c| c.is_alphanumeric()).count();
    let keep = if total <= 2 * keep { 0 } else { keep };
    let mut seen = 0;
    text.chars()
        .map(|c| {
            if !c.is_alphanumeric() {
                return c;
            }
            seen += 1;
            if seen > total - keep { c } else { '*' }
        })
        .collect()
}

#[cfg(test)]
mod tests;
