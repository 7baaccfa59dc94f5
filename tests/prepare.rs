//! `package prepare`: what lands in the Compose Archive.

use std::process::Command;

use crate::util::{fixtures, run, sh, untar, Env, Registry};

fn pinned_digests(compose: &str) -> Vec<(String, String)> {
    let doc: serde_json::Value = {
        // Read back with a YAML-agnostic approach: every `image:` line.
        let mut services = serde_json::Map::new();
        let mut current = String::new();
        for line in compose.lines() {
            let t = line.trim_start();
            let indent = line.len() - t.len();
            if indent == 2 && t.ends_with(':') {
                current = t.trim_end_matches(':').to_string();
            }
            if let Some(img) = t.strip_prefix("image: ") {
                services.insert(current.clone(), serde_json::json!(img));
            }
        }
        serde_json::Value::Object(services)
    };
    doc.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let img = v.as_str().unwrap().to_string();
            let digest = img.split('@').nth(1).expect("pinned by digest").to_string();
            (k.clone(), digest)
        })
        .collect()
}

fn skopeo_digest(reference: &str) -> String {
    let out = run(Command::new("skopeo").args(["inspect", "--format", "{{.Digest}}", reference]));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn prepare_pins_every_image_and_packs_the_files_the_app_uses() {
    let reg = Registry::plain();
    let env = Env::new();
    env.poc_app(&reg);
    let out = env
        .cli("package prepare app --plain-http --image")
        .arg(format!("web={}", fixtures().docker_archive.display()))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(stdout.contains("prepared poc-app 1.2.0"), "{stdout}");
    assert!(
        stdout.contains("next: margo-gitops package publish"),
        "{stdout}"
    );

    let archive = env.work().join("dist/poc-app-1.2.0.tar.gz");
    let x = untar(&archive);
    let top: Vec<_> = std::fs::read_dir(x.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["poc-app"], "exactly one top-level folder");
    let app = x.path().join("poc-app");
    for f in ["compose.yaml", "web.env", "config/site.conf"] {
        assert!(app.join(f).is_file(), "{f} is packaged");
    }
    for f in ["Dockerfile", "margo.yaml", "docker-compose.yml"] {
        assert!(!app.join(f).exists(), "{f} is not packaged");
    }
    let compose = std::fs::read_to_string(app.join("compose.yaml")).unwrap();
    assert!(
        !compose.contains("build:"),
        "a device does not build:\n{compose}"
    );
    let pins = pinned_digests(&compose);
    assert_eq!(pins.len(), 2, "{compose}");
    assert!(
        compose.contains("image: poc-app-web:1.0@sha256:"),
        "{compose}"
    );
    assert!(
        compose.contains(&format!("image: {}/library/redis:alpine@sha256:", reg.host)),
        "{compose}"
    );

    let images: Vec<_> = std::fs::read_dir(app.join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(images.len(), 2);
    // Each image archive is, for skopeo, exactly the image the compose file pins.
    let mut found: Vec<String> = images
        .iter()
        .map(|p| skopeo_digest(&format!("oci-archive:{}", p.display())))
        .collect();
    found.sort();
    let mut pinned: Vec<String> = pins.iter().map(|(_, d)| d.clone()).collect();
    pinned.sort();
    assert_eq!(found, pinned);
    for p in &images {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--format", "{{.Os}}/{{.Architecture}}"])
            .arg(format!("docker-archive:{}", p.display())));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "linux/amd64");
    }
    // redis came from a multi-platform index: the amd64 manifest is the one pinned.
    let redis = pins.iter().find(|(s, _)| s == "redis").unwrap();
    assert_eq!(redis.1, skopeo_digest(&fixtures().oci("amd64")));

    let descriptor: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.work().join("dist/poc-app-1.2.0.json")).unwrap())
            .unwrap();
    assert_eq!(descriptor["appId"], "poc-app");
    assert_eq!(
        descriptor["archive"]["digest"],
        format!("sha256:{}", crate::util::sha256_file(&archive))
    );
    assert!(env
        .work()
        .join("dist/poc-app-1.2.0.app/margo.yaml")
        .is_file());
    assert!(env
        .work()
        .join("dist/poc-app-1.2.0.app/resources/icon.svg")
        .is_file());
}

#[test]
fn platform_picks_the_manifest_out_of_an_index() {
    let reg = Registry::plain();
    let env = Env::new();
    env.poc_app(&reg);
    env.cli("package prepare app --plain-http --no-images --platform linux/arm64")
        .args([
            "--image",
            &format!("web={}", fixtures().docker_archive.display()),
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--no-images"));
    env.write(
        "app/compose.yaml",
        &format!(
            "services:\n  redis:\n    image: {}/library/redis:alpine\n",
            reg.host
        ),
    );
    env.cli("package prepare app --plain-http --no-images --platform linux/arm64")
        .assert()
        .success();
    let x = untar(&env.work().join("dist/poc-app-1.2.0.tar.gz"));
    let compose = std::fs::read_to_string(x.path().join("poc-app/compose.yaml")).unwrap();
    assert_eq!(
        pinned_digests(&compose)[0].1,
        skopeo_digest(&fixtures().oci("arm64"))
    );
    assert!(
        !x.path().join("poc-app/images").exists(),
        "--no-images leaves images in their registries"
    );
    env.cli("package prepare app --plain-http --platform linux/riscv64")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("linux/amd64, linux/arm64"));
}

#[test]
fn local_archives_in_every_format_give_the_same_image() {
    let f = fixtures();
    let want = skopeo_digest(&f.oci("web"));
    for archive in [&f.oci_archive, &f.docker_archive, &f.docker_archive_gz] {
        let env = Env::new();
        env.write("app/compose.yaml", "services:\n  web:\n    build: .\n");
        env.cli("package prepare app --version 0.1.0 --app-id web-only")
            .arg("--image")
            .arg(format!("web={}", archive.display()))
            .assert()
            .success();
        let x = untar(&env.work().join("dist/web-only-0.1.0.tar.gz"));
        let compose = std::fs::read_to_string(x.path().join("web-only/compose.yaml")).unwrap();
        let digest = &pinned_digests(&compose)[0].1;
        if archive == &f.oci_archive {
            // An OCI archive keeps its manifest: the pin is the builder's digest.
            assert_eq!(digest, &want);
        }
        let images: Vec<_> = std::fs::read_dir(x.path().join("web-only/images"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            &skopeo_digest(&format!("oci-archive:{}", images[0].display())),
            digest
        );
        let layer_tar = run(Command::new("sh").arg("-ec").arg(format!(
            "d=$(mktemp -d); skopeo copy -q oci-archive:{} dir:$d/img >/dev/null; for b in $d/img/*; do tar tzf $b 2>/dev/null || tar tf $b 2>/dev/null || true; done",
            images[0].display()
        )));
        assert!(String::from_utf8_lossy(&layer_tar.stdout).contains("app/web.txt"));
    }
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let reg = Registry::plain();
    let env = Env::new();
    env.poc_app(&reg);
    let prepare = |out: &str, cache: &str, epoch: &str| {
        env.cmd()
            .env("MARGO_GITOPS_CACHE_DIR", env.path(cache))
            .env("SOURCE_DATE_EPOCH", epoch)
            .args([
                "package",
                "prepare",
                "app",
                "--plain-http",
                "-o",
                out,
                "--image",
            ])
            .arg(format!("web={}", fixtures().docker_archive_gz.display()))
            .assert()
            .success();
        std::fs::read(env.work().join(out).join("poc-app-1.2.0.tar.gz")).unwrap()
    };
    let a = prepare("a", "cache-a", "1700000000");
    let b = prepare("b", "cache-b", "1700000000");
    assert!(a == b, "two runs, two caches, the same archive");
    let c = prepare("c", "cache-a", "1700000999");
    assert!(a != c, "the time is part of the archive");
    let listing = run(Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(env.work().join("a/poc-app-1.2.0.tar.gz")));
    let listing = String::from_utf8_lossy(&listing.stdout);
    for line in listing.lines() {
        assert!(line.contains(" 0/0 "), "owner 0:0: {line}");
        assert!(
            line.contains("2023-11-14"),
            "mtime from SOURCE_DATE_EPOCH: {line}"
        );
    }
}

#[test]
fn without_source_date_epoch_the_last_commit_time_is_used() {
    let env = Env::new();
    env.write("app/compose.yaml", "services:\n  web:\n    build: .\n");
    sh(&format!(
        "cd {}; git init -q; git add .; GIT_AUTHOR_DATE='2021-03-04T05:06:07Z' GIT_COMMITTER_DATE='2021-03-04T05:06:07Z' git -c user.name=t -c user.email=t@example.org commit -qm init",
        env.work().display()
    ));
    env.cmd()
        .env_remove("SOURCE_DATE_EPOCH")
        .args(["package", "prepare", "app", "--version", "1.0.0"])
        .arg("--image")
        .arg(format!("web={}", fixtures().oci_archive.display()))
        .assert()
        .success();
    let listing = run(Command::new("tar")
        .args(["-tvzf"])
        .arg(env.work().join("dist/app-1.0.0.tar.gz")));
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        assert!(line.contains("2021-03-04"), "{line}");
    }
}
