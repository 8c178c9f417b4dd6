//! The engine's one window on the system: a snapshot of /proc, taken by a separate function
//! so that the engine itself does no I/O and tests can hand it made-up snapshots.

use std::{fs, os::unix::fs::MetadataExt as _, path::Path};

use crate::proc;

/// Every process at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// Boot-clock time the snapshot was taken.
    pub taken_ns: u64,
    /// Nanoseconds per /proc clock tick (start times are exact only to a tick).
    pub ns_per_tick: u64,
    pub procs: Vec<ProcInfo>,
}

/// One process as /proc shows it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// Start time, ns since boot, to a clock tick.
    pub start_ns: u64,
    pub comm: String,
    /// Target of `/proc/PID/exe` (unreadable without privileges, or for zombies).
    pub exe: Option<String>,
    /// Its pid in its own PID namespace.
    pub ns_pid: u32,
    /// Inode of its PID namespace (0: unreadable).
    pub pidns: u32,
    /// Its cgroup v2 path and the id the kernel reports events with (the directory's inode).
    pub cgroup: String,
    pub cgroup_id: u64,
    /// `R`, `S`, `Z`, `T`, ...
    pub state: char,
    /// Wait status of a zombie.
    pub exit_status: u32,
}

/// Reads every process from /proc. Processes that vanish mid-scan are skipped; fields that
/// need privileges are left empty.
pub fn snapshot(taken_ns: u64) -> Snapshot {
    let ns_per_tick = 1_000_000_000 / proc::clock_ticks();
    let procs = proc::pids()
        .unwrap_or_default()
        .into_iter()
        .filter_map(read_proc)
        .collect();
    Snapshot {
        taken_ns,
        ns_per_tick,
        procs,
    }
}

/// One process from /proc, `None` when it is gone.
pub fn read_proc(pid: u32) -> Option<ProcInfo> {
    let stat = proc::stat(pid).ok()?;
    let dir = format!("/proc/{pid}");
    let cgroup = fs::read_to_string(format!("{dir}/cgroup"))
        .ok()
        .and_then(|text| {
            // cgroup v2: the line `0::/path`.
            text.lines()
                .find_map(|l| l.strip_prefix("0::"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let cgroup_id = cgroup_id(&cgroup).unwrap_or(0);
    Some(ProcInfo {
        pid,
        ppid: stat.ppid,
        start_ns: proc::ticks_to_ns(stat.start_ticks),
        exe: fs::read_link(format!("{dir}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        ns_pid: proc::nspids(pid).last().copied().unwrap_or(pid),
        pidns: proc::ns_inode(Path::new(&format!("{dir}/ns/pid"))).unwrap_or(0),
        comm: stat.comm,
        cgroup,
        cgroup_id,
        state: stat.state,
        exit_status: stat.exit_code,
    })
}

/// The id events carry for a cgroup v2 path: the inode of its directory.
pub fn cgroup_id(path: &str) -> Option<u64> {
    if path.is_empty() {
        return None;
    }
    let full = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    fs::metadata(full).ok().map(|m| m.ino())
}
