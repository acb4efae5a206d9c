//! Lexical similarity: ROUGE-L, and the agreement between a case's repeats built on it.
//!
//! ROUGE-L (Lin, "ROUGE: A Package for Automatic Evaluation of Summaries", ACL Workshop 2004,
//! §3.1) is the F-measure of the longest common subsequence of two word sequences:
//! `P = LCS / |candidate|`, `R = LCS / |reference|`, `F = 2PR / (P + R)` (β = 1, the F1 that
//! Google's `rouge-score` reports as `rougeL.fmeasure`). It needs no model, so an offline suite
//! still has a similarity score; it rewards the same words in the same order, not the same
//! meaning (a paraphrase in other words scores low).
//!
//! Words are as `rouge-score` tokenizes without stemming: lowercased runs of letters and
//! digits, everything else a separator. On ASCII text the two agree exactly (the tests check
//! values computed with `rouge-score`); where `rouge-score` drops every non-ASCII letter
//! (`café` → `caf`), letters of any script count here, so text in other languages still scores.

/// The words compared: the first [`MAX_WORDS`] of each text. LCS takes time proportional to
/// the product of the lengths; 5,000 words (about 30 KB of prose, far longer than an answer a
/// reviewer reads) keeps one comparison near 25 million steps.
pub const MAX_WORDS: usize = 5_000;

/// Outputs of at most this many words are labels (`positive`, `yes`, `refund_request`): two
/// repeats agree on a label only when they are the same label.
pub const LABEL_WORDS: usize = 3;

/// ROUGE-L F-measure of `candidate` against `reference`, in [0, 1]; 0 when either has no word.
pub fn rouge_l(candidate: &str, reference: &str) -> f64 {
    let candidate = words(candidate);
    let reference = words(reference);
    if candidate.is_empty() || reference.is_empty() {
        return 0.0;
    }
    let lcs = lcs_len(&candidate, &reference) as f64;
    if lcs == 0.0 {
        return 0.0;
    }
    let precision = lcs / candidate.len() as f64;
    let recall = lcs / reference.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// How much two outputs of the same request agree, in [0, 1]: label-like outputs (at most
/// [`LABEL_WORDS`] words each) agree when they are the same label, ignoring case, spacing and
/// punctuation (1 or 0); free text by ROUGE-L.
pub fn agreement(a: &str, b: &str) -> f64 {
    let (wa, wb) = (words(a), words(b));
    if wa.len() <= LABEL_WORDS && wb.len() <= LABEL_WORDS {
        return if wa == wb { 1.0 } else { 0.0 };
    }
    rouge_l(a, b)
}

/// Each output's mean agreement with the others: the per-call `consistency` scores of one case
/// and arm. Their mean is the mean agreement over all pairs (each pair counts once in each of
/// its two outputs). `None` for every output when there are fewer than two.
pub fn consistency(outputs: &[&str]) -> Vec<Option<f64>> {
    let k = outputs.len();
    if k < 2 {
        return vec![None; k];
    }
    let mut sums = vec![0.0; k];
    for i in 0..k {
        for j in i + 1..k {
            let a = agreement(outputs[i], outputs[j]);
            sums[i] += a;
            sums[j] += a;
        }
    }
    sums.into_iter().map(|s| Some(s / (k - 1) as f64)).collect()
}

/// Lowercased runs of letters and digits, at most [`MAX_WORDS`].
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// Length of the longest common subsequence, by the textbook dynamic programme in two rows.
fn lcs_len(a: &[String], b: &[String]) -> usize {
    let mut previous = vec![0usize; b.len() + 1];
    let mut current = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            current[j + 1] = if x == y {
                previous[j] + 1
            } else {
                previous[j + 1].max(current[j])
            };
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(candidate: &str, reference: &str, expected: f64) {
        let got = rouge_l(candidate, reference);
        assert!(
            (got - expected).abs() < 1e-12,
            "rouge_l({candidate:?}, {reference:?}) = {got}, expected {expected}"
        );
    }

    /// Reference values from Google's `rouge-score` 0.1.2, each computed as
    /// `rouge_scorer.RougeScorer(["rougeL"]).score(reference, candidate)["rougeL"].fmeasure`
    /// (`score` takes the target first, the prediction second).
    #[test]
    fn rouge_l_matches_rouge_score() {
        // ...score("The quick brown dog jumps on the log.", "The quick brown fox jumps over the lazy dog")
        check(
            "The quick brown fox jumps over the lazy dog",
            "The quick brown dog jumps on the log.",
            0.5882352941176471,
        );
        // ...score("Refunds are accepted within 30 days of delivery.",
        //          "We accept refunds within 30 days.")
        check(
            "We accept refunds within 30 days.",
            "Refunds are accepted within 30 days of delivery.",
            0.5714285714285715,
        );
        // ...score("Refunds are accepted within 30 days of delivery.",
        //          "Refunds are accepted within 30 days of delivery!")
        check(
            "Refunds are accepted within 30 days of delivery!",
            "Refunds are accepted within 30 days of delivery.",
            1.0,
        );
        // ...score("police killed the gunman", "the gunman killed police")
        check("the gunman killed police", "police killed the gunman", 0.5);
        // ...score("Your order ships in 2-3 business days.",
        //          "Orders usually ship within two to three business days; express is next-day.")
        check(
            "Orders usually ship within two to three business days; express is next-day.",
            "Your order ships in 2-3 business days.",
            0.1904761904761905,
        );
        // ...score("I cannot help with that.", "Sure! Here is the answer.")
        check("Sure! Here is the answer.", "I cannot help with that.", 0.0);
        // ...score("", "anything") and ...score("anything", "")
        check("anything", "", 0.0);
        check("", "anything", 0.0);
    }

    #[test]
    fn letters_of_any_script_are_words() {
        // Same words, one missing: LCS 2 of 3 and 2 of 2 → P = 1, R = 2/3, F = 0.8.
        check("café crème", "café crème brûlée", 0.8);
        check("Привет мир", "привет, мир!", 1.0);
    }

    #[test]
    fn labels_agree_only_when_equal_and_free_text_by_rouge_l() {
        assert_eq!(agreement("Positive", "positive."), 1.0);
        assert_eq!(agreement("positive", "very positive"), 0.0);
        assert_eq!(agreement("", ""), 1.0);
        let free = (
            "We accept refunds within 30 days.",
            "Refunds are accepted within 30 days of delivery.",
        );
        assert_eq!(agreement(free.0, free.1), rouge_l(free.0, free.1));
    }

    #[test]
    fn consistency_is_each_output_s_mean_agreement_with_the_others() {
        // Pairs: (a, b) = 1, (a, c) = 0, (b, c) = 0 → a: 1/2, b: 1/2, c: 0; their mean is the
        // mean over the three pairs, 1/3.
        let scores = consistency(&["yes", "Yes", "no"]);
        assert_eq!(scores, vec![Some(0.5), Some(0.5), Some(0.0)]);
        assert_eq!(consistency(&["only one"]), vec![None]);
        assert_eq!(consistency(&[]), Vec::<Option<f64>>::new());
    }

    #[test]
    fn long_texts_are_cut_at_max_words() {
        let long = "word ".repeat(MAX_WORDS + 500);
        assert_eq!(words(&long).len(), MAX_WORDS);
        assert_eq!(rouge_l(&long, &long), 1.0);
    }
}
