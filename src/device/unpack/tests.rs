use super::*;

use proptest::prelude::*;

/// A tar stream of raw headers, so that names and types no well-behaved writer would
/// produce can be made.
struct Raw(tar::Builder<Vec<u8>>);

impl Raw {
    fn new() -> Raw {
        Raw(tar::Builder::new(Vec::new()))
    }

    fn entry(mut self, name: &str, kind: tar::EntryType, link: Option<&str>, body: &[u8]) -> Raw {
        let mut h = tar::Header::new_old();
        {
            let bytes = h.as_old_mut();
            bytes.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                bytes.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
        }
        h.set_entry_type(kind);
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        self.0.append(&h, body).unwrap();
        self
    }

    fn file(self, name: &str, body: &[u8]) -> Raw {
        self.entry(name, tar::EntryType::Regular, None, body)
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn run(tar: Vec<u8>) -> (tempfile::TempDir, Result<Unpacked>) {
    let dir = tempfile::tempdir().unwrap();
    let r = unpack(&tar[..], &dir.path().join("stage"), Limits::default());
    (dir, r)
}

fn refused(tar: Vec<u8>) -> String {
    let (dir, r) = run(tar);
    assert!(
        !dir.path().join("stage").exists(),
        "the staging folder is removed"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written beside it"
    );
    r.unwrap_err().to_string()
}

#[test]
fn files_folders_and_links_inside_are_unpacked() {
    let tar = Raw::new()
        .entry("app/", tar::EntryType::Directory, None, b"")
        .file("app/compose.yaml", b"services: {}\n")
        .entry(
            "app/current",
            tar::EntryType::Symlink,
            Some("compose.yaml"),
            b"",
        )
        .entry(
            "app/copy",
            tar::EntryType::Link,
            Some("app/compose.yaml"),
            b"",
        )
        .entry(
            "app/cfg/up",
            tar::EntryType::Symlink,
            Some("../compose.yaml"),
            b"",
        )
        .bytes();
    let (dir, r) = run(tar);
    let done = r.unwrap();
    let stage = dir.path().join("stage");
    assert_eq!(done.entries, 5);
    assert_eq!(
        std::fs::read(stage.join("app/copy")).unwrap(),
        b"services: {}\n"
    );
    assert_eq!(
        std::fs::read(stage.join("app/cfg/up")).unwrap(),
        b"services: {}\n"
    );
}

#[test]
fn each_way_out_is_refused_with_the_entry_name() {
    for (tar, expected) in [
        (
            Raw::new().file("../x", b"x").bytes(),
            "entry `../x`: absolute or leads out",
        ),
        (
            Raw::new().file("/etc/x", b"x").bytes(),
            "entry `/etc/x`: absolute",
        ),
        (
            Raw::new().file("a/../../x", b"x").bytes(),
            "entry `a/../../x`",
        ),
        (
            Raw::new()
                .entry("app/out", tar::EntryType::Symlink, Some("../../etc"), b"")
                .bytes(),
            "entry `app/out`: a symbolic link to `../../etc`, out of the folder",
        ),
        (
            Raw::new()
                .entry("abs", tar::EntryType::Symlink, Some("/etc/passwd"), b"")
                .bytes(),
            "entry `abs`: a symbolic link to `/etc/passwd`",
        ),
        (
            Raw::new()
                .entry("d", tar::EntryType::Symlink, Some("."), b"")
                .file("d/x", b"x")
                .bytes(),
            "entry `d/x`: lies under a symbolic link",
        ),
        (
            Raw::new()
                .entry("h", tar::EntryType::Link, Some("/etc/passwd"), b"")
                .bytes(),
            "entry `h`: a hard link to `/etc/passwd`",
        ),
        (
            Raw::new()
                .entry("dev", tar::EntryType::Char, None, b"")
                .bytes(),
            "entry `dev`: a character device",
        ),
        (
            Raw::new()
                .entry("pipe", tar::EntryType::Fifo, None, b"")
                .bytes(),
            "entry `pipe`: a FIFO",
        ),
        (
            Raw::new().file("x", b"1").file("x", b"2").bytes(),
            "entry `x`: appears twice",
        ),
    ] {
        let why = refused(tar);
        assert!(why.contains(expected), "{expected} in: {why}");
    }
}

#[test]
fn limits_on_entries_and_bytes() {
    let mut raw = Raw::new();
    for i in 0..30 {
        raw = raw.file(&format!("f{i}"), b"");
    }
    let tar = raw.bytes();
    let dir = tempfile::tempdir().unwrap();
    let few = Limits {
        entries: 20,
        bytes: 1 << 20,
    };
    let why = unpack(&tar[..], &dir.path().join("s"), few)
        .unwrap_err()
        .to_string();
    assert!(why.contains("more than 20 entries"), "{why}");
    assert!(!dir.path().join("s").exists());

    let tar = Raw::new().file("big", &[0u8; 2048]).bytes();
    let small = Limits {
        entries: 20,
        bytes: 1024,
    };
    let why = unpack(&tar[..], &dir.path().join("s"), small)
        .unwrap_err()
        .to_string();
    assert!(
        why.contains("entry `big`") && why.contains("more than 1024 bytes"),
        "{why}"
    );
}

#[test]
fn modes_are_plain() {
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o4777);
    h.set_entry_type(tar::EntryType::Regular);
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, "suid", &b"x"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let (dir, r) = run(tar);
    r.unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("stage/suid"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random bytes, and random mutations of a valid archive: never a panic, and nothing
    /// outside the staging folder.
    #[test]
    fn random_input_never_escapes(
        noise in proptest::collection::vec(any::<u8>(), 0..4096),
        flips in proptest::collection::vec((0usize..3072, any::<u8>()), 0..24),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let _ = unpack(&noise[..], &dir.path().join("a"), Limits::default());
        let mut tar = Raw::new()
            .entry("app/", tar::EntryType::Directory, None, b"")
            .file("app/compose.yaml", b"services: {}\n")
            .entry("app/l", tar::EntryType::Symlink, Some("compose.yaml"), b"")
            .bytes();
        for (at, byte) in flips {
            let i = at % tar.len();
            tar[i] = byte;
        }
        let _ = unpack(&tar[..], &dir.path().join("b"), Limits::default());
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name();
            prop_assert!(name == "a" || name == "b", "wrote {:?} outside", name);
        }
    }
}
