//! Tidy: the house rules of ARCHITECTURE.md, checked from the source's own `crate::` paths.
//!
//! - no import circles between top-level modules;
//! - `stats` imports nothing of the crate but itself;
//! - `results`, `chat` and `metrics` (the bottom floor) import only each other;
//! - `report` knows nothing of `providers`, `runner`, `github` or `workspace`;
//! - only `workspace` runs `git`;
//! - no file over 800 lines outside tests;
//! - `unsafe` only in `allocator.rs` (one `mallopt` call).
//!
//! Each failure names the file and line that breaks the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An import of one top-level module by another: where it is written.
#[derive(Clone, Debug)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file belongs to: `src/report/markdown.rs` → `report`.
fn module_of(path: &Path) -> String {
    let relative = path.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component");
    first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// The code of a file without its `#[cfg(test)]` module (tests may reach anywhere), line
/// numbers kept.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut in_tests = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            in_tests = true;
        }
        if !in_tests {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// Every `crate::<module>` a line names (in `use` items and in paths), comments excluded.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        // `promptgate::crate::` never occurs; a `$crate::` in a macro is not ours either.
        let preceded = rest[..at].chars().last();
        if preceded != Some('$') && !matches!(preceded, Some(c) if c.is_alphanumeric() || c == '_') {
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                found.push(name);
            } else if let Some(braced) = after.strip_prefix('{') {
                // `use crate::{a, b::c}`: the top-level names inside the braces.
                let inner = braced.split('}').next().unwrap_or("");
                for part in inner.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        found.push(name);
                    }
                }
            }
        }
        rest = after;
    }
    found
}

fn edges() -> Vec<Edge> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut edges = Vec::new();
    for file in &files {
        let from = module_of(file);
        let text = std::fs::read_to_string(file).expect("readable");
        for (n, line) in code_lines(&text) {
            for to in crate_paths(line) {
                if to != from && modules.contains(&to) {
                    edges.push(Edge {
                        from: from.clone(),
                        to,
                        at: format!("{}:{n}: {}", file.strip_prefix(src()).unwrap().display(), line.trim()),
                    });
                }
            }
        }
    }
    edges
}

#[track_caller]
fn none(broken: Vec<String>, rule: &str) {
    assert!(broken.is_empty(), "{rule}:\n{}", broken.join("\n"));
}

#[test]
fn stats_imports_nothing_of_the_crate() {
    none(
        edges()
            .into_iter()
            .filter(|e| e.from == "stats")
            .map(|e| e.at)
            .collect(),
        "stats is pure: it imports nothing of the crate",
    );
}

#[test]
fn the_bottom_floor_imports_only_itself() {
    let floor = ["results", "chat", "metrics"];
    none(
        edges()
            .into_iter()
            .filter(|e| floor.contains(&e.from.as_str()) && !floor.contains(&e.to.as_str()))
            .map(|e| format!("{} (imports {})", e.at, e.to))
            .collect(),
        "results, chat and metrics are the bottom floor",
    );
}

#[test]
fn report_knows_nothing_of_providers_runners_github_or_git() {
    let banned = ["providers", "runner", "github", "workspace", "commands"];
    none(
        edges()
            .into_iter()
            .filter(|e| e.from == "report" && banned.contains(&e.to.as_str()))
            .map(|e| format!("{} (imports {})", e.at, e.to))
            .collect(),
        "report renders results; it knows nothing of providers, runner, github or workspace",
    );
}

#[test]
fn no_import_circles_between_top_level_modules() {
    let edges = edges();
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &edges {
        graph.entry(&e.from).or_default().insert(&e.to);
    }
    // Every strongly connected set of two or more modules is a circle; name one import of each
    // edge inside it.
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(m) = stack.pop() {
            for next in graph.get(m).into_iter().flatten() {
                if seen.insert(*next) {
                    stack.push(next);
                }
            }
        }
        seen
    };
    let mut broken = Vec::new();
    for e in &edges {
        if e.from != e.to && reach(&e.to).contains(e.from.as_str()) {
            broken.push(format!("{} ({} → {} → … → {})", e.at, e.from, e.to, e.from));
        }
    }
    broken.sort();
    broken.dedup();
    none(broken, "an import circle between top-level modules");
}

#[test]
fn only_workspace_runs_git() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut broken = Vec::new();
    for file in files.iter().filter(|f| module_of(f) != "workspace") {
        let text = std::fs::read_to_string(file).expect("readable");
        for (n, line) in code_lines(&text) {
            if line.contains("Command::new(\"git\")") {
                broken.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    none(broken, "only workspace runs git");
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut broken: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).expect("readable");
            // Tests beside the code do not count: they grow with what they guard.
            let lines = code_lines(&text).len();
            (lines > 800).then(|| format!("{}: {lines} lines", f.strip_prefix(src()).unwrap().display()))
        })
        .collect();
    broken.sort();
    none(broken, "a file over 800 lines (tests excluded): split it by concept");
}

#[test]
fn unsafe_code_is_allowed_in_the_allocator_settings_only() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut broken: Vec<String> = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable");
        let name = f.strip_prefix(src()).unwrap().display().to_string();
        for (line, code) in code_lines(&text) {
            // `allow(unsafe_code)` or `expect(unsafe_code)`: either lifts the lint.
            if code.contains("unsafe_code)") && name != "allocator.rs" {
                broken.push(format!("{name}:{line}: {}", code.trim()));
            }
        }
    }
    none(broken, "unsafe code outside src/allocator.rs");
    let allocator = std::fs::read_to_string(src().join("allocator.rs")).expect("readable");
    assert_eq!(
        allocator.matches("unsafe {").count(),
        2,
        "two unsafe blocks, the mallopt and malloc_trim calls"
    );
}

#[test]
fn the_import_graph_is_read() {
    // A known downward import, to show the reader sees the code's edges at all.
    let edges = edges();
    assert!(
        edges.iter().any(|e| e.from == "verdict" && e.to == "analyze"),
        "{edges:?}"
    );
    assert!(
        edges.iter().any(|e| e.from == "report" && e.to == "results"),
        "{edges:?}"
    );
}
