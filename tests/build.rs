//! Services that are built (`build:` in the compose file): refused without an image archive
//! before anything is pulled, or built with `--build` by a Docker engine of the test's own
//! (Debian's dockerd 20.10: the classic builder, then `docker save`), and the image that
//! umoci unpacks from the package is the one the Dockerfile describes.

use std::process::Command;

use crate::util::docker::DockerEngine;
use crate::util::{run, untar, Env};

/// Copies the static busybox into `folder` of the work tree: what test images run, with no
/// base image to pull.
fn busybox_into(env: &Env, folder: &str) {
    let busybox =
        String::from_utf8(run(Command::new("sh").args(["-c", "command -v busybox"])).stdout)
            .unwrap();
    std::fs::create_dir_all(env.work().join(folder)).unwrap();
    std::fs::copy(busybox.trim(), env.work().join(folder).join("busybox")).unwrap();
}

/// An app whose `web` service is built from a Dockerfile on a static busybox (no base
/// image to pull), with a build argument the image records in `/greeting`.
fn built_app(env: &Env) {
    busybox_into(env, "app");
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

/// The push job of the action (`margo-gitops ci`) with `build: true`, for an app at the
/// repository's root: the build's context is the pushed commit as git holds it, not the
/// work tree, so an untracked file and `.git` (where actions/checkout keeps its token by
/// default) never reach the engine, and the package is the commit's.
#[test]
fn the_push_job_builds_from_the_commit_not_from_the_work_tree_around_it() {
    let reg = crate::util::Registry::plain();
    let env = Env::new();
    busybox_into(&env, "");
    env.write(
        "Dockerfile",
        "FROM scratch\nCOPY . /ctx/\nCMD [\"/ctx/busybox\", \"ls\", \"-A\", \"/ctx\"]\n",
    );
    env.write(
        "compose.yaml",
        "name: built\nservices:\n  web:\n    build: .\n    image: built-web:1.0.0\n",
    );
    env.write("margo.yaml", &crate::util::margo_yaml("built", "1.0.0"));
    env.write(
        ".margo-gitops.yaml",
        &format!(
            "app: .\npackageRepository: {}\ndesiredStateRepository: {}\nplainHttp: true\ndeployments:\n  - name: built-site\n",
            reg.repo("acme/built"),
            reg.repo("acme/built-desired")
        ),
    );
    crate::desired::git_commit(&env, "2024-01-02T00:00:00Z", "the app");
    let sha = crate::desired::head(&env);
    // What a checkout and earlier steps leave around the commit.
    run(Command::new("git").current_dir(env.work()).args([
        "config",
        "http.https://github.com/.extraheader",
        "AUTHORIZATION: basic c2VjcmV0LXRva2Vu",
    ]));
    env.write("untracked-secret.txt", "not in the commit\n");
    env.write("compose.yaml", "this work tree file is not the commit's\n");

    let engine = DockerEngine::start();
    let event = env.path("event.json");
    std::fs::write(
        &event,
        serde_json::json!({"ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000", "after": sha, "repository": {"default_branch": "main"}}).to_string(),
    )
    .unwrap();
    let out = env
        .cmd()
        .arg("ci")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_SHA", &sha)
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_REPOSITORY", "acme/built")
        .env("MARGO_GITOPS_BUILD", "true")
        .env("MARGO_GITOPS_SIGN", "none")
        .env("DOCKER_HOST", &engine.host)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = engine.docker(&["run", "--rm", "margo-gitops-build/web:latest"]);
    let listing = String::from_utf8_lossy(&listing.stdout).to_string();
    assert!(listing.lines().any(|l| l == "compose.yaml"), "{listing}");
    for absent in [".git", "untracked-secret.txt"] {
        assert!(
            !listing.lines().any(|l| l == absent),
            "{absent} in the build context: {listing}"
        );
    }
    // The package holds the commit's compose file, not the work tree's.
    assert!(reg.tags("acme/built").contains(&"1.0.0".to_string()));
}
