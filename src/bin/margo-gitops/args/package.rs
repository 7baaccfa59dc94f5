//! The arguments of `package prepare|publish|show|sign|verify`, and of signing.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use margo_gitops::oci::credentials::Secret;
use margo_gitops::package::image::Platform;
use margo_gitops::signing::mode::SignMode;

use super::{parse_image_arg, parse_platform, parse_secret, parse_sign_mode, RegistryArgs};

#[derive(Debug, Subcommand)]
pub enum Package {
    /// Build a Margo Compose Archive from a docker-compose app folder.
    Prepare(PrepareArgs),
    /// Push a prepared package to a registry or an OCI layout folder.
    Publish(PublishArgs),
    /// Show what a reference holds: manifest, layers, annotations, tags, signatures.
    Show(ShowArgs),
    /// What changes on a device between two versions of the app: `git:REV`, an app folder,
    /// a prepared package or a published reference on each side.
    Diff(PackageDiffArgs),
    /// Sign a published package (its signature is added beside it; the package is untouched).
    Sign(SignArgs),
    /// Verify that a published package carries a valid signature (keyless identity or key).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The package: `registry/name:tag`, `…@sha256:…` or `oci-layout:PATH:tag`.
    pub reference: String,
    #[command(flatten)]
    pub signing: SigningArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct SigningArgs {
    /// How to sign: `keyless` (Sigstore, from the OIDC identity; the default inside GitHub
    /// Actions), `key:PATH` (a P-256 private key, PEM, or a cosign key with
    /// COSIGN_PASSWORD), `pgp:PATH` (an armored OpenPGP secret key; a detached signature of
    /// the archive, as the PoC made), or `none` (the default elsewhere).
    #[arg(long, value_name = "MODE", env = "MARGO_GITOPS_SIGN",
          value_parser = parse_sign_mode, help_heading = "Signing")]
    pub sign: Option<SignMode>,

    /// The OIDC identity token for keyless signing (default: SIGSTORE_ID_TOKEN, or the
    /// GitHub Actions token endpoint).
    #[arg(long, value_name = "JWT", env = "SIGSTORE_ID_TOKEN", hide_env_values = true,
          value_parser = parse_secret, help_heading = "Signing")]
    pub identity_token: Option<Secret>,

    /// Sigstore client trust config (JSON, as sigstore-python's --trust-config reads):
    /// which Fulcio and Rekor to use (else SIGSTORE_TRUST_CONFIG). Default: Sigstore's
    /// public-good instance.
    #[arg(
        long,
        value_name = "FILE",
        env = "MARGO_GITOPS_TRUST_CONFIG",
        help_heading = "Signing"
    )]
    pub trust_config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The package: `registry/name:tag`, `…@sha256:…` or `oci-layout:PATH:tag`.
    pub reference: String,
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The app folder holding the compose file (and margo.yaml when there is one).
    #[arg(default_value = ".")]
    pub app_dir: PathBuf,

    /// Where to write the archive and its descriptor.
    #[arg(short, long = "output", value_name = "OUT_DIR", default_value = "dist")]
    pub out_dir: PathBuf,

    /// The platform to take out of multi-platform images.
    #[arg(long, default_value = "linux/amd64", env = "MARGO_GITOPS_PLATFORM",
          value_parser = parse_platform, help_heading = "Images")]
    pub platform: Platform,

    /// A local image archive for a service (`docker save` or `docker buildx --output type=oci`).
    #[arg(long = "image", value_name = "SERVICE=PATH", value_parser = parse_image_arg, help_heading = "Images")]
    pub images: Vec<(String, PathBuf)>,

    /// Build the services that have `build:` and no --image with the Docker engine here
    /// (`docker buildx build --output type=oci`, else `docker build` + `docker save`).
    #[arg(long, env = "MARGO_GITOPS_BUILD", help_heading = "Images")]
    pub build: bool,

    /// Leave images in their registries: the archive holds only compose.yaml and its files.
    #[arg(long, help_heading = "Images")]
    pub no_images: bool,

    /// Where fetched image blobs are kept between runs.
    #[arg(
        long,
        value_name = "DIR",
        env = "MARGO_GITOPS_CACHE_DIR",
        help_heading = "Images"
    )]
    pub cache_dir: Option<PathBuf>,

    /// The app version, when there is no margo.yaml (or to override it).
    #[arg(long)]
    pub version: Option<String>,

    /// The app id, when there is no margo.yaml (default: compose `name:` or the folder name).
    #[arg(long)]
    pub app_id: Option<String>,

    /// Also sign the archive: the bundle goes beside it as `<archive>.sigstore.json`.
    #[command(flatten)]
    pub signing: SigningArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A prepared package (.tar.gz) or the folder `package prepare` wrote.
    #[arg(default_value = "dist", value_name = "PACKAGE_OR_OUT_DIR")]
    pub input: PathBuf,

    /// The repository to publish to: `registry/name` or `oci-layout:PATH` (default:
    /// packageRepository of .margo-gitops.yaml).
    #[arg(
        long,
        value_name = "REPOSITORY",
        env = "MARGO_GITOPS_PACKAGE_REPOSITORY"
    )]
    pub to: Option<String>,

    /// Where the Application Package goes (default: the repository with `-app` appended).
    #[arg(long, value_name = "REPOSITORY")]
    pub app_to: Option<String>,

    /// Tag with this version instead of the package's.
    #[arg(long)]
    pub version: Option<String>,

    /// Artifact layout: the current Margo spec, or the seed PoC's.
    #[arg(long, value_enum, default_value_t = FormatArg::Margo)]
    pub format: FormatArg,

    /// Another tag to point at the package (repeatable), e.g. `latest` for PoC consumers.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,

    /// Move the version tag even when it already names other content (versions are
    /// otherwise immutable).
    #[arg(long)]
    pub replace: bool,

    #[command(flatten)]
    pub signing: SigningArgs,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// `registry/name:tag`, `…@sha256:…` or `oci-layout:PATH:TAG`.
    pub reference: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PackageDiffArgs {
    /// The old side: `git:REV` (the app folder at that commit), an app folder, a prepared
    /// package (output folder or .tar.gz) or a published package reference.
    pub old: String,
    /// The new side, the same way.
    pub new: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Look up, in their registries, the digests of images an app folder names by tag (as
    /// `package prepare` would pin them), so that a tag that moved shows as a change.
    #[arg(long)]
    pub resolve: bool,

    /// The platform whose manifest `--resolve` looks up in multi-platform images.
    #[arg(long, default_value = "linux/amd64", env = "MARGO_GITOPS_PLATFORM",
          value_parser = parse_platform)]
    pub platform: Platform,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Compose component artifact of the current Margo spec (+ Application Package).
    Margo,
    /// The seed PoC's package artifact and media types.
    Poc,
}

/// Who must have signed a package: a key, an OpenPGP key, or a keyless identity.
#[derive(Debug, Args)]
pub struct SignerArgs {
    /// The public key (PEM) a key signature must verify with.
    #[arg(long, value_name = "PUB", help_heading = "Signer",
          conflicts_with_all = ["certificate_identity", "certificate_identity_regexp", "pgp_key"])]
    pub key: Option<PathBuf>,

    /// The armored OpenPGP public key the archive's detached signature must verify with.
    #[arg(long, value_name = "PUB", help_heading = "Signer",
          conflicts_with_all = ["certificate_identity", "certificate_identity_regexp"])]
    pub pgp_key: Option<PathBuf>,

    /// The identity the keyless signature's certificate must name (e.g.
    /// `https://github.com/OWNER/REPO/.github/workflows/publish.yml@refs/heads/main`).
    #[arg(long, value_name = "IDENTITY", help_heading = "Signer")]
    pub certificate_identity: Option<String>,

    /// A regular expression the whole certified identity must match.
    #[arg(
        long,
        value_name = "REGEX",
        help_heading = "Signer",
        conflicts_with = "certificate_identity"
    )]
    pub certificate_identity_regexp: Option<String>,

    /// The OIDC issuer that must have vouched for the identity (e.g.
    /// `https://token.actions.githubusercontent.com`).
    #[arg(long, value_name = "URL", help_heading = "Signer")]
    pub certificate_oidc_issuer: Option<String>,

    /// A regular expression the whole OIDC issuer must match.
    #[arg(
        long,
        value_name = "REGEX",
        help_heading = "Signer",
        conflicts_with = "certificate_oidc_issuer"
    )]
    pub certificate_oidc_issuer_regexp: Option<String>,

    /// Sigstore client trust config or trusted root (JSON) to verify keyless signatures with
    /// (else SIGSTORE_TRUST_CONFIG).
    #[arg(
        long,
        value_name = "FILE",
        env = "MARGO_GITOPS_TRUST_CONFIG",
        help_heading = "Signer"
    )]
    pub trust_config: Option<PathBuf>,
}

impl SignerArgs {
    pub fn spec(&self) -> margo_gitops::signing::verify::RequirementSpec {
        margo_gitops::signing::verify::RequirementSpec {
            key: self.key.clone(),
            pgp_key: self.pgp_key.clone(),
            certificate_identity: self.certificate_identity.clone(),
            certificate_identity_regexp: self.certificate_identity_regexp.clone(),
            certificate_oidc_issuer: self.certificate_oidc_issuer.clone(),
            certificate_oidc_issuer_regexp: self.certificate_oidc_issuer_regexp.clone(),
            trust_config: super::trust_config(self.trust_config.clone()),
        }
    }
}
