//! An OCI image-layout folder as a store: `oci-layout`, `index.json`, `blobs/sha256/…`.
//!
//! Tags are `org.opencontainers.image.ref.name` annotations on `index.json` entries, as
//! skopeo (`oci:PATH:TAG`) and umoci read them. Blobs are written to a temporary file,
//! checked, then renamed into place, and `index.json` is replaced by rename, so a
//! reader never sees a half-written blob or index.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::oci::digest::{Digest, Verifier};
use crate::oci::manifest::Manifest;
use crate::oci::media;
use crate::progress::Progress;

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";

pub(crate) struct LayoutStore {
    root: PathBuf,
    /// Whether blobs are synced to disk before they get their name (not in a cache).
    durable: bool,
    arrivals: Arrivals,
}

/// The blobs of this run: those written here after their digest was checked (read back
/// within the run, they need not be hashed again) and those still on their way, which a
/// reader can wait for while they are fetched.
#[derive(Default)]
struct Arrivals {
    state: Mutex<ArrivalState>,
    arrived: Condvar,
}

#[derive(Default)]
struct ArrivalState {
    checked: HashSet<Digest>,
    coming: HashSet<Digest>,
    abandoned: bool,
}

impl Arrivals {
    fn state(&self) -> MutexGuard<'_, ArrivalState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LayoutStore {
    /// Opens an existing layout folder.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let marker = root.join(LAYOUT_FILE);
        if !marker.is_file() {
            return Err(Error::NotFound {
                what: format!("OCI layout {}", root.display()),
                hint: Some("the folder has no `oci-layout` file; check the path".into()),
            });
        }
        Ok(LayoutStore {
            root: root.to_path_buf(),
            durable: true,
            arrivals: Arrivals::default(),
        })
    }

    /// Opens a layout folder, creating an empty one when it does not exist.
    pub(crate) fn create(root: &Path) -> Result<Self> {
        if root.join(LAYOUT_FILE).is_file() {
            return Self::open(root);
        }
        if root.exists()
            && fs::read_dir(root)
                .map_err(Error::io("read", root))?
                .next()
                .is_some()
        {
            return Err(Error::Usage(format!(
                "{} exists and is not an OCI layout; choose an empty or new folder",
                root.display()
            )));
        }
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(Error::io("create", &blobs))?;
        write_atomic(
            &root.join(LAYOUT_FILE),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let empty = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []});
        write_atomic(&root.join(INDEX_FILE), &to_json(&empty))?;
        Ok(LayoutStore {
            root: root.to_path_buf(),
            durable: true,
            arrivals: Arrivals::default(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives in the layout. The digest is validated, so the path stays inside.
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub(crate) fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Copies `file` into the layout, checking it against `digest` and `size`.
    pub(crate) fn put_blob_file(
        &self,
        digest: &Digest,
        size: u64,
        file: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let src = File::open(file).map_err(Error::io("open", file))?;
        self.put_blob_reader(digest, Some(size), src, progress)
    }

    pub(crate) fn put_blob_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.put_blob_reader(digest, Some(bytes.len() as u64), bytes, &Progress::hidden())
    }

    /// Streams `reader` into the layout as blob `digest`; nothing is kept if it does not match.
    pub(crate) fn put_blob_reader(
        &self,
        digest: &Digest,
        size: Option<u64>,
        reader: impl Read,
        progress: &Progress,
    ) -> Result<()> {
        let dest = self.blob_path(digest);
        copy_verified(
            reader,
            &dest,
            digest,
            size,
            &format!("blob {digest}"),
            progress,
            self.durable,
        )?;
        self.checked(digest);
        Ok(())
    }

    /// Records that blob `digest`, now in the layout, was checked by this run.
    pub(crate) fn checked(&self, digest: &Digest) {
        let mut state = self.arrivals.state();
        state.coming.remove(digest);
        state.checked.insert(digest.clone());
        self.arrivals.arrived.notify_all();
    }

    /// Whether this run checked blob `digest` when it was written.
    pub(crate) fn was_checked(&self, digest: &Digest) -> bool {
        self.arrivals.state().checked.contains(digest)
    }

    /// Announces that blob `digest` is being fetched into the layout: [`Self::wait_for`]
    /// waits until [`Self::checked`] records it, or [`Self::abandon`] gives up on it.
    pub(crate) fn expect(&self, digest: &Digest) {
        self.arrivals.state().coming.insert(digest.clone());
    }

    /// Gives up on every blob still expected: whoever waits for one stops waiting.
    pub(crate) fn abandon(&self) {
        self.arrivals.state().abandoned = true;
        self.arrivals.arrived.notify_all();
    }

    /// Waits until blob `digest`, when it is expected, has arrived (a thread's wait: call
    /// it off the async threads). Blobs not expected are there or not, as they are.
    pub(crate) fn wait_for(&self, digest: &Digest) -> Result<()> {
        let mut state = self.arrivals.state();
        while state.coming.contains(digest) {
            if state.abandoned {
                return Err(Error::NotFound {
                    what: format!("blob {digest} (its download failed)"),
                    hint: None,
                });
            }
            state = self
                .arrivals
                .arrived
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// This layout as a cache: blobs are not synced to disk as they are written, since
    /// every read checks them (blobs of a previous run included) and a lost one is fetched
    /// again.
    pub(crate) fn into_cache(mut self) -> Self {
        self.durable = false;
        self
    }

    /// Copies a blob out of the layout to `dest`, checking it on the way; `dest` (a cache
    /// or a temporary file) is not synced to disk.
    pub(crate) fn copy_blob_to_file(
        &self,
        digest: &Digest,
        size: Option<u64>,
        dest: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let src = self.open_blob(digest)?;
        copy_verified(
            src,
            dest,
            digest,
            size,
            &format!("blob {digest} in {}", self.root.display()),
            progress,
            false,
        )
    }

    /// Opens a blob for reading. Callers that read it whole must check its digest.
    pub(crate) fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound {
                    what: format!("blob {digest} in {}", self.root.display()),
                    hint: None,
                }
            } else {
                Error::io("open", &path)(e)
            }
        })
    }

    pub(crate) fn read_blob_bytes(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let path = self.blob_path(digest);
        self.open_blob(digest)?
            .take(super::manifest::MAX_SMALL_BLOB + 1)
            .read_to_end(&mut bytes)
            .map_err(Error::io("read", &path))?;
        let mut v = Verifier::new(
            format!("blob {digest} in {}", self.root.display()),
            digest,
            size,
        );
        v.update(&bytes)?;
        v.finish()?;
        Ok(bytes)
    }

    fn index(&self) -> Result<Value> {
        let path = self.root.join(INDEX_FILE);
        let text = fs::read(&path).map_err(Error::io("read", &path))?;
        let index: Value = serde_json::from_slice(&text)
            .map_err(|e| Error::invalid_file(&path, Some(e.line()), format!("not JSON: {e}")))?;
        if !index["manifests"].is_array() {
            return Err(Error::invalid_file(
                &path,
                None,
                "`manifests` is not a list",
            ));
        }
        Ok(index)
    }

    fn entries(&self) -> Result<Vec<Value>> {
        Ok(self.index()?["manifests"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// The manifest a tag or digest names in this layout.
    pub(crate) fn manifest(&self, selector: &str) -> Result<Option<Manifest>> {
        let entries = self.entries()?;
        let entry = if selector.starts_with("sha256:") {
            let digest: Digest = selector.parse()?;
            match entries.iter().rev().find(|e| e["digest"] == selector) {
                Some(e) => Some(e.clone()),
                None if self.has_blob(&digest) => Some(json!({"digest": selector})),
                None => None,
            }
        } else {
            entries
                .iter()
                .rev()
                .find(|e| e["annotations"][media::ANN_REF_NAME] == selector)
                .cloned()
        };
        let Some(entry) = entry else { return Ok(None) };
        let digest: Digest = entry["digest"].as_str().unwrap_or_default().parse()?;
        let size = entry["size"].as_u64();
        let bytes = self.read_blob_bytes(&digest, size)?;
        Manifest::from_bytes(bytes, entry["mediaType"].as_str()).map(Some)
    }

    /// Stores the manifest as a blob and records it in `index.json`, under `tag` when given.
    pub(crate) fn put_manifest(&self, manifest: &Manifest, tag: Option<&str>) -> Result<()> {
        if !self.has_blob(&manifest.digest) {
            self.put_blob_bytes(&manifest.digest, &manifest.bytes)?;
        }
        let mut index = self.index()?;
        let entries = index["manifests"]
            .as_array_mut()
            .expect("checked in index()");
        let mut entry = json!({
            "mediaType": manifest.media_type,
            "digest": manifest.digest.to_string(),
            "size": manifest.bytes.len(),
        });
        match tag {
            Some(tag) => {
                entries.retain(|e| e["annotations"][media::ANN_REF_NAME] != tag);
                entry["annotations"] = json!({ media::ANN_REF_NAME: tag });
            }
            None => {
                if entries
                    .iter()
                    .any(|e| e["digest"] == manifest.digest.as_str())
                {
                    return Ok(());
                }
            }
        }
        entries.push(entry);
        write_atomic(&self.root.join(INDEX_FILE), &to_json(&index))
    }

    pub(crate) fn tags(&self) -> Result<Vec<String>> {
        Ok(self
            .entries()?
            .iter()
            .filter_map(|e| {
                e["annotations"][media::ANN_REF_NAME]
                    .as_str()
                    .map(str::to_string)
            })
            .collect())
    }
}

fn to_json(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("a JSON value serializes");
    out.push(b'\n');
    out
}

/// Streams `reader` to `dest` through a temporary file beside it; renames only when it
/// matches `digest` (and `size`), so `dest` never holds wrong bytes; with `sync`, only once
/// the bytes are on disk.
pub(crate) fn copy_verified(
    mut reader: impl Read,
    dest: &Path,
    digest: &Digest,
    size: Option<u64>,
    what: &str,
    progress: &Progress,
    sync: bool,
) -> Result<()> {
    let mut tmp = temp_beside(dest)?;
    let mut verifier = Verifier::new(what, digest, size);
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("read", what.to_string())(e)),
        };
        verifier.update(&buf[..n])?;
        tmp.write_all(&buf[..n])
            .map_err(Error::io("write", tmp.path()))?;
        progress.advance(n as u64);
    }
    verifier.finish()?;
    readable_by_all(tmp.as_file(), tmp.path())?;
    if sync {
        tmp.as_file()
            .sync_all()
            .map_err(Error::io("write", tmp.path()))?;
    }
    tmp.persist(dest)
        .map_err(|e| Error::io("write", dest)(e.error))?;
    Ok(())
}

/// A temporary file in the folder of `dest` (created when missing), to be renamed onto
/// `dest` once complete: a reader never sees a half-written file under its real name.
pub(crate) fn temp_beside(dest: &Path) -> Result<tempfile::NamedTempFile> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
    tempfile::Builder::new()
        .prefix(".partial-")
        .tempfile_in(dir)
        .map_err(Error::io("create a temporary file in", dir))
}

/// Replaces `path` with `bytes` by writing a temporary file and renaming it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_beside(path)?;
    tmp.write_all(bytes).map_err(Error::io("write", path))?;
    readable_by_all(tmp.as_file(), tmp.path())?;
    tmp.persist(path)
        .map_err(|e| Error::io("write", path)(e.error))?;
    Ok(())
}

/// Temporary files are created private; what lands in a layout is as readable as any file.
pub(crate) fn readable_by_all(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(Error::io("set permissions of", path))?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::new(media::OCI_MANIFEST, text.as_bytes().to_vec())
    }

    /// Files left in the blobs folder: no temporary file may stay behind.
    fn blob_files(l: &LayoutStore) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(l.root().join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_reader_waits_for_an_expected_blob_until_it_arrives_or_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let l = LayoutStore::create(dir.path()).unwrap();
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        l.expect(&a);
        l.expect(&b);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                l.wait_for(&a).unwrap();
                l.has_blob(&a)
            });
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!reader.is_finished(), "it must wait for the blob");
            l.put_blob_bytes(&a, b"a").unwrap();
            assert!(reader.join().unwrap(), "it woke when the blob was there");
        });
        assert!(l.was_checked(&a) && !l.was_checked(&b));
        // Not expected: no wait. Expected and given up: an error, not a hang.
        l.wait_for(&Digest::of(b"c")).unwrap();
        l.abandon();
        assert!(matches!(l.wait_for(&b), Err(Error::NotFound { .. })));
    }

    #[test]
    fn a_new_layout_is_what_skopeo_and_umoci_expect() {
        let dir = tempfile::tempdir().unwrap();
        let l = LayoutStore::create(&dir.path().join("new")).unwrap();
        let marker = fs::read_to_string(l.root().join(LAYOUT_FILE)).unwrap();
        assert_eq!(marker, r#"{"imageLayoutVersion":"1.0.0"}"#);
        let index: Value =
            serde_json::from_slice(&fs::read(l.root().join(INDEX_FILE)).unwrap()).unwrap();
        assert_eq!(index["manifests"], json!([]));
        assert!(l.tags().unwrap().is_empty());
        // Creating it again opens it; a folder that holds something else is refused.
        LayoutStore::create(l.root()).unwrap();
        fs::write(dir.path().join("other.txt"), "x").unwrap();
        assert!(matches!(
            LayoutStore::create(dir.path()),
            Err(Error::Usage(m)) if m.contains("is not an OCI layout")
        ));
        assert!(matches!(
            LayoutStore::open(dir.path()),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn blobs_are_kept_only_when_their_digest_and_size_match() {
        let dir = tempfile::tempdir().unwrap();
        let l = LayoutStore::create(dir.path()).unwrap();
        let good = Digest::of(b"hello");
        l.put_blob_bytes(&good, b"hello").unwrap();
        assert!(l.has_blob(&good));
        assert_eq!(l.read_blob_bytes(&good, Some(5)).unwrap(), b"hello");

        let wrong = Digest::of(b"other");
        assert!(matches!(
            l.put_blob_bytes(&wrong, b"hello"),
            Err(Error::DigestMismatch { .. })
        ));
        let short = Digest::of(b"hello!");
        let src = dir.path().join("src");
        fs::write(&src, b"hello").unwrap();
        assert!(l
            .put_blob_file(&short, 6, &src, &Progress::hidden())
            .is_err());
        assert!(!l.has_blob(&wrong) && !l.has_blob(&short));
        assert_eq!(blob_files(&l), [good.hex()], "no partial file stays");

        // A blob changed on disk is caught when it is read.
        fs::write(l.blob_path(&good), b"HELLO").unwrap();
        assert!(matches!(
            l.read_blob_bytes(&good, None),
            Err(Error::DigestMismatch { .. })
        ));
        let out = dir.path().join("copy");
        assert!(l
            .copy_blob_to_file(&good, Some(5), &out, &Progress::hidden())
            .is_err());
        assert!(
            !out.exists(),
            "wrong bytes never get the destination's name"
        );
    }

    #[test]
    fn manifests_and_tags_live_in_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let l = LayoutStore::create(dir.path()).unwrap();
        let one = manifest(r#"{"schemaVersion":2,"layers":[]}"#);
        let two = manifest(r#"{"schemaVersion":2,"layers":[],"annotations":{}}"#);
        l.put_manifest(&one, None).unwrap();
        l.put_manifest(&one, None).unwrap();
        assert!(l.tags().unwrap().is_empty(), "by digest: no tag");
        let by_digest = l.manifest(one.digest.as_str()).unwrap().unwrap();
        assert_eq!(by_digest.bytes, one.bytes);

        l.put_manifest(&one, Some("1.0.0")).unwrap();
        l.put_manifest(&two, Some("latest")).unwrap();
        assert_eq!(l.manifest("1.0.0").unwrap().unwrap().digest, one.digest);
        // A tag moves: the old entry goes, the new one is found.
        l.put_manifest(&two, Some("1.0.0")).unwrap();
        assert_eq!(l.manifest("1.0.0").unwrap().unwrap().digest, two.digest);
        let mut tags = l.tags().unwrap();
        tags.sort();
        assert_eq!(tags, ["1.0.0", "latest"]);
        assert!(l.manifest("nope").unwrap().is_none());
        assert!(l
            .manifest(Digest::of(b"absent").as_str())
            .unwrap()
            .is_none());

        // A broken index is an error with the file, not a silent empty layout.
        fs::write(dir.path().join(INDEX_FILE), "{").unwrap();
        let e = l.tags().unwrap_err().to_string();
        assert!(e.contains("index.json"), "{e}");
    }
}
