//! Each check of the keyless verifier, shown refusing the one thing it exists to catch,
//! on a bundle from [`super::fixture`] with exactly that thing broken.

use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};

use super::fixture::{ca_certificate, Fixture, LeafSpec, ISSUER, SIGNED_AT};
use super::trust::{Authority, Window};
use super::verify::{verify, Match, Policy};
use crate::signing::refusal::Refusal;
use crate::signing::sigstore::bundle::Bundle;
use crate::signing::sigstore::cert::Cert;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn check(f: &Fixture, bundle: &Bundle) -> Result<(), Refusal> {
    verify(bundle, &f.artifact, &f.root(), &Fixture::policy()).map(|_| ())
}

fn refused(f: &Fixture, bundle: &Bundle, why: Refusal) {
    assert_eq!(check(f, bundle), Err(why));
}

fn with_leaf(spec: LeafSpec) -> Fixture {
    Fixture::with(spec)
}

#[test]
fn a_whole_bundle_verifies_and_says_who_signed_and_when() {
    let f = Fixture::new();
    let signed = verify(&f.bundle, &f.artifact, &f.root(), &Fixture::policy()).unwrap();
    assert_eq!(signed.identity, super::fixture::IDENTITY);
    assert_eq!(signed.issuer, ISSUER);
    assert_eq!(signed.integrated_time, SIGNED_AT);
    // And through a bundle's JSON, as it is stored.
    let again = Bundle::parse(&f.bundle.to_json()).unwrap();
    assert_eq!(check(&f, &again), Ok(()));
}

#[test]
fn what_the_bundle_carries() {
    let f = Fixture::new();
    let mut b = f.bundle.clone();
    b.verification_material.certificate = None;
    refused(&f, &b, Refusal::NoCertificate);

    let mut b = f.bundle.clone();
    b.verification_material
        .certificate
        .as_mut()
        .unwrap()
        .raw_bytes = "not base64!".into();
    refused(&f, &b, Refusal::CertificateNotBase64);

    let mut b = f.bundle.clone();
    b.verification_material
        .certificate
        .as_mut()
        .unwrap()
        .raw_bytes = B64.encode(b"junk");
    assert!(matches!(check(&f, &b), Err(Refusal::NotACertificate(_))));

    let mut b = f.bundle.clone();
    b.verification_material.tlog_entries.clear();
    refused(&f, &b, Refusal::NoLogEntry);

    let mut b = f.bundle.clone();
    b.message_signature.signature = "not base64!".into();
    refused(&f, &b, Refusal::SignatureNotBase64);

    assert_eq!(
        Bundle::parse(
            br#"{"mediaType":"x","verificationMaterial":{},"messageSignature":{"signature":""}}"#
        )
        .err(),
        Some(Refusal::UnknownBundleType("x".into()))
    );
    assert!(matches!(Bundle::parse(b"{}"), Err(Refusal::NotABundle(_))));
}

#[test]
fn the_transparency_log_entry() {
    let f = Fixture::new();
    let entry = |b: &mut Bundle| {
        b.verification_material
            .tlog_entries
            .first_mut()
            .unwrap()
            .clone()
    };
    let set = |b: &mut Bundle, e: super::bundle::TlogEntry| {
        b.verification_material.tlog_entries[0] = e;
    };

    let mut b = f.bundle.clone();
    let mut e = entry(&mut b);
    e.log_id.key_id = "not base64!".into();
    set(&mut b, e);
    refused(&f, &b, Refusal::LogIdNotBase64);

    let mut root = f.root();
    root.tlogs.clear();
    let r = verify(&f.bundle, &f.artifact, &root, &Fixture::policy());
    assert_eq!(r.err(), Some(Refusal::UnknownLog));

    let mut b = f.bundle.clone();
    let mut e = entry(&mut b);
    e.inclusion_promise = None;
    set(&mut b, e);
    refused(&f, &b, Refusal::NoSignedEntryTimestamp);

    // A SET by another key than the log's.
    let mut b = f.bundle.clone();
    let mut e = entry(&mut b);
    let forged: DerSignature = SigningKey::random(&mut rand_core::OsRng).sign(b"payload");
    e.inclusion_promise.as_mut().unwrap().signed_entry_timestamp = B64.encode(forged.as_bytes());
    set(&mut b, e);
    refused(&f, &b, Refusal::BadSignedEntryTimestamp);

    // The time the log vouches for changes what the SET signs.
    let mut b = f.bundle.clone();
    let mut e = entry(&mut b);
    e.integrated_time.0 += 1;
    set(&mut b, e);
    refused(&f, &b, Refusal::BadSignedEntryTimestamp);

    let mut root = f.root();
    root.tlogs[0].valid = Window {
        start: None,
        end: Some(SIGNED_AT - 1),
    };
    let r = verify(&f.bundle, &f.artifact, &root, &Fixture::policy());
    assert_eq!(r.err(), Some(Refusal::LogKeyNotValidThen));

    let mut b = f.bundle.clone();
    let mut e = entry(&mut b);
    e.kind_version.kind = "intoto".into();
    set(&mut b, e);
    refused(&f, &b, Refusal::NotAHashedRekord("intoto".into()));
    let mut b = f.bundle.clone();
    let mut e = entry(&mut b);
    e.kind_version.version = "0.0.2".into();
    set(&mut b, e);
    refused(
        &f,
        &b,
        Refusal::EntryKindNotItsBody {
            said: "hashedrekord 0.0.2".into(),
            body: "hashedrekord 0.0.1".into(),
        },
    );

    // A body the log really holds (SET and proof good) that is not JSON.
    let mut b = f.bundle.clone();
    set(&mut b, f.log_entry("not json"));
    refused(&f, &b, Refusal::BodyNotJson);
}

#[test]
fn the_inclusion_proof_and_the_checkpoint() {
    let f = Fixture::new();
    let with_proof = |edit: &dyn Fn(&mut super::bundle::InclusionProof)| {
        let mut b = f.bundle.clone();
        edit(
            b.verification_material.tlog_entries[0]
                .inclusion_proof
                .as_mut()
                .unwrap(),
        );
        b
    };
    let mut b = f.bundle.clone();
    b.verification_material.tlog_entries[0].inclusion_proof = None;
    refused(&f, &b, Refusal::NoInclusionProof);

    let b = with_proof(&|p| p.hashes[0] = "AAAA".into());
    refused(&f, &b, Refusal::MalformedProofHash);
    let b = with_proof(&|p| p.root_hash = "not base64!".into());
    refused(&f, &b, Refusal::RootHashNotBase64);
    let b = with_proof(&|p| p.tree_size.0 = -1);
    refused(&f, &b, Refusal::NegativeProof);
    let b = with_proof(&|p| p.log_index.0 = 5);
    refused(&f, &b, Refusal::ProofDoesNotFit);
    let b = with_proof(&|p| {
        let mut raw = B64.decode(&p.hashes[0]).unwrap();
        raw[0] ^= 1;
        p.hashes[0] = B64.encode(raw);
    });
    refused(&f, &b, Refusal::WrongRootHash);

    // A checkpoint signed by the log, but for another tree.
    let b = with_proof(&|p| {
        let other = f.log_entry("another body");
        p.checkpoint = other.inclusion_proof.unwrap().checkpoint;
    });
    refused(&f, &b, Refusal::CheckpointForAnotherTree);
    // A checkpoint whose signature is not the log's.
    let b = with_proof(&|p| {
        let (text, _) = p.checkpoint.envelope.split_once("\n\n").unwrap();
        let forged: DerSignature =
            SigningKey::random(&mut rand_core::OsRng).sign(format!("{text}\n").as_bytes());
        let mut sig = vec![0u8; 4];
        sig.extend_from_slice(forged.as_bytes());
        p.checkpoint.envelope = format!("{text}\n\n\u{2014} test-log {}\n", B64.encode(sig));
    });
    refused(&f, &b, Refusal::CheckpointNotSigned);
    let b = with_proof(&|p| p.checkpoint.envelope = "no blank line".into());
    refused(&f, &b, Refusal::CheckpointNotANote);
    // A signature line that is not `— name signature`, even beside a good one.
    for bad in [
        "\u{2014} test log",
        "\u{2014} test-log a b",
        "\u{2014}  AAAA",
        "-- test-log AAAA",
    ] {
        let b = with_proof(&|p| p.checkpoint.envelope.push_str(&format!("{bad}\n")));
        refused(&f, &b, Refusal::CheckpointNotANote);
    }
}

#[test]
fn the_certificate_chain_and_its_validity() {
    let f = Fixture::new();
    let verify_with = |edit: &dyn Fn(&mut super::trust::TrustedRoot)| {
        let mut root = f.root();
        edit(&mut root);
        verify(&f.bundle, &f.artifact, &root, &Fixture::policy()).err()
    };
    let other = SigningKey::random(&mut rand_core::OsRng);
    assert_eq!(
        verify_with(&|r| r.authorities.clear()),
        Some(Refusal::NoTrustedAuthority)
    );
    assert_eq!(
        verify_with(&|r| r.authorities[0].valid = Window {
            start: Some(SIGNED_AT + 1),
            end: None,
        }),
        Some(Refusal::AuthorityNotValidThen)
    );
    // The same CA name with another key: the leaf's signature does not verify.
    let impostor = ca_certificate(&other, SIGNED_AT - 86_400, SIGNED_AT + 86_400);
    assert_eq!(
        verify_with(&|r| r.authorities = vec![Authority {
            chain: vec![Cert::from_der(impostor.clone()).unwrap()],
            valid: Window::default(),
        }]),
        Some(Refusal::BadCertificateSignature)
    );
    // The CA certificate itself expired before the signing time.
    let expired = ca_certificate(&f.ca, SIGNED_AT - 86_400, SIGNED_AT - 1);
    assert_eq!(
        verify_with(&|r| r.authorities[0].chain = vec![Cert::from_der(expired.clone()).unwrap()]),
        Some(Refusal::CaCertificateNotValidThen)
    );
    // A chain whose second link does not issue the first.
    let stranger = SigningKey::random(&mut rand_core::OsRng);
    let unrelated = super::fixture::named_ca_certificate(&stranger, "CN=someone else");
    assert_eq!(
        verify_with(&|r| r.authorities[0]
            .chain
            .push(Cert::from_der(unrelated.clone()).unwrap())),
        Some(Refusal::BrokenChain)
    );

    let expired_leaf = with_leaf(LeafSpec {
        not_after: SIGNED_AT - 1,
        ..LeafSpec::default()
    });
    refused(
        &expired_leaf,
        &expired_leaf.bundle,
        Refusal::OutsideCertificateValidity,
    );
}

#[test]
fn the_certificate_timestamp_and_usage() {
    let no_sct = with_leaf(LeafSpec {
        sct_by_trusted_log: None,
        ..LeafSpec::default()
    });
    refused(&no_sct, &no_sct.bundle, Refusal::NoSct);
    let untrusted = with_leaf(LeafSpec {
        sct_by_trusted_log: Some(false),
        ..LeafSpec::default()
    });
    refused(&untrusted, &untrusted.bundle, Refusal::BadSct);
    // A trusted CT log outside its validity window at the SCT's time.
    let f = Fixture::new();
    let mut root = f.root();
    root.ctlogs[0].valid = Window {
        start: Some(SIGNED_AT + 1),
        end: None,
    };
    let r = verify(&f.bundle, &f.artifact, &root, &Fixture::policy());
    assert_eq!(r.err(), Some(Refusal::BadSct));

    let server = with_leaf(LeafSpec {
        code_signing: false,
        ..LeafSpec::default()
    });
    refused(&server, &server.bundle, Refusal::NotForCodeSigning);
}

#[test]
fn the_signature_and_what_the_log_recorded() {
    let f = Fixture::new();
    // Another artifact than the one the store serves.
    let other: [u8; 32] = [9; 32];
    let r = verify(&f.bundle, &other, &f.root(), &Fixture::policy());
    assert_eq!(r.err(), Some(Refusal::AnotherArtifact));
    // Without the bundle's own digest, the log entry still names the artifact.
    let mut b = f.bundle.clone();
    b.message_signature.message_digest = None;
    let r = verify(&b, &other, &f.root(), &Fixture::policy());
    assert_eq!(r.err(), Some(Refusal::EntryForAnotherArtifact));

    // A second valid signature by the same key, not the one the log recorded.
    let mut b = f.bundle.clone();
    b.message_signature.signature = B64.encode(f.other_signature());
    refused(&f, &b, Refusal::EntryWithAnotherSignature);

    // The log recorded another certificate than the bundle's.
    let leaf = f.leaf_der();
    let other_leaf = f.leaf(&LeafSpec {
        not_after: SIGNED_AT + 541,
        ..LeafSpec::default()
    });
    let sig = f.signature(&f.artifact);
    let b = f.bundle_with(&leaf, &sig, &other_leaf);
    refused(&f, &b, Refusal::EntryWithAnotherCertificate);

    // A signature over something else, faithfully logged.
    let wrong = f.signature(&[7; 32]);
    let b = f.bundle_with(&leaf, &wrong, &leaf);
    refused(&f, &b, Refusal::BadArtifactSignature);
}

#[test]
fn who_signed() {
    let f = Fixture::new();
    let policy = |identity: Match, issuer: Match| Policy { identity, issuer };
    let r = verify(
        &f.bundle,
        &f.artifact,
        &f.root(),
        &policy(
            Match::Exact("https://github.com/evil/fork".into()),
            Match::Exact(ISSUER.into()),
        ),
    );
    assert!(
        matches!(r, Err(Refusal::WrongIdentity { ref wanted, .. }) if wanted == "`https://github.com/evil/fork`")
    );
    let r = verify(
        &f.bundle,
        &f.artifact,
        &f.root(),
        &policy(
            Match::regex("https://github.com/acme/.*").unwrap(),
            Match::regex("https://accounts\\.google\\.com").unwrap(),
        ),
    );
    assert!(matches!(r, Err(Refusal::WrongIssuer { .. })), "{r:?}");
    // An anchored regex: a prefix is not enough.
    let r = verify(
        &f.bundle,
        &f.artifact,
        &f.root(),
        &policy(
            Match::regex("https://github.com/acme").unwrap(),
            Match::Exact(ISSUER.into()),
        ),
    );
    assert!(matches!(r, Err(Refusal::WrongIdentity { .. })));

    let anonymous = with_leaf(LeafSpec {
        identity: None,
        ..LeafSpec::default()
    });
    refused(&anonymous, &anonymous.bundle, Refusal::NoIdentity);
    let no_issuer = with_leaf(LeafSpec {
        issuer: None,
        ..LeafSpec::default()
    });
    refused(&no_issuer, &no_issuer.bundle, Refusal::NoIssuer);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Random bytes, and a valid bundle's JSON with bytes changed, through the bundle
        /// reader and the whole verifier: never a panic, and nothing changed is accepted
        /// unless the change left the JSON meaning the same (whitespace, say).
        #[test]
        fn the_bundle_reader_and_verifier_take_any_input(
            noise in proptest::collection::vec(any::<u8>(), 0..1024),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        ) {
            let f = fixture();
            if let Ok(b) = Bundle::parse(&noise) {
                prop_assert!(check(f, &b).is_err());
            }
            let json = f.bundle.to_json();
            let mut bytes = json.clone();
            for (at, byte) in flips {
                let i = at % bytes.len();
                bytes[i] = byte;
            }
            if let Ok(b) = Bundle::parse(&bytes) {
                if check(f, &b).is_ok() {
                    let b = unsigned_parts_restored(b, &f.bundle);
                    prop_assert_eq!(b.to_json(), json, "a changed bundle verified");
                }
            }
        }
    }

    /// One fixture for every case (making one signs and logs).
    /// Two parts of a bundle no signature covers, by design: the message digest is
    /// optional (the log entry names the artifact), and the name in a checkpoint's
    /// signature line is not signed (the log's key is found by its hint). A change there
    /// that still verifies changes nothing a verifier relies on.
    fn unsigned_parts_restored(mut b: Bundle, original: &Bundle) -> Bundle {
        if b.message_signature.message_digest.is_none() {
            b.message_signature.message_digest = original.message_signature.message_digest.clone();
        }
        let name = |envelope: &str| {
            let line = envelope.lines().rfind(|l| l.starts_with('\u{2014}'));
            line.and_then(|l| l.split(' ').nth(1)).map(str::to_owned)
        };
        let was = &original.verification_material.tlog_entries[0];
        let now = &mut b.verification_material.tlog_entries[0];
        if let (Some(p), Some(q)) = (&mut now.inclusion_proof, &was.inclusion_proof) {
            if let (Some(n), Some(m)) = (name(&p.checkpoint.envelope), name(&q.checkpoint.envelope))
            {
                p.checkpoint.envelope = p
                    .checkpoint
                    .envelope
                    .replace(&format!("\u{2014} {n} "), &format!("\u{2014} {m} "));
            }
        }
        b
    }

    fn fixture() -> &'static Fixture {
        static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
        F.get_or_init(Fixture::new)
    }
}
