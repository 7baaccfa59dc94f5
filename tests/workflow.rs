//! The README's workflow (`docs/examples/gitops.yml`) and `action.yml`, run the way GitHub
//! runs them by the runner stand-in (`tests/support/actions_runner_standin.py`), with only
//! the inputs the README sets: a push to main, dispatches from main and from a feature
//! branch, a pull request and a fork's. The action is installed from its release
//! (`scripts/release.sh`, archives served by the GitHub stand-in); GHCR is a registry the
//! runner reaches as `ghcr.io` through a proxy, taking each job's token with the
//! permissions the job declared; keyless signing goes to the Sigstore stand-in, whose trust
//! config the runner machine names in SIGSTORE_TRUST_CONFIG.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::desired::{git_commit, head};
use crate::util::actions::{git, ActionRepo, Runner, ACTION};
use crate::util::github::GitHubApiStandIn;
use crate::util::{
    fixtures, margo_yaml, Env, Registry, SigstoreStandIn, ACTIONS_ISSUER, ACTIONS_REQUEST_TOKEN,
    PASSWORD, USER, WORKFLOW_IDENTITY,
};

const MARKER: &str = "<!-- margo-gitops:desired-state-diff -->";
/// As GitHub spells it: a capital in the owner.
const REPOSITORY: &str = "Acme/poc-app";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Everything a run needs: GHCR, Sigstore, the released action, the GitHub stand-in, and
/// the vendor's repository (its app's images on GHCR; no repository named anywhere, so the
/// action's defaults decide: ghcr.io/acme/poc-app and ghcr.io/acme/poc-app-desired).
struct World {
    ghcr: Registry,
    sigstore: SigstoreStandIn,
    _action: ActionRepo,
    api: GitHubApiStandIn,
    env: Env,
    runner: Runner,
}

impl World {
    fn new(extra_api_flags: &[&str]) -> World {
        let ghcr = Registry::ghcr();
        let sigstore = SigstoreStandIn::start();
        let action = ActionRepo::released();
        let tokens = ghcr.tokens_file().display().to_string();
        let files = action.files.display().to_string();
        let mut flags = vec!["--tokens", &tokens, "--files", &files];
        flags.extend_from_slice(extra_api_flags);
        let api = GitHubApiStandIn::start_with(&flags);
        let env = Env::new();
        ghcr.push_with_skopeo(&fixtures().oci("web"), "acme/poc-app-web:1.0");
        ghcr.push_with_skopeo(&fixtures().oci("multi"), "acme/redis:alpine");
        env.write(
            "app/compose.yaml",
            "name: poc-app\nservices:\n  web:\n    image: ghcr.io/acme/poc-app-web:1.0\n    ports: [\"5000:5000\"]\n  redis:\n    image: ghcr.io/acme/redis:alpine\n",
        );
        env.write("app/margo.yaml", &margo_yaml("poc-app", "1.2.0"));
        env.write(
            ".margo-gitops.yaml",
            "app: app\ndeployments:\n  - name: poc-app-site-0001\n    values: [deployments/site-0001.yaml]\n",
        );
        env.write(
            "deployments/site-0001.yaml",
            "siteId: site-0001\npollFrequency: 30s\n",
        );
        git_commit(&env, "2024-01-02T03:04:05Z", "first desired state");
        let mut machine = ghcr.network_env();
        machine.push((
            "SIGSTORE_TRUST_CONFIG".into(),
            sigstore.trust_config().display().to_string(),
        ));
        let work = env.path("runner");
        std::fs::create_dir_all(&work).unwrap();
        let runner = Runner {
            workflow: root().join("docs/examples/gitops.yml"),
            origin: env.work(),
            repository: REPOSITORY.into(),
            work,
            env: machine,
            uses: vec![(ACTION.into(), action.origin.clone())],
            github: api.url.clone(),
            tokens: Some(ghcr.tokens_file()),
            oidc: Some((
                format!("{}/actions-token?api-version=2.0", sigstore.url),
                ACTIONS_REQUEST_TOKEN.into(),
            )),
        };
        World {
            ghcr,
            sigstore,
            _action: action,
            api,
            env,
            runner,
        }
    }

    /// Commits a new site on `branch` (created from main when new); the commit.
    fn commit_site(&self, branch: &str, site: &str, date: &str) -> String {
        let work = self.env.work();
        git(&work, &["checkout", "-q", "-B", branch]);
        self.env.write(
            "deployments/site-0001.yaml",
            &format!("siteId: {site}\npollFrequency: 30s\n"),
        );
        git_commit(&self.env, date, site);
        let commit = head(&self.env);
        git(&work, &["checkout", "-q", "main"]);
        commit
    }
}

fn repository_event() -> serde_json::Value {
    json!({"default_branch": "main", "full_name": REPOSITORY})
}

/// The job's own token and the Actions request token appear nowhere in what it printed,
/// except in the runner's `::add-mask::` command.
fn assert_no_secret(run: &crate::util::actions::Run, job: &str) {
    let token = run.job(job)["token"].as_str().unwrap().to_string();
    let log = run.log(job);
    for line in log.lines().filter(|l| !l.starts_with("::add-mask::")) {
        for secret in [
            token.as_str(),
            ACTIONS_REQUEST_TOKEN,
            PASSWORD,
            "eyJhbGciOi",
        ] {
            assert!(!line.contains(secret), "a secret leaked: {line}");
        }
    }
    assert!(
        !run.job(job)["summary"]
            .as_str()
            .unwrap_or_default()
            .contains(&token),
        "the token is in the summary"
    );
}

/// The workspace's `.git/config` keeps no credential (`persist-credentials: false`).
fn assert_no_persisted_credentials(run: &crate::util::actions::Run, job: &str) {
    let config = std::fs::read_to_string(run.workspace(job).join(".git/config")).unwrap();
    let token = run.job(job)["token"].as_str().unwrap();
    assert!(
        !config.contains("extraheader") && !config.contains(token),
        "{config}"
    );
}

fn permissions(run: &crate::util::actions::Run, job: &str) -> serde_json::Value {
    run.job(job)["permissions"].clone()
}

#[test]
fn the_runner_stand_ins_expression_language_behaves_as_githubs() {
    let out = Command::new("python3")
        .arg(root().join("tests/support/actions_expressions.py"))
        .arg("--self-test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("expression checks passed"));
}

#[test]
fn the_readme_workflow_publishes_on_push_with_the_actions_own_defaults() {
    let w = World::new(&[]);
    let first = head(&w.env);
    let second = w.commit_site("main", "site-0002", "2024-01-03T00:00:00Z");
    let event = json!({
        "ref": "refs/heads/main", "before": first, "after": second,
        "repository": repository_event(),
    });
    let run = w.runner.run("push", event, &second, "refs/heads/main");
    assert_eq!(run.result("review"), "skipped");
    assert_eq!(run.result("publish"), "success", "{}", run.log("publish"));

    // Least privilege: the job that publishes cannot comment, and got an OIDC identity.
    assert_eq!(
        permissions(&run, "publish"),
        json!({"contents": "read", "packages": "write", "id-token": "write", "metadata": "read"})
    );
    // The binary came from the release, checked against the pin of the tag it runs at.
    let install = run
        .steps("publish")
        .into_iter()
        .find(|s| s["name"] == "Install margo-gitops")
        .unwrap()
        .clone();
    let installed = install["stdout"].as_str().unwrap();
    assert!(
        installed.contains("installed margo-gitops") && installed.contains("verified"),
        "{installed}"
    );

    // Published where the defaults say, the owner lowercased, and signed keylessly.
    let outputs = &run.step("publish", "run")["outputs"];
    assert_eq!(outputs["package-ref"], "ghcr.io/acme/poc-app:1.2.0");
    assert_eq!(
        outputs["desired-ref"],
        "ghcr.io/acme/poc-app-desired:20240103000000"
    );
    assert!(w.ghcr.tags("acme/poc-app").contains(&"1.2.0".to_string()));
    let versions = w.ghcr.tags("acme/poc-app-desired");
    assert!(
        versions.contains(&"20240103000000".to_string()) && versions.contains(&"desired".into()),
        "{versions:?}"
    );
    let mut verify = w.env.cmd();
    verify
        .args(["package", "verify"])
        .arg(w.ghcr.repo("acme/poc-app:1.2.0"))
        .args(w.ghcr.flags())
        .args(["--username", USER, "--password-stdin"])
        .args(["--certificate-identity", WORKFLOW_IDENTITY])
        .args(["--certificate-oidc-issuer", ACTIONS_ISSUER])
        .arg("--trust-config")
        .arg(w.sigstore.trust_config())
        .write_stdin(PASSWORD)
        .assert()
        .success();
    assert_no_persisted_credentials(&run, "publish");
    assert_no_secret(&run, "publish");
    // Nothing went anywhere but the stand-ins: the proxy was asked for ghcr.io only.
    let proxied = w.ghcr.proxy_log();
    assert!(!proxied.is_empty());
    assert!(
        proxied
            .iter()
            .all(|l| l.starts_with("CONNECT ghcr.io:443 ->")),
        "{proxied:?}"
    );

    // A dispatch from a feature branch: the publish job does not even start (no token
    // that may write is minted), and nothing is pushed. (`margo-gitops ci` itself refuses
    // it too, for workflows without that condition: `ci.rs`.)
    let feature = w.commit_site("feature", "site-9999", "2024-01-04T00:00:00Z");
    let writes = w.ghcr.writes();
    let event = json!({
        "ref": "refs/heads/feature", "inputs": {"mirror": "false"},
        "repository": repository_event(),
    });
    let run = w
        .runner
        .run("workflow_dispatch", event, &feature, "refs/heads/feature");
    assert_eq!(run.result("publish"), "skipped");
    assert_eq!(run.result("review"), "skipped");
    assert_eq!(w.ghcr.writes(), writes, "a feature branch pushed something");
    assert!(!w
        .ghcr
        .tags("acme/poc-app-desired")
        .contains(&"20240104000000".to_string()));

    // A dispatch from main is a push: the commit after `desired` is published.
    let third = w.commit_site("main", "site-0003", "2024-01-05T00:00:00Z");
    let event = json!({
        "ref": "refs/heads/main", "inputs": {"mirror": false},
        "repository": repository_event(),
    });
    let run = w
        .runner
        .run("workflow_dispatch", event, &third, "refs/heads/main");
    assert_eq!(run.result("publish"), "success", "{}", run.log("publish"));
    assert_eq!(
        run.step("publish", "run")["outputs"]["desired-tag"],
        "20240105000000"
    );

    // A dispatch from main with mirror: true backfills the history (the first commit too).
    let event = json!({
        "ref": "refs/heads/main", "inputs": {"mirror": true},
        "repository": repository_event(),
    });
    let run = w
        .runner
        .run("workflow_dispatch", event, &third, "refs/heads/main");
    assert_eq!(run.result("publish"), "success", "{}", run.log("publish"));
    assert!(w
        .ghcr
        .tags("acme/poc-app-desired")
        .contains(&"20240102030405".to_string()));
    assert_no_secret(&run, "publish");

    // The weekly schedule signs what `desired` holds again, and publishes nothing else.
    let signers = || {
        let out = w
            .env
            .cmd()
            .args(["desired-state", "show"])
            .arg(w.ghcr.repo("acme/poc-app-desired"))
            .args(w.ghcr.flags())
            .args(["--username", USER, "--password-stdin"])
            .write_stdin(PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&format!("signed by {WORKFLOW_IDENTITY}")))
            .count()
    };
    let before = signers();
    assert!(
        before >= 1,
        "the push signed the version `desired` moved to"
    );
    let versions = |w: &World| {
        let mut t = w.ghcr.tags("acme/poc-app-desired");
        t.retain(|t| !t.starts_with("sha256-"));
        t
    };
    let tags = versions(&w);
    let event = json!({"schedule": "17 4 * * 1", "repository": repository_event()});
    let run = w.runner.run("schedule", event, &third, "refs/heads/main");
    assert_eq!(run.result("review"), "skipped");
    assert_eq!(run.result("publish"), "success", "{}", run.log("publish"));
    assert_eq!(signers(), before + 1, "{}", run.log("publish"));
    assert_eq!(versions(&w), tags, "no version published, no tag moved");
    assert_no_secret(&run, "publish");
}

/// The `pull_request` event of pull request `number` from `head` on `feature` into main at
/// `base`; from a fork's repository when `fork`.
fn pull_request(number: u64, base: &str, head: &str, fork: bool) -> serde_json::Value {
    let head_repo = if fork { "mallory/poc-app" } else { REPOSITORY };
    json!({
        "action": "synchronize", "number": number,
        "pull_request": {
            "number": number,
            "base": {"sha": base, "ref": "main", "repo": {"full_name": REPOSITORY, "fork": false}},
            "head": {"sha": head, "ref": "feature", "repo": {"full_name": head_repo, "fork": fork}},
        },
        "repository": repository_event(),
    })
}

#[test]
fn a_pull_request_is_reviewed_by_a_job_that_cannot_publish_and_keeps_to_its_own_comment() {
    const MALLORY: &str = "ghp_mallory_personal_token";
    let w = World::new(&["--user", &format!("{MALLORY}=mallory")]);
    let base = head(&w.env);
    let pr_head = w.commit_site("feature", "site-0042", "2024-02-01T00:00:00Z");
    // Someone else's comment carries the marker: it is not ours to update.
    let theirs = format!("{MARKER}\nnothing to see here, merge it");
    w.api.comment_as(MALLORY, REPOSITORY, 7, &theirs);
    let writes = w.ghcr.writes();

    let run = w.runner.run(
        "pull_request",
        pull_request(7, &base, &pr_head, false),
        &pr_head,
        "refs/pull/7/merge",
    );
    assert_eq!(run.result("publish"), "skipped");
    assert_eq!(run.result("review"), "success", "{}", run.log("review"));
    // As on GitHub, the job ran on the merge of the head into the base.
    let merge = run.report["sha"].as_str().unwrap().to_string();
    assert_ne!(merge, pr_head);
    assert_eq!(
        git(&run.workspace("review"), &["rev-parse", "HEAD^1", "HEAD^2"]),
        format!("{base}\n{pr_head}")
    );
    assert_eq!(
        permissions(&run, "review"),
        json!({"contents": "read", "packages": "read", "pull-requests": "write", "metadata": "read"})
    );
    assert_eq!(run.job("review")["id_token"], false, "no OIDC identity");
    let comments = w.api.comments();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(comments[0]["body"], theirs.as_str(), "theirs is untouched");
    let ours = &comments[1];
    assert_eq!(ours["user"], "github-actions[bot]");
    assert!(
        ours["body"].as_str().unwrap().contains(MARKER)
            && ours["body"].as_str().unwrap().contains("site-0042"),
        "{ours}"
    );

    // The next push to the pull request updates our comment, not theirs.
    let pr_head = w.commit_site("feature", "site-0043", "2024-02-02T00:00:00Z");
    let run = w.runner.run(
        "pull_request",
        pull_request(7, &base, &pr_head, false),
        &pr_head,
        "refs/pull/7/merge",
    );
    assert_eq!(run.result("review"), "success", "{}", run.log("review"));
    let comments = w.api.comments();
    assert_eq!(comments.len(), 2, "{comments:?}");
    assert_eq!(comments[0]["body"], theirs.as_str());
    assert!(comments[1]["body"].as_str().unwrap().contains("site-0043"));
    let ours_id = comments[1]["id"].as_u64().unwrap();
    let update = format!("/repos/{REPOSITORY}/issues/comments/{ours_id}");
    assert!(
        w.api.requests().iter().any(|r| r.ends_with(&update)),
        "{:?}",
        w.api.requests()
    );
    assert_no_persisted_credentials(&run, "review");
    assert_no_secret(&run, "review");

    // A fork's pull request (its head on no branch here, only under refs/pull/8/head): a
    // read-only token, the review in the step summary.
    let fork_head = w.commit_site("fork", "site-0044", "2024-02-03T00:00:00Z");
    git(&w.env.work(), &["branch", "-q", "-D", "fork"]);
    let pr_head = fork_head;
    let run = w.runner.run(
        "pull_request",
        pull_request(8, &base, &pr_head, true),
        &pr_head,
        "refs/pull/8/merge",
    );
    assert_eq!(run.result("review"), "success", "{}", run.log("review"));
    assert_eq!(
        permissions(&run, "review"),
        json!({"contents": "read", "packages": "read", "pull-requests": "read", "metadata": "read"})
    );
    let warnings: Vec<&serde_json::Value> = run.job("review")["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["level"] == "warning")
        .collect();
    assert!(
        warnings.iter().any(|w| w["message"]
            .as_str()
            .unwrap()
            .contains("Resource not accessible by integration")),
        "{warnings:?} {}",
        run.log("review")
    );
    assert!(run.job("review")["summary"]
        .as_str()
        .unwrap()
        .contains("site-0044"));
    assert_eq!(w.api.comments().len(), 2);
    assert_eq!(w.ghcr.writes(), writes, "a pull request pushed something");
}

/// A workflow of the test's own that runs the action from its main branch (no release
/// pins: a source install) on `workflow_dispatch`, in a job that may sign.
fn source_install_workflow(dir: &Path) -> PathBuf {
    let path = dir.join("source-install.yml");
    std::fs::write(
        &path,
        "name: source install\non: workflow_dispatch\npermissions:\n  contents: read\n  id-token: write\njobs:\n  gitops:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n        with:\n          fetch-depth: 0\n          persist-credentials: false\n      - uses: margo-gitops/margo-gitops@main\n        with:\n          install: source\n",
    )
    .unwrap();
    path
}

/// A `cargo` that "builds" by copying the binary under test where `cargo install --root`
/// puts it, and notes the folder and the environment it ran in (the crates' build scripts
/// would see the same).
fn fake_cargo(dir: &Path) -> PathBuf {
    let bin = dir.join("fake-toolchain");
    std::fs::create_dir_all(dir.join("cargo-runs")).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("cargo"),
        format!(
            "#!/bin/sh\ncase \"$1\" in -V|--version) echo 'cargo 1.95.0 (stand-in)'; exit 0;; esac\nn=$(date +%s%N)\nenv > {runs}/env-$n\npwd > {runs}/cwd-$n\nroot=\nwhile [ $# -gt 0 ]; do [ \"$1\" = --root ] && root=\"$2\"; shift; done\nmkdir -p \"$root/bin\" && cp {binary} \"$root/bin/margo-gitops\"\n",
            runs = dir.join("cargo-runs").display(),
            binary = env!("CARGO_BIN_EXE_margo-gitops"),
        ),
    )
    .unwrap();
    crate::util::run(Command::new("chmod").arg("755").arg(bin.join("cargo")));
    bin
}

#[test]
fn a_source_install_is_cached_right_after_its_build_and_reused_only_when_its_checksum_holds() {
    let action = ActionRepo::released();
    let api = GitHubApiStandIn::start();
    let env = Env::new();
    env.write("README.md", "an app\n");
    git_commit(&env, "2024-01-02T00:00:00Z", "first");
    let first = head(&env);
    git(&env.work(), &["branch", "feature"]);
    git(&env.work(), &["branch", "other"]);
    let toolchain = fake_cargo(env.dir.path());
    let work = env.path("runner");
    std::fs::create_dir_all(&work).unwrap();
    let runner = Runner {
        workflow: source_install_workflow(env.dir.path()),
        origin: env.work(),
        repository: REPOSITORY.into(),
        work: work.clone(),
        env: vec![(
            "PATH".into(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", toolchain.display()),
        )],
        uses: vec![(ACTION.into(), action.origin.clone())],
        github: api.url.clone(),
        tokens: None,
        oidc: Some((
            "http://127.0.0.1:9/never-called".into(),
            ACTIONS_REQUEST_TOKEN.into(),
        )),
    };
    // A dispatch from a feature branch: `ci` publishes nothing there, cheaply.
    let dispatch = |branch: &str| {
        runner.run(
            "workflow_dispatch",
            json!({"ref": format!("refs/heads/{branch}"), "inputs": {}, "repository": repository_event()}),
            &first,
            &format!("refs/heads/{branch}"),
        )
    };
    let cargo_runs = || std::fs::read_dir(env.path("cargo-runs")).unwrap().count() / 2;

    // Nothing cached: built, then saved at once, before `margo-gitops ci` runs.
    let run = dispatch("feature");
    assert_eq!(run.result("gitops"), "success", "{}", run.log("gitops"));
    assert_eq!(cargo_runs(), 1);
    let log = run.log("gitops");
    let built = log.find("building margo-gitops").expect("built");
    let saved = log.find("Cache saved with key").expect("saved");
    let ran = log.find("Run margo-gitops ci").unwrap();
    assert!(built < saved && saved < ran, "{log}");
    // The build ran in the action's folder (its toolchain, not the checkout's), without
    // the job's OIDC identity or the runner's cache token.
    let runs = env.path("cargo-runs");
    for e in std::fs::read_dir(&runs).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        if p.file_name().unwrap().to_str().unwrap().starts_with("env-") {
            assert!(!text.contains("ACTIONS_ID_TOKEN_REQUEST"), "{text}");
        } else {
            assert!(
                text.trim()
                    .ends_with("_actions/margo-gitops/margo-gitops/main"),
                "{text}"
            );
        }
    }
    assert!(
        run.job("gitops")["id_token"] == true,
        "the job itself may sign"
    );
    let warned = run.job("gitops")["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| {
            a["level"] == "warning" && a["message"].as_str().unwrap().contains("job that may sign")
        });
    assert!(
        warned,
        "a source build in a job that may sign is warned about: {log}"
    );
    let plan = run.step("gitops", "install-plan")["outputs"].clone();
    let key = plan["cache-key"].as_str().unwrap().to_string();

    // The same branch restores it: verified, not built.
    let run = dispatch("feature");
    assert_eq!(run.result("gitops"), "success", "{}", run.log("gitops"));
    assert!(
        run.log("gitops").contains("restored from the cache")
            && run.log("gitops").contains("verified"),
        "{}",
        run.log("gitops")
    );
    assert_eq!(cargo_runs(), 1);
    // Another branch does not see a feature branch's cache (only its own and main's).
    let run = dispatch("other");
    assert_eq!(run.result("gitops"), "success", "{}", run.log("gitops"));
    assert_eq!(cargo_runs(), 2);

    // A binary that is not the one recorded is not run: it is built again, and the entry,
    // which a cache never overwrites, stays as it was.
    let stored = work
        .join("actions-cache/refs_heads_feature")
        .join(key.replace(
            |c: char| !c.is_ascii_alphanumeric() && !"._-".contains(c),
            "_",
        ))
        .join("0/bin/margo-gitops");
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&stored, &bytes).unwrap();
    let run = dispatch("feature");
    assert_eq!(run.result("gitops"), "success", "{}", run.log("gitops"));
    let log = run.log("gitops");
    assert!(log.contains("recorded when it was built"), "{log}");
    assert!(log.contains("exists already, not saving"), "{log}");
    assert_eq!(cargo_runs(), 3);
}
