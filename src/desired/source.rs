//! Where the desired-state inputs are read from: the work tree, or one commit's tree.
//!
//! Rendering at a commit (for diffs, mirroring, hooks) must read that commit's config,
//! templates and values, never the work tree; [`Source`] makes the choice explicit.
//! Paths are relative to the repository root (or, outside git, the current folder).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::git::GitRepo;

pub(crate) enum Source<'r> {
    WorkTree(PathBuf),
    Commit { repo: &'r GitRepo, commit: String },
}

impl Source<'_> {
    /// The bytes of `path`, or `None` when there is no such file.
    pub(crate) fn read(&self, path: &Path) -> Result<Option<Vec<u8>>> {
        match self {
            Source::WorkTree(root) => {
                let full = root.join(path);
                match std::fs::read(&full) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("read", full)(e)),
                }
            }
            Source::Commit { repo, commit } => repo.read(commit, path),
        }
    }

    /// Like [`Source::read`], as text, failing when the file is missing.
    pub(crate) fn read_text(&self, path: &Path) -> Result<String> {
        let bytes = self
            .read(path)?
            .ok_or_else(|| Error::Usage(format!("{} does not exist", self.describe(path))))?;
        String::from_utf8(bytes)
            .map_err(|_| Error::invalid_file(self.describe(path), None, "not UTF-8 text"))
    }

    /// How to name `path` in messages: `path` in the work tree, `abc1234:path` in a commit.
    pub(crate) fn describe(&self, path: &Path) -> String {
        match self {
            Source::WorkTree(root) if root.as_os_str().is_empty() || root == Path::new(".") => {
                path.display().to_string()
            }
            Source::WorkTree(root) => root.join(path).display().to_string(),
            Source::Commit { commit, .. } => {
                format!("{}:{}", &commit[..7.min(commit.len())], path.display())
            }
        }
    }
}
