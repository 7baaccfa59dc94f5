//! `package diff`: what changes on a device between two commits of an app, as a reviewer
//! reads it, with secret values never shown.

use crate::desired::{git_commit, gitops_repo, head};
use crate::util::{Env, Registry};

/// `package diff ARGS` in the work folder: its text output, which must be a success.
fn package_diff(env: &Env, args: &str) -> String {
    let out = env.cli(&format!("package diff {args}")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The app's margo.yaml at version 1.3.0 instead of 1.2.0.
fn bump_to_1_3_0(env: &Env) {
    let margo = std::fs::read_to_string(env.work().join("app/margo.yaml")).unwrap();
    env.write(
        "app/margo.yaml",
        &margo.replace("version: 1.2.0", "version: 1.3.0"),
    );
}

#[test]
fn package_diff_shows_services_images_ports_environment_and_files() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg);
    env.write(
        "app/web.env",
        "REDIS_HOST=redis\nAPI_TOKEN=old-token-never-shown\n",
    );
    git_commit(&env, "2024-02-01T00:00:00Z", "a token");
    let old = head(&env);
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &compose
            .replace("\"5000:5000\"", "\"8080:5000\"")
            .replace("library/redis:alpine", "library/redis:7-alpine"),
    );
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &compose.replace(
            "configs:\n  site:",
            "  cache:\n    image: memcached:1.6\nconfigs:\n  site:",
        ),
    );
    env.write(
        "app/web.env",
        "REDIS_HOST=cache\nAPI_TOKEN=new-token-never-shown\n",
    );
    env.write("app/config/site.conf", "greeting = hi\n");
    bump_to_1_3_0(&env);
    git_commit(&env, "2024-02-02T00:00:00Z", "the app, changed");
    let text = package_diff(&env, &format!("git:{old} git:HEAD"));
    for line in [
        "~ version: 1.2.0 → 1.3.0",
        "+ service cache",
        "~ service redis",
        "/library/redis:alpine → ",
        "/library/redis:7-alpine",
        "~ service web",
        "    - port: 5000:5000",
        "    + port: 8080:5000",
        "    ~ environment REDIS_HOST: redis → cache",
        "    ~ environment API_TOKEN: (secret) → (secret)",
        "    ~ file config/site.conf: old content → new content",
        "    ~ file web.env: old content → new content",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
    assert!(!text.contains("token-never-shown"), "{text}");
    let json = env
        .cli(&format!("package diff --json git:{old} git:HEAD"))
        .output()
        .unwrap();
    let d: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(d["added"], serde_json::json!(["cache"]));
    assert_eq!(d["version"], serde_json::json!(["1.2.0", "1.3.0"]));
    assert!(!String::from_utf8_lossy(&json.stdout).contains("token-never-shown"));
    // The same commit on both sides: nothing changes on the device.
    env.cli("package diff git:HEAD git:HEAD")
        .assert()
        .success()
        .stdout(predicates::str::contains("no change on the device"));
}

#[test]
fn package_diff_reads_published_and_prepared_packages_with_their_pinned_images() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg); // acme/poc-app:1.2.0 published from dist/
    env.write("app/web.env", "REDIS_HOST=cache\n");
    bump_to_1_3_0(&env);
    env.cli("package prepare app --plain-http -o dist2 --image")
        .arg(format!(
            "web={}",
            crate::util::fixtures().oci_archive.display()
        ))
        .assert()
        .success();
    let published = reg.repo("acme/poc-app:1.2.0");
    let text = package_diff(&env, &format!("--plain-http {published} dist2"));
    assert!(text.contains("~ version: 1.2.0 → 1.3.0"), "{text}");
    assert!(
        text.contains("~ environment REDIS_HOST: redis → cache"),
        "{text}"
    );
    assert!(
        !text.contains("image"),
        "the same images, pinned alike: {text}"
    );
    // A package pins its images by digest; the app folder names them by tag, and a digest
    // known on one side only is no change.
    let text = package_diff(&env, "git:HEAD dist2");
    assert!(!text.contains("image"), "{text}");

    // The tag moves in the registry: looked up now (`--resolve`), the app folder runs
    // another image than the published package.
    let fx = crate::util::fixtures();
    let (amd64, web) = (fx.digest("amd64"), fx.digest("web"));
    reg.push_with_skopeo(&fx.oci("web"), "library/redis:alpine");
    let text = package_diff(
        &env,
        &format!("--plain-http --resolve {published} git:HEAD"),
    );
    let redis = format!("{}/library/redis:alpine", reg.host);
    assert!(
        text.contains(&format!("~ image: {redis}@{amd64} → {redis}@{web}\n")),
        "{text}"
    );
    assert!(
        !text.contains("note:"),
        "web is built, so not looked up: {text}"
    );
    // Without --resolve the tag is all the app folder says.
    let text = package_diff(&env, &format!("--plain-http {published} git:HEAD"));
    assert!(!text.contains("image"), "{text}");
    // An image that cannot be looked up is a note, not a failure.
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &compose.replace("redis:alpine", "redis:gone"),
    );
    let text = package_diff(&env, &format!("--plain-http --resolve {published} app"));
    assert!(
        text.lines()
            .any(|l| l.starts_with("note: app: the digest of ") && l.contains("redis:gone")),
        "{text}"
    );
}

#[test]
fn package_diff_between_two_published_versions_shows_images_by_digest() {
    let reg = Registry::plain();
    let env = Env::new();
    gitops_repo(&env, &reg); // acme/poc-app:1.2.0 published
    let fx = crate::util::fixtures();
    reg.push_with_skopeo(&fx.oci("web"), "library/redis:7");
    reg.push_with_skopeo(&fx.oci("multi"), "library/cache:1");
    let compose = std::fs::read_to_string(env.work().join("app/compose.yaml")).unwrap();
    env.write(
        "app/compose.yaml",
        &compose
            .replace("\"5000:5000\"", "\"8080:5000\"")
            .replace("library/redis:alpine", "library/redis:7")
            .replace(
                "configs:\n  site:",
                &format!(
                    "  cache:\n    image: {}/library/cache:1\nconfigs:\n  site:",
                    reg.host
                ),
            ),
    );
    env.write("app/web.env", "REDIS_HOST=cache\n");
    bump_to_1_3_0(&env);
    env.cli("package prepare app --plain-http -o dist2 --image")
        .arg(format!("web={}", fx.oci_archive.display()))
        .assert()
        .success();
    env.cli(&format!(
        "package publish dist2 --plain-http --to {}",
        reg.repo("acme/poc-app")
    ))
    .assert()
    .success();
    let (old, new) = (
        reg.repo("acme/poc-app:1.2.0"),
        reg.repo("acme/poc-app:1.3.0"),
    );
    let text = package_diff(&env, &format!("--plain-http {old} {new}"));
    let redis = format!("{}/library/redis", reg.host);
    for line in [
        "~ version: 1.2.0 → 1.3.0".to_string(),
        "+ service cache".into(),
        format!(
            "    ~ image: {redis}:alpine@{} → {redis}:7@{}\n",
            fx.digest("amd64"),
            fx.digest("web")
        ),
        "    - port: 5000:5000".into(),
        "    + port: 8080:5000".into(),
        "    ~ environment REDIS_HOST: redis → cache".into(),
        "    ~ file web.env: old content → new content".into(),
    ] {
        assert!(text.contains(&line), "`{line}` in:\n{text}");
    }
}
