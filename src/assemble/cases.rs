//! The planned experiments' cases as scoring reads them: lent by the suite, or given, and then
//! let go one by one as their results are built.
//!
//! Scoring a fixed-design run is the last thing that reads the dataset, and the results grow
//! as it goes: a run that gives its cases to scoring ([`Given`]) holds, at any moment, the
//! cases still to be scored and the results of the others, never both whole. When nothing
//! reads a case while the calls run (no judge, no embedding, no `exec` scorer; not A/A), the cases are
//! given before the calls, written to a scratch file without a name ([`Spilled`]), so the
//! dataset is not held through them either; scoring reads them back a case at a time. At a
//! hundred thousand calls the dataset is about 16 MB of a 50 MB heap.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufWriter, Seek as _, Write as _};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::output::Scratch;
use crate::plan::Planned;
use crate::suite::{Assertion, Case, Experiment, Names, Suite, Vars};

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

    /// Takes every experiment's cases out of the suites `planned` was made from (head's, and
    /// base's): the planned experiments' cases, one list per planned experiment.
    pub fn take_cases(&self, head: &mut Suite, base: Option<&mut Suite>) -> Vec<Vec<Case>> {
        let mut cases = vec![Vec::new(); self.0.len()];
        for experiment in std::iter::once(head).chain(base).flat_map(|s| &mut s.experiments) {
            let taken = std::mem::take(&mut experiment.cases);
            if let Some(i) = self.0.iter().position(|&(c, _)| c == address(experiment)) {
                cases[i] = taken;
            }
        }
        cases
    }

    /// The planned experiments, found again in `suites`.
    pub fn again<'s>(&self, head: &'s Suite, base: Option<&'s Suite>) -> anyhow::Result<Vec<Planned<'s>>> {
        let experiments = || std::iter::once(head).chain(base).flat_map(|s| &s.experiments);
        let find = |at: usize| experiments().find(|&e| address(e) == at);
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

/// Cases taken out of their suites for scoring: held, or written to a scratch file.
pub enum Given {
    Held(Vec<Vec<Case>>),
    Spilled(Spilled),
}

/// Cases written to a scratch file in plan order, a JSON line each.
pub struct Spilled {
    file: Scratch,
    /// Per planned experiment, its cases.
    counts: Vec<usize>,
    /// The distinct assertion lists (a dataset's cases mostly share one): a line names its
    /// case's by its index here.
    asserts: Vec<(Arc<[Assertion]>, Arc<str>)>,
}

/// A case as the scratch file holds it.
#[derive(Serialize)]
struct Written<'a> {
    id: &'a str,
    group: Option<&'a str>,
    line: u32,
    vars: &'a Vars,
    asserts: usize,
}

#[derive(Deserialize)]
struct Read {
    id: String,
    group: Option<Box<str>>,
    line: u32,
    vars: serde_json::Map<String, serde_json::Value>,
    asserts: usize,
}

/// Writes a [`Spilled`] file a case at a time, in plan order.
pub struct Writer {
    spilled: Spilled,
    out: BufWriter<std::fs::File>,
    /// Each list's index by its address: a dataset whose cases check each their own phrase
    /// has as many lists as cases.
    index_of: std::collections::HashMap<usize, usize>,
    line: Vec<u8>,
}

impl Writer {
    /// A scratch file in `dir` for the cases of `experiments` planned experiments.
    pub fn new(dir: &std::path::Path, experiments: usize) -> anyhow::Result<Writer> {
        let file = Scratch::unnamed(dir, "the cases")?;
        let out = file
            .file()
            .try_clone()
            .with_context(|| format!("cannot write the cases to {file}"))?;
        Ok(Writer {
            spilled: Spilled {
                file,
                counts: vec![0; experiments],
                asserts: Vec::new(),
            },
            out: BufWriter::with_capacity(1 << 16, out),
            index_of: std::collections::HashMap::new(),
            line: Vec::new(),
        })
    }

    /// Writes the next case, of planned experiment `ei`, and lets it go.
    pub fn add(&mut self, ei: usize, case: Case) -> anyhow::Result<()> {
        let Writer {
            spilled,
            out,
            index_of,
            line,
        } = self;
        let address = Arc::as_ptr(&case.asserts).cast::<()>() as usize;
        let index = *index_of.entry(address).or_insert_with(|| {
            spilled.asserts.push((case.asserts.clone(), case.assert_source.clone()));
            spilled.asserts.len() - 1
        });
        line.clear();
        let written = Written {
            id: &case.id,
            group: case.group.as_deref(),
            line: case.line,
            vars: &case.vars,
            asserts: index,
        };
        let failed = || format!("cannot write the cases to {}", spilled.file);
        serde_json::to_writer(&mut *line, &written).with_context(failed)?;
        line.push(b'\n');
        out.write_all(line).with_context(failed)?;
        if let Some(count) = spilled.counts.get_mut(ei) {
            *count += 1;
        }
        Ok(())
    }

    /// The file written, ready to be read back.
    pub fn finish(mut self) -> anyhow::Result<Spilled> {
        let failed = || format!("cannot write the cases to {}", self.spilled.file);
        self.out.flush().with_context(failed)?;
        Ok(self.spilled)
    }
}

/// Whether nothing reads the cases of `planned` (experiments of `suite`) between rendering
/// their jobs and scoring them, in a run whose whole plan (a shard's included, whatever its own
/// share) is large enough to write its outputs to a file: no judge, no embedding, no `exec`
/// scorer.
pub fn unread_before_scoring(suite: &Suite, planned: &[Planned<'_>]) -> bool {
    suite.defaults.judge.is_none()
        && suite.defaults.embedder.is_none()
        && !planned.iter().any(|p| p.candidate.has_exec_scorer())
        && crate::report::calls::in_file_at(crate::plan::calls(planned))
}

/// What [`plan_giving`] gives: the planned experiments found again in their suites (without
/// their cases), the suites, the jobs, and the cases' file.
pub struct Planning<'s> {
    pub planned: Vec<Planned<'s>>,
    pub head: &'s Suite,
    pub base: Option<&'s Suite>,
    pub jobs: Vec<crate::plan::Job>,
    pub spilled: Spilled,
}

/// Renders the jobs ([`crate::plan::jobs`]) of the planned experiments `found` found, from their cases, taken out of the suites
/// (`head`, `base`) they were loaded in and written to a scratch file in `dir` one by one as
/// their jobs are made: the dataset and the rendered jobs are never both whole in memory. For a
/// run whose cases nothing reads again before scoring.
pub fn plan_giving<'s>(
    dir: &std::path::Path,
    found: Found,
    seed: u64,
    head: &'s mut Suite,
    base: Option<&'s mut Suite>,
) -> anyhow::Result<Planning<'s>> {
    crate::output::create_dir(dir)?;
    let mut base = base;
    let cases = found.take_cases(head, base.as_deref_mut());
    let (head, base): (&'s Suite, Option<&'s Suite>) = (head, base.map(|b| &*b));
    let planned = found.again(head, base)?;
    let mut writer = Writer::new(dir, planned.len())?;
    let jobs = crate::plan::jobs_from(&planned, seed, cases, |ei, case| writer.add(ei, case))?;
    Ok(Planning {
        planned,
        head,
        base,
        jobs,
        spilled: writer.finish()?,
    })
}

/// What the run says when its cases cannot be read back: after the calls, which a rerun need not
/// pay for again.
fn unreadable(spilled: &Spilled) -> String {
    format!(
        "cannot read back the cases from {}, where the run wrote them once its jobs were planned; rerun: the journal in the output folder and the response cache replay the calls already paid for",
        spilled.file
    )
}

/// The cases scoring reads, in plan order.
pub struct Feed<'a> {
    planned: &'a [Planned<'a>],
    /// Given cases, per planned experiment.
    given: Option<Vec<Held>>,
    /// Spilled cases still to read.
    reader: Option<Reader>,
}

/// One planned experiment's given cases: how many it has, and those held, from `first` on.
struct Held {
    count: usize,
    /// The index of the first case not let go.
    first: usize,
    cases: VecDeque<Case>,
}

struct Reader {
    spilled: Spilled,
    lines: std::io::BufReader<std::fs::File>,
    /// The place (experiment, case) of the next line.
    next: (usize, usize),
    names: Names,
    text: String,
}

impl<'a> Feed<'a> {
    /// The cases of `planned` as its experiments hold them.
    pub fn lent(planned: &'a [Planned<'a>]) -> Feed<'a> {
        Feed {
            planned,
            given: None,
            reader: None,
        }
    }

    /// The cases of `planned`'s experiments, taken out of them: let go as scoring passes them.
    pub fn given(planned: &'a [Planned<'a>], given: Given) -> anyhow::Result<Feed<'a>> {
        let (held, reader) = match given {
            Given::Held(cases) => (
                cases
                    .into_iter()
                    .map(|c| Held {
                        count: c.len(),
                        first: 0,
                        cases: c.into(),
                    })
                    .collect(),
                None,
            ),
            Given::Spilled(spilled) => {
                let file = spilled
                    .file
                    .file()
                    .try_clone()
                    .and_then(|mut f| f.rewind().map(|()| f))
                    .with_context(|| unreadable(&spilled))?;
                let held = (spilled.counts.iter())
                    .map(|&count| Held {
                        count,
                        first: 0,
                        cases: VecDeque::new(),
                    })
                    .collect();
                let mut reader = Reader {
                    lines: std::io::BufReader::with_capacity(1 << 16, file),
                    next: (0, 0),
                    names: Names::default(),
                    text: String::new(),
                    spilled,
                };
                reader.skip_empty();
                (held, Some(reader))
            }
        };
        Ok(Feed {
            planned,
            given: Some(held),
            reader,
        })
    }

    /// The cases planned experiment `ei` has.
    pub fn count(&self, ei: usize) -> usize {
        match &self.given {
            Some(given) => given.get(ei).map_or(0, |g| g.count),
            None => self.planned.get(ei).map_or(0, |p| p.candidate.cases.len()),
        }
    }

    /// Whether any case's assertions (lent, held or spilled) has one that `is`.
    pub fn any_assertion(&self, is: impl Fn(&Assertion) -> bool) -> bool {
        let has = |c: &Case| c.asserts.iter().any(&is);
        match (&self.reader, &self.given) {
            (Some(reader), _) => reader.spilled.asserts.iter().any(|(list, _)| list.iter().any(&is)),
            (None, Some(given)) => given.iter().flat_map(|g| g.cases.iter()).any(has),
            (None, None) => self.planned.iter().flat_map(|p| p.candidate.cases.iter()).any(has),
        }
    }

    /// Reads case `ci` of planned experiment `ei` back from the scratch file, with those before
    /// it, when they are there: [`Feed::case`] has them until they are let go.
    pub fn load(&mut self, ei: usize, ci: usize) -> anyhow::Result<()> {
        if let (Some(reader), Some(given)) = (&mut self.reader, &mut self.given) {
            while reader.next <= (ei, ci) && reader.next.0 < given.len() {
                let (at, case) = reader.read_next()?;
                let g = &mut given[at.0];
                // Let go already (scoring has passed it): not held again.
                if at.1 >= g.first + g.cases.len() {
                    g.cases.push_back(case);
                }
            }
        }
        Ok(())
    }

    /// Case `ci` of planned experiment `ei`: lent, or given, loaded and not let go.
    pub fn case(&self, ei: usize, ci: usize) -> anyhow::Result<&Case> {
        let case = match &self.given {
            None => self.planned.get(ei).and_then(|p| p.candidate.cases.get(ci)),
            Some(given) => given
                .get(ei)
                .and_then(|g| ci.checked_sub(g.first).and_then(|at| g.cases.get(at))),
        };
        case.with_context(|| format!("case {ci} of planned experiment {ei} is not held (not loaded, or let go)"))
    }

    /// Lets go of the cases of experiment `ei` up to and with `ci`: scoring will not read them
    /// again. Cases lent by the suite stay.
    pub fn let_go_through(&mut self, ei: usize, ci: usize) {
        let Some(g) = self.given.as_mut().and_then(|given| given.get_mut(ei)) else {
            return;
        };
        while g.first <= ci && g.first < g.count {
            g.cases.pop_front();
            g.first += 1;
        }
        // The buffer is given back as it empties, as `super::Shrinking` does.
        if g.cases.capacity() >= 1024 && g.cases.len() < g.cases.capacity() / 2 {
            g.cases.shrink_to_fit();
        }
    }
}

impl Reader {
    /// Moves `next` past experiments with no case (and past the last).
    fn skip_empty(&mut self) {
        let counts = &self.spilled.counts;
        while self.next.0 < counts.len() && self.next.1 >= counts[self.next.0] {
            self.next = (self.next.0 + 1, 0);
        }
    }

    /// The case at `next`, read from the file.
    fn read_next(&mut self) -> anyhow::Result<((usize, usize), Case)> {
        let at = self.next;
        let unreadable = || unreadable(&self.spilled);
        self.text.clear();
        self.lines.read_line(&mut self.text).with_context(unreadable)?;
        let read: Read = serde_json::from_str(&self.text).with_context(unreadable)?;
        let (asserts, assert_source) = self
            .spilled
            .asserts
            .get(read.asserts)
            .cloned()
            .with_context(unreadable)?;
        self.next.1 += 1;
        self.skip_empty();
        let case = Case {
            id: read.id,
            group: read.group,
            vars: self.names.vars(read.vars),
            asserts,
            assert_source,
            line: read.line,
        };
        Ok((at, case))
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
        let mut feed = Feed::given(&[], Given::Held(feed_cases)).unwrap();
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

    #[test]
    fn spilled_cases_read_back_as_they_were_written() {
        let shared: Arc<[Assertion]> = Arc::from([]);
        let own: Arc<[Assertion]> = Arc::from([]);
        let mut names = Names::default();
        let vars = |names: &mut Names, json: serde_json::Value| match json {
            serde_json::Value::Object(map) => names.vars(map),
            _ => unreachable!(),
        };
        let with = |id: &str, vars: Vars, asserts: &Arc<[Assertion]>, group: Option<&str>, line: u32| Case {
            id: id.to_owned(),
            group: group.map(Box::from),
            vars,
            asserts: asserts.clone(),
            assert_source: Arc::from(format!("source of {id}")),
            line,
        };
        let written = [
            vec![
                with(
                    "a",
                    vars(&mut names, serde_json::json!({"input": "é \"q\"\n", "n": 1.5})),
                    &shared,
                    None,
                    3,
                ),
                with(
                    "b",
                    vars(
                        &mut names,
                        serde_json::json!({"input": "two", "list": [1, {"x": null}]}),
                    ),
                    &own,
                    Some("g"),
                    4,
                ),
            ],
            vec![],
            vec![with("c", vars(&mut names, serde_json::json!({})), &shared, None, 0)],
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut writer = Writer::new(dir.path(), written.len()).unwrap();
        for (ei, cases) in written.iter().enumerate() {
            for case in cases {
                writer.add(ei, case.clone()).unwrap();
            }
        }
        let spilled = writer.finish().unwrap();
        let mut feed = Feed::given(&[], Given::Spilled(spilled)).unwrap();
        assert_eq!((feed.count(0), feed.count(1), feed.count(2)), (2, 0, 1));
        // Nothing is held before it is loaded; loading a case loads those before it.
        assert!(feed.case(0, 0).is_err());
        feed.load(0, 1).unwrap();
        for (ei, ci) in [(0, 0), (0, 1)] {
            let (got, want) = (feed.case(ei, ci).unwrap(), &written[ei][ci]);
            assert_eq!(
                (&got.id, &got.group, &got.vars, got.line),
                (&want.id, &want.group, &want.vars, want.line)
            );
            assert!(Arc::ptr_eq(&got.asserts, &want.asserts));
            // The assertions' text is the first case's of the list: equal lists, equal text.
            assert_eq!(
                &*got.assert_source,
                &*written[0][usize::from(!Arc::ptr_eq(&want.asserts, &shared))].assert_source
            );
        }
        assert_eq!(
            serde_json::to_string(&feed.case(0, 0).unwrap().vars).unwrap(),
            r#"{"input":"é \"q\"\n","n":1.5}"#
        );
        feed.let_go_through(0, 1);
        assert!(feed.case(0, 1).is_err());
        feed.load(2, 0).unwrap();
        assert_eq!(feed.case(2, 0).unwrap().id, "c");
        assert!(Arc::ptr_eq(&feed.case(2, 0).unwrap().asserts, &shared));
        // Past the last case: nothing more to read, and no error.
        feed.load(5, 0).unwrap();
    }
}
