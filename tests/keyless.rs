//! Keyless signatures end to end on loopback: the GitHub Actions token endpoint, Fulcio,
//! CT log and Rekor of the Sigstore stand-in, a real registry without the referrers API
//! (CNCF Distribution 2.8, like GHCR), and sigstore-python 4.5.1 verifying, offline and
//! independently, exactly what the registry holds. Every negative case is refused by both.

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;

use crate::util::{
    Env, Registry, SigstoreStandIn, ACTIONS_ISSUER, ACTIONS_REQUEST_TOKEN, WORKFLOW_IDENTITY,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const BUNDLE_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A registry, the Sigstore stand-in and the poc app, published with `--sign keyless`
/// from a simulated Actions job (the token comes through the real Actions path).
struct Setup {
    reg: Registry,
    sig: SigstoreStandIn,
    env: Env,
    outputs: Vec<Output>,
}

impl Setup {
    fn new() -> Setup {
        let reg = Registry::plain();
        let sig = SigstoreStandIn::start();
        let env = Env::new();
        env.poc_app(&reg);
        env.prepare_poc(&crate::util::fixtures().oci_archive);
        let mut s = Setup {
            reg,
            sig,
            env,
            outputs: Vec::new(),
        };
        let publish = s.keyless(&format!(
            "package publish --plain-http --sign keyless --to {}",
            s.reg.repo("acme/poc-app")
        ));
        assert!(
            publish.status.success(),
            "{}",
            String::from_utf8_lossy(&publish.stderr)
        );
        assert!(String::from_utf8_lossy(&publish.stdout).contains("signed sha256:"));
        s
    }

    /// Runs `line` with the Actions variables and the stand-in's trust config; keeps the
    /// output for the secret scan.
    fn keyless(&mut self, line: &str) -> Output {
        let mut c = self.env.cli(line);
        c.arg("--trust-config").arg(self.sig.trust_config());
        for (k, v) in self.sig.actions_env() {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        self.outputs.push(out.clone());
        out
    }

    /// `package verify` of `reference` for `identity` and `issuer`.
    fn verify(&mut self, reference: &str, identity: &str, issuer: &str) -> Output {
        self.verify_as("package", reference, identity, issuer)
    }

    /// `COMMAND verify` (`package`, `desired-state`) of `reference`.
    fn verify_as(
        &mut self,
        command: &str,
        reference: &str,
        identity: &str,
        issuer: &str,
    ) -> Output {
        let out = self
            .env
            .cmd()
            .args([command, "verify", "--plain-http", reference])
            .args(["--certificate-identity", identity])
            .args(["--certificate-oidc-issuer", issuer])
            .arg("--trust-config")
            .arg(self.sig.trust_config())
            .output()
            .unwrap();
        self.outputs.push(out.clone());
        out
    }

    /// The manifest `name:tag` serves and the bundles listed under its referrers tag, read
    /// through the registry API.
    fn fetched(&self, name: &str, tag: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
        let manifest = self.reg.get(&format!("{name}/manifests/{tag}"));
        let index = self.reg.try_get(&format!(
            "{name}/manifests/sha256-{}",
            crate::util::sha256_hex(&manifest)
        ));
        let mut bundles = Vec::new();
        if let Some(index) = index {
            let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
            for entry in index["manifests"].as_array().unwrap() {
                let referrer: serde_json::Value = serde_json::from_slice(&self.reg.get(&format!(
                    "{name}/manifests/{}",
                    entry["digest"].as_str().unwrap()
                )))
                .unwrap();
                assert_eq!(referrer["artifactType"], BUNDLE_TYPE);
                let layer = referrer["layers"][0]["digest"].as_str().unwrap();
                bundles.push(self.reg.get(&format!("{name}/blobs/{layer}")));
            }
        }
        (manifest, bundles)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.env.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// sigstore-python's verdict on `bundle` over `artifact`.
    fn python(&self, bundle: &[u8], artifact: &[u8], identity: &str, issuer: &str) -> Output {
        let b = self.file("py-bundle.json", bundle);
        let a = self.file("py-artifact", artifact);
        self.sig.python_verify(&b, &a, identity, issuer)
    }

    /// Copies the package to `name:1.2.0` and lists `bundle` as its only signature.
    fn copy_with_bundle(&self, name: &str, subject: &[u8], bundle: &[u8]) {
        self.reg.copy_manifest("acme/poc-app", name, subject);
        self.reg
            .attach_referrer(name, subject, BUNDLE_TYPE, &[(BUNDLE_TYPE, bundle)]);
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Neither the Actions request token nor any JWT appears in `outputs` or in a file
/// under `dir`.
fn assert_no_token_leaked(outputs: &[Output], dir: &Path) {
    // Every JWT we see starts with the base64url of `{"alg":`.
    let needles = [ACTIONS_REQUEST_TOKEN, "eyJhbGciOi"];
    for o in outputs {
        for stream in [&o.stdout, &o.stderr] {
            let text = String::from_utf8_lossy(stream);
            for n in needles {
                assert!(!text.contains(n), "a token leaked into output: {text}");
            }
        }
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                let text = String::from_utf8_lossy(&bytes);
                for n in needles {
                    assert!(!text.contains(n), "a token leaked into {}", p.display());
                }
            }
        }
    }
}

#[test]
fn keyless_signing_runs_end_to_end_and_sigstore_python_agrees() {
    let mut s = Setup::new();
    let reference = s.reg.repo("acme/poc-app:1.2.0");
    let (manifest, bundles) = s.fetched("acme/poc-app", "1.2.0");
    assert_eq!(bundles.len(), 1);
    let b: serde_json::Value = serde_json::from_slice(&bundles[0]).unwrap();
    assert_eq!(b["mediaType"], BUNDLE_TYPE);
    assert!(b["verificationMaterial"]["certificate"]["rawBytes"].is_string());
    let entry = &b["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"]["kind"], "hashedrekord");
    assert!(!entry["inclusionProof"]["hashes"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(entry["inclusionPromise"]["signedEntryTimestamp"].is_string());

    // sigstore-python, offline, on the bytes the registry serves.
    let py = s.python(&bundles[0], &manifest, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
    assert!(
        py.status.success(),
        "sigstore-python refused: {}",
        stderr(&py)
    );

    // Our verifier, exact and by regular expression.
    let ours = s.verify(&reference, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let text = String::from_utf8_lossy(&ours.stdout);
    assert!(
        text.contains(&format!(
            "by {WORKFLOW_IDENTITY} (issuer {ACTIONS_ISSUER}, log index "
        )),
        "{text}"
    );
    let by_regex = s
        .env
        .cmd()
        .args(["package", "verify", "--plain-http", &reference])
        .args([
            "--certificate-identity-regexp",
            "https://github\\.com/margo-gitops/.*",
        ])
        .args([
            "--certificate-oidc-issuer-regexp",
            "https://token\\.actions\\.githubusercontent\\.com",
        ])
        .arg("--trust-config")
        .arg(s.sig.trust_config())
        .output()
        .unwrap();
    assert!(by_regex.status.success(), "{}", stderr(&by_regex));
    // A regular expression matches the whole identity, not a part of it.
    let partial = s
        .env
        .cmd()
        .args(["package", "verify", "--plain-http", &reference])
        .args(["--certificate-identity-regexp", "margo-gitops"])
        .args(["--certificate-oidc-issuer", ACTIONS_ISSUER])
        .arg("--trust-config")
        .arg(s.sig.trust_config())
        .output()
        .unwrap();
    assert_eq!(partial.status.code(), Some(1));

    // `package show` lists identity, issuer, log index and time.
    let show = s
        .env
        .cli(&format!("package show --plain-http {reference}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains(&format!(
            "by {WORKFLOW_IDENTITY} (issuer {ACTIONS_ISSUER}, log index "
        )),
        "{text}"
    );

    // Signing an already published package adds a signature and leaves the package alone.
    let sign = s.keyless(&format!(
        "package sign --plain-http --sign keyless {reference}"
    ));
    assert!(sign.status.success(), "{}", stderr(&sign));
    let (after, bundles) = s.fetched("acme/poc-app", "1.2.0");
    assert_eq!(after, manifest, "the package is untouched");
    assert_eq!(
        bundles.len(),
        2,
        "the second signature is listed beside the first"
    );
    let py = s.python(&bundles[1], &manifest, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
    assert!(py.status.success(), "{}", stderr(&py));

    // `package prepare --sign keyless`: a bundle over the archive, beside it.
    let prep = s.keyless(&format!(
        "package prepare app --plain-http --sign keyless -o signed --image web={}",
        crate::util::fixtures().oci_archive.display()
    ));
    assert!(prep.status.success(), "{}", stderr(&prep));
    let archive = std::fs::read(s.env.work().join("signed/poc-app-1.2.0.tar.gz")).unwrap();
    let bundle = std::fs::read(
        s.env
            .work()
            .join("signed/poc-app-1.2.0.tar.gz.sigstore.json"),
    )
    .unwrap();
    let py = s.python(&bundle, &archive, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
    assert!(py.status.success(), "{}", stderr(&py));

    assert_no_token_leaked(&s.outputs, s.env.dir.path());
}

#[test]
fn keyless_verification_refuses_what_it_must_and_so_does_sigstore_python() {
    let mut s = Setup::new();
    let (manifest, bundles) = s.fetched("acme/poc-app", "1.2.0");
    let good = bundles[0].clone();
    let py_refuses = |s: &Setup, bundle: &[u8], artifact: &[u8], identity: &str, issuer: &str| {
        let o = s.python(bundle, artifact, identity, issuer);
        assert!(
            !o.status.success(),
            "sigstore-python accepted what it must refuse"
        );
    };
    let ours_refuses = |s: &mut Setup, name: &str, identity: &str, issuer: &str, why: &str| {
        let o = s.verify(&s.reg.repo(&format!("{name}:1.2.0")), identity, issuer);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(why),
            "expected `{why}` in: {}",
            stderr(&o)
        );
    };

    // Wrong identity, wrong issuer.
    ours_refuses(
        &mut s,
        "acme/poc-app",
        "https://github.com/evil/fork/.github/workflows/x.yml@refs/heads/main",
        ACTIONS_ISSUER,
        "signed by `https://github.com/margo-gitops/",
    );
    py_refuses(
        &s,
        &good,
        &manifest,
        "https://github.com/evil/fork/.github/workflows/x.yml@refs/heads/main",
        ACTIONS_ISSUER,
    );
    ours_refuses(
        &mut s,
        "acme/poc-app",
        WORKFLOW_IDENTITY,
        "https://accounts.google.com",
        "identity issued by `https://token.actions.githubusercontent.com`",
    );
    py_refuses(
        &s,
        &good,
        &manifest,
        WORKFLOW_IDENTITY,
        "https://accounts.google.com",
    );

    // A forged SET: a valid signature over the right payload, by a key that is not the log's.
    let mut b: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let entry = &b["verificationMaterial"]["tlogEntries"][0];
    let payload = format!(
        "{{\"body\":\"{}\",\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{}}}",
        entry["canonicalizedBody"].as_str().unwrap(),
        entry["integratedTime"].as_str().unwrap(),
        hex::encode(
            B64.decode(entry["logId"]["keyId"].as_str().unwrap())
                .unwrap()
        ),
        entry["logIndex"].as_str().unwrap()
    );
    let forger = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let forged: p256::ecdsa::DerSignature = forger.sign(payload.as_bytes());
    b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"] =
        B64.encode(forged.as_bytes()).into();
    let forged_set = serde_json::to_vec(&b).unwrap();
    s.copy_with_bundle("acme/forged-set", &manifest, &forged_set);
    ours_refuses(
        &mut s,
        "acme/forged-set",
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
        "signed entry timestamp does not verify",
    );
    py_refuses(
        &s,
        &forged_set,
        &manifest,
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
    );

    // A broken inclusion proof: one bit of one hash of the audit path.
    let mut b: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let hash = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0];
    let mut raw = B64.decode(hash.as_str().unwrap()).unwrap();
    raw[0] ^= 1;
    *hash = B64.encode(raw).into();
    let broken = serde_json::to_vec(&b).unwrap();
    s.copy_with_bundle("acme/broken-proof", &manifest, &broken);
    ours_refuses(
        &mut s,
        "acme/broken-proof",
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
        "inclusion proof does not lead to the root hash",
    );
    py_refuses(&s, &broken, &manifest, WORKFLOW_IDENTITY, ACTIONS_ISSUER);

    // A tampered package: one annotation changed, the original signature beside it.
    let tampered = String::from_utf8(manifest.clone())
        .unwrap()
        .replacen(
            "\"annotations\":{",
            "\"annotations\":{\"x-tampered\":\"yes\",",
            1,
        )
        .into_bytes();
    assert_ne!(tampered, manifest);
    s.copy_with_bundle("acme/tampered", &tampered, &good);
    ours_refuses(
        &mut s,
        "acme/tampered",
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
        "another artifact",
    );
    py_refuses(&s, &good, &tampered, WORKFLOW_IDENTITY, ACTIONS_ISSUER);

    // A signature of another artifact: the Application Package's own (valid) signature,
    // listed as the package's.
    let other = s.keyless(&format!(
        "package sign --plain-http --sign keyless {}",
        s.reg.repo("acme/poc-app-app:1.2.0")
    ));
    assert!(other.status.success(), "{}", stderr(&other));
    let (_, other_bundles) = s.fetched("acme/poc-app-app", "1.2.0");
    s.copy_with_bundle("acme/other-artifact", &manifest, &other_bundles[0]);
    ours_refuses(
        &mut s,
        "acme/other-artifact",
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
        "another artifact",
    );
    py_refuses(
        &s,
        &other_bundles[0],
        &manifest,
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
    );

    // Content swapped under the tag: 1.2.0 now names a manifest that was never signed.
    s.reg
        .skopeo_copy("acme/poc-app-app:1.2.0", "acme/poc-app:1.2.0");
    let (swapped, _) = s.fetched("acme/poc-app", "1.2.0");
    ours_refuses(
        &mut s,
        "acme/poc-app",
        WORKFLOW_IDENTITY,
        ACTIONS_ISSUER,
        "is not signed",
    );
    py_refuses(&s, &good, &swapped, WORKFLOW_IDENTITY, ACTIONS_ISSUER);

    assert_no_token_leaked(&s.outputs, s.env.dir.path());
}

#[test]
fn keyless_needs_a_valid_token_and_pushes_nothing_without_one() {
    let reg = Registry::plain();
    let sig = SigstoreStandIn::start();
    let env = Env::new();
    env.poc_app(&reg);
    env.prepare_poc(&crate::util::fixtures().oci_archive);
    let writes = reg.writes();
    let publish = |extra: &[(&str, String)]| {
        let mut c = env.cli(&format!(
            "package publish --plain-http --sign keyless --to {}",
            reg.repo("acme/poc-app")
        ));
        c.arg("--trust-config").arg(sig.trust_config());
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };

    // No token anywhere: a usage error naming what to do, nothing pushed.
    let none = publish(&[]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("id-token: write"),
        "{}",
        stderr(&none)
    );
    assert_eq!(reg.writes(), writes, "nothing was pushed");

    // The Actions endpoint refuses a wrong request token: exit 2, nothing pushed, and the
    // token sent is not echoed.
    let wrong = publish(&[
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!("{}/actions-token?api-version=2.0", sig.url),
        ),
        (
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "wrong-request-token-xyz".into(),
        ),
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("refused"), "{}", stderr(&wrong));
    assert!(!stderr(&wrong).contains("wrong-request-token-xyz"));
    assert_eq!(reg.writes(), writes, "nothing was pushed");

    // An expired token is refused before Fulcio is asked.
    let expired = format!(
        "eyJhbGciOiJub25lIn0.{}.",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"x","exp":1000}"#)
    );
    let old = publish(&[("SIGSTORE_ID_TOKEN", expired)]);
    assert_eq!(old.status.code(), Some(2));
    assert!(stderr(&old).contains("expired"), "{}", stderr(&old));
    assert_eq!(reg.writes(), writes, "nothing was pushed");

    // SIGSTORE_ID_TOKEN, the usual override, signs.
    let ok = publish(&[("SIGSTORE_ID_TOKEN", sig.identity_token())]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert_no_token_leaked(&[none, wrong, old, ok], env.dir.path());
}

#[test]
fn a_desired_state_version_signed_keyless_verifies_with_sigstore_python_and_with_us() {
    let reg = Registry::plain();
    let sig = SigstoreStandIn::start();
    let env = Env::new();
    crate::desired::gitops_repo(&env, &reg);
    let mut s = Setup {
        reg,
        sig,
        env,
        outputs: Vec::new(),
    };
    let out = s.keyless("desired-state commit --sign keyless");
    assert!(out.status.success(), "{}", stderr(&out));
    let (manifest, bundles) = s.fetched("acme/poc-app-desired", "desired");
    assert_eq!(
        bundles.len(),
        1,
        "one signature, over the version's manifest"
    );

    // sigstore-python, offline, on the version's manifest as the registry serves it.
    let py = s.python(&bundles[0], &manifest, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
    assert!(
        py.status.success(),
        "sigstore-python refused: {}",
        stderr(&py)
    );
    let other = "https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main";
    let py = s.python(&bundles[0], &manifest, other, ACTIONS_ISSUER);
    assert!(
        !py.status.success(),
        "sigstore-python accepted another identity"
    );

    // Ours agrees, both ways.
    let desired = s.reg.repo("acme/poc-app-desired:desired");
    let ours = s.verify_as("desired-state", &desired, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let ours = s.verify_as("desired-state", &desired, other, ACTIONS_ISSUER);
    assert_eq!(ours.status.code(), Some(1), "{}", stderr(&ours));
    assert_no_token_leaked(&s.outputs, s.env.dir.path());
}

#[test]
fn mirror_signs_every_version_of_a_run_with_one_certificate_and_a_log_entry_each() {
    let reg = Registry::plain();
    let sig = SigstoreStandIn::start();
    let env = Env::new();
    crate::desired::gitops_repo(&env, &reg);
    for i in 2..=3 {
        env.write(
            "deployments/site-0001.yaml",
            &format!("siteId: site-000{i}\npollFrequency: 30s\n"),
        );
        crate::desired::git_commit(&env, &format!("2024-01-0{i}T00:00:00Z"), "site");
    }
    let mut s = Setup {
        reg,
        sig,
        env,
        outputs: Vec::new(),
    };
    let out = s.keyless("mirror --sign-all --sign keyless");
    assert!(out.status.success(), "{}", stderr(&out));
    let tags: Vec<String> = s
        .reg
        .tags("acme/poc-app-desired")
        .into_iter()
        .filter(|t| t.starts_with("2024"))
        .collect();
    assert_eq!(tags.len(), 3, "{tags:?}");
    let (mut certificates, mut entries) = (Vec::new(), Vec::new());
    for tag in &tags {
        let (manifest, bundles) = s.fetched("acme/poc-app-desired", tag);
        assert_eq!(bundles.len(), 1, "{tag}: one signature");
        let b: serde_json::Value = serde_json::from_slice(&bundles[0]).unwrap();
        certificates.push(b["verificationMaterial"]["certificate"]["rawBytes"].clone());
        entries.push(b["verificationMaterial"]["tlogEntries"][0]["logIndex"].clone());
        // Each verifies on its own, with sigstore-python.
        let py = s.python(&bundles[0], &manifest, WORKFLOW_IDENTITY, ACTIONS_ISSUER);
        assert!(py.status.success(), "{tag}: {}", stderr(&py));
    }
    certificates.dedup();
    assert_eq!(certificates.len(), 1, "one Fulcio certificate for the run");
    entries.sort_by_key(|e| e.to_string());
    entries.dedup();
    assert_eq!(
        entries.len(),
        3,
        "one Rekor entry per signature: {entries:?}"
    );
    assert_no_token_leaked(&s.outputs, s.env.dir.path());
}
