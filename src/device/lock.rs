//! One pass at a time per state folder: an exclusive lock (`flock`) on `STATE/lock`, held
//! for the length of a pass. A second pass (an operator's `device sync` beside `device
//! watch`) waits for the one under way, saying so with its pid, then starts from what the
//! first left; with a timeout it gives up with [`Error::Busy`] (exit 3). The kernel drops
//! the lock when its holder dies, however it dies, so a killed pass never leaves it held.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The lock of a state folder, released when dropped.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock of the state folder `dir`, waiting for a pass that holds it (for
    /// `timeout` at most, when given).
    pub fn acquire(dir: &Path, timeout: Option<Duration>) -> Result<StateLock> {
        let path = dir.join("lock");
        use std::os::unix::fs::OpenOptionsExt as _;
        // Only its owner may open it: `flock` needs no write access, and anyone who could
        // open it could hold it and stall the agent.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        let started = Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path)(e)),
            }
            let holder = holder(&mut file);
            if !said {
                crate::progress::note(&format!(
                    "another pass ({holder}) is working on {}: waiting for it to finish",
                    dir.display()
                ));
                said = true;
            }
            if timeout.is_some_and(|t| started.elapsed() >= t) {
                return Err(Error::Busy(format!(
                    "another pass ({holder}) still holds {} after {}s (--lock-timeout); nothing was done: try again when it has finished, or give --lock-timeout more time",
                    path.display(),
                    started.elapsed().as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Who holds it, for the next one that waits.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{}", std::process::id());
        Ok(StateLock { _file: file })
    }
}

/// "pid N", as the holder wrote it, or "pid unknown".
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "pid unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_times_out_with_exit_3() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path(), None).unwrap();
        let err = StateLock::acquire(dir.path(), Some(Duration::from_millis(300)))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 3);
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        let _second = StateLock::acquire(dir.path(), Some(Duration::from_millis(300))).unwrap();
    }
}
