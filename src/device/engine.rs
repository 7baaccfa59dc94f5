//! The container engine of the device: the Docker Engine API through `bollard`
//! (`DOCKER_HOST` honoured, the API version negotiated, so dockerd 20.10 and newer both
//! answer) for loading and tagging images, and the compose the device has for projects:
//! `docker compose` (v2) when the CLI has it, else `docker-compose` (v1). Both are given the
//! project name, file and folder explicitly (the file's own `name:` is dropped), so a
//! device that moves from one to the other keeps its projects. Compose runs as a recorded
//! child of the pass ([`crate::device::children`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use bollard::query_parameters::{ImportImageOptions, TagImageOptions};
use bollard::Docker;
use futures_util::StreamExt as _;

use crate::error::{Error, Result};
use crate::oci::blocking;

/// A connected engine.
pub(crate) struct Engine {
    docker: Docker,
}

fn engine_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Service {
        service: "docker engine".into(),
        message: format!("{what}: {e}"),
        hint: Some("is dockerd running, and does DOCKER_HOST name its socket?".into()),
    }
}

impl Engine {
    /// Connects where `DOCKER_HOST` says (the default socket otherwise).
    pub(crate) async fn connect() -> Result<Engine> {
        let docker = Docker::connect_with_defaults().map_err(|e| engine_error("connect", e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| engine_error("connect", e))?;
        Ok(Engine { docker })
    }

    /// Loads an image archive (`docker save` or OCI layout tarball), streamed from disk.
    pub(crate) async fn load(&self, archive: &Path) -> Result<()> {
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(Error::io("read", archive))?;
        let body = tokio_util::io::ReaderStream::new(file);
        let mut progress = self.docker.import_image_stream(
            ImportImageOptions {
                quiet: true,
                ..Default::default()
            },
            body,
            None,
        );
        let what = format!("load {}", archive.display());
        while let Some(item) = progress.next().await {
            let info = item.map_err(|e| engine_error(&what, e))?;
            if let Some(detail) = info.error_detail {
                return Err(engine_error(&what, detail.message.unwrap_or_default()));
            }
        }
        Ok(())
    }

    /// True when the engine has an image by this name or id.
    pub(crate) async fn has_image(&self, name: &str) -> Result<bool> {
        match self.docker.inspect_image(name).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(engine_error(&format!("inspect {name}"), e)),
        }
    }

    /// The first of `ids` the engine has an image by.
    pub(crate) async fn find_image(&self, ids: &[&str]) -> Result<Option<String>> {
        for id in ids {
            if self.has_image(id).await? {
                return Ok(Some(id.to_string()));
            }
        }
        Ok(None)
    }

    /// Tags the image `id` as `repo:tag`.
    pub(crate) async fn tag(&self, id: &str, repo: &str, tag: &str) -> Result<()> {
        self.docker
            .tag_image(
                id,
                Some(TagImageOptions {
                    repo: Some(repo.into()),
                    tag: Some(tag.into()),
                }),
            )
            .await
            .map_err(|e| engine_error(&format!("tag {id} as {repo}:{tag}"), e))
    }
}

/// The compose the device has.
#[derive(Clone, Debug)]
pub(crate) struct Compose {
    program: Vec<String>,
    /// The state folder its runs are recorded in.
    state: PathBuf,
}

impl Compose {
    /// `docker compose` when the CLI has it, else `docker-compose`; runs recorded under the
    /// state folder `state`.
    pub(crate) fn detect(state: &Path) -> Result<Compose> {
        let state = state.to_path_buf();
        let works = |args: &[&str]| {
            Command::new(args[0])
                .args(&args[1..])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if works(&["docker", "compose", "version"]) {
            return Ok(Compose {
                program: vec!["docker".into(), "compose".into()],
                state,
            });
        }
        if works(&["docker-compose", "version"]) {
            return Ok(Compose {
                program: vec!["docker-compose".into()],
                state,
            });
        }
        Err(Error::Usage(
            "no compose on this device: install the Docker CLI's compose plugin (`docker compose`) or docker-compose"
                .into(),
        ))
    }

    /// Brings project `project` up from `file` (its folder the project directory).
    pub(crate) fn up(&self, project: &str, file: &Path) -> Result<()> {
        self.run(project, file, &["up", "-d", "--remove-orphans"])
    }

    /// Brings project `project` down, its containers and networks removed.
    pub(crate) fn down(&self, project: &str, file: &Path) -> Result<()> {
        self.run(project, file, &["down", "--remove-orphans"])
    }

    fn run(&self, project: &str, file: &Path, args: &[&str]) -> Result<()> {
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .arg("--project-name")
            .arg(project)
            .arg("--file")
            .arg(file)
            .arg("--project-directory")
            .arg(dir)
            .args(args)
            .current_dir(dir);
        let out = blocking(|| super::children::run(&self.state, &mut cmd)).map_err(|e| {
            Error::Service {
                service: self.program.join(" "),
                message: format!("cannot run it: {e}"),
                hint: None,
            }
        })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        Err(Error::Service {
            service: format!("{} {}", self.program.join(" "), args[0]),
            message: format!(
                "project {project} failed ({}): {}",
                out.status,
                last[last.len().saturating_sub(3)..].join(" / ")
            ),
            hint: None,
        })
    }
}
