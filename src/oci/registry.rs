//! A registry repository as a store, over `oci-client`.
//!
//! This module owns the conversation with one repository: authentication (the anonymous
//! or credentialed bearer-token dance, or basic auth), HEAD before every upload,
//! monolithic streamed uploads from files, streamed and checked downloads, and the
//! translation of registry failures into errors that say what to do. Credentials are
//! resolved by [`crate::oci::credentials`] and never appear in an error.

use secrecy::ExposeSecret as _;
use std::fs;
use std::io::Write;
use std::path::Path;

use futures_util::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{ImageIndexEntry, OciDescriptor};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::error::{Error, Result};
use crate::oci::credentials::{self, Credential, Origin};
use crate::oci::digest::{Digest, Verifier};
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::store::Connect;
use crate::progress::Progress;

pub(crate) struct RegistryStore {
    client: Client,
    registry: String,
    repository: String,
    auth: RegistryAuth,
    origin: Origin,
}

const CHUNK: usize = 1 << 20;

impl RegistryStore {
    /// Connects to `registry/repository`, authenticating for pull (and push when asked).
    pub(crate) async fn connect(
        registry: &str,
        repository: &str,
        connect: &Connect,
        push: bool,
    ) -> Result<Self> {
        let (credential, origin) = credentials::resolve(registry, &connect.explicit)?;
        let auth = match credential {
            Credential::Anonymous => RegistryAuth::Anonymous,
            Credential::Basic { username, password } => {
                RegistryAuth::Basic(username, password.expose_secret().to_string())
            }
        };
        let mut extra_root_certificates = Vec::new();
        for path in &connect.ca_files {
            let data = fs::read(path).map_err(Error::io("read", path))?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: if connect.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates,
            use_monolithic_push: true,
            user_agent: concat!("margo-gitops/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        let store = RegistryStore {
            client: Client::new(config),
            registry: registry.to_string(),
            repository: repository.to_string(),
            auth,
            origin,
        };
        let op = if push {
            RegistryOperation::Push
        } else {
            RegistryOperation::Pull
        };
        store
            .client
            .auth(&store.reference(None), &store.auth, op)
            .await
            .map_err(|e| store.error(e, "authentication"))?;
        Ok(store)
    }

    fn reference(&self, selector: Option<&str>) -> Reference {
        match selector {
            Some(s) if s.starts_with("sha256:") => Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                s.to_string(),
            ),
            Some(tag) => Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag.to_string(),
            ),
            None => Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                "latest".into(),
            ),
        }
    }

    /// Turns a client error into one that names the registry and says what to do.
    fn error(&self, e: OciDistributionError, what: &str) -> Error {
        let registry = self.registry.clone();
        let denied = || {
            Error::Registry {
            registry: registry.clone(),
            message: format!("{what} on {}: access denied", self.repository),
            hint: Some(format!(
                "credentials used: {}; check them with `docker login {registry}` or --username/--password-stdin",
                self.origin
            )),
        }
        };
        match &e {
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|x| &x.code).collect();
                self.envelope_error(&codes, what, &e).unwrap_or_else(denied)
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => denied(),
            OciDistributionError::ServerError { code: 404, .. }
            | OciDistributionError::ImageManifestNotFoundError(_) => Error::NotFound {
                what: format!("{what} in {registry}/{}", self.repository),
                hint: None,
            },
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => denied(),
            OciDistributionError::DigestError(d) => Error::DigestMismatch {
                what: format!("{what} from {registry}/{}", self.repository),
                expected: "the digest that names it".into(),
                actual: d.to_string(),
            },
            OciDistributionError::RequestError(r)
                if r.status()
                    .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403) =>
            {
                denied()
            }
            OciDistributionError::RequestError(r)
                if r.status().is_some_and(|s| s.as_u16() == 404) =>
            {
                Error::NotFound {
                    what: format!("{what} in {registry}/{}", self.repository),
                    hint: None,
                }
            }
            OciDistributionError::RequestError(r) if r.status().is_some() => Error::Registry {
                registry,
                message: format!("{what}: {}", chain(r)),
                hint: None,
            },
            OciDistributionError::RequestError(r) => Error::Registry {
                registry,
                message: format!("{what}: cannot reach the registry: {}", chain(r)),
                hint: Some(if self_is_http_mismatch(r) {
                    "is it a plain HTTP registry? then pass --plain-http".into()
                } else {
                    "check that it runs and that the name and port are right; for a registry without TLS pass --plain-http, for a private CA --ca-file".into()
                }),
            },
            _ => Error::Registry {
                registry,
                message: format!("{what}: {}", chain(&e)),
                hint: None,
            },
        }
    }

    /// A registry's error envelope as an error; `None` when it says access was denied.
    fn envelope_error(
        &self,
        codes: &[&OciErrorCode],
        what: &str,
        e: &OciDistributionError,
    ) -> Option<Error> {
        let not_found = |c: &&OciErrorCode| {
            matches!(
                c,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound
            )
        };
        if codes.iter().any(not_found) {
            return Some(Error::NotFound {
                what: format!("{what} in {}/{}", self.registry, self.repository),
                hint: None,
            });
        }
        if codes
            .iter()
            .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
        {
            return None;
        }
        Some(Error::Registry {
            registry: self.registry.clone(),
            message: format!("{what}: {}", envelope_text(e)),
            hint: None,
        })
    }

    fn read_error(&self, what: &str, e: &dyn std::fmt::Display) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            message: format!("reading {what}: {e}"),
            hint: None,
        }
    }

    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.client
            .blob_exists(&self.reference(None), digest.as_str())
            .await
            .map_err(|e| self.error(e, &format!("blob {digest}")))
    }

    pub(crate) async fn push_blob_file(
        &self,
        digest: &Digest,
        size: u64,
        file: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let f = tokio::fs::File::open(file)
            .await
            .map_err(Error::io("open", file))?;
        let progress = progress.clone();
        let what = file.display().to_string();
        let stream = tokio_util::io::ReaderStream::with_capacity(f, CHUNK).map(move |chunk| {
            chunk
                .inspect(|c| progress.advance(c.len() as u64))
                .map_err(|e| {
                    OciDistributionError::IoError(std::io::Error::new(
                        e.kind(),
                        format!("reading {what}: {e}"),
                    ))
                })
        });
        self.client
            .push_blob_stream(&self.reference(None), stream, digest.as_str(), Some(size))
            .await
            .map_err(|e| self.error(e, &format!("upload of blob {digest}")))?;
        Ok(())
    }

    pub(crate) async fn push_blob_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.client
            .push_blob(&self.reference(None), bytes.to_vec(), digest.as_str())
            .await
            .map_err(|e| self.error(e, &format!("upload of blob {digest}")))?;
        Ok(())
    }

    /// Streams a blob through `sink`, checking its digest (and size, when known) as it goes.
    async fn stream_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let what = format!("blob {digest} from {}/{}", self.registry, self.repository);
        let desc = OciDescriptor {
            digest: digest.to_string(),
            size: size.unwrap_or(0) as i64,
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&self.reference(None), &desc)
            .await
            .map_err(|e| self.error(e, &format!("blob {digest}")))?;
        let mut verifier = Verifier::new(&what, digest, size);
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // The client checks digests too and fails the stream at its end; ours says more.
                Err(e) => {
                    return Err(verifier
                        .finish()
                        .err()
                        .unwrap_or_else(|| self.read_error(&what, &e)))
                }
            };
            verifier.update(&chunk)?;
            sink(&chunk)?;
        }
        verifier.finish()?;
        Ok(())
    }

    pub(crate) async fn fetch_blob_to_file(
        &self,
        digest: &Digest,
        size: u64,
        dest: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let mut tmp = super::layout::temp_beside(dest)?;
        self.stream_blob(digest, Some(size), |chunk| {
            tmp.write_all(chunk).map_err(Error::io("write", dest))?;
            progress.advance(chunk.len() as u64);
            Ok(())
        })
        .await?;
        // Only checked bytes get the blob's name.
        tmp.persist(dest)
            .map_err(|e| Error::io("write", dest)(e.error))?;
        Ok(())
    }

    pub(crate) async fn fetch_blob_bytes(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.stream_blob(digest, size, |chunk| {
            if out.len() + chunk.len() > super::store::MAX_SMALL_BLOB as usize {
                return Err(Error::invalid(format!(
                    "blob {digest} is too large to read into memory"
                )));
            }
            out.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    pub(crate) async fn manifest(&self, selector: &str) -> Result<Option<Manifest>> {
        let reference = self.reference(Some(selector));
        match self
            .client
            .pull_manifest_raw(&reference, &self.auth, media::MANIFEST_TYPES)
            .await
        {
            Ok((bytes, _)) => {
                let manifest = Manifest::from_bytes(bytes.to_vec(), None)?;
                if selector.starts_with("sha256:") && manifest.digest.as_str() != selector {
                    return Err(Error::DigestMismatch {
                        what: format!("manifest {}/{}@{selector}", self.registry, self.repository),
                        expected: selector.to_string(),
                        actual: manifest.digest.to_string(),
                    });
                }
                Ok(Some(manifest))
            }
            Err(e) => match self.error(e, &format!("manifest {selector}")) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    /// PUTs a manifest under `selector`: its digest, or a tag.
    pub(crate) async fn push_manifest(&self, manifest: &Manifest, selector: &str) -> Result<()> {
        let content_type = manifest.media_type.parse().map_err(|_| {
            Error::invalid(format!(
                "media type `{}` is not a valid header",
                manifest.media_type
            ))
        })?;
        let what = if selector.starts_with("sha256:") {
            format!("manifest {selector}")
        } else {
            format!("tag {selector}")
        };
        self.client
            .push_manifest_raw(
                &self.reference(Some(selector)),
                manifest.bytes.clone(),
                content_type,
            )
            .await
            .map_err(|e| self.error(e, &what))?;
        Ok(())
    }

    /// The referrers of `subject`: the referrers API, or (when the registry answers 404
    /// there) the `sha256-<hex>` tag, as the distribution spec's fallback says.
    pub(crate) async fn referrers(&self, subject: &Digest) -> Result<Vec<ImageIndexEntry>> {
        let reference = self.reference(Some(subject.as_str()));
        match self.client.pull_referrers(&reference, None).await {
            Ok(index) => Ok(index.manifests),
            Err(e) => match self.error(e, &format!("referrers of {subject}")) {
                Error::NotFound { .. } => Ok(Vec::new()),
                other => Err(other),
            },
        }
    }

    pub(crate) async fn tags(&self) -> Result<Vec<String>> {
        const PAGE: usize = 1000;
        let mut all = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut last: Option<String> = None;
        loop {
            let page = match self
                .client
                .list_tags(
                    &self.reference(None),
                    &self.auth,
                    Some(PAGE),
                    last.as_deref(),
                )
                .await
            {
                Ok(p) => p.tags,
                Err(e) => match self.error(e, "tag list") {
                    Error::NotFound { .. } => Vec::new(),
                    other => return Err(other),
                },
            };
            // A registry that ignores `n` (CNCF Distribution 2.8 does) sends everything at
            // once; one that pages sends at most `n`, each page after `last`.
            if page.len() > PAGE {
                return Ok(page);
            }
            let full = page.len() == PAGE;
            let before = all.len();
            for t in page {
                if seen.insert(t.clone()) {
                    all.push(t);
                }
            }
            if !full || all.len() == before {
                return Ok(all);
            }
            last = all.last().cloned();
        }
    }
}

fn envelope_text(e: &OciDistributionError) -> String {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|x| format!("{:?}: {}", x.code, x.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// An error and its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// An HTTPS request answered by a plain HTTP server fails in the TLS handshake.
fn self_is_http_mismatch(e: &reqwest::Error) -> bool {
    let text = chain(e).to_lowercase();
    text.contains("invalidcontenttype")
        || text.contains("corrupt message")
        || text.contains("wrong version number")
}
