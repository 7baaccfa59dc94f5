//! The command line: every command, flag and environment variable, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use margo_gitops::oci::credentials::Secret;
use margo_gitops::package::image::Platform;
use margo_gitops::signing::mode::SignMode;

/// GitOps for Margo edge deployments: compose packages in OCI registries.
#[derive(Debug, Parser)]
#[command(name = "margo-gitops", version, about, max_term_width = 100)]
pub struct Cli {
    /// Print no progress, only results and errors.
    #[arg(long, short, global = true, env = "MARGO_GITOPS_QUIET")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compose packages: prepare, publish and show them.
    #[command(subcommand)]
    Package(Package),
    /// The desired state: render, validate, commit with versions and `desired`, show, diff.
    #[command(subcommand, name = "desired-state")]
    DesiredState(DesiredState),
    /// Git hooks: check the desired state before a push or a commit.
    #[command(subcommand)]
    Hook(Hook),
    /// Mirror the git history of the desired state into OCI versions (backfill, incremental).
    Mirror(MirrorArgs),
    /// Signing keys.
    #[command(subcommand)]
    Key(Key),
    /// What the GitHub Action runs: publish on push, review a pull request, backfill on
    /// workflow_dispatch (reads GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, GITHUB_SHA, …).
    Ci(CiArgs),
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// A local image archive for a service that is built (repeatable; the action passes
    /// its `images` input, one SERVICE=PATH per line, as MARGO_GITOPS_IMAGES).
    #[arg(long = "image", value_name = "SERVICE=PATH", value_parser = parse_image_arg)]
    pub images: Vec<(String, PathBuf)>,

    /// The platform to take out of multi-platform images.
    #[arg(long, default_value = "linux/amd64", env = "MARGO_GITOPS_PLATFORM",
          value_parser = parse_platform)]
    pub platform: Platform,

    /// Where fetched image blobs are kept between runs.
    #[arg(long, value_name = "DIR", env = "MARGO_GITOPS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// The package repository (default: packageRepository of .margo-gitops.yaml, else
    /// REGISTRY/APP-ID).
    #[arg(
        long,
        value_name = "REPOSITORY",
        env = "MARGO_GITOPS_PACKAGE_REPOSITORY"
    )]
    pub package_repository: Option<String>,

    /// Namespace for repositories neither flags nor .margo-gitops.yaml name:
    /// REGISTRY/APP-ID and REGISTRY/APP-ID-desired.
    #[arg(long, value_name = "REGISTRY", env = "MARGO_GITOPS_REGISTRY")]
    pub registry_namespace: Option<String>,

    /// The desired-state repository (default: desiredStateRepository of .margo-gitops.yaml,
    /// else REGISTRY/APP-ID-desired).
    #[arg(
        long,
        value_name = "REPOSITORY",
        env = "MARGO_GITOPS_DESIRED_STATE_REPOSITORY"
    )]
    pub desired_repository: Option<String>,

    /// The GitHub token for the pull-request comment (default: GITHUB_TOKEN).
    #[arg(long, value_name = "TOKEN", env = "MARGO_GITOPS_GITHUB_TOKEN",
          hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<Secret>,

    #[command(flatten)]
    pub signing: SigningArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum Key {
    /// Write a new P-256 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub.
    Generate {
        /// Path and name of the pair, without extension.
        prefix: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// The desired-state repository (default: desiredStateRepository of the config).
    #[arg(
        long,
        value_name = "REPOSITORY",
        env = "MARGO_GITOPS_DESIRED_STATE_REPOSITORY"
    )]
    pub to: Option<String>,

    /// The branch (or revision) whose first-parent history is mirrored; HEAD by default.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// Mirror only the commits after this one.
    #[arg(long, value_name = "REV")]
    pub since: Option<String>,

    /// The package repository; each commit's version comes from its margo.yaml.
    #[arg(long, value_name = "REPOSITORY")]
    pub package: Option<String>,

    /// Skip (and report) commits whose package is not in the registry instead of failing.
    #[arg(long)]
    pub skip_missing: bool,

    /// Mirror a rewritten history and move `desired` to it.
    #[arg(long)]
    pub allow_rewrite: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum Hook {
    /// The pre-push check (git runs it with the remote's name and URL, updates on stdin).
    PrePush(PrePushArgs),
    /// The pre-commit check of the named files and of the staged rendering.
    PreCommit(PreCommitArgs),
    /// Install the pre-push hook where git runs it (respects core.hooksPath).
    Install(InstallArgs),
    /// Remove the pre-push hook, if it is margo-gitops's.
    Uninstall,
}

#[derive(Debug, Args)]
pub struct PrePushArgs {
    /// The remote's name, as git passes it.
    pub remote: Option<String>,
    /// The remote's URL, as git passes it.
    pub url: Option<String>,
    /// Resolve the package in its registry instead of rendering placeholders.
    #[arg(long)]
    pub check_registry: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PreCommitArgs {
    /// Files to check (those holding ApplicationDeployment documents are validated).
    pub files: Vec<PathBuf>,
    /// Resolve the package in its registry instead of rendering placeholders.
    #[arg(long)]
    pub check_registry: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Replace a pre-push hook that is not margo-gitops's.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum DesiredState {
    /// Render the ApplicationDeployment documents from the template.
    Render(RenderArgs),
    /// Check ApplicationDeployment documents against the Margo model (both generations).
    Validate(ValidateArgs),
    /// Render, validate and publish a version; move `desired` when it is newer.
    Commit(CommitArgs),
    /// The `desired` version, its YAML, and every version, newest first.
    Show(DesiredShowArgs),
    /// What changed between two desired states (files, git:REV, or published versions).
    Diff(DiffArgs),
    /// The OCI history as `git log --oneline` shows it; `--verify` checks the chain.
    Log(LogArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The desired-state repository (default: desiredStateRepository of the config).
    #[arg(env = "MARGO_GITOPS_DESIRED_STATE_REPOSITORY")]
    pub repository: Option<String>,

    /// Check the previous-version chain and that each commit is in the branch's history.
    #[arg(long)]
    pub verify: bool,

    /// The branch the versions must come from (for --verify); HEAD by default.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// The template: a path, or `margo` / `poc` for the shipped ones.
    #[arg(long, env = "MARGO_GITOPS_TEMPLATE", help_heading = "Rendering")]
    pub template: Option<String>,

    /// A values file (parameter name → value), repeatable; later files win.
    #[arg(long = "values", value_name = "FILE", help_heading = "Rendering")]
    pub values: Vec<PathBuf>,

    /// Name of the deployment described by --values (default: the app id).
    #[arg(long, value_name = "NAME", help_heading = "Rendering")]
    pub name: Option<String>,

    /// The package the deployments run: `registry/name:tag` or `oci-layout:PATH:tag`.
    #[arg(
        long,
        value_name = "REF",
        env = "MARGO_GITOPS_PACKAGE",
        help_heading = "Rendering"
    )]
    pub package: Option<String>,

    /// Render the inputs as they are in this commit, not in the work tree.
    #[arg(long, value_name = "REV", help_heading = "Rendering")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub template: TemplateArgs,

    /// Write the documents here (one file, `---` between deployments) instead of stdout.
    #[arg(short, long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// ApplicationDeployment files (several documents per file allowed).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Print the problems as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The desired-state repository: `registry/name` or `oci-layout:PATH`.
    #[arg(
        long,
        value_name = "REPOSITORY",
        env = "MARGO_GITOPS_DESIRED_STATE_REPOSITORY"
    )]
    pub to: Option<String>,

    #[command(flatten)]
    pub template: TemplateArgs,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct DesiredShowArgs {
    /// The desired-state repository (default: desiredStateRepository of the config).
    #[arg(env = "MARGO_GITOPS_DESIRED_STATE_REPOSITORY")]
    pub repository: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old side: a file, `git:REV`, or a published version (`registry/name:tag`).
    pub from: String,
    /// The new side, likewise.
    pub to: String,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub template: TemplateArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Subcommand)]
pub enum Package {
    /// Build a Margo Compose Archive from a docker-compose app folder.
    Prepare(PrepareArgs),
    /// Push a prepared package to a registry or an OCI layout folder.
    Publish(PublishArgs),
    /// Show what a reference holds: manifest, layers, annotations, tags, signatures.
    Show(ShowArgs),
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
    /// which Fulcio and Rekor to use. Default: Sigstore's public-good instance.
    #[arg(
        long,
        value_name = "FILE",
        env = "SIGSTORE_TRUST_CONFIG",
        help_heading = "Signing"
    )]
    pub trust_config: Option<PathBuf>,
}

fn parse_secret(s: &str) -> margo_gitops::Result<Secret> {
    Ok(Secret::from(s))
}

fn parse_platform(s: &str) -> margo_gitops::Result<Platform> {
    s.parse()
}

fn parse_sign_mode(s: &str) -> margo_gitops::Result<SignMode> {
    s.parse()
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The package: `registry/name:tag`, `…@sha256:…` or `oci-layout:PATH:tag`.
    pub reference: String,
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

    /// Sigstore client trust config or trusted root (JSON) to verify keyless signatures with.
    #[arg(
        long,
        value_name = "FILE",
        env = "SIGSTORE_TRUST_CONFIG",
        help_heading = "Signer"
    )]
    pub trust_config: Option<PathBuf>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Compose component artifact of the current Margo spec (+ Application Package).
    Margo,
    /// The seed PoC's package artifact and media types.
    Poc,
}

#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to registries instead of HTTPS.
    #[arg(long, env = "MARGO_GITOPS_PLAIN_HTTP", help_heading = "Registry")]
    pub plain_http: bool,

    /// Trust this PEM certificate authority too (repeatable).
    #[arg(
        long = "ca-file",
        value_name = "PEM",
        env = "MARGO_GITOPS_CA_FILE",
        help_heading = "Registry"
    )]
    pub ca_files: Vec<PathBuf>,

    /// User name for the registry (with --password-stdin).
    #[arg(long, env = "MARGO_GITOPS_USERNAME", help_heading = "Registry")]
    pub username: Option<String>,

    /// Read the registry password or token from standard input.
    #[arg(long, requires = "username", help_heading = "Registry")]
    pub password_stdin: bool,
}

/// The SERVICE=PATH lines of a multi-line value (blank lines and `#` comments skipped).
pub fn parse_image_lines(text: &str) -> margo_gitops::Result<Vec<(String, PathBuf)>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_image_arg)
        .collect()
}

fn parse_image_arg(s: &str) -> margo_gitops::Result<(String, PathBuf)> {
    match s.split_once('=') {
        Some((service, path)) if !service.is_empty() && !path.is_empty() => {
            Ok((service.to_string(), PathBuf::from(path)))
        }
        _ => Err(margo_gitops::Error::Usage(format!(
            "`{s}` is not SERVICE=PATH"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn the_parser_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
