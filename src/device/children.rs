//! The device's children: compose, which changes the engine. Each runs in a process group
//! of its own and is recorded in `STATE/children/<pid>` (with its start time, so that a
//! reused pid is not mistaken for it) while it runs. A pass that is killed (SIGKILL, the
//! OOM killer, a power cut in the middle of a restart) leaves its compose running; the next
//! pass, holding the state folder's lock, finds it there and waits for it to finish (then
//! ends its whole group) before it touches the engine, so two composes never race on one
//! project. Linux only (`/proc`), as the device is.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Where a state folder records its running children.
fn folder(state: &Path) -> PathBuf {
    state.join("children")
}

/// The fields of `/proc/PID/stat` after the command name (field 2, which may hold spaces
/// and parentheses: counted from the last `)`), from the state (field 3) on; `None` for a
/// process that does not run or is a zombie (it has ended and waits for its parent).
fn stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<String> = stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    (fields.first()? != "Z").then_some(fields)
}

/// When the process `pid` started (clock ticks since boot), while it runs.
fn start_time(pid: u32) -> Option<u64> {
    stat(pid)?.get(19)?.parse().ok()
}

/// Runs `cmd` to its end in a process group of its own, recorded under the state folder
/// `state` while it runs; its output.
pub(crate) fn run(state: &Path, cmd: &mut Command) -> std::io::Result<Output> {
    use std::os::unix::process::CommandExt as _;
    let dir = folder(state);
    std::fs::create_dir_all(&dir)?;
    let child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let record = dir.join(pid.to_string());
    let what = format!("{:?}", cmd.get_program());
    // Whole or absent: written beside, then renamed.
    let _ = crate::oci::layout::write_atomic(
        &record,
        format!("{} {what}\n", start_time(pid).unwrap_or_default()).as_bytes(),
    );
    let out = child.wait_with_output();
    let _ = std::fs::remove_file(&record);
    out
}

/// Waits for the children a killed pass left running (up to `patience` for all of them),
/// then ends each group still there (SIGTERM, then SIGKILL); clears their records.
pub(crate) fn reap(state: &Path, patience: Duration) -> Result<()> {
    let dir = folder(state);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let started = Instant::now();
    for entry in entries {
        let path = entry.map_err(Error::io("read", &dir))?.path();
        let pid: Option<u32> = path.file_name().and_then(|n| n.to_str()?.parse().ok());
        let recorded: Option<u64> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok());
        if let (Some(pid), Some(recorded)) = (pid, recorded) {
            let alive = || group_runs(pid, recorded);
            if alive() {
                crate::progress::note(&format!(
                    "a compose of an earlier pass (pid {pid}) is still running: waiting for it"
                ));
                while alive() && started.elapsed() < patience {
                    std::thread::sleep(Duration::from_millis(100));
                }
                if alive() {
                    end_group(pid, &alive);
                }
            }
        }
        std::fs::remove_file(&path).map_err(Error::io("remove", &path))?;
    }
    Ok(())
}

/// Whether the process group a child recorded with `recorded` as its start time led still
/// has a live member: the child itself, or, once it has ended, any process left in its
/// group (Linux never gives a new process the pid of a group still in use, so those are
/// ours).
fn group_runs(pgid: u32, recorded: u64) -> bool {
    match start_time(pgid) {
        Some(started) => started == recorded,
        None if std::path::Path::new(&format!("/proc/{pgid}")).exists() => false,
        None => group_has_members(pgid),
    }
}

/// Whether any live process is in the process group `pgid`.
fn group_has_members(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(stat)
            // state, ppid, pgrp
            .and_then(|f| f.get(2)?.parse::<u32>().ok())
            == Some(pgid)
    })
}

/// SIGTERM to the group `pgid`, SIGKILL after 10 s if it is still there.
fn end_group(pgid: u32, alive: &dyn Fn() -> bool) {
    use rustix::process::{kill_process_group, Pid, Signal};
    let Some(group) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return;
    };
    crate::progress::note(&format!(
        "ending what is left of the earlier pass's compose (process group {pgid})"
    ));
    let _ = kill_process_group(group, Signal::TERM);
    let until = Instant::now() + Duration::from_secs(10);
    while alive() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive() {
        let _ = kill_process_group(group, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_child_that_outlived_its_pass_is_waited_for_then_ended() {
        let state = tempfile::tempdir().unwrap();
        // A run records its child only while it runs.
        let out = run(state.path(), Command::new("sh").args(["-c", "echo hi"])).unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
        assert_eq!(std::fs::read_dir(folder(state.path())).unwrap().count(), 0);

        // What a killed pass leaves: a child in its own group, still recorded.
        use std::os::unix::process::CommandExt as _;
        let mut left = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = left.id();
        std::fs::create_dir_all(folder(state.path())).unwrap();
        std::fs::write(
            folder(state.path()).join(pid.to_string()),
            format!("{} \"sleep\"\n", start_time(pid).unwrap()),
        )
        .unwrap();
        // A pid whose start time is another's (reused) is not ours: not touched.
        std::fs::write(folder(state.path()).join("1"), "12345 \"init\"\n").unwrap();
        let t = Instant::now();
        reap(state.path(), Duration::from_millis(300)).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let status = left.wait().unwrap();
        assert!(!status.success(), "the leftover was ended: {status:?}");
        assert_eq!(std::fs::read_dir(folder(state.path())).unwrap().count(), 0);
    }

    #[test]
    fn what_a_recorded_child_left_in_its_group_is_ended_after_it_has_gone() {
        let state = tempfile::tempdir().unwrap();
        use std::os::unix::process::CommandExt as _;
        // The recorded child starts a grandchild in its group, and ends when told to (its
        // stdin closed), once its start time is recorded.
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null & echo $!; read x"])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pgid = leader.id();
        let mut out = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().unwrap()),
            &mut out,
        )
        .unwrap();
        let recorded = start_time(pgid).unwrap();
        std::fs::create_dir_all(folder(state.path())).unwrap();
        std::fs::write(
            folder(state.path()).join(pgid.to_string()),
            format!("{recorded} \"sh\"\n"),
        )
        .unwrap();
        drop(leader.stdin.take());
        leader.wait().unwrap();
        let grandchild: u32 = out.trim().parse().unwrap();
        assert!(group_runs(pgid, recorded), "the grandchild keeps the group");
        reap(state.path(), Duration::from_millis(300)).unwrap();
        let t = Instant::now();
        while start_time(grandchild).is_some() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(start_time(grandchild), None, "the grandchild was ended");
        assert!(!group_runs(pgid, recorded));
    }
}
