//! Which lines of a file a change touched, for annotations on the lines that matter: the
//! prompt, partial or config lines a regressed experiment depends on.
//!
//! A line diff (Myers' O((N+M)·D) algorithm, "An O(ND) Difference Algorithm and Its
//! Variations", Algorithmica 1986) of the file at base and at head; the changed lines are
//! reported as ranges of the head's line numbers. A deletion is reported on the head line
//! that now stands where the deleted lines were. Files too different to diff cheaply fall back
//! to the span between the first and the last differing line.

/// Lines of both files together beyond which the diff is not attempted.
const MAX_LINES: usize = 40_000;
/// Edit distance beyond which the diff gives up and takes the span.
const MAX_EDITS: usize = 4_000;

/// The head's changed lines as 1-based inclusive ranges, in order, adjacent ones merged.
/// Identical files have none; a new file (empty `before`) is changed throughout.
pub fn changed(before: &str, after: &str) -> Vec<(u32, u32)> {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    if a == b {
        return Vec::new();
    }
    // Common prefix and suffix cost nothing to skip, and most edits are small.
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let marks = if a_mid.len() + b_mid.len() <= MAX_LINES {
        myers(a_mid, b_mid)
    } else {
        None
    };
    let mut lines: Vec<usize> = match marks {
        Some(marks) => marks.into_iter().map(|i| i + prefix).collect(),
        None => (prefix..b.len() - suffix).collect(),
    };
    if lines.is_empty() {
        // Only deletions at the very end of the middle: the line after them.
        lines.push(prefix);
    }
    let last = b.len().saturating_sub(1);
    let mut ranges: Vec<(u32, u32)> = Vec::new();
    for i in lines {
        let line = u32::try_from(i.min(last) + 1).unwrap_or(u32::MAX);
        match ranges.last_mut() {
            Some((_, end)) if line <= *end + 1 => *end = (*end).max(line),
            _ => ranges.push((line, line)),
        }
    }
    ranges
}

/// The indexes of `b` that are not on a shortest edit script's common path (insertions), plus
/// for each deletion the index of `b` where it happened. `None` when the edit distance exceeds
/// [`MAX_EDITS`].
fn myers(a: &[&str], b: &[&str]) -> Option<Vec<usize>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m) as usize;
    let offset = max as isize + 1;
    let mut v = vec![0isize; 2 * max + 3];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let mut found = None;
    for d in 0..=max.min(MAX_EDITS) as isize {
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let index = (k + offset) as usize;
            let mut x = if k == -d || (k != d && v[index - 1] < v[index + 1]) {
                v[index + 1]
            } else {
                v[index - 1] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[index] = x;
            if x >= n && y >= m {
                found = Some(d);
                break;
            }
            k += 2;
        }
        if found.is_some() {
            break;
        }
    }
    let d_final = found?;
    // Walk back through the trace, collecting the edits.
    let mut marks = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (1..=d_final).rev() {
        let v = &trace[d as usize];
        let k = x - y;
        let index = (k + offset) as usize;
        let down = k == -d || (k != d && v[index - 1] < v[index + 1]);
        let prev_k = if down { k + 1 } else { k - 1 };
        let prev_x = v[(prev_k + offset) as usize];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y {
            x -= 1;
            y -= 1;
        }
        if down {
            // An insertion of b[prev_y].
            marks.push(prev_y as usize);
        } else {
            // A deletion of a[prev_x]: it happened where b is now at `prev_y`.
            marks.push(prev_y as usize);
        }
        x = prev_x;
        y = prev_y;
    }
    marks.sort_unstable();
    marks.dedup();
    Some(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(before: &str, after: &str, expected: &[(u32, u32)]) {
        assert_eq!(changed(before, after), expected, "{before:?} → {after:?}");
    }

    #[test]
    fn changed_lines_of_the_head() {
        check("a\nb\nc\n", "a\nb\nc\n", &[]);
        check("a\nb\nc\n", "a\nB\nc\n", &[(2, 2)]);
        check("a\nb\nc\n", "a\nb\nx\ny\nc\n", &[(3, 4)]);
        check("a\nb\nc\nd\ne\n", "A\nb\nc\nd\nE\n", &[(1, 1), (5, 5)]);
        // A deletion marks the line now standing where the deleted ones were.
        check("a\nb\nc\nd\n", "a\nd\n", &[(2, 2)]);
        check("a\nb\nc\n", "a\nb\n", &[(2, 2)]);
        // A new file is changed throughout.
        check("", "x\ny\n", &[(1, 2)]);
        // A line moved within the file: its new place and its old place.
        check("1\n2\n3\n4\n5\n", "1\n3\n4\n5\n2\n", &[(2, 2), (5, 5)]);
    }
}
