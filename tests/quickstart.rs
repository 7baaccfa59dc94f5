//! The README's quickstart, run exactly as the README has it, in a fresh clone, and what it
//! leaves checked by umoci and skopeo.

use std::path::Path;
use std::process::Command;

use crate::util::run;

/// The first code block under `## Quickstart`.
fn quickstart_block(readme: &str) -> String {
    let section = readme
        .split("## Quickstart")
        .nth(1)
        .expect("a Quickstart section");
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = section[start..].find("```").expect("the block ends");
    section[start..start + end].to_string()
}

#[test]
fn the_quickstart_runs_from_a_fresh_clone() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let clone = dir.path().join("margo-gitops");
    run(Command::new("git")
        .arg("clone")
        .arg("-q")
        .arg(source)
        .arg(&clone));
    let block = quickstart_block(&std::fs::read_to_string(clone.join("README.md")).unwrap());
    // Share the release build with this checkout (the test is about the commands, not the
    // compiler); everything else the block writes stays in the clone.
    std::fs::create_dir_all(source.join("target/release")).unwrap();
    std::fs::create_dir_all(clone.join("target")).unwrap();
    std::os::unix::fs::symlink(source.join("target/release"), clone.join("target/release"))
        .unwrap();
    let out = Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(&block)
        .current_dir(&clone)
        .env("HOME", dir.path())
        .env("MARGO_GITOPS_CACHE_DIR", dir.path().join("cache"))
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "prepared poc-app 1.0.0",
        "published poc-app 1.0.0",
        "committed: desired state",
        "desired: ",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing from:\n{stdout}"
        );
    }
    // umoci and skopeo read what it left.
    let tags = run(Command::new("umoci")
        .args(["ls", "--layout"])
        .arg(clone.join("target/oci/poc-app")));
    let tags = String::from_utf8_lossy(&tags.stdout).to_string();
    assert!(tags.lines().any(|t| t == "1.0.0"), "{tags}");
    let referrers_tag = tags
        .lines()
        .find(|t| t.starts_with("sha256-"))
        .expect("the signature's referrers tag");
    let index = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!(
            "oci:{}:{referrers_tag}",
            clone.join("target/oci/poc-app").display()
        )));
    let index: serde_json::Value = serde_json::from_slice(&index.stdout).unwrap();
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let desired = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!(
            "oci:{}:desired",
            clone.join("target/oci/poc-app-desired").display()
        )));
    let m: serde_json::Value = serde_json::from_slice(&desired.stdout).unwrap();
    assert_eq!(m["artifactType"], "application/vnd.margo.desired-state.v1");
    let package = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!(
            "oci:{}:1.0.0",
            clone.join("target/oci/poc-app").display()
        )));
    let p: serde_json::Value = serde_json::from_slice(&package.stdout).unwrap();
    assert_eq!(
        p["artifactType"],
        "application/vnd.org.margo.component.compose+json"
    );
}
