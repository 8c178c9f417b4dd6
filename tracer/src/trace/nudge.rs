//! Nudges: making the signal probe run on a CPU that holds counted signal repeats, so that it
//! writes them (see `tracer_common::SignalRuns`).
//!
//! A CPU writes what it counted before its next record of any kind, which on a CPU that goes
//! quiet after a storm may be long in coming. So `SIGNAL_RUN_NS` after reading a record that
//! opened a run (when that run can take no more repeats), the tracer asks the map which CPUs
//! still hold counts and nudges those: a thread of its own moves to each (sched_setaffinity
//! returns once it runs there) and sends itself [`NUDGE_SIGNAL`] with [`NUDGE_VALUE`]
//! (rt_tgsigqueueinfo). `signal_generate` runs on that CPU, recognises the nudge, writes the
//! counts and reports nothing about it. The signal is blocked in that thread, so it is never
//! delivered: it stays pending (later nudges merge into it) and goes away with the thread.
//!
//! A CPU this process may not run on (a cpuset narrower than the host) cannot be nudged; its
//! counts go out with its next record, or are read from the map at the end of the trace.

use std::{
    sync::mpsc::{Sender, channel},
    thread,
};

use tracer_common::{NUDGE_SIGNAL, NUDGE_VALUE, kernel::SI_QUEUE};

/// The `siginfo_t` of a nudge (128 bytes, the kernel's `SI_MAX_SIZE`).
#[repr(C)]
struct NudgeInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: u64,
    _rest: [u64; 12],
}

const _: () = assert!(std::mem::size_of::<NudgeInfo>() == 128);

/// Sends nudges from a thread of its own; dropping it ends the thread.
pub struct Nudger {
    cpus: Sender<Vec<u32>>,
}

impl Nudger {
    pub fn start() -> std::io::Result<Self> {
        let (cpus, rx) = channel::<Vec<u32>>();
        thread::Builder::new()
            .name("tracer-nudge".into())
            .spawn(move || {
                block_nudges();
                let nudge = Nudge::new();
                for batch in rx {
                    for cpu in batch {
                        if move_to(cpu) {
                            nudge.send();
                        }
                    }
                }
            })?;
        Ok(Self { cpus })
    }

    /// Nudges these CPUs (in the background).
    pub fn nudge(&self, cpus: Vec<u32>) {
        if !cpus.is_empty() {
            let _ = self.cpus.send(cpus);
        }
    }
}

fn block_nudges() {
    // SAFETY: a sigset_t on the stack, initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, NUDGE_SIGNAL as i32);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Pins this thread to `cpu`; true once it runs there.
fn move_to(cpu: u32) -> bool {
    if cpu as usize >= libc::CPU_SETSIZE as usize {
        return false;
    }
    // SAFETY: a cpu_set_t on the stack, cleared and set with the libc macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu as usize, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// A nudge of the calling thread to itself, made once for the thread that sends them.
struct Nudge {
    tid: i32,
    info: NudgeInfo,
}

impl Nudge {
    fn new() -> Self {
        // SAFETY: getpid, gettid and getuid take nothing and cannot fail.
        let (pid, tid, uid) = unsafe {
            (
                libc::getpid(),
                libc::syscall(libc::SYS_gettid) as i32,
                libc::getuid(),
            )
        };
        let info = NudgeInfo {
            signo: NUDGE_SIGNAL as i32,
            errno: 0,
            code: SI_QUEUE,
            _pad: 0,
            pid,
            uid,
            value: NUDGE_VALUE,
            _rest: [0; 12],
        };
        Self { tid, info }
    }

    /// Sends it: `signal_generate` runs on the CPU this thread runs on.
    fn send(&self) {
        // SAFETY: rt_tgsigqueueinfo reads 128 bytes of `info`.
        unsafe {
            libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                self.info.pid,
                self.tid,
                NUDGE_SIGNAL as i32,
                &self.info as *const NudgeInfo,
            );
        }
    }
}
