//! Lifecycle events as the rest of the tracer sees them: decoded, checked, and serializable.
//!
//! This is the one event model for every source (the ring buffer, a JSON Lines log, a test)
//! and every sink. Its JSON form is the log format: one object per line, `"event"` naming the
//! kind, numbers as numbers, signals as number (`"sig"`) and name (`"sig_name"`).

use std::fmt;

use serde::{Deserialize, Serialize, ser::SerializeStruct as _};
use tracer_common::COMM_LEN;

use crate::signals::signal_name;

/// Version of the JSON Lines log format, written in the log's first line. 2 added the
/// `snapshot` and `cgroup` lines (what the engine learned from /proc) that replay starts from;
/// 3 the `signal_burst` and `deliver_burst` events (signal repeats counted in the kernel); 4 the
/// `cpu` of each event.
pub const LOG_FORMAT_VERSION: u32 = 4;

/// One lifecycle event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub ts_ns: u64,
    /// The task the event is about (for `reap`, the released process as it exited).
    #[serde(flatten)]
    pub task: Task,
    #[serde(flatten)]
    pub data: EventData,
}

/// A task as an event saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Host pid of the process.
    pub pid: u32,
    /// Host id of the thread.
    pub tid: u32,
    /// The process's pid inside its own pid namespace.
    pub ns_pid: u32,
    /// Inode number of that pid namespace.
    pub pidns: u32,
    /// Host pid of the real parent at that moment.
    pub ppid: u32,
    pub uid: u32,
    pub cgroup_id: u64,
    pub comm: Comm,
    /// The process's start time, ns since boot; `(pid, start_ns)` names one process for good.
    pub start_ns: u64,
    /// The CPU the probe ran on (absent in logs before format 4). The engine uses it to know
    /// when no signal repeats can still be counted for a record (see `tracer_common::SignalRuns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventData {
    Fork(Fork),
    Exec(Exec),
    Exit(Exit),
    Wait(Wait),
    Reap(Reap),
    Signal(Signal),
    SignalDeliver(SignalDeliver),
    Lost(Lost),
    /// Boxed: the largest kind by far, and a rare one; every event is as large as its
    /// largest kind.
    SignalBurst(Box<SignalBurst>),
    DeliverBurst(DeliverBurst),
}

impl EventData {
    pub fn kind(&self) -> tracer_common::EventKind {
        use tracer_common::EventKind as K;
        match self {
            Self::Fork(_) => K::Fork,
            Self::Exec(_) => K::Exec,
            Self::Exit(_) => K::Exit,
            Self::Wait(_) => K::Wait,
            Self::Reap(_) => K::Reap,
            Self::Signal(_) => K::Signal,
            Self::SignalDeliver(_) => K::SignalDeliver,
            Self::Lost(_) => K::Lost,
            Self::SignalBurst(_) => K::SignalBurst,
            Self::DeliverBurst(_) => K::DeliverBurst,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    pub child_pid: u32,
    pub child_tid: u32,
    pub child_ns_pid: u32,
    pub child_pidns: u32,
    /// The child's real parent (differs from the forker under `CLONE_PARENT`).
    pub child_ppid: u32,
    pub child_start_ns: u64,
    /// The child is a new thread of the forker's process, not a new process.
    pub thread: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    pub filename: String,
    /// The first argv entries (bounded; see `argv_truncated`).
    pub argv: Vec<String>,
    pub argv_truncated: bool,
    /// The comm before exec, when the tracer had seen the process before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm_before: Option<Comm>,
    /// The thread that called exec, when it was not the thread-group leader.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_tid: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    #[serde(flatten)]
    pub status: ExitStatus,
    /// This was the last thread: the process exited (false: one thread of it did).
    pub process: bool,
}

/// How a process ended, decoded from a wait status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The raw wait status.
    pub status: u32,
    /// `exit(code)`: the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
    /// Killed by this signal.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub killed_by: Option<Sig>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub core_dumped: bool,
}

impl ExitStatus {
    pub fn from_wait_status(status: u32) -> Self {
        let sig = status & 0x7f;
        if sig == 0 {
            Self {
                status,
                code: Some(((status >> 8) & 0xff) as u8),
                killed_by: None,
                core_dumped: false,
            }
        } else {
            Self {
                status,
                code: None,
                killed_by: Some(Sig(sig)),
                core_dumped: status & 0x80 != 0,
            }
        }
    }

    /// The shell's view: the code, or 128 + the signal.
    pub fn shell_code(&self) -> u8 {
        match (self.code, self.killed_by) {
            (Some(code), _) => code,
            (None, Some(Sig(sig))) => (128 + sig).min(255) as u8,
            (None, None) => 0,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.killed_by) {
            (Some(code), _) => write!(f, "exited with code {code}"),
            (None, Some(sig)) => {
                write!(f, "killed by {sig}")?;
                if self.core_dumped {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            (None, None) => write!(f, "status {:#x}", self.status),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// `wait4` or `waitid`.
    pub syscall: WaitSyscall,
    /// The syscall's return value.
    pub ret: i64,
    /// What the call asked for: `-1` any child, a pid, or a process group (see `which`).
    pub upid: i32,
    /// waitid's idtype (P_ALL 0, P_PID 1, P_PGID 2, P_PIDFD 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub which: Option<i32>,
    pub options: u32,
    /// The child the call reported, as the waiter's namespace numbers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_ns_pid: Option<i32>,
    /// Host pid of the child the call released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_pid: Option<u32>,
    /// The call released (reaped) an exited child.
    pub reaped: bool,
    /// Wait status (wait4) or si_status (waitid), when the caller asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// How long the call lasted, when its entry was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitSyscall {
    Wait4,
    Waitid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reap {
    pub reaper_pid: u32,
    pub reaper_tid: u32,
    pub reaper_comm: Comm,
    pub how: ReapHow,
    #[serde(flatten)]
    pub status: ExitStatus,
    /// When the process exited (absent when it exited before the tracer started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_ns: Option<u64>,
    /// How long it was a zombie (absent when the exit time is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zombie_ns: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReapHow {
    /// Collected by `wait4`/`waitid`.
    Wait,
    /// Released by the kernel at exit: the parent ignores SIGCHLD (or set SA_NOCLDWAIT).
    Autoreap,
    /// Released without a wait syscall being seen.
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    #[serde(flatten)]
    pub sig: Sig,
    pub si_code: i32,
    pub result: SignalResult,
    #[serde(flatten)]
    pub target: SignalTarget,
    /// The target thread blocks this signal.
    pub blocked: bool,
}

/// Where a signal was sent and what it found there: the part of a `signal` event that a
/// `signal_burst` repeats. Serialized flat, as `group`, `target_pid` ... `disposition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalTarget {
    /// Process-directed (false: sent to one thread).
    pub group: bool,
    #[serde(rename = "target_pid")]
    pub pid: u32,
    #[serde(rename = "target_tid")]
    pub tid: u32,
    #[serde(rename = "target_ns_pid")]
    pub ns_pid: u32,
    #[serde(rename = "target_pidns")]
    pub pidns: u32,
    #[serde(rename = "target_comm")]
    pub comm: Comm,
    #[serde(rename = "target_start_ns")]
    pub start_ns: u64,
    /// What the target had installed for this signal.
    pub disposition: Disposition,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalResult {
    Delivered,
    Ignored,
    AlreadyPending,
    Overflow,
    LostInfo,
}

impl SignalResult {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Ignored => "ignored",
            Self::AlreadyPending => "already pending (merged)",
            Self::Overflow => "queue overflow",
            Self::LostInfo => "delivered, siginfo lost",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Default,
    Ignore,
    Handler,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalDeliver {
    #[serde(flatten)]
    pub sig: Sig,
    pub si_code: i32,
    pub disposition: Disposition,
    pub sa_flags: u32,
}

/// Repeats of a `signal` event, counted in the kernel instead of sent one by one: `count` more
/// signals from the same thread to the same target like the `signal` event before them (same
/// signal, si_code, group, disposition), the first at `first_ns` and the last at the event's
/// `ts_ns`, with the kernel's result counted for each, and how many found the target blocking
/// the signal. Every signal is in exactly one `signal` event or one burst count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalBurst {
    #[serde(flatten)]
    pub sig: Sig,
    pub si_code: i32,
    #[serde(flatten)]
    pub target: SignalTarget,
    /// How many of them the target thread blocked when they were sent (a handler blocks its
    /// own signal while it runs).
    pub blocked_count: u64,
    /// When the first of them was sent.
    pub first_ns: u64,
    /// How many: the sum of the counts by result below.
    pub count: u64,
    pub delivered: u64,
    pub ignored: u64,
    pub already_pending: u64,
    pub overflow: u64,
    pub lost_info: u64,
}

impl SignalBurst {
    /// The counts by result, in `SignalResult` order.
    pub fn by_result(&self) -> [(SignalResult, u64); 5] {
        [
            (SignalResult::Delivered, self.delivered),
            (SignalResult::Ignored, self.ignored),
            (SignalResult::AlreadyPending, self.already_pending),
            (SignalResult::Overflow, self.overflow),
            (SignalResult::LostInfo, self.lost_info),
        ]
    }
}

/// Repeats of a `signal_deliver` event, counted like [`SignalBurst`]: `count` more deliveries to
/// the same thread exactly like the one before them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverBurst {
    #[serde(flatten)]
    pub sig: Sig,
    pub si_code: i32,
    pub disposition: Disposition,
    pub sa_flags: u32,
    /// When the first of them was delivered.
    pub first_ns: u64,
    pub count: u64,
}

/// Events the probes could not write on the event's CPU (its `task.cpu`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    /// Events lost since the previous report from this CPU.
    pub count: u64,
    /// Events lost on this CPU since the probes were loaded.
    pub total: u64,
}

/// A signal number. Serialized as `"sig": N, "sig_name": "SIGTERM"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sig(pub u32);

impl fmt::Display for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&signal_name(self.0))
    }
}

impl Serialize for Sig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Sig", 2)?;
        s.serialize_field("sig", &self.0)?;
        s.serialize_field("sig_name", &signal_name(self.0))?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Sig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            sig: u32,
        }
        Raw::deserialize(deserializer).map(|raw| Sig(raw.sig))
    }
}

/// A task's comm: up to 15 bytes, serialized as a string.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm {
    bytes: [u8; COMM_LEN],
}

impl Comm {
    /// From the kernel's NUL-padded bytes.
    pub fn from_kernel(bytes: [u8; COMM_LEN]) -> Self {
        Self { bytes }
    }

    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        let len = self.bytes.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        let bytes = &self.bytes[..len];
        // `from_utf8` first: it is much quicker than the lossy path on the (usual) valid text.
        match std::str::from_utf8(bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        }
    }
}

impl From<&str> for Comm {
    fn from(s: &str) -> Self {
        let mut bytes = [0; COMM_LEN];
        let len = s.len().min(COMM_LEN - 1);
        bytes[..len].copy_from_slice(&s.as_bytes()[..len]);
        Self { bytes }
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.as_str())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for Comm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Comm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Comm::from(s.as_ref()))
    }
}
