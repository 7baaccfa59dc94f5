//! Key-mode signatures: Sigstore bundles as OCI referrers under the `sha256-<hex>` tag,
//! verified by us and, independently, by OpenSSL.

use std::process::Command;

use base64::Engine as _;

use crate::util::{run, Env, Registry};

fn published(env: &Env, reg: &Registry, sign: bool) {
    if sign {
        env.cli("key generate keys/demo").assert().success();
    }
    env.publish_poc(reg, if sign { "--sign key:keys/demo.key" } else { "" });
}

fn raw(reg: &Registry, reference: &str) -> Vec<u8> {
    run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}", reg.repo(reference))))
    .stdout
}

#[test]
fn a_signed_package_verifies_with_us_and_with_openssl() {
    let reg = Registry::plain();
    let env = Env::new();
    published(&env, &reg, true);
    let pkg = raw(&reg, "acme/poc-app:1.2.0");
    let digest = crate::util::sha256_hex(&pkg);
    // The referrers tag holds an index whose entry is the bundle referrer of the package.
    let index: serde_json::Value =
        serde_json::from_slice(&raw(&reg, &format!("acme/poc-app:sha256-{digest}"))).unwrap();
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let referrer: serde_json::Value = serde_json::from_slice(&raw(
        &reg,
        &format!("acme/poc-app@{}", entry["digest"].as_str().unwrap()),
    ))
    .unwrap();
    assert_eq!(referrer["subject"]["digest"], format!("sha256:{digest}"));
    let bundle_digest = referrer["layers"][0]["digest"].as_str().unwrap();
    let bundle = run(Command::new("curl").arg("-sf").arg(format!(
        "http://{}/v2/acme/poc-app/blobs/{bundle_digest}",
        reg.host
    )))
    .stdout;
    let b: serde_json::Value = serde_json::from_slice(&bundle).unwrap();
    assert_eq!(
        b["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );

    env.cli(&format!(
        "package verify --plain-http --key keys/demo.pub {}",
        reg.repo("acme/poc-app:1.2.0")
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains(format!(
        "verified {}",
        reg.repo("acme/poc-app:1.2.0")
    )));
    // OpenSSL, which no one here wrote, agrees: the signature is over the manifest's bytes.
    let sig = base64::engine::general_purpose::STANDARD
        .decode(b["messageSignature"]["signature"].as_str().unwrap())
        .unwrap();
    std::fs::write(env.path("sig.der"), sig).unwrap();
    std::fs::write(env.path("manifest.json"), &pkg).unwrap();
    let ok = run(Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(env.work().join("keys/demo.pub"))
        .arg("-signature")
        .arg(env.path("sig.der"))
        .arg(env.path("manifest.json")));
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Verified OK");
    env.cli(&format!(
        "package show --plain-http {}",
        reg.repo("acme/poc-app:1.2.0")
    ))
    .assert()
    .success()
    .stdout(predicates::str::contains("sigstore bundle sha256:"));
}

#[test]
fn verification_refuses_what_it_must() {
    let reg = Registry::plain();
    let env = Env::new();
    published(&env, &reg, true);
    let verify = |reference: String, key: &str| {
        env.cli(&format!(
            "package verify --plain-http --key {key} {reference}"
        ))
        .assert()
    };
    // Another key.
    env.cli("key generate keys/other").assert().success();
    verify(reg.repo("acme/poc-app:1.2.0"), "keys/other.pub")
        .code(1)
        .stderr(predicates::str::contains("signed by another key"));
    // An unsigned package.
    env.cli(&format!(
        "package publish --plain-http --to {}",
        reg.repo("acme/unsigned")
    ))
    .assert()
    .success();
    verify(reg.repo("acme/unsigned:1.2.0"), "keys/demo.pub")
        .code(1)
        .stderr(predicates::str::contains("is not signed"));
    // Content swapped under the tag: the tag now names something that was never signed.
    reg.skopeo_copy("acme/poc-app-app:1.2.0", "acme/poc-app:1.2.0");
    verify(reg.repo("acme/poc-app:1.2.0"), "keys/demo.pub")
        .code(1)
        .stderr(predicates::str::contains("is not signed"));
    // A signature of another artifact: the swapped-in manifest gets the old referrers index.
    let old = crate::util::sha256_hex(&raw(&reg, "acme/poc-app:1.2.0"));
    let signed_digest = {
        let out = run(Command::new("skopeo")
            .args(["list-tags", "--tls-verify=false"])
            .arg(format!("docker://{}", reg.repo("acme/poc-app"))));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .find(|t| t.starts_with("sha256-"))
            .unwrap()
    };
    // Put the signed package's referrers index, byte for byte, under the swapped manifest's tag.
    std::fs::write(
        env.path("index.json"),
        raw(&reg, &format!("acme/poc-app:{signed_digest}")),
    )
    .unwrap();
    run(Command::new("curl")
        .args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
        ])
        .arg(format!("@{}", env.path("index.json").display()))
        .arg(format!(
            "http://{}/v2/acme/poc-app/manifests/sha256-{old}",
            reg.host
        )));
    verify(reg.repo("acme/poc-app:1.2.0"), "keys/demo.pub")
        .code(1)
        .stderr(predicates::str::contains("another artifact"));
}

#[test]
fn signing_a_published_package_leaves_it_untouched() {
    let reg = Registry::plain();
    let env = Env::new();
    published(&env, &reg, false);
    let before = raw(&reg, "acme/poc-app:1.2.0");
    env.cli("key generate keys/demo").assert().success();
    std::fs::set_permissions(
        env.work().join("keys/demo.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let out = env
        .cli(&format!(
            "package sign --plain-http --sign key:keys/demo.key {}",
            reg.repo("acme/poc-app:1.2.0")
        ))
        .assert()
        .success()
        .stderr(predicates::str::contains("can be read by others"));
    let key = std::fs::read_to_string(env.work().join("keys/demo.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    for stream in [&out.get_output().stdout, &out.get_output().stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(body),
            "the private key leaked"
        );
    }
    assert_eq!(
        raw(&reg, "acme/poc-app:1.2.0"),
        before,
        "the package is untouched"
    );
    env.cli(&format!(
        "package verify --plain-http --key keys/demo.pub {}",
        reg.repo("acme/poc-app:1.2.0")
    ))
    .assert()
    .success();
    // Signing again adds nothing: the bundle is deterministic and already listed.
    let writes = reg.writes();
    env.cli(&format!(
        "package sign --plain-http --sign key:keys/demo.key {}",
        reg.repo("acme/poc-app:1.2.0")
    ))
    .assert()
    .success();
    assert_eq!(reg.writes(), writes);
}
