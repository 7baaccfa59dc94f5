//! Paths that must stay inside their folder: the files a package carries, named relative
//! to the app folder. No absolute paths, no `..` out of the folder, no link that leads
//! out of it; what passes is normalised (no `.`, no `..`).

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UnsafePath {
    #[error(
        "`{0}` is an absolute path; files in a package must be given relative to the app folder"
    )]
    Absolute(PathBuf),
    #[error("`{0}` uses `..` to leave the app folder")]
    Escapes(PathBuf),
    #[error("`{0}` names the app folder itself, not a file")]
    TheFolderItself(PathBuf),
    #[error("`{path}` cannot be resolved: {why}")]
    Unresolvable { path: PathBuf, why: String },
    #[error("`{path}` is a link that points outside the app folder, to {to}")]
    LinkOutside { path: PathBuf, to: PathBuf },
    #[error("cannot read {path}: {why}")]
    Unreadable { path: PathBuf, why: String },
}

/// Checks that `p`, relative to `base`, stays inside `base`, following links; returns it
/// normalised.
pub(crate) fn safe_relative(base: &Path, p: &Path) -> Result<PathBuf, UnsafePath> {
    if p.is_absolute() || p.has_root() {
        return Err(UnsafePath::Absolute(p.to_path_buf()));
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(UnsafePath::Escapes(p.to_path_buf()));
                }
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::Prefix(_) => {
                unreachable!("absolute paths refused above")
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(UnsafePath::TheFolderItself(p.to_path_buf()));
    }
    let full = base.join(&out);
    if full.symlink_metadata().is_ok() {
        let unresolvable = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| UnsafePath::Unresolvable {
                path,
                why: e.to_string(),
            }
        };
        let real = full.canonicalize().map_err(unresolvable(p))?;
        let real_base = base.canonicalize().map_err(unresolvable(base))?;
        if !real.starts_with(&real_base) {
            return Err(UnsafePath::LinkOutside {
                path: p.to_path_buf(),
                to: real,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_normalised_and_confined() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.env"), "X=1").unwrap();
        assert_eq!(
            safe_relative(dir.path(), Path::new("./x/../a.env")).unwrap(),
            PathBuf::from("a.env")
        );
        assert!(safe_relative(dir.path(), Path::new("../a.env"))
            .unwrap_err()
            .to_string()
            .contains(".."));
        assert!(safe_relative(dir.path(), Path::new("/etc/passwd"))
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        assert!(matches!(
            safe_relative(dir.path(), Path::new("x/..")),
            Err(UnsafePath::TheFolderItself(_))
        ));
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
            assert!(safe_relative(dir.path(), Path::new("link"))
                .unwrap_err()
                .to_string()
                .contains("outside"));
        }
    }
}
