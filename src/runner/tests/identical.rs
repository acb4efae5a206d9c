//! Identical jobs are found by sorting their keys' first sixteen bytes, and a match there is
//! checked on the whole key.

use super::*;

/// Cases 0–3, 4–7, … share their keys' first sixteen bytes; within such a group an even and an
/// odd case differ in the rest of the key, so only cases of the same parity are alike. Jobs 6
/// and 13 did not render (`jobs`): they have no key.
fn key(job: &Job) -> Option<JobKey> {
    job.request.as_ref().ok()?;
    let mut digest = [0; 32];
    digest[0] = u8::try_from(job.case / 4).unwrap();
    digest[31] = u8::try_from(job.case % 2).unwrap();
    Some(JobKey(digest))
}

#[test]
fn a_job_follows_the_first_job_alike_in_its_whole_key_and_one_to_be_retimed_is_neither() {
    let mut jobs = jobs(14, &[]);
    // To be timed in this run: it neither takes another's answer nor gives its own.
    jobs[8].retime = true;
    assert_eq!(identical_by(&jobs, key), vec![(2, 0), (3, 1), (7, 5), (11, 9)]);
    // The same first sixteen bytes are not enough: with the rest of the key ignored, every
    // job of a group follows its first.
    let prefix_only = |job: &Job| {
        key(job).map(|JobKey(mut digest)| {
            digest[31] = 0;
            JobKey(digest)
        })
    };
    assert_eq!(
        identical_by(&jobs, prefix_only),
        vec![(1, 0), (2, 0), (3, 0), (5, 4), (7, 4), (10, 9), (11, 9)]
    );
    // And with real keys, no two different cases are alike.
    let provider = Fake::new(Behaviour::Healthy);
    assert_eq!(identical(&jobs, &one(&provider, 4)), Vec::new());
    // Each job again as the baseline's: each twin follows its original, but for the jobs that
    // did not render (6, 13) and the one to be retimed (8), whose twin is retimed too.
    let expected: Vec<(usize, usize)> = (0..14).filter(|&i| i % 7 != 6 && i != 8).map(|i| (i + 14, i)).collect();
    assert_eq!(identical(&with_twins(jobs), &one(&provider, 4)), expected);
}
