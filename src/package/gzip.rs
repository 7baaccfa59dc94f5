//! A gzip stream (RFC 1952, one member) compressed on every core, with the same bytes
//! whatever the number of cores, and runs of data it can store uncompressed.
//!
//! Deflate input is cut into blocks of exactly [`BLOCK`] bytes, counted from the start of
//! each compressed run, so block boundaries depend on the data alone, never on how the
//! caller chunks its writes or how many threads there are (pigz's scheme). Each block is
//! compressed on its own by a worker, primed with the last 32 KiB of the block before it
//! (so matches still reach back across the cut), and ends with a sync flush, which leaves
//! the stream byte-aligned for the next block; blocks are written in order. A block that
//! does not compress (sampled at the fastest level) is written as stored blocks instead:
//! random or already-compressed bytes cost a copy, not a deflate pass. The stream ends
//! with an empty final block, the CRC-32 and the length; the header has no name and no
//! time. [`GzipWriter::set_stored`] switches to stored runs for data the caller knows is
//! compressed already (image layers), and back.
//!
//! Why our own and not `gzp`: `gzp` compresses everything it is given (its fast backends
//! are C libraries), and a package must copy compressed layers as they are; this writer
//! uses the deflate we already link (`flate2` over `zlib-rs`) and one thread per core.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

use flate2::{Compress, Compression, Crc, FlushCompress};

/// Deflate input per block: the unit of parallel work and the fixed cut of the stream.
pub(crate) const BLOCK: usize = 1 << 20;
/// The window a block is primed with: deflate's whole history.
const DICTIONARY: usize = 32 << 10;
/// Largest stored block deflate allows.
const STORED_MAX: usize = 65_535;
/// A block whose samples compress to more than this share of their size is stored.
const INCOMPRESSIBLE: f64 = 0.97;

type Job = Box<dyn FnOnce() + Send>;

/// The compressing threads, one per core, shared by every writer of the process.
fn workers() -> &'static (usize, Mutex<Sender<Job>>) {
    static POOL: OnceLock<(usize, Mutex<Sender<Job>>)> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (tx, rx) = channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                });
        }
        (n, Mutex::new(tx))
    })
}

/// Compresses `data` as one block (primed with `dictionary`) on a worker.
fn submit(
    level: Compression,
    dictionary: Option<Vec<u8>>,
    data: Vec<u8>,
) -> Receiver<io::Result<Vec<u8>>> {
    let (done, result) = sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = done.send(compress_block(level, dictionary.as_deref(), &data));
    });
    let sent = workers()
        .1
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(job);
    if let Err(e) = sent {
        // No worker (threads could not start): compress here.
        (e.0)();
    }
    result
}

/// One block of deflate output, byte-aligned at its end.
pub(crate) fn compress_block(
    level: Compression,
    dictionary: Option<&[u8]>,
    data: &[u8],
) -> io::Result<Vec<u8>> {
    if incompressible(data) {
        let mut out = Vec::with_capacity(data.len() + data.len() / STORED_MAX * 5 + 5);
        for chunk in data.chunks(STORED_MAX) {
            stored_block(&mut out, chunk);
        }
        return Ok(out);
    }
    let mut c = Compress::new(level, false);
    if let Some(d) = dictionary {
        c.set_dictionary(d).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    deflate_into(&mut c, data, &mut out)?;
    Ok(out)
}

/// Feeds all of `data` to `c` and ends with a sync flush.
fn deflate_into(c: &mut Compress, mut data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let room = |out: &mut Vec<u8>| {
        if out.capacity() - out.len() < 64 << 10 {
            out.reserve(256 << 10);
        }
    };
    while !data.is_empty() {
        room(out);
        let before = c.total_in();
        c.compress_vec(data, out, FlushCompress::None)
            .map_err(io::Error::other)?;
        data = &data[(c.total_in() - before) as usize..];
    }
    // The flush is complete when deflate leaves output room unused.
    loop {
        room(out);
        c.compress_vec(&[], out, FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if out.len() < out.capacity() {
            return Ok(());
        }
    }
}

/// Whether a block is not worth compressing: samples of it, at the fastest level, do
/// not shrink. Small blocks are always compressed.
fn incompressible(data: &[u8]) -> bool {
    const SAMPLE: usize = 16 << 10;
    if data.len() < 4 * SAMPLE {
        return false;
    }
    let step = (data.len() - SAMPLE) / 3;
    let mut c = Compress::new(Compression::fast(), false);
    let mut out = Vec::with_capacity(4 * SAMPLE + 1024);
    for i in 0..4 {
        let sample = &data[i * step..i * step + SAMPLE];
        if deflate_into(&mut c, sample, &mut out).is_err() {
            return false;
        }
        c.reset();
    }
    out.len() as f64 >= INCOMPRESSIBLE * (4 * SAMPLE) as f64
}

/// A stored block: BFINAL=0, BTYPE=00 (padded to the byte), LEN, NLEN, the bytes.
fn stored_block(out: &mut Vec<u8>, data: &[u8]) {
    let len = data.len() as u16;
    out.push(0);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
}

pub(crate) struct GzipWriter<W: Write> {
    out: W,
    level: Compression,
    crc: Crc,
    /// Input of the block being filled (compressed runs).
    pending: Vec<u8>,
    /// The end of the previous block of this run, to prime the next one with.
    dictionary: Option<Vec<u8>>,
    /// Bytes of a stored run not yet written (a stored block is filled completely).
    stored: Option<Vec<u8>>,
    /// Blocks being compressed, in stream order.
    in_flight: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

impl<W: Write> GzipWriter<W> {
    pub(crate) fn new(mut out: W, level: Compression) -> io::Result<Self> {
        // Magic, deflate, no flags, mtime 0, no extra flags, OS unknown: the same bytes anywhere.
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255])?;
        Ok(GzipWriter {
            out,
            level,
            crc: Crc::new(),
            pending: Vec::with_capacity(BLOCK),
            dictionary: None,
            stored: None,
            in_flight: VecDeque::new(),
        })
    }

    /// Hands the pending block to a worker; keeps at most two blocks per worker queued.
    fn submit_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.pending, Vec::with_capacity(BLOCK));
        let next_dictionary = data[data.len().saturating_sub(DICTIONARY)..].to_vec();
        let dictionary = self.dictionary.replace(next_dictionary);
        self.in_flight
            .push_back(submit(self.level, dictionary, data));
        while self.in_flight.len() > 2 * workers().0 {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(rx) = self.in_flight.pop_front() {
            let block = rx
                .recv()
                .map_err(|_| io::Error::other("a compressing thread stopped"))??;
            self.out.write_all(&block)?;
        }
        Ok(())
    }

    /// Ends the compressed run: the last block, then every block in order.
    fn end_run(&mut self) -> io::Result<()> {
        self.submit_pending()?;
        while !self.in_flight.is_empty() {
            self.write_oldest()?;
        }
        self.dictionary = None;
        Ok(())
    }

    fn flush_stored(&mut self) -> io::Result<()> {
        if let Some(pending) = self.stored.take() {
            if !pending.is_empty() {
                let mut block = Vec::with_capacity(pending.len() + 5);
                stored_block(&mut block, &pending);
                self.out.write_all(&block)?;
            }
        }
        Ok(())
    }

    /// Stores what follows without compressing it (`true`), or compresses again (`false`).
    pub(crate) fn set_stored(&mut self, stored: bool) -> io::Result<()> {
        match (stored, self.stored.is_some()) {
            (true, false) => {
                self.end_run()?;
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
        self.end_run()?;
        // An empty final block (BFINAL=1, fixed Huffman, end of block).
        self.out.write_all(&[0x03, 0x00])?;
        self.out.write_all(&self.crc.sum().to_le_bytes())?;
        self.out.write_all(&self.crc.amount().to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.crc.update(data);
        let mut rest = data;
        match self.stored.take() {
            Some(mut pending) => {
                while !rest.is_empty() {
                    if pending.is_empty() && rest.len() >= STORED_MAX {
                        // A whole stored block straight from the input, no copy.
                        let (block, after) = rest.split_at(STORED_MAX);
                        let len = STORED_MAX as u16;
                        let mut head = [0u8; 5];
                        head[1..3].copy_from_slice(&len.to_le_bytes());
                        head[3..5].copy_from_slice(&(!len).to_le_bytes());
                        self.out.write_all(&head)?;
                        self.out.write_all(block)?;
                        rest = after;
                        continue;
                    }
                    let take = (STORED_MAX - pending.len()).min(rest.len());
                    pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if pending.len() == STORED_MAX {
                        let mut block = Vec::with_capacity(STORED_MAX + 5);
                        stored_block(&mut block, &pending);
                        self.out.write_all(&block)?;
                        pending.clear();
                    }
                }
                self.stored = Some(pending);
            }
            None => {
                while !rest.is_empty() {
                    let take = (BLOCK - self.pending.len()).min(rest.len());
                    self.pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if self.pending.len() == BLOCK {
                        self.submit_pending()?;
                    }
                }
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
    use std::io::Read as _;

    use super::*;

    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Bytes that compress (text) and bytes that do not (a xorshift stream).
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|i| {
                if (i / 300_000) % 2 == 0 {
                    b"the quick brown fox jumps over the lazy dog "[i % 44]
                } else {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                }
            })
            .collect()
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
        let out = gunzip(&a);
        assert_eq!(out.len(), 100_028);
        assert!(out.starts_with(b"hello ") && out.ends_with(b"hello hellohello world"));
        // The stored run really is stored: 100 kB of one byte would deflate to almost nothing.
        assert!(a.len() > 100_000);
    }

    #[test]
    fn the_bytes_depend_on_the_data_not_on_how_it_is_written() {
        let data = sample(5 * BLOCK + 12_345);
        let whole = {
            let mut gz = GzipWriter::new(Vec::new(), Compression::default()).unwrap();
            gz.write_all(&data).unwrap();
            gz.finish().unwrap()
        };
        let dribbled = {
            let mut gz = GzipWriter::new(Vec::new(), Compression::default()).unwrap();
            for chunk in data.chunks(7_777) {
                gz.write_all(chunk).unwrap();
            }
            gz.finish().unwrap()
        };
        assert_eq!(whole, dribbled);
        assert_eq!(gunzip(&whole), data);
        // The compressible halves shrank, the random ones were stored, not inflated.
        assert!(whole.len() < data.len() * 6 / 10, "{}", whole.len());
        // One worker or many: the same blocks, so the same bytes.
        let serial: Vec<u8> = data
            .chunks(BLOCK)
            .scan(None::<Vec<u8>>, |dict, block| {
                let out = compress_block(Compression::default(), dict.as_deref(), block).unwrap();
                *dict = Some(block[block.len().saturating_sub(DICTIONARY)..].to_vec());
                Some(out)
            })
            .flatten()
            .collect();
        assert_eq!(&whole[10..10 + serial.len()], &serial[..]);
    }

    #[test]
    fn stored_runs_do_not_depend_on_how_they_are_written() {
        let data = sample(600_000);
        let write = |chunk: usize| {
            let mut gz = GzipWriter::new(Vec::new(), Compression::default()).unwrap();
            gz.set_stored(true).unwrap();
            for piece in data.chunks(chunk) {
                gz.write_all(piece).unwrap();
            }
            gz.finish().unwrap()
        };
        let whole = write(data.len());
        assert_eq!(whole, write(1_000));
        assert_eq!(whole, write(STORED_MAX + 1));
        assert_eq!(gunzip(&whole), data);
    }

    #[test]
    fn incompressible_blocks_are_stored() {
        let random = &sample(2 * 300_000)[300_000..];
        assert!(incompressible(random));
        assert!(!incompressible(&sample(300_000)));
        let out = compress_block(Compression::best(), None, random).unwrap();
        assert_eq!(
            out.len(),
            random.len() + random.len().div_ceil(STORED_MAX) * 5
        );
    }
}
