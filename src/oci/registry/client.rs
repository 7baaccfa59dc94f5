//! One registry spoken to over HTTP: the connection pool, authentication, and every
//! request sent through the retry policy.
//!
//! Authentication follows the distribution spec's challenge: the first `401` names the
//! scheme; `Basic` sends the credentials on every request from then on, `Bearer` fetches
//! a token for the request's scope from the realm (with the credentials, or anonymously
//! for public repositories, as GHCR does) and caches it per scope. A `401` to a request
//! that carried a token gets one fresh token, then it is a refusal. Credentials and tokens
//! only ever go into an `Authorization` header; errors name where a credential came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::ExposeSecret as _;

use crate::error::{Error, Result};
use crate::oci::credentials::{self, Credential, Explicit, Origin};
use crate::oci::retry::{is_transient_status, parse_retry_after, Attempt, RetryPolicy};
use crate::progress::Progress;

/// How to reach registries: TLS, plain HTTP, credentials, retries, requests at once.
#[derive(Clone, Debug)]
pub struct Connect {
    /// Talk plain HTTP instead of HTTPS.
    pub plain_http: bool,
    /// Extra PEM certificate authorities to trust.
    pub ca_files: Vec<PathBuf>,
    /// Credentials from the command line.
    pub explicit: Explicit,
    /// How failed requests are retried (`--retries`).
    pub retry: RetryPolicy,
    /// How many transfers may be in flight at once (`--concurrency`).
    pub concurrency: usize,
}

impl Default for Connect {
    fn default() -> Self {
        Connect {
            plain_http: false,
            ca_files: Vec::new(),
            explicit: Explicit::default(),
            retry: RetryPolicy::default(),
            concurrency: 4,
        }
    }
}

const CHUNK: usize = 1 << 20;

/// A request's body: nothing, bytes, or a file streamed (again on every attempt).
#[derive(Clone, Copy)]
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File {
        path: &'a Path,
        size: u64,
        progress: &'a Progress,
    },
}

/// The scheme a registry's challenge named.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scheme {
    /// Not asked yet, or the registry needs none.
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

struct AuthState {
    scheme: Scheme,
    /// Bearer tokens by scope (`repository:NAME:ACTIONS`, space-separated when several).
    tokens: HashMap<String, String>,
}

/// One registry host, with its credentials and its retry policy.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `https://host[:port]` (Docker Hub's API host for `docker.io`).
    base: String,
    /// The registry as named (`docker.io`, `127.0.0.1:5000`).
    pub(crate) registry: String,
    credential: Credential,
    origin: Origin,
    auth: Mutex<AuthState>,
    pub(crate) policy: RetryPolicy,
    pub(crate) concurrency: usize,
    plain_http: bool,
    one_request: Mutex<Option<bool>>,
}

impl Client {
    pub(crate) fn new(registry: &str, connect: &Connect) -> Result<Client> {
        let (credential, origin) =
            crate::oci::blocking(|| credentials::resolve(registry, &connect.explicit))?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("margo-gitops/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(30));
        for path in &connect.ca_files {
            let pem = std::fs::read(path).map_err(Error::io("read", path))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::invalid_file(path, None, format!("not a PEM certificate: {e}"))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up HTTP: {e}")))?;
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if connect.plain_http { "http" } else { "https" };
        Ok(Client {
            http,
            base: format!("{scheme}://{host}"),
            registry: registry.to_string(),
            credential,
            origin,
            auth: Mutex::new(AuthState {
                scheme: Scheme::None,
                tokens: HashMap::new(),
            }),
            policy: connect.retry,
            concurrency: connect.concurrency.max(1),
            plain_http: connect.plain_http,
            one_request: Mutex::new(None),
        })
    }

    /// The URL of an API path (`/v2/…`), or a `Location` the registry answered with.
    pub(crate) fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `Authorization` header this client would send for `scope`, if any.
    fn authorization(&self, scope: &str) -> Option<HeaderValue> {
        let state = self.state();
        let value = match &state.scheme {
            Scheme::None => return None,
            Scheme::Basic => match &self.credential {
                Credential::Basic { username, password } => format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose_secret()))
                ),
                Credential::Anonymous => return None,
            },
            Scheme::Bearer { .. } => format!("Bearer {}", state.tokens.get(scope)?),
        };
        let mut v = HeaderValue::from_str(&value).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// Sends one request for `scope`, authenticating when the registry asks (once); the
    /// answer, whatever its status, except transient failures and refusals.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: &HeaderMap,
        body: Body<'_>,
    ) -> std::result::Result<Response, Attempt> {
        let mut refreshed = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(a) = self.authorization(scope) {
                req = req.header(AUTHORIZATION, a);
            }
            let resp = attach(req, body)
                .await?
                .send()
                .await
                .map_err(|e| self.request_failure(&method, url, &e))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                self.authenticate(challenge.as_deref(), scope).await?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(Attempt::fatal(self.denied(&what_of(&method, url))));
            }
            if is_transient_status(status.as_u16()) {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, time::OffsetDateTime::now_utc()));
                return Err(Attempt::Transient {
                    why: format!("answered {status}"),
                    retry_after,
                    last: None,
                });
            }
            return Ok(resp);
        }
    }

    /// Learns the scheme from a challenge and, for bearer auth, fetches a token for `scope`.
    async fn authenticate(
        &self,
        challenge: Option<&str>,
        scope: &str,
    ) -> std::result::Result<(), Attempt> {
        let scheme = challenge
            .and_then(parse_challenge)
            .ok_or_else(|| Attempt::fatal(self.denied("the registry asked for credentials")))?;
        let (realm, service) = match &scheme {
            Scheme::Basic => {
                let mut state = self.state();
                if state.scheme == Scheme::Basic {
                    drop(state);
                    return Err(Attempt::fatal(self.denied("authentication")));
                }
                state.scheme = Scheme::Basic;
                return Ok(());
            }
            Scheme::Bearer { realm, service } => (realm.clone(), service.clone()),
            Scheme::None => return Err(Attempt::fatal(self.denied("authentication"))),
        };
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(s) = &service {
            query.push(("service", s));
        }
        for one in scope.split(' ').filter(|s| !s.is_empty()) {
            query.push(("scope", one));
        }
        let mut req = self.http.get(&realm).query(&query);
        if let Credential::Basic { username, password } = &self.credential {
            req = req.basic_auth(username, Some(password.expose_secret()));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.request_failure(&Method::GET, &realm, &e))?;
        let status = resp.status();
        if is_transient_status(status.as_u16()) {
            return Err(Attempt::transient(format!(
                "the token service answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(Attempt::fatal(self.denied("authentication")));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Attempt::transient(format!("reading the token: {}", chain(&e))))?;
        let answer: TokenAnswer = serde_json::from_slice(&bytes).map_err(|_| {
            Attempt::fatal(Error::Registry {
                registry: self.registry.clone(),
                message: "the token service answered something that is not a token".into(),
                hint: None,
                retry_after: None,
            })
        })?;
        let token = answer.token.or(answer.access_token).ok_or_else(|| {
            Attempt::fatal(Error::Registry {
                registry: self.registry.clone(),
                message: "the token service answered without a token".into(),
                hint: None,
                retry_after: None,
            })
        })?;
        let mut state = self.state();
        state.scheme = scheme;
        state.tokens.insert(scope.to_string(), token);
        Ok(())
    }

    /// A refusal, naming where the credentials came from (never what they are).
    pub(crate) fn denied(&self, what: &str) -> Error {
        Error::Registry {
            registry: self.registry.clone(),
            message: format!("{what}: access denied"),
            hint: Some(format!(
                "credentials used: {}; check them with `docker login {}` or --username/--password-stdin",
                self.origin, self.registry
            )),
            retry_after: None,
        }
    }

    /// A request that got no answer: transient (connection, timeout) or, for TLS, not.
    fn request_failure(&self, method: &Method, url: &str, e: &reqwest::Error) -> Attempt {
        let text = chain(e);
        let lower = text.to_lowercase();
        let tls = [
            "certificate",
            "invalidcontenttype",
            "corrupt message",
            "wrong version number",
            "handshake",
        ]
        .iter()
        .any(|w| lower.contains(w));
        if tls {
            let hint = if lower.contains("certificate") {
                "the registry's certificate is not trusted: pass --ca-file with its CA, or --plain-http for a registry without TLS"
            } else {
                "is it a plain HTTP registry? then pass --plain-http"
            };
            return Attempt::fatal(Error::Registry {
                registry: self.registry.clone(),
                message: format!(
                    "{}: cannot reach the registry: {text}",
                    what_of(method, url)
                ),
                hint: Some(hint.into()),
                retry_after: None,
            });
        }
        let why = format!("cannot reach the registry: {text}");
        Attempt::Transient {
            why: why.clone(),
            retry_after: None,
            last: Some(Box::new((
                Error::Registry {
                    registry: self.registry.clone(),
                    message: format!("{}: {why}", what_of(method, url)),
                    hint: Some(if self.plain_http {
                        "check that it runs and that the name and port are right".into()
                    } else {
                        "check that it runs and that the name and port are right; for a registry without TLS pass --plain-http, for a private CA --ca-file".into()
                    }),
                    retry_after: None,
                },
                u32::MAX,
            ))),
        }
    }

    /// Runs `op` under the retry policy.
    pub(crate) async fn retrying<T>(
        &self,
        what: &str,
        op: impl AsyncFnMut() -> std::result::Result<T, Attempt>,
    ) -> Result<T> {
        self.policy.run(what, &self.registry, op).await
    }

    /// Whether the registry takes a small blob whole in its `POST` (`None`: not tried yet).
    pub(crate) fn one_request_uploads(&self) -> Option<bool> {
        *self.one_request.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn learn_one_request_uploads(&self, works: bool) {
        *self.one_request.lock().unwrap_or_else(|p| p.into_inner()) = Some(works);
    }
}

/// Puts `body` on the request; a file is opened (again) and streamed with progress.
async fn attach(
    req: RequestBuilder,
    body: Body<'_>,
) -> std::result::Result<RequestBuilder, Attempt> {
    Ok(match body {
        Body::Empty => req,
        Body::Bytes(b) => req.header(CONTENT_LENGTH, b.len()).body(b.to_vec()),
        Body::File {
            path,
            size,
            progress,
        } => {
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| Attempt::fatal(Error::io("open", path)(e)))?;
            let progress = progress.clone();
            let stream = tokio_util::io::ReaderStream::with_capacity(f, CHUNK).map(move |c| {
                if let Ok(c) = &c {
                    progress.advance(c.len() as u64);
                }
                c
            });
            req.header(CONTENT_LENGTH, size)
                .body(reqwest::Body::wrap_stream(stream))
        }
    })
}

/// `METHOD /path` of a request, for messages: no host, no query (upload locations carry
/// opaque state there).
pub(crate) fn what_of(method: &Method, url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    let path = path.split('?').next().unwrap_or(path);
    format!("{method} {path}")
}

/// `Bearer realm="…",service="…"` or `Basic realm="…"`.
fn parse_challenge(header: &str) -> Option<Scheme> {
    let (kind, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = next.trim_start_matches([',', ' ']);
    }
    match kind.to_ascii_lowercase().as_str() {
        "basic" => Some(Scheme::Basic),
        "bearer" => Some(Scheme::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

/// An error and its causes, on one line, without the URL reqwest puts in its message (an
/// upload location carries opaque state, an endpoint may carry a token).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let top = e.to_string();
    let top = match (top.find(" for url ("), top.rfind(')')) {
        (Some(start), Some(end)) if end > start => format!("{}{}", &top[..start], &top[end + 1..]),
        _ => top,
    };
    let mut parts = vec![top];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_as_registries_send_them() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#
            ),
            Some(Scheme::Bearer {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="margo-test""#),
            Some(Scheme::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn failures_are_told_without_their_url() {
        #[derive(Debug)]
        struct E;
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "error sending request for url (http://h/v2/a/blobs/uploads/x?_state=s3cret)",
                )
            }
        }
        impl std::error::Error for E {}
        assert_eq!(chain(&E), "error sending request");
    }

    #[test]
    fn requests_are_named_without_host_or_query() {
        assert_eq!(
            what_of(
                &Method::PUT,
                "http://127.0.0.1:5000/v2/acme/app/blobs/uploads/abc?_state=secret&digest=sha256:1"
            ),
            "PUT /v2/acme/app/blobs/uploads/abc"
        );
    }
}
