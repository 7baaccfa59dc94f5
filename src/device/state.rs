//! What a device keeps in its state folder, each file replaced atomically and durably
//! (written beside, flushed to disk, renamed, the folder flushed), so a power cut leaves the
//! old or the new file, never half of one:
//!
//! - `applied.json`: the desired-state version applied last (its digest and
//!   `manifestVersion`, for rollback protection, and when), the one followed, and, per
//!   deployment, what runs;
//! - `status/<deploymentId>.json`: each deployment's Margo `DeploymentStatusManifest`,
//!   written only when it changes, so its time is since when the deployment is so;
//! - `deployments/<deploymentId>/<component>/`: the unpacked package a component runs
//!   from, its compose file rewritten for this engine (and `.<component>.previous/` while a
//!   new one is swapped in);
//! - `lock`, `children/`, `staging/`: one pass at a time, the compose it runs, what it
//!   unpacks (see [`crate::device::lock`], [`crate::device::children`]);
//! - `refused.json`: the desired state the last pass refused, and why;
//! - `policy.yaml` (optional, written by the operator): the trust policy, when the command
//!   line gives none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state folder.
#[derive(Clone, Debug)]
pub struct StateDir(pub PathBuf);

/// What was applied last.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The desired-state version applied completely, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<AppliedVersion>,
    /// Deployments that run (or failed to start), by deployment id.
    #[serde(default)]
    pub deployments: BTreeMap<String, AppliedDeployment>,
    /// The repository and tag the device follows (its last pass's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedVersion {
    /// The repository and tag it was read from.
    pub source: String,
    pub digest: String,
    pub manifest_version: u64,
    /// When it was applied (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_at: Option<String>,
    /// Only some of its deployments were applied (`--deployment`), or a later version's
    /// pass failed part-way after changing some: a later pass must still read it whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The time of its newest signature the device verified, when the signature has a
    /// trusted time (keyless: the transparency log's), RFC 3339: what `maxAge` is
    /// measured from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
}

/// The desired state the last pass refused, and why (`refused.json`): the device keeps
/// running what it ran, and `device status` says so until a pass verifies again.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    pub source: String,
    pub digest: String,
    /// When it was refused (RFC 3339, UTC).
    pub at: String,
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedDeployment {
    pub name: String,
    /// The digest of its ApplicationDeployment document.
    pub document: String,
    /// Per component: the package it runs (`repository@digest`) and its compose project.
    pub components: BTreeMap<String, AppliedComponent>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedComponent {
    pub package: String,
    pub project: String,
}

/// A Margo `DeploymentStatusManifest` (deployment-status page of the specification and
/// the Workload Management API's schema).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StatusManifest {
    pub api_version: String,
    pub kind: String,
    pub deployment_id: String,
    pub status: Status,
    pub components: Vec<ComponentStatus>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ComponentStatus {
    pub name: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusError {
    pub code: String,
    /// The deployment's `metadata.name` or the component's name, as the page asks.
    pub source: String,
    pub message: String,
}

/// The states the specification names.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Installing,
    Installed,
    Removing,
    Removed,
    Failed,
}

pub const STATUS_API_VERSION: &str = "deployment.margo.org/v1alpha1";

impl StatusManifest {
    /// Every component in `state`; an error, when given, on the deployment and on each
    /// component it concerns (`components`, or all when empty).
    pub fn new(id: &str, components: &[String], state: State) -> Self {
        StatusManifest {
            api_version: STATUS_API_VERSION.into(),
            kind: "DeploymentStatusManifest".into(),
            deployment_id: id.into(),
            status: Status { state, error: None },
            components: components
                .iter()
                .map(|c| ComponentStatus {
                    name: c.clone(),
                    state,
                    error: None,
                })
                .collect(),
        }
    }

    /// The deployment failed with `code` and `message`; `component` names the one at fault.
    pub fn failed(
        mut self,
        name: &str,
        component: Option<&str>,
        code: &str,
        message: &str,
    ) -> Self {
        let error = |source: &str| StatusError {
            code: code.into(),
            source: source.into(),
            message: message.into(),
        };
        self.status = Status {
            state: State::Failed,
            error: Some(error(name)),
        };
        for c in &mut self.components {
            if component.is_none_or(|f| f == c.name) {
                c.state = State::Failed;
                c.error = Some(error(&c.name));
            }
        }
        self
    }
}

impl StateDir {
    /// The state folder, created when missing.
    pub fn open(path: &Path) -> Result<StateDir> {
        std::fs::create_dir_all(path).map_err(Error::io("create", path))?;
        // Absolute, since compose runs in the project's folder.
        let path = std::fs::canonicalize(path).map_err(Error::io("read", path))?;
        Ok(StateDir(path))
    }

    fn applied_path(&self) -> PathBuf {
        self.0.join("applied.json")
    }

    /// What was applied last (nothing, on a new device).
    pub fn applied(&self) -> Result<Applied> {
        let path = self.applied_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid_file(
                    &path,
                    Some(e.line()),
                    format!("not the state margo-gitops writes: {e}"),
                )
                .with_hint(
                    "restore it, or remove it to start over (rollback protection restarts too)",
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Applied::default()),
            Err(e) => Err(Error::io("read", &path)(e)),
        }
    }

    pub fn save_applied(&self, applied: &Applied) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(applied).expect("JSON");
        write_durable(&self.applied_path(), &bytes)
    }

    fn status_folder(&self) -> PathBuf {
        self.0.join("status")
    }

    fn status_path(&self, id: &str) -> PathBuf {
        self.status_folder().join(format!("{id}.json"))
    }

    /// Writes a deployment's status manifest when it says something new (so the file's
    /// time says since when the deployment is in its state).
    pub fn save_status(&self, status: &StatusManifest) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(status).expect("JSON");
        bytes.push(b'\n');
        let path = self.status_path(&status.deployment_id);
        if std::fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        write_durable(&path, &bytes)
    }

    /// Every status manifest in the folder, with the time it was last written.
    pub fn statuses(&self) -> Result<Vec<(StatusManifest, std::time::SystemTime)>> {
        let dir = self.status_folder();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read", &dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(Error::io("read", &dir))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(Error::io("read", &path))?;
            let status: StatusManifest = serde_json::from_slice(&bytes).map_err(|e| {
                Error::invalid_file(&path, Some(e.line()), format!("not a status manifest: {e}"))
            })?;
            let since = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(Error::io("read", &path))?;
            out.push((status, since));
        }
        out.sort_by(|a, b| a.0.deployment_id.cmp(&b.0.deployment_id));
        Ok(out)
    }

    /// Where a deployment's components are unpacked.
    pub fn deployment_dir(&self, id: &str) -> PathBuf {
        self.0.join("deployments").join(id)
    }

    /// A fresh folder for unpacking, on the same file system as the deployments (so the
    /// rename into place is atomic); removed when dropped.
    pub fn staging(&self) -> Result<tempfile::TempDir> {
        let dir = self.staging_root();
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        tempfile::Builder::new()
            .prefix("sync-")
            .tempdir_in(&dir)
            .map_err(Error::io("create a folder in", &dir))
    }

    fn staging_root(&self) -> PathBuf {
        self.0.join("staging")
    }

    /// Undoes what a pass that was killed left half done (run under the lock, before
    /// anything else): its staging folders go, and a component folder it had moved aside to
    /// swap a new one in comes back (`applied.json` says that one is what runs; the next
    /// install swaps again).
    pub(crate) fn repair(&self) -> Result<()> {
        let staging = self.staging_root();
        match std::fs::remove_dir_all(&staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("remove", &staging)(e))
            }
            _ => {}
        }
        let deployments = self.0.join("deployments");
        let Ok(entries) = std::fs::read_dir(&deployments) else {
            return Ok(());
        };
        for d in entries.flatten() {
            let Ok(components) = std::fs::read_dir(d.path()) else {
                continue;
            };
            for c in components.flatten() {
                let name = c.file_name().to_string_lossy().into_owned();
                let Some(component) = previous_of(&name) else {
                    continue;
                };
                let dest = d.path().join(component);
                if dest.exists() {
                    std::fs::remove_dir_all(&dest).map_err(Error::io("remove", &dest))?;
                }
                std::fs::rename(c.path(), &dest).map_err(Error::io("move", &dest))?;
            }
        }
        Ok(())
    }

    pub fn policy_path(&self) -> PathBuf {
        self.0.join("policy.yaml")
    }

    fn refused_path(&self) -> PathBuf {
        self.0.join("refused.json")
    }

    /// The refusal a pass recorded, when the last pass that read a version refused it.
    pub fn refused(&self) -> Result<Option<Refused>> {
        let path = self.refused_path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path)(e)),
        }
    }

    pub fn save_refused(&self, refused: &Refused) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(refused).expect("JSON");
        bytes.push(b'\n');
        write_durable(&self.refused_path(), &bytes)
    }

    /// Forgets a refusal: a pass verified the desired state again.
    pub fn clear_refused(&self) -> Result<()> {
        let path = self.refused_path();
        match std::fs::remove_file(&path) {
            Ok(()) => sync_folder(&self.0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &path)(e)),
        }
    }
}

/// Where a component's folder waits while a new one is swapped in.
pub(crate) fn previous_path(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    dest.with_file_name(format!(".{name}.previous"))
}

/// The component a `.<component>.previous` folder belongs to.
fn previous_of(name: &str) -> Option<&str> {
    name.strip_prefix('.')?.strip_suffix(".previous")
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one: written
/// beside, flushed, renamed over, and the folder flushed (the rename itself is durable).
fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        sync_folder(dir.parent().unwrap_or(Path::new(".")))?;
    }
    let mut tmp = crate::oci::layout::temp_beside(path)?;
    tmp.write_all(bytes).map_err(Error::io("write", path))?;
    tmp.as_file().sync_all().map_err(Error::io("write", path))?;
    crate::oci::layout::readable_by_all(tmp.as_file(), path)?;
    tmp.persist(path)
        .map_err(|e| Error::io("write", path)(e.error))?;
    sync_folder(dir)
}

/// Flushes a folder's entries (files created, renamed or removed in it) to the disk.
pub(crate) fn sync_folder(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("write", dir))
}

/// Flushes every file and folder under `root` to the disk, so that a folder renamed into
/// place after it is whole after a power cut.
pub(crate) fn sync_tree(root: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(root).map_err(Error::io("read", root))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(root).map_err(Error::io("read", root))? {
            sync_tree(&entry.map_err(Error::io("read", root))?.path())?;
        }
        sync_folder(root)
    } else if meta.is_file() {
        std::fs::File::open(root)
            .and_then(|f| f.sync_all())
            .map_err(Error::io("write", root))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_written_when_it_changes_and_its_time_says_since_when() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let installed = StatusManifest::new("d1", &["web".into()], State::Installed);
        state.save_status(&installed).unwrap();
        let path = state.status_path("d1");
        let first = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        state.save_status(&installed).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), first);
        let failed = installed
            .clone()
            .failed("site", None, "E_COMPOSE", "up failed");
        state.save_status(&failed).unwrap();
        let listed = state.statuses().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, failed);
        assert!(listed[0].1 > first);
    }

    #[test]
    fn repair_removes_staging_and_brings_a_moved_component_back() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let staging = state.staging().unwrap().keep();
        let dep = state.deployment_dir("d1");
        // Moved aside, and the new one renamed in (its `up` never ran to its end) …
        std::fs::create_dir_all(previous_path(&dep.join("web"))).unwrap();
        std::fs::write(previous_path(&dep.join("web")).join("compose.yaml"), "old").unwrap();
        std::fs::create_dir_all(dep.join("web")).unwrap();
        std::fs::write(dep.join("web/compose.yaml"), "new").unwrap();
        // … and moved aside before the new one came (killed between the two renames).
        std::fs::create_dir_all(previous_path(&dep.join("db"))).unwrap();
        state.repair().unwrap();
        assert!(!staging.exists());
        assert_eq!(
            std::fs::read_to_string(dep.join("web/compose.yaml")).unwrap(),
            "old"
        );
        assert!(dep.join("db").is_dir());
        let left: Vec<_> = std::fs::read_dir(&dep)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
