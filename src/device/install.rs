//! One deployment brought to what its document says, or taken down. Installing works in
//! two halves so that a failure leaves what runs now running: first every component's
//! package is verified against the trust policy, fetched by the verified digest, unpacked
//! into the staging folder and its images loaded and tagged (nothing that runs is
//! touched); then each component's folder is renamed into place and its project brought
//! up. When `up` fails, the previous folder comes back and is brought up again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::device::engine::{Compose, Engine};
use crate::device::project;
use crate::device::read::{Component, Deployment};
use crate::device::state::{previous_path, AppliedComponent, AppliedDeployment, StateDir};
use crate::device::unpack::{self, Limits};
use crate::error::{Error, Result};
use crate::oci::blocking;
use crate::oci::manifest::compose_layer;
use crate::oci::reference::Target;
use crate::oci::store::{Connect, Store};
use crate::package::compose;
use crate::signing::verify::{self, Requirement};

/// Why a deployment failed: a code for its status manifest, the component at fault.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: &'static str,
    pub component: Option<String>,
    pub error: Error,
}

type Step<T> = std::result::Result<T, Box<Failure>>;

fn at<T>(code: &'static str, component: &str, r: Result<T>) -> Step<T> {
    r.map_err(|error| {
        Box::new(Failure {
            code,
            component: Some(component.to_string()),
            error,
        })
    })
}

/// What installing needs besides the deployment.
pub(crate) struct Context<'a> {
    pub state: &'a StateDir,
    pub requirement: &'a Requirement,
    pub connect: &'a Connect,
    pub limits: Limits,
    pub engine: &'a Engine,
    pub compose: &'a Compose,
}

/// A component ready to be swapped in: its app folder in the staging folder.
struct Staged<'c> {
    component: &'c Component,
    app_dir: PathBuf,
    package: String,
}

/// Installs (or updates) `d`; `previous` is what ran before, if anything.
pub(crate) async fn install(
    cx: &Context<'_>,
    d: &Deployment,
    previous: Option<&AppliedDeployment>,
) -> Step<AppliedDeployment> {
    let staging = at("E_STATE", "", cx.state.staging())?;
    let mut staged = Vec::new();
    for c in &d.components {
        staged.push(stage(cx, c, staging.path()).await?);
    }
    let dir = cx.state.deployment_dir(&d.id);
    let mut components = BTreeMap::new();
    for s in staged {
        // A component keeps its project when its deployment is renamed.
        let project = previous
            .and_then(|p| p.components.get(&s.component.name))
            .map_or_else(
                || project_name(&d.name, &s.component.name),
                |c| c.project.clone(),
            );
        let dest = dir.join(&s.component.name);
        let ran_before = previous.is_some_and(|p| p.components.contains_key(&s.component.name));
        at(
            "E_COMPOSE",
            &s.component.name,
            swap_in(cx.compose, &project, &s.app_dir, &dest, ran_before),
        )?;
        components.insert(
            s.component.name.clone(),
            AppliedComponent {
                package: s.package,
                project,
            },
        );
    }
    // Components the new document no longer has.
    for (name, c) in previous.map(|p| &p.components).into_iter().flatten() {
        if !components.contains_key(name) {
            at(
                "E_COMPOSE",
                name,
                take_down(cx.compose, &c.project, &dir.join(name)),
            )?;
        }
    }
    Ok(AppliedDeployment {
        name: d.name.clone(),
        document: d.document.clone(),
        components,
    })
}

/// Verifies, fetches, unpacks and loads one component's package into `staging`.
async fn stage<'c>(cx: &Context<'_>, c: &'c Component, staging: &Path) -> Step<Staged<'c>> {
    let name = &c.name;
    let reference = match &c.archive {
        Some(blob) => at(
            "E_FETCH",
            name,
            find_package(cx.connect, &c.package, blob).await,
        )?,
        None => c.package.clone(),
    };
    let (verified, store, manifest) = at(
        "E_VERIFY",
        name,
        verify::verify_subject(&reference, cx.requirement, cx.connect).await,
    )?;
    let target = at("E_FETCH", name, Target::parse(&reference))?;
    let package = format!("{}@{}", target.repo, verified.digest);
    let fetched = async {
        let layer = compose_layer(&manifest)?
            .ok_or_else(|| Error::invalid(format!("{package} holds no compose archive")))?;
        let archive = staging.join(format!("{name}.tar.gz"));
        store.fetch_blob_to_file(&layer, &archive).await?;
        Ok(archive)
    };
    let archive = at("E_FETCH", name, fetched.await)?;
    let root = staging.join(name);
    at(
        "E_UNPACK",
        name,
        blocking(|| unpack::unpack_file(&archive, &root, cx.limits)),
    )?;
    let _ = std::fs::remove_file(&archive);
    let unpacked = at("E_UNPACK", name, project::open(&root))?;
    let text = at(
        "E_UNPACK",
        name,
        std::fs::read_to_string(&unpacked.compose_file)
            .map_err(Error::io("read", &unpacked.compose_file)),
    )?;
    let ids = at("E_IMAGE", name, load_images(cx.engine, &unpacked).await)?;
    let loaded = ids.keys().cloned().collect();
    let (rewritten, locals) = at(
        "E_UNPACK",
        name,
        project::rewrite(&text, &loaded, &c.environment),
    )?;
    for (digest, (repo, tag)) in &locals {
        at(
            "E_IMAGE",
            name,
            cx.engine.tag(&ids[digest], repo, tag).await,
        )?;
    }
    at(
        "E_UNPACK",
        name,
        std::fs::write(&unpacked.compose_file, rewritten)
            .map_err(Error::io("write", &unpacked.compose_file)),
    )?;
    Ok(Staged {
        component: c,
        app_dir: unpacked.dir,
        package,
    })
}

/// The package of `repository` whose compose archive is the blob `archive` (the PoC's
/// form names the blob): its tags are read, newest version first, until one holds it.
async fn find_package(connect: &Connect, repository: &str, archive: &str) -> Result<String> {
    let target = Target::parse(repository)?;
    let store = Store::open(&target.repo, connect).await?;
    let mut tags: Vec<String> = store
        .tags()
        .await?
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    tags.sort_by_key(|t| std::cmp::Reverse(semver::Version::parse(t).ok()));
    for tag in tags {
        let Some(manifest) = store.manifest(&tag).await? else {
            continue;
        };
        if compose_layer(&manifest)
            .ok()
            .flatten()
            .is_some_and(|l| l.digest == archive)
        {
            return Ok(format!("{}@{}", target.repo, manifest.digest));
        }
    }
    Err(Error::NotFound {
        what: format!("a package in {repository} whose compose archive is {archive}"),
        hint: Some("packageLocation names a blob no tagged package holds".into()),
    })
}

/// Loads every image archive the engine does not have yet and removes the archives;
/// returns manifest digest → the image's id in the engine.
async fn load_images(
    engine: &Engine,
    unpacked: &project::Unpacked,
) -> Result<BTreeMap<String, String>> {
    let mut ids = BTreeMap::new();
    for img in &unpacked.images {
        // The image id is the config digest (classic image store) or the manifest digest
        // (containerd image store); an image the engine has is not loaded again.
        let mut id = engine.find_image(&[&img.config, &img.manifest]).await?;
        if id.is_none() {
            engine.load(&img.file).await?;
            id = engine.find_image(&[&img.config, &img.manifest]).await?;
        }
        let id = id.ok_or_else(|| {
            Error::invalid(format!(
                "{} loaded, but the engine knows neither {} nor {}",
                img.file.display(),
                img.config,
                img.manifest
            ))
        })?;
        ids.insert(img.manifest.clone(), id);
        let _ = std::fs::remove_file(&img.file);
    }
    Ok(ids)
}

/// Renames `app_dir` to `dest` and brings the project up. The folder that ran before (when
/// `ran_before`) waits beside, as `.<component>.previous`, until the new one is up, and
/// comes back, brought up again, when `up` fails; a pass killed meanwhile leaves it there
/// for [`crate::device::state::StateDir::repair`] to bring back.
fn swap_in(
    compose: &Compose,
    project: &str,
    app_dir: &Path,
    dest: &Path,
    ran_before: bool,
) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
    // Folders given up go to the staging folder first, to be removed there: a pass killed
    // while removing one leaves it where the next pass's repair clears it, not half
    // removed where repair would bring it back.
    let bin = app_dir.parent().unwrap_or(Path::new("."));
    let old = previous_path(dest);
    let had_old = ran_before && dest.exists();
    if had_old {
        std::fs::rename(dest, &old).map_err(Error::io("move", dest))?;
    } else if dest.exists() {
        // A first install a killed pass left half done: nothing of it counts as running.
        discard(dest, bin)?;
    }
    crate::device::state::sync_tree(app_dir)?;
    std::fs::rename(app_dir, dest).map_err(Error::io("move", app_dir))?;
    crate::device::state::sync_folder(parent)?;
    let up = compose.up(project, &compose::find(dest)?);
    if up.is_err() && had_old {
        if discard(dest, bin).is_ok() && std::fs::rename(&old, dest).is_ok() {
            if let Ok(file) = compose::find(dest) {
                let _ = compose.up(project, &file);
            }
        }
    } else if up.is_err() && !ran_before {
        // Nothing ran before: take down what half started.
        let _ = take_down(compose, project, dest);
    } else if had_old {
        let _ = discard(&old, bin);
    }
    up
}

/// Removes the folder `dir` by way of `bin`, a folder on the same file system that a pass
/// clears when it starts: renamed there at once, then removed.
fn discard(dir: &Path, bin: &Path) -> Result<()> {
    let trash = tempfile::Builder::new()
        .prefix(".discarded")
        .tempdir_in(bin)
        .map_err(Error::io("create a folder in", bin))?;
    std::fs::rename(dir, trash.path().join("d")).map_err(Error::io("move", dir))?;
    trash.close().map_err(Error::io("remove", dir))
}

/// Brings a component's project down and removes its folder.
pub(crate) fn take_down(compose: &Compose, project: &str, dir: &Path) -> Result<()> {
    if let Ok(file) = compose::find(dir) {
        compose.down(project, &file)?;
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", dir)(e)),
        _ => Ok(()),
    }
}

/// The compose project of a component: `<deployment>-<component>`, in the characters
/// every compose accepts.
pub(crate) fn project_name(deployment: &str, component: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let name = format!("{}-{}", clean(deployment), clean(component));
    name.trim_start_matches(['-', '_']).to_string()
}
