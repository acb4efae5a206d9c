//! `similarity` with `method: embeddings`: the cosine of the embeddings of the output and of
//! the reference, from the suite's embedder (`defaults.embedder`, `embedding_model`).
//!
//! Each embedding is a job of the same runner as judge calls (cached, budgeted, rate
//! limited, journaled), asked for as the output arrives. The reference's embedding is the
//! same request for every output of a case (and for every case sharing a `value`), so the
//! runner sends it once and the others take its answer; the response cache keeps it across
//! runs. An embedding that failed (an HTTP error, a malformed response, vectors of different
//! dimensions) is the call's scorer error for that metric: no value, never a silent fallback
//! to another method; `verdict` makes a scorer failing on most outputs a run error.

use std::collections::HashMap;

use serde_json::Value;

use crate::plan::{Job, JudgeTag};
use crate::providers::Request;
use crate::results::Name;
use crate::runner::{Derived, Outcome};
use crate::suite::{Assertion, Case, Check, EXPECTED_VAR, EmbedderSettings, Reference, SimilarityMethod};

/// The embeddings a run got, by the text embedded (one embedder per suite): the vector, or
/// why there is none.
pub type Vectors = HashMap<String, Result<Vec<f64>, String>>;

/// Which embedding of an output a job is ([`JudgeTag::repeat`]).
const OUTPUT: u32 = 0;
const REFERENCE: u32 = 1;

/// The embedding jobs an output asks for: per `method: embeddings` similarity among
/// `assertions` (the call's, in order), its output's and its reference's. Blank texts are not
/// sent: their similarity is 0 without a call.
pub fn jobs<'a>(
    embedder: &EmbedderSettings,
    assertions: impl IntoIterator<Item = &'a Assertion>,
    case: &Case,
    generation: &Job,
    outcome: &Outcome,
) -> Vec<(JudgeTag, Job)> {
    let Ok(response) = &outcome.result else {
        return Vec::new();
    };
    let mut jobs = Vec::new();
    for (index, assertion) in assertions.into_iter().enumerate() {
        let Check::Similarity {
            reference,
            method: SimilarityMethod::Embeddings,
            ..
        } = &assertion.check
        else {
            continue;
        };
        for (which, text) in [
            (OUTPUT, response.text.as_str()),
            (REFERENCE, reference_text(reference, case)),
        ] {
            if text.trim().is_empty() {
                continue;
            }
            let tag = JudgeTag {
                assertion: index,
                repeat: which,
                attempt: 0,
                first: None,
            };
            let job = Job {
                experiment: generation.experiment,
                case: generation.case,
                arm: generation.arm,
                repeat: generation.repeat,
                provider: Name::from(&embedder.provider),
                fallbacks: Default::default(),
                request: Ok(Request::embedding(&embedder.model, text)),
                retime: false,
            };
            jobs.push((tag, job));
        }
    }
    jobs
}

/// The text a similarity compares with: its `value`, else the case's `expected` var.
pub fn reference_text<'a>(reference: &'a Reference, case: &'a Case) -> &'a str {
    reference_in(reference, &case.vars)
}

/// [`reference_text`] from a case's vars.
pub fn reference_in<'a>(reference: &'a Reference, vars: &'a crate::suite::Vars) -> &'a str {
    match reference {
        Reference::Text(text) => text.as_str(),
        Reference::Expected => vars.get(EXPECTED_VAR).and_then(Value::as_str).unwrap_or(""),
    }
}

/// Whether a derived job is an embedding (not a judge call).
pub fn is_embedding(derived: &Derived) -> bool {
    derived.job.embeds()
}

/// The embeddings among a run's derived jobs, by text.
pub fn vectors(derived: &[Derived]) -> Vectors {
    let mut vectors = Vectors::new();
    for d in derived.iter().filter(|d| is_embedding(d)) {
        let Ok(request) = &d.job.request else { continue };
        let vector = match &d.outcome.result {
            Ok(response) => serde_json::from_str::<Vec<f64>>(&response.text)
                .map_err(|e| format!("the embedding is not a list of numbers: {e}")),
            Err(e) => Err(format!("the embedding call failed: {e}")),
        };
        vectors.insert(request.embedded_text().to_owned(), vector);
    }
    vectors
}

/// The cosine similarity of the embeddings of `output` and `reference`; 0 when either is
/// blank (nothing to embed) or a zero vector.
pub fn similarity(vectors: &Vectors, output: &str, reference: &str) -> Result<f64, String> {
    if output.trim().is_empty() || reference.trim().is_empty() {
        return Ok(0.0);
    }
    let get = |text: &str, what: &str| match vectors.get(text) {
        Some(Ok(vector)) => Ok(vector),
        Some(Err(e)) => Err(format!("embedding the {what}: {e}")),
        None => Err(format!("the {what} was not embedded")),
    };
    cosine(get(output, "output")?, get(reference, "reference")?)
}

/// cos θ = a·b / (|a| |b|), in [−1, 1]; 0 for a zero vector. Vectors of different lengths
/// (an embedder that changed models mid-run, a malformed response) are an error.
pub fn cosine(a: &[f64], b: &[f64]) -> Result<f64, String> {
    if a.len() != b.len() {
        return Err(format!(
            "the embeddings have different dimensions ({} and {})",
            a.len(),
            b.len()
        ));
    }
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|x| x * x).sum::<f64>().sqrt() * b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norms == 0.0 {
        return Ok(0.0);
    }
    Ok((dot / norms).clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(a: &[f64], b: &[f64], expected: f64) {
        let got = cosine(a, b).unwrap();
        assert!(
            (got - expected).abs() < 1e-12,
            "cos({a:?}, {b:?}) = {got}, expected {expected}"
        );
    }

    #[test]
    fn cosine_matches_scipy() {
        // 1 - scipy.spatial.distance.cosine([1, 2, 3], [4, 5, 6]) = 0.9746318461970762
        check(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], 0.974_631_846_197_076_2);
        // 1 - scipy.spatial.distance.cosine([1, 0], [0, 1]) = 0.0
        check(&[1.0, 0.0], &[0.0, 1.0], 0.0);
        // 1 - scipy.spatial.distance.cosine([1, 2], [-1, -2]) = -1.0
        check(&[1.0, 2.0], &[-1.0, -2.0], -1.0);
        // 1 - scipy.spatial.distance.cosine([0.3, -0.2, 0.9, 0.1], [0.25, 0.1, 0.8, -0.3]) = 0.8532414588186962
        check(&[0.3, -0.2, 0.9, 0.1], &[0.25, 0.1, 0.8, -0.3], 0.853_241_458_818_696_2);
        check(&[0.0, 0.0], &[1.0, 2.0], 0.0);
        let e = cosine(&[1.0, 2.0], &[1.0, 2.0, 3.0]).unwrap_err();
        assert!(e.contains("different dimensions (2 and 3)"), "{e}");
    }

    #[test]
    fn a_similarity_needs_both_embeddings_and_blank_text_is_zero() {
        let mut vectors = Vectors::new();
        vectors.insert("Refunds within 30 days.".to_owned(), Ok(vec![1.0, 0.0]));
        vectors.insert("Thirty days for refunds.".to_owned(), Ok(vec![0.6, 0.8]));
        vectors.insert(
            "broken".to_owned(),
            Err("the embedding call failed: HTTP 500".to_owned()),
        );
        assert_eq!(
            similarity(&vectors, "Thirty days for refunds.", "Refunds within 30 days."),
            Ok(0.6)
        );
        assert_eq!(similarity(&vectors, "  ", "Refunds within 30 days."), Ok(0.0));
        let e = similarity(&vectors, "broken", "Refunds within 30 days.").unwrap_err();
        assert!(
            e.contains("embedding the output: the embedding call failed: HTTP 500"),
            "{e}"
        );
        let e = similarity(&vectors, "Thirty days for refunds.", "never sent").unwrap_err();
        assert!(e.contains("the reference was not embedded"), "{e}");
    }

    #[test]
    fn the_mock_embeds_deterministically_by_shared_content_words() {
        use crate::providers::mock::{EMBEDDING_DIMENSIONS, embedding};
        let a = embedding("Refunds are issued within 30 days of delivery.");
        assert_eq!(a.len(), EMBEDDING_DIMENSIONS);
        assert_eq!(a, embedding("Refunds are issued within 30 days of delivery."));
        let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-12);
        let same = cosine(&a, &embedding("refunds issued within 30 days of delivery")).unwrap();
        let close = cosine(&a, &embedding("Refunds are issued within 30 days.")).unwrap();
        let far = cosine(&a, &embedding("Our stores open at nine on weekdays.")).unwrap();
        assert!((same - 1.0).abs() < 1e-12, "stop words and case do not count: {same}");
        assert!(close > 0.7 && far.abs() < 0.3, "close {close}, far {far}");
        assert!(embedding("the of and").iter().all(|x| *x == 0.0));
    }
}
