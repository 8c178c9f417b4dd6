//! Ring buffer records. Every record starts with a [`Header`]; `Header::kind` says which of the
//! `*Record` structs the whole record is. Field order keeps every field naturally aligned
//! without implicit padding; the size assertions at the bottom hold the layout in place.

/// Length of `task_struct.comm`.
pub const COMM_LEN: usize = 16;
/// Bytes of the exec'd filename kept (including the terminating NUL).
pub const FILENAME_LEN: usize = 256;
/// Bytes of the NUL-separated argv kept.
pub const ARGS_LEN: usize = 512;

/// The kind of a record. Numbered explicitly: the numbers are the wire format.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Fork = 1,
    Exec = 2,
    Exit = 3,
    Wait = 4,
    Reap = 5,
    Signal = 6,
    SignalDeliver = 7,
    Lost = 8,
    SignalBurst = 9,
    DeliverBurst = 10,
}

/// An unknown value in a record's `kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub u32);

impl TryFrom<u32> for EventKind {
    type Error = UnknownKind;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Ok(match value {
            1 => Self::Fork,
            2 => Self::Exec,
            3 => Self::Exit,
            4 => Self::Wait,
            5 => Self::Reap,
            6 => Self::Signal,
            7 => Self::SignalDeliver,
            8 => Self::Lost,
            9 => Self::SignalBurst,
            10 => Self::DeliverBurst,
            other => return Err(UnknownKind(other)),
        })
    }
}

impl EventKind {
    /// Every kind, in wire order.
    pub const ALL: [EventKind; 10] = [
        Self::Fork,
        Self::Exec,
        Self::Exit,
        Self::Wait,
        Self::Reap,
        Self::Signal,
        Self::SignalDeliver,
        Self::Lost,
        Self::SignalBurst,
        Self::DeliverBurst,
    ];

    /// Length of an array indexed by kind number (`kind as usize`).
    pub const SLOTS: usize = Self::ALL.len() + 1;

    /// The name used in JSON (`"event"`) and on the command line (`--events`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fork => "fork",
            Self::Exec => "exec",
            Self::Exit => "exit",
            Self::Wait => "wait",
            Self::Reap => "reap",
            Self::Signal => "signal",
            Self::SignalDeliver => "signal_deliver",
            Self::Lost => "lost",
            Self::SignalBurst => "signal_burst",
            Self::DeliverBurst => "deliver_burst",
        }
    }

    /// The kind a burst repeats (itself for every other kind): what `--events` filters by.
    pub const fn base(self) -> Self {
        match self {
            Self::SignalBurst => Self::Signal,
            Self::DeliverBurst => Self::SignalDeliver,
            other => other,
        }
    }
}

/// The task an event is about, as it was when the probe ran.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// An [`EventKind`] number.
    pub kind: u32,
    /// Host pid of the process (tgid).
    pub pid: u32,
    /// Host id of the thread.
    pub tid: u32,
    /// The process's pid in its own (deepest) pid namespace.
    pub ns_pid: u32,
    /// Inode number of that pid namespace.
    pub pidns: u32,
    /// Host pid of the real parent at this moment.
    pub ppid: u32,
    /// Real uid.
    pub uid: u32,
    /// CPU the probe ran on.
    pub cpu: u32,
    /// `CLOCK_BOOTTIME` nanoseconds.
    pub ts_ns: u64,
    /// The process's start time (`start_boottime` of the group leader), ns since boot.
    /// Together with `pid` it names a process for good: pids are reused, this pair is not.
    pub start_ns: u64,
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// `task_struct.comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// `ForkRecord::flags`: the child is a thread of the parent's process.
pub const FORK_THREAD: u32 = 1;

/// `sched_process_fork`; the header is the forking task.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForkRecord {
    pub header: Header,
    /// Host pid (tgid) of the child.
    pub child_pid: u32,
    /// Host tid of the child.
    pub child_tid: u32,
    /// The child's pid in its own pid namespace.
    pub child_ns_pid: u32,
    /// Inode of the child's pid namespace (differs from the parent's after `CLONE_NEWPID`).
    pub child_pidns: u32,
    /// Host pid of the child's real parent (the forker's parent under `CLONE_PARENT`).
    pub child_ppid: u32,
    /// [`FORK_THREAD`] or 0.
    pub flags: u32,
    /// The child's start time, ns since boot.
    pub child_start_ns: u64,
}

/// `ExecRecord::flags`: argv was longer than [`ARGS_LEN`] and was cut.
pub const EXEC_ARGS_TRUNCATED: u32 = 1;

/// `sched_process_exec`; the header is the task after exec (new comm).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    pub header: Header,
    /// The tid that called exec (differs from `header.tid` when a thread other than the leader
    /// exec'd and took over the leader's id).
    pub old_tid: u32,
    /// Bytes of `filename` used, NUL excluded.
    pub filename_len: u32,
    /// Bytes of `args` used.
    pub args_len: u32,
    /// [`EXEC_ARGS_TRUNCATED`] or 0.
    pub flags: u32,
    /// `linux_binprm.filename`.
    pub filename: [u8; FILENAME_LEN],
    /// argv as the process sees it: NUL-separated strings.
    pub args: [u8; ARGS_LEN],
}

/// `ExitRecord::flags`: this was the last thread, so the process has exited.
pub const EXIT_PROCESS: u32 = 1;

/// `sched_process_exit`; the header is the exiting task.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    pub header: Header,
    /// `task_struct.exit_code`, a wait status: `(code << 8)` for exit(code), the signal number
    /// (`| 0x80` when it dumped core) when killed.
    pub exit_code: u32,
    /// [`EXIT_PROCESS`] or 0.
    pub flags: u32,
}

/// `WaitRecord::which` for `wait4` (which has no `which` argument).
pub const WAIT_WHICH_WAIT4: i32 = -1;
/// `WaitRecord::flags`: the call collected an exited child and released it.
pub const WAIT_REAPED: u32 = 1;
/// `WaitRecord::flags`: `status` holds the wait status read from the caller's memory.
pub const WAIT_STATUS_KNOWN: u32 = 2;

/// Return of `wait4`/`waitid`; the header is the waiting task.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitRecord {
    pub header: Header,
    /// When the call was entered (0 when the entry was not seen).
    pub start_ns: u64,
    /// The syscall's return value (a pid, 0, or a negative errno).
    pub ret: i64,
    /// The `options` argument.
    pub options: u32,
    /// The `upid` argument (wait4: -1 any child, >0 a pid, 0/<-1 a process group).
    pub upid: i32,
    /// waitid's `which`, or [`WAIT_WHICH_WAIT4`].
    pub which: i32,
    /// The collected child's pid as the waiter's namespace numbers it (0 when none).
    pub child_ns_pid: i32,
    /// Host pid of the collected child when it was resolved (0 when none or unknown).
    pub child_pid: u32,
    /// Wait status (wait4) or `si_status` (waitid) when [`WAIT_STATUS_KNOWN`].
    pub status: i32,
    /// waitid's `si_code` (CLD_EXITED 1, CLD_KILLED 2, CLD_DUMPED 3, ...), 0 for wait4.
    pub si_code: i32,
    /// [`WAIT_REAPED`] | [`WAIT_STATUS_KNOWN`].
    pub flags: u32,
}

/// How a process was released.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReapHow {
    /// Its parent (or adoptive reaper) collected it with `wait4`/`waitid`.
    Wait = 1,
    /// The kernel released it at exit because its parent ignores SIGCHLD or set SA_NOCLDWAIT.
    Autoreap = 2,
    /// Released without a wait syscall being seen (io_uring waitid, a kernel-internal wait,
    /// a ptracer).
    Other = 3,
}

/// An unknown value in `ReapRecord::how`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownReapHow(pub u32);

impl TryFrom<u32> for ReapHow {
    type Error = UnknownReapHow;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Ok(match value {
            1 => Self::Wait,
            2 => Self::Autoreap,
            3 => Self::Other,
            other => return Err(UnknownReapHow(other)),
        })
    }
}

/// A process released; the header is the process as it exited, with `ts_ns` the release time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapRecord {
    pub header: Header,
    /// Host pid of the process that released it (the parent for autoreap).
    pub reaper_pid: u32,
    /// Host tid of the thread that released it.
    pub reaper_tid: u32,
    /// A [`ReapHow`] number.
    pub how: u32,
    /// The exit's wait status.
    pub exit_code: u32,
    /// When it exited.
    pub exit_ns: u64,
    /// How long it was a zombie (0 for autoreap: it never was one).
    pub zombie_ns: u64,
    /// comm of the reaper.
    pub reaper_comm: [u8; COMM_LEN],
}

/// What a signal's target had installed for it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Default = 0,
    Ignore = 1,
    Handler = 2,
}

/// An unknown value in a disposition field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownDisposition(pub u32);

impl TryFrom<u32> for Disposition {
    type Error = UnknownDisposition;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::Default,
            1 => Self::Ignore,
            2 => Self::Handler,
            other => return Err(UnknownDisposition(other)),
        })
    }
}

/// The kernel's `enum trace_signal_result`, as `signal:signal_generate` reports it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalResult {
    Delivered = 0,
    Ignored = 1,
    AlreadyPending = 2,
    Overflow = 3,
    LoseInfo = 4,
}

/// An unknown value in `SignalRecord::result`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownSignalResult(pub u32);

impl TryFrom<u32> for SignalResult {
    type Error = UnknownSignalResult;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Ok(match value {
            0 => Self::Delivered,
            1 => Self::Ignored,
            2 => Self::AlreadyPending,
            3 => Self::Overflow,
            4 => Self::LoseInfo,
            other => return Err(UnknownSignalResult(other)),
        })
    }
}

/// `signal:signal_generate`; the header is the sending task (for signals the kernel raises,
/// the task on whose behalf it did: the exiting child for SIGCHLD, the faulting one for SIGSEGV).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalRecord {
    pub header: Header,
    pub sig: u32,
    /// `si_code` (SI_USER 0, SI_KERNEL 0x80, SI_QUEUE -1, SI_TKILL -6, CLD_* for SIGCHLD…);
    /// [`SI_CODE_NONE`] when the kernel passed no siginfo.
    pub code: i32,
    /// A [`SignalResult`] number.
    pub result: u32,
    /// Non-zero when process-directed, 0 when thread-directed.
    pub group: u32,
    pub target_pid: u32,
    pub target_tid: u32,
    pub target_ns_pid: u32,
    pub target_pidns: u32,
    /// The target's [`Disposition`] for `sig` at this moment.
    pub disposition: u32,
    /// Non-zero when the target thread blocks `sig`.
    pub blocked: u32,
    pub target_start_ns: u64,
    pub target_comm: [u8; COMM_LEN],
}

/// `SignalRecord::code` when the kernel passed `SEND_SIG_NOINFO`/`SEND_SIG_PRIV` (no siginfo).
pub const SI_CODE_NONE: i32 = i32::MIN;

/// `signal:signal_deliver`; the header is the receiving task.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalDeliverRecord {
    pub header: Header,
    pub sig: u32,
    pub code: i32,
    /// A [`Disposition`] number.
    pub disposition: u32,
    /// Low 32 bits of `sa_flags`.
    pub sa_flags: u32,
}

/// Number of [`SignalResult`] values: [`SignalBurstRecord::results`] has a count for each.
pub const SIGNAL_RESULTS: usize = SignalResult::LoseInfo as usize + 1;

/// Repeats of one `signal` event, counted per CPU in the kernel instead of written one by one
/// (see [`SignalRuns`](crate::SignalRuns)): `count` more signals like `signal` (same sending
/// thread, target thread and process, signal, si_code, group and disposition), the first at
/// `first_ns`, the last at `signal.header.ts_ns`, with the kernel's result for each counted in
/// `results`, and how many found the target blocking the signal in `blocked` (a handler blocks
/// its own signal while it runs, so in a storm to a handler this comes and goes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalBurstRecord {
    /// The `signal` record that opened the run, with `header.kind` [`EventKind::SignalBurst`]
    /// and `header.ts_ns` the last repeat; its `result` and `blocked` are unused (0).
    pub signal: SignalRecord,
    /// When the first repeat was sent.
    pub first_ns: u64,
    /// Repeats: the sum of `results`.
    pub count: u64,
    /// Repeats by [`SignalResult`] number.
    pub results: [u64; SIGNAL_RESULTS],
    /// Repeats sent while the target thread blocked the signal.
    pub blocked: u64,
}

/// Repeats of one `signal_deliver` event, counted like [`SignalBurstRecord`]: `count` more
/// deliveries exactly like `deliver` (same thread, signal, si_code, disposition, sa_flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliverBurstRecord {
    /// The `signal_deliver` record that opened the run, with `header.kind`
    /// [`EventKind::DeliverBurst`] and `header.ts_ns` the last repeat.
    pub deliver: SignalDeliverRecord,
    /// When the first repeat was delivered.
    pub first_ns: u64,
    /// Repeats.
    pub count: u64,
}

/// Events could not be written to the ring buffer; the header is the task whose event
/// carried this report (the first one that fit after the loss).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LostRecord {
    pub header: Header,
    /// Events lost on `header.cpu` since the previous report.
    pub count: u64,
    /// Events lost on that CPU since the probes were loaded.
    pub total: u64,
}

const _: () = assert!(core::mem::size_of::<Header>() == 72);
const _: () = assert!(core::mem::size_of::<ForkRecord>() == 72 + 32);
const _: () = assert!(core::mem::size_of::<ExecRecord>() == 72 + 16 + FILENAME_LEN + ARGS_LEN);
const _: () = assert!(core::mem::size_of::<ExitRecord>() == 72 + 8);
const _: () = assert!(core::mem::size_of::<WaitRecord>() == 72 + 48);
const _: () = assert!(core::mem::size_of::<ReapRecord>() == 72 + 48);
const _: () = assert!(core::mem::size_of::<SignalRecord>() == 72 + 64);
const _: () = assert!(core::mem::size_of::<SignalDeliverRecord>() == 72 + 16);
const _: () = assert!(core::mem::size_of::<LostRecord>() == 72 + 16);
const _: () =
    assert!(core::mem::size_of::<SignalBurstRecord>() == 72 + 64 + 16 + 8 * SIGNAL_RESULTS + 8);
const _: () = assert!(core::mem::size_of::<DeliverBurstRecord>() == 72 + 16 + 16);
