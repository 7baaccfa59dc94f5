//! The command line: every command, flag and environment variable, and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
}

#[derive(Debug, Subcommand)]
pub enum Package {
    /// Build a Margo Compose Archive from a docker-compose app folder.
    Prepare(PrepareArgs),
    /// Push a prepared package to a registry or an OCI layout folder.
    Publish(PublishArgs),
    /// Show what a reference holds: manifest, layers, annotations, tags, signatures.
    Show(ShowArgs),
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
    #[arg(
        long,
        default_value = "linux/amd64",
        env = "MARGO_GITOPS_PLATFORM",
        help_heading = "Images"
    )]
    pub platform: String,

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

    #[command(flatten)]
    pub registry: RegistryArgs,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// A prepared package (.tar.gz) or the folder `package prepare` wrote.
    #[arg(default_value = "dist", value_name = "PACKAGE_OR_OUT_DIR")]
    pub input: PathBuf,

    /// The repository to publish to: `registry/name` or `oci-layout:PATH`.
    #[arg(
        long,
        value_name = "REPOSITORY",
        env = "MARGO_GITOPS_PACKAGE_REPOSITORY"
    )]
    pub to: String,

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

fn parse_image_arg(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((service, path)) if !service.is_empty() && !path.is_empty() => {
            Ok((service.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("`{s}` is not SERVICE=PATH")),
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
