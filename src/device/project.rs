//! An unpacked package made into a compose project this engine runs offline: its image
//! archives found (each names the manifest the compose file pins and the config that is
//! the image's id once loaded), and its compose file rewritten: every pinned image
//! replaced by a local name derived from its digest (an engine with the classic image
//! store keeps no repo digest for a loaded image, so `name@sha256:…` would be pulled), the
//! environment the parameters give the component set on every service (`$` kept literal),
//! and the top-level `name:` dropped (compose v1 refuses it; the project name is given on
//! the command line anyway).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};
use crate::package::compose;

/// A package unpacked on the device.
#[derive(Debug)]
pub(crate) struct Unpacked {
    /// The app folder (the archive's one top-level folder).
    pub dir: PathBuf,
    pub compose_file: PathBuf,
    pub images: Vec<ImageArchive>,
}

/// One image archive of a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageArchive {
    pub file: PathBuf,
    /// The manifest digest the compose file pins.
    pub manifest: String,
    /// The config digest: the image id once loaded.
    pub config: String,
}

/// Finds the app folder, its compose file and its image archives under `root`.
pub(crate) fn open(root: &Path) -> Result<Unpacked> {
    let tops: Vec<PathBuf> = fs::read_dir(root)
        .map_err(Error::io("read", root))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let [dir] = tops.as_slice() else {
        return Err(Error::invalid(format!(
            "the package holds {} top-level entries, not one app folder",
            tops.len()
        )));
    };
    if !dir.is_dir() || dir.is_symlink() {
        return Err(Error::invalid(
            "the package's top-level entry is not a folder",
        ));
    }
    let compose_file =
        compose::find(dir).map_err(|_| Error::invalid("the package holds no compose file"))?;
    let mut images = Vec::new();
    let images_dir = dir.join("images");
    if images_dir.is_dir() && !images_dir.is_symlink() {
        let mut files: Vec<PathBuf> = fs::read_dir(&images_dir)
            .map_err(Error::io("read", &images_dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tar") && p.is_file() && !p.is_symlink())
            .collect();
        files.sort();
        for file in files {
            images.push(read_image_archive(&file)?);
        }
    }
    Ok(Unpacked {
        dir: dir.clone(),
        compose_file,
        images,
    })
}

/// Reads an image archive's `index.json` (the manifest) and `manifest.json` (the config),
/// skipping over the layers.
fn read_image_archive(file: &Path) -> Result<ImageArchive> {
    let bad = |why: String| Error::invalid_file(file, None, why);
    let f = fs::File::open(file).map_err(Error::io("read", file))?;
    let mut tar = tar::Archive::new(f);
    let (mut index, mut docker) = (None, None);
    for entry in tar
        .entries_with_seek()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("not a tar archive: {e}")))?;
        let name = entry.path_bytes().into_owned();
        let slot = match name.as_slice() {
            b"index.json" => &mut index,
            b"manifest.json" => &mut docker,
            _ => continue,
        };
        if entry.size() > 1 << 20 {
            return Err(bad("its index is larger than 1 MiB".into()));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", file))?;
        *slot = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
    }
    let manifest = index
        .as_ref()
        .and_then(|i| i["manifests"][0]["digest"].as_str())
        .ok_or_else(|| bad("no OCI index.json naming its manifest".into()))?;
    let config = docker
        .as_ref()
        .and_then(|d| d[0]["Config"].as_str())
        .and_then(|c| c.strip_prefix("blobs/sha256/"))
        .ok_or_else(|| bad("no docker manifest.json naming its config".into()))?;
    Ok(ImageArchive {
        file: file.to_path_buf(),
        manifest: manifest.to_string(),
        config: format!("sha256:{config}"),
    })
}

/// The local name of the image `image` pinned to `digest`: `(repository, tag)`, where the
/// repository's first part is a host no one serves (`margo-gitops.local`), so a missing
/// image is never pulled from elsewhere by mistake.
pub(crate) fn local_name(image: &str, digest: &str) -> (String, String) {
    let base = image
        .split('@')
        .next()
        .unwrap_or(image)
        .rsplit('/')
        .next()
        .unwrap_or("image");
    let base = base.split(':').next().unwrap_or(base);
    let clean: String = base
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let clean = clean.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    let name = if clean.is_empty() { "image" } else { clean };
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    (format!("margo-gitops.local/{name}"), hex.to_string())
}

/// Per manifest digest, the local name (repository, tag) its image is tagged with.
pub(crate) type LocalNames = BTreeMap<String, (String, String)>;

/// The compose file `text` rewritten for this engine: each image pinned to a digest in
/// `loaded` (the manifest digests whose images the engine has) replaced by its
/// [`local_name`], `environment` set on every service, the top-level `name:` dropped.
/// Returns the text and, per digest, the local name (repository, tag) to tag the image with.
pub(crate) fn rewrite(
    text: &str,
    loaded: &BTreeSet<String>,
    environment: &BTreeMap<String, String>,
) -> Result<(String, LocalNames)> {
    let mut locals = BTreeMap::new();
    let mut doc: Value = serde_norway::from_str(text)
        .map_err(|e| Error::invalid(format!("the package's compose file: {e}")))?;
    let Some(top) = doc.as_mapping_mut() else {
        return Err(Error::invalid(
            "the package's compose file is not a mapping",
        ));
    };
    top.remove("name");
    let services = top
        .get_mut("services")
        .and_then(Value::as_mapping_mut)
        .ok_or_else(|| Error::invalid("the package's compose file has no services"))?;
    for (_, service) in services.iter_mut() {
        let Some(s) = service.as_mapping_mut() else {
            continue;
        };
        let pinned = s
            .get("image")
            .and_then(Value::as_str)
            .and_then(|i| i.split_once('@'))
            .filter(|(_, d)| loaded.contains(*d))
            .map(|(name, d)| (d.to_string(), local_name(name, d)));
        if let Some((digest, (repo, tag))) = pinned {
            s.insert("image".into(), Value::from(format!("{repo}:{tag}")));
            locals.insert(digest, (repo, tag));
        }
        if !environment.is_empty() {
            let mut env = environment_map(s.get("environment"));
            for (k, v) in environment {
                env.insert(Value::from(k.as_str()), Value::from(v.replace('$', "$$")));
            }
            s.insert("environment".into(), Value::Mapping(env));
        }
    }
    let body = crate::package::yaml::to_string(&doc);
    let text = format!(
        "# Rewritten by margo-gitops device for this engine: images by local name, parameters as environment.\n{body}"
    );
    Ok((text, locals))
}

/// A service's `environment` (a mapping or a list of `KEY=VALUE`) as a mapping.
fn environment_map(env: Option<&Value>) -> Mapping {
    match env {
        Some(Value::Mapping(m)) => m.clone(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (Value::from(k), Value::from(v)),
                None => (Value::from(item), Value::Null),
            })
            .collect(),
        _ => Mapping::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_images_become_local_names_and_parameters_environment() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let text = format!(
            "name: poc-app\nservices:\n  redis:\n    image: reg:5000/library/redis:alpine@{digest}\n    environment: [A=1, B]\n  other:\n    image: busybox:latest\n"
        );
        let (repo, tag) = local_name("reg:5000/library/redis:alpine", &digest);
        assert_eq!(repo, "margo-gitops.local/redis");
        assert_eq!(tag, "ab".repeat(32));
        let loaded = BTreeSet::from([digest.clone()]);
        let env = BTreeMap::from([("GREETING".to_string(), "costs $5".to_string())]);
        let (out, locals) = rewrite(&text, &loaded, &env).unwrap();
        assert_eq!(locals[&digest], (repo.clone(), tag.clone()));
        let doc: Value = serde_norway::from_str(&out).unwrap();
        assert!(doc.get("name").is_none());
        assert_eq!(
            doc["services"]["redis"]["image"],
            format!("{repo}:{tag}").as_str()
        );
        assert_eq!(doc["services"]["other"]["image"], "busybox:latest");
        assert_eq!(doc["services"]["redis"]["environment"]["A"], "1");
        assert_eq!(
            doc["services"]["redis"]["environment"]["GREETING"],
            "costs $$5"
        );
        assert_eq!(
            doc["services"]["other"]["environment"]["GREETING"],
            "costs $$5"
        );
    }

    #[test]
    fn local_names_are_valid_docker_references() {
        let (repo, _) = local_name("Weird_Name..:tag", "sha256:00");
        assert_eq!(repo, "margo-gitops.local/weird_name");
        let (repo, _) = local_name("@@@", "sha256:00");
        assert_eq!(repo, "margo-gitops.local/image");
    }
}
