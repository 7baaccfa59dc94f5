//! The Sigstore bundle (v0.3, `application/vnd.dev.sigstore.bundle.v0.3+json`) as JSON.
//!
//! Only the parts a message signature over an artifact uses: the verification material
//! (a leaf certificate, or a public-key hint in key mode; transparency-log entries) and the
//! message signature. 64-bit integers are strings in the protobuf JSON mapping; both forms
//! are read, strings are written.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::signing::refusal::Refusal;

pub(crate) const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Older bundle versions, read for verification only.
pub(crate) const OLDER_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle.v0.2+json",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Bundle {
    pub media_type: String,
    pub verification_material: Material,
    pub message_signature: MessageSignature,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Material {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<RawBytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x509_certificate_chain: Option<CertChain>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PublicKeyHint>,
    #[serde(default)]
    pub tlog_entries: Vec<TlogEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RawBytes {
    /// Base64 of DER.
    pub raw_bytes: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CertChain {
    pub certificates: Vec<RawBytes>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PublicKeyHint {
    pub hint: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageSignature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_digest: Option<MessageDigest>,
    /// Base64 of the DER ECDSA signature.
    pub signature: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MessageDigest {
    pub algorithm: String,
    /// Base64 of the digest.
    pub digest: String,
}

/// One Rekor entry with its promise (SET) and proof of inclusion.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TlogEntry {
    pub log_index: Int,
    pub log_id: LogId,
    pub kind_version: KindVersion,
    pub integrated_time: Int,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_promise: Option<InclusionPromise>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_proof: Option<InclusionProof>,
    /// Base64 of the entry body exactly as the log stored it.
    pub canonicalized_body: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogId {
    /// Base64 of the SHA-256 of the log's public key (DER SubjectPublicKeyInfo).
    pub key_id: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KindVersion {
    pub kind: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionPromise {
    /// Base64 of the log's signature over the entry (the SET).
    pub signed_entry_timestamp: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InclusionProof {
    pub log_index: Int,
    /// Base64 of the tree's root hash.
    pub root_hash: String,
    pub tree_size: Int,
    /// Base64 of each hash on the audit path, leaf to root.
    #[serde(default)]
    pub hashes: Vec<String>,
    pub checkpoint: Checkpoint,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    /// The signed note: origin, tree size, root hash, blank line, signatures.
    pub envelope: String,
}

/// A protobuf int64: written as a JSON string, read from a string or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Int(pub i64);

impl Serialize for Int {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(i64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::N(n) => Ok(Int(n)),
            Either::S(s) => s
                .parse()
                .map(Int)
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not an integer"))),
        }
    }
}

impl Bundle {
    /// A v0.3 bundle of a DER signature over the artifact whose SHA-256 is `digest`.
    pub(crate) fn of_message(
        material: Material,
        digest: &[u8; 32],
        der_signature: &[u8],
    ) -> Bundle {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        Bundle {
            media_type: MEDIA_TYPE.into(),
            verification_material: material,
            message_signature: MessageSignature {
                message_digest: Some(MessageDigest {
                    algorithm: "SHA2_256".into(),
                    digest: b64.encode(digest),
                }),
                signature: b64.encode(der_signature),
            },
        }
    }

    /// Reads a bundle, refusing media types we do not know.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Bundle, Refusal> {
        let b: Bundle =
            serde_json::from_slice(bytes).map_err(|e| Refusal::NotABundle(e.to_string()))?;
        if b.media_type != MEDIA_TYPE && !OLDER_MEDIA_TYPES.contains(&b.media_type.as_str()) {
            return Err(Refusal::UnknownBundleType(b.media_type));
        }
        Ok(b)
    }

    /// The leaf certificate (DER, base64), where the bundle has one.
    pub(crate) fn leaf_certificate(&self) -> Option<&str> {
        let m = &self.verification_material;
        m.certificate
            .as_ref()
            .map(|c| c.raw_bytes.as_str())
            .or_else(|| {
                m.x509_certificate_chain
                    .as_ref()
                    .and_then(|c| c.certificates.first())
                    .map(|c| c.raw_bytes.as_str())
            })
    }

    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_from_strings_and_numbers_and_write_as_strings() {
        let e: InclusionProof = serde_json::from_str(
            r#"{"logIndex":"7","rootHash":"","treeSize":8,"checkpoint":{"envelope":""}}"#,
        )
        .unwrap();
        assert_eq!((e.log_index, e.tree_size), (Int(7), Int(8)));
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains(r#""treeSize":"8""#), "{json}");
    }
}
