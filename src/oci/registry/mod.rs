//! A registry repository as a store, spoken to directly over HTTP (the distribution spec).
//!
//! Every operation goes through the one retry policy ([`crate::oci::retry`]) and is made
//! again from its start when it fails transiently: a download is fetched again (nothing
//! wrong is kept), an upload starts a new upload session and streams the file again.
//! Blobs this run pushed or found are not asked about again; a blob another repository of
//! the same registry holds is mounted instead of uploaded ([`crate::oci::locations`]);
//! small blobs go up in one request where the registry takes it. [`client`] owns the
//! HTTP, the authentication and the retries.

pub(crate) mod client;

pub(crate) use client::Body;

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::StreamExt as _;
use oci_client::manifest::{ImageIndexEntry, OciImageIndex};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};

use crate::error::{Error, Result};
use crate::oci::digest::{Digest, Verifier};
use crate::oci::locations::Locations;
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::oci::retry::Attempt;
use crate::oci::store::{Connect, MAX_SMALL_BLOB};
use crate::progress::Progress;
use client::{what_of, Client};

/// Blobs up to this size go up in one request (`POST …?digest=`) where the registry can.
const ONE_REQUEST_MAX: u64 = 1 << 20;

pub(crate) struct RegistryStore {
    client: Arc<Client>,
    repository: String,
    /// The token scope of this store: pull, or pull and push.
    scope: String,
    /// Blobs known to be in this repository (pushed or found by this run).
    known: Mutex<HashSet<Digest>>,
    /// Whether the registry has the referrers API (`None` until asked).
    referrers_api: Mutex<Option<bool>>,
}

/// One client per registry and way of reaching it, shared by every store of the run, so
/// that connections and tokens are reused.
fn client_for(registry: &str, connect: &Connect) -> Result<Arc<Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Arc<Client>>>> = OnceLock::new();
    let key = format!(
        "{registry}|{}|{:?}|{:?}",
        connect.plain_http, connect.ca_files, connect.explicit.username
    );
    let clients = CLIENTS.get_or_init(Mutex::default);
    let mut clients = clients.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(c) = clients.get(&key) {
        return Ok(c.clone());
    }
    let c = Arc::new(Client::new(registry, connect)?);
    clients.insert(key, c.clone());
    Ok(c)
}

fn locations() -> &'static Locations {
    static LOCATIONS: OnceLock<Locations> = OnceLock::new();
    LOCATIONS.get_or_init(|| Locations::load(Some(crate::oci::cache_dir())))
}

fn transient(what: &str, e: &reqwest::Error) -> Attempt {
    Attempt::transient(format!("{what}: {}", client::chain(e)))
}

impl RegistryStore {
    /// Connects to `registry/repository`, authenticating for pull (and push when asked):
    /// refused credentials stop here, before anything is written.
    pub(crate) async fn connect(
        registry: &str,
        repository: &str,
        connect: &Connect,
        push: bool,
    ) -> Result<Self> {
        let store = RegistryStore {
            client: client_for(registry, connect)?,
            repository: repository.to_string(),
            scope: format!(
                "repository:{repository}:{}",
                if push { "pull,push" } else { "pull" }
            ),
            known: Mutex::default(),
            referrers_api: Mutex::default(),
        };
        let url = store.client.url("/v2/");
        store
            .client
            .retrying("GET /v2/", async || {
                let r = store
                    .send(Method::GET, &url, HeaderMap::new(), Body::Empty)
                    .await?;
                match r.status() {
                    s if s.is_success() => Ok(()),
                    // A registry that serves repositories but not the base endpoint.
                    StatusCode::NOT_FOUND => Ok(()),
                    s => Err(Attempt::fatal(store.failed("GET /v2/", s, r).await)),
                }
            })
            .await?;
        Ok(store)
    }

    pub(crate) fn concurrency(&self) -> usize {
        self.client.concurrency
    }

    fn path(&self, rest: &str) -> String {
        self.client.url(&format!("/v2/{}/{rest}", self.repository))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Body<'_>,
    ) -> std::result::Result<Response, Attempt> {
        self.client
            .send(method, url, &self.scope, &headers, body)
            .await
    }

    /// An answer that is neither what was asked nor worth a retry, as an error.
    async fn failed(&self, what: &str, status: StatusCode, r: Response) -> Error {
        let body = r.text().await.unwrap_or_default();
        let detail = envelope(&body).unwrap_or_else(|| status.to_string());
        match status {
            StatusCode::FORBIDDEN => self
                .client
                .denied(&format!("{what} on {}", self.repository)),
            _ => Error::Registry {
                registry: self.client.registry.clone(),
                message: format!("{what}: {detail}"),
                hint: None,
            },
        }
    }

    fn not_found(&self, what: &str) -> Error {
        Error::NotFound {
            what: format!("{what} in {}/{}", self.client.registry, self.repository),
            hint: None,
        }
    }

    fn is_known(&self, digest: &Digest) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(digest)
    }

    fn learn(&self, digest: &Digest) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone());
        locations().record(&self.client.registry, &self.repository, digest);
    }

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
                    s if s.is_success() => Ok(true),
                    StatusCode::NOT_FOUND => Ok(false),
                    s => Err(Attempt::fatal(self.failed(&what, s, r).await)),
                }
            })
            .await?;
        if found {
            self.learn(digest);
        }
        Ok(found)
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
                self.finish_upload(&location, digest, size, body).await
            })
            .await?;
        self.learn(digest);
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
        _size: u64,
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
        self.learn(digest);
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

    fn manifest_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        let accept = media::MANIFEST_TYPES.join(", ");
        h.insert(
            ACCEPT,
            HeaderValue::from_str(&accept).expect("media types are ASCII"),
        );
        h
    }

    pub(crate) async fn manifest(&self, selector: &str) -> Result<Option<Manifest>> {
        let url = self.path(&format!("manifests/{selector}"));
        let what = format!("manifest {selector}");
        self.client
            .retrying(&format!("GET manifest {selector}"), async || {
                let r = self
                    .send(Method::GET, &url, Self::manifest_headers(), Body::Empty)
                    .await?;
                match r.status() {
                    s if s.is_success() => {}
                    StatusCode::NOT_FOUND => return Ok(None),
                    s => return Err(Attempt::fatal(self.failed(&what, s, r).await)),
                }
                let content_type = header(&r, CONTENT_TYPE.as_str());
                let expected = content_length(&r);
                let bytes = r
                    .bytes()
                    .await
                    .map_err(|e| transient("reading the manifest", &e))?;
                if expected.is_some_and(|n| n != bytes.len() as u64)
                    || bytes.len() as u64 > MAX_SMALL_BLOB
                {
                    return Err(Attempt::transient("the manifest came short"));
                }
                let manifest = Manifest::from_bytes(bytes.to_vec(), content_type.as_deref())
                    .map_err(|e| Attempt::transient(format!("the manifest is broken: {e}")))?;
                if selector.starts_with("sha256:") && manifest.digest.as_str() != selector {
                    return Err(Attempt::wrong_bytes(Error::DigestMismatch {
                        what: format!(
                            "manifest {}/{}@{selector}",
                            self.client.registry, self.repository
                        ),
                        expected: selector.to_string(),
                        actual: manifest.digest.to_string(),
                    }));
                }
                Ok(Some(manifest))
            })
            .await
    }

    /// The digest a tag (or digest) names, with one `HEAD`; `None` when it names nothing.
    pub(crate) async fn resolve(&self, selector: &str) -> Result<Option<Digest>> {
        let url = self.path(&format!("manifests/{selector}"));
        let what = format!("manifest {selector}");
        let answer = self
            .client
            .retrying(&format!("HEAD manifest {selector}"), async || {
                let r = self
                    .send(Method::HEAD, &url, Self::manifest_headers(), Body::Empty)
                    .await?;
                match r.status() {
                    s if s.is_success() => Ok(Some(header(&r, "docker-content-digest"))),
                    StatusCode::NOT_FOUND => Ok(None),
                    s => Err(Attempt::fatal(self.failed(&what, s, r).await)),
                }
            })
            .await?;
        match answer {
            None => Ok(None),
            Some(Some(d)) if d.parse::<Digest>().is_ok() => Ok(Some(d.parse()?)),
            // No digest header: the manifest itself says.
            Some(_) => Ok(self.manifest(selector).await?.map(|m| m.digest)),
        }
    }

    /// PUTs a manifest under `selector`: its digest, or a tag.
    pub(crate) async fn push_manifest(&self, manifest: &Manifest, selector: &str) -> Result<()> {
        let url = self.path(&format!("manifests/{selector}"));
        let what = if selector.starts_with("sha256:") {
            format!("manifest {selector}")
        } else {
            format!("tag {selector}")
        };
        let content_type = HeaderValue::from_str(&manifest.media_type).map_err(|_| {
            Error::invalid(format!(
                "media type `{}` is not a valid header",
                manifest.media_type
            ))
        })?;
        self.client
            .retrying(&format!("PUT {what}"), async || {
                let mut headers = HeaderMap::new();
                headers.insert(CONTENT_TYPE, content_type.clone());
                let r = self
                    .send(Method::PUT, &url, headers, Body::Bytes(&manifest.bytes))
                    .await?;
                match r.status() {
                    s if s.is_success() => Ok(()),
                    // A write refused with 404 is a refusal, not a missing thing to report.
                    s => Err(Attempt::fatal(
                        self.failed(&format!("PUT {what}"), s, r).await,
                    )),
                }
            })
            .await
    }

    pub(crate) async fn tags(&self) -> Result<Vec<String>> {
        const PAGE: usize = 1000;
        let mut all: Vec<String> = Vec::new();
        let mut next = Some(self.path(&format!("tags/list?n={PAGE}")));
        while let Some(url) = next.take() {
            let page = self
                .client
                .retrying("GET tag list", async || {
                    let r = self
                        .send(Method::GET, &url, HeaderMap::new(), Body::Empty)
                        .await?;
                    match r.status() {
                        s if s.is_success() => {}
                        StatusCode::NOT_FOUND => return Ok((Vec::new(), None)),
                        s => return Err(Attempt::fatal(self.failed("tag list", s, r).await)),
                    }
                    let link = header(&r, "link");
                    let bytes = r
                        .bytes()
                        .await
                        .map_err(|e| transient("reading the tag list", &e))?;
                    #[derive(serde::Deserialize)]
                    struct Tags {
                        tags: Option<Vec<String>>,
                    }
                    let tags: Tags = serde_json::from_slice(&bytes)
                        .map_err(|_| Attempt::transient("the tag list came broken"))?;
                    Ok((tags.tags.unwrap_or_default(), link.and_then(next_link)))
                })
                .await?;
            all.extend(page.0);
            next = page.1.map(|l| self.client.url(&l));
        }
        all.sort();
        all.dedup();
        Ok(all)
    }

    /// The referrers of `subject`: the referrers API, or (when the registry answers 404
    /// there) the `sha256-<hex>` tag, as the distribution spec's fallback says.
    pub(crate) async fn referrers(&self, subject: &Digest) -> Result<Vec<ImageIndexEntry>> {
        let api = *self.referrers_api.lock().unwrap_or_else(|p| p.into_inner());
        if api != Some(false) {
            let url = self.path(&format!("referrers/{subject}"));
            let index = self
                .client
                .retrying("GET referrers", async || {
                    let mut headers = HeaderMap::new();
                    headers.insert(ACCEPT, HeaderValue::from_static(media::OCI_INDEX));
                    let r = self.send(Method::GET, &url, headers, Body::Empty).await?;
                    match r.status() {
                        s if s.is_success() => {}
                        StatusCode::NOT_FOUND => return Ok(None),
                        s => return Err(Attempt::fatal(self.failed("referrers", s, r).await)),
                    }
                    let bytes = r
                        .bytes()
                        .await
                        .map_err(|e| transient("reading the referrers", &e))?;
                    serde_json::from_slice::<OciImageIndex>(&bytes)
                        .map(Some)
                        .map_err(|_| Attempt::transient("the referrers index came broken"))
                })
                .await?;
            *self.referrers_api.lock().unwrap_or_else(|p| p.into_inner()) = Some(index.is_some());
            if let Some(index) = index {
                return Ok(index.manifests);
            }
        }
        Ok(match self.manifest(&subject.dashed()).await? {
            Some(index) => index.index()?.manifests,
            None => Vec::new(),
        })
    }
}

enum Started {
    /// The blob is there (mounted, or taken in one request).
    Done,
    /// An upload session to `PUT` the blob to.
    At(String),
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(r: &Response) -> Option<u64> {
    header(r, "content-length").and_then(|v| v.parse().ok())
}

fn location(r: &Response, what: &str) -> std::result::Result<String, Attempt> {
    r.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Attempt::transient(format!("{what} answered without a Location")))
}

/// The URL of a `Link: <…>; rel="next"` header.
fn next_link(link: String) -> Option<String> {
    link.split(',')
        .find(|part| part.contains("rel=\"next\""))
        .and_then(|part| {
            let start = part.find('<')? + 1;
            let end = part.find('>')?;
            Some(part[start..end].to_string())
        })
}

/// A body shorter than announced: the connection broke, the bytes were not wrong.
fn is_short(e: &Error) -> bool {
    matches!(e, Error::DigestMismatch { actual, .. } if actual.ends_with("bytes so far"))
}

/// The messages of a registry's error envelope, one line.
fn envelope(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: String,
        message: Option<String>,
    }
    let e: Envelope = serde_json::from_str(body).ok()?;
    Some(
        e.errors
            .iter()
            .map(|x| format!("{}: {}", x.code, x.message.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=x&n=1000>; rel="next""#.into()).as_deref(),
            Some("/v2/a/tags/list?last=x&n=1000")
        );
        assert_eq!(next_link("<x>; rel=\"prev\"".into()), None);
    }

    #[test]
    fn error_envelopes_read_as_one_line() {
        assert_eq!(
            envelope(r#"{"errors":[{"code":"DENIED","message":"no"},{"code":"X"}]}"#).as_deref(),
            Some("DENIED: no; X: ")
        );
        assert_eq!(envelope("<html>"), None);
    }
}
