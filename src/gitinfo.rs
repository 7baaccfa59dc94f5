//! What git says about the app being packaged: the commit, its time, where it came from.
//!
//! Read with gix from the repository that contains the app folder (no `git` process).
//! Used for reproducible archive times and for the `org.opencontainers.image.*`
//! annotations. A URL is stripped of any user or token before it leaves this module.

use std::path::Path;

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
    let source = github_source().or_else(|| {
        repo.config_snapshot()
            .string("remote.origin.url")
            .and_then(|u| public_url(&u.to_string()))
    });
    Some(GitInfo {
        commit: commit.id.to_string(),
        commit_time,
        source,
    })
}

/// Inside GitHub Actions the repository's address is known exactly.
fn github_source() -> Option<String> {
    let server = std::env::var("GITHUB_SERVER_URL").ok()?;
    let repo = std::env::var("GITHUB_REPOSITORY").ok()?;
    Some(format!("{}/{repo}", server.trim_end_matches('/')))
}

/// Turns a remote URL into a browsable https URL without credentials:
/// `git@github.com:acme/app.git` → `https://github.com/acme/app`.
pub fn public_url(remote: &str) -> Option<String> {
    let remote = remote.trim();
    let (host, path) = if let Some(rest) = remote.strip_prefix("git@") {
        rest.split_once(':')?
    } else if let Some((scheme, rest)) = remote.split_once("://") {
        if !matches!(scheme, "https" | "http" | "ssh" | "git") {
            return None;
        }
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let (host, path) = rest.split_once('/')?;
        (host.rsplit_once(':').map_or(host, |(h, _)| h), path)
    } else {
        return None;
    };
    let path = path.trim_end_matches('/').trim_end_matches(".git");
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
