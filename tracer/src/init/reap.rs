//! Reaping: every zombie child, own or adopted, on each wake-up, plus what `-v` knows about them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::procfs::{ProcFs, Walk};
use super::report::Ended;

/// A process init has just reaped.
pub struct Reaped {
    pub pid: i32,
    pub ended: Ended,
    pub comm: Option<String>,
    pub zombie_for: Duration,
    pub orphaned_by: Option<(i32, String)>,
}

#[derive(Debug, Clone)]
struct Seen {
    parent: Option<(i32, String)>,
    zombie_since: Option<Instant>,
}

/// What earlier looks at /proc showed about init's descendants: each one's parent before it was
/// orphaned, and since when it has been a zombie. Only kept with `-v`; init never polls, so it
/// knows only what it saw when a signal woke it.
#[derive(Default)]
pub struct Knowledge {
    seen: HashMap<i32, Seen>,
}

impl Knowledge {
    /// Records the subtree as it is now. A parent seen earlier wins over init itself, since the
    /// process was orphaned in between.
    pub fn observe(&mut self, procfs: &ProcFs, main: i32) {
        let own = std::process::id() as i32;
        let now = Instant::now();
        let procs = procfs.descendants(None, main, Walk::Quick);
        let comms: HashMap<i32, &str> = procs.iter().map(|p| (p.pid, p.comm.as_str())).collect();
        let mut next = HashMap::with_capacity(procs.len());
        for p in &procs {
            let old = self.seen.remove(&p.pid);
            let parent = if p.ppid != own {
                comms.get(&p.ppid).map(|c| (p.ppid, (*c).to_owned()))
            } else {
                None
            };
            let parent = parent.or_else(|| old.as_ref().and_then(|o| o.parent.clone()));
            let zombie_since = old.and_then(|o| o.zombie_since).or(p.zombie.then_some(now));
            next.insert(
                p.pid,
                Seen {
                    parent,
                    zombie_since,
                },
            );
        }
        self.seen = next;
    }
}

/// Reaps until nothing is left to reap right now. SIGCHLDs coalesce, so one wake-up may stand
/// for many exits. `woke` is when the wake-up came: a zombie no look at /proc saw earlier became
/// one after the previous reap round, so its zombie time counts from then at the latest.
pub fn reap_all(
    procfs: Option<&ProcFs>,
    knowledge: Option<&mut Knowledge>,
    woke: Instant,
    mut on_reaped: impl FnMut(Reaped),
) {
    let mut knowledge = knowledge;
    loop {
        // With -v, peek first so /proc still shows the zombie's comm.
        let (pid, comm) = if knowledge.is_some() {
            match peek() {
                Some(pid) => (pid, procfs.and_then(|p| p.comm_and_ppid(pid)).map(|c| c.0)),
                None => return,
            }
        } else {
            (-1, None)
        };
        let mut status = 0;
        // SAFETY: waitpid writes only `status`.
        let mut got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == 0 && pid > 0 {
            // The peeked zombie is gone (it cannot be, but a stuck zombie would be worse).
            // SAFETY: as above.
            got = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        }
        if got <= 0 {
            // 0: children remain but none has exited; -1/ECHILD: no children at all.
            return;
        }
        let now = Instant::now();
        let seen = knowledge.as_mut().and_then(|k| k.seen.remove(&got));
        let since = seen
            .as_ref()
            .and_then(|s| s.zombie_since)
            .map_or(woke, |s| s.min(woke));
        on_reaped(Reaped {
            pid: got,
            ended: Ended::from_wait_status(status),
            comm,
            zombie_for: now.saturating_duration_since(since),
            orphaned_by: seen.and_then(|s| s.parent),
        });
    }
}

/// The pid of an exited child, without reaping it.
fn peek() -> Option<i32> {
    // SAFETY: waitid fills `info`; WNOWAIT leaves the zombie in place.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let rc = libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        let pid = info.si_pid();
        (rc == 0 && pid > 0).then_some(pid)
    }
}
