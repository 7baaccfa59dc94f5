//! Where blobs were seen: for each registry, the repositories we pushed a blob to (or found
//! it in), remembered between runs in the cache folder, so that publishing the same blob
//! to another repository of that registry can mount it there instead of uploading it
//! again. Only blobs worth a mount are recorded (the registry store decides: larger than a
//! one-request upload), so that thousands of small desired-state blobs neither crowd out
//! image layers nor rewrite the file on every upload. It is a hint: a mount the registry refuses falls back to an upload, and losing
//! the file loses nothing but the shortcut.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::oci::digest::Digest;

/// At most this many blobs are remembered per registry, the oldest forgotten first.
const KEEP: usize = 4000;

#[derive(Default, Serialize, Deserialize)]
struct Seen {
    /// registry → (digest, repositories), oldest first.
    registries: BTreeMap<String, VecDeque<(Digest, Vec<String>)>>,
}

/// The remembered locations, read once and written back when they grow.
pub(crate) struct Locations {
    path: Option<PathBuf>,
    seen: Mutex<Seen>,
}

impl Locations {
    /// The locations kept in `dir` (none kept when `dir` is `None`).
    pub(crate) fn load(dir: Option<PathBuf>) -> Locations {
        let path = dir.map(|d| d.join("blob-locations.json"));
        let seen = path
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Locations {
            path,
            seen: Mutex::new(seen),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Repositories of `registry` other than `except` known to hold `digest`, newest first.
    pub(crate) fn holders(&self, registry: &str, digest: &Digest, except: &str) -> Vec<String> {
        let seen = self.seen();
        let Some(list) = seen.registries.get(registry) else {
            return Vec::new();
        };
        list.iter()
            .find(|(d, _)| d == digest)
            .map(|(_, repos)| {
                repos
                    .iter()
                    .rev()
                    .filter(|r| r.as_str() != except)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Remembers that `repository` of `registry` holds `digest`.
    pub(crate) fn record(&self, registry: &str, repository: &str, digest: &Digest) {
        let mut seen = self.seen();
        let list = seen.registries.entry(registry.to_string()).or_default();
        match list.iter_mut().find(|(d, _)| d == digest) {
            Some((_, repos)) if repos.iter().any(|r| r == repository) => return,
            Some((_, repos)) => repos.push(repository.to_string()),
            None => {
                list.push_back((digest.clone(), vec![repository.to_string()]));
                while list.len() > KEEP {
                    list.pop_front();
                }
            }
        }
        if let Some(path) = &self.path {
            if let Ok(bytes) = serde_json::to_vec(&*seen) {
                // A hint only: a file that cannot be written costs the next mount, no more.
                let _ = crate::oci::layout::write_atomic(path, &bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_remembered_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let d = Digest::of(b"layer");
        let l = Locations::load(Some(dir.path().to_path_buf()));
        l.record("reg", "acme/app", &d);
        l.record("reg", "acme/app", &d);
        l.record("reg", "acme/staging", &d);
        let again = Locations::load(Some(dir.path().to_path_buf()));
        assert_eq!(
            again.holders("reg", &d, "acme/prod"),
            ["acme/staging", "acme/app"]
        );
        assert_eq!(again.holders("reg", &d, "acme/app"), ["acme/staging"]);
        assert!(again.holders("other", &d, "x").is_empty());
        assert!(Locations::load(None).holders("reg", &d, "x").is_empty());
    }
}
