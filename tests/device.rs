//! The device end: `device sync` and `device watch` against a real registry and a Docker
//! engine of the test's own (Debian's dockerd 20.10, with Docker Compose v2 as the CLI
//! plugin and with docker-compose 1.29), running an image made of Debian's static
//! busybox, so nothing is pulled from outside. The agent's life (kills, two passes at
//! once, polling, status, the service) is `agent.rs`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::desired::git_commit;
use crate::util::docker::{ComposeVersion, DockerEngine};
use crate::util::{run, sh, Env, Registry};

/// A runnable image (static busybox, `sleep 3600`, which as PID 1 ignores SIGTERM: the
/// service stops after a grace period of 1 s) pushed as `demo/busybox:1`; the app `demo`
/// 1.0.0 using it; a config with deployments `site-a` and `site-b`; keys `k` (the
/// publisher's) and `other`; the package published signed by `k` and the first desired
/// state committed (2024-01-01).
pub(crate) fn device_repo(env: &Env, reg: &Registry) {
    sh(&format!(
        "cd {d}
        umoci init --layout img
        umoci new --image img:base
        umoci insert --image img:base \"$(command -v busybox)\" /bin/busybox
        umoci config --image img:base --tag app --os linux --architecture amd64 --config.entrypoint /bin/busybox --config.cmd sleep --config.cmd 3600
        skopeo copy -q --dest-tls-verify=false oci:img:app docker://{host}/demo/busybox:1",
        d = env.path("").display(),
        host = reg.host
    ));
    env.write(
        "app/compose.yaml",
        &format!(
            "name: demo\nservices:\n  web:\n    image: {}/demo/busybox:1\n    stop_grace_period: 1s\n    environment:\n      FIXED: \"yes\"\n",
            reg.host
        ),
    );
    env.write("app/margo.yaml", &crate::util::margo_yaml("demo", "1.0.0"));
    env.write(
        ".margo-gitops.yaml",
        &format!(
            "app: app\npackageRepository: {}\ndesiredStateRepository: {}\nplainHttp: true\ndeployments:\n  - name: site-a\n    values: [deployments/a.yaml]\n  - name: site-b\n    values: [deployments/b.yaml]\n",
            reg.repo("acme/demo"),
            reg.repo("acme/demo-desired")
        ),
    );
    env.write("deployments/a.yaml", "greeting: hello a\n");
    env.write("deployments/b.yaml", "greeting: hello b\n");
    env.write(".gitignore", "dist/\nkeys/\n");
    env.cli("key generate keys/k").assert().success();
    env.cli("key generate keys/other").assert().success();
    publish(env, "1.0.0", "key:keys/k.key");
    git_commit(env, "2024-01-01T00:00:00Z", "first");
    env.cli("desired-state commit --sign key:keys/k.key")
        .assert()
        .success();
}

/// Prepares and publishes the app at `version`, signed as `sign` says.
fn publish(env: &Env, version: &str, sign: &str) {
    let margo = std::fs::read_to_string(env.work().join("app/margo.yaml")).unwrap();
    let at = margo.find("  version: ").unwrap();
    let end = at + margo[at..].find('\n').unwrap();
    env.write(
        "app/margo.yaml",
        &format!("{}  version: {version}{}", &margo[..at], &margo[end..]),
    );
    let _ = std::fs::remove_dir_all(env.work().join("dist"));
    env.cli("package prepare app -o dist --plain-http")
        .assert()
        .success();
    env.cli(&format!("package publish dist --plain-http --sign {sign}"))
        .assert()
        .success();
}

/// A commit dated `date` and its desired state published, signed by the publisher's key;
/// `package` overrides the package.
pub(crate) fn commit(env: &Env, date: &str, package: Option<&str>) {
    git_commit(env, date, date);
    let mut line = "desired-state commit --sign key:keys/k.key".to_string();
    if let Some(p) = package {
        line.push_str(&format!(" --package {p}"));
    }
    env.cli(&line).assert().success();
}

/// `c` as a job with `id-token: write` runs it, against the Sigstore stand-in.
fn in_a_job(c: &mut assert_cmd::Command, sig: &crate::util::SigstoreStandIn) {
    c.env("SIGSTORE_TRUST_CONFIG", sig.trust_config());
    for (k, v) in sig.actions_env() {
        c.env(k, v);
    }
}

/// A commit dated `date` and its desired state published, signed keylessly in a job.
fn commit_keyless(env: &Env, sig: &crate::util::SigstoreStandIn, date: &str) {
    git_commit(env, date, date);
    let mut c = env.cli("desired-state commit --sign keyless");
    in_a_job(&mut c, sig);
    c.assert().success();
}

pub(crate) struct Device<'a> {
    pub env: &'a Env,
    pub engine: &'a DockerEngine,
    pub from: String,
    /// The DOCKER_CONFIG that decides which compose runs (v1 when none).
    pub docker_config: Option<std::path::PathBuf>,
}

impl<'a> Device<'a> {
    /// The device that follows `reg`'s `acme/demo-desired` on `engine`.
    pub fn new(env: &'a Env, engine: &'a DockerEngine, reg: &Registry) -> Self {
        Device {
            env,
            engine,
            from: reg.repo("acme/demo-desired"),
            docker_config: None,
        }
    }

    /// The same device running projects with `version` of compose.
    pub fn with_compose(mut self, version: crate::util::docker::ComposeVersion) -> Self {
        self.docker_config = Some(crate::util::docker::docker_config(
            self.env.dir.path(),
            version,
        ));
        self
    }

    /// `margo-gitops ARGS` as this device runs it: its engine, its compose.
    pub fn command(&self, args: &str) -> std::process::Command {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_margo-gitops"));
        c.current_dir(self.env.work())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.env.path("home"))
            .env("MARGO_GITOPS_CACHE_DIR", self.env.path("cache"))
            .env("DOCKER_HOST", &self.engine.host)
            .args(args.split_whitespace());
        if let Some(config) = &self.docker_config {
            c.env("DOCKER_CONFIG", config);
        }
        c
    }

    /// `device sync` with `extra` arguments, to its end.
    pub fn sync(&self, extra: &str) -> std::process::Output {
        self.command(&format!(
            "device sync --plain-http --from {} --state-dir state {extra}",
            self.from
        ))
        .output()
        .unwrap()
    }

    /// `sync` with the publisher's key, which must succeed: its stdout.
    pub fn sync_ok(&self) -> String {
        let out = self.sync("--key keys/k.pub");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The id of the running container of `project`'s `web` service.
    pub fn container(&self, project: &str) -> Option<String> {
        let out = self.engine.docker(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=com.docker.compose.project={project}"),
        ]);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!id.is_empty()).then_some(id)
    }

    pub fn environment(&self, id: &str) -> Vec<String> {
        let out = self
            .engine
            .docker(&["inspect", "--format", "{{json .Config.Env}}", id]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The version of the compose that made the container `id` (its label).
    pub fn made_by(&self, id: &str) -> String {
        let out = self.engine.docker(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"com.docker.compose.version\"}}",
            id,
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn status(&self, name: &str) -> serde_json::Value {
        let applied: serde_json::Value = serde_json::from_slice(
            &std::fs::read(self.env.work().join("state/applied.json")).unwrap(),
        )
        .unwrap();
        let id = applied["deployments"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, d)| d["name"] == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("{name} is not applied"));
        self.status_of(&id)
    }

    fn status_of(&self, id: &str) -> serde_json::Value {
        let path = self.env.work().join(format!("state/status/{id}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
}

pub(crate) fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A package like the published 1.0.0 but with `archive` as its compose archive, tagged
/// `tag` and signed by the publisher's key: signed, and still refused for what it holds.
fn crafted_package(env: &Env, reg: &Registry, tag: &str, archive: &[u8]) -> String {
    let mut m: serde_json::Value =
        serde_json::from_slice(&reg.get("acme/demo/manifests/1.0.0")).unwrap();
    let layer = m["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["mediaType"] == "application/vnd.org.margo.component.compose.tar+gzip")
        .unwrap();
    layer["digest"] = reg.push_blob("acme/demo", archive).into();
    layer["size"] = archive.len().into();
    reg.put_manifest(
        "acme/demo",
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        &serde_json::to_vec(&m).unwrap(),
    );
    let reference = reg.repo(&format!("acme/demo:{tag}"));
    env.cli(&format!(
        "package sign --plain-http --sign key:keys/k.key {reference}"
    ))
    .assert()
    .success();
    reference
}

/// A gzip tar made by Python's tarfile: the app folder, plus what `kind` adds.
fn evil_archive(env: &Env, kind: &str) -> Vec<u8> {
    let out = env.path(&format!("{kind}.tar.gz"));
    run(Command::new("python3").arg("-c").arg(format!(
        r#"
import io, tarfile
def add(t, name, data=b"", kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name); ti.type = kind; ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
with tarfile.open("{out}", "w:gz") as t:
    add(t, "demo/compose.yaml", b"services:\n  web:\n    image: busybox\n")
    kind = "{kind}"
    if kind == "dotdot": add(t, "../x", b"x")
    if kind == "absolute": add(t, "/etc/x", b"x")
    if kind == "symlink": add(t, "demo/out", kind=tarfile.SYMTYPE, link="../../../../etc")
    if kind == "many":
        for i in range(100000): add(t, "demo/f/%d" % i)
"#,
        out = out.display()
    )));
    std::fs::read(out).unwrap()
}

#[test]
fn a_device_follows_desired_verifies_and_runs_what_it_names_with_compose_v2() {
    follows_desired(ComposeVersion::V2);
}

#[test]
fn a_device_follows_desired_verifies_and_runs_what_it_names_with_compose_v1() {
    follows_desired(ComposeVersion::V1);
}

fn follows_desired(compose: ComposeVersion) {
    let reg = Registry::plain();
    let env = Env::new();
    device_repo(&env, &reg);
    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg).with_compose(compose);

    // No trust policy: nothing is installed.
    let out = device.sync("");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no trust policy"), "{}", text(&out));

    // A deployment that exists nowhere is a usage error.
    let out = device.sync("--key keys/k.pub --deployment site-z");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--deployment site-z: no deployment"),
        "{}",
        text(&out)
    );

    // First pass: both deployments run, with their parameters in their environment.
    let stdout = device.sync_ok();
    assert!(stdout.contains("manifestVersion 1"), "{stdout}");
    for site in ["site-a", "site-b"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with("installed") && l.contains(site)),
            "{stdout}"
        );
    }
    let a = device.container("site-a-demo").expect("site-a runs");
    let b = device.container("site-b-demo").expect("site-b runs");
    let major = if compose == ComposeVersion::V1 {
        "1."
    } else {
        "2."
    };
    assert!(
        device.made_by(&a).starts_with(major),
        "{}",
        device.made_by(&a)
    );
    let env_a = device.environment(&a);
    assert!(env_a.contains(&"GREETING=hello a".to_string()), "{env_a:?}");
    assert!(env_a.contains(&"FIXED=yes".to_string()), "{env_a:?}");
    let status = device.status("site-a");
    assert_eq!(status["kind"], "DeploymentStatusManifest");
    assert_eq!(status["status"]["state"], "installed");
    assert_eq!(status["components"][0]["name"], "demo");
    assert_eq!(status["components"][0]["state"], "installed");

    // Nothing new: nothing touched.
    let stdout = device.sync_ok();
    assert!(stdout.contains("up to date"), "{stdout}");
    assert_eq!(device.container("site-a-demo").as_ref(), Some(&a));

    // A value changes: only its deployment is recreated, `$` stays literal.
    env.write("deployments/a.yaml", "greeting: bonjour $HOME\n");
    commit(&env, "2024-01-02T00:00:00Z", None);
    let out = device.sync("--key keys/k.pub --json");
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actions: Vec<(String, String)> = report["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"].as_str().unwrap().into(),
                d["action"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("site-a".into(), "updated".into()),
            ("site-b".into(), "unchanged".into())
        ]
    );
    let a2 = device.container("site-a-demo").expect("site-a runs");
    assert_ne!(a2, a, "site-a recreated");
    assert_eq!(
        device.container("site-b-demo"),
        Some(b.clone()),
        "site-b untouched"
    );
    assert!(device
        .environment(&a2)
        .contains(&"GREETING=bonjour $HOME".to_string()));

    // A deployment leaves the desired state: it is brought down and its files removed.
    let config = std::fs::read_to_string(env.work().join(".margo-gitops.yaml")).unwrap();
    env.write(
        ".margo-gitops.yaml",
        &config.replace("  - name: site-b\n    values: [deployments/b.yaml]\n", ""),
    );
    commit(&env, "2024-01-03T00:00:00Z", None);
    let b_id = device.status("site-b")["deploymentId"]
        .as_str()
        .unwrap()
        .to_string();
    let stdout = device.sync_ok();
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("removed") && l.contains("site-b")),
        "{stdout}"
    );
    assert_eq!(device.container("site-b-demo"), None);
    assert_eq!(device.status_of(&b_id)["status"]["state"], "removed");
    assert!(!env.work().join("state/deployments").join(&b_id).exists());

    // From here on every pass is refused, and site-a keeps running as it is.
    let refused = |extra: &str, code: &str, why: &str| {
        let out = device.sync(extra);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(why), "`{why}` in: {}", text(&out));
        assert_eq!(
            device.container("site-a-demo").as_ref(),
            Some(&a2),
            "site-a keeps running"
        );
        if !code.is_empty() {
            let s = device.status("site-a");
            assert_eq!(s["status"]["state"], "failed", "{s}");
            assert_eq!(s["status"]["error"]["code"], code, "{s}");
            assert_eq!(s["status"]["error"]["source"], "site-a", "{s}");
            assert!(
                s["status"]["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(why),
                "{s}"
            );
        }
    };
    // An older version of the desired state: a rollback.
    refused(
        "--key keys/k.pub --tag 20240101000000",
        "",
        "not newer than the applied 3",
    );
    // A package signed by another key.
    env.write("deployments/a.yaml", "greeting: version 1.0.1\n");
    publish(&env, "1.0.1", "key:keys/other.key");
    commit(&env, "2024-01-04T00:00:00Z", None);
    refused("--key keys/k.pub", "E_VERIFY", "has no valid signature");
    // The tag taken back to the version that runs: read again (not taken as done on the
    // failed pass's word), and site-a's status says installed again.
    let out = device.sync("--key keys/k.pub --tag 20240103000000");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(device.status("site-a")["status"]["state"], "installed");
    assert_eq!(device.container("site-a-demo").as_ref(), Some(&a2));
    // A package whose archive the registry serves changed (an archive of its own: the
    // same app gives the same bytes, and 1.0.0 must stay intact).
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &format!("{compose}      RELEASE: \"1.0.2\"\n"),
    );
    publish(&env, "1.0.2", "key:keys/k.key");
    commit(&env, "2024-01-05T00:00:00Z", None);
    let m: serde_json::Value =
        serde_json::from_slice(&reg.get("acme/demo/manifests/1.0.2")).unwrap();
    let layer = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["mediaType"] == "application/vnd.org.margo.component.compose.tar+gzip")
        .unwrap();
    let blob = reg.blob_file(layer["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    refused("--key keys/k.pub --retries 0", "E_FETCH", "digest mismatch");
    // Signed packages whose archives try to leave the folder, or hold too many entries.
    for (i, (kind, why)) in [
        ("dotdot", "entry `../x`"),
        ("absolute", "entry `/etc/x`"),
        (
            "symlink",
            "entry `demo/out`: a symbolic link to `../../../../etc`",
        ),
        ("many", "more than 20000 entries"),
    ]
    .into_iter()
    .enumerate()
    {
        let package = crafted_package(&env, &reg, &format!("9.0.{i}"), &evil_archive(&env, kind));
        commit(&env, &format!("2024-01-1{i}T00:00:00Z"), Some(&package));
        refused("--key keys/k.pub", "E_UNPACK", why);
        assert!(!std::path::Path::new("/etc/x").exists() && !env.path("x").exists());
    }

    // A good version again: the device catches up.
    env.write("deployments/a.yaml", "greeting: back\n");
    commit(
        &env,
        "2024-01-20T00:00:00Z",
        Some(&reg.repo("acme/demo:1.0.0")),
    );
    let stdout = device.sync_ok();
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("updated") && l.contains("site-a")),
        "{stdout}"
    );
    let a3 = device.container("site-a-demo").unwrap();
    assert!(device
        .environment(&a3)
        .contains(&"GREETING=back".to_string()));
    assert_eq!(device.status("site-a")["status"]["state"], "installed");

    // `watch` picks up the next version by itself and stops cleanly on SIGTERM.
    let mut watch = Command::new(assert_cmd::cargo::cargo_bin("margo-gitops"))
        .current_dir(env.work())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.path("home"))
        .args([
            "device",
            "watch",
            "--interval",
            "1s",
            "--plain-http",
            "--key",
            "keys/k.pub",
        ])
        .args(["--from", &device.from, "--state-dir", "state"])
        .env("DOCKER_HOST", &engine.host)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.write("deployments/a.yaml", "greeting: watched\n");
    commit(
        &env,
        "2024-01-21T00:00:00Z",
        Some(&reg.repo("acme/demo:1.0.0")),
    );
    let start = Instant::now();
    loop {
        let now = device.container("site-a-demo");
        if now.is_some_and(|id| {
            device
                .environment(&id)
                .contains(&"GREETING=watched".to_string())
        }) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "watch did not apply the new version"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    run(Command::new("kill").args(["-TERM", &watch.id().to_string()]));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = watch.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "watch did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn the_pocs_form_names_the_archive_blob_and_runs_too() {
    let reg = Registry::plain();
    let env = Env::new();
    device_repo(&env, &reg);
    // The seed's template: the package as the compose archive's blob URL, eight parameters.
    env.write(
        "deployments/a.yaml",
        "adminName: Ada\nadminPrincipalName: ada@example.org\nidpClientId: edge\nidpName: IdP\nidpProvider: oidc\nidpUrl: https://idp.example.org\npollFrequency: 30s\nsiteId: site-0001\n",
    );
    let config = std::fs::read_to_string(env.work().join(".margo-gitops.yaml")).unwrap();
    env.write(
        ".margo-gitops.yaml",
        &config
            .replace("plainHttp: true\n", "plainHttp: true\ntemplate: poc\n")
            .replace("  - name: site-b\n    values: [deployments/b.yaml]\n", ""),
    );
    commit(&env, "2024-01-02T00:00:00Z", None);
    let rendered = env.cli("desired-state render").output().unwrap();
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.contains(&format!(
            "packageLocation: \"http://{}/v2/acme/demo/blobs/sha256:",
            reg.host
        )),
        "{rendered}"
    );

    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg);
    let stdout = device.sync_ok();
    // The package that holds the blob, by digest, is what was verified and runs.
    let digest = crate::util::sha256_hex(&reg.get("acme/demo/manifests/1.0.0"));
    assert!(
        stdout.contains("installed  site-a")
            && stdout.contains(&format!("acme/demo@sha256:{digest}")),
        "{stdout}"
    );
    let id = device.container("site-a-demo").expect("site-a runs");
    let environment = device.environment(&id);
    for var in [
        "SITE_ID=site-0001",
        "POLL_FREQUENCY=30s",
        "IDP_URL=https://idp.example.org",
    ] {
        assert!(
            environment.contains(&var.to_string()),
            "{var} in {environment:?}"
        );
    }
    // An older version is taken with --allow-downgrade, and still only when signed as the
    // policy says.
    let out = device.sync("--key keys/other.pub --allow-downgrade --tag 20240101000000");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("has no valid signature"),
        "{}",
        text(&out)
    );
    assert_eq!(device.container("site-a-demo"), Some(id));
}

#[test]
fn a_device_trusts_the_keyless_identity_its_policy_file_names() {
    use crate::util::{SigstoreStandIn, ACTIONS_ISSUER, WORKFLOW_IDENTITY};
    let reg = Registry::plain();
    let sig = SigstoreStandIn::start();
    let env = Env::new();
    device_repo(&env, &reg);
    // Version 1.1.0 signed keylessly, as the Action signs (the token through the Actions
    // path of the Sigstore stand-in).
    let margo = std::fs::read_to_string(env.work().join("app/margo.yaml")).unwrap();
    env.write(
        "app/margo.yaml",
        &margo.replace("version: 1.0.0", "version: 1.1.0"),
    );
    let _ = std::fs::remove_dir_all(env.work().join("dist"));
    env.cli("package prepare app -o dist --plain-http")
        .assert()
        .success();
    let mut publish = env.cli("package publish dist --plain-http --sign keyless");
    publish.arg("--trust-config").arg(sig.trust_config());
    for (k, v) in sig.actions_env() {
        publish.env(k, v);
    }
    publish.assert().success();
    // Its desired state signed keylessly in the same job.
    let commit_keyless = |date: &str| commit_keyless(&env, &sig, date);
    commit_keyless("2024-01-02T00:00:00Z");

    // The policy in the state folder: the workflow's identity, its issuer, the trust config;
    // it holds for the desired state too unless a `desiredState:` section says otherwise.
    let policy = |identity: &str, desired: &str| {
        env.write(
            "state/policy.yaml",
            &format!(
                "certificateIdentity: {identity}\ncertificateOidcIssuer: {ACTIONS_ISSUER}\ntrustConfig: {}\n{desired}",
                sig.trust_config().display()
            ),
        );
    };
    policy(WORKFLOW_IDENTITY, "");
    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg);
    let out = device.sync("");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("signed by {WORKFLOW_IDENTITY}")),
        "the device says who signed the desired state: {}",
        text(&out)
    );
    let a = device.container("site-a-demo").expect("site-a runs");

    // Packages from another workflow's identity, the desired state from this one: the next
    // version is read, its package refused, site-a keeps running.
    let other = "https://github.com/acme/other/.github/workflows/publish.yml@refs/heads/main";
    let desired_section = format!(
        "desiredState:\n  certificateIdentity: {WORKFLOW_IDENTITY}\n  certificateOidcIssuer: {ACTIONS_ISSUER}\n  trustConfig: {}\n",
        sig.trust_config().display()
    );
    policy(other, &desired_section);
    env.write("deployments/a.yaml", "greeting: elsewhere\n");
    commit_keyless("2024-01-03T00:00:00Z");
    let out = device.sync("");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "signed by `{WORKFLOW_IDENTITY}`, not `https://github.com/acme/other/"
        )),
        "{}",
        text(&out)
    );
    assert_eq!(device.container("site-a-demo"), Some(a.clone()));
    assert_eq!(
        device.status("site-a")["status"]["error"]["code"],
        "E_VERIFY"
    );

    // Another identity for both: the desired state itself is refused before anything is
    // read, and the status manifests keep what they said.
    policy(other, "");
    let before = std::fs::read_dir(env.work().join("state/status"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    let out = device.sync("");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("refusing the desired state")
            && text(&out).contains(&format!("not `{other}`")),
        "{}",
        text(&out)
    );
    let after = std::fs::read_dir(env.work().join("state/status"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>();
    assert_eq!(before, after, "no status manifest was rewritten");
    assert_eq!(device.container("site-a-demo"), Some(a));

    // A policy file with a field no one reads is an error at its line.
    env.write(
        "state/policy.yaml",
        "key: keys/k.pub\ncertificateIdentty: x\n",
    );
    let out = device.sync("");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("policy.yaml:2"), "{}", text(&out));
}

#[test]
fn a_device_obeys_only_a_desired_state_signed_as_its_policy_says() {
    let reg = Registry::plain();
    let env = Env::new();
    device_repo(&env, &reg);
    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg);
    let out = device.sync_ok();
    assert!(out.contains("signed by key "), "{out}");
    let a = device.container("site-a-demo").expect("site-a runs");
    let files = |dir: &str| -> Vec<Vec<u8>> {
        let mut paths: Vec<_> = std::fs::read_dir(env.work().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
    };
    let status = files("state/status");
    let applied = std::fs::read(env.work().join("state/applied.json")).unwrap();
    let unchanged = |what: &str| {
        assert_eq!(device.container("site-a-demo").as_ref(), Some(&a), "{what}");
        assert_eq!(files("state/status"), status, "{what}: status manifests");
        assert_eq!(
            std::fs::read(env.work().join("state/applied.json")).unwrap(),
            applied,
            "{what}: applied.json"
        );
    };

    // Unsigned: refused with the version and who was expected; nothing changes.
    env.write("deployments/a.yaml", "greeting: unsigned\n");
    git_commit(&env, "2024-02-01T00:00:00Z", "unsigned");
    env.cli("desired-state commit --sign none")
        .assert()
        .success();
    let desired = reg.repo("acme/demo-desired:desired");
    let out = device.sync("--key keys/k.pub");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&format!("refusing the desired state {desired}"))
            && t.contains("is not signed")
            && t.contains("wants it signed by the key keys/k.pub"),
        "{t}"
    );
    unchanged("an unsigned version");

    // Signed by another key: refused too.
    env.cli("desired-state commit --sign key:keys/other.key")
        .assert()
        .success();
    let out = device.sync("--key keys/k.pub");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("has no valid signature"),
        "{}",
        text(&out)
    );
    unchanged("a version signed by another key");

    // `desired-state verify` says the same, with its exit codes.
    let verify = |key: &str| {
        env.cli(&format!(
            "desired-state verify --plain-http --key {key} {desired}"
        ))
        .output()
        .unwrap()
    };
    assert_eq!(verify("keys/k.pub").status.code(), Some(1));
    assert_eq!(verify("keys/other.pub").status.code(), Some(0));

    // The explicit opt-out applies it, warned.
    env.write(
        "state/policy.yaml",
        "key: ../keys/k.pub\ndesiredState: unsigned\n",
    );
    let out = device.sync("");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning")
            && String::from_utf8_lossy(&out.stderr).contains("desiredState: unsigned"),
        "{}",
        text(&out)
    );
    let now = device.container("site-a-demo").expect("site-a runs");
    assert!(device
        .environment(&now)
        .contains(&"GREETING=unsigned".to_string()));

    // A `desiredState:` section of its own: the desired state by `other`, packages by `k`.
    env.write(
        "state/policy.yaml",
        "key: ../keys/k.pub\ndesiredState:\n  key: ../keys/other.pub\n",
    );
    env.write("deployments/a.yaml", "greeting: by other\n");
    git_commit(&env, "2024-02-02T00:00:00Z", "other");
    env.cli("desired-state commit --sign key:keys/other.key")
        .assert()
        .success();
    let out = device.sync("");
    assert!(out.status.success(), "{}", text(&out));
    let now = device.container("site-a-demo").expect("site-a runs");
    assert!(device
        .environment(&now)
        .contains(&"GREETING=by other".to_string()));
}

#[test]
fn a_device_with_max_age_refuses_a_stale_desired_state_until_the_schedule_run_signs_it_again() {
    use crate::util::{SigstoreStandIn, ACTIONS_ISSUER, WORKFLOW_IDENTITY};
    let reg = Registry::plain();
    let sig = SigstoreStandIn::start();
    let env = Env::new();
    device_repo(&env, &reg);
    // Packages by the publisher's key; the desired state keylessly by the workflow, and
    // at most a week old.
    env.write(
        "state/policy.yaml",
        &format!(
            "key: ../keys/k.pub\nmaxAge: 7d\ndesiredState:\n  certificateIdentity: {WORKFLOW_IDENTITY}\n  certificateOidcIssuer: {ACTIONS_ISSUER}\n  trustConfig: {}\n",
            sig.trust_config().display()
        ),
    );
    let keyless = |c: &mut assert_cmd::Command| in_a_job(c, &sig);
    let commit_keyless = |date: &str| commit_keyless(&env, &sig, date);
    env.write("deployments/a.yaml", "greeting: fresh\n");
    commit_keyless("2024-03-01T00:00:00Z");
    let engine = DockerEngine::start();
    let device = Device::new(&env, &engine, &reg);
    let out = device.sync("");
    assert!(out.status.success(), "{}", text(&out));
    let a = device.container("site-a-demo").expect("site-a runs");

    // The next version signed ten days ago (the stand-in's clock set back): refused, the
    // reason in `device status`, nothing changed.
    env.write("deployments/a.yaml", "greeting: stale\n");
    sig.set_clock(-10 * 86_400);
    commit_keyless("2024-03-02T00:00:00Z");
    sig.set_clock(0);
    let out = device.sync("");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("longer ago than this device's maxAge 7d 0h"),
        "{}",
        text(&out)
    );
    assert_eq!(device.container("site-a-demo"), Some(a.clone()));
    let status = device
        .command("device status --state-dir state")
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert!(text(&status).contains("REFUSED"), "{}", text(&status));

    // The Action's schedule event signs what `desired` holds again, and nothing else.
    let tags = reg.tags("acme/demo-desired");
    let event = env.path("schedule.json");
    std::fs::write(&event, r#"{"schedule": "17 4 * * 1"}"#).unwrap();
    let schedule = || {
        let mut ci = env.cli("ci");
        keyless(&mut ci);
        ci.env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", "schedule")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_SHA", crate::desired::head(&env))
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_REPOSITORY", "margo-gitops/poc-app")
            .env("GITHUB_STEP_SUMMARY", env.path("summary.md"));
        ci.output().unwrap()
    };
    let resigned = schedule();
    assert!(resigned.status.success(), "{}", text(&resigned));
    assert!(
        text(&resigned).contains("signed again"),
        "{}",
        text(&resigned)
    );
    let mut new_tags = reg.tags("acme/demo-desired");
    new_tags.retain(|t| !t.starts_with("sha256-"));
    let mut old_tags = tags.clone();
    old_tags.retain(|t| !t.starts_with("sha256-"));
    assert_eq!(new_tags, old_tags, "no version published, no tag moved");

    // Fresh again: applied, and the refusal is gone from the status.
    let out = device.sync("");
    assert!(out.status.success(), "{}", text(&out));
    let now = device.container("site-a-demo").expect("site-a runs");
    assert!(device
        .environment(&now)
        .contains(&"GREETING=stale".to_string()));
    let status = device
        .command("device status --state-dir state")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status));

    // A `desired` moved by someone else to an older version is not signed again.
    let first = reg.tags("acme/demo-desired")[0].clone();
    reg.skopeo_copy(
        &format!("acme/demo-desired:{first}"),
        "acme/demo-desired:desired",
    );
    let refused = schedule();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("does not hold what the branch's head"),
        "{}",
        text(&refused)
    );
}
