//! The desired state: render, validate, commit, show, diff, against a real registry and
//! real git repositories built with fixed dates.

use std::process::Command;

use crate::util::{run, sh, Env, Registry};

const POC_VALUES: &str = "adminName: Ada Lovelace\nadminPrincipalName: ada@example.org\nidpClientId: margo-edge\nidpName: Example IdP\nidpProvider: oidc\nidpUrl: https://idp.example.org\npollFrequency: 30s\nsiteId: site-0001\n";

/// A git repository holding the poc app, a config and one deployment, with its package
/// published to `reg`; one commit dated 2024-01-02.
pub(crate) fn gitops_repo(env: &Env, reg: &Registry) {
    env.publish_poc(reg, "");
    env.write(
        ".margo-gitops.yaml",
        &format!(
            "app: app\npackageRepository: {}\ndesiredStateRepository: {}\nplainHttp: true\ndeployments:\n  - name: poc-app-site-0001\n    values: [deployments/site-0001.yaml]\n",
            reg.repo("acme/poc-app"),
            reg.repo("acme/poc-app-desired")
        ),
    );
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-0001\npollFrequency: 30s\n",
    );
    env.write(".gitignore", "dist/\n");
    git_commit(env, "2024-01-02T03:04:05Z", "first desired state");
}

pub(crate) fn git_commit(env: &Env, date: &str, message: &str) {
    sh(&format!(
        "cd {}; [ -d .git ] || git init -q -b main; git add -A; GIT_AUTHOR_DATE={date} GIT_COMMITTER_DATE={date} git -c user.name=Test -c user.email=test@example.org commit -q --allow-empty -m '{message}'",
        env.work().display()
    ));
}

fn desired_digest(reg: &Registry, name: &str) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}:desired", reg.repo(name))));
    crate::util::sha256_hex(&out.stdout)
}

fn desired_revision(reg: &Registry, name: &str) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}:desired", reg.repo(name))));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    m["annotations"]["org.opencontainers.image.revision"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Commits a change of site on top of `gitops_repo`'s commit: (old, new) commit ids.
fn second_commit(env: &Env) -> (String, String) {
    let old = head(env);
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-0002\npollFrequency: 30s\n",
    );
    git_commit(env, "2024-02-01T00:00:00Z", "move to site 2");
    (old, head(env))
}

pub(crate) fn head(env: &Env) -> String {
    String::from_utf8(sh(&format!("cd {}; git rev-parse HEAD", env.work().display())).stdout)
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn the_shipped_templates_render_for_the_poc_app_and_validate() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.cli("desired-state render -o margo.yaml")
        .assert()
        .success();
    let text = std::fs::read_to_string(env.work().join("margo.yaml")).unwrap();
    assert!(
        text.contains(&format!(
            "repository: \"oci://{}\"",
            reg.repo("acme/poc-app")
        )),
        "{text}"
    );
    assert!(text.contains("revision: \"1.2.0\""), "{text}");
    assert!(text.contains("pointer: ENV.SITE_ID"), "{text}");
    env.write("poc-values.yaml", POC_VALUES);
    env.cli(
        "desired-state render --template poc --values poc-values.yaml --name site-0001 -o poc.yaml",
    )
    .assert()
    .success();
    let poc = std::fs::read_to_string(env.work().join("poc.yaml")).unwrap();
    assert!(poc.contains("type: docker-compose"), "{poc}");
    assert!(
        poc.contains(&format!(
            "packageLocation: \"http://{}/v2/acme/poc-app/blobs/sha256:",
            reg.host
        )),
        "{poc}"
    );
    for pointer in [
        "ADMIN_NAME",
        "ADMIN_PRINCIPALNAME",
        "IDP_CLIENT_ID",
        "IDP_NAME",
        "IDP_PROVIDER",
        "IDP_URL",
        "POLL_FREQUENCY",
        "SITE_ID",
    ] {
        assert!(
            poc.contains(&format!("pointer: ENV.{pointer}")),
            "{pointer}"
        );
    }
    env.cli("desired-state validate margo.yaml poc.yaml")
        .assert()
        .success()
        .stdout(predicates::str::contains("margo.yaml: valid"))
        .stdout(predicates::str::contains(
            "warning: spec.deploymentProfile.type: `docker-compose` is the old spelling",
        ));
    // The PoC form needs all eight parameters, and says which one is missing.
    env.cli("desired-state render --template poc")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("templates/poc-compose.yaml.j2:"))
        .stderr(predicates::str::contains("the values lack `adminName`"));
}

#[test]
fn template_errors_name_the_file_line_and_expression() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.write("templates/site.yaml.j2", "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: {{ values.deploymentUuid }}\n");
    env.cli("desired-state render --template templates/site.yaml.j2")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "templates/site.yaml.j2:3: undefined value",
        ))
        .stderr(predicates::str::contains("`values.deploymentUuid`"));
    env.write("templates/broken.yaml.j2", "a: 1\nb: {% if %}\n");
    env.cli("desired-state render --template templates/broken.yaml.j2")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "templates/broken.yaml.j2:2: template syntax error",
        ));
}

#[test]
fn validate_reports_every_problem_with_file_line_and_path() {
    let env = Env::new();
    env.write(
        "bad.yaml",
        "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: not-a-uuid\nmetadata:\n  name: Site_1\n  annotations:\n    applicationId: poc-app\nspec:\n  deploymentProfile:\n    type: compose\n    components:\n      - name: poc-app\n        properties:\n          repository: oci://r/poc-app\n          revision: latest\n  parameters:\n    siteId:\n      value: s\n      targets:\n        - pointer: ENV.SITE_ID\n          components: [web]\n",
    );
    env.write("syntax.yaml", "metadata: [unclosed\n");
    let out = env
        .cli("desired-state validate bad.yaml syntax.yaml")
        .assert()
        .code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for expected in [
        "bad.yaml:3: error: id: `not-a-uuid` is not a UUID",
        "bad.yaml:3: warning: id: a top-level `id` is an older form: the specification puts the deployment's UUID in metadata.annotations.id",
        "bad.yaml:5: error: metadata.namespace: `namespace` is required",
        "bad.yaml:5: error: metadata.name: `Site_1` must be lower-case",
        "bad.yaml:15: error: spec.deploymentProfile.components[0].properties.revision: `latest` is not a SemVer version",
        "bad.yaml:21: error: spec.parameters.siteId.targets[0].components[0]: `web` names no component",
        "syntax.yaml:2: error: not valid YAML",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}` in:\n{stdout}");
    }
    let out = env
        .cli("desired-state validate --json bad.yaml")
        .assert()
        .code(1);
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v[0]["problems"].as_array().unwrap().len(), 6);
}

#[test]
fn commit_show_and_a_device_fetch_through_the_registry_api() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.cli("desired-state render -o rendered.yaml")
        .assert()
        .success();
    env.cli("desired-state commit")
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "committed: desired state 20240102030405 (manifestVersion 1)",
        ))
        .stdout(predicates::str::contains("desired     now 20240102030405"));
    assert_eq!(
        reg.tags("acme/poc-app-desired"),
        ["20240102030405", "desired"]
    );
    env.cli("desired-state show")
        .assert()
        .success()
        .stdout(predicates::str::contains("desired: 20240102030405"))
        .stdout(predicates::str::contains("first desired state"))
        .stdout(predicates::str::contains("siteId:"));

    // A device, as the PoC's REST watcher did: the manifest of `desired`, then its first blob.
    let base = format!("http://{}/v2/acme/poc-app-desired", reg.host);
    let manifest = run(Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Accept: application/vnd.oci.image.manifest.v1+json",
        ])
        .arg(format!("{base}/manifests/desired")));
    let m: serde_json::Value = serde_json::from_slice(&manifest.stdout).unwrap();
    assert_eq!(m["artifactType"], "application/vnd.margo.desired-state.v1");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.margo.desired-state.v1+yaml"
    );
    let yaml = run(Command::new("curl").arg("-sf").arg(format!(
        "{base}/blobs/{}",
        m["layers"][0]["digest"].as_str().unwrap()
    )));
    assert_eq!(
        yaml.stdout,
        std::fs::read(env.work().join("rendered.yaml")).unwrap(),
        "exactly the rendered YAML"
    );

    // The Desired State Manifest's digests are the YAML layers', byte for byte.
    let dsm_layer = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == "application/vnd.margo.manifest.v1+json")
        .unwrap();
    let dsm = run(Command::new("curl").arg("-sf").arg(format!(
        "{base}/blobs/{}",
        dsm_layer["digest"].as_str().unwrap()
    )));
    let dsm: serde_json::Value = serde_json::from_slice(&dsm.stdout).unwrap();
    assert_eq!(dsm["manifestVersion"], 1);
    assert_eq!(dsm["deployments"][0]["digest"], m["layers"][0]["digest"]);
    assert_eq!(dsm["deployments"][0]["sizeBytes"], yaml.stdout.len());
    // deploymentId is the document's metadata.annotations.id, byte for byte.
    let doc: serde_json::Value = serde_norway::from_slice(&yaml.stdout).unwrap();
    assert_eq!(
        dsm["deployments"][0]["deploymentId"],
        doc["metadata"]["annotations"]["id"]
    );
    assert_eq!(doc["metadata"]["namespace"], "margo");

    // A version written by another tool, its document without a last newline: `show` still
    // ends the document before its next line.
    let text = String::from_utf8(yaml.stdout.clone()).unwrap();
    let cut = text.trim_end();
    let mut edited = m.clone();
    edited["layers"][0]["digest"] = reg.push_blob("acme/poc-app-desired", cut.as_bytes()).into();
    edited["layers"][0]["size"] = cut.len().into();
    reg.put_manifest(
        "acme/poc-app-desired",
        "desired",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&edited).unwrap(),
    );
    let out = env.cli("desired-state show").output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    let last = cut.lines().last().unwrap();
    assert!(
        shown.contains(&format!("\n{last}\nversions, newest first:\n")),
        "{shown}"
    );
    assert!(doc.get("id").is_none(), "the normative place only");
    let fetched = run(Command::new("curl")
        .arg("-sf")
        .arg(dsm["deployments"][0]["url"].as_str().unwrap()));
    assert_eq!(
        format!("sha256:{}", crate::util::sha256_hex(&fetched.stdout)),
        dsm["deployments"][0]["digest"].as_str().unwrap()
    );
    let bundle = run(Command::new("curl")
        .arg("-sf")
        .arg(dsm["bundle"]["url"].as_str().unwrap()));
    assert_eq!(
        format!("sha256:{}", crate::util::sha256_hex(&bundle.stdout)),
        dsm["bundle"]["digest"].as_str().unwrap()
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.revision"],
        head(&env)
    );
}

#[test]
fn the_same_state_twice_uploads_nothing_and_moves_nothing() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.cli("desired-state commit").assert().success();
    let writes = reg.writes();
    let digest = desired_digest(&reg, "acme/poc-app-desired");
    env.cli("desired-state commit")
        .assert()
        .success()
        .stdout(predicates::str::contains("unchanged"));
    // A commit that does not change the inputs is no new desired state either.
    git_commit(&env, "2024-01-03T00:00:00Z", "docs only");
    env.cli("desired-state commit")
        .assert()
        .success()
        .stdout(predicates::str::contains("unchanged"));
    assert_eq!(reg.writes(), writes);
    assert_eq!(desired_digest(&reg, "acme/poc-app-desired"), digest);
}

#[test]
fn an_older_commit_committed_after_a_newer_one_leaves_desired_in_place() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let (old, new) = second_commit(&env);
    env.cli("desired-state commit").assert().success();
    sh(&format!(
        "cd {}; git checkout -q {old}",
        env.work().display()
    ));
    env.cli("desired-state commit")
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "committed: desired state 20240102030405 (manifestVersion 1)",
        ))
        .stdout(predicates::str::contains("older than the one it holds"));
    assert_eq!(desired_revision(&reg, "acme/poc-app-desired"), new);
    assert_eq!(
        reg.tags("acme/poc-app-desired"),
        ["20240102030405", "20240201000000", "desired"]
    );
}

#[test]
fn two_racing_committers_end_with_desired_at_the_newer_commit() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    let (old, new) = second_commit(&env);
    let older_tree = env.path("older");
    sh(&format!(
        "cd {}; git worktree add -q {} {old}",
        env.work().display(),
        older_tree.display()
    ));
    for round in 0..3 {
        let to = reg.repo(&format!("acme/race-{round}"));
        let spawn = |dir: &std::path::Path| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("margo-gitops"));
            c.current_dir(dir)
                .env("HOME", env.path("home"))
                // Inside GitHub Actions `--sign` defaults to keyless; these sign nothing.
                .env_remove("GITHUB_ACTIONS")
                .args(["-q", "desired-state", "commit", "--to", &to])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        // The older one starts first, as a slower CI job would.
        let mut a = spawn(&older_tree);
        let mut b = spawn(&env.work());
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
        assert_eq!(
            desired_revision(&reg, &format!("acme/race-{round}")),
            new,
            "round {round}"
        );
    }
}

#[test]
fn an_invalid_rendering_publishes_nothing() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.write("templates/bad.yaml.j2", "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: {{ deployment.id }}\nmetadata:\n  name: {{ deployment.name }}\n  annotations:\n    applicationId: Not_An_Id\nspec:\n  deploymentProfile:\n    type: compose\n    components: []\n");
    let writes = reg.writes();
    env.cli("desired-state commit --template templates/bad.yaml.j2")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("nothing was published"))
        .stderr(predicates::str::contains(
            "(deployment poc-app-site-0001):7: error: metadata.annotations.applicationId",
        ))
        .stderr(predicates::str::contains(
            ":11: error: spec.deploymentProfile.components: at least one component is required",
        ));
    assert_eq!(reg.writes(), writes);
    assert!(reg.tags("acme/poc-app-desired").is_empty());
}

#[test]
fn diff_reads_like_a_review() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.cli("desired-state commit").assert().success();
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-0002\npollFrequency: 30s\nadminName: Ada\n",
    );
    git_commit(&env, "2024-02-01T00:00:00Z", "move to site 2");
    for from in [
        "git:HEAD~1".to_string(),
        format!("{}:desired", reg.repo("acme/poc-app-desired")),
    ] {
        env.cli(&format!("desired-state diff {from} git:HEAD"))
            .assert()
            .success()
            .stdout(predicates::str::contains("~ deployment poc-app-site-0001 (changed)"))
            .stdout(predicates::str::contains("    parameter siteId\n      ~ value: site-0001 → site-0002"))
            .stdout(predicates::str::contains("    parameter adminName\n      + targets: ENV.ADMIN_NAME → poc-app\n      + value: Ada"));
    }
    let out = env
        .cli("desired-state diff --json git:HEAD~1 git:HEAD")
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["deployments"][0]["status"], "changed");
    assert_eq!(v["deployments"][0]["changes"].as_array().unwrap().len(), 3);
}

#[test]
fn parameter_names_are_checked_where_values_are_read_and_values_stay_values() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.write(
        "hostile.yaml",
        "siteId: ok\n\"site: Id\\n    value: pwned\\n  x\": 1\n",
    );
    env.cli("desired-state render --values hostile.yaml -o out.yaml")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("hostile.yaml:2: parameter name"))
        .stderr(predicates::str::contains("starting with a letter or `_`"));
    assert!(!env.work().join("out.yaml").exists());
    env.write(
        "hostile.yaml",
        "siteId: \"{{ 7*7 }}\"\nnote: \"a: b\\nnamespace: evil\"\n",
    );
    env.cli("desired-state render --values hostile.yaml -o out.yaml")
        .assert()
        .success();
    let text = std::fs::read_to_string(env.work().join("out.yaml")).unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(doc["metadata"]["namespace"], "margo", "{text}");
    let params = &doc["spec"]["parameters"];
    assert_eq!(params["siteId"]["value"], "{{ 7*7 }}");
    assert_eq!(params["note"]["value"], "a: b\nnamespace: evil");
    assert_eq!(params.as_object().unwrap().len(), 2, "{text}");
    env.cli("desired-state validate out.yaml")
        .assert()
        .success();
}

#[test]
fn the_examples_of_the_specification_validate_without_a_warning() {
    let env = Env::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/margo-spec");
    let out = env
        .cmd()
        .args(["desired-state", "validate", "--json"])
        .arg(dir.join("cluster-enabled.yaml"))
        .arg(dir.join("standalone-device.yaml"))
        .arg(dir.join("app-description-simple.yaml"))
        .arg(dir.join("app-description-helm-and-compose.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in reports.as_array().unwrap() {
        assert_eq!(r["problems"].as_array().unwrap().len(), 0, "{r}");
    }
}

#[test]
fn a_version_signed_by_its_committer_verifies_and_an_unsigned_or_foreign_one_does_not() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.write(".gitignore", "dist/\nkeys/\n");
    env.cli("key generate keys/k").assert().success();
    env.cli("key generate keys/other").assert().success();
    let desired = format!("{}:desired", reg.repo("acme/poc-app-desired"));
    let verify = |key: &str| {
        env.cli(&format!(
            "desired-state verify --plain-http --key {key} {desired}"
        ))
        .assert()
    };

    // OpenPGP signs package archives only: refused before anything is published.
    env.cli("desired-state commit --sign pgp:keys/k.key")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("signs package archives only"));
    assert!(reg.tags("acme/poc-app-desired").is_empty());

    env.cli("desired-state commit --sign key:keys/k.key")
        .assert()
        .success()
        .stdout(predicates::str::contains("signed      sha256:"));
    verify("keys/k.pub")
        .success()
        .stdout(predicates::str::contains("verified"));
    verify("keys/other.pub")
        .code(1)
        .stderr(predicates::str::contains("signed by another key"));
    // Stored as package signatures are: a referrer listed under the `sha256-<hex>` tag.
    let version = crate::util::sha256_hex(
        &run(Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{desired}")))
        .stdout,
    );
    assert!(
        reg.tags("acme/poc-app-desired")
            .contains(&format!("sha256-{version}")),
        "{:?}",
        reg.tags("acme/poc-app-desired")
    );

    // The next version, committed unsigned: `desired` moves, and does not verify.
    env.write(
        "deployments/site-0001.yaml",
        "siteId: site-0002\npollFrequency: 30s\n",
    );
    git_commit(&env, "2024-02-01T00:00:00Z", "unsigned");
    env.cli("desired-state commit --sign none")
        .assert()
        .success()
        .stdout(predicates::str::contains("signed      no"));
    verify("keys/k.pub")
        .code(1)
        .stderr(predicates::str::contains("is not signed"));
    // Committed again with a key: the version that is there gets its signature, once.
    env.cli("desired-state commit --sign key:keys/k.key")
        .assert()
        .success()
        .stdout(predicates::str::contains("signed      sha256:"));
    verify("keys/k.pub").success();
    env.cli("desired-state commit --sign key:keys/k.key")
        .assert()
        .success()
        .stdout(predicates::str::contains("signed      already"));

    // `desired` replaced behind our back by a version with the same documents but a
    // State Manifest of its own (a manifestVersion that would refuse every later one):
    // committing again refuses to sign it.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&reg.get("acme/poc-app-desired/manifests/desired")).unwrap();
    let dsm = br#"{"manifestVersion":18446744073709551615,"bundle":null,"deployments":[]}"#;
    let layer = forged["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["mediaType"] == "application/vnd.margo.manifest.v1+json")
        .unwrap();
    layer["digest"] = reg.push_blob("acme/poc-app-desired", dsm).into();
    layer["size"] = dsm.len().into();
    forged["annotations"]["org.margo.gitops.manifest-version"] = "18446744073709551615".into();
    reg.put_manifest(
        "acme/poc-app-desired",
        "desired",
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&forged).unwrap(),
    );
    env.cli("desired-state commit --sign key:keys/k.key")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("not signed"))
        .stderr(predicates::str::contains("State Manifest"));
    verify("keys/k.pub")
        .code(1)
        .stderr(predicates::str::contains("is not signed"));

    // A signed package is not a desired state; OpenPGP keys sign no desired state.
    let package = reg.repo("acme/poc-app:1.2.0");
    env.cli(&format!(
        "package sign --plain-http --sign key:keys/k.key {package}"
    ))
    .assert()
    .success();
    env.cli(&format!(
        "desired-state verify --plain-http --key keys/k.pub {package}"
    ))
    .assert()
    .code(1)
    .stderr(predicates::str::contains("it is not a desired state"));
    env.cli(&format!(
        "desired-state verify --plain-http --pgp-key keys/k.pub {desired}"
    ))
    .assert()
    .code(2)
    .stderr(predicates::str::contains(
        "OpenPGP signs package archives only",
    ));
}
