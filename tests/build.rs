//! Services that are built (`build:` in the compose file): refused without an image archive
//! before anything is pulled, or built with `--build` by a Docker engine of the test's own
//! (Debian's dockerd 20.10: the classic builder, then `docker save`), and the image that
//! umoci unpacks from the package is the one the Dockerfile describes.

use std::process::Command;

use crate::util::docker::DockerEngine;
use crate::util::{run, untar, Env};

/// An app whose `web` service is built from a Dockerfile on a static busybox (no base
/// image to pull), with a build argument the image records in `/greeting`.
fn built_app(env: &Env) {
    let busybox =
        String::from_utf8(run(Command::new("sh").args(["-c", "command -v busybox"])).stdout)
            .unwrap();
    std::fs::create_dir_all(env.work().join("app")).unwrap();
    std::fs::copy(busybox.trim(), env.work().join("app/busybox")).unwrap();
    env.write(
        "app/Dockerfile",
        "FROM scratch\nARG GREETING=hi\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo $GREETING > /greeting\"]\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\"]\n",
    );
    env.write(
        "app/compose.yaml",
        "name: built\nservices:\n  web:\n    build:\n      context: .\n      args:\n        GREETING: hello\n    image: built-web:1.0.0\n",
    );
    env.write("app/margo.yaml", &crate::util::margo_yaml("built", "1.0.0"));
}

#[test]
fn a_built_service_needs_its_archive_or_build_and_build_makes_the_image_it_describes() {
    let env = Env::new();
    built_app(&env);

    // No archive: one line that names the service and both ways out, before any pull
    // (`built-web:1.0.0` would otherwise be looked for on Docker Hub).
    let out = env.cli("package prepare app -o dist").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    for part in [
        "compose.yaml:3",
        "service `web` is built",
        "--image web=ARCHIVE",
        "docker buildx build --output type=oci",
        "--build",
    ] {
        assert!(lines[0].contains(part), "`{part}` in: {stderr}");
    }
    assert!(!env.work().join("dist").exists());

    // --build: the engine at hand builds it (no buildx here: docker build + docker save).
    let engine = DockerEngine::start();
    let out = env
        .cli("package prepare app --build -o dist")
        .env("DOCKER_HOST", &engine.host)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("prepared built 1.0.0"),
        "the build's output goes to stderr: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let package = untar(&env.work().join("dist/built-1.0.0.tar.gz"));
    let compose = std::fs::read_to_string(package.path().join("built/compose.yaml")).unwrap();
    let pinned = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: built-web:1.0.0@sha256:"))
        .unwrap_or_else(|| panic!("web pinned by digest: {compose}"));
    assert!(!compose.contains("build:"), "{compose}");
    let image = std::fs::read_dir(package.path().join("built/images"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(image.to_string_lossy().contains(&pinned[..12]), "{image:?}");
    let layout = env.path("layout");
    std::fs::create_dir_all(&layout).unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&image)
        .arg("-C")
        .arg(&layout));
    let bundle = env.path("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:1.0.0", layout.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/greeting")).unwrap(),
        "hello\n",
        "the build argument of compose.yaml reached the Dockerfile"
    );
}
