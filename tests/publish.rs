//! `package publish` and `package show`: what lands in the registry, and only once.

use std::process::Command;

use crate::util::{fixtures, run, sh, sha256_file, Env, Registry};

fn prepared(env: &Env, reg: &Registry) {
    env.poc_app(reg);
    env.prepare_poc(&fixtures().docker_archive);
}

fn raw_manifest(reference: &str, flags: &[String]) -> serde_json::Value {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .args(flags)
        .arg(reference));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn publish_lays_out_the_margo_compose_component_and_the_application_package() {
    let reg = Registry::plain();
    let env = Env::new();
    prepared(&env, &reg);
    env.cli(&format!(
        "package publish dist --plain-http --to {}",
        reg.repo("acme/poc-app")
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains("2 uploaded"));

    let flags = reg.skopeo("");
    let m = raw_manifest(
        &format!("docker://{}:1.2.0", reg.repo("acme/poc-app")),
        &flags,
    );
    assert_eq!(
        m["artifactType"],
        "application/vnd.org.margo.component.compose+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.org.margo.component.compose.tar+gzip"
    );
    assert_eq!(
        layers[0]["annotations"]["org.margo.component.type"],
        "compose"
    );
    assert_eq!(
        layers[0]["annotations"]["org.margo.component.version"],
        "1.2.0"
    );
    let archive = env.work().join("dist/poc-app-1.2.0.tar.gz");
    assert_eq!(
        layers[0]["digest"],
        format!("sha256:{}", sha256_file(&archive))
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.version"],
        "1.2.0"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.title"],
        "PoC App"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );

    let app = raw_manifest(
        &format!("docker://{}:1.2.0", reg.repo("acme/poc-app-app")),
        &flags,
    );
    assert_eq!(app["artifactType"], "application/vnd.margo.app.v1+json");
    let layers = app["layers"].as_array().unwrap();
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.margo.app.description.v1+yaml"
    );
    let resources: Vec<&str> = layers[1..]
        .iter()
        .map(|l| l["annotations"]["org.margo.app.resource"].as_str().unwrap())
        .collect();
    assert_eq!(
        resources,
        [
            "metadata.catalog.application.icon",
            "metadata.catalog.application.descriptionFile"
        ]
    );
    assert_eq!(layers[1]["mediaType"], "image/svg+xml");
    assert_eq!(reg.tags("acme/poc-app"), ["1.2.0"]);
}

#[test]
fn publishing_unchanged_content_again_uploads_nothing() {
    let reg = Registry::plain();
    let env = Env::new();
    prepared(&env, &reg);
    let publish = || {
        env.cli(&format!(
            "package publish dist --plain-http --to {}",
            reg.repo("acme/poc-app")
        ))
        .assert()
        .success()
    };
    publish();
    let writes = reg.writes();
    let requests = reg.requests().len();
    publish()
        .stdout(predicates::str::contains("0 uploaded"))
        .stdout(predicates::str::contains("(unchanged)"));
    assert_eq!(
        reg.writes(),
        writes,
        "no upload, no manifest, no tag: {:?}",
        &reg.requests()[requests..]
    );
    // Prepared again from scratch, the package is byte for byte the same: still nothing to send.
    std::fs::remove_dir_all(env.work().join("dist")).unwrap();
    env.prepare_poc(&fixtures().docker_archive);
    publish();
    assert_eq!(reg.writes(), writes);
}

#[test]
fn a_published_version_is_immutable_unless_replaced() {
    let reg = Registry::plain();
    let env = Env::new();
    prepared(&env, &reg);
    let publish = |extra: &str| {
        env.cli(&format!(
            "package publish dist --plain-http {extra} --to {}",
            reg.repo("acme/poc-app")
        ))
        .assert()
    };
    publish("").success();
    let before = reg.get("acme/poc-app/manifests/1.2.0");
    // The app changes, its version does not.
    env.write("app/web.env", "REDIS_HOST=redis\nGREETING=changed\n");
    std::fs::remove_dir_all(env.work().join("dist")).unwrap();
    env.prepare_poc(&fixtures().docker_archive);
    let writes = reg.writes();
    publish("")
        .code(1)
        .stderr(predicates::str::contains(
            "a published version is immutable",
        ))
        .stderr(predicates::str::contains("bump `metadata.version`"));
    assert_eq!(reg.writes(), writes, "nothing was written");
    assert_eq!(reg.get("acme/poc-app/manifests/1.2.0"), before);
    publish("--replace").success();
    assert_ne!(reg.get("acme/poc-app/manifests/1.2.0"), before);
}

#[test]
fn the_poc_format_keeps_the_seed_media_types() {
    let reg = Registry::plain();
    let env = Env::new();
    prepared(&env, &reg);
    env.cli(&format!(
        "package publish --format poc --tag latest --plain-http --to {}",
        reg.repo("acme/poc-app")
    ))
    .assert()
    .success();
    let m = raw_manifest(
        &format!("docker://{}:latest", reg.repo("acme/poc-app")),
        &reg.skopeo(""),
    );
    assert_eq!(m["artifactType"], "application/vnd.margo.package.v1");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.margo.app.v1.tar+gzip"
    );
    assert_eq!(
        m["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "poc-app.app"
    );
    assert_eq!(reg.tags("acme/poc-app"), ["1.2.0", "latest"]);
}

#[test]
fn an_oci_layout_is_read_by_skopeo_and_umoci() {
    let reg = Registry::plain();
    let env = Env::new();
    prepared(&env, &reg);
    env.cli("package publish --to oci-layout:out/oci")
        .assert()
        .success();
    let layout = env.work().join("out/oci");
    let ours = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:1.2.0", layout.display())));
    let m: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    assert_eq!(
        m["artifactType"],
        "application/vnd.org.margo.component.compose+json"
    );
    // skopeo copies it out and the layer is the archive, byte for byte.
    let copy = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:1.2.0", layout.display()))
        .arg(format!("dir:{}", copy.path().display())));
    let layer = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    assert_eq!(
        std::fs::read(copy.path().join(&layer)).unwrap(),
        std::fs::read(env.work().join("dist/poc-app-1.2.0.tar.gz")).unwrap()
    );
    let tags = run(Command::new("umoci").args(["ls", "--layout"]).arg(&layout));
    assert_eq!(String::from_utf8_lossy(&tags.stdout).trim(), "1.2.0");
    let app_tags = run(Command::new("umoci")
        .args(["ls", "--layout"])
        .arg(env.work().join("out/oci-app")));
    assert_eq!(String::from_utf8_lossy(&app_tags.stdout).trim(), "1.2.0");
    // And margo-gitops reads its own layout back.
    env.cli("package show oci-layout:out/oci:1.2.0")
        .assert()
        .success()
        .stdout(predicates::str::contains("poc-app-1.2.0.tar.gz"));
}

#[test]
fn annotations_come_from_git_without_credentials() {
    let reg = Registry::plain();
    let env = Env::new();
    env.poc_app(&reg);
    let token = "ghp_FAKEtokenFAKEtokenFAKEtoken0000";
    sh(&format!(
        "cd {}; git init -q; git remote add origin https://x-access-token:{token}@github.com/acme/poc.git; git add .; \
         GIT_AUTHOR_DATE=2022-01-02T03:04:05Z GIT_COMMITTER_DATE=2022-01-02T03:04:05Z git -c user.name=t -c user.email=t@example.org commit -qm init",
        env.work().display()
    ));
    let commit =
        String::from_utf8(sh(&format!("cd {}; git rev-parse HEAD", env.work().display())).stdout)
            .unwrap();
    let prep = env
        .cmd()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["package", "prepare", "app", "--plain-http", "--image"])
        .arg(format!("web={}", fixtures().oci_archive.display()))
        .assert()
        .success();
    let publ = env
        .cli(&format!(
            "package publish --plain-http --to {}",
            reg.repo("acme/poc-app")
        ))
        .assert()
        .success();
    let m = raw_manifest(
        &format!("docker://{}:1.2.0", reg.repo("acme/poc-app")),
        &reg.skopeo(""),
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.source"],
        "https://github.com/acme/poc"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.revision"],
        commit.trim()
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.created"],
        "2022-01-02T03:04:05Z"
    );
    for out in [prep.get_output(), publ.get_output()] {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(token));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(token));
    }
    assert!(!m.to_string().contains(token));
    let descriptor = std::fs::read_to_string(env.work().join("dist/poc-app-1.2.0.json")).unwrap();
    assert!(!descriptor.contains(token));
}

#[test]
fn show_describes_manifest_layers_annotations_and_tags() {
    let reg = Registry::plain();
    let env = Env::new();
    prepared(&env, &reg);
    env.cli(&format!(
        "package publish --plain-http --tag stable --to {}",
        reg.repo("acme/poc-app")
    ))
    .assert()
    .success();
    env.cli(&format!(
        "package show --plain-http {}:1.2.0",
        reg.repo("acme/poc-app")
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains(
        "artifact type  application/vnd.org.margo.component.compose+json",
    ))
    .stdout(predicates::str::contains("poc-app-1.2.0.tar.gz"))
    .stdout(predicates::str::contains(
        "org.margo.component.version: 1.2.0",
    ))
    .stdout(predicates::str::contains("tags: 1.2.0, stable"));
    let out = env
        .cli(&format!(
            "package show --json --plain-http {}:stable",
            reg.repo("acme/poc-app")
        ))
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(v["layers"][0]["title"], "poc-app-1.2.0.tar.gz");
    assert_eq!(v["tags"], serde_json::json!(["1.2.0", "stable"]));
    // An index shows its platforms.
    env.cli(&format!(
        "package show --plain-http {}:alpine",
        reg.repo("library/redis")
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains("linux/arm64"));
}
