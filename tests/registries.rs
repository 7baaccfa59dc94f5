//! Registries as users meet them: TLS with a private CA and basic auth, bearer tokens
//! with anonymous pulls of public repositories, credentials from the Docker config, a
//! credential helper or stdin. No credential ever shows in what margo-gitops prints.

use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;

use crate::util::{fixtures, Env, Registry, PASSWORD, USER};

fn assert_no_secret(out: &std::process::Output) {
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(PASSWORD), "the password leaked: {text}");
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        assert!(
            !text.contains(&encoded),
            "the encoded credential leaked: {text}"
        );
    }
}

fn docker_config(env: &Env, host: &str, password: &str) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    let dir = env.path("docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    dir
}

#[test]
fn tls_and_basic_auth_with_credentials_from_the_docker_config() {
    let reg = Registry::tls_basic();
    let env = Env::new();
    env.poc_app(&reg);
    let docker = docker_config(&env, &reg.host, PASSWORD);
    let prep = env
        .cmd()
        .env("DOCKER_CONFIG", &docker)
        .args(["package", "prepare", "app"])
        .args(reg.flags())
        .args([
            "--image",
            &format!("web={}", fixtures().oci_archive.display()),
        ])
        .assert()
        .success();
    assert_no_secret(prep.get_output());
    let publ = env
        .cmd()
        .env("DOCKER_CONFIG", &docker)
        .args(["package", "publish", "--to", &reg.repo("acme/poc-app")])
        .args(reg.flags())
        .assert()
        .success();
    assert_no_secret(publ.get_output());
    assert_eq!(reg.tags("acme/poc-app"), ["1.2.0"]);
}

#[test]
fn password_from_stdin() {
    let reg = Registry::tls_basic();
    let env = Env::new();
    env.poc_app(&reg);
    let out = env
        .cli(&format!(
            "package prepare app --username {USER} --password-stdin"
        ))
        .args(reg.flags())
        .args([
            "--image",
            &format!("web={}", fixtures().oci_archive.display()),
        ])
        .write_stdin(format!("{PASSWORD}\n"))
        .assert()
        .success();
    assert_no_secret(out.get_output());
    let out = env
        .cli(&format!(
            "package show --username {USER} --password-stdin {}:alpine",
            reg.repo("library/redis")
        ))
        .args(reg.flags())
        .write_stdin(PASSWORD)
        .assert()
        .success();
    assert_no_secret(out.get_output());
}

#[test]
fn wrong_credentials_fail_with_exit_2_and_push_nothing() {
    let reg = Registry::tls_basic();
    let env = Env::new();
    env.poc_app(&reg);
    env.cli(&format!(
        "package prepare app --username {USER} --password-stdin"
    ))
    .args(reg.flags())
    .args([
        "--image",
        &format!("web={}", fixtures().oci_archive.display()),
    ])
    .write_stdin(PASSWORD)
    .assert()
    .success();
    let wrong = "not-the-Password-42";
    let docker = docker_config(&env, &reg.host, wrong);
    let out = env
        .cmd()
        .env("DOCKER_CONFIG", &docker)
        .args(["package", "publish", "--to", &reg.repo("acme/poc-app")])
        .args(reg.flags())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("access denied"))
        .stderr(predicates::str::contains(
            docker.join("config.json").display().to_string(),
        ));
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(!stderr.contains(wrong), "{stderr}");
    assert_eq!(reg.tags("acme/poc-app"), Vec::<String>::new());
}

#[test]
fn a_private_ca_is_needed_and_named_in_the_error() {
    let reg = Registry::tls_basic();
    let env = Env::new();
    env.cli(&format!("package show {}:1.0.0", reg.repo("acme/poc-app")))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--ca-file"));
}

#[test]
fn bearer_tokens_anonymous_for_public_pulls_credentials_for_pushes() {
    let reg = Registry::token();
    let env = Env::new();
    reg.push_with_skopeo(&fixtures().oci("multi"), "public/redis:alpine");
    env.write(
        "app/compose.yaml",
        &format!(
            "services:\n  redis:\n    image: {}/public/redis:alpine\n",
            reg.host
        ),
    );
    // The anonymous token dance is enough to read a public repository.
    env.cli("package prepare app --plain-http --version 1.0.0 --app-id redis-only")
        .assert()
        .success();
    // Pushing anonymously is refused, and nothing is left behind.
    env.cli(&format!(
        "package publish --plain-http --to {}",
        reg.repo("acme/redis-only")
    ))
    .assert()
    .code(2)
    .stderr(predicates::str::contains("access denied"));
    assert!(reg.tags("acme/redis-only").is_empty());
    // A credential helper, as `credHelpers` names it, provides the push credentials.
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-margotest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = \"{}\" ] && printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n", reg.host),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker = env.path("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"margotest"}}}}"#, reg.host),
    )
    .unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env
        .cmd()
        .env("PATH", path)
        .env("DOCKER_CONFIG", &docker)
        .args([
            "package",
            "publish",
            "--plain-http",
            "--to",
            &reg.repo("acme/redis-only"),
        ])
        .assert()
        .success();
    assert_no_secret(out.get_output());
    assert_eq!(reg.tags("acme/redis-only"), ["1.0.0"]);
}

#[test]
fn a_refusal_midway_leaves_no_tag_anywhere() {
    let reg = Registry::token();
    let env = Env::new();
    reg.push_with_skopeo(&fixtures().oci("amd64"), "public/redis:alpine");
    env.write(
        "app/compose.yaml",
        &format!(
            "services:\n  redis:\n    image: {}/public/redis:alpine\n",
            reg.host
        ),
    );
    env.write(
        "app/margo.yaml",
        &crate::util::margo_yaml("redis-only", "2.0.0"),
    );
    env.cli("package prepare app --plain-http")
        .assert()
        .success();
    // The component's repository accepts the push; the Application Package's refuses it.
    env.cli(&format!(
        "package publish --plain-http --username {USER} --password-stdin"
    ))
    .args([
        "--to",
        &reg.repo("acme/redis-only"),
        "--app-to",
        &reg.repo("readonly/redis-only"),
    ])
    .write_stdin(PASSWORD)
    .assert()
    .code(2)
    .stderr(predicates::str::contains("access denied"));
    assert!(
        reg.tags("acme/redis-only").is_empty(),
        "no tag on the component either"
    );
    assert!(reg.tags("readonly/redis-only").is_empty());
}
