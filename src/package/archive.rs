//! Reproducible tar streams (the gzip around them is [`crate::package::gzip`]).
//!
//! [`TarWriter`] writes ustar entries with fixed owner (0:0, no names), fixed modes and one
//! mtime, and streams each file's bytes with its size declared up front, so a tar can be
//! nested inside another without a temporary file ([`tar_size`] tells the outer entry's
//! size). Sorting the entries is the caller's job.

use std::io::{self, Read, Write};

const BLOCK: u64 = 512;

/// The bytes a file entry of `size` takes in a tar: header plus padded data.
pub(crate) fn entry_size(size: u64) -> u64 {
    BLOCK + size.div_ceil(BLOCK) * BLOCK
}

/// The size of a whole tar holding files of these sizes (directories count as size 0).
pub(crate) fn tar_size(sizes: impl IntoIterator<Item = u64>) -> u64 {
    sizes.into_iter().map(entry_size).sum::<u64>() + 2 * BLOCK
}

pub(crate) struct TarWriter<W: Write> {
    out: W,
    mtime: u64,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W, mtime: u64) -> Self {
        TarWriter { out, mtime }
    }

    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    fn header(
        &self,
        path: &str,
        kind: tar::EntryType,
        mode: u32,
        size: u64,
    ) -> io::Result<tar::Header> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path `{path}` cannot be stored in a tar ({e}); shorten it"),
            )
        })?;
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_username("")?;
        h.set_groupname("")?;
        h.set_cksum();
        Ok(h)
    }

    /// A directory entry; `path` without a trailing slash.
    pub(crate) fn dir(&mut self, path: &str) -> io::Result<()> {
        let h = self.header(&format!("{path}/"), tar::EntryType::Directory, 0o755, 0)?;
        self.out.write_all(h.as_bytes())
    }

    /// Starts a file entry of exactly `size` bytes; write them, then call [`Self::end_file`].
    pub(crate) fn begin_file(&mut self, path: &str, mode: u32, size: u64) -> io::Result<()> {
        let h = self.header(path, tar::EntryType::Regular, mode, size)?;
        self.out.write_all(h.as_bytes())
    }

    /// Pads the file entry of `size` bytes to a whole block.
    pub(crate) fn end_file(&mut self, size: u64) -> io::Result<()> {
        let pad = (BLOCK - size % BLOCK) % BLOCK;
        self.out.write_all(&[0u8; BLOCK as usize][..pad as usize])
    }

    /// A whole file from a reader that must yield exactly `size` bytes.
    pub(crate) fn file(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        reader: impl Read,
    ) -> io::Result<()> {
        self.begin_file(path, mode, size)?;
        let copied = io::copy(&mut reader.take(size), &mut self.out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("`{path}` changed while it was archived: {copied} of {size} bytes"),
            ));
        }
        self.end_file(size)
    }

    pub(crate) fn file_bytes(&mut self, path: &str, mode: u32, bytes: &[u8]) -> io::Result<()> {
        self.file(path, mode, bytes.len() as u64, bytes)
    }

    /// Writes the end-of-archive marker and returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK as usize])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut tar = TarWriter::new(Vec::new(), 1_700_000_000);
        tar.dir("app").unwrap();
        tar.file_bytes("app/compose.yaml", 0o644, b"services: {}\n")
            .unwrap();
        tar.finish().unwrap()
    }

    #[test]
    fn tar_is_readable_and_sized_as_predicted() {
        let bytes = sample();
        assert_eq!(bytes.len() as u64, tar_size([0, 13]));
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["app/", "app/compose.yaml"]);
    }
}
