//! What git says about the app being packaged: the commit, its time, where it came from.
//!
//! Read with gix from the repository that contains the app folder (no `git` process).
//! Used for reproducible archive times and for the `org.opencontainers.image.*`
//! annotations. A URL is stripped of any user or token before it leaves this module.
//! [`GitRepo`] reads commits for rendering and ordering; `export` writes one out as files.

mod export;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The commit at HEAD and the public address of its repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitInfo {
    /// Full hex object id of the HEAD commit.
    pub commit: String,
    /// Committer time of the HEAD commit, seconds since the epoch.
    pub commit_time: i64,
    /// A browsable https URL of the repository, when one is known.
    pub source: Option<String>,
}

/// Reads HEAD of the repository containing `path`; `None` outside a repository or before
/// the first commit.
pub fn discover(path: &Path) -> Option<GitInfo> {
    let repo = gix::discover(path).ok()?;
    let commit = repo.head_commit().ok()?;
    let commit_time = commit.time().ok()?.seconds;
    Some(GitInfo {
        commit: commit.id.to_string(),
        commit_time,
        source: source(&repo),
    })
}

/// Where the repository lives: GitHub's address inside Actions, else `origin`'s, public.
fn source(repo: &gix::Repository) -> Option<String> {
    github_source().or_else(|| {
        repo.config_snapshot()
            .string("remote.origin.url")
            .and_then(|u| public_url(&u.to_string()))
    })
}

/// The time every archive entry carries: `SOURCE_DATE_EPOCH`, else the commit's, else 0.
pub(crate) fn source_date_epoch(git: Option<&GitInfo>) -> crate::Result<u64> {
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().map_err(|_| {
            crate::Error::Usage(format!(
                "SOURCE_DATE_EPOCH `{v}` is not a whole number of seconds"
            ))
        });
    }
    Ok(git.map(|g| g.commit_time.max(0) as u64).unwrap_or(0))
}

/// Inside GitHub Actions the repository's address is known exactly.
fn github_source() -> Option<String> {
    let server = std::env::var("GITHUB_SERVER_URL").ok()?;
    let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
    Some(format!("{}/{repo}", server.trim_end_matches('/')))
}

/// Turns a remote URL into a browsable https URL without credentials:
/// `git@github.com:acme/app.git` → `https://github.com/acme/app`.
pub(crate) fn public_url(remote: &str) -> Option<String> {
    use gix::url::Scheme;
    let url = gix::url::parse(remote.trim().as_bytes()).ok()?;
    if !matches!(
        url.scheme,
        Scheme::Https | Scheme::Http | Scheme::Ssh | Scheme::Git
    ) {
        return None;
    }
    let host = url.host()?;
    let path = url.path.to_string();
    let path = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .trim_end_matches(".git");
    Some(format!("https://{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn remote_urls_lose_credentials_and_suffixes() {
        assert_eq!(
            public_url("git@github.com:acme/app.git").as_deref(),
            Some("https://github.com/acme/app")
        );
        assert_eq!(
            public_url("https://x-access-token:ghs_secret@github.com/acme/app.git").as_deref(),
            Some("https://github.com/acme/app")
        );
        assert_eq!(
            public_url("ssh://git@example.org:2222/team/app").as_deref(),
            Some("https://example.org/team/app")
        );
        assert_eq!(public_url("/srv/git/app.git"), None);
    }
}

/// `path` as a tree knows it: trees have no `.` (`./margo.yaml` is `margo.yaml`).
fn tree_path(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

/// A git repository read through gix, for rendering at a commit and ordering commits.
pub struct GitRepo {
    repo: gix::Repository,
}

/// What the templates and annotations say about one commit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CommitInfo {
    pub commit: String,
    pub short_commit: String,
    /// Committer time, seconds since the epoch.
    pub time: i64,
    pub author: String,
    pub subject: String,
    pub branch: Option<String>,
}

fn git_err(what: &str, e: impl std::fmt::Display) -> crate::Error {
    crate::Error::Usage(format!("git: {what}: {e}"))
}

impl GitRepo {
    /// The repository containing `path`, if any.
    pub fn discover(path: &Path) -> Option<Self> {
        gix::discover(path).ok().map(|repo| GitRepo { repo })
    }

    /// The root of the work tree.
    pub fn workdir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// The full id of the commit `rev` names (`HEAD`, a branch, a hash, `HEAD~2`…).
    pub fn resolve(&self, rev: &str) -> crate::Result<String> {
        let id = self
            .repo
            .rev_parse_single(rev)
            .map_err(|e| git_err(&format!("`{rev}` names no commit"), e))?;
        let commit = id
            .object()
            .map_err(|e| git_err(rev, e))?
            .peel_to_commit()
            .map_err(|e| git_err(&format!("`{rev}` is not a commit"), e))?;
        Ok(commit.id.to_string())
    }

    /// The branch HEAD is on, when it is on one.
    pub fn branch(&self) -> Option<String> {
        if let Ok(r) = std::env::var("GITHUB_REF_NAME") {
            if !r.is_empty() {
                return Some(r);
            }
        }
        self.repo
            .head_name()
            .ok()
            .flatten()
            .map(|n| n.shorten().to_string())
    }

    pub fn commit(&self, rev: &str) -> crate::Result<CommitInfo> {
        let id = self.resolve(rev)?;
        let oid = gix::ObjectId::from_hex(id.as_bytes()).map_err(|e| git_err(rev, e))?;
        let commit = self.repo.find_commit(oid).map_err(|e| git_err(rev, e))?;
        let author = commit
            .author()
            .map(|a| a.name.to_string())
            .map_err(|e| git_err(rev, e))?;
        let subject = commit
            .message()
            .map(|m| m.summary().to_string())
            .map_err(|e| git_err(rev, e))?;
        let time = commit.time().map_err(|e| git_err(rev, e))?.seconds;
        Ok(CommitInfo {
            short_commit: id[..7].to_string(),
            commit: id,
            time,
            author,
            subject,
            branch: self.branch(),
        })
    }

    /// The bytes of `path` (relative to the repository root) in `commit`'s tree.
    pub fn read(&self, commit: &str, path: &Path) -> crate::Result<Option<Vec<u8>>> {
        let oid = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| git_err(commit, e))?;
        let tree = self
            .repo
            .find_commit(oid)
            .map_err(|e| git_err(commit, e))?
            .tree()
            .map_err(|e| git_err(commit, e))?;
        let Some(entry) = tree
            .lookup_entry_by_path(tree_path(path))
            .map_err(|e| git_err(&path.display().to_string(), e))?
        else {
            return Ok(None);
        };
        let object = entry
            .object()
            .map_err(|e| git_err(&path.display().to_string(), e))?;
        if object.kind != gix::object::Kind::Blob {
            return Ok(None);
        }
        Ok(Some(object.data.clone()))
    }

    /// What [`discover`] says of HEAD, said of `commit`.
    pub fn info(&self, commit: &str) -> crate::Result<GitInfo> {
        let c = self
            .repo
            .find_commit(self.oid(commit)?)
            .map_err(|e| git_err(commit, e))?;
        Ok(GitInfo {
            commit: c.id.to_string(),
            commit_time: c.time().map_err(|e| git_err(commit, e))?.seconds,
            source: source(&self.repo),
        })
    }

    /// The root tree of `commit`.
    fn tree_of(&self, commit: &str) -> crate::Result<gix::ObjectId> {
        Ok(self
            .repo
            .find_commit(self.oid(commit)?)
            .map_err(|e| git_err(commit, e))?
            .tree_id()
            .map_err(|e| git_err(commit, e))?
            .detach())
    }

    /// Refuses a shallow clone (actions/checkout's default): version numbers and the
    /// mirror count and walk the whole first-parent history, which it does not have.
    pub fn require_whole_history(&self) -> crate::Result<()> {
        if self.repo.is_shallow().unwrap_or(false) {
            return Err(crate::Error::Usage(
                "this checkout is shallow (actions/checkout's default `fetch-depth: 1`) and margo-gitops needs the branch's whole history: set `fetch-depth: 0` on actions/checkout, or run `git fetch --unshallow`".into(),
            ));
        }
        Ok(())
    }

    /// How many commits the first-parent chain from `commit` holds (itself included).
    pub fn first_parent_count(&self, commit: &str) -> crate::Result<u64> {
        self.require_whole_history()?;
        let oid = gix::ObjectId::from_hex(commit.as_bytes()).map_err(|e| git_err(commit, e))?;
        let walk = self
            .repo
            .rev_walk([oid])
            .first_parent_only()
            .all()
            .map_err(|e| git_err(commit, e))?;
        let mut n = 0;
        for info in walk {
            info.map_err(|e| git_err(commit, e))?;
            n += 1;
        }
        Ok(n)
    }

    /// Whether `ancestor` is `descendant` or one of its ancestors; `None` when either commit
    /// is not in this repository (a shallow clone, or rewritten history).
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> Option<bool> {
        let a = gix::ObjectId::from_hex(ancestor.as_bytes()).ok()?;
        let d = gix::ObjectId::from_hex(descendant.as_bytes()).ok()?;
        self.repo.find_commit(a).ok()?;
        self.repo.find_commit(d).ok()?;
        if a == d {
            return Some(true);
        }
        match self.repo.merge_base(a, d) {
            Ok(Some(base)) => Some(base.detach() == a),
            Ok(None) => Some(false),
            Err(_) => None,
        }
    }
}

impl GitRepo {
    fn oid(&self, hex: &str) -> crate::Result<gix::ObjectId> {
        gix::ObjectId::from_hex(hex.as_bytes()).map_err(|e| git_err(hex, e))
    }

    /// Where git runs hooks from: `core.hooksPath` (relative to the work tree), else the
    /// `hooks` folder of the common git directory.
    pub fn hooks_dir(&self) -> PathBuf {
        let configured = self
            .repo
            .config_snapshot()
            .string("core.hooksPath")
            .map(|s| PathBuf::from(s.to_string()));
        match configured {
            Some(p) if p.is_absolute() => p,
            Some(p) => self.workdir().unwrap_or(self.repo.common_dir()).join(p),
            None => self.repo.common_dir().join("hooks"),
        }
    }

    /// The tips of `refs/remotes/<remote>/*`: what the remote is known to have.
    pub fn remote_tips(&self, remote: &str) -> Vec<String> {
        let Ok(platform) = self.repo.references() else {
            return Vec::new();
        };
        let Ok(iter) = platform.remote_branches() else {
            return Vec::new();
        };
        let prefix = format!("refs/remotes/{remote}/");
        iter.filter_map(Result::ok)
            .filter(|r| r.name().as_bstr().to_string().starts_with(&prefix))
            .filter_map(|mut r| r.peel_to_id().ok().map(|id| id.to_string()))
            .collect()
    }

    /// Commits reachable from `tip` but from none of `known`, newest first.
    pub fn new_commits(&self, tip: &str, known: &[String]) -> crate::Result<Vec<String>> {
        let tip = self.oid(tip)?;
        let hidden: Vec<gix::ObjectId> = known
            .iter()
            .filter_map(|k| gix::ObjectId::from_hex(k.as_bytes()).ok())
            .filter(|id| self.repo.find_commit(*id).is_ok())
            .collect();
        let walk = self
            .repo
            .rev_walk([tip])
            .with_hidden(hidden)
            .all()
            .map_err(|e| git_err("walking the new commits", e))?;
        let mut out = Vec::new();
        for info in walk {
            out.push(
                info.map_err(|e| git_err("walking the new commits", e))?
                    .id
                    .to_string(),
            );
        }
        Ok(out)
    }

    /// The YAML files of a commit's tree (`*.yaml`, `*.yml`) and their blob ids.
    pub fn yaml_files(&self, commit: &str) -> crate::Result<BTreeMap<PathBuf, String>> {
        let mut out = BTreeMap::new();
        self.collect_yaml(self.tree_of(commit)?, PathBuf::new(), &mut out)?;
        Ok(out)
    }

    fn collect_yaml(
        &self,
        tree: gix::ObjectId,
        prefix: PathBuf,
        out: &mut BTreeMap<PathBuf, String>,
    ) -> crate::Result<()> {
        let tree = self
            .repo
            .find_tree(tree)
            .map_err(|e| git_err("reading a tree", e))?;
        let decoded = tree.decode().map_err(|e| git_err("reading a tree", e))?;
        for entry in &decoded.entries {
            let path = prefix.join(entry.filename.to_string());
            if entry.mode.is_tree() {
                self.collect_yaml(entry.oid.to_owned(), path, out)?;
            } else if entry.mode.is_blob()
                && path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            {
                out.insert(path, entry.oid.to_string());
            }
        }
        Ok(())
    }

    /// The YAML files `commit` adds or changes against its first parent.
    pub fn changed_yaml(&self, commit: &str) -> crate::Result<Vec<PathBuf>> {
        let now = self.yaml_files(commit)?;
        let parent = self
            .repo
            .find_commit(self.oid(commit)?)
            .map_err(|e| git_err(commit, e))?
            .parent_ids()
            .next()
            .map(|p| p.to_string());
        let before = match parent {
            Some(p) => self.yaml_files(&p)?,
            None => BTreeMap::new(),
        };
        Ok(now
            .into_iter()
            .filter(|(path, id)| before.get(path) != Some(id))
            .map(|(path, _)| path)
            .collect())
    }
}

impl GitRepo {
    /// The first-parent chain from `tip`, newest first.
    pub fn first_parents(&self, tip: &str) -> crate::Result<Vec<String>> {
        self.require_whole_history()?;
        let walk = self
            .repo
            .rev_walk([self.oid(tip)?])
            .first_parent_only()
            .all()
            .map_err(|e| git_err(tip, e))?;
        let mut out = Vec::new();
        for info in walk {
            out.push(info.map_err(|e| git_err(tip, e))?.id.to_string());
        }
        Ok(out)
    }

    /// The blob id of `path` in `commit`, if it is a file there.
    pub fn blob_id(&self, commit: &str, path: &Path) -> crate::Result<Option<String>> {
        Ok(self
            .entry(commit, path)?
            .filter(|(_, blob)| *blob)
            .map(|(id, _)| id))
    }

    /// The id of the file or folder `path` in `commit` (the root tree for `.`), so that
    /// two commits can be compared for a change under `path` without reading it.
    pub fn entry_id(&self, commit: &str, path: &Path) -> crate::Result<Option<String>> {
        Ok(self.entry(commit, path)?.map(|(id, _)| id))
    }

    fn entry(&self, commit: &str, path: &Path) -> crate::Result<Option<(String, bool)>> {
        let clean = tree_path(path);
        let tree = self
            .repo
            .find_commit(self.oid(commit)?)
            .map_err(|e| git_err(commit, e))?
            .tree()
            .map_err(|e| git_err(commit, e))?;
        if clean.as_os_str().is_empty() || clean == Path::new(".") {
            return Ok(Some((tree.id.to_string(), false)));
        }
        Ok(tree
            .lookup_entry_by_path(&clean)
            .map_err(|e| git_err(&clean.display().to_string(), e))?
            .map(|e| (e.object_id().to_string(), e.mode().is_blob())))
    }
}
