//! Rendering the desired state: minijinja templates over the package, git and values.
//!
//! [`Templates`] wraps the engine: strict undefined values, the `yaml` and `env_name`
//! filters, and engine errors turned into [`Error::Invalid`] with the template's file,
//! line and offending expression. [`render`] builds the context for each deployment of
//! the config (or the one the command line describes) from a [`Source`], so a commit's
//! own templates and values are used when rendering that commit. Validation and
//! publishing are elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::desired::config::{Config, Deployment};
use crate::desired::source::Source;
use crate::error::{Error, Result};
use crate::git::CommitInfo;
use crate::oci::digest::Digest;
use crate::oci::reference::{Repo, Target};
use crate::oci::store::{Connect, Store};

/// Shipped templates, by the name `--template` accepts.
pub const BUILTIN: [(&str, &str, &str); 2] = [
    (
        "margo",
        "templates/margo-compose.yaml.j2",
        include_str!("../../templates/margo-compose.yaml.j2"),
    ),
    (
        "poc",
        "templates/poc-compose.yaml.j2",
        include_str!("../../templates/poc-compose.yaml.j2"),
    ),
];

/// A blob of the package, with the URL a device fetches it from.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    pub url: String,
}

/// What the templates know about the package a deployment runs.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PackageInfo {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    /// `registry/repository:tag`.
    pub reference: String,
    /// `oci://registry/repository`, as the current Margo model's `repository` wants it.
    pub oci: String,
    pub archive: BlobRef,
    pub signature: Option<BlobRef>,
    pub key: Option<BlobRef>,
    pub signer: Option<String>,
}

/// One rendered ApplicationDeployment.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Rendered {
    pub name: String,
    pub id: String,
    pub text: String,
    /// Where the template came from, for messages.
    pub template: String,
}

/// Where a blob of `repo` is fetched from over the registry API (or the layout folder).
pub fn blob_url(repo: &Repo, digest: &str, plain_http: bool) -> String {
    match repo {
        Repo::Registry {
            registry,
            repository,
        } => {
            let scheme = if plain_http { "http" } else { "https" };
            let host = if registry == "docker.io" {
                "registry-1.docker.io"
            } else {
                registry
            };
            format!("{scheme}://{host}/v2/{repository}/blobs/{digest}")
        }
        Repo::Layout(path) => {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            format!(
                "file://{}/blobs/sha256/{}",
                abs.display(),
                digest.trim_start_matches("sha256:")
            )
        }
    }
}

/// `(registry, repository, oci://…)` of a package repository, as the templates name them.
/// A layout has no registry; its `oci` is the `oci-layout:` form.
pub fn coordinates(repo: &Repo) -> (String, String, String) {
    match repo {
        Repo::Registry {
            registry,
            repository,
        } => (
            registry.clone(),
            repository.clone(),
            format!("oci://{registry}/{repository}"),
        ),
        Repo::Layout(p) => (String::new(), p.display().to_string(), repo.to_string()),
    }
}

/// Looks the package up where it was published.
pub async fn resolve_package(reference: &str, connect: &Connect) -> Result<PackageInfo> {
    let target = Target::parse(reference)?;
    let tag = target.tag.clone().ok_or_else(|| {
        Error::Usage(format!(
            "--package {reference}: name the version tag (`…:1.2.0`)"
        ))
    })?;
    let store = Store::open(&target.repo, connect).await?;
    let manifest = store
        .manifest(&target.selector().unwrap_or(tag.clone()))
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("package {target}"),
            hint: Some("publish it first with `margo-gitops package publish`".into()),
        })?;
    let layer = crate::oci::manifest::compose_layer(&manifest)?
        .ok_or_else(|| Error::invalid(format!("{target} holds no compose package layer")))?;
    let blob = |d: &str, size: i64, mt: &str| BlobRef {
        digest: d.to_string(),
        size: size as u64,
        media_type: mt.to_string(),
        url: blob_url(&target.repo, d, connect.plain_http),
    };
    let (registry, repository, oci) = coordinates(&target.repo);
    let shown = crate::signing::found::template_signature(&store, &manifest.digest).await?;
    let shown = shown.as_ref();
    Ok(PackageInfo {
        signer: shown.map(|f| f.signer()),
        signature: shown.map(|f| {
            let media_type = if f.is_pgp() {
                crate::signing::pgp::SIGNATURE_MEDIA_TYPE
            } else {
                crate::signing::sigstore::bundle::MEDIA_TYPE
            };
            blob(&f.bundle_digest, f.bundle_size as i64, media_type)
        }),
        key: shown.and_then(|f| {
            let digest = f.pgp_key_digest.as_deref()?;
            Some(blob(
                digest,
                f.pgp_key_size.unwrap_or(0) as i64,
                crate::signing::pgp::KEY_MEDIA_TYPE,
            ))
        }),
        reference: format!("{}:{tag}", target.repo),
        registry,
        repository,
        digest: manifest.digest.to_string(),
        tag,
        oci,
        archive: blob(&layer.digest, layer.size, &layer.media_type),
    })
}

/// The template engine, strict, with our filters.
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Any value as a YAML flow literal (JSON is YAML): quoting that cannot break the document.
        env.add_filter(
            "yaml",
            |v: Value| -> std::result::Result<String, minijinja::Error> {
                if v.is_undefined() {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::UndefinedError,
                        "the value passed to `yaml` is not defined",
                    ));
                }
                serde_json::to_string(&v).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot write as YAML: {e}"),
                    )
                })
            },
        );
        // `fail("why")` stops rendering with the template's own message.
        env.add_function(
            "fail",
            |why: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    why,
                ))
            },
        );
        // `siteId` → `SITE_ID`: the environment variable a compose parameter targets.
        env.add_filter("env_name", |s: String| -> String {
            let mut out = String::new();
            let mut prev_lower = false;
            for c in s.chars() {
                if c.is_ascii_uppercase() && prev_lower {
                    out.push('_');
                }
                prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                out.push(if c == '-' || c == '.' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                });
            }
            out
        });
        Templates { env }
    }

    /// Adds a template under `name` (its file, for messages).
    pub fn add(&mut self, name: &str, source: String) -> Result<()> {
        self.env
            .add_template_owned(name.to_string(), source)
            .map_err(|e| template_error(&e, name))
    }

    pub fn render(&self, name: &str, context: &Value) -> Result<String> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&e, name))?;
        t.render(context).map_err(|e| template_error(&e, name))
    }
}

/// An engine error as `file:line: what (in `expression`)`.
fn template_error(e: &minijinja::Error, fallback: &str) -> Error {
    let name = e.name().unwrap_or(fallback).to_string();
    // `fail(...)` says what is wrong itself; for the rest, show the expression at fault.
    let expr = match (e.range(), e.template_source(), e.kind()) {
        (_, _, minijinja::ErrorKind::InvalidOperation) => None,
        (Some(r), Some(src), _) => src.get(r).map(|s| s.trim().to_string()),
        _ => None,
    };
    let what = match e.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined value".to_string(),
        minijinja::ErrorKind::SyntaxError => "template syntax error".to_string(),
        minijinja::ErrorKind::InvalidOperation if e.detail().is_some() => {
            "cannot render".to_string()
        }
        k => k.to_string(),
    };
    let mut message = match e.detail() {
        Some(d) => format!("{what}: {d}"),
        None => what,
    };
    if let Some(x) = expr.filter(|x| !x.is_empty()) {
        message.push_str(&format!(" in `{x}`"));
    }
    Error::Invalid {
        file: Some(PathBuf::from(name)),
        line: e.line(),
        message,
        hint: Some(
            "the context holds app, deployment, package, git and values; see the README".into(),
        ),
    }
}

/// What the command line adds to (or puts in place of) the config.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    pub template: Option<String>,
    /// Values files for a single deployment described on the command line.
    pub values: Vec<PathBuf>,
    pub name: Option<String>,
}

/// A deterministic UUID (version 8) for a deployment that has none: the same app and
/// name always give the same id, so rendering stays reproducible.
pub fn derived_id(app_id: &str, name: &str) -> String {
    let h = Digest::of(format!("margo-gitops deployment {app_id}/{name}").as_bytes());
    let mut b = hex::decode(h.hex()).expect("hex");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(&b[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The app's id, name and version, from its `margo.yaml` when the source has one.
fn app_context(
    source: &Source,
    config: &Config,
    package: &PackageInfo,
) -> Result<BTreeMap<&'static str, String>> {
    let mut app = BTreeMap::new();
    let folder = config.app.clone().unwrap_or_else(|| ".".into());
    let path = Path::new(&folder).join(crate::margo::app::FILE_NAME);
    if let Some(bytes) = source.read(&path)? {
        let doc: serde_norway::Value = serde_norway::from_slice(&bytes).map_err(|e| {
            Error::invalid_file(
                source.describe(&path),
                e.location().map(|l| l.line()),
                e.to_string(),
            )
        })?;
        for (key, field) in [("id", "id"), ("name", "name"), ("version", "version")] {
            if let Some(v) = doc["metadata"][field].as_str() {
                app.insert(key, v.to_string());
            }
        }
    }
    if !app.contains_key("id") {
        let last = package
            .repository
            .rsplit('/')
            .next()
            .unwrap_or("app")
            .to_string();
        app.insert("id", last);
    }
    Ok(app)
}

/// Merges values files (each a YAML map: parameter name → value), later files winning.
fn load_values(
    source: &Source,
    files: &[PathBuf],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut merged = serde_json::Map::new();
    for f in files {
        let text = source.read_text(f)?;
        let name = source.describe(f);
        let v: serde_json::Value = serde_norway::from_str(&text).map_err(|e| {
            Error::invalid_file(&name, e.location().map(|l| l.line()), e.to_string())
        })?;
        match v {
            serde_json::Value::Object(m) => merged.extend(m),
            serde_json::Value::Null => {}
            _ => {
                return Err(Error::invalid_file(
                    &name,
                    Some(1),
                    "a values file is a mapping: parameter name → value",
                ))
            }
        }
    }
    Ok(merged)
}

/// Renders every deployment. `git` is the commit being rendered, when there is one.
pub fn render(
    source: &Source,
    config: &Config,
    opts: &RenderOptions,
    package: &PackageInfo,
    git: Option<&CommitInfo>,
) -> Result<Vec<Rendered>> {
    let app = app_context(source, config, package)?;
    let app_id = app["id"].clone();
    let deployments: Vec<Deployment> =
        if !opts.values.is_empty() || opts.name.is_some() || config.deployments.is_empty() {
            vec![Deployment {
                name: opts.name.clone().unwrap_or_else(|| app_id.clone()),
                values: if opts.values.is_empty() {
                    config.default_values.clone()
                } else {
                    opts.values
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect()
                },
                ..Default::default()
            }]
        } else {
            config.deployments.clone()
        };
    let git_ctx = git.map(|g| {
        serde_json::json!({
            "commit": g.commit,
            "short_commit": g.short_commit,
            "branch": g.branch,
            "commit_time": crate::oci::media::rfc3339(g.time.max(0) as u64),
            "author": g.author,
            "subject": g.subject,
        })
    });
    let mut templates = Templates::new();
    let mut out = Vec::new();
    for d in deployments {
        let chosen = opts
            .template
            .clone()
            .or_else(|| d.template.clone())
            .or_else(|| config.template.clone())
            .unwrap_or_else(|| "margo".into());
        let name = match BUILTIN.iter().find(|(n, _, _)| *n == chosen) {
            Some((_, file, text)) => {
                templates.add(file, text.to_string())?;
                file.to_string()
            }
            None => {
                let path = PathBuf::from(&chosen);
                let text = source.read_text(&path)?;
                let name = source.describe(&path);
                templates.add(&name, text)?;
                name
            }
        };
        let files: Vec<PathBuf> = d.values.iter().map(PathBuf::from).collect();
        let values = load_values(source, &files)?;
        let id = d.id.clone().unwrap_or_else(|| derived_id(&app_id, &d.name));
        let context = Value::from(minijinja::value::Serde(serde_json::json!({
            "app": app,
            "deployment": {
                "name": d.name,
                "id": id,
                "namespace": d.namespace.clone().unwrap_or_else(|| "default".into()),
            },
            "package": package,
            "git": git_ctx,
            "values": values,
        })));
        let mut text = templates.render(&name, &context)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        out.push(Rendered {
            name: d.name.clone(),
            id,
            text,
            template: name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_and_stable() {
        let a = derived_id("poc-app", "site-1");
        assert!(crate::margo::validate::is_uuid(&a), "{a}");
        assert_eq!(a, derived_id("poc-app", "site-1"));
        assert_ne!(a, derived_id("poc-app", "site-2"));
    }

    #[test]
    fn undefined_values_name_the_file_line_and_expression() {
        let mut t = Templates::new();
        t.add("t.j2", "a: 1\nb: {{ values.missing }}\n".into())
            .unwrap();
        let err = t
            .render(
                "t.j2",
                &Value::from(minijinja::value::Serde(serde_json::json!({"values": {}}))),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t.j2:2: undefined value"), "{text}");
        assert!(text.contains("values.missing"), "{text}");
    }

    #[test]
    fn undefined_items_are_errors_even_through_filters() {
        let mut t = Templates::new();
        t.add("p.j2", "x: 1\nv: {{ values['siteId'] | yaml }}\n".into())
            .unwrap();
        let err = t
            .render(
                "p.j2",
                &Value::from(minijinja::value::Serde(serde_json::json!({"values": {}}))),
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.j2:2: undefined value"), "{err}");
    }

    #[test]
    fn filters() {
        let mut t = Templates::new();
        t.add(
            "f",
            "{{ 'a: b' | yaml }} {{ 'adminPrincipalName' | env_name }}".into(),
        )
        .unwrap();
        assert_eq!(
            t.render("f", &Value::UNDEFINED).unwrap(),
            "\"a: b\" ADMIN_PRINCIPAL_NAME"
        );
    }
}
