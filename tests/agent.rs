//! The device agent in the field, on a Docker engine of the test's own with Docker Compose
//! v2 and with docker-compose 1.29: a pass killed at a random moment is repaired by the
//! next; two passes on one state folder take turns; a pass with nothing new is one
//! registry request; `watch` backs off while the registry fails and comes back; `device
//! status` reads the state folder alone; the systemd unit is one systemd accepts.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::device::{commit, device_repo, text, Device};
use crate::util::docker::{ComposeVersion, DockerEngine};
use crate::util::{Env, Registry};

/// A small seeded generator (xorshift64*), so that a failing round can be replayed.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A duration in [lo, hi) milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// The containers, running or not, of a compose project.
fn containers(engine: &DockerEngine, project: &str) -> Vec<String> {
    let out = engine.docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.docker.compose.project={project}"),
    ]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Publishes a new desired version in which site-a greets with `greeting`.
fn new_version(env: &Env, day: usize, greeting: &str) {
    env.write("deployments/a.yaml", &format!("greeting: {greeting}\n"));
    commit(env, &format!("2024-03-{day:02}T00:00:00Z"), None);
}

/// site-a runs `greeting`, in one container, and its status says installed.
fn runs(device: &Device, greeting: &str) -> Result<(), String> {
    let project = "site-a-demo";
    let all = containers(device.engine, project);
    if all.len() != 1 {
        return Err(format!("{} containers in {project}: {all:?}", all.len()));
    }
    let id = device
        .container(project)
        .ok_or_else(|| format!("{project} does not run"))?;
    let env = device.environment(&id);
    if !env.contains(&format!("GREETING={greeting}")) {
        return Err(format!("{project} runs {env:?}, not {greeting}"));
    }
    let state = device.status("site-a")["status"]["state"].clone();
    if state != "installed" {
        return Err(format!("site-a is {state}"));
    }
    Ok(())
}

/// 20 rounds: a new version, a pass killed with SIGKILL at a seeded moment between 0.05
/// and 2 s, then one pass, which must exit 0 with the new version running, one container
/// per service, status installed.
fn killed_passes_are_repaired(compose: ComposeVersion, seed: u64) {
    let reg = Registry::plain();
    let env = Env::new();
    device_repo(&env, &reg);
    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg).with_compose(compose);
    device.sync_ok();
    let mut rng = Seeded(seed);
    let (mut converged, mut waited, mut failures) = (0, 0, Vec::new());
    for round in 1..=20 {
        let greeting = format!("round {round}");
        new_version(&env, round, &greeting);
        let kill_at = rng.millis(50, 2000);
        let mut killed = spawn(&device, "sync", "");
        std::thread::sleep(kill_at);
        let _ = killed.kill();
        let _ = killed.wait();
        let out = device.sync("--key keys/k.pub");
        if String::from_utf8_lossy(&out.stderr).contains("still running: waiting") {
            waited += 1;
        }
        match (out.status.success(), runs(&device, &greeting)) {
            (true, Ok(())) => converged += 1,
            (ok, state) => failures.push(format!(
                "round {round} (killed at {kill_at:?}): exit ok {ok}, {state:?}: {}",
                text(&out)
            )),
        }
    }
    eprintln!(
        "{compose:?}: {converged}/20 converged after a pass killed at a random moment; {waited} found the killed pass's compose still running and waited for it"
    );
    assert!(failures.is_empty(), "{compose:?}: {failures:#?}");
    // Kills land before, during and after compose: some must have left one running, or the
    // rounds did not test the repair at all.
    assert!(waited > 0, "{compose:?}: no round left a compose running");
    let id = device.container("site-a-demo").unwrap();
    let major = if compose == ComposeVersion::V1 {
        "1."
    } else {
        "2."
    };
    assert!(
        device.made_by(&id).starts_with(major),
        "{}",
        device.made_by(&id)
    );
}

#[test]
fn a_pass_killed_at_any_moment_is_repaired_by_the_next_with_compose_v2() {
    killed_passes_are_repaired(ComposeVersion::V2, 0x5eed_0002);
}

#[test]
fn a_pass_killed_at_any_moment_is_repaired_by_the_next_with_compose_v1() {
    killed_passes_are_repaired(ComposeVersion::V1, 0x5eed_0001);
}

/// Spawns `device VERB` (`sync`, `watch`) as this device runs it, its output kept.
fn spawn(device: &Device, verb: &str, extra: &str) -> Child {
    device
        .command(&format!(
            "device {verb} --plain-http --from {} --state-dir state --key keys/k.pub {extra}",
            device.from
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// 10 rounds of two passes at once on one state folder: both exit 0, and each leaves the
/// newest version running when it exits.
fn two_passes_take_turns(compose: ComposeVersion) {
    let reg = Registry::plain();
    let env = Env::new();
    device_repo(&env, &reg);
    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg).with_compose(compose);
    device.sync_ok();

    // Nothing new: one request, the followed tag's digest.
    let before = reg.requests().len();
    let stdout = device.sync_ok();
    assert!(stdout.contains("up to date"), "{stdout}");
    let requests = reg.requests()[before..].to_vec();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].0, "HEAD", "{requests:?}");
    assert!(
        requests[0].1.ends_with("/manifests/desired"),
        "{requests:?}"
    );

    let (mut good, mut waited, mut failures) = (0, 0, Vec::new());
    for round in 1..=10 {
        let greeting = format!("together {round}");
        new_version(&env, round, &greeting);
        let mut passes = vec![spawn(&device, "sync", ""), spawn(&device, "sync", "")];
        let mut outcomes = Vec::new();
        while !passes.is_empty() {
            let done = passes
                .iter_mut()
                .position(|p| p.try_wait().unwrap().is_some());
            let Some(i) = done else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let p = passes.remove(i);
            // At the moment a pass is over, what runs is what it says.
            let state = runs(&device, &greeting);
            let out = p.wait_with_output().unwrap();
            if String::from_utf8_lossy(&out.stderr).contains("waiting for it to finish") {
                waited += 1;
            }
            outcomes.push((out, state));
        }
        let ok = outcomes
            .iter()
            .all(|(out, state)| out.status.success() && state.is_ok());
        if ok {
            good += 1;
        } else {
            failures.push(format!(
                "round {round}: {:?}",
                outcomes
                    .iter()
                    .map(|(o, s)| (o.status.code(), s.clone(), text(o)))
                    .collect::<Vec<_>>()
            ));
        }
    }
    eprintln!(
        "{compose:?}: {good}/10 rounds of two passes at once ended right; {waited} pass(es) waited for the other's lock"
    );
    assert!(failures.is_empty(), "{compose:?}: {failures:#?}");
    assert!(waited >= 5, "the passes did overlap: {waited}");

    // A pass that may not wait gives up with exit 3 and does nothing.
    let lock = std::fs::File::open(env.work().join("state/lock")).unwrap();
    lock.lock().unwrap();
    let out = device.sync("--key keys/k.pub --lock-timeout 1s");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("--lock-timeout"), "{}", text(&out));
    drop(lock);
}

#[test]
fn two_passes_at_once_take_turns_with_compose_v2() {
    two_passes_take_turns(ComposeVersion::V2);
}

#[test]
fn two_passes_at_once_take_turns_with_compose_v1() {
    two_passes_take_turns(ComposeVersion::V1);
}

/// The fault proxy between the device and the registry, every request answered 503 until
/// it is told otherwise; its log carries each request's time.
struct Proxy {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn down(reg: &Registry, env: &Env) -> Proxy {
        let log = env.path("proxy.log");
        let upstream = reg.host.rsplit(':').next().unwrap().to_string();
        let (child, port) = crate::util::spawn_listening(
            Command::new("python3")
                .arg(
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("tests/support/fault_proxy.py"),
                )
                .arg(&upstream)
                .arg(&log)
                .args(["--rate", "1", "--kinds", "503", "--timestamps"]),
        );
        Proxy { child, port, log }
    }

    fn up(&self) {
        crate::util::run(Command::new("curl").args([
            "-sf",
            &format!("http://127.0.0.1:{}/_proxy?rate=0", self.port),
        ]));
    }

    /// (seconds since the proxy started, outcome) of each request for the followed tag.
    fn tag_requests(&self) -> Vec<(f64, String)> {
        self.requests()
            .into_iter()
            .filter(|r| r.2.ends_with("/manifests/desired"))
            .map(|(t, _, _, outcome)| (t, outcome))
            .collect()
    }

    /// (seconds since the proxy started, method, path, outcome) of each request.
    fn requests(&self) -> Vec<(f64, String, String, String)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.last()?.trim_start_matches('@').parse().ok()?,
                    f.get(1)?.to_string(),
                    f.get(2)?.to_string(),
                    f.get(3)?.to_string(),
                ))
            })
            .collect()
    }

    /// The proxy's clock now: the time it logs a request of ours (to `/v2/`) at.
    fn now(&self) -> f64 {
        let url = format!("http://127.0.0.1:{}/v2/", self.port);
        crate::util::run(Command::new("curl").args(["-s", "-o", "/dev/null", &url]));
        self.requests()
            .iter()
            .rev()
            .find(|r| r.2 == "/v2/")
            .expect("our request is logged")
            .0
    }
}

#[test]
fn watch_backs_off_while_the_registry_fails_and_applies_the_next_version_once_it_is_back() {
    let reg = Registry::plain();
    let env = Env::new();
    device_repo(&env, &reg);
    let engine = DockerEngine::start();
    let proxy = Proxy::down(&reg, &env);
    let mut device = Device::new(&env, &engine, &reg).with_compose(ComposeVersion::V2);
    device.from = format!("127.0.0.1:{}/acme/demo-desired", proxy.port);
    let mut watch = spawn(
        &device,
        "watch",
        "--retries 0 --interval 1s --max-backoff 4s",
    );
    // Down: the waits between passes double to the cap (1 s interval: 2, 4, 4 … s).
    let started = Instant::now();
    while proxy.tag_requests().len() < 6 && started.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let times: Vec<f64> = proxy.tag_requests().iter().map(|r| r.0).collect();
    assert!(times.len() >= 6, "{times:?}");
    let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        (1.7..2.6).contains(&gaps[0]),
        "the first wait doubles: {gaps:?}"
    );
    for g in &gaps[1..5] {
        assert!((3.5..4.8).contains(g), "capped at 4 s (± 10%): {gaps:?}");
    }

    // Back up: the next pass installs, and a new version is applied within an interval
    // (and a pass) of being published.
    proxy.up();
    let applied = |what: &str| {
        std::fs::read_to_string(env.work().join("state/applied.json"))
            .is_ok_and(|t| t.contains(what))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !applied("\"manifestVersion\": 1") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        applied("\"manifestVersion\": 1"),
        "applied once the registry is back"
    );
    let before = proxy.requests().len();
    new_version(&env, 20, "after the outage");
    let published = proxy.now();
    // Back at its interval, it reads the new version within one (1 s + 10%) of its
    // publication (a pass that came while it was being published may read it sooner).
    let read = loop {
        let read = proxy.requests()[before..]
            .iter()
            .find(|r| r.1 == "GET" && r.2.ends_with("/manifests/desired"))
            .map(|r| r.0);
        if let Some(t) = read {
            break t;
        }
        assert!(
            proxy.now() - published < 5.0,
            "the new version was not read"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let polled = read - published;
    assert!(polled < 1.1, "{polled:.3} s: {:?}", proxy.tag_requests());
    let published = Instant::now();
    while !applied("\"manifestVersion\": 2") && published.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = published.elapsed();
    assert!(
        applied("\"manifestVersion\": 2"),
        "the next version was not applied"
    );
    assert!(runs(&device, "after the outage").is_ok());

    // SIGTERM: it stops between passes, with exit 0.
    crate::util::run(Command::new("kill").args(["-TERM", &watch.id().to_string()]));
    let status = watch.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    std::io::Read::read_to_string(watch.stderr.as_mut().unwrap(), &mut err).unwrap();
    let gaps: Vec<String> = gaps.iter().map(|g| format!("{g:.2}")).collect();
    eprintln!(
        "watch with the registry down: waits of {} s; the next version read {:.2} s and applied {:.2} s after it was published",
        gaps.join(", "),
        polled,
        took.as_secs_f64()
    );
}

/// A state folder as a device leaves it: site-a installed, site-b failed on its first
/// install, site-c removed.
fn state_folder(env: &Env) -> std::path::PathBuf {
    let state = env.work().join("state");
    std::fs::create_dir_all(state.join("status")).unwrap();
    let (a, b, c) = (
        "6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10",
        "7a2d4d63-0e4b-4b9f-8b66-1f7b2a4d3c21",
        "8b3e5e74-1f5c-4ca0-9c77-2a8c3b5e4d32",
    );
    std::fs::write(
        state.join("applied.json"),
        serde_json::to_vec_pretty(&serde_json::json!({
            "desired": {"source": "r.example/acme/demo-desired:desired", "digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        "manifestVersion": 7, "appliedAt": "2026-12-04T10:00:00Z"},
            "following": "r.example/acme/demo-desired:desired",
            "deployments": {a: {"name": "site-a", "document": "sha256:aa", "components": {"demo": {"package": "r.example/acme/demo@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", "project": "site-a-demo"}}}},
        }))
        .unwrap(),
    )
    .unwrap();
    let status = |id: &str, state: &str, error: Option<(&str, &str, &str)>| {
        let err = error.map(|(code, source, message)| serde_json::json!({"code": code, "source": source, "message": message}));
        let mut component = serde_json::json!({"name": "demo", "state": state});
        let mut top = serde_json::json!({"state": state});
        if let Some(e) = &err {
            component["error"] = e.clone();
            top["error"] = e.clone();
        }
        serde_json::json!({"apiVersion": "deployment.margo.org/v1alpha1", "kind": "DeploymentStatusManifest",
                           "deploymentId": id, "status": top, "components": [component]})
    };
    for (id, s) in [
        (a, status(a, "installed", None)),
        (
            b,
            status(
                b,
                "failed",
                Some(("E_VERIFY", "site-b", "signed by no key of the policy")),
            ),
        ),
        (c, status(c, "removed", None)),
    ] {
        std::fs::write(
            state.join(format!("status/{id}.json")),
            serde_json::to_vec_pretty(&s).unwrap(),
        )
        .unwrap();
    }
    state
}

#[test]
fn device_status_shows_what_runs_from_the_state_folder_alone() {
    let env = Env::new();
    let state = state_folder(&env);
    let out = env.cli("device status --state-dir state").output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a deployment is failed: {}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for part in [
        "following     r.example/acme/demo-desired:desired",
        "applied       manifestVersion 7 (sha256:0123456789ab) at 2026-12-04T10:00:00Z",
        "DEPLOYMENT  ID        STATE      SINCE",
        "E_VERIFY site-b: signed by no key of the policy",
    ] {
        assert!(stdout.contains(part), "`{part}` in:\n{stdout}");
    }
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        row("site-a").contains("installed")
            && row("site-a").contains("demo demo@sha256:fedcba987654"),
        "{stdout}"
    );
    assert!(row("site-b").contains("FAILED"), "{stdout}");
    assert!(
        row("-").contains("removed"),
        "site-c, whose name left with it: {stdout}"
    );

    let out = env
        .cli("device status --state-dir state --json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<&str> = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["installed", "failed", "removed"]);
    assert_eq!(v["applied"]["manifestVersion"], 7);
    assert_eq!(
        v["deployments"][0]["components"][0]["project"],
        "site-a-demo"
    );
    assert!(v["deployments"][0]["since"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    // Nothing failed: exit 0. No state folder: exit 2, saying what it is.
    let failed = std::fs::read_dir(state.join("status"))
        .unwrap()
        .flatten()
        .find(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .contains("failed")
        })
        .unwrap()
        .path();
    std::fs::remove_file(failed).unwrap();
    env.cli("device status --state-dir state")
        .assert()
        .success();
    let out = env
        .cli("device status --state-dir nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no state folder"), "{}", text(&out));
    assert!(
        !env.work().join("nowhere").exists(),
        "status creates nothing"
    );
}

#[test]
fn the_systemd_unit_is_one_systemd_accepts() {
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("packaging/systemd/margo-gitops-device.service"),
    )
    .unwrap();
    for line in [
        "ExecStart=/usr/local/bin/margo-gitops device watch",
        "Restart=always",
        "StateDirectory=margo-gitops",
        "After=network-online.target docker.service",
        "TimeoutStopSec=",
    ] {
        assert!(unit.contains(line), "{line}");
    }
    let dir = tempfile::tempdir().unwrap();
    // systemd-analyze wants the program to exist: the binary under test stands in for
    // the installed one.
    let verify = |text: &str| {
        let path = dir.path().join("margo-gitops-device.service");
        std::fs::write(
            &path,
            text.replace(
                "/usr/local/bin/margo-gitops ",
                &format!("{} ", env!("CARGO_BIN_EXE_margo-gitops")),
            ),
        )
        .unwrap();
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze (scripts/test installs systemd)")
    };
    let out = verify(&unit);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        text(&out)
    );
    // It does check: a wrong setting is named.
    let out = verify(&unit.replace("Restart=always", "Restart=sometimes"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("restart specifier"),
        "{}",
        text(&out)
    );
}
