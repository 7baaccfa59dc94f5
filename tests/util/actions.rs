//! GitHub Actions as a runner runs them: the runner stand-in
//! (`tests/support/actions_runner_standin.py`) runs a workflow file and the composite
//! `action.yml` it uses; the action comes from a repository released the way
//! `scripts/release.sh` releases it, its archives served by the GitHub stand-in. Tests read
//! the runner's report: per job, its result, permissions and token, and per step its
//! outcome, output and outputs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::util::{run, sh};

/// The action's repository, as workflows name it.
pub const ACTION: &str = "margo-gitops/margo-gitops";

/// The targets a release carries (`scripts/release.sh`), and the one of this machine.
const TARGETS: [&str; 4] = [
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn this_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// Runs `git ARGS` in `dir`.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = run(Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_AUTHOR_NAME", "Release Test")
        .env("GIT_AUTHOR_EMAIL", "release@example.org")
        .env("GIT_COMMITTER_NAME", "Release Test")
        .env("GIT_COMMITTER_EMAIL", "release@example.org"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes the archives of a release of `version` into `dist`: this machine's holds `binary`,
/// the others a script; each with its `.sha256`, as the release workflow writes them.
pub fn write_dist(dist: &Path, version: &str, binary: &Path) {
    std::fs::create_dir_all(dist).unwrap();
    for target in TARGETS {
        let name = format!("margo-gitops-{version}-{target}");
        let folder = dist.join(&name);
        std::fs::create_dir_all(&folder).unwrap();
        if target == this_target() {
            std::fs::copy(binary, folder.join("margo-gitops")).unwrap();
        } else {
            std::fs::write(
                folder.join("margo-gitops"),
                format!("#!/bin/sh\necho {target}\n"),
            )
            .unwrap();
        }
        run(Command::new("tar")
            .current_dir(dist)
            .args(["-czf", &format!("{name}.tar.gz"), &name]));
        std::fs::remove_dir_all(&folder).unwrap();
        let sha = crate::util::sha256_file(&dist.join(format!("{name}.tar.gz")));
        std::fs::write(
            dist.join(format!("{name}.tar.gz.sha256")),
            format!("{sha}  {name}.tar.gz\n"),
        )
        .unwrap();
    }
}

/// Copies into `dest` what the action is at runtime and what a source build of it is made
/// of: `action.yml`, `scripts/`, and the sources the cache key hashes.
pub fn copy_action(dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for item in [
        "action.yml",
        "Cargo.toml",
        "Cargo.lock",
        "scripts",
        "src",
        "templates",
        "hooks",
    ] {
        run(Command::new("cp")
            .arg("-r")
            .arg(root().join(item))
            .arg(dest));
    }
}

/// The action's own repository: this checkout's action (`action.yml`, `scripts/` and the
/// sources a source build hashes) committed as `main`, pushed to a bare `origin`, and
/// released as the Cargo.toml version by `scripts/release.sh` with archives that hold the
/// binary under test.
pub struct ActionRepo {
    dir: TempDir,
    /// The bare repository workflows fetch the action from (`uses: margo-gitops/margo-gitops@REF`).
    pub origin: PathBuf,
    /// What the GitHub stand-in serves (`--files`): the release downloads.
    pub files: PathBuf,
    /// The commit the release was built from (main), and the release commit tagged.
    pub built: String,
    pub release: String,
}

impl ActionRepo {
    pub fn released() -> ActionRepo {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        copy_action(&work);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "the action"]);
        let origin = dir.path().join("origin.git");
        git(dir.path(), &["clone", "-q", "--bare", "work", "origin.git"]);
        git(
            &work,
            &["remote", "add", "origin", origin.to_str().unwrap()],
        );
        git(&work, &["fetch", "-q", "origin"]);
        let built = git(&work, &["rev-parse", "HEAD"]);
        let version = env!("CARGO_PKG_VERSION");
        let files = dir.path().join("files");
        let dist = files.join(format!("{ACTION}/releases/download/v{version}"));
        write_dist(
            &dist,
            version,
            Path::new(env!("CARGO_BIN_EXE_margo-gitops")),
        );
        release(&work, &["tag", version, dist.to_str().unwrap()]);
        release(&work, &["major", version]);
        let release = git(&work, &["rev-parse", &format!("v{version}^{{commit}}")]);
        ActionRepo {
            dir,
            origin,
            files,
            built,
            release,
        }
    }

    /// The action's working copy (main, with the release tags fetched).
    pub fn work(&self) -> PathBuf {
        self.dir.path().join("work")
    }
}

/// `scripts/release.sh ARGS` in `dir` (a checkout with an `origin`); its output.
pub fn release(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = release_try(dir, args);
    assert!(
        out.status.success(),
        "release.sh {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn release_try(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(dir.join("scripts/release.sh"))
        .current_dir(dir)
        .args(args)
        .env("GIT_COMMITTER_DATE", "2026-01-02T00:00:00Z")
        .env("GIT_AUTHOR_DATE", "2026-01-02T00:00:00Z")
        .env_remove("RELEASE_TOKEN")
        .output()
        .unwrap()
}

/// A runner for one test: the workflow, the repository checkout clones, the machine's
/// environment, and where `uses:` and the GitHub services are.
pub struct Runner {
    pub workflow: PathBuf,
    /// The repository `actions/checkout` clones (the test's own git repository).
    pub origin: PathBuf,
    /// OWNER/NAME, as GitHub spells it.
    pub repository: String,
    /// The runner's own folder (jobs, fetched actions, the actions/cache store).
    pub work: PathBuf,
    /// The runner machine's environment (PATH is this process's unless given).
    pub env: Vec<(String, String)>,
    pub uses: Vec<(String, PathBuf)>,
    /// GitHub's server, REST and GraphQL API: the GitHub stand-in.
    pub github: String,
    pub tokens: Option<PathBuf>,
    /// The Actions OIDC token endpoint and its request token.
    pub oidc: Option<(String, String)>,
}

/// What a workflow run did (the runner stand-in's report).
pub struct Run {
    pub report: Value,
}

impl Runner {
    pub fn run(&self, event: &str, payload: Value, sha: &str, git_ref: &str) -> Run {
        let dir = tempfile::tempdir_in(&self.work).unwrap();
        let payload_file = dir.path().join("event.json");
        std::fs::write(&payload_file, payload.to_string()).unwrap();
        let report = dir.path().join("report.json");
        let mut cmd = Command::new("python3");
        cmd.arg(root().join("tests/support/actions_runner_standin.py"))
            .arg("--workflow")
            .arg(&self.workflow)
            .args(["--event", event, "--sha", sha, "--ref", git_ref])
            .arg("--payload")
            .arg(&payload_file)
            .args(["--repository", &self.repository])
            .arg("--origin")
            .arg(&self.origin)
            .arg("--work")
            .arg(&self.work)
            .arg("--report")
            .arg(&report)
            .args(["--server-url", &self.github, "--api-url", &self.github])
            .args(["--graphql-url", &format!("{}/graphql", self.github)]);
        for (k, v) in &self.env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        for (name, path) in &self.uses {
            cmd.arg("--use").arg(format!("{name}={}", path.display()));
        }
        if let Some(t) = &self.tokens {
            cmd.arg("--tokens").arg(t);
        }
        if let Some((url, token)) = &self.oidc {
            cmd.args(["--oidc-url", url, "--oidc-request-token", token]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "the runner stand-in could not run {}: {}{}",
            self.workflow.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let report = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        Run { report }
    }
}

impl Run {
    pub fn job(&self, name: &str) -> &Value {
        let job = &self.report["jobs"][name];
        assert!(!job.is_null(), "no job {name}: {}", self.report);
        job
    }

    pub fn result(&self, name: &str) -> &str {
        self.job(name)["result"].as_str().unwrap_or_default()
    }

    /// Every step of a job (those of the actions it uses included), in order.
    pub fn steps(&self, name: &str) -> Vec<&Value> {
        self.job(name)["steps"]
            .as_array()
            .map(|s| s.iter().collect())
            .unwrap_or_default()
    }

    /// The step whose `id` is `id` (in the job or in an action it uses).
    pub fn step(&self, job: &str, id: &str) -> &Value {
        self.steps(job)
            .into_iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id} in job {job}: {}", self.log(job)))
    }

    /// What the job's steps printed, in order, for assertions and messages.
    pub fn log(&self, name: &str) -> String {
        let mut out = String::new();
        for s in self.steps(name) {
            out.push_str(&format!(
                "--- {} ({}) {}\n{}{}",
                s["path"].as_str().unwrap_or_default(),
                s["name"]
                    .as_str()
                    .or(s["uses"].as_str())
                    .unwrap_or_default(),
                s["outcome"].as_str().unwrap_or_default(),
                s["stdout"].as_str().unwrap_or_default(),
                s["stderr"].as_str().unwrap_or_default(),
            ));
        }
        out
    }

    /// The job's workspace (the checkout).
    pub fn workspace(&self, name: &str) -> PathBuf {
        PathBuf::from(self.job(name)["workspace"].as_str().unwrap())
    }
}

/// A git repository at `dir` with the given files, committed on `main` at `date`.
pub fn commit_files(dir: &Path, files: &[(&str, &str)], date: &str, message: &str) -> String {
    for (rel, text) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    sh(&format!(
        "cd {}; [ -d .git ] || git init -q -b main; git add -A; GIT_AUTHOR_DATE={date} GIT_COMMITTER_DATE={date} git -c user.name=Test -c user.email=test@example.org commit -q --allow-empty -m '{message}'",
        dir.display()
    ));
    git(dir, &["rev-parse", "HEAD"])
}
