//! Content digests: parsing `sha256:<hex>`, hashing bytes and streams, checking them.
//!
//! Every blob margo-gitops reads is hashed while it streams and compared with the digest
//! that named it; [`Verifier`] does the comparing so that no caller forgets to.
//! Only sha256 is produced; other algorithms are refused, because a digest is also a
//! file name in an OCI layout and must never be able to climb out of `blobs/`.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A validated `sha256:<64 lower-case hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The sha256 digest of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// The hex part, which is also the blob's file name in an OCI layout.
    pub(crate) fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// `sha256-<hex>`: the form used in tag names and file names.
    pub(crate) fn dashed(&self) -> String {
        format!("sha256-{}", self.hex())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("sha256:").ok_or_else(|| {
            Error::invalid(format!(
                "digest `{s}` is not a sha256 digest (sha256:<64 hex>)"
            ))
        })?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(Error::invalid(format!(
                "digest `{s}` is malformed: expected sha256: and 64 lower-case hex digits"
            )));
        }
        Ok(Digest(s.to_string()))
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes a stream of chunks and checks it against an expected digest and size.
pub(crate) struct Verifier {
    what: String,
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Sha256,
    seen: u64,
}

impl Verifier {
    pub(crate) fn new(
        what: impl Into<String>,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Self {
        Verifier {
            what: what.into(),
            expected: expected.clone(),
            expected_size,
            hasher: Sha256::new(),
            seen: 0,
        }
    }

    pub(crate) fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.hasher.update(chunk);
        self.seen += chunk.len() as u64;
        match self.expected_size {
            Some(size) if self.seen > size => Err(self.size_error()),
            _ => Ok(()),
        }
    }

    fn size_error(&self) -> Error {
        Error::DigestMismatch {
            what: self.what.clone(),
            expected: format!(
                "{} ({} bytes)",
                self.expected,
                self.expected_size.unwrap_or(0)
            ),
            actual: format!("{} bytes so far", self.seen),
        }
    }

    /// Fails unless every byte arrived and the digest matches.
    pub(crate) fn finish(self) -> Result<u64, Error> {
        if let Some(size) = self.expected_size {
            if self.seen != size {
                return Err(self.size_error());
            }
        }
        let actual = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        if actual != self.expected.0 {
            return Err(Error::DigestMismatch {
                what: self.what,
                expected: self.expected.0,
                actual,
            });
        }
        Ok(self.seen)
    }
}

/// A writer that hashes and counts what passes through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The digest and size of everything written, and the inner writer.
    pub(crate) fn finish(self) -> (Digest, u64, W) {
        let digest = Digest(format!("sha256:{}", hex::encode(self.hasher.finalize())));
        (digest, self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that hashes and writes on a thread of its own, so that hashing a large output
/// overlaps with producing it. Writes are gathered into chunks of [`HashingThread::CHUNK`]
/// that are handed over whole (no writer in front of it needs a buffer).
pub(crate) struct HashingThread<W: Write + Send + 'static> {
    buf: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<io::Result<(Digest, u64, W)>>>,
}

impl<W: Write + Send + 'static> HashingThread<W> {
    const CHUNK: usize = 1 << 20;

    pub(crate) fn new(inner: W) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let worker = std::thread::spawn(move || {
            let mut w = HashingWriter::new(inner);
            for chunk in rx {
                w.write_all(&chunk)?;
            }
            w.flush()?;
            Ok(w.finish())
        });
        HashingThread {
            buf: Vec::with_capacity(Self::CHUNK),
            tx: Some(tx),
            worker: Some(worker),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::CHUNK));
        match self.tx.as_ref().map(|tx| tx.send(chunk)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The digest and size of everything written, and the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64, W)> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        drop(self.tx.take());
        self.worker
            .take()
            .ok_or_else(|| io::Error::other("the hashing thread stopped"))?
            .join()
            .map_err(|_| io::Error::other("the hashing thread stopped"))?
    }

    fn stopped(&mut self) -> io::Error {
        // The worker stopped on an error of the inner writer: that error.
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the hashing thread stopped"),
        }
    }
}

impl<W: Write + Send + 'static> Write for HashingThread<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = (Self::CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == Self::CHUNK {
            self.send()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes a whole reader; returns its digest and size.
pub(crate) fn digest_reader(mut reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut w = HashingWriter::new(io::sink());
    io::copy(&mut reader, &mut w)?;
    let (d, n, _) = w.finish();
    Ok((d, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_sha256() {
        let d = Digest::of(b"hello");
        assert_eq!(d.as_str().parse::<Digest>().unwrap(), d);
        assert!("sha512:abcd".parse::<Digest>().is_err());
        assert!("sha256:../../etc/passwd".parse::<Digest>().is_err());
        assert!(format!("sha256:{}", "A".repeat(64))
            .parse::<Digest>()
            .is_err());
    }

    #[test]
    fn verifier_refuses_wrong_bytes_and_sizes() {
        let d = Digest::of(b"hello");
        let mut v = Verifier::new("blob", &d, Some(5));
        v.update(b"hello").unwrap();
        assert_eq!(v.finish().unwrap(), 5);

        let mut v = Verifier::new("blob", &d, Some(5));
        v.update(b"hellO").unwrap();
        assert!(matches!(v.finish(), Err(Error::DigestMismatch { .. })));

        let mut v = Verifier::new("blob", &d, Some(5));
        assert!(v.update(b"hello!").is_err());
    }

    #[test]
    fn hashing_thread_hashes_and_writes_every_byte() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = HashingThread::new(Vec::new());
        for piece in data.chunks(70_001) {
            w.write_all(piece).unwrap();
        }
        let (digest, size, written) = w.finish().unwrap();
        assert_eq!((digest, size), (Digest::of(&data), data.len() as u64));
        assert_eq!(written, data);
    }

    #[test]
    fn hashing_thread_reports_the_error_of_its_writer() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = HashingThread::new(Full);
        let chunk = vec![0u8; 1 << 20];
        // The first chunk reaches the thread, which fails; a later write or finish says why.
        let err = (0..8)
            .find_map(|_| w.write_all(&chunk).err())
            .unwrap_or_else(|| w.finish().err().unwrap());
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    }
}
