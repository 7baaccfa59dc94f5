//! Unpacking a package archive on a device, where the archive is input from the network:
//! every entry is checked before anything is written, and everything lands in a fresh
//! staging folder that the caller renames into place only when all of it succeeded.
//!
//! Refused, each with the entry's name: absolute paths and `..` components; devices,
//! FIFOs and any other type than files, folders and links; symbolic links whose target
//! is absolute or leads out of the folder; hard links to anything but a file already
//! unpacked; entries under a symbolic link (a link inside may not become a way out);
//! the same path twice; more than [`Limits::entries`] entries or more than
//! [`Limits::bytes`] bytes in all. Files are written with mode 0644 (0755 when executable),
//! folders 0755: no set-id bits, no owner taken from the archive.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// How much one archive may hold.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub entries: usize,
    pub bytes: u64,
}

impl Default for Limits {
    /// 20,000 entries and 16 GiB: a compose app with its image archives fits many times
    /// over; an archive bomb does not.
    fn default() -> Self {
        Limits {
            entries: 20_000,
            bytes: 16 << 30,
        }
    }
}

/// What was unpacked.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub entries: usize,
    pub bytes: u64,
}

/// Unpacks the gzip-compressed tar `archive` into `dest`, which must not exist yet.
/// On any refusal `dest` is removed again and the error names the entry.
pub fn unpack_file(archive: &Path, dest: &Path, limits: Limits) -> Result<Unpacked> {
    let file = fs::File::open(archive).map_err(Error::io("read", archive))?;
    unpack(flate2::read::GzDecoder::new(file), dest, limits)
        .map_err(|e| e.in_context(&format!("package archive {}", archive.display())))
}

/// Unpacks a tar stream into `dest` (created; it must not exist).
pub fn unpack(reader: impl Read, dest: &Path, limits: Limits) -> Result<Unpacked> {
    fs::create_dir(dest).map_err(Error::io("create", dest))?;
    let result = unpack_into(reader, dest, limits);
    if result.is_err() {
        let _ = fs::remove_dir_all(dest);
    }
    result
}

fn unpack_into(reader: impl Read, dest: &Path, limits: Limits) -> Result<Unpacked> {
    let mut tar = tar::Archive::new(reader);
    let mut done = Unpacked::default();
    let mut seen = BTreeSet::new();
    let mut links = BTreeSet::new();
    let broken = |e: io::Error| Error::invalid(format!("not a readable tar archive: {e}"));
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        done.entries += 1;
        if done.entries > limits.entries {
            return Err(Error::invalid(format!(
                "more than {} entries: refused",
                limits.entries
            )));
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let refuse = |why: &str| Error::invalid(format!("entry `{name}`: {why}"));
        let rel = relative(&raw).ok_or_else(|| refuse("absolute or leads out with `..`"))?;
        if rel.as_os_str().is_empty() {
            continue; // `./`
        }
        if rel.ancestors().skip(1).any(|a| links.contains(a)) {
            return Err(refuse("lies under a symbolic link"));
        }
        if !seen.insert(rel.clone()) {
            return Err(refuse("appears twice"));
        }
        let target = dest.join(&rel);
        let kind = entry.header().entry_type();
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        if kind.is_dir() {
            fs::create_dir_all(&target).map_err(Error::io("create", &target))?;
        } else if kind.is_file() {
            let size = entry.header().size().map_err(broken)?;
            done.bytes = done.bytes.saturating_add(size);
            if done.bytes > limits.bytes {
                return Err(refuse(&format!(
                    "the archive holds more than {} bytes: refused",
                    limits.bytes
                )));
            }
            let mode = entry.header().mode().unwrap_or(0o644);
            write_file(&mut entry, &target, size, mode).map_err(Error::io("write", &target))?;
        } else if kind.is_symlink() || kind.is_hard_link() {
            let to = entry
                .link_name_bytes()
                .ok_or_else(|| refuse("a link without a target"))?;
            link(kind.is_symlink(), &rel, &to, dest, (&seen, &links))
                .map_err(|why| refuse(&why.to_string()))?;
            if kind.is_symlink() {
                links.insert(rel);
            }
        } else {
            return Err(refuse(&format!(
                "a {} (only files, folders and links are unpacked)",
                kind_name(kind)
            )));
        }
    }
    Ok(done)
}

/// Makes the link `rel` → `to`: a symbolic link that stays inside, or a hard link to a
/// file unpacked before it (copied); the reason when it is neither.
fn link(
    symbolic: bool,
    rel: &Path,
    to: &[u8],
    dest: &Path,
    (seen, links): (&BTreeSet<PathBuf>, &BTreeSet<PathBuf>),
) -> io::Result<()> {
    let target = dest.join(rel);
    let shown = String::from_utf8_lossy(to).into_owned();
    let refused = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
    if symbolic {
        if !stays_inside(rel, Path::new(&shown)) {
            return Err(refused(format!(
                "a symbolic link to `{shown}`, out of the folder"
            )));
        }
        return std::os::unix::fs::symlink(&shown, &target);
    }
    let from = relative(to)
        .filter(|p| seen.contains(p) && !links.contains(p) && dest.join(p).is_file())
        .ok_or_else(|| {
            refused(format!(
                "a hard link to `{shown}`, not a file unpacked before it"
            ))
        })?;
    fs::copy(dest.join(from), &target).map(|_| ())
}

/// `raw` as a relative path of normal components (`.` dropped); `None` when absolute or
/// when a component is `..`.
fn relative(raw: &[u8]) -> Option<PathBuf> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut out = PathBuf::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

/// True when a symbolic link at `at` (relative to the folder) pointing to `to` resolves,
/// lexically, inside the folder.
fn stays_inside(at: &Path, to: &Path) -> bool {
    if to.is_absolute() {
        return false;
    }
    let mut depth: Vec<&std::ffi::OsStr> =
        at.parent().map(|p| p.iter().collect()).unwrap_or_default();
    for c in to.components() {
        match c {
            Component::Normal(p) => depth.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

fn write_file(entry: &mut impl Read, target: &Path, size: u64, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if mode & 0o111 != 0 { 0o755 } else { 0o644 })
        .open(target)?;
    let copied = io::copy(&mut entry.take(size), &mut out)?;
    if copied != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the archive ends {} bytes early", size - copied),
        ));
    }
    Ok(())
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

#[cfg(test)]
mod tests;
