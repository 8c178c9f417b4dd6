//! Graceful shutdown of the whole subtree: a signal to every descendant, a grace period, then
//! SIGKILL for what is left. Without it the kernel kills them unwarned when PID 1 exits.

use std::time::{Duration, Instant};

use super::procfs::{ProcFs, Walk};
use super::signals;

/// How often to look again for survivors once SIGKILL went out.
const RECHECK: Duration = Duration::from_secs(1);

/// A shutdown in progress.
#[derive(Debug)]
pub struct Shutdown {
    pub deadline: Instant,
    pub killed: bool,
}

impl Shutdown {
    pub fn start(grace: Duration) -> Self {
        Self {
            deadline: Instant::now() + grace,
            killed: false,
        }
    }

    /// How long the wait may sleep: until the grace period ends, and after the SIGKILL round
    /// until the next one. A process forked after a round and orphaned to init by its killed
    /// parent sends init no SIGCHLD while it lives, so only looking again finds it.
    pub fn remaining(&self) -> Duration {
        if self.killed {
            RECHECK
        } else {
            self.deadline.saturating_duration_since(Instant::now())
        }
    }
}

/// Who the tree is, and how to reach it.
pub struct Tree<'a> {
    pub procfs: Option<&'a ProcFs>,
    pub main: i32,
    pub helper: Option<i32>,
    pub process_group: bool,
}

impl Tree<'_> {
    /// Sends `sig` to every living descendant except the helper. `skip_main` leaves out the main
    /// child (and with `-g` its group), which was already sent the signal directly. `wake`
    /// follows it with SIGCONT for stopped processes (for shutdown signals, not forwarded job
    /// control). Returns how many were signalled.
    pub fn signal_all(&self, sig: i32, skip_main: bool, wake: bool) -> usize {
        let Some(procfs) = self.procfs else {
            return self.signal_blind(sig, skip_main);
        };
        let mut sent = 0;
        for p in procfs.descendants(self.helper, self.main, Walk::Exact) {
            let is_main = p.pid == self.main || (self.process_group && p.pgid_is_main_group);
            if p.zombie || (skip_main && is_main) {
                continue;
            }
            if signals::send(p.pid, sig) {
                sent += 1;
                // A stopped process would only see the signal at the SIGKILL; like systemd,
                // wake it so it can act on it within the grace period.
                if wake && p.stopped && sig != libc::SIGKILL {
                    signals::send(p.pid, libc::SIGCONT);
                }
            }
        }
        if sig == libc::SIGKILL && std::process::id() == 1 && self.helper.is_none() {
            // Also catches whatever was forked after the /proc listing.
            signals::send(-1, libc::SIGKILL);
        }
        sent
    }

    /// Without /proc: at PID 1 everything in the namespace is ours (kill(-1) spares init itself,
    /// but would hit the helper); elsewhere only the main child's group can be named.
    fn signal_blind(&self, sig: i32, skip_main: bool) -> usize {
        if std::process::id() == 1 && self.helper.is_none() {
            return usize::from(signals::send(-1, sig));
        }
        if skip_main {
            return 0;
        }
        usize::from(signals::send(-self.main, sig))
    }

    /// Whether any descendant other than the helper is left, zombies included (they are still
    /// to be reaped). Every descendant hangs below a child of init, so without a helper the
    /// kernel answers exactly; with one, /proc must tell them apart. None when it cannot.
    pub fn anything_left(&self) -> Option<bool> {
        if self.helper.is_none() {
            return Some(has_children());
        }
        let procfs = self.procfs?;
        Some(
            !procfs
                .descendants(self.helper, self.main, Walk::Exact)
                .is_empty(),
        )
    }
}

/// Whether init still has any child, exited or not.
pub fn has_children() -> bool {
    // SAFETY: waitid fills `info`; WNOWAIT reaps nothing.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        ) == 0
    }
}
