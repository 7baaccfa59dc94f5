//! The command line: every command, flag and environment variable, and nothing else.
//! The package commands' arguments are in [`package`]; the rest, and what several
//! commands share (registry access, rendering, signing's parsers), here.

mod device;
mod package;

pub use device::*;
pub use package::*;

use std::path::PathBuf;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use margo_gitops::oci::credentials::Secret;
use margo_gitops::package::image::Platform;
use margo_gitops::signing::mode::SignMode;

/// Parses the command line and the environment. A variable that is set but empty counts as
/// unset: a GitHub Actions step passes every input of the action as a variable, and an input
/// nobody gave is an empty one.
pub fn parse() -> Result<Cli, clap::Error> {
    let mut cmd = empty_env_is_unset(Cli::command());
    let matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

fn empty_env_is_unset(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| {
        let empty = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.is_empty());
        if empty {
            arg.env(clap::builder::Resettable::Reset)
        } else {
            arg
        }
    })
    .mut_subcommands(empty_env_is_unset)
}

/// The Sigstore trust config: the flag, else MARGO_GITOPS_TRUST_CONFIG (the action's
/// `trust-config` input), else SIGSTORE_TRUST_CONFIG (which a self-hosted runner may set for
/// every job; the action's empty input must not hide it).
pub fn trust_config(flag: Option<PathBuf>) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os("SIGSTORE_TRUST_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

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
    /// On the device: follow `desired`, verify, and run the app on this Docker engine.
    #[command(subcommand)]
    Device(Device),
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// A local image archive for a service that is built (repeatable; the action passes
    /// its `images` input, one SERVICE=PATH per line, as MARGO_GITOPS_IMAGES).
    #[arg(long = "image", value_name = "SERVICE=PATH", value_parser = parse_image_arg)]
    pub images: Vec<(String, PathBuf)>,

    /// Build the services that have `build:` and no image archive with the Docker engine
    /// of the runner (the action's `build` input).
    #[arg(long, env = "MARGO_GITOPS_BUILD")]
    pub build: bool,

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

    /// Render every version and check that the registry holds exactly that (one request
    /// per existing version); by default the tag list says which versions exist.
    #[arg(long)]
    pub verify_existing: bool,

    /// Sign every version this run publishes, not only the one `desired` moves to.
    #[arg(long, help_heading = "Signing")]
    pub sign_all: bool,

    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub signing: SigningArgs,

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
    /// Check a version's signature (exit 0: verified, 1: not).
    Verify(DesiredVerifyArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// The desired-state repository (default: desiredStateRepository of the config).
    #[arg(env = "MARGO_GITOPS_DESIRED_STATE_REPOSITORY")]
    pub repository: Option<String>,

    /// Check the previous-version chain, that each commit is in the branch's history and,
    /// with a trust policy (--key, or --certificate-identity and its issuer), each
    /// version's signature.
    #[arg(long)]
    pub verify: bool,

    /// The branch the versions must come from (for --verify); HEAD by default.
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub signer: SignerArgs,

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
    pub signing: SigningArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct DesiredVerifyArgs {
    /// The version: `registry/name:tag` (`desired` or a version), `…@sha256:…` or
    /// `oci-layout:PATH:tag`.
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

pub(crate) fn parse_secret(s: &str) -> margo_gitops::Result<Secret> {
    Ok(Secret::from(s))
}

pub(crate) fn parse_platform(s: &str) -> margo_gitops::Result<Platform> {
    s.parse()
}

pub(crate) fn parse_sign_mode(s: &str) -> margo_gitops::Result<SignMode> {
    s.parse()
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

    /// Retry a failed registry request this many times (connection errors, timeouts, 408,
    /// 429, 5xx, wrong bytes), waiting longer each time and as `Retry-After` asks.
    #[arg(long, value_name = "N", default_value_t = 5, env = "MARGO_GITOPS_RETRIES",
          value_parser = clap::value_parser!(u32).range(0..=20), help_heading = "Registry")]
    pub retries: u32,

    /// Transfers in flight at once (image layers, blobs to push).
    #[arg(long, value_name = "N", default_value_t = 4, env = "MARGO_GITOPS_CONCURRENCY",
          value_parser = clap::value_parser!(u16).range(1..=64), help_heading = "Registry")]
    pub concurrency: u16,
}

/// The SERVICE=PATH lines of a multi-line value (blank lines and `#` comments skipped).
pub fn parse_image_lines(text: &str) -> margo_gitops::Result<Vec<(String, PathBuf)>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_image_arg)
        .collect()
}

pub(crate) fn parse_image_arg(s: &str) -> margo_gitops::Result<(String, PathBuf)> {
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
