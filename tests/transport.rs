//! The registry transport under faults: a proxy of our own (`tests/support/fault_proxy.py`)
//! between margo-gitops and a real CNCF Distribution answers some requests with 503, 429
//! and `Retry-After`, resets connections (before and after the registry acted) and cuts
//! bodies short. Every command must end where it ends without faults, or fail cleanly;
//! permanent refusals must fail at once; concurrency must not change a byte.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::desired::git_commit;
use crate::util::{fixtures, run, sha256_hex, spawn_listening, Env, Registry, PASSWORD, USER};

/// Fault schedules per command, each with this share of requests failing.
const SCHEDULES: u64 = 20;
const RATE: f64 = 0.1;

struct FaultProxy {
    host: String,
    log: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FaultProxy {
    /// A proxy in front of `upstream`, with fault rules (`--always …`, `--once …`).
    fn start(upstream: &Registry, rules: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.log");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_proxy.py");
        let (child, port) = spawn_listening(
            Command::new("python3")
                .arg(script)
                .arg(port_of(upstream).to_string())
                .arg(&log)
                .args(rules),
        );
        FaultProxy {
            host: format!("127.0.0.1:{port}"),
            log,
            child,
            _dir: dir,
        }
    }

    /// Points the proxy at `upstream` with a new schedule.
    fn schedule(&self, upstream: &Registry, seed: u64, rate: f64) {
        run(Command::new("curl").args([
            "-sf",
            &format!(
                "http://{}/_proxy?upstream={}&seed={seed}&rate={rate}",
                self.host,
                port_of(upstream)
            ),
        ]));
        std::fs::write(&self.log, "").unwrap();
    }

    fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// `METHOD PATH OUTCOME` of every request since the last schedule.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_string())
            .collect()
    }

    fn faults(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| {
                let outcome = r.rsplit(' ').next().unwrap_or("");
                ["503", "429", "reset", "truncated"].contains(&outcome) || r.contains("reset-after")
            })
            .count()
    }
}

fn port_of(reg: &Registry) -> u16 {
    reg.host.rsplit(':').next().unwrap().parse().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every tag of `repos` in `reg` and the digest it names, read straight from the registry;
/// panics when a tag names content whose blobs or manifests are missing.
fn state(reg: &Registry, repos: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for repo in repos {
        for tag in reg.tags(repo) {
            let bytes = reg
                .try_get(&format!("{repo}/manifests/{tag}"))
                .unwrap_or_else(|| panic!("{repo}:{tag} is listed but cannot be read"));
            complete(reg, repo, &bytes);
            out.insert(
                format!("{repo}:{tag}"),
                format!("sha256:{}", sha256_hex(&bytes)),
            );
        }
    }
    out
}

/// Panics unless every blob and manifest `manifest` refers to is in the repository.
fn complete(reg: &Registry, repo: &str, manifest: &[u8]) {
    let m: serde_json::Value = serde_json::from_slice(manifest).unwrap();
    let mut blobs: Vec<&str> = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["digest"].as_str())
        .collect();
    blobs.extend(m["config"]["digest"].as_str());
    for b in blobs {
        let ok = Command::new("curl")
            .args(["-sfI", &format!("http://{}/v2/{repo}/blobs/{b}", reg.host)])
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "{repo} names blob {b}, which is missing");
    }
    for child in m["manifests"].as_array().into_iter().flatten() {
        let d = child["digest"].as_str().unwrap();
        let bytes = reg
            .try_get(&format!("{repo}/manifests/{d}"))
            .unwrap_or_else(|| panic!("{repo}'s index names {d}, which is missing"));
        complete(reg, repo, &bytes);
    }
}

/// Runs `command` through the proxy once without faults and then under every schedule,
/// each time into a new registry (`setup` prepares it, straight, before the command);
/// every run must succeed and leave the same tags on the same digests.
fn under_faults(
    proxy: &FaultProxy,
    repos: &[&str],
    setup: &dyn Fn(&Registry),
    command: &dyn Fn() -> Output,
) {
    let mut reference = None;
    let mut faults = 0;
    for seed in 0..=SCHEDULES {
        let reg = Registry::plain();
        setup(&reg);
        proxy.schedule(&reg, seed, if seed == 0 { 0.0 } else { RATE });
        let out = command();
        assert!(
            out.status.success(),
            "schedule {seed}: {}\n{:?}",
            stderr(&out),
            proxy.requests()
        );
        if seed > 0 {
            faults += proxy.faults();
        }
        let got = state(&reg, repos);
        assert!(!got.is_empty(), "schedule {seed} left nothing");
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_eq!(&got, r, "schedule {seed} ends elsewhere"),
        }
    }
    assert!(
        faults >= SCHEDULES as usize,
        "only {faults} faults were injected over {SCHEDULES} schedules"
    );
}

/// The poc app prepared against `pkg`, which holds its Redis image.
fn prepared(env: &Env, pkg: &Registry) {
    env.poc_app(pkg);
    env.prepare_poc(&fixtures().oci_archive);
}

#[test]
fn publishing_under_faults_ends_where_it_ends_without_them() {
    let (env, pkg) = (Env::new(), Registry::plain());
    prepared(&env, &pkg);
    let proxy = FaultProxy::start(&pkg, &[]);
    under_faults(
        &proxy,
        &["acme/poc-app", "acme/poc-app-app"],
        &|_| {},
        &|| {
            env.cli(&format!(
                "package publish --plain-http --to {}",
                proxy.repo("acme/poc-app")
            ))
            .output()
            .unwrap()
        },
    );
}

#[test]
fn signing_under_faults_ends_where_it_ends_without_them() {
    let (env, pkg) = (Env::new(), Registry::plain());
    prepared(&env, &pkg);
    env.cli("key generate keys/k").assert().success();
    let proxy = FaultProxy::start(&pkg, &[]);
    let publish = |reg: &Registry| {
        env.cli(&format!(
            "package publish --plain-http --to {}",
            reg.repo("acme/poc-app")
        ))
        .assert()
        .success();
    };
    under_faults(&proxy, &["acme/poc-app"], &publish, &|| {
        env.cli(&format!(
            "package sign --plain-http --sign key:keys/k.key {}:1.2.0",
            proxy.repo("acme/poc-app")
        ))
        .output()
        .unwrap()
    });
}

/// A git repository whose package lives in `pkg` and whose desired state goes through
/// the proxy, with `commits` commits that each change a value.
fn gitops_through(env: &Env, pkg: &Registry, proxy: &FaultProxy, commits: usize) {
    env.publish_poc(pkg, "");
    env.write(
        ".margo-gitops.yaml",
        &format!(
            "app: app\npackageRepository: {}\ndesiredStateRepository: {}\nplainHttp: true\ndeployments:\n  - name: site\n    values: [values.yaml]\n",
            pkg.repo("acme/poc-app"),
            proxy.repo("acme/desired")
        ),
    );
    env.write(".gitignore", "dist/\nkeys/\n");
    for i in 1..=commits {
        env.write("values.yaml", &format!("siteId: site-{i}\n"));
        git_commit(
            env,
            &format!("2024-03-{i:02}T10:00:00Z"),
            &format!("site {i}"),
        );
    }
}

#[test]
fn committing_the_desired_state_under_faults_ends_where_it_ends_without_them() {
    let (env, pkg) = (Env::new(), Registry::plain());
    let proxy = FaultProxy::start(&pkg, &[]);
    gitops_through(&env, &pkg, &proxy, 1);
    env.cli("key generate keys/k").assert().success();
    // Signed, as a device will require: the version, its signature and its referrers tag
    // end the same under every schedule.
    under_faults(&proxy, &["acme/desired"], &|_| {}, &|| {
        env.cli("desired-state commit --sign key:keys/k.key")
            .output()
            .unwrap()
    });
}

#[test]
fn mirroring_under_faults_ends_where_it_ends_without_them() {
    let (env, pkg) = (Env::new(), Registry::plain());
    let proxy = FaultProxy::start(&pkg, &[]);
    gitops_through(&env, &pkg, &proxy, 6);
    env.cli("key generate keys/k").assert().success();
    // Every version signed before its tag names it, and `desired` moved last.
    under_faults(&proxy, &["acme/desired"], &|_| {}, &|| {
        env.cli("mirror --sign-all --sign key:keys/k.key")
            .output()
            .unwrap()
    });
}

#[test]
fn permanent_refusals_fail_at_once_and_tag_nothing() {
    let (env, pkg) = (Env::new(), Registry::plain());
    prepared(&env, &pkg);
    for (status, says) in [("404", "NAME_UNKNOWN"), ("403", "access denied")] {
        let target = Registry::plain();
        let proxy = FaultProxy::start(&target, &[&format!("--always=PUT:/manifests/:{status}")]);
        let started = Instant::now();
        env.cli(&format!(
            "package publish --plain-http --to {}",
            proxy.repo("acme/poc-app")
        ))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(says));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{status}: no waiting"
        );
        let puts = proxy
            .requests()
            .iter()
            .filter(|r| r.starts_with("PUT") && r.contains("/manifests/"))
            .count();
        assert_eq!(puts, 1, "{status} is not retried: {:?}", proxy.requests());
        assert!(
            target.tags("acme/poc-app").is_empty(),
            "{status}: nothing tagged"
        );
    }
    // A wrong password: one answer to learn the scheme, one refusal, no retry.
    let tls = Registry::tls_basic();
    let started = Instant::now();
    env.cli(&format!(
        "package publish --username {USER} --password-stdin --to {}",
        tls.repo("acme/poc-app")
    ))
    .args(tls.flags())
    .write_stdin(format!("not-{PASSWORD}"))
    .assert()
    .code(2)
    .stderr(predicates::str::contains("access denied"));
    assert!(started.elapsed() < Duration::from_secs(5));
    let asked = tls.requests().len();
    assert!(asked <= 2, "{:?}", tls.requests());
    assert!(tls.tags("acme/poc-app").is_empty());
}

#[test]
fn retry_after_is_waited_for_and_a_short_blob_is_fetched_again() {
    let (env, pkg) = (Env::new(), Registry::plain());
    prepared(&env, &pkg);
    let proxy = FaultProxy::start(&pkg, &["--once=HEAD:/manifests/1.2.0:429:2"]);
    let started = Instant::now();
    let out = env
        .cli(&format!(
            "package publish --plain-http --to {}",
            proxy.repo("acme/waited")
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 2 honoured"
    );
    let line = stderr(&out);
    assert!(
        line.contains("retry 1 of 5: HEAD manifest 1.2.0: answered 429 Too Many Requests; trying again in 2.0s"),
        "{line}"
    );

    // Redis's layer comes short once: fetched again, the same package in the end.
    let first = std::fs::read(env.work().join("dist/poc-app-1.2.0.tar.gz")).unwrap();
    let proxy = FaultProxy::start(&pkg, &["--truncate-once=GET:/blobs/sha256"]);
    env.write(
        "app/compose.yaml",
        &std::fs::read_to_string(env.work().join("app/compose.yaml"))
            .unwrap()
            .replace(&pkg.host, &proxy.host),
    );
    let out = env
        .cmd()
        .env("MARGO_GITOPS_CACHE_DIR", env.path("fresh-cache"))
        .args([
            "package",
            "prepare",
            "app",
            "--plain-http",
            "-o",
            "again",
            "--image",
        ])
        .arg(format!("web={}", fixtures().oci_archive.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        proxy.requests().iter().any(|r| r.ends_with("truncated")),
        "{:?}",
        proxy.requests()
    );
    assert!(stderr(&out).contains("came short"), "{}", stderr(&out));
    let again = std::fs::read(env.work().join("again/poc-app-1.2.0.tar.gz")).unwrap();
    // The compose file names the proxy now; it pins the same images.
    let pins = |bytes: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.tar.gz");
        std::fs::write(&f, bytes).unwrap();
        let out = crate::util::untar(&f);
        let compose = std::fs::read_to_string(out.path().join("poc-app/compose.yaml")).unwrap();
        let mut digests: Vec<String> = compose
            .split('@')
            .skip(1)
            .map(|s| s[..71].to_string())
            .collect();
        digests.sort();
        digests
    };
    assert_eq!(pins(&first), pins(&again));
    assert_eq!(pins(&first).len(), 2);
}

#[test]
fn concurrency_changes_no_byte() {
    let (env, pkg) = (Env::new(), Registry::plain());
    env.poc_app(&pkg);
    // Redis from the registry (layers pulled at once), web from its archive.
    let mut archives = Vec::new();
    for (i, n) in [1, 8, 1].iter().enumerate() {
        env.cmd()
            .env("MARGO_GITOPS_CACHE_DIR", env.path(&format!("cache-{i}")))
            .args([
                "package",
                "prepare",
                "app",
                "--plain-http",
                "-o",
                &format!("dist-{i}"),
            ])
            .args(["--concurrency", &n.to_string(), "--image"])
            .arg(format!("web={}", fixtures().docker_archive.display()))
            .assert()
            .success();
        archives.push(
            std::fs::read(env.work().join(format!("dist-{i}/poc-app-1.2.0.tar.gz"))).unwrap(),
        );
    }
    assert!(
        archives.windows(2).all(|w| w[0] == w[1]),
        "the archive is byte for byte the same"
    );
    let mut states = Vec::new();
    for n in [1, 8] {
        let reg = Registry::plain();
        env.cli(&format!(
            "package publish dist-0 --plain-http --concurrency {n} --to {}",
            reg.repo("acme/poc-app")
        ))
        .assert()
        .success();
        states.push(state(&reg, &["acme/poc-app", "acme/poc-app-app"]));
    }
    assert_eq!(states[0], states[1]);
}
