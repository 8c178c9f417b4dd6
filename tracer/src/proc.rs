//! Reading processes from /proc: the tracer's view of what existed before it started, and its
//! check on what it believes after events were lost.

use std::{fs, io, path::Path};

/// Fields of `/proc/PID/stat` the tracer uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
    /// The exit status (wait status) of a zombie; 0 for a live process.
    pub exit_code: u32,
}

/// Parses the text of `/proc/PID/stat`; `None` when it is not in the expected form.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // comm may contain spaces and parentheses: it runs from the first '(' to the last ')'.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_owned();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        pid,
        comm,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
        exit_code: field(52).and_then(|f| f.parse().ok()).unwrap_or(0),
    })
}

pub fn stat(pid: u32) -> io::Result<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::other(format!("unexpected /proc/{pid}/stat")))
}

/// Every pid in /proc.
pub fn pids() -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = fs::read_dir("/proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// A `Key: value` line of `/proc/PID/status`.
pub fn status_field(pid: u32, key: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// The pid in each namespace the process is visible in, outermost (ours) first.
pub fn nspids(pid: u32) -> Vec<u32> {
    status_field(pid, "NSpid")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Real uid.
pub fn uid(pid: u32) -> Option<u32> {
    status_field(pid, "Uid")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Inode of a namespace link such as `/proc/PID/ns/pid` (`pid:[4026531836]`).
pub fn ns_inode(path: &Path) -> Option<u32> {
    let link = fs::read_link(path).ok()?;
    let link = link.to_str()?;
    link.split_once('[')?.1.strip_suffix(']')?.parse().ok()
}

/// Clock ticks per second (`CLK_TCK`), the unit of /proc start times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// A /proc start time in ns since boot (exact to one tick).
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ticks.saturating_mul(1_000_000_000 / clock_ticks())
}

/// Whether a start time seen by a probe (ns) and one read from /proc (ticks) are the same.
pub fn same_start(start_ns: u64, start_ticks: u64) -> bool {
    start_ns / (1_000_000_000 / clock_ticks()) == start_ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_comm() {
        let line = "1234 (my (odd) proc) Z 1 1234 1234 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 \
                    98765 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 \
                    0 0 0 0 0 768\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.pid, 1234);
        assert_eq!(stat.comm, "my (odd) proc");
        assert_eq!((stat.state, stat.ppid, stat.pgrp), ('Z', 1, 1234));
        assert_eq!(stat.start_ticks, 98765);
        assert_eq!(stat.exit_code, 768);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let stat = stat(me).unwrap();
        assert_eq!(stat.pid, me);
        assert_eq!(stat.ppid, std::os::unix::process::parent_id());
        assert_eq!(nspids(me).first(), Some(&me));
        assert!(ns_inode(Path::new("/proc/self/ns/pid")).is_some());
    }
}
