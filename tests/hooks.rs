//! Git hooks: pushes to a real bare repository with the hook installed, and the pre-commit
//! framework running this repository's hooks on a sample repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{run, Env};

const GOOD: &str = "apiVersion: application.margo.org/v1alpha1
kind: ApplicationDeployment
metadata:
  annotations:
    id: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10
    applicationId: poc-app
  name: site-0001
  namespace: margo
spec:
  deploymentProfile:
    type: compose
    components:
      - name: poc-app
        properties:
          repository: oci://ghcr.io/acme/poc-app
          revision: 1.0.0
  parameters: {}
";

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("margo-gitops")
}

/// `git ARGS` in `dir`, with the hook finding margo-gitops through MARGO_GITOPS_BIN.
fn git(env: &Env, dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.org"])
        .args(args)
        .env("HOME", env.path("home"))
        .env("MARGO_GITOPS_BIN", bin())
        .env("GIT_AUTHOR_DATE", "2024-03-04T05:06:07Z")
        .env("GIT_COMMITTER_DATE", "2024-03-04T05:06:07Z")
        .output()
        .unwrap()
}

/// A work repository cloned from a bare remote, with one good commit pushed.
fn repo_with_remote(env: &Env) -> PathBuf {
    run(Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(env.path("remote.git")));
    run(Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(env.work()));
    git(
        env,
        &env.work(),
        &[
            "remote",
            "add",
            "origin",
            env.path("remote.git").to_str().unwrap(),
        ],
    );
    env.write("deploy/site-0001.yaml", GOOD);
    env.write("README.md", "sample\n");
    git(env, &env.work(), &["add", "-A"]);
    git(env, &env.work(), &["commit", "-qm", "first"]);
    env.cli("hook install")
        .assert()
        .success()
        .stdout(predicates::str::contains("installed the pre-push hook"));
    let out = git(env, &env.work(), &["push", "-q", "origin", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.work()
}

fn remote_head(env: &Env) -> String {
    let out = run(Command::new("git")
        .arg("--git-dir")
        .arg(env.path("remote.git"))
        .args(["rev-parse", "main"]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn a_broken_document_is_refused_with_commit_file_line_and_reason_and_its_fix_passes() {
    let env = Env::new();
    let work = repo_with_remote(&env);
    let before = remote_head(&env);
    env.write(
        "deploy/site-0001.yaml",
        &GOOD.replace("applicationId: poc-app", "applicationId: PoC_App"),
    );
    git(&env, &work, &["commit", "-qam", "rename the app"]);
    // A commit that does not touch deployments follows; the broken one is still found.
    env.write("README.md", "sample, edited\n");
    git(&env, &work, &["commit", "-qam", "docs"]);
    let short =
        String::from_utf8(git(&env, &work, &["rev-parse", "--short=7", "HEAD~1"]).stdout).unwrap();
    let out = git(&env, &work, &["push", "-q", "origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "{} deploy/site-0001.yaml:6: metadata.annotations.applicationId: `PoC_App` must match",
            short.trim()
        )),
        "{stderr}"
    );
    assert_eq!(remote_head(&env), before, "nothing was pushed");

    env.write("deploy/site-0001.yaml", GOOD);
    git(&env, &work, &["commit", "-qam", "fix the app id"]);
    let out = git(&env, &work, &["push", "-q", "origin", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("margo-gitops"),
        "a good push passes quietly"
    );
    assert_ne!(remote_head(&env), before);
}

#[test]
fn a_template_that_does_not_render_is_refused() {
    let env = Env::new();
    let work = repo_with_remote(&env);
    env.write(
        ".margo-gitops.yaml",
        "packageRepository: ghcr.io/acme/poc-app\ntemplate: site.yaml.j2\ndeployments:\n  - name: site-0001\n    values: [values.yaml]\n",
    );
    env.write("margo.yaml", "metadata:\n  id: poc-app\n  version: 1.0.0\n");
    env.write("values.yaml", "siteId: s1\n");
    env.write("site.yaml.j2", "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: {{ deployment.id }}\nmetadata:\n  name: {{ deployment.name }}\n  namespace: {{ deployment.namespace }}\n  annotations:\n    applicationId: {{ app.id }}\nspec:\n  deploymentProfile:\n    type: compose\n    components:\n      - name: {{ app.id }}\n        properties:\n          repository: {{ package.oci }}\n          revision: {{ package.tag }}\n  parameters:\n    siteId:\n      value: {{ values.siteId }}\n      targets:\n        - pointer: ENV.SITE_ID\n          components: [{{ values.component }}]\n");
    git(&env, &work, &["add", "-A"]);
    git(&env, &work, &["commit", "-qm", "render the site"]);
    let out = git(&env, &work, &["push", "-q", "origin", "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("site.yaml.j2:22: undefined value"),
        "{stderr}"
    );
    assert!(stderr.contains("values.component"), "{stderr}");
    // Offline, the package digest is a placeholder that validation accepts: with the
    // template fixed, the push goes through without any registry.
    env.write("values.yaml", "siteId: s1\ncomponent: poc-app\n");
    git(&env, &work, &["commit", "-qam", "name the component"]);
    let out = git(&env, &work, &["push", "-q", "origin", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn install_respects_hooks_path_and_never_overwrites_a_foreign_hook() {
    let env = Env::new();
    run(Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(env.work()));
    git(
        &env,
        &env.work(),
        &["config", "core.hooksPath", ".githooks"],
    );
    env.write(".githooks/pre-push", "#!/bin/sh\necho team hook\n");
    env.cli("hook install")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(".githooks/pre-push"))
        .stderr(predicates::str::contains("--force"));
    assert_eq!(
        std::fs::read_to_string(env.work().join(".githooks/pre-push")).unwrap(),
        "#!/bin/sh\necho team hook\n"
    );
    env.cli("hook uninstall")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not margo-gitops's"));
    env.cli("hook install --force")
        .assert()
        .success()
        .stdout(predicates::str::contains("replaced"));
    let installed = std::fs::read_to_string(env.work().join(".githooks/pre-push")).unwrap();
    assert!(installed.contains("hook pre-push"));
    env.cli("hook install")
        .assert()
        .success()
        .stdout(predicates::str::contains("already installed"));
    env.cli("hook uninstall")
        .assert()
        .success()
        .stdout(predicates::str::contains("removed"));
    assert!(!env.work().join(".githooks/pre-push").exists());
}

#[test]
fn the_pre_commit_framework_runs_our_hooks() {
    let env = Env::new();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rev = String::from_utf8(
        run(Command::new("git")
            .current_dir(source)
            .args(["rev-parse", "HEAD"]))
        .stdout,
    )
    .unwrap();
    run(Command::new("git")
        .args(["init", "-q", "-b", "main"])
        .arg(env.work()));
    env.write(
        ".pre-commit-config.yaml",
        &format!(
            "repos:\n  - repo: {}\n    rev: {}\n    hooks:\n      - id: margo-gitops-validate\n",
            source.display(),
            rev.trim()
        ),
    );
    env.write(
        "deploy/site.yaml",
        &GOOD.replace("revision: 1.0.0", "revision: latest"),
    );
    env.write("other.yaml", "kind: NotOurs\n");
    git(&env, &env.work(), &["add", "-A"]);
    // The crates cargo already has, not a fresh download into the test's HOME.
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let pre_commit = |dir: &Path| {
        // As a module, so that no PATH shim of the Python install is needed.
        Command::new("python3")
            .current_dir(dir)
            .args(["-m", "pre_commit", "run", "--all-files"])
            .env("HOME", env.path("home"))
            .env("PRE_COMMIT_HOME", env.path("pre-commit-home"))
            // A fast, cached build of the hook: this is a test of the integration, not of speed.
            .env("CARGO_HOME", cargo_home.clone())
            .env("CARGO_TARGET_DIR", source.join("target/pre-commit"))
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "64")
            .output()
            .expect("pre-commit (PyPI) is installed")
    };
    let out = pre_commit(&env.work());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("deploy/site.yaml:16: spec.deploymentProfile.components[0].properties.revision: `latest` is not a SemVer version"), "{stdout}");
    assert!(
        !stdout.contains("other.yaml"),
        "files that are not deployments are left alone: {stdout}"
    );
    env.write("deploy/site.yaml", GOOD);
    git(&env, &env.work(), &["add", "-A"]);
    let out = pre_commit(&env.work());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
