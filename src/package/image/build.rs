//! `--build`: the image of a service that has a `build:` section, built with the Docker
//! engine at hand for the package's platform, into an archive that prepare then reads like
//! any `--image` archive.
//!
//! Where `docker buildx` exists (GitHub's runners), `docker buildx build --output
//! type=oci,dest=ARCHIVE`; otherwise the classic builder, `docker build` then `docker
//! save` (Debian's dockerd 20.10 has no buildx). The docker CLI finds its engine as it
//! always does (`DOCKER_HOST`, contexts). Its output goes to standard error, so that ours
//! stays what prepare prints.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Platform;
use crate::error::{Error, Result};
use crate::package::compose::BuildSpec;

/// Builds `service` from `spec` (relative to `app_dir`) for `platform`; returns the archive
/// written in `out`.
pub(crate) fn build(
    service: &str,
    spec: &BuildSpec,
    app_dir: &Path,
    platform: &Platform,
    out: &Path,
) -> Result<PathBuf> {
    let archive = out.join(format!("{service}.tar"));
    let is_url = spec.context.contains("://") || spec.context.starts_with("git@");
    let context = if is_url {
        spec.context.clone()
    } else {
        app_dir.join(&spec.context).display().to_string()
    };
    let mut common: Vec<String> = vec!["--platform".into(), platform.to_string()];
    if let Some(f) = &spec.dockerfile {
        let file = if is_url {
            f.clone()
        } else {
            Path::new(&context).join(f).display().to_string()
        };
        common.extend(["--file".into(), file]);
    }
    if spec.dockerfile_inline.is_some() {
        common.extend(["--file".into(), "-".into()]);
    }
    if let Some(t) = &spec.target {
        common.extend(["--target".into(), t.clone()]);
    }
    for a in &spec.args {
        common.extend(["--build-arg".into(), a.clone()]);
    }
    let inline = spec.dockerfile_inline.as_deref();
    if has_buildx() {
        let output = format!("type=oci,dest={}", archive.display());
        let args = [
            &["buildx", "build", "--output", &output][..],
            &str_refs(&common),
        ]
        .concat();
        docker(service, &args, &context, inline)?;
    } else {
        let tag = format!("margo-gitops-build/{service}:latest");
        let args = [&["build", "--tag", &tag][..], &str_refs(&common)].concat();
        docker(service, &args, &context, inline)?;
        let path = archive.display().to_string();
        docker(service, &["save", "--output", &path, &tag], "", None)?;
    }
    Ok(archive)
}

fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// True when the docker CLI has the buildx plugin.
fn has_buildx() -> bool {
    Command::new("docker")
        .args(["buildx", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `docker ARGS [CONTEXT]`, its output on our standard error, `stdin` fed to it.
fn docker(service: &str, args: &[&str], context: &str, stdin: Option<&str>) -> Result<()> {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    if !context.is_empty() {
        cmd.arg(context);
    }
    let stderr = || {
        std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::inherit())
    };
    cmd.stdout(stderr()).stderr(stderr());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let what = format!("docker {}", args.first().copied().unwrap_or_default());
    let mut child = cmd.spawn().map_err(|e| {
        Error::Usage(format!(
            "--build runs the docker CLI, which could not be started ({e}): install Docker, or build the image yourself and pass --image {service}=ARCHIVE"
        ))
    })?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .map_err(Error::io("write", Path::new("docker's standard input")))?;
    }
    let status = child
        .wait()
        .map_err(Error::io("run", Path::new("docker")))?;
    if !status.success() {
        return Err(Error::service(
            what,
            format!(
                "building the image of service `{service}` failed ({status}); its output is above"
            ),
        ));
    }
    Ok(())
}
