//! The action's install script (`scripts/action-install.sh`): a release binary runs only
//! with the checksum its action pins, which nothing in a workflow's environment can switch
//! off; a source build is cached under a key of everything it is made of, and a restored
//! one runs only when its SHA-256 is the one recorded at its build.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::actions::copy_action;
use crate::util::run;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fake release of version 0.1.0 for Linux x86_64, served on 127.0.0.1.
struct FakeRelease {
    dir: tempfile::TempDir,
    url: String,
    sha256: String,
    server: std::process::Child,
}

impl Drop for FakeRelease {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

const ARCHIVE: &str = "margo-gitops-0.1.0-x86_64-unknown-linux-musl.tar.gz";

impl FakeRelease {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir
            .path()
            .join("margo-gitops-0.1.0-x86_64-unknown-linux-musl");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(
            folder.join("margo-gitops"),
            "#!/bin/sh\necho fake margo-gitops\n",
        )
        .unwrap();
        run(Command::new("tar").current_dir(dir.path()).args([
            "-czf",
            ARCHIVE,
            "margo-gitops-0.1.0-x86_64-unknown-linux-musl",
        ]));
        let sha256 = crate::util::sha256_file(&dir.path().join(ARCHIVE));
        let (server, port) = crate::util::spawn_listening(
            Command::new("python3")
                .arg(root().join("tests/support/github_api_standin.py"))
                .args(["unused-token", "/dev/null", "/dev/null", "--files"])
                .arg(dir.path()),
        );
        FakeRelease {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            sha256,
            server,
        }
    }

    /// Runs the action's install script against this release with `checksums` pinned,
    /// through the tests' own switch (`--test-overrides`).
    fn install(&self, name: &str, checksums: &str) -> (Output, PathBuf, PathBuf) {
        self.install_with(name, checksums, &["install", "--test-overrides"])
    }

    fn install_with(
        &self,
        name: &str,
        checksums: &str,
        args: &[&str],
    ) -> (Output, PathBuf, PathBuf) {
        let work = self.dir.path().join(name);
        std::fs::create_dir_all(work.join("runner")).unwrap();
        let pinned = work.join("checksums.txt");
        std::fs::write(&pinned, checksums).unwrap();
        let github_path = work.join("github_path");
        let out = Command::new(root().join("scripts/action-install.sh"))
            .args(args)
            .env("ACTION_PATH", root())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", work.join("runner"))
            .env("GITHUB_PATH", &github_path)
            .env("MARGO_GITOPS_INSTALL", "release")
            .env("MARGO_GITOPS_RELEASE_URL", &self.url)
            .env("MARGO_GITOPS_CHECKSUMS", &pinned)
            .output()
            .unwrap();
        (
            out,
            github_path,
            work.join("runner/margo-gitops/bin/margo-gitops"),
        )
    }
}

#[test]
fn the_install_script_runs_only_a_binary_with_the_pinned_checksum() {
    let release = FakeRelease::start();

    let good = format!("version 0.1.0\n{}  {ARCHIVE}\n", release.sha256);
    let (out, github_path, bin) = release.install("good", &good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&github_path)
        .unwrap()
        .contains("margo-gitops/bin"));
    let ran = run(&mut Command::new(&bin));
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "fake margo-gitops\n");

    // A checksum that does not match: refused, nothing installed, nothing on the PATH.
    let wrong = format!("version 0.1.0\n{}  {ARCHIVE}\n", "0".repeat(64));
    let (out, github_path, bin) = release.install("wrong", &wrong);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to run it"));
    assert!(!bin.exists(), "the refused binary was installed");
    assert!(!github_path.exists(), "the PATH was changed");

    // No checksum pinned for this runner: release mode refuses too.
    let (out, _, bin) = release.install("unpinned", "version 0.1.0\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pinned SHA-256"));
    assert!(!bin.exists());

    // Without the tests' switch, the environment cannot point the action at another pin
    // file or another download: the overrides are ignored (a warning says so), and the
    // action's own checksum file, which pins nothing for 0.1.0, refuses the release.
    let (out, github_path, bin) = release.install_with("ambient", &good, &["install"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("::warning") && said.contains("are ignored"),
        "{said}"
    );
    assert!(said.contains("no pinned SHA-256"), "{said}");
    assert!(!bin.exists() && !github_path.exists());
}

/// A copy of what a source build is made of (the action's checkout), to change files in.
fn action_copy(dir: &Path) -> PathBuf {
    let action = dir.join("action");
    copy_action(&action);
    action
}

/// `scripts/action-install.sh STEP` of the action at `action`, on a runner whose PATH is
/// `path`: its output, its GITHUB_OUTPUT lines and its GITHUB_PATH.
fn install_step(
    dir: &Path,
    action: &Path,
    step: &str,
    action_ref: &str,
    path: &str,
    name: &str,
) -> (Output, std::collections::BTreeMap<String, String>, String) {
    std::fs::create_dir_all(dir.join("runner")).unwrap();
    let out_file = dir.join(format!("{name}.output"));
    let path_file = dir.join(format!("{name}.path"));
    let out = Command::new(action.join("scripts/action-install.sh"))
        .arg(step)
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.join("home"))
        .env("ACTION_PATH", action)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", dir.join("runner"))
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_PATH", &path_file)
        .env("MARGO_GITOPS_INSTALL", "")
        .env("MARGO_GITOPS_ACTION_REF", action_ref)
        .output()
        .unwrap();
    let outputs = std::fs::read_to_string(&out_file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (
        out,
        outputs,
        std::fs::read_to_string(&path_file).unwrap_or_default(),
    )
}

#[test]
fn a_source_build_is_cached_under_a_key_of_everything_it_is_made_of_and_checked_when_restored() {
    let dir = tempfile::tempdir().unwrap();
    let action = action_copy(dir.path());
    // No cargo on this PATH: a build that is attempted fails at once.
    let no_cargo = "/usr/bin:/bin";
    let key = |name: &str, action_ref: &str, path: &str| -> String {
        let (out, plan, _) = install_step(dir.path(), &action, "plan", action_ref, path, name);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            plan["mode"], "source",
            "empty `install` means auto: nothing pinned, source"
        );
        assert!(PathBuf::from(&plan["cache-path"]).starts_with(dir.path().join("home")));
        plan["cache-key"].clone()
    };
    let first = key("plan-1", "v1", no_cargo);
    assert!(
        first.starts_with("margo-gitops-0.1.0-Linux-X64-v1-rust-"),
        "{first}"
    );
    assert_eq!(key("plan-2", "v1", no_cargo), first, "stable");
    assert_ne!(key("plan-3", "v2", no_cargo), first, "per ref");
    // What the binary embeds, its lock file, and the toolchain change the key.
    let mut seen = vec![first.clone()];
    let mut changed = |what: &str, path: &str| {
        let k = key(what, "v1", path);
        assert!(!seen.contains(&k), "{what} did not change the key");
        seen.push(k);
    };
    std::fs::write(
        action.join("templates/margo-compose.yaml.j2"),
        "{# changed #}\n",
    )
    .unwrap();
    changed("template", no_cargo);
    std::fs::write(action.join("hooks/pre-push"), "#!/bin/sh\n# changed\n").unwrap();
    changed("hook", no_cargo);
    let mut lock = std::fs::read_to_string(action.join("Cargo.lock")).unwrap();
    lock.push_str("\n# changed\n");
    std::fs::write(action.join("Cargo.lock"), lock).unwrap();
    changed("lock", no_cargo);
    let toolchain = dir.path().join("toolchain");
    std::fs::create_dir_all(&toolchain).unwrap();
    std::fs::write(toolchain.join("rustc"), "#!/bin/sh\necho rustc 1.99.0\n").unwrap();
    run(Command::new("chmod")
        .arg("755")
        .arg(toolchain.join("rustc")));
    changed("toolchain", &format!("{}:{no_cargo}", toolchain.display()));
    let key = key("plan-4", "v1", no_cargo);

    // What actions/cache brings back under that key runs when its SHA-256 is the one
    // recorded at the build: no build.
    let build = dir.path().join("home/.cache/margo-gitops/source-build");
    std::fs::create_dir_all(build.join("bin")).unwrap();
    let bin = build.join("bin/margo-gitops");
    std::fs::write(&bin, "#!/bin/sh\necho cached margo-gitops\n").unwrap();
    run(Command::new("chmod").arg("755").arg(&bin));
    let record = |key: &str| {
        std::fs::write(
            build.join("build.txt"),
            format!("key {key}\nsha256 {}\n", crate::util::sha256_file(&bin)),
        )
        .unwrap()
    };
    record(&key);
    let (out, _, github_path) =
        install_step(dir.path(), &action, "install", "v1", no_cargo, "restored");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("restored from the cache") && said.contains("verified"),
        "{said}"
    );
    assert_eq!(github_path.trim(), build.join("bin").display().to_string());

    // Another binary than the one recorded: not run, built again (and without cargo on
    // the PATH that fails, before anything is put on the PATH).
    std::fs::write(&bin, "#!/bin/sh\necho swapped\n").unwrap();
    let (out, _, github_path) =
        install_step(dir.path(), &action, "install", "v1", no_cargo, "swapped");
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("recorded when it was built") && said.contains("needs cargo"),
        "{said}"
    );
    assert!(github_path.is_empty());

    // A build of other sources (another ref here) is not reused either.
    std::fs::create_dir_all(build.join("bin")).unwrap();
    std::fs::write(&bin, "#!/bin/sh\necho cached margo-gitops\n").unwrap();
    run(Command::new("chmod").arg("755").arg(&bin));
    record(&key);
    let (out, _, _) = install_step(dir.path(), &action, "install", "v2", no_cargo, "stale");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("of other sources"));
}

#[test]
fn the_cache_key_covers_every_file_the_binary_embeds() {
    let script = std::fs::read_to_string(root().join("scripts/action-install.sh")).unwrap();
    let embedded: Vec<&str> = script
        .lines()
        .find_map(|l| l.strip_prefix("EMBEDDED=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("EMBEDDED=\"…\" in the install script")
        .split_whitespace()
        .collect();
    let include = regex_lite::Regex::new(r#"include_(?:str|bytes)!\("([^"]+)"\)"#).unwrap();
    let mut found = 0;
    for entry in walk(&root().join("src")) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for c in include.captures_iter(&text) {
            let path = entry.parent().unwrap().join(&c[1]);
            let path = std::fs::canonicalize(&path).unwrap();
            let rel = path
                .strip_prefix(std::fs::canonicalize(root()).unwrap())
                .unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            assert!(
                embedded.contains(&top),
                "{} embeds {}, which the cache key does not cover ({embedded:?})",
                entry.display(),
                rel.display()
            );
            found += 1;
        }
    }
    assert!(
        found >= 3,
        "the templates and the hook are embedded: {found}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}
