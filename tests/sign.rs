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
    .stdout(predicates::str::contains("signature sha256:"));
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

/// Writes a key as `cosign generate-key-pair` does (scrypt + NaCl secretbox around the
/// PKCS#8 key, PEM `ENCRYPTED SIGSTORE PRIVATE KEY`), made with Python's hashlib, PyNaCl
/// and cryptography, and its public key.
fn cosign_key_pair(env: &Env, password: &str) {
    let script = r#"
import base64, hashlib, json, os, sys
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
salt, nonce = os.urandom(32), os.urandom(24)
secret = hashlib.scrypt(sys.argv[1].encode(), salt=salt, n=32768, r=8, p=1, dklen=32, maxmem=64 * 1024 * 1024)
box = nacl.secret.SecretBox(secret).encrypt(der, nonce).ciphertext
doc = {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
       "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
       "ciphertext": base64.b64encode(box).decode()}
body = base64.b64encode(json.dumps(doc).encode()).decode()
lines = [body[i:i + 64] for i in range(0, len(body), 64)]
open("cosign.key", "w").write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
open("cosign.pub", "wb").write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
"#;
    run(Command::new("python3")
        .current_dir(env.work())
        .args(["-c", script, password]));
    std::fs::set_permissions(
        env.work().join("cosign.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
}

#[test]
fn encrypted_cosign_keys_sign_with_their_password_and_only_with_it() {
    let reg = Registry::plain();
    let env = Env::new();
    published(&env, &reg, false);
    let password = "c0sign-Pa55word-never-printed";
    cosign_key_pair(&env, password);
    let reference = reg.repo("acme/poc-app:1.2.0");
    let sign = |pw: Option<&str>| {
        let mut c = env.cli(&format!(
            "package sign --plain-http --sign key:cosign.key {reference}"
        ));
        if let Some(pw) = pw {
            c.env("COSIGN_PASSWORD", pw);
        }
        c.output().unwrap()
    };
    let no_password = sign(None);
    assert_eq!(no_password.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_password.stderr).contains("set COSIGN_PASSWORD"));
    let wrong = sign(Some("not-the-password"));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong COSIGN_PASSWORD"));
    env.cli(&format!(
        "package verify --plain-http --key cosign.pub {reference}"
    ))
    .assert()
    .code(1)
    .stderr(predicates::str::contains("is not signed"));

    let ok = sign(Some(password));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    env.cli(&format!(
        "package verify --plain-http --key cosign.pub {reference}"
    ))
    .assert()
    .success();
    for out in [&no_password, &wrong, &ok] {
        for stream in [&out.stdout, &out.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(password));
        }
    }
}
