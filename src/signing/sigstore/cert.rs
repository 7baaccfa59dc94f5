//! X.509 and ECDSA for Sigstore: public keys, certificate signatures, Fulcio's identity
//! extensions and the embedded signed certificate timestamps (RFC 6962) of a leaf.
//!
//! Signatures are checked over the exact bytes that were signed (the TBS certificate is
//! cut out of the certificate's own DER, never re-encoded), except for the SCT, whose
//! signed pre-certificate is by definition the TBS re-encoded without the SCT extension.

use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::pkcs8::DecodePublicKey as _;
use sha2::Digest as _;
use x509_cert::der::asn1::{OctetString, Utf8StringRef};
use x509_cert::der::Reader as _;
use x509_cert::der::{Decode, Encode, Header, SliceReader};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{ExtendedKeyUsage, SubjectAltName};
use x509_cert::Certificate;

use crate::signing::refusal::Refusal;

const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
const OID_SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
const OID_SAN: &str = "2.5.29.17";
const OID_EKU: &str = "2.5.29.37";
const OID_CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
/// Fulcio's OIDC issuer extensions: v1 (raw bytes) and v2 (DER UTF8String).
const OID_ISSUER_V1: &str = "1.3.6.1.4.1.57264.1.1";
const OID_ISSUER_V2: &str = "1.3.6.1.4.1.57264.1.8";

/// Which hash a signature was made over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
        }
    }
}

/// An ECDSA public key on one of the curves Sigstore uses.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// From a DER SubjectPublicKeyInfo.
    pub(crate) fn from_spki_der(der: &[u8]) -> Result<PublicKey, Refusal> {
        p256::ecdsa::VerifyingKey::from_public_key_der(der)
            .map(PublicKey::P256)
            .or_else(|_| p384::ecdsa::VerifyingKey::from_public_key_der(der).map(PublicKey::P384))
            .map_err(|_| Refusal::NotEcdsaKey)
    }

    /// Checks a DER ECDSA signature over `message` hashed with `hash`.
    pub(crate) fn verify(&self, hash: Hash, message: &[u8], der_sig: &[u8]) -> Result<(), Refusal> {
        self.verify_prehash(&hash.digest(message), der_sig)
    }

    /// Checks a DER ECDSA signature over a message whose digest is `prehash`.
    pub(crate) fn verify_prehash(&self, prehash: &[u8], der_sig: &[u8]) -> Result<(), Refusal> {
        let ok = match self {
            PublicKey::P256(k) => p256::ecdsa::Signature::from_der(der_sig)
                .is_ok_and(|s| k.verify_prehash(prehash, &s).is_ok()),
            PublicKey::P384(k) => p384::ecdsa::Signature::from_der(der_sig)
                .is_ok_and(|s| k.verify_prehash(prehash, &s).is_ok()),
        };
        ok.then_some(()).ok_or(Refusal::BadSignature)
    }
}

/// A parsed certificate with its DER.
pub(crate) struct Cert {
    pub der: Vec<u8>,
    pub cert: Certificate,
}

impl Cert {
    pub(crate) fn from_der(der: Vec<u8>) -> Result<Cert, Refusal> {
        let cert =
            Certificate::from_der(&der).map_err(|e| Refusal::NotACertificate(e.to_string()))?;
        Ok(Cert { der, cert })
    }

    pub(crate) fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .subject
            .to_der()
            .unwrap_or_default()
    }

    pub(crate) fn issuer_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .issuer
            .to_der()
            .unwrap_or_default()
    }

    pub(crate) fn spki_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap_or_default()
    }

    pub(crate) fn public_key(&self) -> Result<PublicKey, Refusal> {
        PublicKey::from_spki_der(&self.spki_der())
    }

    /// Validity as Unix seconds: (not before, not after).
    pub(crate) fn validity(&self) -> (u64, u64) {
        let v = &self.cert.tbs_certificate.validity;
        (
            v.not_before.to_unix_duration().as_secs(),
            v.not_after.to_unix_duration().as_secs(),
        )
    }

    /// Checks that `issuer`'s key signed this certificate.
    pub(crate) fn verify_signed_by(&self, issuer: &PublicKey) -> Result<(), Refusal> {
        let hash = match self.cert.signature_algorithm.oid.to_string().as_str() {
            OID_ECDSA_SHA256 => Hash::Sha256,
            OID_ECDSA_SHA384 => Hash::Sha384,
            other => return Err(Refusal::UnsupportedAlgorithm(other.to_string())),
        };
        let tbs = first_element(&self.der).ok_or(Refusal::MalformedCertificate)?;
        let sig = self
            .cert
            .signature
            .as_bytes()
            .ok_or(Refusal::MalformedCertificateSignature)?;
        issuer.verify(hash, tbs, sig)
    }

    fn extension(&self, oid: &str) -> Option<&[u8]> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id.to_string() == oid)
            .map(|e| e.extn_value.as_bytes())
    }

    /// The identity Fulcio certified: the SAN URI, e-mail or other name.
    pub(crate) fn identity(&self) -> Option<String> {
        let san = SubjectAltName::from_der(self.extension(OID_SAN)?).ok()?;
        san.0.iter().find_map(|n| match n {
            GeneralName::UniformResourceIdentifier(u) => Some(u.to_string()),
            GeneralName::Rfc822Name(e) => Some(e.to_string()),
            GeneralName::OtherName(o) => Utf8StringRef::from_der(&o.value.to_der().ok()?)
                .ok()
                .map(|s| s.as_str().to_string()),
            _ => None,
        })
    }

    /// The OIDC issuer Fulcio recorded (extension 1.3.6.1.4.1.57264.1.8, else .1.1).
    pub(crate) fn oidc_issuer(&self) -> Option<String> {
        if let Some(v2) = self.extension(OID_ISSUER_V2) {
            return Utf8StringRef::from_der(v2)
                .ok()
                .map(|s| s.as_str().to_string());
        }
        self.extension(OID_ISSUER_V1)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string)
    }

    /// Whether the certificate may sign code (extended key usage).
    pub(crate) fn allows_code_signing(&self) -> bool {
        self.extension(OID_EKU)
            .and_then(|v| ExtendedKeyUsage::from_der(v).ok())
            .is_some_and(|eku| eku.0.iter().any(|o| o.to_string() == OID_CODE_SIGNING))
    }

    /// The embedded SCTs, and the pre-certificate TBS they sign (this TBS, SCT list removed).
    pub(crate) fn embedded_scts(&self) -> Result<(Vec<Sct>, Vec<u8>), Refusal> {
        let Some(ext) = self.extension(OID_SCT_LIST) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let list = OctetString::from_der(ext).map_err(|_| Refusal::MalformedSctList)?;
        let scts = parse_sct_list(list.as_bytes()).ok_or(Refusal::MalformedSctList)?;
        let mut tbs = self.cert.tbs_certificate.clone();
        if let Some(exts) = tbs.extensions.as_mut() {
            exts.retain(|e| e.extn_id.to_string() != OID_SCT_LIST);
        }
        let tbs = tbs
            .to_der()
            .map_err(|e| Refusal::TbsEncoding(e.to_string()))?;
        Ok((scts, tbs))
    }
}

/// One signed certificate timestamp (RFC 6962 §3.2).
#[derive(Clone, Debug)]
pub(crate) struct Sct {
    pub log_id: [u8; 32],
    pub timestamp_ms: u64,
    pub extensions: Vec<u8>,
    pub hash_algorithm: u8,
    pub signature: Vec<u8>,
}

impl Sct {
    /// The bytes the log signed for a pre-certificate with `issuer_key_hash`.
    pub(crate) fn signed_data(&self, issuer_key_hash: &[u8], precert_tbs: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8, 0u8]; // v1, certificate_timestamp
        d.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        d.extend_from_slice(&1u16.to_be_bytes()); // precert_entry
        d.extend_from_slice(issuer_key_hash);
        d.extend_from_slice(&(precert_tbs.len() as u32).to_be_bytes()[1..]);
        d.extend_from_slice(precert_tbs);
        d.extend_from_slice(&(self.extensions.len() as u16).to_be_bytes());
        d.extend_from_slice(&self.extensions);
        d
    }

    pub(crate) fn hash(&self) -> Option<Hash> {
        match self.hash_algorithm {
            4 => Some(Hash::Sha256),
            5 => Some(Hash::Sha384),
            _ => None,
        }
    }
}

fn parse_sct_list(b: &[u8]) -> Option<Vec<Sct>> {
    let mut r = Reader(b);
    let total = r.u16()? as usize;
    let mut list = Reader(r.take(total)?);
    let mut out = Vec::new();
    while !list.0.is_empty() {
        let len = list.u16()? as usize;
        let mut s = Reader(list.take(len)?);
        if s.u8()? != 0 {
            continue; // only v1 exists
        }
        let log_id: [u8; 32] = s.take(32)?.try_into().ok()?;
        let timestamp_ms = u64::from_be_bytes(s.take(8)?.try_into().ok()?);
        let ext_len = s.u16()? as usize;
        let extensions = s.take(ext_len)?.to_vec();
        let hash_algorithm = s.u8()?;
        let _signature_algorithm = s.u8()?;
        let sig_len = s.u16()? as usize;
        let signature = s.take(sig_len)?.to_vec();
        out.push(Sct {
            log_id,
            timestamp_ms,
            extensions,
            hash_algorithm,
            signature,
        });
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        (self.0.len() >= n).then(|| {
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            a
        })
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// The first element (tag, length and value) inside the DER SEQUENCE `der`, as its bytes.
fn first_element(der: &[u8]) -> Option<&[u8]> {
    let mut reader = SliceReader::new(der).ok()?;
    Header::decode(&mut reader).ok()?;
    reader.tlv_bytes().ok()
}

/// The DER of a PEM `CERTIFICATE`: strict RFC 7468 first, else its lax form (any
/// whitespace inside the base64, as Sigstore's own test Fulcio writes it on one line).
pub(crate) fn pem_certificate(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if let Ok(("CERTIFICATE", der)) = pem_rfc7468::decode_vec(text.trim().as_bytes()) {
        return Some(der);
    }
    let body = text
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE-----")?
        .strip_suffix("-----END CERTIFICATE-----")?;
    let b64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A certificate as PEM with 64-column lines and a final newline, as Go (and so Rekor)
/// writes it.
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    pem_rfc7468::encode_string("CERTIFICATE", pem_rfc7468::LineEnding::LF, der)
        .expect("a certificate encodes as PEM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_and_the_first_element_is_cut_exactly() {
        let der = vec![0x30, 0x06, 0x30, 0x01, 0x00, 0x02, 0x01, 0x05];
        let pem = certificate_pem(&der);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\nMAYwAQACAQU=\n"));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"), "{pem}");
        assert_eq!(pem_certificate(&pem), Some(der.clone()));
        let one_line = "-----BEGIN CERTIFICATE-----\nMAYwAQACAQU=\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_certificate(one_line), Some(der.clone()));
        let long = certificate_pem(&[7u8; 100]);
        let unwrapped = long.replacen("\n", "\r\n", 2).replace("\n\r", "");
        assert_eq!(pem_certificate(&unwrapped), Some(vec![7u8; 100]));
        assert_eq!(
            pem_certificate(&pem.replace("CERTIFICATE", "PUBLIC KEY")),
            None
        );
        assert_eq!(first_element(&der), Some(&der[2..5]));
        assert_eq!(first_element(&[0x30, 0x05, 0x30]), None);
    }

    #[test]
    fn sct_lists_parse_and_refuse_truncation() {
        let mut sct = vec![0u8];
        sct.extend([7u8; 32]);
        sct.extend(5u64.to_be_bytes());
        sct.extend([0, 0, 4, 3, 0, 2, 0xaa, 0xbb]);
        let mut list = ((sct.len() + 2) as u16).to_be_bytes().to_vec();
        list.extend((sct.len() as u16).to_be_bytes());
        list.extend(&sct);
        let parsed = parse_sct_list(&list).unwrap();
        assert_eq!(parsed[0].timestamp_ms, 5);
        assert_eq!(parsed[0].signature, vec![0xaa, 0xbb]);
        assert!(parse_sct_list(&list[..list.len() - 1]).is_none());
    }
}
