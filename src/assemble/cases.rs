//! The planned experiments' cases as scoring reads them: lent by the suite, or given, and then
//! let go one by one as their results are built.
//!
//! Scoring a fixed-design run is the last thing that reads the dataset, and the results grow
//! as it goes: a run that gives its cases to scoring ([`Feed::given`]) holds, at any moment,
//! the cases still to be scored and the results of the others, never both whole. At a hundred
//! thousand calls the dataset is about 16 MB of a 58 MB peak.

use std::collections::VecDeque;

use anyhow::Context as _;

use crate::plan::Planned;
use crate::suite::{Case, Experiment, Suite};

/// Where a plan's experiments are in their suites, to take their cases out and find them again
/// (by address: taking a list of cases moves no experiment).
pub struct Found(Vec<(usize, Option<usize>)>);

fn address(e: &Experiment) -> usize {
    std::ptr::from_ref(e) as usize
}

impl Found {
    pub fn of(planned: &[Planned<'_>]) -> Found {
        Found(
            planned
                .iter()
                .map(|p| (address(p.candidate), p.baseline.map(address)))
                .collect(),
        )
    }

    /// Takes every experiment's cases out of `suites` (the suites `planned` was made from):
    /// the planned experiments' cases, one list per planned experiment, for [`Feed::given`].
    pub fn take_cases<'s>(&self, suites: impl Iterator<Item = &'s mut Suite>) -> Vec<Vec<Case>> {
        let mut cases = vec![Vec::new(); self.0.len()];
        for experiment in suites.flat_map(|s| &mut s.experiments) {
            let taken = std::mem::take(&mut experiment.cases);
            if let Some(i) = self.0.iter().position(|&(c, _)| c == address(experiment)) {
                cases[i] = taken;
            }
        }
        cases
    }

    /// The planned experiments, found again in `suites`.
    pub fn again<'s>(&self, suites: impl Iterator<Item = &'s Suite> + Clone) -> anyhow::Result<Vec<Planned<'s>>> {
        let find = |at: usize| suites.clone().flat_map(|s| &s.experiments).find(|&e| address(e) == at);
        self.0
            .iter()
            .map(|&(candidate, baseline)| {
                Some(Planned {
                    candidate: find(candidate)?,
                    baseline: match baseline {
                        Some(at) => Some(find(at)?),
                        None => None,
                    },
                })
            })
            .collect::<Option<Vec<_>>>()
            .context("a planned experiment was not found again once its cases were taken")
    }
}

/// The cases scoring reads, in plan order.
pub struct Feed<'a> {
    planned: &'a [Planned<'a>],
    given: Option<Vec<Given>>,
}

/// One planned experiment's cases, given: those not let go yet, from `first` on.
struct Given {
    count: usize,
    first: usize,
    left: VecDeque<Case>,
}

impl<'a> Feed<'a> {
    /// The cases of `planned` as its experiments hold them.
    pub fn lent(planned: &'a [Planned<'a>]) -> Feed<'a> {
        Feed { planned, given: None }
    }

    /// `cases`, one list per planned experiment (its cases, taken out of it), let go as
    /// scoring passes them.
    pub fn given(planned: &'a [Planned<'a>], cases: Vec<Vec<Case>>) -> Feed<'a> {
        let given = cases
            .into_iter()
            .map(|cases| Given {
                count: cases.len(),
                first: 0,
                left: cases.into(),
            })
            .collect();
        Feed {
            planned,
            given: Some(given),
        }
    }

    /// The cases planned experiment `ei` has.
    pub fn count(&self, ei: usize) -> usize {
        match &self.given {
            Some(given) => given.get(ei).map_or(0, |g| g.count),
            None => self.planned.get(ei).map_or(0, |p| p.candidate.cases.len()),
        }
    }

    /// Case `ci` of planned experiment `ei`, unless it was let go.
    pub fn case(&self, ei: usize, ci: usize) -> anyhow::Result<&Case> {
        let case = match &self.given {
            None => self.planned.get(ei).and_then(|p| p.candidate.cases.get(ci)),
            Some(given) => given
                .get(ei)
                .and_then(|g| ci.checked_sub(g.first).and_then(|at| g.left.get(at))),
        };
        case.with_context(|| format!("case {ci} of planned experiment {ei} is not held (let go already?)"))
    }

    /// Lets go of the cases of experiment `ei` up to and with `ci`: scoring will not read them
    /// again. Cases lent by the suite stay.
    pub fn let_go_through(&mut self, ei: usize, ci: usize) {
        let Some(g) = self.given.as_mut().and_then(|given| given.get_mut(ei)) else {
            return;
        };
        while g.first <= ci && g.left.pop_front().is_some() {
            g.first += 1;
        }
        // The buffer is given back as it empties, as `super::Shrinking` does.
        if g.left.capacity() >= 1024 && g.left.len() < g.left.capacity() / 2 {
            g.left.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str) -> Case {
        Case {
            id: id.to_owned(),
            group: None,
            vars: crate::suite::Vars::default(),
            asserts: std::sync::Arc::from([]),
            assert_source: std::sync::Arc::from(""),
            line: 0,
        }
    }

    #[test]
    fn given_cases_are_read_until_let_go() {
        let feed_cases = vec![vec![case("a"), case("b"), case("c")], vec![], vec![case("d")]];
        let mut feed = Feed::given(&[], feed_cases);
        assert_eq!(
            (feed.count(0), feed.count(1), feed.count(2), feed.count(3)),
            (3, 0, 1, 0)
        );
        assert_eq!(feed.case(0, 1).unwrap().id, "b");
        feed.let_go_through(0, 0);
        assert!(feed.case(0, 0).is_err());
        assert_eq!(feed.case(0, 1).unwrap().id, "b");
        assert_eq!(feed.case(0, 2).unwrap().id, "c");
        feed.let_go_through(0, 2);
        assert!(feed.case(0, 2).is_err());
        assert!(feed.case(0, 3).is_err());
        assert_eq!(feed.case(2, 0).unwrap().id, "d");
        // Letting go again, or past the end, is harmless.
        feed.let_go_through(0, 2);
        feed.let_go_through(1, 5);
        assert_eq!(feed.case(2, 0).unwrap().id, "d");
    }
}
