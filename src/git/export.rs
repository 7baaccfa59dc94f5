//! A commit written out as files: what the push job packages and builds from, instead of
//! the work tree around the checkout (untracked files, `.git` with a checkout's token).
//! Every entry is created new, so nothing is written through a link, and a link that
//! leads out of the commit, as written or through other links, stops the export.

use std::path::Path;

use super::{git_err, GitRepo};

impl GitRepo {
    /// Writes `commit`'s tree into the empty folder `dest`: files with their executable bit,
    /// symbolic links as links, submodules left out. A push publishes what this holds, the
    /// commit, not the work tree around it (untracked files, a build's leftovers, `.git`
    /// with the credentials a checkout keeps). Nothing is written through a link or over
    /// an entry already written (two names one case-insensitive disk takes for one), and a
    /// link must stay inside the export: each such tree is refused.
    pub fn export(&self, commit: &str, dest: &Path) -> crate::Result<()> {
        self.export_tree(self.tree_of(commit)?, dest, Path::new(""))?;
        // Each link stayed inside as written; through other links it still must.
        links_stay_inside(dest, dest)
    }

    /// Exports `tree` into `dest`, which is `rel` inside the export.
    fn export_tree(&self, tree: gix::ObjectId, dest: &Path, rel: &Path) -> crate::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let tree = self
            .repo
            .find_tree(tree)
            .map_err(|e| git_err("reading a tree", e))?;
        let decoded = tree.decode().map_err(|e| git_err("reading a tree", e))?;
        for entry in &decoded.entries {
            let name = entry.filename.to_string();
            let path = dest.join(&name);
            let refuse = |why: &str| {
                git_err(
                    &rel.join(&name).display().to_string(),
                    format!("{why}: the commit cannot be exported"),
                )
            };
            // git itself refuses such names; a hand-made tree could still hold them.
            if matches!(name.as_str(), "" | "." | "..")
                || name.contains('/')
                || name.eq_ignore_ascii_case(".git")
            {
                return Err(refuse("a tree entry with this name"));
            }
            let oid = entry.oid.to_owned();
            let blob = || -> crate::Result<Vec<u8>> {
                Ok(self
                    .repo
                    .find_blob(oid)
                    .map_err(|e| git_err(&path.display().to_string(), e))?
                    .data
                    .clone())
            };
            // Every entry is created new (O_EXCL): a second entry of the same name, on a
            // disk that ignores case, fails instead of writing through the first.
            let exists = |e: std::io::Error| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    refuse("another entry of the same name on this disk")
                } else {
                    crate::Error::io("create", &path)(e)
                }
            };
            if entry.mode.is_tree() {
                std::fs::create_dir(&path).map_err(exists)?;
                self.export_tree(oid, &path, &rel.join(&name))?;
            } else if entry.mode.is_link() {
                let target = String::from_utf8(blob()?)
                    .map_err(|_| refuse("a link whose target is not UTF-8"))?;
                if !lexically_inside(rel, Path::new(&target)) {
                    return Err(refuse(&format!("a link to `{target}`, outside the commit")));
                }
                std::os::unix::fs::symlink(&target, &path).map_err(exists)?;
            } else if entry.mode.is_blob() {
                let mode = if entry.mode.is_executable() {
                    0o755
                } else {
                    0o644
                };
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(&path)
                    .map_err(exists)?;
                file.write_all(&blob()?)
                    .map_err(crate::Error::io("write", &path))?;
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(crate::Error::io("write", &path))?;
            }
        }
        Ok(())
    }
}

/// Whether `target`, a link's target read from the folder `from` (relative to a root),
/// stays under that root as written.
fn lexically_inside(from: &Path, target: &Path) -> bool {
    if target.has_root() {
        return false;
    }
    let mut depth = from.components().count();
    for c in target.components() {
        match c {
            std::path::Component::ParentDir if depth == 0 => return false,
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

/// Every link under `dir` (`root` is the export) stays inside `root` when followed.
fn links_stay_inside(root: &Path, dir: &Path) -> crate::Result<()> {
    for entry in std::fs::read_dir(dir).map_err(crate::Error::io("read", dir))? {
        let path = entry.map_err(crate::Error::io("read", dir))?.path();
        let meta = path
            .symlink_metadata()
            .map_err(crate::Error::io("read", &path))?;
        if meta.file_type().is_symlink() {
            if leaves(root, &path)? {
                return Err(git_err(
                    &path.strip_prefix(root).unwrap_or(&path).display().to_string(),
                    "a link that leads outside the commit through other links: the commit cannot be exported",
                ));
            }
        } else if meta.is_dir() {
            links_stay_inside(root, &path)?;
        }
    }
    Ok(())
}

/// Whether following the link at `link` step by step, through the links on its way, ever
/// leaves `root` (or loops). A component that does not exist ends the walk's use of the
/// disk: the rest is taken as written, so a link to nothing is judged by where it points.
fn leaves(root: &Path, link: &Path) -> crate::Result<bool> {
    use std::path::Component;
    let names = |p: &Path| -> Vec<std::ffi::OsString> {
        p.components().map(|c| c.as_os_str().to_owned()).collect()
    };
    let mut at = link
        .parent()
        .and_then(|p| p.strip_prefix(root).ok())
        .map(names)
        .unwrap_or_default();
    let target = std::fs::read_link(link).map_err(crate::Error::io("read", link))?;
    if target.has_root() {
        return Ok(true);
    }
    let mut todo: std::collections::VecDeque<_> = names(&target).into();
    let mut hops = 0;
    while let Some(name) = todo.pop_front() {
        match Path::new(&name).components().next() {
            Some(Component::CurDir) | None => {}
            Some(Component::ParentDir) => {
                if at.pop().is_none() {
                    return Ok(true);
                }
            }
            Some(Component::Normal(_)) => {
                let next = at
                    .iter()
                    .fold(root.to_path_buf(), |p, c| p.join(c))
                    .join(&name);
                if next
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink())
                {
                    hops += 1;
                    let t = std::fs::read_link(&next).map_err(crate::Error::io("read", &next))?;
                    if hops > 40 || t.has_root() {
                        return Ok(true); // a loop, as the kernel would say; or absolute
                    }
                    for c in names(&t).into_iter().rev() {
                        todo.push_front(c);
                    }
                } else {
                    at.push(name);
                }
            }
            Some(_) => return Ok(true),
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::GitRepo;

    #[test]
    fn an_export_is_the_commit_with_modes_and_links_and_nothing_else() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(work.join("app/bin")).unwrap();
        std::fs::write(work.join("app/compose.yaml"), "services: {}\n").unwrap();
        std::fs::write(work.join("app/bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            work.join("app/bin/run"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("compose.yaml", work.join("app/link.yaml")).unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .current_dir(&work)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        git(&["init", "-q"]);
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "one"]);
        let commit = git(&["rev-parse", "HEAD"]);
        std::fs::write(work.join("app/compose.yaml"), "changed in the work tree\n").unwrap();
        std::fs::write(work.join("app/untracked"), "x").unwrap();

        let out = dir.path().join("export");
        std::fs::create_dir(&out).unwrap();
        GitRepo::discover(&work)
            .unwrap()
            .export(&commit, &out)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("app/compose.yaml")).unwrap(),
            "services: {}\n"
        );
        let mode = |p: &str| std::fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("app/bin/run"), 0o755);
        assert_eq!(mode("app/compose.yaml"), 0o644);
        assert_eq!(
            std::fs::read_link(out.join("app/link.yaml")).unwrap(),
            std::path::Path::new("compose.yaml")
        );
        assert!(!out.join("app/untracked").exists() && !out.join(".git").exists());

        // Links out of the commit, as written or through another link, are refused.
        for (name, target) in [("abs", "/etc"), ("up", "../../outside")] {
            std::fs::remove_file(work.join("app/link.yaml")).unwrap();
            std::os::unix::fs::symlink(target, work.join("app/link.yaml")).unwrap();
            git(&["commit", "-q", "-am", name]);
            let out = dir.path().join(name);
            std::fs::create_dir(&out).unwrap();
            let err = GitRepo::discover(&work)
                .unwrap()
                .export(&git(&["rev-parse", "HEAD"]), &out)
                .unwrap_err();
            assert!(err.to_string().contains("outside the commit"), "{err}");
        }
        std::fs::remove_file(work.join("app/link.yaml")).unwrap();
        std::fs::create_dir_all(work.join("app/d")).unwrap();
        std::os::unix::fs::symlink("..", work.join("app/d/s")).unwrap();
        std::os::unix::fs::symlink("d/s/d/s/../../../..", work.join("app/chain")).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "chain"]);
        let out = dir.path().join("chain");
        std::fs::create_dir(&out).unwrap();
        let err = GitRepo::discover(&work)
            .unwrap()
            .export(&git(&["rev-parse", "HEAD"]), &out)
            .unwrap_err();
        assert!(err.to_string().contains("through other links"), "{err}");
        // The same to a file that does not exist there; a link to nothing inside passes.
        std::fs::remove_file(work.join("app/chain")).unwrap();
        std::os::unix::fs::symlink("d/s/d/s/../../../../nope", work.join("app/chain")).unwrap();
        std::os::unix::fs::symlink("later/made.txt", work.join("app/dangling")).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "dangling"]);
        let out = dir.path().join("dangling");
        std::fs::create_dir(&out).unwrap();
        let repo = GitRepo::discover(&work).unwrap();
        let err = repo.export(&git(&["rev-parse", "HEAD"]), &out).unwrap_err();
        assert!(err.to_string().contains("app/chain"), "{err}");
        std::fs::remove_file(work.join("app/chain")).unwrap();
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "no chain"]);
        let out = dir.path().join("ok");
        std::fs::create_dir(&out).unwrap();
        repo.export(&git(&["rev-parse", "HEAD"]), &out).unwrap();
        assert!(out.join("app/dangling").symlink_metadata().is_ok());
    }
}
