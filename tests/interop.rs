//! Independent tools read what margo-gitops writes, and margo-gitops reads what they write.

use std::process::Command;

use crate::util::{fixtures, run, Env, Registry};

fn skopeo_digest(reference: &str) -> String {
    let out = run(Command::new("skopeo").args(["inspect", "--format", "{{.Digest}}", reference]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn the_oras_sdk_pulls_what_we_publish() {
    let reg = Registry::plain();
    let env = Env::new();
    env.publish_poc(&reg, "");
    let out_dir = env.path("oras");
    let script = r#"
import sys, json, oras.client
host, repo, out = sys.argv[1:4]
client = oras.client.OrasClient(hostname=host, insecure=True)
tags = client.get_tags(f"{host}/{repo}")
files = client.pull(target=f"{host}/{repo}:1.2.0", outdir=out)
print(json.dumps({"tags": tags, "files": sorted(files)}))
"#;
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([&reg.host, "acme/poc-app"])
        .arg(&out_dir));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["1.2.0"]));
    let pulled = out_dir.join("poc-app-1.2.0.tar.gz");
    assert_eq!(
        std::fs::read(pulled).unwrap(),
        std::fs::read(env.work().join("dist/poc-app-1.2.0.tar.gz")).unwrap(),
        "oras gets the same bytes"
    );
    let app_dir = env.path("oras-app");
    run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([&reg.host, "acme/poc-app-app"])
        .arg(&app_dir));
    assert_eq!(
        std::fs::read(app_dir.join("margo.yaml")).unwrap(),
        std::fs::read(env.work().join("app/margo.yaml")).unwrap()
    );
}

#[test]
fn we_read_what_skopeo_wrote_to_a_registry_and_to_a_layout() {
    let reg = Registry::plain();
    let env = Env::new();
    let layout = env.path("skopeo-layout");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--all", &fixtures().oci("multi")])
        .arg(format!("oci:{}:multi", layout.display())));
    env.cli(&format!(
        "package show oci-layout:{}:multi",
        layout.display()
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains("linux/amd64"))
    .stdout(predicates::str::contains("linux/arm64"));
    // prepare takes a service's image from a layout skopeo wrote, by index and platform.
    env.write(
        "app/compose.yaml",
        "services:\n  cache:\n    image: cache:7\n",
    );
    env.cli("package prepare app --version 1.0.0 --platform linux/arm64")
        .arg("--image")
        .arg(format!("cache=oci-layout:{}:multi", layout.display()))
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "cache:7@{}",
            skopeo_digest(&fixtures().oci("arm64"))
        )));

    reg.push_with_skopeo(&fixtures().oci("web"), "acme/web:1");
    let skopeo = run(Command::new("skopeo")
        .args(["inspect", "--format", "{{.Digest}}", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.repo("acme/web:1"))));
    env.cli(&format!(
        "package show --plain-http {}",
        reg.repo("acme/web:1")
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains(
        String::from_utf8_lossy(&skopeo.stdout).trim(),
    ));
}

#[test]
fn skopeo_copies_what_we_publish_byte_for_byte() {
    let reg = Registry::tls_basic();
    let env = Env::new();
    env.poc_app(&reg);
    env.cli(&format!(
        "package prepare app --username {} --password-stdin",
        crate::util::USER
    ))
    .args(reg.flags())
    .arg("--image")
    .arg(format!("web={}", fixtures().oci_archive.display()))
    .write_stdin(crate::util::PASSWORD)
    .assert()
    .success();
    let out = env
        .cli(&format!(
            "package publish --json --username {} --password-stdin --to {}",
            crate::util::USER,
            reg.repo("acme/poc-app")
        ))
        .args(reg.flags())
        .write_stdin(crate::util::PASSWORD)
        .assert()
        .success();
    let published: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let digest = published["artifacts"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let copy = tempfile::tempdir().unwrap();
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .args(reg.skopeo("src"))
        .arg(format!("docker://{}:1.2.0", reg.repo("acme/poc-app")))
        .arg(format!("dir:{}", copy.path().display())));
    let manifest = std::fs::read(copy.path().join("manifest.json")).unwrap();
    assert_eq!(
        format!("sha256:{}", crate::util::sha256_hex(&manifest)),
        digest,
        "the manifest we pushed, unchanged"
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layer = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    assert_eq!(
        std::fs::read(copy.path().join(layer)).unwrap(),
        std::fs::read(env.work().join("dist/poc-app-1.2.0.tar.gz")).unwrap()
    );
}
