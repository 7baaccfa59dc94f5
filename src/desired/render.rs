//! Rendering the desired state: one ApplicationDeployment per deployment of the config (or
//! the one the command line describes), from a [`Source`], so a commit's own templates and
//! values are used when rendering that commit, with the package, git and values in the
//! context. The engine is [`crate::desired::templates`]; validation and publishing are
//! elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::Value;
use serde::Serialize;

use crate::desired::config::{Config, Deployment};
use crate::desired::package::PackageInfo;
use crate::desired::source::Source;
use crate::desired::templates::{Templates, BUILTIN};
use crate::error::{Error, Result};
use crate::git::CommitInfo;
use crate::oci::digest::Digest;

/// One rendered ApplicationDeployment.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Rendered {
    pub name: String,
    pub id: String,
    pub text: String,
    /// Where the template came from, for messages.
    pub template: String,
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
pub(crate) fn derived_id(app_id: &str, name: &str) -> String {
    let h = Digest::of(format!("margo-gitops deployment {app_id}/{name}").as_bytes());
    let bytes: [u8; 16] = hex::decode(&h.hex()[..32])
        .expect("hex")
        .try_into()
        .expect("16 bytes");
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
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
/// A parameter name as Margo and an environment variable can carry it:
/// `^[A-Za-z_][A-Za-z0-9_.-]*$`.
fn is_parameter_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The line of top-level key `key` in a YAML mapping.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let docs = crate::margo::yamltree::parse(text).ok()?;
    let entries = docs.first()?.entries()?;
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(k, _)| k.line)
}

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
            serde_json::Value::Object(m) => {
                if let Some(bad) = m.keys().find(|k| !is_parameter_name(k)) {
                    return Err(Error::invalid_file(
                        &name,
                        key_line(&text, bad),
                        format!("parameter name {bad:?} is not one Margo and an environment variable can both carry"),
                    )
                    .with_hint("use letters, digits, `_`, `.` and `-`, starting with a letter or `_`"));
                }
                merged.extend(m)
            }
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
pub(crate) fn render(
    source: &Source,
    config: &Config,
    opts: &RenderOptions,
    package: &PackageInfo,
    git: Option<&CommitInfo>,
) -> Result<Vec<Rendered>> {
    let app = app_context(source, config, package)?;
    let app_id = app["id"].clone();
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
    for d in deployments(config, opts, &app_id) {
        let name = template(&mut templates, source, config, opts, &d)?;
        let files: Vec<PathBuf> = d.values.iter().map(PathBuf::from).collect();
        let values = load_values(source, &files)?;
        let id = d.id.clone().unwrap_or_else(|| derived_id(&app_id, &d.name));
        let context = Value::from(minijinja::value::Serde(serde_json::json!({
            "app": app,
            "deployment": {
                "name": d.name,
                "id": id,
                "namespace": d
                    .namespace
                    .clone()
                    .or_else(|| config.namespace.clone())
                    .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
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
            id: document_id(&text).unwrap_or(id),
            text,
            template: name,
        });
    }
    Ok(out)
}

/// The namespace of a deployment that names none.
pub(crate) const DEFAULT_NAMESPACE: &str = "margo";

/// The deployment id the document itself carries (`metadata.annotations.id`, else the
/// top-level `id` of older forms): what the Desired State Manifest must say, byte for byte.
fn document_id(text: &str) -> Option<String> {
    let doc: serde_norway::Value = serde_norway::from_str(text).ok()?;
    let id = doc
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get("id"))
        .or_else(|| doc.get("id"))?;
    id.as_str().map(str::to_string)
}

/// The deployments to render: the config's, or the one the command line (or the
/// environment) describes when it names values or a name, or the config has none.
fn deployments(config: &Config, opts: &RenderOptions, app_id: &str) -> Vec<Deployment> {
    if opts.values.is_empty() && opts.name.is_none() && !config.deployments.is_empty() {
        return config.deployments.clone();
    }
    vec![Deployment {
        name: opts.name.clone().unwrap_or_else(|| app_id.to_string()),
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
}

/// Adds the template deployment `d` uses (the flag's, its own, the config's, else
/// `margo`) to `templates`; returns its name.
fn template(
    templates: &mut Templates,
    source: &Source,
    config: &Config,
    opts: &RenderOptions,
    d: &Deployment,
) -> Result<String> {
    let chosen = opts
        .template
        .clone()
        .or_else(|| d.template.clone())
        .or_else(|| config.template.clone())
        .unwrap_or_else(|| "margo".into());
    if let Some((_, file, text)) = BUILTIN.iter().find(|(n, _, _)| *n == chosen) {
        templates.add(file, text.to_string())?;
        return Ok(file.to_string());
    }
    let path = PathBuf::from(&chosen);
    let text = source.read_text(&path)?;
    let name = source.describe(&path);
    templates.add(&name, text)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_are_what_margo_and_the_environment_carry() {
        for good in ["siteId", "SITE_ID", "_x", "idp.url", "poll-frequency", "a1"] {
            assert!(is_parameter_name(good), "{good}");
        }
        for bad in ["", "1st", "-a", "a b", "a:b", "site: Id\n  x", "ä", "a/b"] {
            assert!(!is_parameter_name(bad), "{bad:?}");
        }
        assert_eq!(key_line("a: 1\n\"b c\": 2\n", "b c"), Some(2));
    }

    #[test]
    fn ids_are_uuids_and_stable() {
        let a = derived_id("poc-app", "site-1");
        assert!(crate::margo::validate::is_uuid(&a), "{a}");
        // The same bytes as before `uuid` was used: published ids do not change.
        assert_eq!(
            derived_id("app", "site"),
            "9a30db2b-fc9a-8dac-ab8a-90e9e29a7016"
        );
        assert_eq!(a, derived_id("poc-app", "site-1"));
        assert_ne!(a, derived_id("poc-app", "site-2"));
    }
}
