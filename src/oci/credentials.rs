//! Registry credentials, found the way Docker and ORAS users expect, and never shown.
//!
//! Order of precedence for a registry host: `--username` with `--password-stdin`; the
//! Docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, or
//! `REGISTRY_AUTH_FILE`): `credHelpers[host]`, then `auths[host]`, then `credsStore`;
//! `GITHUB_TOKEN` for `ghcr.io`; else anonymous, which still lets the client fetch the
//! anonymous bearer tokens public repositories hand out. A [`Secret`] has no `Display`
//! and a redacted `Debug`, so a password cannot reach a log by accident.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

use secrecy::ExposeSecret as _;
/// A password or token: `secrecy`'s string, whose `Debug` is redacted, which has no
/// `Display`, and whose memory is zeroed when dropped.
pub use secrecy::SecretString as Secret;

/// How to authenticate to one registry.
#[derive(Clone, Debug)]
pub(crate) enum Credential {
    Anonymous,
    Basic { username: String, password: Secret },
}

impl PartialEq for Credential {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Credential::Anonymous, Credential::Anonymous) => true,
            (
                Credential::Basic { username, password },
                Credential::Basic {
                    username: u,
                    password: p,
                },
            ) => username == u && password.expose_secret() == p.expose_secret(),
            _ => false,
        }
    }
}

/// Where a credential came from, for messages (never the credential itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Flags,
    DockerConfig(PathBuf),
    Helper(String),
    GithubToken,
    None,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flags => f.write_str("--username/--password-stdin"),
            Origin::DockerConfig(p) => write!(f, "{}", p.display()),
            Origin::Helper(h) => write!(f, "docker-credential-{h}"),
            Origin::GithubToken => f.write_str("GITHUB_TOKEN"),
            Origin::None => f.write_str("no credentials (anonymous)"),
        }
    }
}

/// Credentials given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Explicit {
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: std::collections::BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Finds the credential for `registry` (a host, with port when there is one).
pub(crate) fn resolve(registry: &str, explicit: &Explicit) -> Result<(Credential, Origin)> {
    resolve_with(registry, explicit, &|name| std::env::var(name).ok())
}

/// [`resolve`], reading the environment through `env`.
fn resolve_with(
    registry: &str,
    explicit: &Explicit,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Credential, Origin)> {
    match (&explicit.username, &explicit.password) {
        (Some(u), Some(p)) => {
            return Ok((
                Credential::Basic {
                    username: u.clone(),
                    password: p.clone(),
                },
                Origin::Flags,
            ))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Usage(
                "--username and --password-stdin go together".into(),
            ))
        }
        _ => {}
    }
    if let Some(path) = docker_config_path(env) {
        if let Some(found) = from_docker_config(&path, registry)? {
            return Ok(found);
        }
    }
    if registry == "ghcr.io" {
        if let Some(token) = env("GITHUB_TOKEN") {
            if !token.is_empty() {
                let username = env("GITHUB_ACTOR").unwrap_or_else(|| "github".into());
                return Ok((
                    Credential::Basic {
                        username,
                        password: Secret::from(token),
                    },
                    Origin::GithubToken,
                ));
            }
        }
    }
    Ok((Credential::Anonymous, Origin::None))
}

fn docker_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(p));
    }
    if let Some(dir) = env("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    env("HOME").map(|h| Path::new(&h).join(".docker/config.json"))
}

/// The keys under which a Docker config may list `registry`.
fn config_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        keys.push("https://index.docker.io/v1/".into());
        keys.push("index.docker.io".into());
        keys.push("docker.io".into());
    }
    keys
}

fn from_docker_config(path: &Path, registry: &str) -> Result<Option<(Credential, Origin)>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path)(e)),
    };
    let config: DockerConfig = serde_json::from_str(&text).map_err(|e| {
        Error::invalid_file(path, Some(e.line()), format!("not a Docker config: {e}"))
    })?;
    let keys = config_keys(registry);
    if let Some(helper) = keys.iter().find_map(|k| config.cred_helpers.get(k)) {
        return call_helper(helper, registry).map(Some);
    }
    if let Some(entry) = keys.iter().find_map(|k| config.auths.get(k)) {
        if let Some(cred) = decode_entry(entry, path)? {
            return Ok(Some((cred, Origin::DockerConfig(path.to_path_buf()))));
        }
    }
    if let Some(store) = &config.creds_store {
        let (cred, origin) = call_helper(store, registry)?;
        if cred != Credential::Anonymous {
            return Ok(Some((cred, origin)));
        }
    }
    Ok(None)
}

fn decode_entry(entry: &AuthEntry, path: &Path) -> Result<Option<Credential>> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || {
            Error::invalid_file(
                path,
                None,
                "an `auths` entry is not base64 of `user:password`; run `docker login` again",
            )
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credential::Basic {
            username: u.to_string(),
            password: Secret::from(p),
        }));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credential::Basic {
            username: u.clone(),
            password: Secret::from(p.as_str()),
        }));
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> get`, as Docker does; "not found" means anonymous.
fn call_helper(helper: &str, registry: &str) -> Result<(Credential, Origin)> {
    let program = format!("docker-credential-{helper}");
    let server = if matches!(registry, "docker.io" | "index.docker.io") {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Registry {
            registry: registry.to_string(),
            message: format!("cannot run credential helper {program}: {e}"),
            hint: Some("install it or remove it from the Docker config".into()),
            retry_after: None,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits early closes its stdin; its exit status tells the story.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(Error::io("run", &program))?;
    let origin = Origin::Helper(helper.to_string());
    if !out.status.success() {
        // Helpers answer "credentials not found" on stdout with a failing status.
        return Ok((Credential::Anonymous, origin));
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|_| Error::Registry {
            registry: registry.to_string(),
            message: format!("{program} answered something that is not credentials JSON"),
            hint: None,
            retry_after: None,
        })?;
    Ok((
        Credential::Basic {
            username: answer.username,
            password: Secret::from(answer.secret),
        },
        origin,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credential::Basic {
            username: "alice".into(),
            password: Secret::from("hunter2"),
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn github_token_serves_ghcr_only_and_after_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().display().to_string();
        let env = |name: &str| match name {
            "GITHUB_TOKEN" => Some("ghs_token".to_string()),
            "GITHUB_ACTOR" => Some("octocat".to_string()),
            "HOME" => Some(home.clone()),
            _ => None,
        };
        let (cred, origin) = resolve_with("ghcr.io", &Explicit::default(), &env).unwrap();
        assert_eq!(origin, Origin::GithubToken);
        assert_eq!(
            cred,
            Credential::Basic {
                username: "octocat".into(),
                password: Secret::from("ghs_token")
            }
        );
        let (cred, _) = resolve_with("quay.io", &Explicit::default(), &env).unwrap();
        assert_eq!(cred, Credential::Anonymous);
        std::fs::create_dir_all(dir.path().join(".docker")).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("me:pat");
        std::fs::write(
            dir.path().join(".docker/config.json"),
            format!(r#"{{"auths":{{"ghcr.io":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let (_, origin) = resolve_with("ghcr.io", &Explicit::default(), &env).unwrap();
        assert!(matches!(origin, Origin::DockerConfig(_)));
    }

    #[test]
    fn creds_store_is_asked_when_auths_has_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // A store named after a helper that does not exist: the error names the program.
        std::fs::write(&path, r#"{"auths":{},"credsStore":"margo-test-missing"}"#).unwrap();
        let err = from_docker_config(&path, "reg.example").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-margo-test-missing"),
            "{err}"
        );
    }

    #[test]
    fn reads_auths_entries_by_host_or_url() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths":{{"https://reg.example:5000":{{"auth":"{auth}"}}}}}}"#),
        )
        .unwrap();
        let (cred, _) = from_docker_config(&path, "reg.example:5000")
            .unwrap()
            .unwrap();
        assert_eq!(
            cred,
            Credential::Basic {
                username: "bob".into(),
                password: Secret::from("s3cret")
            }
        );
        assert!(from_docker_config(&path, "other.example")
            .unwrap()
            .is_none());
    }
}
