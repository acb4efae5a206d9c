//! Flipped cases: grouped by direction, each side's output shown as a word diff.

use std::ops::Range;

use super::*;

impl<'a> FlipGroup<'a> {
    pub(super) fn new(cases: &'a [CaseResult], flip: Flip, limits: SizeLimits) -> Option<FlipGroup<'a>> {
        let flipped: Vec<&CaseResult> = cases.iter().filter(|c| c.flip == Some(flip)).collect();
        if flipped.is_empty() {
            return None;
        }
        let (direction, symbol, baseline_passes) = match flip {
            Flip::PassToFail => ("pass → fail", "❌", true),
            Flip::FailToPass => ("fail → pass", "✅", false),
        };
        let shown: Vec<CaseView> = flipped
            .iter()
            .take(limits.cases)
            .map(|c| {
                let baseline = SideView::new(&c.baseline, baseline_passes, limits);
                let candidate = SideView::new(&c.candidate, !baseline_passes, limits);
                let (diff, diff_cut) = if baseline.output.is_empty() || candidate.output.is_empty() {
                    (Vec::new(), false)
                } else {
                    word_diff(baseline.output, candidate.output, limits.output_chars)
                };
                CaseView {
                    id: c.id(),
                    input: c.input(),
                    baseline,
                    candidate,
                    diff,
                    diff_cut,
                }
            })
            .collect();
        let noun = if flipped.len() == 1 { "case" } else { "cases" };
        Some(FlipGroup {
            summary: Safe(format!("{} {noun} flipped {direction}", flipped.len())),
            symbol,
            total: flipped.len(),
            hidden: flipped.len() - shown.len(),
            cases: shown,
        })
    }
}

/// Words (each with the whitespace after it) of the first `max_chars` characters of each
/// output, diffed word by word (Myers' algorithm, through `similar`). Between two common words,
/// everything only in the baseline is one `del` run and everything only in the candidate one
/// `ins` run, so the diff reads as phrases replaced rather than alternating words. Returns
/// whether it cut.
pub(super) fn word_diff<'a>(baseline: &'a str, candidate: &'a str, max_chars: usize) -> (Vec<DiffSegment<'a>>, bool) {
    let (a, a_cut) = words(baseline, max_chars);
    let (b, b_cut) = words(candidate, max_chars);
    // Words compare without the whitespace after them: a reflowed line is no change.
    let key = |text: &'a str, words: &[Range<usize>]| -> Vec<&'a str> {
        words.iter().map(|w| text[w.clone()].trim_end()).collect()
    };
    let ops = similar::capture_diff_slices(similar::Algorithm::Myers, &key(baseline, &a), &key(candidate, &b));
    // The text of a run of words (`run` indexes `words`).
    let span = |words: &[Range<usize>], run: Range<usize>| {
        if run.start < run.end {
            words[run.start].start..words[run.end - 1].end
        } else {
            0..0
        }
    };
    let mut segments: Vec<DiffSegment<'a>> = Vec::new();
    let mut push = |op: &'static str, text: &'a str| {
        if !text.is_empty() {
            segments.push(DiffSegment { op, text });
        }
    };
    // Words of each side not yet shown, from the end of the last common run.
    let (mut gap_a, mut gap_b) = (0, 0);
    let mut equal = ops
        .iter()
        .filter(|op| op.tag() == similar::DiffTag::Equal)
        .map(|op| (op.old_range(), op.new_range()))
        .peekable();
    while let Some((mut old, mut new)) = equal.next() {
        // Adjacent common runs read as one.
        while let Some((next_old, next_new)) = equal.next_if(|(o, n)| o.start == old.end && n.start == new.end) {
            old.end = next_old.end;
            new.end = next_new.end;
        }
        push("del", &baseline[span(&a, gap_a..old.start)]);
        push("ins", &candidate[span(&b, gap_b..new.start)]);
        push("same", &candidate[span(&b, new.clone())]);
        (gap_a, gap_b) = (old.end, new.end);
    }
    push("del", &baseline[span(&a, gap_a..a.len())]);
    push("ins", &candidate[span(&b, gap_b..b.len())]);
    (segments, a_cut || b_cut)
}

/// Byte ranges of the words of `text`'s first `max_chars` characters (at most
/// [`DIFF_MAX_WORDS`]), each with its trailing whitespace, and whether any text was left out.
pub(super) fn words(text: &str, max_chars: usize) -> (Vec<Range<usize>>, bool) {
    let end = text.char_indices().nth(max_chars).map_or(text.len(), |(byte, _)| byte);
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (at, c) in text[..end].char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            ranges.push(start..at);
            start = at;
            in_space = false;
        }
    }
    if start < end {
        ranges.push(start..end);
    }
    let cut = end < text.len() || ranges.len() > DIFF_MAX_WORDS;
    ranges.truncate(DIFF_MAX_WORDS);
    (ranges, cut)
}

/// Bounds the diff's work (Myers' is O((N + M) · D) in words) for very wordy outputs.
pub(super) const DIFF_MAX_WORDS: usize = 400;

impl<'a> SideView<'a> {
    fn new(calls: &'a [Call], passed: bool, limits: SizeLimits) -> SideView<'a> {
        let representative = calls
            .iter()
            .find(|c| c.pass() == Some(passed))
            .or_else(|| calls.first());
        let mut seen = BTreeSet::new();
        let failures: Vec<&str> = calls
            .iter()
            .flat_map(|c| c.failures())
            .map(String::as_str)
            .filter(|f| seen.insert(*f))
            .collect();
        let shown = failures.len().min(limits.failures);
        let repeats = (calls.len() > 1).then(|| {
            // A repeat no judge or scorer could score is neither passed nor failed.
            let (known, n) = crate::metrics::known_passes(calls);
            Safe(match calls.len() - known {
                0 => format!("{n}/{known} repeats passed"),
                unknown => format!("{n}/{known} repeats passed ({unknown} not scored)"),
            })
        });
        SideView {
            output: representative.and_then(|c| c.output.as_deref()).unwrap_or(""),
            error: representative.and_then(|c| c.error()),
            failures_more: failures.len() - shown,
            failures: failures[..shown].to_vec(),
            repeats,
        }
    }
}
