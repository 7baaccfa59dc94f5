//! Media types and annotation keys margo-gitops reads and writes, in one place, and the
//! RFC 3339 form times take in annotations (`org.opencontainers.image.created`).

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub(crate) const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Every manifest type margo-gitops asks a registry for.
pub(crate) const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// The empty JSON object `{}` that OCI artifacts use as their config.
pub(crate) const EMPTY_JSON: &[u8] = b"{}";

// The current Margo spec: compose component and application package.
pub(crate) const MARGO_COMPOSE_ARTIFACT: &str = "application/vnd.org.margo.component.compose+json";
pub(crate) const MARGO_COMPOSE_LAYER: &str = "application/vnd.org.margo.component.compose.tar+gzip";
pub(crate) const MARGO_APP_ARTIFACT: &str = "application/vnd.margo.app.v1+json";
pub(crate) const MARGO_APP_DESCRIPTION: &str = "application/vnd.margo.app.description.v1+yaml";

// The seed PoC's types, kept for its consumers.
pub(crate) const POC_PACKAGE_ARTIFACT: &str = "application/vnd.margo.package.v1";
pub(crate) const POC_APP_LAYER: &str = "application/vnd.margo.app.v1.tar+gzip";

pub const ANN_TITLE: &str = "org.opencontainers.image.title";
pub(crate) const ANN_VERSION: &str = "org.opencontainers.image.version";
pub(crate) const ANN_SOURCE: &str = "org.opencontainers.image.source";
pub(crate) const ANN_REVISION: &str = "org.opencontainers.image.revision";
pub(crate) const ANN_CREATED: &str = "org.opencontainers.image.created";
pub(crate) const ANN_DESCRIPTION: &str = "org.opencontainers.image.description";
pub(crate) const ANN_AUTHORS: &str = "org.opencontainers.image.authors";
pub(crate) const ANN_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const ANN_MARGO_TYPE: &str = "org.margo.component.type";
pub(crate) const ANN_MARGO_VERSION: &str = "org.margo.component.version";
pub(crate) const ANN_MARGO_RESOURCE: &str = "org.margo.app.resource";
pub(crate) const ANN_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// True for the media types of a list of manifests (OCI index, Docker manifest list).
pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// Seconds since the epoch as an RFC 3339 UTC time, the form annotations carry.
pub(crate) fn rfc3339(epoch: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}
