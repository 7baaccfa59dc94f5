//! `mirror` and `desired-state log`: git history mirrored into OCI versions, on real git
//! repositories built with fixed dates and a real registry.

use std::process::Command;

use crate::desired::{git_commit, gitops_repo, head};
use crate::util::{run, sh, Env, Registry};

const REPO: &str = "acme/poc-app-desired";

/// Adds to `gitops_repo`'s first commit: commits that change the values, commits that
/// change nothing mirrored, a merged side branch and a revert. Returns how many commits
/// change the desired state (the first one included).
fn history(env: &Env) -> usize {
    let w = env.work();
    let mut changing = 1;
    for i in 1..=12 {
        let day = format!("2024-01-{:02}T10:00:00Z", i + 2);
        if i % 3 == 0 {
            env.write("README.md", &format!("notes {i}\n"));
            git_commit(env, &day, &format!("notes {i}"));
        } else {
            env.write(
                "deployments/site-0001.yaml",
                &format!("siteId: site-{i:04}\npollFrequency: {i}s\n"),
            );
            git_commit(env, &day, &format!("site {i}"));
            changing += 1;
        }
    }
    // A side branch changes the values; main merges it (one first-parent change).
    sh(&format!("cd {}; git checkout -q -b side", w.display()));
    env.write(
        "deployments/site-0001.yaml",
        "siteId: from-side\npollFrequency: 5s\n",
    );
    git_commit(env, "2024-01-20T10:00:00Z", "side change");
    env.write("README.md", "side notes\n");
    git_commit(env, "2024-01-21T10:00:00Z", "side notes");
    sh(&format!(
        "cd {}; git checkout -q main; GIT_AUTHOR_DATE=2024-01-22T10:00:00Z GIT_COMMITTER_DATE=2024-01-22T10:00:00Z git -c user.name=Test -c user.email=test@example.org merge -q --no-ff -m 'merge side' side",
        w.display()
    ));
    changing += 1;
    // A revert brings the state back: still a change from its parent.
    sh(&format!(
        "cd {}; GIT_AUTHOR_DATE=2024-01-23T10:00:00Z GIT_COMMITTER_DATE=2024-01-23T10:00:00Z git -c user.name=Test -c user.email=test@example.org revert --no-edit -m 1 HEAD >/dev/null",
        w.display()
    ));
    changing += 1;
    changing
}

fn version_tags(reg: &Registry) -> Vec<String> {
    reg.tags(REPO)
        .into_iter()
        .filter(|t| t != "desired")
        .collect()
}

#[test]
fn mirror_backfills_once_then_publishes_only_what_is_new() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let changing = history(&env);
    env.cli("mirror")
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "published  {changing} version(s)"
        )));
    assert_eq!(version_tags(&reg).len(), changing);
    env.cli("desired-state log --verify")
        .assert()
        .success()
        .stdout(predicates::str::contains("Revert \"merge side\""));

    // The second run publishes nothing, and asks the registry a constant few things.
    let (writes, requests) = (reg.writes(), reg.requests().len());
    env.cli("mirror")
        .assert()
        .success()
        .stdout(predicates::str::contains("up to date"));
    assert_eq!(reg.writes(), writes);
    let asked = reg.requests().len() - requests;
    assert!(
        asked <= 6,
        "a no-op mirror made {asked} requests: {:?}",
        &reg.requests()[requests..]
    );

    // New commits: only they are published, and `desired` follows the branch head.
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-new\npollFrequency: 1s\n",
    );
    git_commit(&env, "2024-02-01T00:00:00Z", "new site");
    env.write("README.md", "more notes\n");
    git_commit(&env, "2024-02-02T00:00:00Z", "more notes");
    let before = reg.requests().len();
    let existing = version_tags(&reg);
    env.cli("mirror")
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "published  1 version(s): 20240201000000",
        ))
        .stdout(predicates::str::contains(format!(
            "present    {changing} version(s)"
        )));
    // The tag list says what exists: no existing version is asked about (the one before
    // the new version is the one `desired` held).
    let asked = &reg.requests()[before..];
    assert!(asked.len() <= 20, "{} requests: {asked:?}", asked.len());
    assert!(
        !asked.iter().any(|(_, p)| existing
            .iter()
            .any(|t| p.ends_with(&format!("/manifests/{t}")))),
        "{asked:?}"
    );
    env.cli("desired-state log")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("* 20240201000000"));

    // A version replaced behind our back: trusted by default, found by --verify-existing.
    let (first, second) = (&existing[0], &existing[1]);
    reg.skopeo_copy(&format!("{REPO}:{second}"), &format!("{REPO}:{first}"));
    env.cli("mirror").assert().success();
    env.cli("mirror --verify-existing")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "version {first} holds another desired state"
        )));
}

#[test]
fn a_deleted_version_comes_back_with_the_same_digest() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    history(&env);
    env.cli("mirror").assert().success();
    let tag = "20240106100000";
    let digest_of = |tag: &str| {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}:{tag}", reg.repo(REPO))));
        crate::util::sha256_hex(&out.stdout)
    };
    let before = digest_of(tag);
    run(Command::new("skopeo")
        .args(["delete", "--tls-verify=false"])
        .arg(format!("docker://{}:{tag}", reg.repo(REPO))));
    assert!(!version_tags(&reg).contains(&tag.to_string()));
    env.cli("desired-state log --verify")
        .assert()
        .code(1)
        .stdout(predicates::str::contains("is not in the repository"));
    env.cli("mirror")
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "published  1 version(s): {tag}"
        )));
    assert_eq!(digest_of(tag), before, "rendering is reproducible");
    env.cli("desired-state log --verify").assert().success();
}

#[test]
fn a_force_push_is_reported_and_mirrored_only_when_allowed() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    history(&env);
    env.cli("mirror").assert().success();
    sh(&format!(
        "cd {}; git reset -q --hard HEAD~4",
        env.work().display()
    ));
    env.write(
        "deployments/site-0001.yaml",
        "siteId: rewritten\npollFrequency: 9s\n",
    );
    git_commit(&env, "2024-03-01T00:00:00Z", "rewritten history");
    env.cli("mirror")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("history was rewritten"))
        .stderr(predicates::str::contains("--allow-rewrite"));
    env.cli("mirror --allow-rewrite")
        .assert()
        .success()
        .stdout(predicates::str::contains("desired    now 20240301000000"));
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}:desired", reg.repo(REPO))));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["annotations"]["org.opencontainers.image.revision"],
        head(&env)
    );
}

#[test]
fn a_commit_whose_package_is_missing_fails_the_run_unless_skipped() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let writes = reg.writes();
    let margo = std::fs::read_to_string(env.work().join("app/margo.yaml")).unwrap();
    env.write(
        "app/margo.yaml",
        &margo.replace("version: 1.2.0", "version: 9.9.9"),
    );
    git_commit(
        &env,
        "2024-01-05T00:00:00Z",
        "bump to an unpublished version",
    );
    let short = &head(&env)[..7];
    env.cli("mirror")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "{short} bump to an unpublished version"
        )))
        .stderr(predicates::str::contains("--skip-missing"));
    assert_eq!(reg.writes(), writes, "nothing pushed");
    env.cli("mirror --skip-missing")
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "skipped    {short} bump to an unpublished version"
        )))
        .stdout(predicates::str::contains(
            "published  1 version(s): 20240102030405",
        ));
}

#[test]
fn mirror_signs_the_version_desired_moves_to_and_with_sign_all_every_version() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let changing = history(&env);
    let keys = env.path("keys");
    env.cli(&format!("key generate {}/k", keys.display()))
        .assert()
        .success();
    let sign = format!("--sign key:{}/k.key", keys.display());
    let key = format!("--key {}/k.pub", keys.display());
    let writes = reg.writes();
    env.cli("mirror --sign-all --sign none")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--sign-all: say how to sign"));
    env.cli(&format!("mirror --sign pgp:{}/k.key", keys.display()))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("package archives only"));
    assert_eq!(reg.writes(), writes, "nothing pushed");

    // The version `desired` moves to is signed; the history before it is not.
    env.cli(&format!("mirror {sign}"))
        .assert()
        .success()
        .stdout(predicates::str::contains("signed     1 version(s)"));
    let log = env.cli("desired-state log").output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout).into_owned();
    let mut lines = log.lines();
    assert!(lines.next().unwrap().starts_with("* "), "{log}");
    assert!(
        lines.next().unwrap().starts_with("    signed by key "),
        "{log}"
    );
    assert_eq!(
        log.lines().filter(|l| *l == "    unsigned").count(),
        changing - 1,
        "{log}"
    );
    // `log --verify` with a key checks every signature: each unsigned version is a break.
    let verified = env
        .cli(&format!("desired-state log --verify {key}"))
        .output()
        .unwrap();
    assert_eq!(verified.status.code(), Some(1));
    let text = String::from_utf8_lossy(&verified.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("is not signed")).count(),
        changing - 1,
        "{text}"
    );
    env.cli(&format!("desired-state log {key}"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("for --verify"));

    // --sign-all: every version the run publishes, each before its tag names it.
    for (i, day) in ["2024-02-01", "2024-02-02"].iter().enumerate() {
        env.write(
            "deployments/site-0001.yaml",
            &format!("siteId: signed-{i}\npollFrequency: 1s\n"),
        );
        git_commit(&env, &format!("{day}T00:00:00Z"), &format!("signed {i}"));
    }
    env.cli(&format!("mirror --sign-all {sign}"))
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "signed     2 version(s): 20240201000000, 20240202000000",
        ));
    let verified = env
        .cli(&format!("desired-state log --verify --json {key}"))
        .output()
        .unwrap();
    let entries: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    let broken: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["problems"].as_array().unwrap().is_empty())
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    assert_eq!(broken.len(), changing - 1, "{broken:?}");
    assert!(
        !broken.contains(&"20240201000000") && !broken.contains(&"20240202000000"),
        "{broken:?}"
    );

    // Someone puts their own version under the tag the next commit will have, before the
    // run: the signer renders the head, finds other bytes, and signs nothing.
    env.write(
        "deployments/site-0001.yaml",
        "siteId: next\npollFrequency: 1s\n",
    );
    git_commit(&env, "2024-02-03T00:00:00Z", "next");
    reg.skopeo_copy(
        &format!("{REPO}:20240201000000"),
        &format!("{REPO}:20240203000000"),
    );
    let desired_before = reg.get(&format!("{REPO}/manifests/desired"));
    env.cli(&format!("mirror {sign}"))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "version 20240203000000 holds another desired state",
        ));
    assert_eq!(
        reg.get(&format!("{REPO}/manifests/desired")),
        desired_before,
        "`desired` did not move"
    );
}
