//! `package diff A B`: what changes on a device between two versions of an app, read from
//! the app folder (its compose file and `margo.yaml`) in the work tree or at a commit.
//!
//! A side is `git:REV` (the app folder as that commit has it; the folder is the config's
//! `app`), an app folder in the work tree, a prepared package (its output folder or
//! `.tar.gz`, with the `margo.yaml` beside it), or a published package reference (its
//! compose archive is fetched, digest checked; image archives inside are skipped). A
//! package's compose file pins every image by digest; an app folder's tags are looked up
//! with `--resolve` (always in the pull-request review; [`crate::package::pins`]), so a tag
//! that moved shows as a change, and a digest known on one side only is none. Compared: the
//! app version and its catalog resource files, services added or removed, and per service
//! its image (name:tag@digest), ports,
//! environment (inline and from env files; the values of keys that look secret are never
//! shown, only that they changed) and the files it uses (env files, configs, relative bind
//! mounts) whose content changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_norway::Value;

use crate::desired::config::Config;
use crate::desired::pipeline::Workspace;
use crate::desired::source::Source;
use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::manifest::compose_layer;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};
use crate::package::compose::COMPOSE_NAMES;
use crate::package::descriptor::Descriptor;
use crate::package::yaml::text;

/// One service as a device runs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServiceView {
    /// The image as the compose file names it, without a digest.
    pub image: Option<String>,
    /// The digest it runs: pinned in a package's compose file, or resolved by
    /// [`crate::package::pins`]; unknown otherwise.
    pub digest: Option<String>,
    /// The service has a `build:` section: its image is built, not pulled.
    pub built: bool,
    pub ports: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Files the service uses, by path in the app folder: their digests.
    pub files: BTreeMap<String, String>,
}

impl ServiceView {
    /// `image@digest` when the digest is known, else the image as written.
    pub fn pinned(&self) -> Option<String> {
        let image = self.image.as_ref()?;
        Some(match &self.digest {
            Some(d) => format!("{image}@{d}"),
            None => image.clone(),
        })
    }
}

/// An app folder as the diff sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AppView {
    pub label: String,
    pub version: Option<String>,
    /// Catalog resource files of `margo.yaml`: their digests.
    pub resources: BTreeMap<String, String>,
    pub services: BTreeMap<String, ServiceView>,
}

/// One change of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What changed: `image`, `port`, `environment NAME`, `file PATH`.
    pub what: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDiff {
    pub old: String,
    pub new: String,
    pub version: Option<(Option<String>, Option<String>)>,
    pub resources: Vec<Change>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Services in both, with what changed in each.
    pub changed: BTreeMap<String, Vec<Change>>,
    /// What the diff could not tell (an image whose digest was not resolved, and why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl AppDiff {
    pub fn is_empty(&self) -> bool {
        self.version.is_none()
            && self.resources.is_empty()
            && self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
    }
}

/// Keys whose values are never shown.
fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "token",
        "key",
        "credential",
        "auth",
        "private",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Reads side `spec` of the workspace: `git:REV`, an app folder, a prepared package (its
/// output folder or `.tar.gz`), or a published package reference.
pub async fn read_side(ws: &Workspace, spec: &str, connect: &Connect) -> Result<AppView> {
    if let Some(rev) = spec.strip_prefix("git:") {
        let source = ws.source(Some(rev))?;
        let app = Config::load(&source)?.app.unwrap_or_else(|| ".".into());
        return read_app(&source, Path::new(&app), spec);
    }
    let path = Path::new(spec);
    let is_app = COMPOSE_NAMES.iter().any(|n| path.join(n).is_file());
    if is_app {
        return read_app(&Source::WorkTree(path.to_path_buf()), Path::new(""), spec);
    }
    if path.exists() {
        let (d, json) = Descriptor::find(path)?;
        let dir = json.parent().unwrap_or(Path::new(".")).to_path_buf();
        let margo_dir = d.app.as_ref().map(|a| dir.join(&a.folder));
        let archive = dir.join(&d.archive.file);
        let mut view = read_archive(&archive, margo_dir.as_deref(), spec)?;
        view.version.get_or_insert(d.version);
        return Ok(view);
    }
    let target = Target::parse(spec).map_err(|_| {
        Error::Usage(format!(
            "`{spec}` is neither `git:REV`, an app folder, a prepared package nor a package reference"
        ))
    })?;
    let store = Store::open(&target.repo, connect).await?;
    let selector = target.selector().unwrap_or_else(|| "latest".into());
    let manifest = store
        .manifest(&selector)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: format!("package {target}"),
            hint: None,
        })?;
    let layer = compose_layer(&manifest)?
        .ok_or_else(|| Error::invalid(format!("{target} holds no compose package layer")))?;
    let tmp = tempfile::tempdir().map_err(Error::io("create", std::env::temp_dir()))?;
    let archive = tmp.path().join("package.tar.gz");
    store.fetch_blob_to_file(&layer, &archive).await?;
    let mut view = read_archive(&archive, None, spec)?;
    if view.version.is_none() {
        view.version = target.tag.clone();
    }
    Ok(view)
}

/// Reads a file of an app, by path relative to the app folder.
type Reader<'a> = dyn Fn(&Path) -> Result<Option<Vec<u8>>> + 'a;

/// The app folder `app` of `source`, labelled `label`.
pub(crate) fn read_app(source: &Source, app: &Path, label: &str) -> Result<AppView> {
    let read = |p: &Path| source.read(&app.join(p));
    view(&read, &read, &source.describe(app), label)
}

/// A Margo Compose Archive: its one top folder is the app (image archives are skipped);
/// `margo.yaml` and its resources come from `margo_dir` when there is one.
fn read_archive(archive: &Path, margo_dir: Option<&Path>, label: &str) -> Result<AppView> {
    const LIMIT: u64 = 8 << 20;
    let file = std::fs::File::open(archive).map_err(Error::io("read", archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let io = |e: std::io::Error| Error::io("read", archive)(e);
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        let path = entry.path().map_err(io)?.into_owned();
        let rel: PathBuf = path.components().skip(1).collect();
        let skip = rel.starts_with("images") || entry.size() > LIMIT;
        if skip || !entry.header().entry_type().is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(io)?;
        files.insert(rel, bytes);
    }
    let read = |p: &Path| Ok(files.get(p).cloned());
    let read_margo = |p: &Path| match margo_dir {
        Some(dir) => Source::WorkTree(dir.to_path_buf()).read(p),
        None => Ok(None),
    };
    view(&read, &read_margo, &archive.display().to_string(), label)
}

/// An app as `read` (its files) and `read_margo` (`margo.yaml` and its resources) give it.
fn view(read: &Reader, read_margo: &Reader, where_: &str, label: &str) -> Result<AppView> {
    let mut compose = None;
    for n in COMPOSE_NAMES {
        if let Some(b) = read(Path::new(n))? {
            compose = Some((n, b));
            break;
        }
    }
    let (name, bytes) = compose
        .ok_or_else(|| Error::Usage(format!("{where_}: no compose file in the app folder")))?;
    let compose = yaml(&bytes, &format!("{where_}/{name}"))?;
    let digest = |r: &Reader, rel: &str| -> Result<String> {
        Ok(match r(Path::new(rel))? {
            Some(b) => Digest::of(&b).to_string(),
            None => "missing".into(),
        })
    };
    let mut services = BTreeMap::new();
    if let Some(map) = compose.get("services").and_then(Value::as_mapping) {
        for (name, s) in map {
            let (image, pin) = match s.get("image").map(text) {
                Some(i) => match i.split_once('@') {
                    Some((name, d)) => (Some(name.to_string()), Some(d.to_string())),
                    None => (Some(i), None),
                },
                None => (None, None),
            };
            let mut view = ServiceView {
                image,
                digest: pin,
                built: s.get("build").is_some(),
                ports: s
                    .get("ports")
                    .and_then(Value::as_sequence)
                    .map(|p| p.iter().map(text).collect())
                    .unwrap_or_default(),
                ..Default::default()
            };
            for rel in used_files(s, &compose) {
                if is_env_file(s, &rel) {
                    if let Some(b) = read(Path::new(&rel))? {
                        view.environment
                            .extend(parse_env(&String::from_utf8_lossy(&b)));
                    }
                }
                view.files.insert(rel.clone(), digest(read, &rel)?);
            }
            view.environment.extend(inline_env(s));
            services.insert(text(name), view);
        }
    }
    let (mut version, mut resources) = (None, BTreeMap::new());
    if let Some(b) = read_margo(Path::new(crate::margo::app::FILE_NAME))? {
        let doc = yaml(&b, &format!("{where_}/margo.yaml"))?;
        version = doc["metadata"]["version"].as_str().map(str::to_string);
        if let Some(app_meta) = doc["metadata"]["catalog"]["application"].as_mapping() {
            for key in ["icon", "descriptionFile", "releaseNotes", "licenseFile"] {
                if let Some(rel) = app_meta.get(key).and_then(Value::as_str) {
                    let rel = rel.trim_start_matches("./").to_string();
                    resources.insert(rel.clone(), digest(read_margo, &rel)?);
                }
            }
        }
    }
    Ok(AppView {
        label: label.to_string(),
        version,
        resources,
        services,
    })
}

fn yaml(bytes: &[u8], name: &str) -> Result<Value> {
    serde_norway::from_slice(bytes)
        .map_err(|e| Error::invalid_file(name, e.location().map(|l| l.line()), e.to_string()))
}

/// The app-folder files a service uses: env files, the files of its configs (named at the
/// top level of `compose`), relative bind mounts.
fn used_files(s: &Value, compose: &Value) -> Vec<String> {
    let mut files = Vec::new();
    for c in s
        .get("configs")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let name = c
            .as_str()
            .or_else(|| c.get("source").and_then(Value::as_str));
        let file = name.and_then(|n| compose["configs"][n]["file"].as_str());
        files.extend(file.map(str::to_string));
    }
    match s.get("env_file") {
        Some(Value::String(f)) => files.push(f.clone()),
        Some(Value::Sequence(list)) => {
            for e in list {
                match e {
                    Value::String(f) => files.push(f.clone()),
                    other => files.extend(
                        other
                            .get("path")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    ),
                }
            }
        }
        _ => {}
    }
    for v in s
        .get("volumes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let host = match v {
            Value::String(short) => short.split(':').next().map(str::to_string),
            long => long
                .get("source")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        if let Some(h) = host.filter(|h| h.starts_with("./") || h.starts_with("../")) {
            files.push(h);
        }
    }
    files
        .into_iter()
        .map(|f| f.trim_start_matches("./").to_string())
        .collect()
}

/// True when `rel` is one of the service's env files.
fn is_env_file(s: &Value, rel: &str) -> bool {
    match s.get("env_file") {
        Some(Value::String(f)) => f.trim_start_matches("./") == rel,
        Some(Value::Sequence(list)) => list.iter().any(|e| {
            let f = e.as_str().or_else(|| e.get("path").and_then(Value::as_str));
            f.is_some_and(|f| f.trim_start_matches("./") == rel)
        }),
        _ => false,
    }
}

fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn inline_env(s: &Value) -> Vec<(String, String)> {
    match s.get("environment") {
        Some(Value::Mapping(m)) => m.iter().map(|(k, v)| (text(k), text(v))).collect(),
        Some(Value::Sequence(list)) => list
            .iter()
            .map(text)
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e, String::new()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Changes between two maps; secret-looking keys show no values.
fn map_changes(
    what: &str,
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) -> Vec<Change> {
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let (old, new) = (a.get(k), b.get(k));
        if old == new {
            continue;
        }
        let hide = |v: Option<&String>| match v {
            Some(_) if looks_secret(k) => Some("(secret)".to_string()),
            other => other.cloned(),
        };
        out.push(Change {
            what: format!("{what} {k}"),
            old: hide(old),
            new: hide(new),
        });
    }
    out
}

/// Changes between two maps of file digests, said as content (digests mean nothing to a
/// reviewer).
fn content_changes(
    what: &str,
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) -> Vec<Change> {
    map_changes(what, a, b)
        .into_iter()
        .map(|c| Change {
            old: c.old.map(|_| "old content".into()),
            new: c.new.map(|_| "new content".into()),
            ..c
        })
        .collect()
}

/// What changes on a device from `a` to `b`.
pub fn diff(a: &AppView, b: &AppView) -> AppDiff {
    let mut d = AppDiff {
        old: a.label.clone(),
        new: b.label.clone(),
        ..Default::default()
    };
    if a.version != b.version {
        d.version = Some((a.version.clone(), b.version.clone()));
    }
    d.resources = content_changes("resource", &a.resources, &b.resources);
    d.added = b
        .services
        .keys()
        .filter(|k| !a.services.contains_key(*k))
        .cloned()
        .collect();
    d.removed = a
        .services
        .keys()
        .filter(|k| !b.services.contains_key(*k))
        .cloned()
        .collect();
    for (name, old) in &a.services {
        let Some(new) = b.services.get(name) else {
            continue;
        };
        let mut changes = Vec::new();
        // A digest known on one side only says nothing about a change.
        let moved = matches!((&old.digest, &new.digest), (Some(a), Some(b)) if a != b);
        if old.image != new.image || moved {
            changes.push(Change {
                what: "image".into(),
                old: old.pinned(),
                new: new.pinned(),
            });
        }
        for p in old.ports.iter().filter(|p| !new.ports.contains(p)) {
            changes.push(Change {
                what: "port".into(),
                old: Some(p.clone()),
                new: None,
            });
        }
        for p in new.ports.iter().filter(|p| !old.ports.contains(p)) {
            changes.push(Change {
                what: "port".into(),
                old: None,
                new: Some(p.clone()),
            });
        }
        changes.extend(map_changes(
            "environment",
            &old.environment,
            &new.environment,
        ));
        changes.extend(content_changes("file", &old.files, &new.files));
        if !changes.is_empty() {
            d.changed.insert(name.clone(), changes);
        }
    }
    d
}

/// The diff as text, one line per change (also the pull-request comment's block).
pub fn render_text(d: &AppDiff) -> String {
    use std::fmt::Write as _;
    let mut s = format!("app: {} → {}\n", d.old, d.new);
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    if let Some((old, new)) = &d.version {
        let _ = writeln!(s, "~ version: {} → {}", show(old), show(new));
    }
    for c in &d.resources {
        let _ = writeln!(s, "~ {}: {} → {}", c.what, show(&c.old), show(&c.new));
    }
    for name in &d.added {
        let _ = writeln!(s, "+ service {name}");
    }
    for name in &d.removed {
        let _ = writeln!(s, "- service {name}");
    }
    for (name, changes) in &d.changed {
        let _ = writeln!(s, "~ service {name}");
        for c in changes {
            let _ = match (&c.old, &c.new) {
                (None, Some(n)) => writeln!(s, "    + {}: {n}", c.what),
                (Some(o), None) => writeln!(s, "    - {}: {o}", c.what),
                (o, n) => writeln!(s, "    ~ {}: {} → {}", c.what, show(o), show(n)),
            };
        }
    }
    if d.is_empty() {
        s.push_str("no change on the device\n");
    }
    for n in &d.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}
