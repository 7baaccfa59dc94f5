//! A whole Sigstore instance in memory, for the verifier's unit tests: a CA, a CT log and a
//! Rekor log (P-256 keys), a leaf certificate with an embedded SCT, and a bundle with its
//! signed entry timestamp, inclusion proof and signed checkpoint. Every part is built
//! here from its definition (RFC 5280, RFC 6962, Rekor's SET payload, the signed-note
//! checkpoint), so that each check of the verifier can be shown refusing one broken part.

use std::time::Duration;

use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;
use sha2::Digest as _;
use x509_cert::der::asn1::{BitString, Ia5String, OctetString, UtcTime};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, SubjectAltName};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::bundle::{
    Bundle, Checkpoint, InclusionPromise, InclusionProof, Int, KindVersion, LogId, Material,
    RawBytes, TlogEntry,
};
use super::cert::{certificate_pem, Cert, PublicKey};
use super::log::hashedrekord_body;
use super::trust::{Authority, LogKey, TrustedRoot, Window};
use super::verify::{Match, Policy};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
pub const IDENTITY: &str =
    "https://github.com/acme/app/.github/workflows/publish.yml@refs/heads/main";
pub const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// When the log integrated the entry: inside every validity window below.
pub const SIGNED_AT: i64 = 1_700_000_000;

fn key() -> SigningKey {
    SigningKey::random(&mut rand_core::OsRng)
}

fn spki_der(k: &SigningKey) -> Vec<u8> {
    k.verifying_key()
        .to_public_key_der()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn log_key(k: &SigningKey) -> LogKey {
    let der = spki_der(k);
    LogKey {
        key_id: sha2::Sha256::digest(&der).to_vec(),
        key: PublicKey::P256(*k.verifying_key()),
        valid: Window::default(),
    }
}

fn time(t: i64) -> Time {
    Time::UtcTime(UtcTime::from_unix_duration(Duration::from_secs(t as u64)).unwrap())
}

fn extension(oid: &str, der: Vec<u8>) -> Extension {
    Extension {
        extn_id: oid.parse().unwrap(),
        critical: false,
        extn_value: OctetString::new(der).unwrap(),
    }
}

/// What the leaf certificate holds; each field can be broken by a test.
#[derive(Clone)]
pub struct LeafSpec {
    pub not_before: i64,
    pub not_after: i64,
    pub code_signing: bool,
    pub identity: Option<String>,
    pub issuer: Option<String>,
    /// Embed an SCT; `Some(false)` embeds one by an untrusted CT log.
    pub sct_by_trusted_log: Option<bool>,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec {
            not_before: SIGNED_AT - 60,
            not_after: SIGNED_AT + 540,
            code_signing: true,
            identity: Some(IDENTITY.into()),
            issuer: Some(ISSUER.into()),
            sct_by_trusted_log: Some(true),
        }
    }
}

/// A Sigstore instance and a bundle it produced over `artifact`.
pub struct Fixture {
    pub ca: SigningKey,
    pub ca_cert: Vec<u8>,
    pub ctlog: SigningKey,
    pub tlog: SigningKey,
    pub leaf_key: SigningKey,
    pub artifact: [u8; 32],
    pub bundle: Bundle,
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with(LeafSpec::default())
    }

    pub fn with(spec: LeafSpec) -> Fixture {
        let (ca, ctlog, tlog, leaf_key) = (key(), key(), key(), key());
        let ca_cert = ca_certificate(&ca, SIGNED_AT - 86_400, SIGNED_AT + 86_400);
        let artifact: [u8; 32] = sha2::Sha256::digest(b"the package manifest").into();
        let mut f = Fixture {
            ca,
            ca_cert,
            ctlog,
            tlog,
            leaf_key,
            artifact,
            bundle: Bundle::of_message(Material::default(), &[0; 32], &[]),
        };
        let leaf = f.leaf(&spec);
        f.bundle = f.bundle_for(&leaf);
        f
    }

    pub fn root(&self) -> TrustedRoot {
        TrustedRoot {
            tlogs: vec![log_key(&self.tlog)],
            ctlogs: vec![log_key(&self.ctlog)],
            authorities: vec![Authority {
                chain: vec![Cert::from_der(self.ca_cert.clone()).unwrap()],
                valid: Window::default(),
            }],
        }
    }

    pub fn policy() -> Policy {
        Policy {
            identity: Match::Exact(IDENTITY.into()),
            issuer: Match::Exact(ISSUER.into()),
        }
    }

    /// The leaf's TBS: `extensions` after the subject's key, serial 2, issued by the CA.
    fn tbs(&self, spec: &LeafSpec, extensions: Vec<Extension>) -> TbsCertificate {
        let ca = Certificate::from_der(&self.ca_cert).unwrap();
        TbsCertificate {
            version: Version::V3,
            serial_number: SerialNumber::new(&[2]).unwrap(),
            signature: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256.parse().unwrap(),
                parameters: None,
            },
            issuer: ca.tbs_certificate.subject.clone(),
            validity: Validity {
                not_before: time(spec.not_before),
                not_after: time(spec.not_after),
            },
            subject: Name::default(),
            subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki_der(&self.leaf_key))
                .unwrap(),
            issuer_unique_id: None,
            subject_unique_id: None,
            extensions: Some(extensions),
        }
    }

    /// The leaf certificate's DER, as Fulcio would issue it for `spec`.
    pub fn leaf(&self, spec: &LeafSpec) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(id) = &spec.identity {
            let san = SubjectAltName(vec![GeneralName::UniformResourceIdentifier(
                Ia5String::new(id).unwrap(),
            )]);
            exts.push(extension("2.5.29.17", san.to_der().unwrap()));
        }
        let usage = if spec.code_signing {
            "1.3.6.1.5.5.7.3.3"
        } else {
            "1.3.6.1.5.5.7.3.1"
        };
        let eku = ExtendedKeyUsage(vec![usage.parse().unwrap()]);
        exts.push(extension("2.5.29.37", eku.to_der().unwrap()));
        if let Some(iss) = &spec.issuer {
            exts.push(extension("1.3.6.1.4.1.57264.1.1", iss.as_bytes().to_vec()));
        }
        if let Some(trusted) = spec.sct_by_trusted_log {
            let precert = self.tbs(spec, exts.clone()).to_der().unwrap();
            let log = if trusted { self.ctlog.clone() } else { key() };
            let list = sct_list(&log, &self.ca, &precert);
            let ext_value = OctetString::new(list).unwrap().to_der().unwrap();
            exts.push(extension("1.3.6.1.4.1.11129.2.4.2", ext_value));
        }
        sign(self.tbs(spec, exts), &self.ca)
    }

    /// A bundle over the artifact, signed by the leaf key, logged in the Rekor log.
    pub fn bundle_for(&self, leaf: &[u8]) -> Bundle {
        let sig = self.signature(&self.artifact);
        self.bundle_with(leaf, &sig, leaf)
    }

    /// The leaf key's DER signature over the digest `of`.
    pub fn signature(&self, of: &[u8; 32]) -> Vec<u8> {
        let sig: p256::ecdsa::Signature = self.leaf_key.sign_prehash(of).unwrap();
        sig.to_der().as_bytes().to_vec()
    }

    /// Another valid signature over the artifact by the leaf key (randomised nonce).
    pub fn other_signature(&self) -> Vec<u8> {
        use p256::ecdsa::signature::hazmat::RandomizedPrehashSigner as _;
        let sig: p256::ecdsa::Signature = self
            .leaf_key
            .sign_prehash_with_rng(&mut rand_core::OsRng, &self.artifact)
            .unwrap();
        sig.to_der().as_bytes().to_vec()
    }

    /// A bundle of `leaf` and `sig` over the artifact, whose log entry records `logged`
    /// as the certificate.
    pub fn bundle_with(&self, leaf: &[u8], sig: &[u8], logged: &[u8]) -> Bundle {
        let body = hashedrekord_body(&self.artifact, sig, &certificate_pem(logged));
        let entry = self.log_entry(&body);
        Bundle::of_message(
            Material {
                certificate: Some(RawBytes {
                    raw_bytes: B64.encode(leaf),
                }),
                tlog_entries: vec![entry],
                ..Default::default()
            },
            &self.artifact,
            sig,
        )
    }

    /// The bundle's leaf certificate, as DER.
    pub fn leaf_der(&self) -> Vec<u8> {
        B64.decode(self.bundle.leaf_certificate().unwrap()).unwrap()
    }

    /// The log entry of `body`: index 0 of a tree of two, with SET and signed checkpoint.
    pub fn log_entry(&self, body: &str) -> TlogEntry {
        let b64_body = B64.encode(body);
        let key_id = sha2::Sha256::digest(spki_der(&self.tlog)).to_vec();
        let set_payload = format!(
            "{{\"body\":\"{b64_body}\",\"integratedTime\":{SIGNED_AT},\"logID\":\"{}\",\"logIndex\":0}}",
            hex::encode(&key_id)
        );
        let set: DerSignature = self.tlog.sign(set_payload.as_bytes());
        let leaf = leaf_hash(body.as_bytes());
        let other = leaf_hash(b"another entry");
        let root = node_hash(&leaf, &other);
        let note = format!("test-log\n2\n{}\n", B64.encode(root));
        let note_sig: DerSignature = self.tlog.sign(note.as_bytes());
        let mut signed = key_id[..4].to_vec();
        signed.extend_from_slice(note_sig.as_bytes());
        TlogEntry {
            log_index: Int(0),
            log_id: LogId {
                key_id: B64.encode(&key_id),
            },
            kind_version: KindVersion {
                kind: "hashedrekord".into(),
                version: "0.0.1".into(),
            },
            integrated_time: Int(SIGNED_AT),
            inclusion_promise: Some(InclusionPromise {
                signed_entry_timestamp: B64.encode(set.as_bytes()),
            }),
            inclusion_proof: Some(InclusionProof {
                log_index: Int(0),
                root_hash: B64.encode(root),
                tree_size: Int(2),
                hashes: vec![B64.encode(other)],
                checkpoint: Checkpoint {
                    envelope: format!("{note}\n\u{2014} test-log {}\n", B64.encode(signed)),
                },
            }),
            canonicalized_body: b64_body,
        }
    }
}

/// A self-signed CA certificate for `key`, valid from `nb` to `na`.
pub fn ca_certificate(key: &SigningKey, nb: i64, na: i64) -> Vec<u8> {
    ca_named(key, "CN=margo-gitops test CA", nb, na)
}

/// A self-signed CA certificate named `name`, valid around the signing time.
pub fn named_ca_certificate(key: &SigningKey, name: &str) -> Vec<u8> {
    ca_named(key, name, SIGNED_AT - 86_400, SIGNED_AT + 86_400)
}

fn ca_named(key: &SigningKey, name: &str, nb: i64, na: i64) -> Vec<u8> {
    let name: Name = name.parse().unwrap();
    let bc = BasicConstraints {
        ca: true,
        path_len_constraint: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[1]).unwrap(),
        signature: AlgorithmIdentifierOwned {
            oid: ECDSA_SHA256.parse().unwrap(),
            parameters: None,
        },
        issuer: name.clone(),
        validity: Validity {
            not_before: time(nb),
            not_after: time(na),
        },
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned::from_der(&spki_der(key)).unwrap(),
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(vec![extension("2.5.29.19", bc.to_der().unwrap())]),
    };
    sign(tbs, key)
}

/// The certificate of `tbs`, signed by `issuer`.
fn sign(tbs: TbsCertificate, issuer: &SigningKey) -> Vec<u8> {
    let sig: DerSignature = issuer.sign(&tbs.to_der().unwrap());
    Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(sig.as_bytes()).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// An SCT list (RFC 6962 §3.3) with one SCT by `log` over the pre-certificate `precert`.
fn sct_list(log: &SigningKey, issuer: &SigningKey, precert: &[u8]) -> Vec<u8> {
    let log_id: [u8; 32] = sha2::Sha256::digest(spki_der(log)).into();
    let timestamp_ms = (SIGNED_AT as u64) * 1000;
    let issuer_key_hash = sha2::Sha256::digest(spki_der(issuer));
    let mut signed = vec![0u8, 0u8];
    signed.extend_from_slice(&timestamp_ms.to_be_bytes());
    signed.extend_from_slice(&1u16.to_be_bytes());
    signed.extend_from_slice(&issuer_key_hash);
    signed.extend_from_slice(&(precert.len() as u32).to_be_bytes()[1..]);
    signed.extend_from_slice(precert);
    signed.extend_from_slice(&0u16.to_be_bytes());
    let sig: DerSignature = log.sign(&signed);
    let mut sct = vec![0u8];
    sct.extend_from_slice(&log_id);
    sct.extend_from_slice(&timestamp_ms.to_be_bytes());
    sct.extend_from_slice(&0u16.to_be_bytes());
    sct.extend_from_slice(&[4, 3]);
    sct.extend_from_slice(&(sig.as_bytes().len() as u16).to_be_bytes());
    sct.extend_from_slice(sig.as_bytes());
    let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
    list.extend_from_slice(&(sct.len() as u16).to_be_bytes());
    list.extend_from_slice(&sct);
    list
}

fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}
