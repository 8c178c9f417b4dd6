//! Init's subtree as /proc shows it. /proc may belong to an outer PID namespace (`unshare --pid
//! --fork` without `--mount-proc`), so every pid read from it is translated to init's namespace.

use std::collections::HashMap;
use std::fs;

/// One process of the subtree, pids in init's namespace.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid_is_main_group: bool,
    pub comm: String,
    pub zombie: bool,
    pub stopped: bool,
}

/// How thoroughly to look for descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Walk {
    Exact,
    Quick,
}

/// How to read /proc for init's namespace.
pub struct ProcFs {
    /// init's pid as /proc numbers it.
    self_proc_pid: i32,
    /// Whether /proc numbers processes as init's namespace does.
    same_ns: bool,
    /// Index in an `NSpid:` line of the pid in init's namespace.
    level: usize,
    /// Whether /proc/PID/task/TID/children exists (CONFIG_PROC_CHILDREN): walking down from
    /// init then costs per descendant, not per process on the machine.
    children_files: bool,
}

struct Stat {
    ppid: i32,
    pgrp: i32,
    comm: String,
    state: char,
}

fn read_stat(proc_pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{proc_pid}/stat")).ok()?;
    // comm may itself contain ") ", so the last one ends it.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let mut rest = text.get(close + 2..)?.split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgrp = rest.next()?.parse().ok()?;
    Some(Stat {
        ppid,
        pgrp,
        comm,
        state,
    })
}

fn nspids(proc_pid: &str) -> Option<Vec<i32>> {
    let text = fs::read_to_string(format!("/proc/{proc_pid}/status")).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(
        line.split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect(),
    )
}

impl ProcFs {
    /// None when /proc is not mounted: init then falls back to what wait() alone can tell.
    pub fn open() -> Option<Self> {
        let self_proc_pid: i32 = fs::read_link("/proc/self").ok()?.to_str()?.parse().ok()?;
        let own = std::process::id() as i32;
        let ids = nspids("self")?;
        let children_files = fs::metadata(format!(
            "/proc/{self_proc_pid}/task/{self_proc_pid}/children"
        ))
        .is_ok();
        Some(Self {
            self_proc_pid,
            same_ns: self_proc_pid == own,
            level: ids.len().saturating_sub(1),
            children_files,
        })
    }

    fn to_ours(&self, proc_pid: i32) -> Option<i32> {
        if self.same_ns {
            return Some(proc_pid);
        }
        nspids(&proc_pid.to_string())?.get(self.level).copied()
    }

    /// The /proc number of a pid of init's namespace, via a pidfd's fdinfo, which the kernel
    /// prints in the namespace of the /proc it is read from.
    fn to_proc(&self, pid: i32) -> Option<i32> {
        if self.same_ns {
            return Some(pid);
        }
        // SAFETY: pidfd_open returns a new fd or -1; it is closed below on every path.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if fd < 0 {
            return None;
        }
        let text = fs::read_to_string(format!("/proc/self/fdinfo/{fd}"));
        // SAFETY: fd is ours and not used after.
        unsafe { libc::close(fd) };
        text.ok()?
            .lines()
            .find_map(|l| l.strip_prefix("Pid:"))?
            .trim()
            .parse()
            .ok()
    }

    /// comm and parent of one process of init's namespace (also works on zombies).
    pub fn comm_and_ppid(&self, pid: i32) -> Option<(String, i32)> {
        let stat = read_stat(self.to_proc(pid)?)?;
        let ppid = if stat.ppid == self.self_proc_pid {
            std::process::id() as i32
        } else {
            self.to_ours(stat.ppid).unwrap_or(0)
        };
        Some((stat.comm, ppid))
    }

    /// Every descendant of init, adopted ones included, except the subtree under `skip` (the
    /// trace helper). `main` is the main child's pid, to tell who is in its process group.
    ///
    /// `Walk::Exact` reads all of /proc: its directory is listed by pid, so a process that
    /// lives through the listing is never missed. `Walk::Quick` follows the `children` files,
    /// which cost per descendant but can skip a child while a sibling exits; it is for `-v`'s
    /// observations only, never to decide what to signal or whether anything is left.
    pub fn descendants(&self, skip: Option<i32>, main: i32, walk: Walk) -> Vec<Proc> {
        let mut everyone = (walk == Walk::Exact || !self.children_files).then(scan_all);
        let main_proc = if main > 0 { self.to_proc(main) } else { None };
        let skip_proc = skip.and_then(|p| self.to_proc(p));
        let own = std::process::id() as i32;
        let mut out = Vec::new();
        let mut queue = vec![(self.self_proc_pid, own)];
        while let Some((parent_proc, parent)) = queue.pop() {
            for (proc_pid, stat) in self.children(parent_proc, &mut everyone) {
                if Some(proc_pid) == skip_proc {
                    continue;
                }
                let Some(pid) = self.to_ours(proc_pid) else {
                    continue;
                };
                out.push(Proc {
                    pid,
                    ppid: parent,
                    pgid_is_main_group: Some(stat.pgrp) == main_proc,
                    comm: stat.comm,
                    zombie: stat.state == 'Z',
                    stopped: stat.state == 'T',
                });
                queue.push((proc_pid, pid));
            }
        }
        out
    }

    /// The children of one process (/proc numbering), from the scan of all of /proc when the
    /// walk has one, or else from its tasks' `children` files.
    fn children(&self, parent_proc: i32, everyone: &mut Option<Tree>) -> Vec<(i32, Stat)> {
        if let Some(all) = everyone {
            return all.remove(&parent_proc).unwrap_or_default();
        }
        let mut out = Vec::new();
        // Each thread lists the children it forked itself, so every task is read.
        let Ok(tasks) = fs::read_dir(format!("/proc/{parent_proc}/task")) else {
            return out;
        };
        for task in tasks.flatten() {
            let Ok(text) = fs::read_to_string(task.path().join("children")) else {
                continue;
            };
            for proc_pid in text.split_whitespace().filter_map(|p| p.parse().ok()) {
                if let Some(stat) = read_stat(proc_pid) {
                    out.push((proc_pid, stat));
                }
            }
        }
        out
    }
}

/// Children by parent, /proc numbering.
type Tree = HashMap<i32, Vec<(i32, Stat)>>;

fn scan_all() -> Tree {
    let mut children = Tree::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return children;
    };
    for entry in dir.flatten() {
        let Some(proc_pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(stat) = read_stat(proc_pid) {
            children
                .entry(stat.ppid)
                .or_default()
                .push((proc_pid, stat));
        }
    }
    children
}
