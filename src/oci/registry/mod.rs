//! A registry repository as a store, spoken to directly over HTTP (the distribution spec).
//!
//! Every operation goes through the one retry policy ([`crate::oci::retry`]) and is made
//! again from its start when it fails transiently: a download is fetched again (nothing
//! wrong is kept), an upload starts a new upload session and streams the file again.
//! Blobs this run pushed or found are not asked about again; a blob another repository of
//! the same registry holds is mounted instead of uploaded ([`crate::oci::locations`]);
//! small blobs go up in one request where the registry takes it. [`client`] owns the
//! HTTP, the authentication and the retries; `blobs` the blob transfers; this file the
//! manifests, tags and referrers.

mod blobs;
pub(crate) mod client;

pub(crate) use client::Body;
pub use client::Connect;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use oci_client::manifest::{ImageIndexEntry, OciImageIndex};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};

use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::locations::Locations;
use crate::oci::manifest::{Manifest, MAX_SMALL_BLOB};
use crate::oci::media;
use crate::oci::retry::Attempt;
use client::Client;

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
    /// Connects to `registry/repository`. For push, it authenticates at once (`GET /v2/`):
    /// refused credentials stop here, before anything is written. For pull, the first
    /// request authenticates when the registry asks, so that a reader that asks one thing
    /// (a device's poll) costs one request.
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
        if !push {
            return Ok(store);
        }
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
                retry_after: None,
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

    /// Remembers that this repository holds `digest`: for this run, and, for a blob large
    /// enough that a mount saves an upload, in the cache for later runs.
    fn learn(&self, digest: &Digest, size: Option<u64>) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone());
        if size.is_some_and(|s| s > blobs::ONE_REQUEST_MAX) {
            locations().record(&self.client.registry, &self.repository, digest);
        }
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
                    // Its blobs were all written before it, so a blob the registry does not
                    // see is one still settling: another writer of the same blob (CNCF
                    // Distribution rewrites a repository's link to it in place) or a
                    // replica behind. Tried a few times more, then the registry's answer.
                    StatusCode::BAD_REQUEST => {
                        let e = self
                            .failed(&format!("PUT {what}"), StatusCode::BAD_REQUEST, r)
                            .await;
                        if e.to_string().contains("MANIFEST_BLOB_UNKNOWN") {
                            Err(Attempt::settling(e, 4))
                        } else {
                            Err(Attempt::fatal(e))
                        }
                    }
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

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(r: &Response) -> Option<u64> {
    header(r, "content-length").and_then(|v| v.parse().ok())
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
