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
    /// A pass every interval (± 10%) until SIGTERM or Ctrl-C; a failed pass is tried
    /// again, later and later while the registry fails.
    Watch(WatchArgs),
    /// What the device runs, from its state folder alone (no registry, no engine).
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between passes: `30s`, `5m`, `1h` or seconds (each one ± 10%).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,

    /// Make the first pass at a random point within one interval, so that devices
    /// restarted together do not poll together.
    #[arg(long)]
    pub splay: bool,

    /// The longest wait between passes while the registry fails or answers 429.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub max_backoff: Duration,

    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The device's state folder.
    #[arg(long, value_name = "DIR", env = "MARGO_GITOPS_STATE_DIR")]
    pub state_dir: PathBuf,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
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

    /// How long to wait for another pass on the same state folder (default: as long as it
    /// takes); when it runs out, exit 3 and change nothing.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub lock_timeout: Option<Duration>,

    /// Refuse a desired state whose newest signature is older than this (`7d`, `36h`):
    /// a registry that keeps serving an old version cannot hold the device there.
    /// Overrides policy.yaml's `maxAge`; needs a keyless policy.
    #[arg(long, value_name = "AGE", value_parser = margo_gitops::device::policy::parse_age)]
    pub max_age: Option<Duration>,

    /// Print JSON instead of one line per deployment.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub signer: SignerArgs,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// A duration that may be zero (`0`: do not wait).
fn parse_wait(s: &str) -> margo_gitops::Result<Duration> {
    if matches!(s, "0" | "0s" | "0ms" | "0m" | "0h") {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// The longest duration an option takes: a week.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// `30s`, `5m`, `2h`, `250ms` or plain seconds: more than 0, at most a week.
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
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(bad(format!("`{s}`: the unit is s, m, h or ms"))),
    };
    if d.is_zero() {
        return Err(bad(format!("`{s}`: it must be more than 0")));
    }
    if d > LONGEST {
        return Err(bad(format!("`{s}`: at most a week (168h)")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_read_with_their_unit_and_bounded() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_wait("0").unwrap(), Duration::ZERO);
        for bad in ["0garbage", "", "5d", "-1s", "18446744073709551615h", "200h"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("0s")
            .unwrap_err()
            .to_string()
            .contains("more than 0"));
    }
}
