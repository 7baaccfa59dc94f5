//! `margo-gitops ci` in a simulated GitHub Actions job: event payload files for push,
//! pull_request and workflow_dispatch, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files, the
//! Actions token endpoint of the Sigstore stand-in, a real registry, and a stand-in of
//! GitHub's REST API for the pull-request comment.

use std::path::PathBuf;
use std::process::{Child, Command, Output};

use crate::desired::{git_commit, gitops_repo, head};
use crate::util::{Env, Registry, SigstoreStandIn, ACTIONS_ISSUER, WORKFLOW_IDENTITY};

const GITHUB_TOKEN: &str = "ghs_standin_token_never_printed";
const MARKER: &str = "<!-- margo-gitops:desired-state-diff -->";

/// Stand-in for GitHub's REST API (`tests/support/github_api_standin.py`).
struct GitHubApiStandIn {
    url: String,
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
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.log");
        let state = dir.path().join("comments.json");
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support/github_api_standin.py");
        let (child, port) = crate::util::spawn_listening(
            Command::new("python3")
                .arg(script)
                .arg(GITHUB_TOKEN)
                .arg(&log)
                .arg(&state),
        );
        GitHubApiStandIn {
            url: format!("http://127.0.0.1:{port}"),
            log,
            state,
            child,
            _dir: dir,
        }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn comments(&self) -> Vec<serde_json::Value> {
        std::fs::read(&self.state)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }
}

/// One simulated job step: the event file, the output and summary files.
struct Job<'a> {
    env: &'a Env,
    name: &'a str,
}

impl Job<'_> {
    fn run(
        &self,
        event_name: &str,
        event: serde_json::Value,
        sha: &str,
        extra: &[(&str, String)],
    ) -> (Output, String, String) {
        let dir = self.env.path(&format!("job-{}", self.name));
        std::fs::create_dir_all(&dir).unwrap();
        let event_path = dir.join("event.json");
        std::fs::write(&event_path, event.to_string()).unwrap();
        let output = dir.join("output");
        let summary = dir.join("summary.md");
        let mut c = self.env.cmd();
        c.arg("ci")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", event_name)
            .env("GITHUB_EVENT_PATH", &event_path)
            .env("GITHUB_SHA", sha)
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_REPOSITORY", "margo-gitops/poc-app")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_TOKEN", GITHUB_TOKEN);
        for (k, v) in extra {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (
            out,
            std::fs::read_to_string(&output).unwrap_or_default(),
            std::fs::read_to_string(&summary).unwrap_or_default(),
        )
    }
}

fn outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// No token in what a job shows, except the runner's own `::add-mask::` command.
fn assert_no_secret(texts: &[&str]) {
    for t in texts {
        for line in t.lines().filter(|l| !l.starts_with("::add-mask::")) {
            assert!(
                !line.contains(GITHUB_TOKEN),
                "the GitHub token leaked: {line}"
            );
            assert!(
                !line.contains("eyJhbGciOi"),
                "an identity token leaked: {line}"
            );
            assert!(
                !line.contains(crate::util::ACTIONS_REQUEST_TOKEN),
                "the request token leaked: {line}"
            );
        }
    }
}

#[test]
fn a_push_of_five_commits_publishes_the_signed_package_and_five_versions() {
    let reg = Registry::plain();
    let sig = SigstoreStandIn::start();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let first = head(&env);
    for i in 2..=6 {
        env.write(
            "deployments/site-0001.yaml",
            &format!("siteId: site-000{i}\npollFrequency: 30s\n"),
        );
        if i == 4 {
            // A new app version in the push: its package is published, signed.
            env.write("app/web.env", "REDIS_HOST=redis\nGREETING=hello\n");
            let margo = std::fs::read_to_string(env.work().join("app/margo.yaml")).unwrap();
            env.write(
                "app/margo.yaml",
                &margo.replace("version: 1.2.0", "version: 1.3.0"),
            );
        }
        git_commit(
            &env,
            &format!("2024-01-1{i}T03:04:05Z"),
            &format!("site {i}"),
        );
    }
    let last = head(&env);
    let mut actions_env: Vec<(&str, String)> = sig.actions_env().to_vec();
    actions_env.push((
        "SIGSTORE_TRUST_CONFIG",
        sig.trust_config().display().to_string(),
    ));
    actions_env.push((
        "MARGO_GITOPS_IMAGES",
        format!(
            "# built by the job\nweb={}\n",
            crate::util::fixtures().oci_archive.display()
        ),
    ));
    let job = Job {
        env: &env,
        name: "push",
    };
    let event = serde_json::json!({
        "ref": "refs/heads/main",
        "before": first,
        "after": last,
        "repository": {"default_branch": "main", "full_name": "margo-gitops/poc-app"}
    });
    let (out, output, summary) = job.run("push", event, &last, &actions_env);
    assert!(out.status.success(), "{}", text(&out));
    let o = outputs(&output);
    assert_eq!(o["package-ref"], reg.repo("acme/poc-app:1.3.0"));
    assert!(o["package-digest"].starts_with("sha256:"));
    assert_eq!(o["desired-tag"], "20240116030405");
    assert_eq!(
        o["desired-ref"],
        reg.repo("acme/poc-app-desired:20240116030405")
    );
    assert!(o["desired-digest"].starts_with("sha256:"), "{output}");
    let versions: Vec<String> = reg
        .tags("acme/poc-app-desired")
        .into_iter()
        .filter(|t| t.starts_with("2024"))
        .collect();
    assert_eq!(
        versions.len(),
        5,
        "one version per pushed commit: {versions:?}"
    );
    assert!(
        !versions.contains(&"20240102030405".to_string()),
        "{versions:?}"
    );
    assert!(
        summary.contains("| package |") && summary.contains("| desired state |"),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "https://github.example/margo-gitops/poc-app/commit/{last}"
        )),
        "{summary}"
    );
    assert!(summary.contains("5 version(s) published"), "{summary}");

    // The package was signed keylessly through the Actions token path, and it verifies.
    env.cmd()
        .args(["package", "verify", "--plain-http", &o["package-ref"]])
        .args(["--certificate-identity", WORKFLOW_IDENTITY])
        .args(["--certificate-oidc-issuer", ACTIONS_ISSUER])
        .arg("--trust-config")
        .arg(sig.trust_config())
        .assert()
        .success();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("::add-mask::"),
        "the fetched identity token is masked"
    );

    // workflow_dispatch with mirror: true backfills what the push did not cover.
    let job = Job {
        env: &env,
        name: "dispatch",
    };
    let event = serde_json::json!({
        "ref": "refs/heads/main",
        "inputs": {"mirror": "true"},
        "repository": {"default_branch": "main"}
    });
    let (again, _, dispatch_summary) = job.run("workflow_dispatch", event, &last, &actions_env);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        dispatch_summary.contains("history backfill"),
        "{dispatch_summary}"
    );
    assert!(reg
        .tags("acme/poc-app-desired")
        .contains(&"20240102030405".to_string()));
    assert_no_secret(&[
        &text(&out),
        &output,
        &summary,
        &text(&again),
        &dispatch_summary,
    ]);
}

#[test]
fn a_pull_request_gets_one_comment_updated_in_place_and_annotations() {
    let reg = Registry::plain();
    let api = GitHubApiStandIn::start();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let base = head(&env);
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-0042\npollFrequency: 30s\n",
    );
    git_commit(&env, "2024-02-01T00:00:00Z", "move to site 42");
    let good_head = head(&env);
    let writes = reg.writes();
    let pr = |head: &str| {
        serde_json::json!({
            "number": 7,
            "pull_request": {"number": 7, "base": {"sha": base}, "head": {"sha": head}},
            "repository": {"default_branch": "main"}
        })
    };
    let api_env = [("GITHUB_API_URL", api.url.clone())];
    let job = Job {
        env: &env,
        name: "pr-1",
    };
    let (first, _, summary) = job.run("pull_request", pr(&good_head), &good_head, &api_env);
    assert!(first.status.success(), "{}", text(&first));
    let comments = api.comments();
    assert_eq!(comments.len(), 1);
    let body = comments[0]["body"].as_str().unwrap();
    assert!(body.contains(MARKER));
    assert!(body.contains("site-0042"), "{body}");
    assert!(summary.contains("site-0042"), "{summary}");

    // A second push to the pull request adds a broken deployment document.
    env.write(
        "deploy/extra.yaml",
        "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10\nmetadata:\n  name: extra\n  annotations:\n    applicationId: PoC_App\nspec:\n  deploymentProfile:\n    type: compose\n    components:\n      - name: poc-app\n        properties:\n          repository: oci://ghcr.io/acme/poc-app\n          revision: 1.0.0\n",
    );
    git_commit(&env, "2024-02-02T00:00:00Z", "add a broken deployment");
    let bad_head = head(&env);
    let job = Job {
        env: &env,
        name: "pr-2",
    };
    let (second, _, _) = job.run("pull_request", pr(&bad_head), &bad_head, &api_env);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=deploy/extra.yaml,line=7::")),
        "{stdout}"
    );
    let comments = api.comments();
    assert_eq!(comments.len(), 1, "updated in place, never duplicated");
    assert!(comments[0]["body"]
        .as_str()
        .unwrap()
        .contains("deploy/extra.yaml:7"));
    let requests = api.requests();
    let creates = requests
        .iter()
        .filter(|r| r.starts_with("POST") && r.ends_with("/issues/7/comments"));
    assert_eq!(creates.count(), 1, "{requests:?}");
    let updates = requests.iter().filter(|r| r.contains("/issues/comments/"));
    assert_eq!(updates.count(), 1, "{requests:?}");
    assert_eq!(reg.writes(), writes, "a pull request pushes nothing");

    // A wrong token: a clear failure that does not echo the token.
    let job = Job {
        env: &env,
        name: "pr-3",
    };
    let mut bad = api_env.to_vec();
    bad.push(("MARGO_GITOPS_GITHUB_TOKEN", "ghs_wrong_token_xyz".into()));
    let (refused, _, _) = job.run("pull_request", pr(&good_head), &good_head, &bad);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains("Bad credentials"),
        "{}",
        text(&refused)
    );
    assert!(!text(&refused).contains("ghs_wrong_token_xyz"));
    assert_no_secret(&[&text(&first), &text(&second), &summary, body]);
}
