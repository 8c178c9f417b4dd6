//! Maps and load-time globals. Names are shared with userspace through `tracer_common`.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, PerCpuArray, RingBuf},
};
use tracer_common::{
    CpuState, DEFAULT_RING_BYTES, MAX_PID_SLOTS, NsPidKey, PROBE_ERROR_KINDS, ProbeError,
    SignalRuns, WaitArgs, WaitSlot, ZombieRecord, ZombieSlot, offsets::Offsets,
};

/// Every event. Userspace resizes it at load time (`--ring-size`).
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

/// Events that did not fit in `EVENTS`, and reader wake-ups, per CPU.
#[map]
pub static CPU_STATE: PerCpuArray<CpuState> = PerCpuArray::with_max_entries(1, 0);

/// Probe failures per CPU, by `ProbeError`.
#[map]
pub static ERRORS: PerCpuArray<u64> = PerCpuArray::with_max_entries(PROBE_ERROR_KINDS, 0);

/// Exited processes not yet released, by host tgid: those whose slot in `ZOMBIE_SLOTS` was
/// taken, and the zombies the tracer found in /proc at its start.
/// Sized for a host full of zombies; when it is full the reap of the extra ones is reported
/// without the zombie's exit details.
#[map]
pub static ZOMBIES: HashMap<u32, ZombieRecord> = HashMap::with_max_entries(65536, 0);

/// The same zombies by (pid namespace, pid): a wait returns the pid as the waiter sees it.
#[map]
pub static ZOMBIE_PIDS: HashMap<NsPidKey, u32> = HashMap::with_max_entries(65536, 0);

/// wait4/waitid calls in progress, by tid, whose slot in `WAIT_SLOTS` was taken. The
/// syscall-exit tracepoint runs even for a call ended by a fatal signal (before the signal is
/// acted on), so every entry is removed.
#[map]
pub static WAITS: HashMap<u32, WaitArgs> = HashMap::with_max_entries(16384, 0);

/// Repeats of signal events counted per CPU instead of written one by one (see `runs`).
#[map]
pub static SIGNAL_RUNS: PerCpuArray<SignalRuns> = PerCpuArray::with_max_entries(1, 0);

/// Kernel structure offsets, set by userspace from the running kernel's BTF.
#[unsafe(no_mangle)]
pub static OFFSETS: Offsets = unsafe { core::mem::zeroed() };

/// Non-zero: report thread creation and thread exits too.
#[unsafe(no_mangle)]
pub static TRACE_THREADS: u32 = 0;

/// Bytes waiting in `EVENTS` that make the next event wake the reader at once.
#[unsafe(no_mangle)]
pub static WAKEUP_BYTES: u64 = (DEFAULT_RING_BYTES / 4) as u64;

/// Reads one field of `OFFSETS`. Volatile: the value is patched in after compilation.
macro_rules! off {
    ($field:ident) => {{
        #[allow(unused_unsafe)]
        let value = unsafe { core::ptr::read_volatile(&$crate::maps::OFFSETS.$field) };
        value as usize
    }};
}
pub(crate) use off;

pub fn trace_threads() -> bool {
    unsafe { core::ptr::read_volatile(&TRACE_THREADS) != 0 }
}

/// Non-zero when `bpf_get_current_task_btf()` exists (set by userspace from the kernel version).
#[unsafe(no_mangle)]
pub static CURRENT_TASK_BTF: u32 = 0;

pub fn current_task_btf() -> bool {
    unsafe { core::ptr::read_volatile(&CURRENT_TASK_BTF) != 0 }
}

pub fn wakeup_bytes() -> u64 {
    unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) }
}

/// Counts a probe failure.
pub fn count_error(error: ProbeError) {
    if let Some(slot) = ERRORS.get_ptr_mut(error as u32) {
        unsafe { *slot += 1 };
    }
}

/// Counts a probe failure and logs it through aya-log (silent unless the tracer runs with
/// `--debug`: userspace sets the log level to off otherwise, which skips the logging code).
#[inline(always)]
pub fn report<C: aya_ebpf::EbpfContext>(ctx: &C, probe: &str, error: ProbeError) {
    count_error(error);
    let what = match error {
        ProbeError::KernelRead => "kernel read failed",
        ProbeError::UserRead => "user memory read failed",
        ProbeError::MapFull => "bookkeeping map full",
    };
    aya_log_ebpf::debug!(ctx, "{}: {}", probe, what);
}

/// wait4/waitid calls in progress, by `tid & PID_SLOT_MASK` (see `slot`). Userspace sizes it.
#[map]
pub static WAIT_SLOTS: Array<WaitSlot> = Array::with_max_entries(MAX_PID_SLOTS, 0);

/// Exited processes until their task is freed, by `pid & PID_SLOT_MASK` (see `slot`).
/// Userspace sizes it.
#[map]
pub static ZOMBIE_SLOTS: Array<ZombieSlot> = Array::with_max_entries(MAX_PID_SLOTS, 0);

/// Entries in `WAIT_SLOTS` and `ZOMBIE_SLOTS` minus one (their size is a power of two).
#[unsafe(no_mangle)]
pub static PID_SLOT_MASK: u32 = MAX_PID_SLOTS - 1;

pub fn pid_slot_mask() -> u32 {
    unsafe { core::ptr::read_volatile(&PID_SLOT_MASK) }
}
