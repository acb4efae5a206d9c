//! The errors a load finds, for `validate`, which reports every one: each kind's first
//! [`SHOWN`] in a file in full, then how many more (a large dataset written wrong would
//! otherwise print an error a case).

use crate::error::{Diagnostic, Error};

/// The errors of one kind in one file shown in full.
pub(super) const SHOWN: usize = 20;

/// Errors collected without stopping at the first.
pub(super) struct Capped {
    /// The file they are in.
    path: String,
    errors: Vec<Error>,
    /// Errors found beyond [`SHOWN`], counted and not kept.
    more: usize,
}

impl Capped {
    pub(super) fn new(path: &str) -> Self {
        Capped {
            path: path.to_owned(),
            errors: Vec::new(),
            more: 0,
        }
    }

    pub(super) fn push(&mut self, error: impl Into<Error>) {
        if self.errors.len() < SHOWN {
            self.errors.push(error.into());
        } else {
            self.more += 1;
        }
    }

    /// The errors, and one more saying how many were not shown.
    pub(super) fn into_vec(mut self) -> Vec<Error> {
        if self.more > 0 {
            self.errors.push(
                Diagnostic::new(format!(
                    "{} more error(s) like these in `{}`, not shown",
                    self.more, self.path
                ))
                .in_file(&self.path)
                .hint("fix the ones above and run `promptgate validate` again")
                .into(),
            );
        }
        self.errors
    }
}

/// `first`, the suite file's first error, and each further unknown key the file holds: while
/// the last error found is an unknown key written in block style (the key first on its line),
/// its `text` is read again (`reread`) with that key and the lines nested under it blanked,
/// every other character in its place, so the next error is placed where it is written.
/// Stops at an error of another kind (which may be the blanking's own doing, such as a field
/// missing because its key was misspelt), a key written inside a `{…}` mapping or first in a
/// list item (blanking it would take its neighbours, or leave an empty item), or [`SHOWN`]
/// errors. With them, the text without every unknown key it blanked (when it blanked one): what
/// `validate` reads again for the file's other problems and, when it loads, goes on checking
/// (the experiments' files, the gates), so a misspelt key does not hide the problems behind it.
pub(super) fn unknown_keys_after(
    first: Error,
    config_path: &str,
    text: Option<String>,
    mut reread: impl FnMut(String) -> Option<Error>,
) -> (Vec<Error>, Option<String>) {
    let mut errors = vec![first];
    let Some(text) = text else { return (errors, None) };
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let mut blanked = None;
    while errors.len() < SHOWN {
        let Some(Error::Input(d)) = errors.last() else { break };
        let (Some(line), Some(column)) = (d.line, d.column) else {
            break;
        };
        if !d.message.starts_with("unknown key `") || d.file.as_deref() != Some(config_path) {
            break;
        }
        let at = (line as usize).saturating_sub(1);
        let Some(written) = lines.get(at) else { break };
        // Block style: only indentation before the key. The first key of a list item (`- `
        // before it) ends the search: blanking it would leave an empty item.
        let before: String = written.chars().take((column as usize).saturating_sub(1)).collect();
        if !before.chars().all(|c| c == ' ') {
            break;
        }
        let indent = before.len();
        let blank = |l: &str| " ".repeat(l.chars().count());
        lines[at] = format!("{before}{}", blank(&written[before.len()..]));
        // What is nested under it: deeper lines, a list written at the key's own indentation
        // (YAML allows `key:` then `- item` under it), and comments and blank lines among them.
        for nested in lines.iter_mut().skip(at + 1) {
            let content = nested.trim_start();
            let own = nested.len() - content.len();
            let under = content.is_empty()
                || content.starts_with('#')
                || own > indent
                || (own == indent && (content == "-" || content.starts_with("- ")));
            if !under {
                break;
            }
            *nested = blank(nested);
        }
        // Only a further unknown key: an error of another kind may be the blanking's own doing
        // (a field missing because its key was misspelt, a structure left unbalanced).
        let masked = lines.join("\n");
        let next = reread(masked.clone());
        blanked = Some(masked);
        match next {
            Some(next)
                if matches!(&next, Error::Input(d) if d.message.starts_with("unknown key `"))
                    && next.to_string() != errors.last().map(ToString::to_string).unwrap_or_default() =>
            {
                errors.push(next);
            }
            _ => break,
        }
    }
    (errors, blanked)
}

/// The errors in the order they are written in their file (an error without a place after
/// those with one, in the order found).
pub(super) fn in_file_order(mut errors: Vec<Error>) -> Vec<Error> {
    errors.sort_by_key(|e| match e {
        Error::Input(d) => (d.line.is_none(), d.line.unwrap_or(0), d.column.unwrap_or(0)),
        _ => (true, 0, 0),
    });
    errors
}

/// The first of several errors, for a load that stops at the first.
pub(super) fn first(errors: Vec<Error>) -> Error {
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| Error::run("the check failed without saying why"))
}

/// Each error once, in the order first found: experiments that read one dataset (or one
/// variant) would otherwise report its errors once each.
pub(super) fn distinct(errors: Vec<Error>) -> Vec<Error> {
    let mut seen = std::collections::HashSet::new();
    errors.into_iter().filter(|e| seen.insert(e.to_string())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_beyond_the_shown_ones_are_counted_in_one_more() {
        let mut capped = Capped::new("cases.jsonl");
        for i in 0..SHOWN + 3 {
            capped.push(Diagnostic::new(format!("case {i} is wrong")).in_file("cases.jsonl"));
        }
        let errors = capped.into_vec();
        assert_eq!(errors.len(), SHOWN + 1);
        assert!(
            errors[SHOWN - 1]
                .to_string()
                .contains(&format!("case {} is wrong", SHOWN - 1))
        );
        assert!(
            errors[SHOWN]
                .to_string()
                .contains("3 more error(s) like these in `cases.jsonl`"),
            "{}",
            errors[SHOWN]
        );
        let mut few = Capped::new("cases.jsonl");
        few.push(Diagnostic::new("one"));
        assert_eq!(few.into_vec().len(), 1, "no count when none were left out");
    }

    /// Each unknown key once, at its place, and nothing the blanking made up: a list written
    /// at its key's indentation, a comment at column 0 among the nested lines, a misspelt
    /// first key of a list item.
    #[test]
    fn every_unknown_key_and_no_made_up_error() {
        let text = "version: 1\ncolour:\n- red\n- blue\nproviders:\n  m: {type: mock}\nnotifications:\n#  slack: true\n  email: x\nbudgit: {max_usd: 1}\ndefaults: {provider: m}\nexperiments:\n  - name: a\n    variant: v.yaml\n    dataset: d.jsonl\n    assert:\n      - tpye: is-json\n";
        let first = super::super::settings_from("s.yaml", text.to_owned())
            .err()
            .expect("refused");
        let (errors, clean) = unknown_keys_after(first, "s.yaml", Some(text.to_owned()), |masked| {
            super::super::settings_from("s.yaml", masked).err()
        });
        // The last is the first key of a list item, which is not blanked: the text returned
        // still holds it, the others gone.
        let blanked = clean.expect("keys were blanked");
        assert!(blanked.contains("tpye") && !blanked.contains("budgit"));
        // Without it, the file reads without its unknown keys, every other line where it was.
        let cut = text.split("    assert:").next().unwrap();
        let first = super::super::settings_from("s.yaml", cut.to_owned())
            .err()
            .expect("refused");
        let (found, clean) = unknown_keys_after(first, "s.yaml", Some(cut.to_owned()), |masked| {
            super::super::settings_from("s.yaml", masked).err()
        });
        assert_eq!(found.len(), 3);
        let clean = clean.expect("reads without the unknown keys");
        assert_eq!(clean.lines().count(), cut.lines().count());
        assert!(!clean.contains("budgit") && clean.contains("defaults: {provider: m}"));
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let expect = [
            ("colour", "s.yaml:2:1"),
            ("notifications", "s.yaml:7:1"),
            ("budgit", "s.yaml:10:1"),
            ("tpye", "s.yaml:17:9"),
        ];
        assert_eq!(shown.len(), expect.len(), "{}", shown.join("\n"));
        for ((key, at), shown) in expect.iter().zip(&shown) {
            assert!(
                shown.contains(&format!("unknown key `{key}`")) && shown.contains(at),
                "{shown}"
            );
        }
    }

    #[test]
    fn an_error_met_twice_is_reported_once() {
        let e = |m: &str| Error::from(Diagnostic::new(m.to_owned()).in_file("cases.jsonl"));
        let errors = distinct(vec![e("a"), e("b"), e("a")]);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2);
        assert!(shown[0].contains('a') && shown[1].contains('b'));
    }
}
