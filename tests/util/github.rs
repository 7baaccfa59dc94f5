//! Stand-in for GitHub's API and release downloads (`tests/support/github_api_standin.py`):
//! this machine cannot reach github.com.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// The workflow's token the stand-in knows without a tokens file.
pub const GITHUB_TOKEN: &str = "ghs_standin_token_never_printed";

pub struct GitHubApiStandIn {
    pub url: String,
    log: PathBuf,
    state: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for GitHubApiStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl GitHubApiStandIn {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// The stand-in as a fork's pull request sees it: its token reads, never writes.
    pub fn read_only() -> Self {
        Self::start_with(&["--read-only"])
    }

    /// With `flags` of the script: `--tokens FILE`, `--files DIR`, `--user TOKEN=LOGIN`.
    pub fn start_with(flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.log");
        let state = dir.path().join("comments.json");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/github_api_standin.py");
        let (child, port) = crate::util::spawn_listening(
            Command::new("python3")
                .arg(script)
                .arg(GITHUB_TOKEN)
                .arg(&log)
                .arg(&state)
                .args(flags),
        );
        GitHubApiStandIn {
            url: format!("http://127.0.0.1:{port}"),
            log,
            state,
            child,
            _dir: dir,
        }
    }

    /// `METHOD PATH` of every API request, in order.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The comments, as the API lists them (each with `id`, `issue`, `body`, `user`).
    pub fn comments(&self) -> Vec<serde_json::Value> {
        std::fs::read(&self.state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Creates a comment on issue `number` as the user of `token` (one given with `--user`).
    pub fn comment_as(&self, token: &str, repository: &str, number: u64, body: &str) {
        crate::util::run(Command::new("curl").args([
            "-sf",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-d",
            &serde_json::json!({ "body": body }).to_string(),
            &format!("{}/repos/{repository}/issues/{number}/comments", self.url),
        ]));
    }
}
