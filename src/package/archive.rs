//! Reproducible tar and gzip streams.
//!
//! [`TarWriter`] writes ustar entries with fixed owner (0:0, no names), fixed modes and one
//! mtime, and streams each file's bytes with its size declared up front, so a tar can be
//! nested inside another without a temporary file ([`tar_size`] tells the outer entry's
//! size). [`GzipWriter`] is a single-member gzip stream that can store runs of bytes
//! uncompressed: already-compressed image layers are stored, not compressed again,
//! while text is compressed hard. The gzip header carries no name and no time. Sorting
//! the entries is the caller's job.

use std::io::{self, Read, Write};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

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

/// A gzip stream (RFC 1952, one member) that can store runs of data without compressing
/// them: [`GzipWriter::set_stored`] switches between deflate and stored blocks.
///
/// Changing the deflate level mid-stream is not reliable across zlib implementations, so
/// stored runs are written here as raw stored blocks (each at most 65,535 bytes, filled
/// completely, so block boundaries do not depend on how the caller chunks its writes),
/// after a sync flush that byte-aligns the stream; the compressor is reset afterwards so
/// that no later match reaches back into the stored bytes.
pub(crate) struct GzipWriter<W: Write> {
    out: W,
    compress: Compress,
    crc: Crc,
    buf: Vec<u8>,
    stored: Option<Vec<u8>>,
}

const STORED_MAX: usize = 65_535;

impl<W: Write> GzipWriter<W> {
    pub(crate) fn new(mut out: W, level: Compression) -> io::Result<Self> {
        // Magic, deflate, no flags, mtime 0, no extra flags, OS unknown: the same bytes anywhere.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(GzipWriter {
            out,
            compress: Compress::new(level, false),
            crc: Crc::new(),
            buf: Vec::with_capacity(256 << 10),
            stored: None,
        })
    }

    fn deflate(&mut self, mut input: &[u8], flush: FlushCompress) -> io::Result<Status> {
        loop {
            self.buf.clear();
            let before_in = self.compress.total_in();
            let status = self
                .compress
                .compress_vec(input, &mut self.buf, flush)
                .map_err(io::Error::other)?;
            let consumed = (self.compress.total_in() - before_in) as usize;
            input = &input[consumed..];
            self.out.write_all(&self.buf)?;
            let buffer_full = self.buf.len() == self.buf.capacity();
            if status == Status::StreamEnd || (input.is_empty() && !buffer_full) {
                return Ok(status);
            }
        }
    }

    fn emit_stored(&mut self, data: &[u8]) -> io::Result<()> {
        let len = data.len() as u16;
        // BFINAL=0, BTYPE=00, padded to the byte; then LEN and its complement.
        let mut head = [0u8; 5];
        head[1..3].copy_from_slice(&len.to_le_bytes());
        head[3..5].copy_from_slice(&(!len).to_le_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(data)
    }

    fn flush_stored(&mut self) -> io::Result<()> {
        if let Some(pending) = self.stored.take() {
            if !pending.is_empty() {
                self.emit_stored(&pending)?;
            }
            self.compress.reset();
        }
        Ok(())
    }

    /// Stores what follows without compressing it (`true`), or compresses again (`false`).
    pub(crate) fn set_stored(&mut self, stored: bool) -> io::Result<()> {
        match (stored, self.stored.is_some()) {
            (true, false) => {
                self.deflate(&[], FlushCompress::Sync)?;
                self.stored = Some(Vec::with_capacity(STORED_MAX));
            }
            (false, true) => self.flush_stored()?,
            _ => {}
        }
        Ok(())
    }

    /// Ends the stream with its checksum and length; returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.flush_stored()?;
        while self.deflate(&[], FlushCompress::Finish)? != Status::StreamEnd {}
        let crc = self.crc.sum().to_le_bytes();
        let len = self.crc.amount().to_le_bytes();
        self.out.write_all(&crc)?;
        self.out.write_all(&len)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        match self.stored.take() {
            None => {
                self.deflate(data, FlushCompress::None)?;
            }
            Some(mut pending) => {
                let mut rest = data;
                while !rest.is_empty() {
                    let take = (STORED_MAX - pending.len()).min(rest.len());
                    pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if pending.len() == STORED_MAX {
                        self.emit_stored(&pending)?;
                        pending.clear();
                    }
                }
                self.stored = Some(pending);
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
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

    #[test]
    fn gzip_round_trips_across_level_changes_and_is_deterministic() {
        let make = || {
            let mut gz = GzipWriter::new(Vec::new(), Compression::best()).unwrap();
            gz.write_all(b"hello ").unwrap();
            gz.set_stored(true).unwrap();
            gz.write_all(&[7u8; 100_000]).unwrap();
            gz.write_all(b"hello hello").unwrap();
            gz.set_stored(false).unwrap();
            gz.write_all(b"hello world").unwrap();
            gz.finish().unwrap()
        };
        let a = make();
        assert_eq!(a, make());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 100_028);
        assert!(out.starts_with(b"hello ") && out.ends_with(b"hello hellohello world"));
        // The stored run really is stored: 100 kB of one byte would deflate to almost nothing.
        assert!(a.len() > 100_000);
    }
}
