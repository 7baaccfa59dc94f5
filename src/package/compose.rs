//! A docker-compose app folder: find its compose file, check it, rewrite it pinned.
//!
//! Parsing uses the `compose_spec` crate, a typed model of the whole Compose
//! Specification (services, configs, secrets, env files, mounts, image references), fed
//! through our YAML crate; see the README for why this crate. This module decides which
//! files of the folder belong in a package (env files, config files, relative bind
//! mounts), refuses what must never travel (secrets, absolute paths, paths or links
//! leaving the folder), and writes the compose file back with every image pinned by
//! digest. It does not fetch images; [`crate::package::image`] does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use compose_spec::service::build::{Context, Dockerfile};
use compose_spec::service::volumes::{
    mount::Mount, ShortOptions, ShortVolume, Source as VolumeSource,
};
use compose_spec::service::Build;
use compose_spec::{Resource, ShortOrLong};

use crate::margo::yamltree::line_of;
use crate::paths::{safe_relative, UnsafePath};
use serde_norway::Value;

use crate::error::{Error, Result};

/// Compose file names, in the order Docker Compose looks for them.
pub(crate) const COMPOSE_NAMES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// A parsed and checked compose app.
#[derive(Debug)]
pub(crate) struct ComposeApp {
    pub dir: PathBuf,
    pub file: PathBuf,
    text: String,
    /// The compose project `name:`, when set.
    pub name: Option<String>,
    /// Services sorted by name.
    pub services: Vec<ServiceInfo>,
    /// Files of the folder the app needs, relative to it, sorted.
    pub files: BTreeSet<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceInfo {
    pub name: String,
    /// The `image:` reference as written.
    pub image: Option<String>,
    /// The service's `build:` section, when it has one.
    pub build: Option<BuildSpec>,
}

/// What `build:` says about building a service's image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BuildSpec {
    /// The context: a folder relative to the app folder, or a URL.
    pub context: String,
    /// Another Dockerfile than the context's own, relative to the context.
    pub dockerfile: Option<String>,
    /// A Dockerfile written in the compose file itself (`dockerfile_inline`).
    pub dockerfile_inline: Option<String>,
    /// The stage to build.
    pub target: Option<String>,
    /// Build arguments, `NAME=VALUE` or `NAME`.
    pub args: Vec<String>,
}

impl BuildSpec {
    fn from_compose(build: &ShortOrLong<Context, Build>) -> BuildSpec {
        match build {
            ShortOrLong::Short(context) => BuildSpec {
                context: context.to_string(),
                dockerfile: None,
                dockerfile_inline: None,
                target: None,
                args: Vec::new(),
            },
            ShortOrLong::Long(b) => BuildSpec {
                context: b
                    .context
                    .as_ref()
                    .map_or_else(|| ".".to_string(), ToString::to_string),
                dockerfile: match &b.dockerfile {
                    Some(Dockerfile::File(f)) => Some(f.display().to_string()),
                    _ => None,
                },
                dockerfile_inline: match &b.dockerfile {
                    Some(Dockerfile::Inline(text)) => Some(text.clone()),
                    _ => None,
                },
                target: b.target.clone(),
                args: b.args.clone().into_list().into_iter().collect(),
            },
        }
    }
}

/// Finds the compose file in `dir`.
pub(crate) fn find(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "app folder {} does not exist or is not a folder",
            dir.display()
        )));
    }
    COMPOSE_NAMES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Usage(format!(
                "no compose file in {}: looked for {}; pass the app folder as the first argument",
                dir.display(),
                COMPOSE_NAMES.join(", ")
            ))
        })
}

impl ComposeApp {
    /// Finds, parses and checks the compose app in `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let file = find(dir)?;
        let text = std::fs::read_to_string(&file).map_err(Error::io("read", &file))?;
        let compose: compose_spec::Compose = serde_norway::from_str(&text).map_err(|e| {
            Error::invalid_file(
                &file,
                e.location().map(|l| l.line()),
                format!("not a valid compose file: {e}"),
            )
        })?;
        let mut l = Loader {
            dir,
            file: &file,
            text: &text,
            files: BTreeSet::new(),
        };
        if !compose.include.is_empty() {
            return Err(l.invalid(
                "include:",
                "`include:` is not supported in a package; merge the included files into one compose file".into(),
            ));
        }
        let mut services = Vec::new();
        for (name, service) in &compose.services {
            services.push(l.service(name.as_str(), service)?);
        }
        if let Some((name, _)) = compose.secrets.first() {
            return Err(Error::invalid_file(
                &file,
                text.lines().position(|l| l.starts_with("secrets:")).map(|i| i + 1),
                format!("secret `{name}` is declared: secrets never go into a package"),
            )
            .with_hint("remove `secrets:` and provide them on the device, e.g. through deployment parameters"));
        }
        for (name, config) in &compose.configs {
            if let Resource::Compose(c) = config {
                if let compose_spec::config::Source::File(path) = &c.source {
                    l.add("configs", path, true)
                        .map_err(|e| e.in_context(&format!("config `{name}`")))?;
                }
            }
        }
        services.sort_by(|a, b| a.name.cmp(&b.name));
        if services.is_empty() {
            return Err(l.invalid("services", "the compose file defines no services".into()));
        }
        let files = l.files;
        Ok(ComposeApp {
            dir: dir.to_path_buf(),
            name: compose.name.map(|n| n.to_string()),
            file,
            text,
            services,
            files,
        })
    }

    /// The line of the compose file where `needle` first appears.
    pub(crate) fn line_of(&self, needle: &str) -> Option<usize> {
        line_of(&self.text, needle)
    }

    /// The compose file with each service's image replaced by `pins[service]` and `build`
    /// removed (a device does not build). Everything else is kept as written.
    pub(crate) fn pinned(&self, pins: &BTreeMap<String, String>) -> Result<String> {
        let mut doc: Value = serde_norway::from_str(&self.text).map_err(|e| {
            Error::invalid_file(&self.file, e.location().map(|l| l.line()), e.to_string())
        })?;
        let services = doc
            .get_mut("services")
            .and_then(Value::as_mapping_mut)
            .ok_or_else(|| Error::invalid_file(&self.file, None, "`services` is not a mapping"))?;
        for (name, pinned) in pins {
            let service = services
                .get_mut(name.as_str())
                .and_then(Value::as_mapping_mut)
                .ok_or_else(|| {
                    Error::invalid_file(&self.file, None, format!("no service `{name}`"))
                })?;
            service.insert(Value::from("image"), Value::from(pinned.as_str()));
            service.shift_remove("build");
        }
        let body = crate::package::yaml::to_string(&doc);
        let source = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(format!(
            "# Written by margo-gitops from {source}: every image is pinned by digest.\n{body}"
        ))
    }
}

/// The checks of one compose file, and the files of the folder it uses so far.
struct Loader<'a> {
    dir: &'a Path,
    file: &'a Path,
    text: &'a str,
    files: BTreeSet<PathBuf>,
}

impl Loader<'_> {
    /// A check failure at the first line that mentions `needle`.
    fn invalid(&self, needle: &str, message: String) -> Error {
        Error::invalid_file(self.file, line_of(self.text, needle), message)
    }

    /// Adds the file or folder `path` that `field` names (checked to stay in the folder).
    fn add(&mut self, field: &str, path: &Path, required: bool) -> Result<()> {
        let rel = safe_relative(self.dir, path)
            .map_err(|why| self.invalid(field, format!("`{field}`: {why}")))?;
        let full = self.dir.join(&rel);
        if full.is_dir() {
            collect_dir(self.dir, &rel, &mut self.files)
                .map_err(|why| self.invalid(field, format!("`{field}`: {why}")))?;
        } else if full.is_file() {
            self.files.insert(rel);
        } else if required {
            return Err(self.invalid(
                field,
                format!(
                    "`{field}` names `{}`, which does not exist in {}",
                    path.display(),
                    self.dir.display()
                ),
            ));
        }
        Ok(())
    }

    /// Checks a service (no secrets) and adds its env files and bind-mounted files.
    fn service(&mut self, name: &str, service: &compose_spec::Service) -> Result<ServiceInfo> {
        if let Some(first) = service.secrets.first() {
            let secret = match first {
                ShortOrLong::Short(id) => id.to_string(),
                ShortOrLong::Long(l) => l.source.to_string(),
            };
            return Err(self
                .invalid(
                    "secrets:",
                    format!(
                        "service `{name}` uses secret `{secret}`: secrets never go into a package"
                    ),
                )
                .with_hint("provide secrets on the device instead"));
        }
        if let Some(env_file) = &service.env_file {
            for entry in env_file.clone().into_list() {
                let (path, required) = match entry {
                    ShortOrLong::Short(p) => (p, true),
                    ShortOrLong::Long(c) => (c.path, c.required),
                };
                self.add("env_file", &path, required)?;
            }
        }
        for volume in &service.volumes {
            // Absolute host paths are the device's own folders; relative ones are app files.
            if let Some(host) = host_path(volume).filter(|h| h.is_relative() && !h.starts_with("~"))
            {
                self.add("volumes", &host, true)?;
            }
        }
        Ok(ServiceInfo {
            name: name.to_string(),
            image: service.image.as_ref().map(|i| i.as_str().to_string()),
            build: service.build.as_ref().map(BuildSpec::from_compose),
        })
    }
}

/// The host path of a bind mount, short or long syntax.
fn host_path(volume: &ShortOrLong<ShortVolume, Mount>) -> Option<PathBuf> {
    match volume {
        ShortOrLong::Short(ShortVolume {
            options:
                Some(ShortOptions {
                    source: VolumeSource::HostPath(h),
                    ..
                }),
            ..
        }) => Some(h.as_path().to_path_buf()),
        ShortOrLong::Long(Mount::Bind(b)) => Some(b.source.as_path().to_path_buf()),
        _ => None,
    }
}

/// Adds every file under `rel` (a folder), checking links on the way.
fn collect_dir(
    base: &Path,
    rel: &Path,
    files: &mut BTreeSet<PathBuf>,
) -> std::result::Result<(), UnsafePath> {
    let dir = base.join(rel);
    let unreadable = |e: std::io::Error| UnsafePath::Unreadable {
        path: dir.clone(),
        why: e.to_string(),
    };
    for entry in std::fs::read_dir(&dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let child = rel.join(entry.file_name());
        let checked = safe_relative(base, &child)?;
        let full = base.join(&checked);
        if full.is_dir() {
            collect_dir(base, &checked, files)?;
        } else if full.is_file() {
            files.insert(checked);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_finds_the_field() {
        assert_eq!(line_of("a: 1\nsecrets:\n", "secrets:"), Some(2));
    }
}
