//! `device sync` (one pass) and `device watch` (passes paced by [`crate::device::poll`],
//! stopping cleanly on SIGTERM or Ctrl-C between passes).
//!
//! A pass holds the state folder's lock ([`crate::device::lock`]) from start to end. It
//! first repairs what a killed pass left (its compose still running, its staging, a
//! component moved aside), then asks the registry one thing: the digest the followed tag
//! names (one `HEAD`). When that is the version applied completely, the pass is done
//! (with `maxAge`, once half of it has gone, the version's signatures are read again for
//! a newer one). Otherwise it reads the version's manifest (`desired`, or `--tag`) and
//! verifies its signature as the policy says ([`crate::device::desired`]) before reading
//! anything it holds, refuses it when its `manifestVersion` is not greater than the one
//! applied (rollback protection; `--allow-downgrade` to force), installs the deployments
//! whose document changed, takes down those that left, and writes each one's status
//! manifest. A refused version changes nothing; why is kept in `refused.json` until a
//! pass accepts one. A deployment that fails keeps its previous version running and is
//! tried again on the next pass; the version counts as applied only when every deployment
//! of the pass succeeded.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::device::children;
use crate::device::desired::{check_desired, fresh_for, record_refusal, rfc3339};
use crate::device::engine::{Compose, Engine};
use crate::device::install::{self, Context, Failure};
use crate::device::lock::StateLock;
use crate::device::policy;
use crate::device::poll::{self, Pacing};
use crate::device::read::{self, Deployment};
use crate::device::state::{
    Applied, AppliedComponent, AppliedDeployment, AppliedVersion, State, StateDir, StatusManifest,
};
use crate::device::unpack::Limits;
use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};
use crate::signing::verify::RequirementSpec;

/// How long a pass waits for the compose a killed pass left running before ending it.
const LEFTOVER_PATIENCE: Duration = Duration::from_secs(60);

/// How `device sync` was asked to run.
pub struct SyncOptions {
    /// The desired-state repository (`registry/name`, or `oci-layout:PATH`).
    pub from: String,
    /// The tag to follow (`desired` unless given).
    pub tag: Option<String>,
    pub state_dir: PathBuf,
    /// Only these deployments (names or ids); all when empty.
    pub only: Vec<String>,
    pub allow_downgrade: bool,
    /// The trust policy from the command line; `policy.yaml` in the state folder otherwise.
    pub policy: RequirementSpec,
    pub connect: Connect,
    pub limits: Limits,
    /// How long to wait for a pass that holds the state folder (forever when `None`).
    pub lock_timeout: Option<Duration>,
    /// How old the desired state's newest signature may be (overrides `maxAge`).
    pub max_age: Option<Duration>,
}

/// What one pass did.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub source: String,
    pub digest: String,
    pub manifest_version: u64,
    /// Nothing had to change.
    pub up_to_date: bool,
    /// Who signed the version (`None` when the policy does not check, or when the pass
    /// found the version it applied before and read nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
    pub deployments: Vec<Outcome>,
}

impl SyncReport {
    pub fn failed(&self) -> bool {
        self.deployments.iter().any(|o| o.action == Action::Failed)
    }
}

/// What happened to one deployment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub id: String,
    pub name: String,
    pub action: Action,
    /// The packages it runs now (`repository@digest`), per component.
    pub packages: Vec<String>,
    pub status: StatusManifest,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Installed,
    Updated,
    Unchanged,
    Removed,
    Failed,
}

/// One pass.
pub async fn sync(opts: &SyncOptions) -> Result<SyncReport> {
    let target = Target::parse(&opts.from)?;
    let store = Store::open(&target.repo, &opts.connect).await?;
    pass(opts, &target, &store).await
}

/// One pass against `store`, the desired-state repository `target` (`watch` keeps it, and
/// the registry token in it, from pass to pass).
async fn pass(opts: &SyncOptions, target: &Target, store: &Store) -> Result<SyncReport> {
    let state = StateDir::open(&opts.state_dir)?;
    let _lock = blocking(|| StateLock::acquire(&state.0, opts.lock_timeout))?;
    blocking(|| children::reap(&state.0, LEFTOVER_PATIENCE))?;
    state.repair()?;
    let policy = policy::load(&opts.policy, &state, opts.max_age)?;
    let mut applied = state.applied()?;
    let tag = opts
        .tag
        .clone()
        .or(target.tag.clone())
        .unwrap_or_else(|| crate::desired::versions::DESIRED_TAG.into());
    let source = format!("{}:{tag}", target.repo);
    if applied.following.as_deref() != Some(source.as_str()) {
        applied.following = Some(source.clone());
        state.save_applied(&applied)?;
    }
    // Nothing new: one request.
    if let Some(done) = applied
        .desired
        .as_ref()
        .filter(|d| opts.only.is_empty() && !d.partial && d.source == source)
    {
        if store
            .resolve(&tag)
            .await?
            .is_some_and(|digest| digest.as_str() == done.digest)
        {
            // With maxAge, the applied version must stay fresh: once half its age is
            // gone, its signatures are read again for a newer one.
            if policy.max_age.is_some_and(|m| !fresh_for(done, m / 2)) {
                let digest = done.digest.clone();
                let manifest =
                    read::version_manifest(store, &target.repo.to_string(), &digest).await?;
                let checked = check_desired(store, &state, &source, &manifest, &policy).await?;
                let mut applied = applied.clone();
                if let Some(d) = applied.desired.as_mut() {
                    d.signed_at = checked.signed_at.map(rfc3339);
                }
                state.save_applied(&applied)?;
                state.clear_refused()?;
                let done = applied.desired.as_ref().expect("applied");
                return Ok(up_to_date(done, &applied));
            }
            state.clear_refused()?;
            return Ok(up_to_date(done, &applied));
        }
    }
    // The version, verified before any of its documents is read: what is read is the
    // manifest whose bytes were verified, and the documents it names by digest.
    let repo = target.repo.to_string();
    let manifest = read::version_manifest(store, &repo, &tag).await?;
    let checked = check_desired(store, &state, &source, &manifest, &policy).await?;
    let digest = manifest.digest.clone();
    let version = match read::read_version(store, &repo, &tag, manifest).await {
        Ok(version) => version,
        Err(e) => {
            record_refusal(&state, &source, &digest, &e)?;
            return Err(e);
        }
    };
    if let Err(e) = refuse_rollback(&source, &version, &applied, opts.allow_downgrade) {
        record_refusal(&state, &source, &version.digest, &e)?;
        return Err(e);
    }
    // Accepted: a refusal recorded before is over.
    state.clear_refused()?;
    check_selection(&opts.only, &version.deployments, &applied)?;
    let (wanted, leaving) = plan(&opts.only, &version.deployments, &applied);
    let changed = wanted.iter().any(|d| {
        applied
            .deployments
            .get(&d.id)
            .is_none_or(|a| a.document != d.document)
    });
    let mut outcomes = Vec::new();
    if changed || !leaving.is_empty() {
        let engine = Engine::connect().await?;
        let compose = Compose::detect(&state.0)?;
        let cx = Context {
            state: &state,
            requirement: &policy.packages,
            connect: &opts.connect,
            limits: opts.limits,
            engine: &engine,
            compose: &compose,
        };
        for d in &wanted {
            outcomes.push(apply(&cx, d, &mut applied).await?);
        }
        for id in leaving {
            outcomes.push(remove(&cx, &id, &mut applied)?);
        }
    } else {
        for d in &wanted {
            let outcome = unchanged(d, &applied.deployments[&d.id].components);
            state.save_status(&outcome.status)?;
            outcomes.push(outcome);
        }
    }
    let up_to_date = outcomes.iter().all(|o| o.action == Action::Unchanged);
    if outcomes.iter().all(|o| o.action != Action::Failed) {
        let digest = version.digest.to_string();
        let partial = !opts.only.is_empty();
        let applied_at = applied
            .desired
            .as_ref()
            .filter(|d| d.digest == digest && !d.partial && !partial)
            .and_then(|d| d.applied_at.clone())
            .or_else(now);
        applied.desired = Some(AppliedVersion {
            source: source.clone(),
            digest,
            manifest_version: version.manifest_version,
            applied_at,
            partial,
            signed_at: checked.signed_at.map(rfc3339),
        });
        state.save_applied(&applied)?;
    } else if let Some(done) = applied.desired.as_mut().filter(|d| !d.partial) {
        // Some deployments may now run parts of this version: the one applied before no
        // longer tells the whole story, and the next pass may not take it as done.
        done.partial = true;
        state.save_applied(&applied)?;
    }
    Ok(SyncReport {
        source,
        digest: version.digest.to_string(),
        manifest_version: version.manifest_version,
        up_to_date,
        signed_by: checked.signer,
        deployments: outcomes,
    })
}

/// The current time, RFC 3339 (UTC).
pub(super) fn now() -> Option<String> {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The report of a pass that found the version it applied: every deployment unchanged.
fn up_to_date(done: &AppliedVersion, applied: &Applied) -> SyncReport {
    SyncReport {
        source: done.source.clone(),
        digest: done.digest.clone(),
        manifest_version: done.manifest_version,
        up_to_date: true,
        signed_by: None,
        deployments: applied
            .deployments
            .iter()
            .map(|(id, a)| {
                let components: Vec<String> = a.components.keys().cloned().collect();
                Outcome {
                    id: id.clone(),
                    name: a.name.clone(),
                    action: Action::Unchanged,
                    packages: a.components.values().map(|c| c.package.clone()).collect(),
                    status: StatusManifest::new(id, &components, State::Installed),
                    error: None,
                }
            })
            .collect(),
    }
}

/// Refuses a version that is not newer than the one applied, unless forced.
fn refuse_rollback(
    source: &str,
    version: &read::DesiredVersion,
    applied: &Applied,
    allow_downgrade: bool,
) -> Result<()> {
    let Some(prev) = &applied.desired else {
        return Ok(());
    };
    let newer = version.manifest_version > prev.manifest_version;
    if version.digest.as_str() != prev.digest && !newer && !allow_downgrade {
        return Err(Error::invalid(format!(
            "{source} holds manifestVersion {} ({}), not newer than the applied {} ({}): refused as a rollback; pass --allow-downgrade to apply it",
            version.manifest_version, version.digest, prev.manifest_version, prev.digest
        )));
    }
    Ok(())
}

/// The deployments of the version to apply, and the ids of those that left it (both
/// narrowed to `only` when it names any).
fn plan<'v>(
    only: &[String],
    deployments: &'v [Deployment],
    applied: &Applied,
) -> (Vec<&'v Deployment>, Vec<String>) {
    let selected =
        |id: &str, name: &str| only.is_empty() || only.iter().any(|o| o == id || o == name);
    let wanted = deployments
        .iter()
        .filter(|d| selected(&d.id, &d.name))
        .collect();
    let leaving = applied
        .deployments
        .iter()
        .filter(|(id, a)| selected(id, &a.name) && !deployments.iter().any(|d| &&d.id == id))
        .map(|(id, _)| id.clone())
        .collect();
    (wanted, leaving)
}

/// Every `--deployment` must name a deployment of the version or one that runs.
fn check_selection(only: &[String], deployments: &[Deployment], applied: &Applied) -> Result<()> {
    for o in only {
        let known = deployments.iter().any(|d| &d.id == o || &d.name == o)
            || applied
                .deployments
                .iter()
                .any(|(id, a)| id == o || &a.name == o);
        if !known {
            return Err(Error::Usage(format!(
                "--deployment {o}: no deployment of that name or id in the desired state or on this device"
            )));
        }
    }
    Ok(())
}

fn names(d: &Deployment) -> Vec<String> {
    d.components.iter().map(|c| c.name.clone()).collect()
}

fn unchanged(
    d: &Deployment,
    components: &std::collections::BTreeMap<String, AppliedComponent>,
) -> Outcome {
    Outcome {
        id: d.id.clone(),
        name: d.name.clone(),
        action: Action::Unchanged,
        packages: components.values().map(|c| c.package.clone()).collect(),
        status: StatusManifest::new(&d.id, &names(d), State::Installed),
        error: None,
    }
}

/// Installs `d` when its document changed; the status manifest follows each step.
async fn apply(cx: &Context<'_>, d: &Deployment, applied: &mut Applied) -> Result<Outcome> {
    let previous = applied.deployments.get(&d.id).cloned();
    if let Some(p) = previous.as_ref().filter(|p| p.document == d.document) {
        let outcome = unchanged(d, &p.components);
        cx.state.save_status(&outcome.status)?;
        return Ok(outcome);
    }
    cx.state
        .save_status(&StatusManifest::new(&d.id, &names(d), State::Installing))?;
    let outcome = match install::install(cx, d, previous.as_ref()).await {
        Ok(now) => {
            let packages = now.components.values().map(|c| c.package.clone()).collect();
            applied.deployments.insert(d.id.clone(), now);
            Outcome {
                id: d.id.clone(),
                name: d.name.clone(),
                action: if previous.is_some() {
                    Action::Updated
                } else {
                    Action::Installed
                },
                packages,
                status: StatusManifest::new(&d.id, &names(d), State::Installed),
                error: None,
            }
        }
        Err(f) => failed(d, previous.as_ref(), *f),
    };
    cx.state.save_status(&outcome.status)?;
    cx.state.save_applied(applied)?;
    Ok(outcome)
}

fn failed(d: &Deployment, previous: Option<&AppliedDeployment>, f: Failure) -> Outcome {
    let message = f.error.to_string();
    Outcome {
        id: d.id.clone(),
        name: d.name.clone(),
        action: Action::Failed,
        packages: previous
            .map(|p| p.components.values().map(|c| c.package.clone()).collect())
            .unwrap_or_default(),
        status: StatusManifest::new(&d.id, &names(d), State::Pending).failed(
            &d.name,
            f.component.as_deref().filter(|c| !c.is_empty()),
            f.code,
            &message,
        ),
        error: Some(message),
    }
}

/// Takes down a deployment that left the desired state.
fn remove(cx: &Context<'_>, id: &str, applied: &mut Applied) -> Result<Outcome> {
    let a = applied.deployments[id].clone();
    let components: Vec<String> = a.components.keys().cloned().collect();
    cx.state
        .save_status(&StatusManifest::new(id, &components, State::Removing))?;
    let dir = cx.state.deployment_dir(id);
    let mut result = Ok(());
    for (name, c) in &a.components {
        result = result.and_then(|_| install::take_down(cx.compose, &c.project, &dir.join(name)));
    }
    let outcome = match result {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&dir);
            applied.deployments.remove(id);
            Outcome {
                id: id.into(),
                name: a.name.clone(),
                action: Action::Removed,
                packages: Vec::new(),
                status: StatusManifest::new(id, &components, State::Removed),
                error: None,
            }
        }
        Err(e) => {
            let message = e.to_string();
            Outcome {
                id: id.into(),
                name: a.name.clone(),
                action: Action::Failed,
                packages: a.components.values().map(|c| c.package.clone()).collect(),
                status: StatusManifest::new(id, &components, State::Removing).failed(
                    &a.name,
                    None,
                    "E_COMPOSE",
                    &message,
                ),
                error: Some(message),
            }
        }
    };
    cx.state.save_status(&outcome.status)?;
    cx.state.save_applied(applied)?;
    Ok(outcome)
}

/// Passes paced as `pacing` says until SIGTERM or Ctrl-C (a pass under way finishes
/// first); `each` sees every pass's result, failures included, and the loop goes on. The
/// desired-state repository stays open from pass to pass (a registry token is asked for
/// once, and again only when it expires); passes that fail to reach the registry space out.
pub async fn watch(
    opts: &SyncOptions,
    pacing: Pacing,
    mut each: impl FnMut(&Result<SyncReport>),
) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let io = |e| Error::io("listen for", "SIGTERM")(e);
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    let target = Target::parse(&opts.from)?;
    let store = Store::open(&target.repo, &opts.connect).await?;
    let mut wait = pacing.first(poll::unit());
    let mut failures = 0;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        let result = pass(opts, &target, &store).await;
        each(&result);
        let retry_after = match &result {
            Err(Error::Registry { retry_after, .. }) => {
                failures += 1;
                *retry_after
            }
            _ => {
                failures = 0;
                None
            }
        };
        wait = pacing.next(failures, retry_after, poll::unit());
    }
}
