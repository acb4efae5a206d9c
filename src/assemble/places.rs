//! Where each job's call goes: the plan's jobs, narrowed to what scoring reads.

use std::collections::HashMap;

use crate::plan::{Arm, Job};

/// What scoring reads of a job: where its call goes and the model that prices it. The plan's
/// jobs, with the messages they sent, are given back before scoring; these stay.
/// Twenty bytes: every job has one, held through the calls and the scoring (indices as `u32`:
/// an experiment holds at most `suite::MAX_CASES` cases, and a plan's experiments and models
/// are fewer than its jobs).
#[derive(Clone, Copy, Debug)]
pub struct Place {
    experiment: u32,
    case: u32,
    repeat: u32,
    /// Index into [`Places::models`].
    model: u32,
    pub arm: Arm,
}

impl Place {
    /// Index into the plan's experiments.
    pub fn experiment(&self) -> usize {
        self.experiment as usize
    }

    /// Index into the experiment's (head) cases.
    pub fn case(&self) -> usize {
        self.case as usize
    }

    pub fn repeat(&self) -> u32 {
        self.repeat
    }
}

/// Every job's [`Place`], in the jobs' order, and the models they name once each.
#[derive(Debug, Default)]
pub struct Places {
    pub(super) places: Vec<Place>,
    models: Vec<String>,
}

impl Places {
    pub fn of(jobs: &[Job]) -> Places {
        let mut models: Vec<String> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let places = jobs
            .iter()
            .map(|job| {
                let name = job.model();
                let model = *index.entry(name).or_insert_with(|| {
                    models.push(name.to_owned());
                    models.len() - 1
                });
                Place {
                    experiment: job.experiment,
                    case: job.case,
                    arm: job.arm,
                    repeat: job.repeat,
                    model: crate::plan::narrow(model),
                }
            })
            .collect();
        Places { places, models }
    }

    pub fn len(&self) -> usize {
        self.places.len()
    }

    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    pub(super) fn model(&self, place: &Place) -> &str {
        &self.models[place.model as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_twenty_bytes_and_gives_back_each_jobs_indices_and_model() {
        assert!(std::mem::size_of::<Place>() <= 20, "{}", std::mem::size_of::<Place>());
        let job = |experiment, case, arm, repeat, model: Result<&str, &str>| Job {
            experiment,
            case,
            arm,
            repeat,
            provider: "sim".into(),
            fallbacks: Default::default(),
            retime: false,
            request: model
                .map(|m| crate::providers::Request::chat(m, std::sync::Arc::from([])))
                .map_err(str::to_owned),
        };
        let jobs = [
            job(0, 99_999, Arm::Baseline, 0, Ok("old")),
            job(0, 99_999, Arm::Candidate, 7, Ok("new")),
            job(3, 1, Arm::Baseline, 2, Ok("old")),
            job(3, 2, Arm::Candidate, 0, Err("undefined var")),
        ];
        let places = Places::of(&jobs);
        assert_eq!(places.len(), 4);
        let seen: Vec<_> = places
            .places
            .iter()
            .map(|p| (p.experiment(), p.case(), p.arm, p.repeat(), places.model(p)))
            .collect();
        assert_eq!(
            seen,
            [
                (0, 99_999, Arm::Baseline, 0, "old"),
                (0, 99_999, Arm::Candidate, 7, "new"),
                (3, 1, Arm::Baseline, 2, "old"),
                // A job that could not be rendered names no model (its call costs nothing).
                (3, 2, Arm::Candidate, 0, ""),
            ]
        );
        assert_eq!(places.models, ["old", "new", ""]);
    }
}
