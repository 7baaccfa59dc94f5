//! `margo-gitops ci` in a simulated GitHub Actions job: event payload files for push,
//! pull_request and workflow_dispatch, `GITHUB_OUTPUT` and `GITHUB_STEP_SUMMARY` files, the
//! Actions token endpoint of the Sigstore stand-in, a real registry, and a stand-in of
//! GitHub's REST API for the pull-request comment.

use std::process::Output;

use crate::desired::{git_commit, gitops_repo, head};
use crate::util::github::{GitHubApiStandIn, GITHUB_TOKEN};
use crate::util::{Env, Registry, SigstoreStandIn, ACTIONS_ISSUER, WORKFLOW_IDENTITY};

const MARKER: &str = "<!-- margo-gitops:desired-state-diff -->";

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

/// `gitops_repo` and a pull request's commit on top that moves the site: (base, head).
fn pull_request_repo(env: &Env, reg: &Registry) -> (String, String) {
    gitops_repo(env, reg);
    let base = head(env);
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-0042\npollFrequency: 30s\n",
    );
    git_commit(env, "2024-02-01T00:00:00Z", "move to site 42");
    (base, head(env))
}

/// The `push` event of a push to main from `before` to `after`.
fn push_event(before: &str, after: &str) -> serde_json::Value {
    serde_json::json!({
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "repository": {"default_branch": "main"}
    })
}

/// The `pull_request` event of pull request `number` from `base` to `head`.
fn pull_request(number: u64, base: &str, head: &str) -> serde_json::Value {
    serde_json::json!({
        "number": number,
        "pull_request": {"number": number, "base": {"sha": base}, "head": {"sha": head}},
        "repository": {"default_branch": "main"}
    })
}

/// Commits a deployment document whose line 7 is wrong; returns the new head.
fn commit_broken_document(env: &Env) -> String {
    env.write(
        "deploy/extra.yaml",
        "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10\nmetadata:\n  name: extra\n  annotations:\n    applicationId: PoC_App\nspec:\n  deploymentProfile:\n    type: compose\n    components:\n      - name: poc-app\n        properties:\n          repository: oci://ghcr.io/acme/poc-app\n          revision: 1.0.0\n",
    );
    git_commit(env, "2024-02-02T00:00:00Z", "add a broken deployment");
    head(env)
}

/// Runs a pull-request job that must fail the check with the broken document's
/// annotation; returns its output and summary.
fn run_failing(
    env: &Env,
    name: &str,
    event: &serde_json::Value,
    sha: &str,
    extra: &[(&str, String)],
) -> (Output, String) {
    let job = Job { env, name };
    let (out, _, summary) = job.run("pull_request", event.clone(), sha, extra);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("::error file=deploy/extra.yaml,line=7::")),
        "{stdout}"
    );
    (out, summary)
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
    // So was the version `desired` moved to, by the same identity; the versions before it
    // are history no device is sent to, and stay unsigned.
    let verify_desired = |reference: &str| {
        env.cmd()
            .args(["desired-state", "verify", "--plain-http", reference])
            .args(["--certificate-identity", WORKFLOW_IDENTITY])
            .args(["--certificate-oidc-issuer", ACTIONS_ISSUER])
            .arg("--trust-config")
            .arg(sig.trust_config())
            .output()
            .unwrap()
    };
    let signed = verify_desired(&reg.repo("acme/poc-app-desired:desired"));
    assert!(signed.status.success(), "{}", text(&signed));
    assert!(
        text(&signed).contains(WORKFLOW_IDENTITY),
        "{}",
        text(&signed)
    );
    let older = verify_desired(&reg.repo("acme/poc-app-desired:20240115030405"));
    assert_eq!(older.status.code(), Some(1), "{}", text(&older));
    assert!(text(&older).contains("is not signed"), "{}", text(&older));

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
    let (base, good_head) = pull_request_repo(&env, &reg);
    let writes = reg.writes();
    let pr = |head: &str| pull_request(7, &base, head);
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
    let bad_head = commit_broken_document(&env);
    let (second, _) = run_failing(&env, "pr-2", &pr(&bad_head), &bad_head, &api_env);
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
    assert_eq!(
        reg.writes(),
        writes,
        "a pull request pushes nothing, no signature either"
    );

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

#[test]
fn a_pull_request_from_a_fork_gets_its_review_in_the_summary_and_its_verdict_from_the_state() {
    let reg = Registry::plain();
    let api = GitHubApiStandIn::read_only();
    let env = Env::new();
    let (base, good) = pull_request_repo(&env, &reg);
    let pr = |head: &str| pull_request(9, &base, head);
    let api_env = [("GITHUB_API_URL", api.url.clone())];
    let job = Job {
        env: &env,
        name: "fork-1",
    };
    // The token may read but not write: the check passes on the desired state alone.
    let (out, _, summary) = job.run("pull_request", pr(&good), &good, &api_env);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("::warning::"))
        .unwrap_or_else(|| panic!("a warning says why there is no comment: {stdout}"));
    assert!(
        warning.contains("403") && warning.contains("Resource not accessible by integration"),
        "{warning}"
    );
    assert!(api.comments().is_empty());
    assert!(
        api.requests()
            .iter()
            .any(|r| r == "POST /repos/margo-gitops/poc-app/issues/9/comments"),
        "the comment was tried: {:?}",
        api.requests()
    );
    assert!(
        summary.contains("site-0042"),
        "the review is in the summary: {summary}"
    );
    assert!(
        summary.contains("Not posted on the pull request"),
        "{summary}"
    );

    // A broken document still fails the check, with its annotation.
    let bad = commit_broken_document(&env);
    let (failed, failed_summary) = run_failing(&env, "fork-2", &pr(&bad), &bad, &api_env);
    assert!(
        String::from_utf8_lossy(&failed.stdout)
            .lines()
            .any(|l| l.starts_with("::warning::")),
        "{}",
        text(&failed)
    );
    assert!(
        failed_summary.contains("deploy/extra.yaml"),
        "{failed_summary}"
    );

    // No token at all: the same, and the warning says so.
    let job = Job {
        env: &env,
        name: "fork-3",
    };
    let no_token = [
        ("GITHUB_API_URL", api.url.clone()),
        ("GITHUB_TOKEN", String::new()),
    ];
    let (tokenless, _, _) = job.run("pull_request", pr(&good), &good, &no_token);
    assert!(tokenless.status.success(), "{}", text(&tokenless));
    assert!(
        String::from_utf8_lossy(&tokenless.stdout)
            .lines()
            .any(|l| l.starts_with("::warning::") && l.contains("no token")),
        "{}",
        text(&tokenless)
    );
    assert_no_secret(&[&text(&out), &text(&failed), &summary, &failed_summary]);
}

#[test]
fn a_push_configured_by_the_actions_inputs_alone_publishes_a_version_per_commit() {
    let reg = Registry::plain();
    let env = Env::new();
    env.publish_poc(&reg, "");
    // No .margo-gitops.yaml: the action's `app` and `values` inputs say it all.
    env.write(
        "sites/berlin.yaml",
        "siteId: berlin-1\npollFrequency: 30s\n",
    );
    env.write(".gitignore", "dist/\n");
    git_commit(&env, "2024-03-01T00:00:00Z", "the app and its site");
    let before = head(&env);
    for (i, site) in ["berlin-2", "berlin-3", "berlin-4"].iter().enumerate() {
        env.write(
            "sites/berlin.yaml",
            &format!("siteId: {site}\npollFrequency: 30s\n"),
        );
        git_commit(&env, &format!("2024-03-0{}T00:00:00Z", i + 2), site);
    }
    let after = head(&env);
    let inputs = [
        ("MARGO_GITOPS_APP", "app".to_string()),
        ("MARGO_GITOPS_VALUES", "sites/berlin.yaml\n".to_string()),
        ("MARGO_GITOPS_PACKAGE_REPOSITORY", reg.repo("acme/poc-app")),
        (
            "MARGO_GITOPS_DESIRED_STATE_REPOSITORY",
            reg.repo("acme/berlin-desired"),
        ),
        ("MARGO_GITOPS_PLAIN_HTTP", "true".to_string()),
        ("MARGO_GITOPS_SIGN", "none".to_string()),
    ];
    let job = Job {
        env: &env,
        name: "inputs-push",
    };
    let event = push_event(&before, &after);
    let (out, output, summary) = job.run("push", event, &after, &inputs);
    assert!(out.status.success(), "{}", text(&out));
    let versions: Vec<String> = reg
        .tags("acme/berlin-desired")
        .into_iter()
        .filter(|t| t.starts_with("2024"))
        .collect();
    assert_eq!(
        versions,
        ["20240302000000", "20240303000000", "20240304000000"],
        "one version per pushed commit: {summary}"
    );
    assert_eq!(outputs(&output)["desired-tag"], "20240304000000");
    let shown = env
        .cli("desired-state show --plain-http")
        .arg(reg.repo("acme/berlin-desired"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("berlin-4"),
        "{}",
        text(&shown)
    );

    // Two more pushes; the job of the first is cancelled (a concurrency group replaced it):
    // the second job publishes both, from what `desired` holds on.
    env.write(
        "sites/berlin.yaml",
        "siteId: berlin-5\npollFrequency: 30s\n",
    );
    git_commit(&env, "2024-03-05T00:00:00Z", "berlin-5");
    let cancelled = head(&env);
    env.write(
        "sites/berlin.yaml",
        "siteId: berlin-6\npollFrequency: 30s\n",
    );
    git_commit(&env, "2024-03-06T00:00:00Z", "berlin-6");
    let last = head(&env);
    let job = Job {
        env: &env,
        name: "inputs-push-2",
    };
    let event = push_event(&cancelled, &last);
    let (out, _, _) = job.run("push", event, &last, &inputs);
    assert!(out.status.success(), "{}", text(&out));
    let versions = reg.tags("acme/berlin-desired");
    assert!(
        versions.contains(&"20240305000000".to_string())
            && versions.contains(&"20240306000000".to_string()),
        "{versions:?}"
    );

    // An app folder that no commit has: an error that says what was looked for.
    let mut wrong = inputs.to_vec();
    wrong[0].1 = "apps/missing".into();
    let mut mirror = env.cmd();
    mirror.arg("mirror");
    for (k, v) in &wrong {
        mirror.env(k, v);
    }
    let refused = mirror.output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("apps/missing/margo.yaml")
            && text(&refused).contains("MARGO_GITOPS_APP"),
        "{}",
        text(&refused)
    );
}

#[test]
fn a_shallow_checkout_stops_with_one_line_naming_fetch_depth() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let before = head(&env);
    for i in 2..=3 {
        env.write(
            "deployments/site-0001.yaml",
            &format!("siteId: site-000{i}\npollFrequency: 30s\n"),
        );
        git_commit(
            &env,
            &format!("2024-01-1{i}T00:00:00Z"),
            &format!("site {i}"),
        );
    }
    let after = head(&env);
    // What actions/checkout does by default: one commit deep.
    crate::util::sh(&format!(
        "git clone -q --depth 1 file://{} {}",
        env.work().display(),
        env.path("shallow").display()
    ));
    let writes = reg.writes();
    let event = push_event(&before, &after);
    let dir = env.path("job-shallow");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event.json"), event.to_string()).unwrap();
    let out = env
        .cmd()
        .current_dir(env.path("shallow"))
        .arg("ci")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", dir.join("event.json"))
        .env("GITHUB_SHA", &after)
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_REPOSITORY", "margo-gitops/poc-app")
        .env("MARGO_GITOPS_SIGN", "none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains("fetch-depth: 0"), "{stderr}");
    assert_eq!(reg.writes(), writes, "nothing pushed");

    // `mirror` in the same checkout says the same.
    let out = env
        .cmd()
        .current_dir(env.path("shallow"))
        .arg("mirror")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("fetch-depth: 0"), "{}", text(&out));
}

#[test]
fn a_pull_request_that_changes_the_app_but_not_its_published_version_fails_first() {
    let reg = Registry::plain();
    let api = GitHubApiStandIn::start();
    let env = Env::new();
    gitops_repo(&env, &reg); // publishes acme/poc-app:1.2.0
    let base = head(&env);
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &compose.replace("\"5000:5000\"", "\"8080:5000\""),
    );
    git_commit(&env, "2024-02-01T00:00:00Z", "move the port");
    let changed = head(&env);
    let api_env = [("GITHUB_API_URL", api.url.clone())];
    let job = Job {
        env: &env,
        name: "no-bump",
    };
    let (out, _, summary) = job.run(
        "pull_request",
        pull_request(11, &base, &changed),
        &changed,
        &api_env,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let margo = std::fs::read_to_string(env.work().join("app/margo.yaml")).unwrap();
    let line = margo.lines().position(|l| l.contains("version:")).unwrap() + 1;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l
            .starts_with(&format!("::error file=app/margo.yaml,line={line}::"))
            && l.contains("bump metadata.version")),
        "{stdout}"
    );
    let comment = api.comments()[0]["body"].as_str().unwrap().to_string();
    let first = comment.lines().nth(3).unwrap_or_default();
    assert!(first.starts_with("**Bump the app version**"), "{comment}");
    assert!(
        comment.contains("### On the devices") && comment.contains("    + port: 8080:5000"),
        "what changes on the devices: {comment}"
    );
    assert!(summary.contains("which is published as"), "{summary}");

    // With the version bumped, the same change passes. The head also names another
    // image, not published yet: its digest is looked up in its registry, the base's comes
    // from the published package.
    env.write(
        "app/margo.yaml",
        &margo.replace("version: 1.2.0", "version: 1.3.0"),
    );
    let fx = crate::util::fixtures();
    reg.push_with_skopeo(&fx.oci("web"), "library/redis:7");
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &compose.replace("redis:alpine", "redis:7"),
    );
    git_commit(&env, "2024-02-02T00:00:00Z", "bump");
    let bumped = head(&env);
    let job = Job {
        env: &env,
        name: "bumped",
    };
    let (ok, _, _) = job.run(
        "pull_request",
        pull_request(11, &base, &bumped),
        &bumped,
        &api_env,
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let comment = api.comments()[0]["body"].as_str().unwrap().to_string();
    let redis = format!("{}/library/redis", reg.host);
    let moved = format!(
        "    ~ image: {redis}:alpine@{} → {redis}:7@{}\n",
        fx.digest("amd64"),
        fx.digest("web")
    );
    assert!(comment.contains(&moved), "{moved} in {comment}");
    assert!(comment.contains("~ version: 1.2.0 → 1.3.0"), "{comment}");
}

#[test]
fn pull_request_target_is_refused_with_what_to_use_instead() {
    let reg = Registry::plain();
    let env = Env::new();
    let (base, pr_head) = pull_request_repo(&env, &reg);
    let writes = reg.writes();
    let job = Job {
        env: &env,
        name: "target",
    };
    let (out, output, _) = job.run(
        "pull_request_target",
        pull_request(7, &base, &pr_head),
        &pr_head,
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("`pull_request_target` is refused") && said.contains("on `pull_request`"),
        "{said}"
    );
    assert!(output.is_empty());
    assert_eq!(reg.writes(), writes);
}

#[test]
fn every_input_the_action_passes_counts_as_unset_when_empty() {
    // The variables the action's `ci` step declares, each as a runner sets an input nobody
    // gave: empty.
    let action: serde_json::Value = serde_norway::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"),
        )
        .unwrap(),
    )
    .unwrap();
    let step = action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "run")
        .unwrap();
    let empty: Vec<(&str, String)> = step["env"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.as_str(), String::new()))
        .collect();
    assert!(empty.len() >= 12, "{empty:?}");
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let sha = head(&env);
    let writes = reg.writes();
    let job = Job {
        env: &env,
        name: "empty-inputs",
    };
    let mut vars = empty.clone();
    vars.push(("GITHUB_REF", "refs/heads/feature".into()));
    let event = serde_json::json!({"ref": "refs/heads/feature", "inputs": {}, "repository": {"default_branch": "main"}});
    let (out, _, summary) = job.run("workflow_dispatch", event, &sha, &vars);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "::notice title=margo-gitops::A dispatch on refs/heads/feature publishes nothing"
        ),
        "{}",
        text(&out)
    );
    assert!(summary.contains("nothing was pushed"), "{summary}");
    assert_eq!(reg.writes(), writes);
}
