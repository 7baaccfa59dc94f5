//! The arguments of `device sync` and `device watch`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{RegistryArgs, SignerArgs};

#[derive(Debug, Subcommand)]
pub enum Device {
    /// One pass: apply the desired state the repository's `desired` tag holds to this
    /// device's Docker engine (verified, unpacked safely, loaded, brought up).
    Sync(DeviceArgs),
    /// A pass every interval until SIGTERM or Ctrl-C; a failed pass is tried again.
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between passes: `30s`, `5m`, `1h` or seconds.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// The desired-state repository: `registry/name` (or `oci-layout:PATH`).
    #[arg(long, value_name = "REPOSITORY", env = "MARGO_GITOPS_DEVICE_FROM")]
    pub from: String,

    /// Where the device keeps what it applied, each deployment's status and files, and
    /// (optionally) `policy.yaml`.
    #[arg(long, value_name = "DIR", env = "MARGO_GITOPS_STATE_DIR")]
    pub state_dir: PathBuf,

    /// The tag to follow instead of `desired`.
    #[arg(long)]
    pub tag: Option<String>,

    /// Only this deployment (its name or UUID; repeatable).
    #[arg(long = "deployment", value_name = "NAME|UUID")]
    pub deployments: Vec<String>,

    /// Apply a version whose manifestVersion is not newer than the applied one.
    #[arg(long)]
    pub allow_downgrade: bool,

    /// Print JSON instead of one line per deployment.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub signer: SignerArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// `30s`, `5m`, `2h`, `250ms` or plain seconds.
fn parse_duration(s: &str) -> margo_gitops::Result<Duration> {
    let bad = |why: String| margo_gitops::Error::Usage(why);
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| bad(format!("`{s}`: a number with s, m, h or ms")))?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(bad(format!("`{s}`: the unit is s, m, h or ms"))),
    };
    if d.is_zero() {
        return Err(bad("the interval must be more than 0".into()));
    }
    Ok(d)
}
