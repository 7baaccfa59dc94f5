//! Rekor, the transparency log: adding a `hashedrekord` 0.0.1 entry (`POST
//! /api/v1/log/entries`), and checking an entry's promise and proof offline: the signed
//! entry timestamp (SET), the RFC 6962 inclusion proof, and the signed-note checkpoint
//! that commits the log to that root.

use base64::Engine as _;
use serde::Deserialize;
use sha2::Digest as _;

use super::bundle::{
    Checkpoint, InclusionPromise, InclusionProof, Int, KindVersion, LogId, TlogEntry,
};
use super::cert::Hash;
use super::trust::LogKey;
use crate::error::{Error, Result};
use crate::signing::refusal::Refusal;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The entry body we submit; Rekor stores it canonicalised (sorted keys, no spaces), which
/// is exactly how `serde_json` writes this struct.
pub(crate) fn hashedrekord_body(
    artifact_sha256: &[u8],
    signature: &[u8],
    cert_pem: &str,
) -> String {
    serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(artifact_sha256)}},
            "signature": {
                "content": B64.encode(signature),
                "publicKey": {"content": B64.encode(cert_pem)}
            }
        }
    })
    .to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson {
    body: String,
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    log_index: i64,
    verification: Option<VerificationJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerificationJson {
    inclusion_proof: Option<ProofJson>,
    signed_entry_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProofJson {
    checkpoint: String,
    #[serde(default)]
    hashes: Vec<String>,
    log_index: i64,
    root_hash: String,
    tree_size: i64,
}

/// Adds the entry to the log at `url`; returns it as a bundle's tlog entry.
pub(crate) async fn submit(http: &reqwest::Client, url: &str, body: String) -> Result<TlogEntry> {
    let service = format!("Rekor {url}");
    let resp = http
        .post(format!("{url}/api/v1/log/entries"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| Error::service(&service, format!("cannot reach it: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| Error::service(&service, format!("cannot read the answer: {e}")))?;
    if status.as_u16() != 201 && status.as_u16() != 200 {
        return Err(Error::service(
            &service,
            format!("refused the entry ({status}): {}", first_line(&text)),
        ));
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| Error::service(&service, format!("unexpected answer: {e}")))?;
    let entry: EntryJson = map
        .into_iter()
        .next()
        .and_then(|(_, v)| serde_json::from_value(v).ok())
        .ok_or_else(|| Error::service(&service, "the answer holds no entry"))?;
    let hex_to_b64 = |h: &str| {
        hex::decode(h)
            .map(|b| B64.encode(b))
            .map_err(|_| Error::service(&service, "a hash in the answer is not hex"))
    };
    let v = entry
        .verification
        .ok_or_else(|| Error::service(&service, "the entry has no verification data"))?;
    let proof = v
        .inclusion_proof
        .ok_or_else(|| Error::service(&service, "the entry has no inclusion proof"))?;
    Ok(TlogEntry {
        log_index: Int(entry.log_index),
        log_id: LogId {
            key_id: hex_to_b64(&entry.log_id)?,
        },
        kind_version: KindVersion {
            kind: "hashedrekord".into(),
            version: "0.0.1".into(),
        },
        integrated_time: Int(entry.integrated_time),
        inclusion_promise: v.signed_entry_timestamp.map(|s| InclusionPromise {
            signed_entry_timestamp: s,
        }),
        inclusion_proof: Some(InclusionProof {
            log_index: Int(proof.log_index),
            root_hash: hex_to_b64(&proof.root_hash)?,
            tree_size: Int(proof.tree_size),
            hashes: proof
                .hashes
                .iter()
                .map(|h| hex_to_b64(h))
                .collect::<Result<_>>()?,
            checkpoint: Checkpoint {
                envelope: proof.checkpoint,
            },
        }),
        canonicalized_body: entry.body,
    })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Checks the SET: the log's signature over body, time, log id and index.
pub(crate) fn verify_set(entry: &TlogEntry, log: &LogKey) -> std::result::Result<(), Refusal> {
    let promise = entry
        .inclusion_promise
        .as_ref()
        .ok_or(Refusal::NoSignedEntryTimestamp)?;
    let sig = B64
        .decode(&promise.signed_entry_timestamp)
        .map_err(|_| Refusal::SignedEntryTimestampNotBase64)?;
    // Canonical JSON: keys sorted, no spaces.
    let payload = format!(
        "{{\"body\":{},\"integratedTime\":{},\"logID\":\"{}\",\"logIndex\":{}}}",
        serde_json::Value::from(entry.canonicalized_body.as_str()),
        entry.integrated_time.0,
        hex::encode(&log.key_id),
        entry.log_index.0
    );
    log.key
        .verify(Hash::Sha256, payload.as_bytes(), &sig)
        .map_err(|_| Refusal::BadSignedEntryTimestamp)
}

/// Checks the inclusion proof against the body and the signed checkpoint against the log.
pub(crate) fn verify_inclusion(
    entry: &TlogEntry,
    log: &LogKey,
) -> std::result::Result<(), Refusal> {
    let proof = entry
        .inclusion_proof
        .as_ref()
        .ok_or(Refusal::NoInclusionProof)?;
    let body = B64
        .decode(&entry.canonicalized_body)
        .map_err(|_| Refusal::BodyNotBase64)?;
    let leaf = leaf_hash(&body);
    let hashes = proof
        .hashes
        .iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
        })
        .collect::<Option<Vec<_>>>()
        .ok_or(Refusal::MalformedProofHash)?;
    let root = B64
        .decode(&proof.root_hash)
        .map_err(|_| Refusal::RootHashNotBase64)?;
    let (index, size) = (proof.log_index.0, proof.tree_size.0);
    if index < 0 || size <= 0 {
        return Err(Refusal::NegativeProof);
    }
    let computed = root_from_inclusion(index as u64, size as u64, leaf, &hashes)
        .ok_or(Refusal::ProofDoesNotFit)?;
    if computed.as_slice() != root.as_slice() {
        return Err(Refusal::WrongRootHash);
    }
    let note = verify_checkpoint(&proof.checkpoint.envelope, log)?;
    if note.size != size as u64 || note.root != root {
        return Err(Refusal::CheckpointForAnotherTree);
    }
    Ok(())
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

/// The root an audit path leads to (RFC 9162 §2.1.3.2), or `None` when it cannot fit.
fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: [u8; 32],
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= size {
        return None;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

struct Note {
    size: u64,
    root: Vec<u8>,
}

/// Checks a signed note (origin, size, root hash, other lines; blank line; `— name sig`
/// lines) with the log's key, found by its 4-byte key hint.
fn verify_checkpoint(envelope: &str, log: &LogKey) -> std::result::Result<Note, Refusal> {
    let split = envelope.find("\n\n").ok_or(Refusal::CheckpointNotANote)?;
    let (text, sigs) = (&envelope[..split + 1], &envelope[split + 2..]);
    let mut lines = text.lines();
    let _origin = lines.next().ok_or(Refusal::CheckpointWithoutOrigin)?;
    let size = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or(Refusal::CheckpointWithoutSize)?;
    let root = lines
        .next()
        .and_then(|l| B64.decode(l).ok())
        .ok_or(Refusal::CheckpointWithoutRoot)?;
    // Each signature line is `— <name> <base64>`: a name without spaces or `+`, one
    // signature; anything else makes the note malformed (C2SP signed-note). The name is
    // not signed: the log's key is found by its hint, as sigstore-python finds it.
    let mut lines = Vec::new();
    for line in sigs.lines().filter(|l| !l.is_empty()) {
        let fields = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.split_once(' '))
            .filter(|(name, sig)| {
                !name.is_empty()
                    && !name.contains(|c: char| c == '+' || c.is_whitespace())
                    && !sig.contains(char::is_whitespace)
            })
            .and_then(|(_, sig)| B64.decode(sig).ok());
        lines.push(fields.ok_or(Refusal::CheckpointNotANote)?);
    }
    let hint = &log.key_id[..4];
    let signed = lines.iter().any(|sig| {
        sig.len() > 4
            && &sig[..4] == hint
            && log
                .key
                .verify(Hash::Sha256, text.as_bytes(), &sig[4..])
                .is_ok()
    });
    if !signed {
        return Err(Refusal::CheckpointNotSigned);
    }
    Ok(Note { size, root })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(leaves: &[[u8; 32]]) -> [u8; 32] {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        node_hash(&tree(&leaves[..k]), &tree(&leaves[k..]))
    }

    fn path(m: usize, leaves: &[[u8; 32]]) -> Vec<[u8; 32]> {
        if leaves.len() == 1 {
            return Vec::new();
        }
        let k = leaves.len().next_power_of_two() / 2;
        if m < k {
            let mut p = path(m, &leaves[..k]);
            p.push(tree(&leaves[k..]));
            p
        } else {
            let mut p = path(m - k, &leaves[k..]);
            p.push(tree(&leaves[..k]));
            p
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_of_every_small_tree() {
        let leaves: Vec<[u8; 32]> = (0..9u8).map(|i| leaf_hash(&[i])).collect();
        for n in 1..=leaves.len() {
            let root = tree(&leaves[..n]);
            for m in 0..n {
                let p = path(m, &leaves[..n]);
                assert_eq!(
                    root_from_inclusion(m as u64, n as u64, leaves[m], &p),
                    Some(root)
                );
                if !p.is_empty() {
                    let mut broken = p.clone();
                    broken[0][0] ^= 1;
                    assert_ne!(
                        root_from_inclusion(m as u64, n as u64, leaves[m], &broken),
                        Some(root)
                    );
                }
            }
        }
        assert_eq!(root_from_inclusion(3, 3, leaves[0], &[]), None);
    }
}
