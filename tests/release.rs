//! The release script (`scripts/release.sh`), against local git repositories (no GitHub
//! needed): a tag points at a release commit that pins its own binaries, no branch moves,
//! a version is released once, and the major tag moves only forward, only between release
//! commits.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::actions::{git, release, release_try, write_dist};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A repository shaped like this one for the release script (Cargo.toml at `version`, the
/// scripts), pushed to a bare `origin`: (work, origin).
fn release_repo(dir: &Path, version: &str) -> (PathBuf, PathBuf) {
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("scripts")).unwrap();
    for f in ["release.sh", "action-install.sh", "action-checksums.txt"] {
        std::fs::copy(root().join("scripts").join(f), work.join("scripts").join(f)).unwrap();
    }
    std::fs::write(
        work.join("Cargo.toml"),
        format!("[package]\nname = \"margo-gitops\"\nversion = \"{version}\"\n"),
    )
    .unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "the tool"]);
    let origin = dir.join("origin.git");
    git(dir, &["clone", "-q", "--bare", "work", "origin.git"]);
    git(
        &work,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    (work, origin)
}

/// The commit a tag names at `origin`, if it has the tag.
fn tag_at(origin: &Path, tag: &str) -> Option<String> {
    let out = Command::new("git")
        .current_dir(origin)
        .args([
            "rev-parse",
            "-q",
            "--verify",
            &format!("refs/tags/{tag}^{{commit}}"),
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn bump(work: &Path, version: &str) -> String {
    std::fs::write(
        work.join("Cargo.toml"),
        format!("[package]\nname = \"margo-gitops\"\nversion = \"{version}\"\n"),
    )
    .unwrap();
    git(
        work,
        &["commit", "-q", "-am", &format!("version {version}")],
    );
    git(work, &["rev-parse", "HEAD"])
}

#[test]
fn a_release_tags_a_commit_that_pins_its_own_binaries_and_moves_the_major_tag_only_forward() {
    let dir = tempfile::tempdir().unwrap();
    let (work, origin) = release_repo(dir.path(), "0.1.0");
    let built = git(&work, &["rev-parse", "HEAD"]);
    let binary = dir.path().join("bin");
    std::fs::write(&binary, "#!/bin/sh\necho margo-gitops\n").unwrap();
    let dist = |v: &str| {
        let d = dir.path().join(format!("dist-{v}"));
        write_dist(&d, v, &binary);
        d
    };

    // The version must be Cargo.toml's, and new.
    release(&work, &["check", "0.1.0"]);
    let out = release_try(&work, &["check", "0.2.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cargo.toml says version 0.1.0"));

    // A .sha256 that is not its archive's, or a missing target: nothing is tagged.
    let d = dist("0.1.0");
    let sha_file = d.join("margo-gitops-0.1.0-x86_64-apple-darwin.tar.gz.sha256");
    let good_sha = std::fs::read_to_string(&sha_file).unwrap();
    std::fs::write(&sha_file, format!("{}  x\n", "0".repeat(64))).unwrap();
    let out = release_try(&work, &["tag", "0.1.0", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("but its .sha256 says"));
    std::fs::write(&sha_file, good_sha).unwrap();
    let aarch = d.join("margo-gitops-0.1.0-aarch64-apple-darwin.tar.gz");
    std::fs::rename(&aarch, dir.path().join("aside")).unwrap();
    let out = release_try(&work, &["tag", "0.1.0", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is missing"));
    std::fs::rename(dir.path().join("aside"), &aarch).unwrap();
    assert_eq!(tag_at(&origin, "v0.1.0"), None);
    git(&work, &["reset", "-q", "--hard", &built]);

    // The tag points at a release commit on top of the built one, which pins exactly the
    // archives released; no branch moved at the remote.
    release(&work, &["tag", "0.1.0", d.to_str().unwrap()]);
    let r1 = tag_at(&origin, "v0.1.0").expect("v0.1.0 pushed");
    assert_ne!(r1, built);
    assert_eq!(git(&origin, &["rev-parse", &format!("{r1}^")]), built);
    let pins = git(
        &origin,
        &["show", &format!("{r1}:scripts/action-checksums.txt")],
    );
    assert!(pins.contains("version 0.1.0"), "{pins}");
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        let file = format!("margo-gitops-0.1.0-{target}.tar.gz");
        let sha = crate::util::sha256_file(&d.join(&file));
        assert!(pins.contains(&format!("{sha}  {file}")), "{file} in {pins}");
    }
    assert_eq!(
        git(&origin, &["rev-parse", "refs/heads/main"]),
        built,
        "main did not move"
    );
    assert_eq!(
        tag_at(&origin, "v0"),
        None,
        "the major tag moves in its own step"
    );
    release(&work, &["major", "0.1.0"]);
    assert_eq!(tag_at(&origin, "v0").as_deref(), Some(r1.as_str()));
    // A re-run with the same archives (its release step failed) finds the tag and goes on;
    // other archives for the same version are refused.
    let out = release(&work, &["tag", "0.1.0", d.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("pins exactly these archives"));
    let other = dir.path().join("other");
    std::fs::write(&binary, "#!/bin/sh\necho another build\n").unwrap();
    write_dist(&other, "0.1.0", &binary);
    let out = release_try(&work, &["tag", "0.1.0", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a version is released once");
    assert!(String::from_utf8_lossy(&out.stderr).contains("pins other archives"));
    assert_eq!(tag_at(&origin, "v0.1.0").as_deref(), Some(r1.as_str()));

    // 0.2.0 from a later commit: v0 moves forward to it.
    git(&work, &["reset", "-q", "--hard", &built]);
    bump(&work, "0.2.0");
    release(&work, &["tag", "0.2.0", dist("0.2.0").to_str().unwrap()]);
    release(&work, &["major", "0.2.0"]);
    let r2 = tag_at(&origin, "v0.2.0").unwrap();
    assert_eq!(tag_at(&origin, "v0").as_deref(), Some(r2.as_str()));

    // 0.1.1, a patch of the older line: tagged, but v0 stays at 0.2.0.
    git(&work, &["checkout", "-q", "-B", "line-0.1", &built]);
    bump(&work, "0.1.1");
    release(&work, &["tag", "0.1.1", dist("0.1.1").to_str().unwrap()]);
    let out = release(&work, &["major", "0.1.1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("v0 stays at v0.2.0"));
    assert_eq!(tag_at(&origin, "v0").as_deref(), Some(r2.as_str()));
    assert!(tag_at(&origin, "v0.1.1").is_some());

    // A major tag someone moved to a commit that is not a release (one that pins nothing,
    // one without the checksum file at all): nothing moves, and the step says why.
    git(&work, &["rm", "-q", "scripts/action-checksums.txt"]);
    git(&work, &["commit", "-q", "-m", "no pins at all"]);
    let bare = git(&work, &["rev-parse", "HEAD"]);
    for wrong in [&built, &bare] {
        git(&work, &["tag", "-f", "v0", wrong]);
        git(&work, &["push", "-q", "--force", "origin", "refs/tags/v0"]);
        let out = release_try(&work, &["major", "0.2.0"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a release commit"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(tag_at(&origin, "v0").as_deref(), Some(wrong.as_str()));
    }
}
