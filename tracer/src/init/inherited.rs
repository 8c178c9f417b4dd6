//! The signal mask and ignored dispositions init was started with, so the child gets them back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::signals::{self, MAX_SIGNAL};

static MASK: AtomicU64 = AtomicU64::new(0);
static IGNORED: AtomicU64 = AtomicU64::new(0);
static CAPTURED: AtomicBool = AtomicBool::new(false);

/// Rust's runtime sets SIGPIPE to SIG_IGN before `main`, which would hide whether our parent
/// ignored it. An ELF constructor runs before that runtime setup, so it still sees the original.
#[used]
#[unsafe(link_section = ".init_array")]
static CAPTURE_BEFORE_RUNTIME: extern "C" fn() = capture;

extern "C" fn capture() {
    let (mask, ignored) = current();
    MASK.store(mask, Ordering::Relaxed);
    IGNORED.store(ignored, Ordering::Relaxed);
    CAPTURED.store(true, Ordering::Release);
}

/// Reads the calling thread's blocked set and ignored dispositions as bit sets (bit n-1 = signal n).
fn current() -> (u64, u64) {
    let mut mask = 0u64;
    let mut ignored = 0u64;
    // SAFETY: querying only (null new set / new action); the out-parameters are plain data.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set) == 0 {
            for sig in 1..=MAX_SIGNAL {
                if libc::sigismember(&set, sig) == 1 {
                    mask |= bit(sig);
                }
            }
        }
        for sig in 1..=MAX_SIGNAL {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                ignored |= bit(sig);
            }
        }
    }
    (mask, ignored)
}

fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// What was inherited: (blocked, ignored). Falls back to the state at call time if the
/// constructor did not run (e.g. a linker that dropped it); only SIGPIPE can be wrong then.
pub fn get() -> (u64, u64) {
    // Referencing the constructor keeps its object file in the link.
    std::hint::black_box(&CAPTURE_BEFORE_RUNTIME);
    if CAPTURED.load(Ordering::Acquire) {
        (
            MASK.load(Ordering::Relaxed),
            IGNORED.load(Ordering::Relaxed),
        )
    } else {
        current()
    }
}

/// In the forked child, just before exec: put back the inherited ignored dispositions and mask.
/// Only async-signal-safe calls, since it runs between fork and exec.
pub fn restore_in_child(mask: u64, ignored: u64) -> std::io::Result<()> {
    // SAFETY: sigaction/sigprocmask on the current (single-threaded, forked) process.
    unsafe {
        for sig in 1..=MAX_SIGNAL {
            if ignored & bit(sig) != 0 && signals::catchable(sig) {
                libc::signal(sig, libc::SIG_IGN);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in 1..=MAX_SIGNAL {
            if mask & bit(sig) != 0 {
                libc::sigaddset(&mut set, sig);
            }
        }
        if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
