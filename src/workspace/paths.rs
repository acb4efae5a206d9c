//! Repository-relative paths: joined lexically and never allowed to leave the repository.

/// A path that would leave the repository (`../..`, an absolute path).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` leaves the repository")]
pub struct PathEscape(pub String);

/// Joins `relative` onto the repository-relative folder `dir` ("" is the root), resolving `.`
/// and `..` lexically. Absolute paths and paths climbing above the root are refused.
pub fn join_in_repo(dir: &str, relative: &str) -> Result<String, PathEscape> {
    let relative_unix = relative.replace('\\', "/");
    if relative_unix.starts_with('/') || relative_unix.get(1..2) == Some(":") {
        return Err(PathEscape(relative.to_owned()));
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    for part in relative_unix.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathEscape(relative.to_owned()));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// The folder of a repository-relative file path ("" for a file at the root).
pub fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(dir: &str, rel: &str, expected: Result<&str, ()>) {
        assert_eq!(join_in_repo(dir, rel).map_err(|_| ()), expected.map(str::to_owned));
    }

    #[test]
    fn joins() {
        check("", "prompts/a.md", Ok("prompts/a.md"));
        check("configs", "../prompts/a.md", Ok("prompts/a.md"));
        check("configs", "./b.md", Ok("configs/b.md"));
        check("a/b", "../../c", Ok("c"));
        check("a", "../../c", Err(()));
        check("", "../x", Err(()));
        check("", "/etc/passwd", Err(()));
        check("", "C:/x", Err(()));
        check("a", "b\\..\\..\\..\\x", Err(()));
    }

    #[test]
    fn parents() {
        assert_eq!(parent_dir("a/b/c.md"), "a/b");
        assert_eq!(parent_dir("c.md"), "");
    }
}
