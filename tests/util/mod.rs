//! Test helpers: real registries on 127.0.0.1, image fixtures made by umoci and skopeo,
//! and a `margo-gitops` command run in an isolated home.
//!
//! Every registry is CNCF Distribution (`docker-registry`), started per test in its own
//! folder on a free port and killed when the test ends. Only the token service of the
//! bearer-token registry is ours (`tests/support/token_issuer.py`): it stands in for the
//! one GitHub runs for GHCR.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod actions;
pub mod docker;
pub mod github;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cr3t-Pa55word-never-printed";

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn sh(script: &str) -> Output {
    run(Command::new("sh").arg("-ec").arg(script))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, child: &mut Child) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("a test server on port {port} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("a test server did not open port {port}");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Plain HTTP, no auth.
    Plain,
    /// HTTPS with a CA made here, and htpasswd basic auth.
    TlsBasic,
    /// Plain HTTP with bearer-token auth, as GHCR does it (anonymous pull of `public/…`).
    Token,
    /// A stand-in for GHCR itself: HTTPS with a certificate for `ghcr.io` (and 127.0.0.1)
    /// from a CA made here, bearer-token auth that takes a job's GITHUB_TOKEN with the
    /// `packages` permission the runner stand-in gave it (`tokens.json`), and a CONNECT
    /// proxy that sends `ghcr.io:443` here (see [`Registry::network_env`]).
    Ghcr,
}

pub struct Registry {
    pub kind: Kind,
    pub host: String,
    pub dir: TempDir,
    child: Child,
    issuer: Option<Child>,
    /// The CONNECT proxy of [`Kind::Ghcr`] and its port.
    proxy: Option<(Child, u16)>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for c in [self.issuer.as_mut(), self.proxy.as_mut().map(|p| &mut p.0)]
            .into_iter()
            .flatten()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A CA (`ca.pem`, and `certs/ca.crt` for skopeo) and a server certificate for `san`
/// (`server.pem`, `server.key`) in `d`; the registry's `tls:` config.
fn tls_files(d: &Path, san: &str) -> String {
    self_signed(d, "ca.key", "ca.pem", "/CN=margo-gitops test CA");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(
        d.join("ext.cnf"),
        format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    // skopeo reads a CA from a folder as ca.crt.
    std::fs::create_dir(d.join("certs")).unwrap();
    std::fs::copy(d.join("ca.pem"), d.join("certs/ca.crt")).unwrap();
    format!(
        "  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n",
        d = d.display()
    )
}

/// The token issuer (`tests/support/token_issuer.py`) for a registry in `d`, with `extra`
/// arguments; the child and the registry's `auth:` config.
fn token_issuer(d: &Path, extra: &[String]) -> (Child, String) {
    self_signed(
        d,
        "token.key",
        "token.pem",
        "/CN=margo-gitops test token issuer",
    );
    let tport = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/token_issuer.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args([
            &tport.to_string(),
            &format!("{}/token.key", d.display()),
            &format!("{}/token.pem", d.display()),
            USER,
            PASSWORD,
            "test-registry",
            "test-issuer",
        ])
        .args(extra)
        .spawn()
        .expect("python3 runs the token issuer");
    wait_for_port(tport, &mut child);
    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{tport}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}/token.pem\n",
        d.display()
    );
    (child, auth)
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stderr(Stdio::null()));
}

/// A P-256 key and a self-signed certificate for it, valid two days.
fn self_signed(dir: &Path, key: &str, cert: &str, subject: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            "-subj",
            subject,
        ],
    );
}

impl Registry {
    pub fn plain() -> Self {
        Self::start(Kind::Plain)
    }

    pub fn tls_basic() -> Self {
        Self::start(Kind::TlsBasic)
    }

    pub fn token() -> Self {
        Self::start(Kind::Token)
    }

    /// The GHCR stand-in ([`Kind::Ghcr`]).
    pub fn ghcr() -> Self {
        Self::start(Kind::Ghcr)
    }

    fn start(kind: Kind) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let mut extra = String::new();
        let mut issuer = None;
        match kind {
            Kind::Plain => {}
            Kind::TlsBasic => {
                extra = tls_files(d, "IP:127.0.0.1");
                let htpasswd = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
                std::fs::write(d.join("htpasswd"), htpasswd.stdout).unwrap();
                extra.push_str(&format!(
                    "auth:\n  htpasswd:\n    realm: margo-test\n    path: {d}/htpasswd\n",
                    d = d.display()
                ));
            }
            Kind::Token => {
                let (child, auth) = token_issuer(d, &[]);
                issuer = Some(child);
                extra = auth;
            }
            Kind::Ghcr => {
                extra = tls_files(d, "DNS:ghcr.io,IP:127.0.0.1");
                std::fs::write(d.join("tokens.json"), "{}").unwrap();
                let tokens = d.join("tokens.json").display().to_string();
                let (child, auth) = token_issuer(d, &["--tokens".into(), tokens]);
                issuer = Some(child);
                extra.push_str(&auth);
            }
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: margo-gitops-tests\n{extra}",
            root = d.display()
        );
        std::fs::write(d.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(d.join("access.log")).unwrap();
        let errlog = std::fs::File::create(d.join("registry.log")).unwrap();
        let mut child = Command::new("docker-registry")
            .arg("serve")
            .arg(d.join("config.yml"))
            .stdout(log)
            .stderr(errlog)
            .spawn()
            .expect("docker-registry (Debian package docker-registry) is installed");
        wait_for_port(port, &mut child);
        let proxy = (kind == Kind::Ghcr).then(|| {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/connect_proxy.py");
            spawn_listening(
                Command::new("python3")
                    .arg(script)
                    .arg(dir.path().join("proxy.log"))
                    .arg("--map")
                    .arg(format!("ghcr.io:443=127.0.0.1:{port}")),
            )
        });
        Registry {
            kind,
            host: format!("127.0.0.1:{port}"),
            dir,
            child,
            issuer,
            proxy,
        }
    }

    /// For [`Kind::Ghcr`]: the environment under which `ghcr.io` is this registry, as a
    /// runner behind a proxy sees it (HTTPS_PROXY, NO_PROXY for 127.0.0.1, and the CA in
    /// MARGO_GITOPS_CA_FILE).
    pub fn network_env(&self) -> Vec<(String, String)> {
        let (_, port) = self.proxy.as_ref().expect("a GHCR stand-in");
        vec![
            ("HTTPS_PROXY".into(), format!("http://127.0.0.1:{port}")),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
            (
                "MARGO_GITOPS_CA_FILE".into(),
                self.dir.path().join("ca.pem").display().to_string(),
            ),
        ]
    }

    /// For [`Kind::Ghcr`]: the file the runner stand-in writes its job tokens to.
    pub fn tokens_file(&self) -> PathBuf {
        self.dir.path().join("tokens.json")
    }

    /// For [`Kind::Ghcr`]: what the CONNECT proxy was asked, one line per request.
    pub fn proxy_log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("proxy.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `host/name`.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.host)
    }

    /// The flags margo-gitops needs for this registry (credentials go through stdin).
    pub fn flags(&self) -> Vec<String> {
        match self.kind {
            Kind::Plain | Kind::Token => vec!["--plain-http".into()],
            Kind::TlsBasic | Kind::Ghcr => vec![
                "--ca-file".into(),
                self.dir.path().join("ca.pem").display().to_string(),
            ],
        }
    }

    /// skopeo flags for this registry: `copy` takes them with a `src-` or `dest-` prefix,
    /// `inspect` and `list-tags` without (`""`).
    pub fn skopeo(&self, prefix: &str) -> Vec<String> {
        let p = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}-")
        };
        let mut f = match self.kind {
            Kind::Plain | Kind::Token => vec![format!("--{p}tls-verify=false")],
            Kind::TlsBasic | Kind::Ghcr => vec![format!(
                "--{p}cert-dir={}",
                self.dir.path().join("certs").display()
            )],
        };
        if self.kind != Kind::Plain {
            f.push(format!("--{p}creds={USER}:{PASSWORD}"));
        }
        f
    }

    /// The access log: one (method, path) per request the registry served.
    pub fn requests(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let q = l.split('"').nth(1)?;
                let mut parts = q.split(' ');
                Some((parts.next()?.to_string(), parts.next()?.to_string()))
            })
            .collect()
    }

    /// Requests that write: uploads, manifests, tags.
    pub fn writes(&self) -> usize {
        self.requests()
            .iter()
            .filter(|(m, _)| matches!(m.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .count()
    }

    /// Where the registry keeps a blob's bytes (filesystem driver).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Copies an image into this registry with skopeo.
    pub fn push_with_skopeo(&self, from: &str, name: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "-q", "--all"])
            .args(self.skopeo("dest"))
            .arg(from)
            .arg(format!("docker://{}/{name}", self.host));
        run(&mut cmd);
    }

    /// The tags of a repository, as skopeo lists them.
    pub fn tags(&self, name: &str) -> Vec<String> {
        let mut cmd = Command::new("skopeo");
        cmd.arg("list-tags")
            .args(self.skopeo(""))
            .arg(format!("docker://{}/{name}", self.host));
        let out = cmd.output().unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("name unknown")
                    || err.contains("not known")
                    || err.contains("404 (Not Found)"),
                "skopeo list-tags failed: {err}"
            );
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut tags: Vec<String> = v["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        tags.sort();
        tags
    }
}

/// Test images, made once per test run with umoci in an OCI layout.
pub struct Fixtures {
    _dir: TempDir,
    /// OCI layout with tags `amd64`, `arm64`, `multi` (an index of both), `web`.
    pub layout: PathBuf,
    /// `docker save`-format archive of `web`, tagged poc-app-web:1.0 (skopeo docker-archive).
    pub docker_archive: PathBuf,
    /// The same, gzipped.
    pub docker_archive_gz: PathBuf,
    /// OCI archive of `web`, as `docker buildx build --output type=oci` writes.
    pub oci_archive: PathBuf,
}

impl Fixtures {
    pub fn oci(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.layout.display())
    }

    /// The digest of the manifest (or index) the layout tags `tag`.
    pub fn digest(&self, tag: &str) -> String {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.layout.join("index.json")).unwrap())
                .unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .and_then(|e| e["digest"].as_str())
            .unwrap()
            .to_string()
    }
}

pub fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let l = d.join("L");
        std::fs::write(d.join("redis.txt"), "redis data\n").unwrap();
        std::fs::write(d.join("web.txt"), "web app\n").unwrap();
        sh(&format!(
            "cd {d}
            umoci init --layout L
            umoci new --image L:base
            umoci config --image L:base --tag amd64 --os linux --architecture amd64 --config.cmd redis-server
            umoci insert --image L:amd64 redis.txt /data/redis.txt
            umoci config --image L:base --tag arm64 --os linux --architecture arm64 --config.cmd redis-server
            umoci insert --image L:arm64 redis.txt /data/arm64.txt
            umoci config --image L:base --tag web --os linux --architecture amd64 --config.cmd 'python app.py'
            umoci insert --image L:web web.txt /app/web.txt
            skopeo copy -q oci:L:web docker-archive:web-docker.tar:poc-app-web:1.0
            gzip -k web-docker.tar
            skopeo copy -q oci:L:web oci-archive:web-oci.tar",
            d = d.display()
        ));
        add_index(&l, "multi", &["amd64", "arm64"]);
        Fixtures {
            layout: l,
            docker_archive: d.join("web-docker.tar"),
            docker_archive_gz: d.join("web-docker.tar.gz"),
            oci_archive: d.join("web-oci.tar"),
            _dir: dir,
        }
    })
}

/// Adds to a layout an image index of the tagged manifests, with their platforms.
fn add_index(layout: &Path, tag: &str, members: &[&str]) {
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap().clone();
    let mut manifests = Vec::new();
    for m in members {
        let e = entries
            .iter()
            .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == *m)
            .unwrap();
        manifests.push(serde_json::json!({
            "mediaType": e["mediaType"], "digest": e["digest"], "size": e["size"],
            "platform": {"os": "linux", "architecture": m},
        }));
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests,
    }))
    .unwrap();
    let digest = format!("sha256:{}", sha256_hex(&body));
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), &body).unwrap();
    index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": body.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    std::fs::write(index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

pub fn sha256_file(path: &Path) -> String {
    sha256_hex(&std::fs::read(path).unwrap())
}

/// An isolated place to run margo-gitops: its own HOME, cache and working folder.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        Env { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn work(&self) -> PathBuf {
        self.path("work")
    }

    /// `margo-gitops ARGS`, run in the work folder.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = assert_cmd::Command::cargo_bin("margo-gitops").unwrap();
        c.current_dir(self.work())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            .env("MARGO_GITOPS_CACHE_DIR", self.path("cache"))
            .env("SOURCE_DATE_EPOCH", "1700000000");
        c
    }

    /// `margo-gitops` with the words of `line` as its arguments, as the README shows them.
    pub fn cli(&self, line: &str) -> assert_cmd::Command {
        let mut c = self.cmd();
        c.args(line.split_whitespace());
        c
    }

    /// Writes a file under the work folder, creating folders.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.work().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A two-service app like the PoC's: `web` is built, `redis` comes from `registry`.
    pub fn poc_app(&self, registry: &Registry) -> PathBuf {
        self.write(
            "app/compose.yaml",
            &format!(
                "name: poc-app\nservices:\n  web:\n    build: .\n    image: poc-app-web:1.0\n    env_file: ./web.env\n    ports: [\"5000:5000\"]\n    configs: [site]\n  redis:\n    image: {}/library/redis:alpine\nconfigs:\n  site:\n    file: ./config/site.conf\n",
                registry.host
            ),
        );
        self.write("app/web.env", "REDIS_HOST=redis\n");
        self.write("app/config/site.conf", "greeting = hello\n");
        self.write("app/Dockerfile", "FROM python:3-alpine\n");
        self.write(
            "app/margo.yaml",
            "apiVersion: margo.org/v1-alpha1\nkind: ApplicationDescription\nmetadata:\n  id: poc-app\n  name: PoC App\n  description: A hit counter backed by Redis\n  version: 1.2.0\n  catalog:\n    application:\n      icon: ./resources/icon.svg\n      descriptionFile: ./resources/description.md\n    author:\n      - name: Acme Edge Team\n    organization:\n      - name: Acme\ndeploymentProfiles:\n  - type: compose\n    id: poc-app-compose\n    components:\n      - name: poc-app\n        properties:\n          packageLocation: oci://ghcr.io/acme/poc-app\n",
        );
        self.write(
            "app/resources/icon.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n",
        );
        self.write("app/resources/description.md", "# PoC app\n");
        registry.push_with_skopeo(&fixtures().oci("multi"), "library/redis:alpine");
        self.work().join("app")
    }
}

impl Env {
    /// The poc app written, prepared (`web` from the OCI archive fixture) and published to
    /// `reg` as `acme/poc-app`, with `flags` added to `package publish`.
    pub fn publish_poc(&self, reg: &Registry, flags: &str) {
        self.poc_app(reg);
        self.prepare_poc(&fixtures().oci_archive);
        self.cli(&format!(
            "package publish --plain-http {flags} --to {}",
            reg.repo("acme/poc-app")
        ))
        .assert()
        .success();
    }

    /// `package prepare` of the app [`Env::poc_app`] wrote, with `web` from `web_archive`.
    pub fn prepare_poc(&self, web_archive: &Path) {
        self.cli("package prepare app --plain-http --image")
            .arg(format!("web={}", web_archive.display()))
            .assert()
            .success();
    }
}

/// A minimal valid `margo.yaml` (ApplicationDescription) of app `id` at `version`: one
/// organization, one compose profile with one component named after the app.
pub fn margo_yaml(id: &str, version: &str) -> String {
    format!(
        "apiVersion: margo.org/v1-alpha1\nkind: ApplicationDescription\nmetadata:\n  id: {id}\n  name: {id}\n  version: {version}\n  catalog:\n    organization:\n      - name: Acme\ndeploymentProfiles:\n  - type: compose\n    id: {id}-compose\n    components:\n      - name: {id}\n        properties:\n          packageLocation: oci://ghcr.io/acme/{id}\n"
    )
}

/// Extracts a .tar.gz into a new folder and returns it.
pub fn untar(archive: &Path) -> TempDir {
    let out = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(out.path()));
    out
}

/// Starts a stand-in server that prints `listening PORT` first; the child and the port.
pub fn spawn_listening(cmd: &mut Command) -> (Child, u16) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?} (scripts/test installs it): {e}"));
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{cmd:?} did not start: {line:?}"));
    (child, port)
}

/// The request token the Actions token endpoint of [`Sigstore`] accepts.
pub const ACTIONS_REQUEST_TOKEN: &str = "actions-request-token-never-printed";
/// The identity the stand-in Fulcio certifies for its Actions tokens.
pub const WORKFLOW_IDENTITY: &str =
    "https://github.com/margo-gitops/poc-app/.github/workflows/publish.yml@refs/heads/main";
pub const ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Stand-in for services this machine cannot reach: Sigstore's Fulcio (with a CT log) and
/// Rekor, and GitHub's Actions token endpoint, all on one 127.0.0.1 port
/// (`tests/support/sigstore-standin/server.js`, on npm `@sigstore/mock`). It writes the
/// client trust config sigstore-python reads.
pub struct SigstoreStandIn {
    pub url: String,
    pub dir: TempDir,
    child: Child,
}

impl Drop for SigstoreStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SigstoreStandIn {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/sigstore-standin/server.js");
        let (child, port) = spawn_listening(
            Command::new("node")
                .arg(server)
                .arg(dir.path())
                .arg(ACTIONS_REQUEST_TOKEN),
        );
        SigstoreStandIn {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        }
    }

    pub fn trust_config(&self) -> PathBuf {
        self.dir.path().join("trust_config.json")
    }

    /// The GitHub Actions variables a job with `id-token: write` has.
    pub fn actions_env(&self) -> [(&'static str, String); 2] {
        [
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/actions-token?api-version=2.0", self.url),
            ),
            (
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                ACTIONS_REQUEST_TOKEN.to_string(),
            ),
        ]
    }

    /// Sets the clock of the stand-in's Fulcio and Rekor `seconds` from the real time (at
    /// most 30 days back): signatures made now carry that time.
    pub fn set_clock(&self, seconds: i64) {
        run(Command::new("curl").args([
            "-sf",
            "-X",
            "POST",
            &format!("{}/clock?offset={seconds}", self.url),
        ]));
    }

    /// An identity token fetched the way a job fetches one.
    pub fn identity_token(&self) -> String {
        let out = run(Command::new("curl").args([
            "-sf",
            "-H",
            &format!("Authorization: Bearer {ACTIONS_REQUEST_TOKEN}"),
            &format!("{}/actions-token?audience=sigstore", self.url),
        ]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["value"].as_str().unwrap().to_string()
    }

    /// `sigstore verify identity --offline` (sigstore-python) of `bundle` over `artifact`.
    pub fn python_verify(
        &self,
        bundle: &Path,
        artifact: &Path,
        identity: &str,
        issuer: &str,
    ) -> Output {
        Command::new("python3")
            .args(["-m", "sigstore", "--trust-config"])
            .arg(self.trust_config())
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(bundle)
            .args(["--cert-identity", identity, "--cert-oidc-issuer", issuer])
            .arg(artifact)
            .output()
            .unwrap()
    }
}

impl Registry {
    /// `skopeo copy` between two references of this (plain HTTP) registry.
    pub fn skopeo_copy(&self, from: &str, to: &str) {
        run(Command::new("skopeo")
            .args([
                "copy",
                "-q",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{}", self.repo(from)))
            .arg(format!("docker://{}", self.repo(to))));
    }

    /// Pushes a blob with two plain HTTP requests; returns its digest.
    pub fn push_blob(&self, name: &str, bytes: &[u8]) -> String {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("blob");
        std::fs::write(&file, bytes).unwrap();
        let out = run(Command::new("curl").args([
            "-sf",
            "-X",
            "POST",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &format!("http://{}/v2/{name}/blobs/uploads/", self.host),
        ]));
        let location = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or(l.strip_prefix("location: "))
                    .map(|s| s.trim().to_string())
            })
            .unwrap();
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = if location.starts_with("http") {
            location.clone()
        } else {
            format!("http://{}{location}", self.host)
        };
        run(Command::new("curl").args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{url}{sep}digest={digest}"),
        ]));
        digest
    }

    /// Puts a manifest under `reference` (a tag or digest).
    pub fn put_manifest(&self, name: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("manifest");
        std::fs::write(&file, bytes).unwrap();
        run(Command::new("curl").args([
            "-sf",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("http://{}/v2/{name}/manifests/{reference}", self.host),
        ]));
    }

    /// Puts the blobs and the manifest `subject` of `from` into `to` under tag 1.2.0.
    pub fn copy_manifest(&self, from: &str, to: &str, subject: &[u8]) {
        let m: serde_json::Value = serde_json::from_slice(subject).unwrap();
        let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
        for l in m["layers"].as_array().unwrap() {
            blobs.push(l["digest"].as_str().unwrap().to_string());
        }
        for d in blobs {
            self.push_blob(to, &self.get(&format!("{from}/blobs/{d}")));
        }
        self.put_manifest(to, "1.2.0", m["mediaType"].as_str().unwrap(), subject);
    }

    /// Publishes a referrer of `subject` in `name` with `layers` (media type, bytes) and
    /// lists it, alone, under the `sha256-<hex>` tag, as cosign 3 lays it out.
    pub fn attach_referrer(
        &self,
        name: &str,
        subject: &[u8],
        artifact_type: &str,
        layers: &[(&str, &[u8])],
    ) {
        let empty = self.push_blob(name, b"{}");
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(t, bytes)| {
                serde_json::json!({"mediaType": t, "digest": self.push_blob(name, bytes), "size": bytes.len()})
            })
            .collect();
        let s: serde_json::Value = serde_json::from_slice(subject).unwrap();
        let referrer = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": layers,
            "subject": {
                "mediaType": s["mediaType"],
                "digest": format!("sha256:{}", sha256_hex(subject)),
                "size": subject.len()
            }
        })
        .to_string();
        let referrer_digest = format!("sha256:{}", sha256_hex(referrer.as_bytes()));
        self.put_manifest(
            name,
            &referrer_digest,
            "application/vnd.oci.image.manifest.v1+json",
            referrer.as_bytes(),
        );
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": referrer_digest,
                "size": referrer.len(),
                "artifactType": artifact_type
            }]
        })
        .to_string();
        self.put_manifest(
            name,
            &format!("sha256-{}", sha256_hex(subject)),
            "application/vnd.oci.image.index.v1+json",
            index.as_bytes(),
        );
    }

    /// GET of a manifest or blob path under `/v2/`, as bytes.
    pub fn get(&self, path: &str) -> Vec<u8> {
        self.try_get(path)
            .unwrap_or_else(|| panic!("GET /v2/{path} failed"))
    }

    /// GET of a manifest or blob path under `/v2/`; `None` when the registry refuses it
    /// (a tag that does not exist).
    pub fn try_get(&self, path: &str) -> Option<Vec<u8>> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
                &format!("http://{}/v2/{path}", self.host),
            ])
            .output()
            .unwrap();
        out.status.success().then_some(out.stdout)
    }
}
