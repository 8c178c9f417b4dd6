//! Wire types shared by the eBPF probes and the userspace daemon.
//!
//! Everything here is `#[repr(C)]` plain integers and byte arrays, laid out so that no field
//! needs implicit padding: the kernel writes these bytes and userspace reads them back, so the
//! layout is the contract. Userspace never transmutes the bytes into an enum or a `bool`; it
//! checks `Header::kind` and the record length first (see `tracer::decode`).
#![no_std]

pub mod event;
pub mod kernel;
pub mod offsets;

pub use event::*;

/// Name of the ring buffer map every probe writes to.
pub const EVENTS_MAP: &str = "EVENTS";
/// Name of the per-CPU array of [`CpuState`]: events lost, and when the reader was last woken.
pub const CPU_STATE_MAP: &str = "CPU_STATE";
/// Name of the per-CPU array counting probe failures, by [`ProbeError`] index.
pub const ERRORS_MAP: &str = "ERRORS";
/// Name of the map of exited-but-unreaped processes, keyed by host tgid.
pub const ZOMBIES_MAP: &str = "ZOMBIES";
/// Name of the map from (pid namespace, pid number) to the host tgid of a zombie.
pub const ZOMBIE_PIDS_MAP: &str = "ZOMBIE_PIDS";
/// Name of the per-thread map holding the arguments of a `wait4`/`waitid` in progress.
pub const WAITS_MAP: &str = "WAITS";
/// Name of the per-CPU array of [`SignalRuns`].
pub const SIGNAL_RUNS_MAP: &str = "SIGNAL_RUNS";
/// Name of the array of waits in progress indexed by tid (masked): the common case of
/// [`WAITS_MAP`].
pub const WAIT_SLOTS_MAP: &str = "WAIT_SLOTS";
/// Name of the array of exited processes indexed by pid (masked): the common case of
/// [`ZOMBIES_MAP`].
pub const ZOMBIE_SLOTS_MAP: &str = "ZOMBIE_SLOTS";
/// Global set at load time: entries in the two slot arrays minus one (a power of two minus one).
pub const GLOBAL_PID_SLOT_MASK: &str = "PID_SLOT_MASK";
/// Most entries of each slot array. Userspace sizes them from `pid_max`, up to this.
pub const MAX_PID_SLOTS: u32 = 65536;

/// Global (read-only data) set at load time: non-zero to emit thread fork/exit events.
pub const GLOBAL_TRACE_THREADS: &str = "TRACE_THREADS";
/// Global set at load time: wake the reader once this many bytes wait in the ring buffer.
pub const GLOBAL_WAKEUP_BYTES: &str = "WAKEUP_BYTES";

/// The probes wake the reader for an event at most this often per CPU (or sooner when
/// [`GLOBAL_WAKEUP_BYTES`] are waiting). Waking the reader for every event costs an
/// inter-processor interrupt each, which under a signal or fork storm costs more than the
/// probes themselves.
pub const WAKEUP_INTERVAL_NS: u64 = 10_000_000;
/// After a read that found events, the reader reads again this much later, whether woken or
/// not: events written without a wakeup come at most [`WAKEUP_INTERVAL_NS`] after one.
pub const STRAGGLER_READ_NS: u64 = 2 * WAKEUP_INTERVAL_NS;

/// Default ring buffer size in bytes (must be a power of two multiple of the page size).
pub const DEFAULT_RING_BYTES: u32 = 8 * 1024 * 1024;

/// Inode number of the host's (initial) pid namespace: a fixed kernel constant
/// (`PROC_PID_INIT_INO`).
pub const PROC_PID_INIT_INO: u32 = 0xEFFF_FFFC;

/// Global set at load time: non-zero when the kernel has `bpf_get_current_task_btf()` (5.11+).
pub const GLOBAL_CURRENT_TASK_BTF: &str = "CURRENT_TASK_BTF";

/// Offset of `args[0]` in a `syscalls:sys_enter_*` record and of `ret` in a `sys_exit_*`
/// record: after the 8-byte `struct trace_entry` and the syscall number, 8-aligned. The probes
/// read them as constants; userspace checks tracefs agrees before loading.
pub const SYS_ENTER_ARGS: usize = 16;
pub const SYS_EXIT_RET: usize = 16;

/// Maximum number of pid namespace levels recorded per zombie (host level included).
pub const MAX_PID_LEVELS: usize = 4;

/// Per-CPU state of the probes. `lost_pending` is what no `Lost` record has reported yet;
/// `lost_total` only grows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuState {
    pub lost_pending: u64,
    pub lost_total: u64,
    /// Boot-clock time this CPU last woke the reader.
    pub last_wakeup_ns: u64,
}

/// A run of identical signal events collects repeats for at most this long after its first
/// event; the next identical event after that is written as a record of its own and opens a
/// new run. Also how long userspace waits after reading the record that opened a run before it
/// nudges the CPUs that still hold counts (see [`NUDGE_SIGNAL`]).
pub const SIGNAL_RUN_NS: u64 = 10_000_000;

/// Per-CPU state of the signal probes: the open run of each kind. The first event of a run is
/// written as usual; its repeats on the same CPU are only counted here, and written as one burst
/// record before the next record this CPU writes (any kind), when a different signal event
/// replaces the run, or when userspace nudges this CPU. What is still counted when the probes
/// are detached, userspace reads from the map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalRuns {
    /// The open `signal_generate` run: its template record and the repeats not yet written.
    pub generate: SignalBurstRecord,
    /// The open `signal_deliver` run.
    pub deliver: DeliverBurstRecord,
    /// Boot-clock time the `signal_generate` run started (its first event); 0: none open.
    pub generate_start_ns: u64,
    /// The same for the `signal_deliver` run.
    pub deliver_start_ns: u64,
    /// Non-zero while a probe on this CPU is changing this state: a probe that interrupts it
    /// (an interrupt that raises a signal during another probe's flush) leaves it alone.
    pub busy: u64,
}

/// The nudge: a thread-directed signal the tracer sends to its own thread, pinned on one CPU,
/// so that `signal_generate` runs there and writes that CPU's pending counts. The probes know
/// it by this signal (SIGURG), si_code `SI_QUEUE`, [`NUDGE_VALUE`] as `si_value`, and a sender
/// that is its own target, and report nothing about it.
pub const NUDGE_SIGNAL: u32 = 23;
/// `si_value` of a nudge (any tracer's: one tracer does not report another's nudges).
pub const NUDGE_VALUE: u64 = 0x7472_6163_6572_4e55;

/// Why a probe could not do its work. Index into [`ERRORS_MAP`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// `bpf_probe_read_kernel` failed.
    KernelRead = 0,
    /// `bpf_probe_read_user` failed (a wait status or siginfo the caller passed).
    UserRead = 1,
    /// A bookkeeping map was full.
    MapFull = 2,
}

/// Number of [`ProbeError`] slots in [`ERRORS_MAP`].
pub const PROBE_ERROR_KINDS: u32 = 3;

/// Key of [`ZOMBIE_PIDS_MAP`]: a pid number as seen in one pid namespace.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NsPidKey {
    /// Inode number of the pid namespace.
    pub pidns: u32,
    /// The pid in that namespace.
    pub nr: u32,
}

/// Value of [`ZOMBIES_MAP`]: what the exit looked like, kept until the process is released.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ZombieRecord {
    /// The exit event's header (the exiting process as it was when it exited).
    pub header: Header,
    /// `task_struct.exit_code` (a wait status).
    pub exit_code: u32,
    /// Number of valid entries in `keys`.
    pub levels: u32,
    /// The process's pid in each namespace it is visible in, deepest last.
    pub keys: [NsPidKey; MAX_PID_LEVELS],
}

/// Value of [`WAITS_MAP`]: a wait syscall between entry and return, keyed by tid.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitArgs {
    /// Boot-clock time of the syscall entry.
    pub start_ns: u64,
    /// wait4: `stat_addr`; waitid: `infop` (user pointers, 0 when none).
    pub user_ptr: u64,
    /// wait4: `upid`; waitid: `upid`.
    pub upid: i32,
    /// waitid: `which` (P_ALL 0, P_PID 1, P_PGID 2, P_PIDFD 3); wait4: [`WAIT_WHICH_WAIT4`].
    pub which: i32,
    /// The `options` argument.
    pub options: u32,
    /// Non-zero once `sched_process_wait` has seen this call enter `do_wait`.
    pub entered: u32,
}

/// Value of [`WAIT_SLOTS_MAP`]: a `wait4`/`waitid` in progress, in the slot of its thread.
/// A slot is taken by adding 1 to `claims` and reading 1 back (see the probes' `slot` module).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct WaitSlot {
    /// The thread whose call this is; 0 when the slot is free.
    pub tid: u32,
    pub _pad: u32,
    pub claims: u64,
    pub args: WaitArgs,
}

/// Value of [`ZOMBIE_SLOTS_MAP`]: an exited process, in the slot of its pid from its exit until
/// its task is freed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ZombieSlot {
    /// Host pid (tgid) of the process; 0 when the slot is free.
    pub pid: u32,
    /// Non-zero once a wait's return reported the release; the slot is given back when the task
    /// is freed (which happens exactly once).
    pub reported: u32,
    pub claims: u64,
    pub zombie: ZombieRecord,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are repr(C) plain integers and arrays without padding.
    unsafe impl aya::Pod for super::CpuState {}
    unsafe impl aya::Pod for super::NsPidKey {}
    unsafe impl aya::Pod for super::ZombieRecord {}
    unsafe impl aya::Pod for super::WaitArgs {}
    unsafe impl aya::Pod for super::SignalRuns {}
    unsafe impl aya::Pod for super::WaitSlot {}
    unsafe impl aya::Pod for super::ZombieSlot {}
}

const _: () = assert!(core::mem::size_of::<CpuState>() == 24);
const _: () = assert!(core::mem::size_of::<NsPidKey>() == 8);
const _: () = assert!(core::mem::size_of::<WaitArgs>() == 32);
const _: () = assert!(core::mem::size_of::<WaitSlot>() == 16 + 32);
const _: () =
    assert!(core::mem::size_of::<ZombieSlot>() == 16 + core::mem::size_of::<ZombieRecord>());
const _: () = assert!(
    core::mem::size_of::<SignalRuns>()
        == core::mem::size_of::<SignalBurstRecord>()
            + core::mem::size_of::<DeliverBurstRecord>()
            + 24
);
const _: () = assert!(
    core::mem::size_of::<ZombieRecord>() == core::mem::size_of::<Header>() + 8 + 8 * MAX_PID_LEVELS
);
