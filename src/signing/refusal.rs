//! Why a signature (or what it is made of) was refused: one variant per check, so that the
//! verifiers return typed reasons and the tests can assert which check refused. The text
//! of each reason is what `package verify` prints.

/// A refused signature, certificate, log entry or key, and the check that refused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    // What the signature is.
    #[error("not a Sigstore bundle: {0}")]
    NotABundle(String),
    #[error("bundle media type {0} is not application/vnd.dev.sigstore.bundle.v0.3+json")]
    UnknownBundleType(String),
    #[error("an OpenPGP signature (verify it with --pgp-key)")]
    PgpNotBundle,
    #[error("a Sigstore bundle, not an OpenPGP signature")]
    BundleNotPgp,
    #[error("the bundle has no certificate (a key signature: verify it with --key)")]
    NoCertificate,
    #[error("a keyless signature, not one by a key")]
    KeylessNotKey,

    // Encodings.
    #[error("the certificate is not base64")]
    CertificateNotBase64,
    #[error("not an X.509 certificate: {0}")]
    NotACertificate(String),
    #[error("malformed certificate")]
    MalformedCertificate,
    #[error("malformed certificate signature")]
    MalformedCertificateSignature,
    #[error("malformed SCT list")]
    MalformedSctList,
    #[error("cannot encode the TBS: {0}")]
    TbsEncoding(String),
    #[error("not an ECDSA P-256 or P-384 public key")]
    NotEcdsaKey,
    #[error("unsupported certificate signature algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("the signature is not base64")]
    SignatureNotBase64,
    #[error("the signature is not a DER ECDSA signature")]
    NotDerSignature,
    #[error("bad signature")]
    BadSignature,

    // The transparency log entry.
    #[error("the bundle has no transparency log entry")]
    NoLogEntry,
    #[error("the log id is not base64")]
    LogIdNotBase64,
    #[error("the bundle's transparency log is not in the trusted root")]
    UnknownLog,
    #[error("the transparency log key was not valid at the entry's time")]
    LogKeyNotValidThen,
    #[error("the log entry has no signed entry timestamp")]
    NoSignedEntryTimestamp,
    #[error("the signed entry timestamp is not base64")]
    SignedEntryTimestampNotBase64,
    #[error("the signed entry timestamp does not verify with the log's key")]
    BadSignedEntryTimestamp,
    #[error("the log entry has no inclusion proof")]
    NoInclusionProof,
    #[error("the log entry body is not base64")]
    BodyNotBase64,
    #[error("a hash of the inclusion proof is malformed")]
    MalformedProofHash,
    #[error("the inclusion proof's root hash is not base64")]
    RootHashNotBase64,
    #[error("the inclusion proof has a negative index or size")]
    NegativeProof,
    #[error("the inclusion proof does not fit the tree size")]
    ProofDoesNotFit,
    #[error("the inclusion proof does not lead to the root hash")]
    WrongRootHash,
    #[error("the checkpoint is for another tree than the inclusion proof")]
    CheckpointForAnotherTree,
    #[error("the checkpoint is not a signed note")]
    CheckpointNotANote,
    #[error("the checkpoint has no origin")]
    CheckpointWithoutOrigin,
    #[error("the checkpoint has no tree size")]
    CheckpointWithoutSize,
    #[error("the checkpoint has no root hash")]
    CheckpointWithoutRoot,
    #[error("the checkpoint is not signed by the log")]
    CheckpointNotSigned,
    #[error("the log entry is a {0}, not a hashedrekord")]
    NotAHashedRekord(String),
    #[error("the log entry body is not JSON")]
    BodyNotJson,
    #[error("the log entry says it is a {said} but its body is a {body}")]
    EntryKindNotItsBody { said: String, body: String },
    #[error("the log entry is for another artifact")]
    EntryForAnotherArtifact,
    #[error("the log entry records another signature")]
    EntryWithAnotherSignature,
    #[error("the log entry records another certificate")]
    EntryWithAnotherCertificate,

    // The certificate.
    #[error("no trusted certificate authority issued the certificate")]
    NoTrustedAuthority,
    #[error("the certificate authority was not valid at the signing time")]
    AuthorityNotValidThen,
    #[error("the certificate chain is broken")]
    BrokenChain,
    #[error("a CA certificate was not valid at the signing time")]
    CaCertificateNotValidThen,
    #[error("a certificate's signature does not verify with its issuer's key")]
    BadCertificateSignature,
    #[error("the log entry was made outside the certificate's validity")]
    OutsideCertificateValidity,
    #[error("the certificate has no signed certificate timestamp")]
    NoSct,
    #[error("no signed certificate timestamp verifies with a trusted CT log")]
    BadSct,
    #[error("the certificate does not allow code signing")]
    NotForCodeSigning,
    #[error("the certificate names no identity")]
    NoIdentity,
    #[error("the certificate names no OIDC issuer")]
    NoIssuer,

    // The signature over the artifact, and who made it.
    #[error("the signature is of another artifact than the one the registry serves")]
    AnotherArtifact,
    #[error("the signature does not verify with the certificate's key")]
    BadArtifactSignature,
    #[error("signed by `{identity}`, not {wanted}")]
    WrongIdentity { identity: String, wanted: String },
    #[error("identity issued by `{issuer}`, not {wanted}")]
    WrongIssuer { issuer: String, wanted: String },
    #[error("signed by another key (hint {0})")]
    AnotherKey(String),
    #[error("the signature does not match the key")]
    KeyMismatch,

    // OpenPGP.
    #[error("not an armored OpenPGP public key")]
    NotPgpPublicKey,
    #[error("not an armored OpenPGP signature")]
    NotPgpSignature,
    #[error("signed by {by}, not by the given key ({key})")]
    AnotherPgpKey { by: String, key: String },
    #[error("the OpenPGP signature does not match the signed data")]
    PgpMismatch,
}
