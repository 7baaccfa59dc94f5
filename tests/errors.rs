//! Bad input: a clear message naming the problem, exit 1 for a failed check or 2 for
//! usage and I/O, and nothing written or pushed.

use crate::util::{fixtures, Env, Registry};

fn no_package_written(env: &Env) {
    let dist = env.work().join("dist");
    let files: Vec<_> = std::fs::read_dir(&dist)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(files.is_empty(), "nothing is left in dist: {files:?}");
}

#[test]
fn no_compose_file() {
    let env = Env::new();
    env.write("app/README.md", "no compose here\n");
    env.cli("package prepare app --version 1.0.0")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no compose file in app"))
        .stderr(predicates::str::contains(
            "compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml",
        ));
    no_package_written(&env);
}

#[test]
fn an_invalid_margo_yaml_is_refused_with_its_line_before_anything_is_written() {
    let env = Env::new();
    env.write(
        "app/compose.yaml",
        "services:\n  web:\n    image: busybox:1\n",
    );
    let margo = crate::util::margo_yaml("web-app", "1.0.0").replace(
        "kind: ApplicationDescription",
        "kind: ApplicationDescriptio",
    );
    env.write("app/margo.yaml", &margo);
    env.cli("package prepare app")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "app/margo.yaml:2: error: kind: `ApplicationDescriptio` is not ApplicationDescription",
        ));
    no_package_written(&env);
}

#[test]
fn a_service_with_neither_image_nor_archive() {
    let env = Env::new();
    env.write("app/compose.yaml", "services:\n  web:\n    build: .\n");
    env.cli("package prepare app --version 1.0.0")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "app/compose.yaml:2: service `web` is built (`build:`) and no image archive was given",
        ))
        .stderr(predicates::str::contains("--image web=ARCHIVE"))
        .stderr(predicates::str::contains("--build"));
    env.cli("package prepare app --version 1.0.0 --image api=x.tar")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "no service `api` (services: web)",
        ));
    no_package_written(&env);
}

#[test]
fn an_image_that_does_not_exist() {
    let reg = Registry::plain();
    let env = Env::new();
    env.write(
        "app/compose.yaml",
        &format!("services:\n  db:\n    image: {}/library/nope:1\n", reg.host),
    );
    env.cli("package prepare app --version 1.0.0 --plain-http")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("library/nope:1"))
        .stderr(predicates::str::contains("not found"))
        .stderr(predicates::str::contains("service `db`"));
    no_package_written(&env);
}

#[test]
fn an_unreachable_registry() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.write(
        "app/compose.yaml",
        &format!("services:\n  db:\n    image: 127.0.0.1:{port}/library/redis:7\n"),
    );
    env.cli("package prepare app --version 1.0.0 --plain-http")
        .assert()
        .code(2)
        .stderr(predicates::str::contains(format!(
            "registry 127.0.0.1:{port}"
        )))
        .stderr(predicates::str::contains("cannot reach"));
    no_package_written(&env);
}

#[test]
fn files_escaping_the_app_folder_are_refused() {
    let cases = [
        (
            "env_file: ../outside.env",
            "uses `..` to leave the app folder",
        ),
        ("env_file: /etc/hostname", "is an absolute path"),
        (
            "env_file: ./link.env",
            "is a link that points outside the app folder",
        ),
        (
            "volumes: [\"./data-link:/data\"]",
            "is a link that points outside the app folder",
        ),
    ];
    for (field, message) in cases {
        let env = Env::new();
        env.write("outside.env", "X=1\n");
        env.write(
            "app/compose.yaml",
            &format!("services:\n  web:\n    image: example.org/web:1\n    {field}\n"),
        );
        std::os::unix::fs::symlink(
            env.work().join("outside.env"),
            env.work().join("app/link.env"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc", env.work().join("app/data-link")).unwrap();
        env.cli("package prepare app --version 1.0.0")
            .assert()
            .code(1)
            .stderr(predicates::str::contains("compose.yaml:"))
            .stderr(predicates::str::contains(message));
        no_package_written(&env);
    }
}

#[test]
fn secrets_never_go_into_a_package() {
    let env = Env::new();
    env.write(
        "app/compose.yaml",
        "services:\n  web:\n    image: example.org/web:1\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n",
    );
    env.write("app/token.txt", "hunter2\n");
    env.cli("package prepare app --version 1.0.0")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("compose.yaml:4:"))
        .stderr(predicates::str::contains(
            "service `web` uses secret `token`: secrets never go into a package",
        ));
    env.write("app/compose.yaml", "services:\n  web:\n    image: example.org/web:1\nsecrets:\n  token:\n    file: ./token.txt\n");
    env.cli("package prepare app --version 1.0.0")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "compose.yaml:4: secret `token` is declared",
        ));
    no_package_written(&env);
}

#[test]
fn invalid_compose_yaml_is_located() {
    let env = Env::new();
    env.write(
        "app/compose.yaml",
        "services:\n  web:\n    image: [unclosed\n",
    );
    env.cli("package prepare app --version 1.0.0")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("compose.yaml:"))
        .stderr(predicates::str::contains("not a valid compose file"));
}

#[test]
fn a_registry_serving_wrong_bytes_gets_an_error_not_a_package() {
    let reg = Registry::plain();
    let env = Env::new();
    reg.push_with_skopeo(&fixtures().oci("amd64"), "library/redis:7");
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", &fixtures().oci("amd64")])
        .output()
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    // Same length, other bytes: only the digest can tell.
    let file = reg.blob_file(layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    env.write(
        "app/compose.yaml",
        &format!(
            "services:\n  db:\n    image: {}/library/redis:7\n",
            reg.host
        ),
    );
    env.cli("package prepare app --version 1.0.0 --plain-http")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("digest mismatch"))
        .stderr(predicates::str::contains(layer));
    no_package_written(&env);
    let cached = env
        .path("cache/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    assert!(!cached.exists(), "wrong bytes are not kept in the cache");
}

#[test]
fn a_changed_archive_is_not_published() {
    let reg = Registry::plain();
    let env = Env::new();
    env.write("app/compose.yaml", "services:\n  web:\n    build: .\n");
    env.cli("package prepare app --version 1.0.0")
        .arg("--image")
        .arg(format!("web={}", fixtures().oci_archive.display()))
        .assert()
        .success();
    std::fs::write(env.work().join("dist/app-1.0.0.tar.gz"), b"tampered").unwrap();
    env.cli(&format!(
        "package publish --plain-http --to {}",
        reg.repo("acme/app")
    ))
    .assert()
    .code(1)
    .stderr(predicates::str::contains("changed since `package prepare`"));
    assert_eq!(reg.writes(), 0);
}
