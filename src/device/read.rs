//! The desired state as a device reads it: one version (the `desired` tag, or another),
//! its Desired State Manifest, and each ApplicationDeployment it lists, fetched by digest
//! (the store checks every byte), validated as `desired-state validate` would, and read
//! into what a device needs: the compose components and where their packages are, and the
//! environment the parameters give each component.
//!
//! The readers of the State Manifest and of a deployment document are plain functions of
//! bytes, so they are fed random input in tests.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_norway::Value;

use crate::desired::versions::{ANN_MANIFEST_VERSION, ARTIFACT, LAYER_YAML, MANIFEST_JSON};
use crate::error::{Error, Result};
use crate::oci::digest::Digest;
use crate::oci::manifest::Manifest;
use crate::oci::reference::LAYOUT_PREFIX;
use crate::oci::store::{descriptor_digest, Store};

/// One version of the desired state.
#[derive(Debug)]
pub(crate) struct DesiredVersion {
    pub digest: Digest,
    pub manifest_version: u64,
    pub deployments: Vec<Deployment>,
}

/// One ApplicationDeployment, as a device runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Deployment {
    /// `metadata.annotations.id` (the State Manifest's `deploymentId`).
    pub id: String,
    pub name: String,
    /// The digest of the document's bytes.
    pub document: String,
    pub components: Vec<Component>,
}

/// One compose component: its package and the environment the parameters give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Component {
    pub name: String,
    /// The package reference: `registry/repository:revision` (or `@sha256:…`), or an
    /// `oci-layout:` one; for the PoC's form, the repository alone.
    pub package: String,
    /// The PoC's form names the compose archive's blob (`packageLocation`), not the
    /// package: its digest, to find the package that holds it.
    pub archive: Option<String>,
    pub environment: BTreeMap<String, String>,
}

/// The Desired State Manifest: what the device must run, by document digest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StateManifest {
    pub manifest_version: u64,
    pub deployments: Vec<DeploymentRef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeploymentRef {
    pub deployment_id: String,
    pub digest: String,
}

/// Reads a State Manifest (`application/vnd.margo.manifest.v1+json`).
pub(crate) fn parse_state_manifest(bytes: &[u8]) -> Result<StateManifest> {
    let m: StateManifest = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid(format!("the Desired State Manifest is not valid: {e}")))?;
    if m.manifest_version == 0 {
        return Err(Error::invalid(
            "the Desired State Manifest's manifestVersion is 0; the first is 1",
        ));
    }
    Ok(m)
}

/// The manifest of the version `tag` names in `store` (`what` is the repository, for
/// errors).
pub(crate) async fn version_manifest(store: &Store, what: &str, tag: &str) -> Result<Manifest> {
    store.manifest(tag).await?.ok_or_else(|| Error::NotFound {
        what: format!("desired state {what}:{tag}"),
        hint: Some("publish one with `desired-state commit`, or name another --tag".into()),
    })
}

/// Reads the version whose manifest is `manifest` (the bytes the caller verified), tagged
/// `tag` in the desired-state repository `store` (`what` names it).
pub(crate) async fn read_version(
    store: &Store,
    what: &str,
    tag: &str,
    manifest: Manifest,
) -> Result<DesiredVersion> {
    let image = manifest.image()?;
    if image.artifact_type.as_deref() != Some(ARTIFACT) {
        return Err(Error::invalid(format!(
            "{what}:{tag} is not a desired state (artifactType {:?}, not {ARTIFACT})",
            image.artifact_type.as_deref().unwrap_or("none")
        )));
    }
    let layer = |media: &str, digest: Option<&str>| {
        image
            .layers
            .iter()
            .find(|l| l.media_type == media && digest.is_none_or(|d| l.digest == d))
            .cloned()
    };
    let dsm = layer(MANIFEST_JSON, None)
        .ok_or_else(|| Error::invalid(format!("{what}:{tag} holds no Desired State Manifest")))?;
    let bytes = store
        .fetch_blob_bytes(&descriptor_digest(&dsm)?, Some(dsm.size as u64))
        .await?;
    let state = parse_state_manifest(&bytes)?;
    let annotated = image
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANN_MANIFEST_VERSION));
    if let Some(a) = annotated {
        if a.parse::<u64>().ok() != Some(state.manifest_version) {
            return Err(Error::invalid(format!(
                "{what}:{tag}: the annotation {ANN_MANIFEST_VERSION}={a} disagrees with the State Manifest's manifestVersion {}",
                state.manifest_version
            )));
        }
    }
    let mut deployments = Vec::new();
    for r in &state.deployments {
        let desc = layer(LAYER_YAML, Some(&r.digest)).ok_or_else(|| {
            Error::invalid(format!(
                "deployment {}: its document {} is not in {what}:{tag}",
                r.deployment_id, r.digest
            ))
        })?;
        let bytes = store
            .fetch_blob_bytes(&descriptor_digest(&desc)?, Some(desc.size as u64))
            .await?;
        deployments.push(parse_deployment(&r.deployment_id, &bytes)?);
    }
    Ok(DesiredVersion {
        digest: manifest.digest,
        manifest_version: state.manifest_version,
        deployments,
    })
}

/// Reads and validates one ApplicationDeployment document listed as `id`.
pub(crate) fn parse_deployment(id: &str, bytes: &[u8]) -> Result<Deployment> {
    let file = format!("deployment {id}");
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::invalid_file(&file, None, "not UTF-8 text"))?;
    let report = crate::margo::validate::validate_text(Path::new(&file), text);
    if let Some(p) = report.errors().next() {
        return Err(Error::invalid_file(
            &file,
            Some(p.line),
            format!(
                "{}{} (desired-state validate shows every problem)",
                p.path_prefix(),
                p.message
            ),
        ));
    }
    let doc: Value = serde_norway::from_str(text)
        .map_err(|e| Error::invalid_file(&file, None, e.to_string()))?;
    let doc_id = doc["metadata"]["annotations"]["id"]
        .as_str()
        .or(doc["id"].as_str())
        .unwrap_or_default();
    // The id names a folder on the device: checked here whatever validation says.
    if !crate::margo::validate::is_uuid(id) {
        return Err(Error::invalid_file(
            &file,
            None,
            format!("the State Manifest lists it as `{id}`, which is not a UUID"),
        ));
    }
    if doc_id != id {
        return Err(Error::invalid_file(
            &file,
            None,
            format!(
                "its metadata.annotations.id is `{doc_id}`, the State Manifest lists it as `{id}`"
            ),
        ));
    }
    let profile = &doc["spec"]["deploymentProfile"];
    let kind = profile["type"].as_str().unwrap_or_default();
    if kind != "compose" && kind != "docker-compose" {
        return Err(Error::invalid_file(
            &file,
            None,
            format!("deployment profile type `{kind}`: a device runs compose deployments only"),
        ));
    }
    let components = components(&file, profile, &environment(&doc["spec"]["parameters"]))?;
    Ok(Deployment {
        id: id.to_string(),
        name: doc["metadata"]["name"].as_str().unwrap_or(id).to_string(),
        document: Digest::of(bytes).to_string(),
        components,
    })
}

/// The compose components of a deployment profile, each with its package and environment.
fn components(
    file: &str,
    profile: &Value,
    environment: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<Component>> {
    let mut components = Vec::new();
    for c in profile["components"].as_sequence().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or_default().to_string();
        // It names a folder on the device: checked here whatever validation says.
        if !crate::margo::validate::is_component_name(&name) {
            return Err(Error::invalid_file(
                file,
                None,
                format!("component name `{name}`: lower-case letters, digits and dashes only"),
            ));
        }
        let (package, archive) = package_reference(&c["properties"]).ok_or_else(|| {
            let why = match c["properties"]["packageLocation"].as_str() {
                Some(loc) => {
                    format!("packageLocation `{loc}` is not a registry or layout blob URL")
                }
                None => "no `repository` with its `revision`, and no `packageLocation`".into(),
            };
            Error::invalid_file(file, None, format!("component `{name}`: {why}"))
        })?;
        components.push(Component {
            environment: environment.get(&name).cloned().unwrap_or_default(),
            name,
            package,
            archive,
        });
    }
    Ok(components)
}

/// The package a component's properties name: `repository` + `revision` (the current
/// model), or the PoC's `packageLocation`: the compose archive's blob URL
/// (`http(s)://HOST/v2/REPOSITORY/blobs/sha256:…` or `file://LAYOUT/blobs/sha256/…`), which
/// gives the repository and the archive's digest. `keyLocation` is not read: what to
/// trust is the device's policy, not the document's.
fn package_reference(props: &Value) -> Option<(String, Option<String>)> {
    let text = |k: &str| match &props[k] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(repo) = text("repository") {
        let revision = text("revision")?;
        let repo = repo.strip_prefix("oci://").unwrap_or(&repo);
        let sep = if revision.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        return Some((format!("{repo}{sep}{revision}"), None));
    }
    let loc = text("packageLocation")?;
    if let Some(path) = loc.strip_prefix("file://") {
        let (layout, hex) = path.rsplit_once("/blobs/sha256/")?;
        return Some((
            format!("{LAYOUT_PREFIX}{layout}"),
            Some(format!("sha256:{hex}")),
        ));
    }
    if let Some(rest) = loc.strip_prefix("https://").or(loc.strip_prefix("http://")) {
        let (host, path) = rest.split_once("/v2/")?;
        let (repository, digest) = path.rsplit_once("/blobs/")?;
        let host = if host == "registry-1.docker.io" {
            "docker.io"
        } else {
            host
        };
        digest.starts_with("sha256:").then_some(())?;
        return Some((format!("{host}/{repository}"), Some(digest.to_string())));
    }
    None
}

/// Per component, the environment variables the parameters target (`ENV.NAME`).
fn environment(parameters: &Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let Some(map) = parameters.as_mapping() else {
        return out;
    };
    for (_, p) in map {
        let value = crate::package::yaml::text(&p["value"]);
        for t in p["targets"].as_sequence().into_iter().flatten() {
            let Some(var) = t["pointer"].as_str().and_then(|s| s.strip_prefix("ENV.")) else {
                continue;
            };
            for c in t["components"].as_sequence().into_iter().flatten() {
                if let Some(c) = c.as_str() {
                    out.entry(c.to_string())
                        .or_default()
                        .insert(var.to_string(), value.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::margo::deployment::tests::GOOD;
    use proptest::prelude::*;

    const ID: &str = "6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10";

    /// The normative example with a second, numeric parameter.
    fn doc() -> String {
        format!(
            "{GOOD}    port:\n      value: 8080\n      targets:\n        - pointer: ENV.PORT\n          components: [poc-app]\n"
        )
    }

    #[test]
    fn a_deployment_gives_its_package_and_environment() {
        let d = parse_deployment(ID, doc().as_bytes()).unwrap();
        assert_eq!(d.name, "poc-app-site-0001");
        assert_eq!(d.components.len(), 1);
        let c = &d.components[0];
        assert_eq!(c.package, "ghcr.io/acme/poc-app:1.0.0");
        assert_eq!(c.environment["SITE_ID"], "site-0001");
        assert_eq!(c.environment["PORT"], "8080");
    }

    #[test]
    fn a_document_listed_under_another_id_is_refused() {
        let e =
            parse_deployment("11111111-3f1c-5d2a-9b7e-2c1d0e8f4a11", GOOD.as_bytes()).unwrap_err();
        assert!(
            e.to_string().contains("the State Manifest lists it as"),
            "{e}"
        );
    }

    #[test]
    fn the_pocs_blob_urls_give_the_repository_and_the_archive() {
        for (location, package, archive) in [
            (
                "https://ghcr.io/v2/acme/poc-app/blobs/sha256:00",
                "ghcr.io/acme/poc-app",
                Some("sha256:00"),
            ),
            (
                "http://127.0.0.1:5000/v2/a/b/blobs/sha256:11",
                "127.0.0.1:5000/a/b",
                Some("sha256:11"),
            ),
            (
                "file:///srv/oci/app/blobs/sha256/22",
                "oci-layout:/srv/oci/app",
                Some("sha256:22"),
            ),
        ] {
            let doc = GOOD.replace(
                "repository: oci://ghcr.io/acme/poc-app\n          revision: 1.0.0",
                &format!("packageLocation: {location}"),
            );
            let d = parse_deployment(ID, doc.as_bytes()).unwrap();
            assert_eq!(d.components[0].package, package);
            assert_eq!(d.components[0].archive.as_deref(), archive);
        }
        let doc = GOOD.replace(
            "repository: oci://ghcr.io/acme/poc-app\n          revision: 1.0.0",
            "packageLocation: https://ghcr.io/acme/poc-app.tar.gz",
        );
        let e = parse_deployment(ID, doc.as_bytes()).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a registry or layout blob URL"),
            "{e}"
        );
    }

    #[test]
    fn ids_and_component_names_that_would_name_other_folders_are_refused() {
        let e = parse_deployment("../../x", GOOD.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("not a UUID"), "{e}");
        let doc = GOOD.replace("      - name: poc-app", "      - name: ../../x");
        assert!(parse_deployment(ID, doc.as_bytes()).is_err());
    }

    #[test]
    fn state_manifests_start_at_one() {
        let m =
            parse_state_manifest(br#"{"manifestVersion": 3, "bundle": null, "deployments": []}"#)
                .unwrap();
        assert_eq!(m.manifest_version, 3);
        assert!(parse_state_manifest(br#"{"manifestVersion": 0, "deployments": []}"#).is_err());
        assert!(parse_state_manifest(br#"{"manifestVersion": -1, "deployments": []}"#).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_state_manifest(&bytes);
            let _ = parse_deployment("x", &bytes);
        }

        #[test]
        fn mutated_documents_never_panic(flips in proptest::collection::vec((0usize..2048, any::<u8>()), 1..16)) {
            let mut doc = doc().into_bytes();
            for (at, b) in flips {
                let i = at % doc.len();
                doc[i] = b;
            }
            let _ = parse_deployment(ID, &doc);
        }
    }
}
