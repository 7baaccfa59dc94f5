//! Blobs in a registry repository: asked about, uploaded (mounted, in one request, or in
//! a session: `POST` then one streamed `PUT`), and downloaded with their digest checked
//! as they stream. Each transfer is retried from its start, in a new upload session or
//! with a new download; nothing wrong is kept.

use std::io::Write as _;
use std::path::Path;

use futures_util::StreamExt as _;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};

use super::client::{self, what_of, Body};
use super::{envelope, locations, RegistryStore};
use crate::error::{Error, Result};
use crate::oci::digest::{Digest, Verifier};
use crate::oci::manifest::MAX_SMALL_BLOB;
use crate::oci::retry::Attempt;
use crate::progress::Progress;

/// Blobs up to this size go up in one request (`POST …?digest=`) where the registry can.
pub(super) const ONE_REQUEST_MAX: u64 = 1 << 20;

impl RegistryStore {
    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        if self.is_known(digest) {
            return Ok(true);
        }
        let url = self.path(&format!("blobs/{digest}"));
        let what = format!("HEAD blob {digest}");
        let found = self
            .client
            .retrying(&what, async || {
                let r = self
                    .send(Method::HEAD, &url, HeaderMap::new(), Body::Empty)
                    .await?;
                match r.status() {
                    s if s.is_success() => Ok(Some(r.content_length())),
                    StatusCode::NOT_FOUND => Ok(None),
                    s => Err(Attempt::fatal(self.failed(&what, s, r).await)),
                }
            })
            .await?;
        if let Some(size) = found {
            self.learn(digest, size);
        }
        Ok(found.is_some())
    }

    /// Uploads a blob without asking first (a small blob that is most likely new): one or
    /// two requests instead of a question and two; skipped when this run knows it is there.
    pub(crate) async fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        if self.is_known(digest) {
            return Ok(());
        }
        self.upload(digest, bytes.len() as u64, Body::Bytes(bytes))
            .await
    }

    /// Sends a blob: mounted from a repository of this registry that holds it, else in
    /// one request (small blobs, where the registry takes it), else `POST` then `PUT`.
    pub(crate) async fn upload(&self, digest: &Digest, size: u64, body: Body<'_>) -> Result<()> {
        let what = format!("upload of blob {digest}");
        let holders = locations().holders(&self.client.registry, digest, &self.repository);
        let mut mount_from = holders.first().cloned();
        self.client
            .retrying(&what, async || {
                let from = mount_from.take();
                let location = match self
                    .start_upload(digest, size, body, from.as_deref())
                    .await?
                {
                    Started::Done => return Ok(()),
                    Started::At(location) => location,
                };
                self.finish_upload(&location, digest, body).await
            })
            .await?;
        self.learn(digest, Some(size));
        Ok(())
    }

    /// `POST …/blobs/uploads/`: mounts, or takes a small blob whole, or opens a session.
    async fn start_upload(
        &self,
        digest: &Digest,
        size: u64,
        body: Body<'_>,
        mount_from: Option<&str>,
    ) -> std::result::Result<Started, Attempt> {
        let base = self.path("blobs/uploads/");
        let one_request = mount_from.is_none()
            && size <= ONE_REQUEST_MAX
            && self.client.one_request_uploads() != Some(false);
        let (url, body, scope) = match mount_from {
            Some(from) => (
                format!("{base}?mount={digest}&from={from}"),
                Body::Empty,
                Some(format!("{} repository:{from}:pull", self.scope)),
            ),
            None if one_request => (format!("{base}?digest={digest}"), body, None),
            None => (base.clone(), Body::Empty, None),
        };
        let mut headers = HeaderMap::new();
        if !matches!(body, Body::Empty) {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
        }
        let r = match &scope {
            Some(s) => match self
                .client
                .send(Method::POST, &url, s, &headers, body)
                .await
            {
                // A mount our credentials may not make: upload instead.
                Err(Attempt::Fatal(_)) => return Ok(Started::At(self.open_session().await?)),
                other => other?,
            },
            None => self.send(Method::POST, &url, headers, body).await?,
        };
        match r.status() {
            StatusCode::CREATED => {
                if one_request {
                    self.client.learn_one_request_uploads(true);
                }
                Ok(Started::Done)
            }
            StatusCode::ACCEPTED => {
                if one_request {
                    // The registry ignored the body: from now on, two requests.
                    self.client.learn_one_request_uploads(false);
                }
                Ok(Started::At(location(&r, &what_of(&Method::POST, &base))?))
            }
            s => Err(Attempt::fatal(self.failed("POST blob upload", s, r).await)),
        }
    }

    async fn open_session(&self) -> std::result::Result<String, Attempt> {
        let base = self.path("blobs/uploads/");
        let r = self
            .send(Method::POST, &base, HeaderMap::new(), Body::Empty)
            .await?;
        match r.status() {
            StatusCode::ACCEPTED => location(&r, "POST blob upload"),
            s => Err(Attempt::fatal(self.failed("POST blob upload", s, r).await)),
        }
    }

    /// `PUT LOCATION?digest=…` with the whole blob.
    async fn finish_upload(
        &self,
        location: &str,
        digest: &Digest,
        body: Body<'_>,
    ) -> std::result::Result<(), Attempt> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = self.client.url(&format!("{location}{sep}digest={digest}"));
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let r = self.send(Method::PUT, &url, headers, body).await?;
        match r.status() {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST => {
                let text = r.text().await.unwrap_or_default();
                if text.contains("DIGEST_INVALID") || text.contains("SIZE_INVALID") {
                    return Err(Attempt::fatal(Error::DigestMismatch {
                        what: format!(
                            "blob upload to {}/{}",
                            self.client.registry, self.repository
                        ),
                        expected: digest.to_string(),
                        actual: "other bytes (the registry checked what was sent)".into(),
                    }));
                }
                Err(Attempt::fatal(Error::Registry {
                    registry: self.client.registry.clone(),
                    message: format!("PUT blob upload: {}", envelope(&text).unwrap_or(text)),
                    hint: None,
                    retry_after: None,
                }))
            }
            s => Err(Attempt::fatal(self.failed("PUT blob upload", s, r).await)),
        }
    }

    /// Streams a blob through `sink` (restarted by `restart` on each attempt), checking its
    /// digest and size as it goes; a short, broken or wrong body is fetched again.
    async fn stream_blob<S>(
        &self,
        digest: &Digest,
        size: Option<u64>,
        progress: &Progress,
        mut restart: impl FnMut() -> Result<S>,
        mut sink: impl FnMut(&mut S, &[u8]) -> Result<()>,
    ) -> Result<S> {
        let url = self.path(&format!("blobs/{digest}"));
        let what = format!(
            "blob {digest} from {}/{}",
            self.client.registry, self.repository
        );
        self.client
            .retrying(&format!("GET blob {digest}"), async || {
                let mut state = restart()?;
                let r = self
                    .send(Method::GET, &url, HeaderMap::new(), Body::Empty)
                    .await?;
                match r.status() {
                    s if s.is_success() => {}
                    StatusCode::NOT_FOUND => {
                        return Err(Attempt::fatal(self.not_found(&format!("blob {digest}"))))
                    }
                    s => return Err(Attempt::fatal(self.failed("GET blob", s, r).await)),
                }
                let mut verifier = Verifier::new(&what, digest, size);
                let mut stream = r.bytes_stream();
                let mut got = 0u64;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| {
                        Attempt::transient(format!(
                            "the blob came short: {got} bytes, then {}",
                            client::chain(&e)
                        ))
                    })?;
                    got += chunk.len() as u64;
                    verifier.update(&chunk).map_err(Attempt::wrong_bytes)?;
                    sink(&mut state, &chunk)?;
                    progress.advance(chunk.len() as u64);
                }
                match verifier.finish() {
                    Ok(_) => Ok(state),
                    Err(e @ Error::DigestMismatch { .. }) if is_short(&e) => {
                        Err(Attempt::transient(format!("the blob came short: {e}")))
                    }
                    Err(e) => Err(Attempt::wrong_bytes(e)),
                }
            })
            .await
    }

    pub(crate) async fn fetch_blob_to_file(
        &self,
        digest: &Digest,
        size: u64,
        dest: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let tmp = self
            .stream_blob(
                digest,
                Some(size),
                progress,
                || crate::oci::layout::temp_beside(dest),
                |tmp, chunk| tmp.write_all(chunk).map_err(Error::io("write", dest)),
            )
            .await?;
        // Only checked bytes get the blob's name.
        tmp.persist(dest)
            .map_err(|e| Error::io("write", dest)(e.error))?;
        self.learn(digest, Some(size));
        Ok(())
    }

    pub(crate) async fn fetch_blob_bytes(
        &self,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Vec<u8>> {
        self.stream_blob(
            digest,
            size,
            &Progress::hidden(),
            || Ok(Vec::new()),
            |out, chunk| {
                if out.len() + chunk.len() > MAX_SMALL_BLOB as usize {
                    return Err(Error::invalid(format!(
                        "blob {digest} is too large to read into memory"
                    )));
                }
                out.extend_from_slice(chunk);
                Ok(())
            },
        )
        .await
    }
}

enum Started {
    /// The blob is there (mounted, or taken in one request).
    Done,
    /// An upload session to `PUT` the blob to.
    At(String),
}

fn location(r: &Response, what: &str) -> std::result::Result<String, Attempt> {
    r.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Attempt::transient(format!("{what} answered without a Location")))
}

/// A body shorter than announced: the connection broke, the bytes were not wrong.
fn is_short(e: &Error) -> bool {
    matches!(e, Error::DigestMismatch { actual, .. } if actual.ends_with("bytes so far"))
}
