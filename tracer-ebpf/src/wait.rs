//! wait4/waitid: who waits, for whom, and which child a call collected.
//!
//! The syscall entry records the arguments (the user pointer where the kernel writes the
//! status); `sched_process_wait` marks the call as inside `do_wait`; the syscall exit emits
//! the `Wait` record and, when the call released a zombie, its `Reap` record. The call is kept
//! in the thread's slot (`slot`), or in `WAITS` when another thread has that slot.

use aya_ebpf::{
    EbpfContext as _,
    helpers::bpf_probe_read_user,
    macros::{btf_tracepoint, tracepoint},
    programs::{BtfTracePointContext, TracePointContext},
};
use tracer_common::{
    EventKind, NsPidKey, PROC_PID_INIT_INO, ProbeError, ReapHow, SYS_ENTER_ARGS, SYS_EXIT_RET,
    WAIT_REAPED, WAIT_STATUS_KNOWN, WAIT_WHICH_WAIT4, WaitArgs, WaitRecord, kernel,
};

use crate::{
    emit,
    maps::{WAITS, ZOMBIE_PIDS, ZOMBIES, count_error},
    reap, slot,
    task::{current_tid, fill_header, now},
};

/// Loads a field of the tracepoint record. The verifier only allows context loads at offsets
/// written into the instruction, so these are compile-time constants: the syscall record
/// layout (`struct syscall_trace_enter/exit`), which userspace checks against tracefs before
/// loading the probes.
macro_rules! field {
    ($ctx:expr, $ty:ty, $offset:expr) => {{
        const OFFSET: usize = $offset;
        unsafe { core::ptr::read_volatile(($ctx.as_ptr() as *const u8).add(OFFSET) as *const $ty) }
    }};
}

/// The `n`th syscall argument of a `syscalls:sys_enter_*` record.
macro_rules! arg {
    ($ctx:expr, $n:literal) => {
        field!($ctx, u64, SYS_ENTER_ARGS + $n * 8)
    };
}

fn record_entry(args: WaitArgs) {
    let tid = current_tid();
    if let Some(slot) = slot::enter_wait(tid) {
        unsafe { *slot = args };
    } else if WAITS.insert(&tid, &args, 0).is_err() {
        count_error(ProbeError::MapFull);
    }
}

/// The wait4/waitid call `tid` is in, if its entry was seen.
#[inline(always)]
pub fn in_flight(tid: u32) -> Option<*mut WaitArgs> {
    slot::wait_of(tid).or_else(|| WAITS.get_ptr_mut(&tid))
}

#[tracepoint]
pub fn sys_enter_wait4(ctx: TracePointContext) -> u32 {
    let entry = || -> Result<(), ProbeError> {
        record_entry(WaitArgs {
            start_ns: now(),
            upid: arg!(ctx, 0) as i32,
            user_ptr: arg!(ctx, 1),
            options: arg!(ctx, 2) as u32,
            which: WAIT_WHICH_WAIT4,
            entered: 0,
        });
        Ok(())
    };
    if let Err(error) = entry() {
        crate::maps::report(&ctx, "sys_enter_wait4", error);
    }
    0
}

#[tracepoint]
pub fn sys_enter_waitid(ctx: TracePointContext) -> u32 {
    let entry = || -> Result<(), ProbeError> {
        record_entry(WaitArgs {
            start_ns: now(),
            which: arg!(ctx, 0) as i32,
            upid: arg!(ctx, 1) as i32,
            user_ptr: arg!(ctx, 2),
            options: arg!(ctx, 3) as u32,
            entered: 0,
        });
        Ok(())
    };
    if let Err(error) = entry() {
        crate::maps::report(&ctx, "sys_enter_waitid", error);
    }
    0
}

#[btf_tracepoint(function = "sched_process_wait")]
pub fn sched_process_wait(_ctx: BtfTracePointContext) -> i32 {
    if let Some(args) = in_flight(current_tid()) {
        unsafe { (*args).entered = 1 };
    }
    0
}

#[tracepoint]
pub fn sys_exit_wait4(ctx: TracePointContext) -> u32 {
    if let Err(error) = on_exit(&ctx, false) {
        crate::maps::report(&ctx, "sys_exit_wait4", error);
    }
    0
}

#[tracepoint]
pub fn sys_exit_waitid(ctx: TracePointContext) -> u32 {
    if let Err(error) = on_exit(&ctx, true) {
        crate::maps::report(&ctx, "sys_exit_waitid", error);
    }
    0
}

fn on_exit(ctx: &TracePointContext, waitid: bool) -> Result<(), ProbeError> {
    let tid = current_tid();
    let args = match slot::leave_wait(tid) {
        Some(args) => args,
        None => {
            let args = unsafe { WAITS.get(&tid) }.copied().unwrap_or(WaitArgs {
                which: if waitid { 0 } else { WAIT_WHICH_WAIT4 },
                ..WaitArgs::default()
            });
            let _ = WAITS.remove(&tid);
            args
        }
    };
    let ret: i64 = field!(ctx, i64, SYS_EXIT_RET);

    let mut record = WaitRecord {
        start_ns: args.start_ns,
        ret,
        options: args.options,
        upid: args.upid,
        which: args.which,
        ..WaitRecord::default()
    };
    fill_header(&mut record.header, EventKind::Wait as u32)?;

    let user = args.user_ptr as *const u8;
    let mut exited = false;
    if waitid {
        if ret == 0 && !user.is_null() {
            let code: i32 = read_user(user, kernel::SIGINFO_CODE)?;
            let child: i32 = read_user(user, kernel::SIGINFO_PID)?;
            record.si_code = code;
            record.status = read_user(user, kernel::SIGINFO_STATUS)?;
            record.flags |= WAIT_STATUS_KNOWN;
            record.child_ns_pid = child;
            exited = child > 0
                && (kernel::CLD_EXITED..=kernel::CLD_DUMPED).contains(&code)
                && args.options & kernel::WNOWAIT == 0;
        }
    } else if ret > 0 {
        record.child_ns_pid = ret as i32;
        exited = true;
        if !user.is_null() {
            let status: i32 = read_user(user, 0)?;
            record.status = status;
            record.flags |= WAIT_STATUS_KNOWN;
            // Neither a stop report ((status & 0xff) == 0x7f) nor a continue (0xffff).
            exited = status & 0xff != 0x7f && status != 0xffff;
        }
    }
    if exited {
        let key = NsPidKey {
            pidns: record.header.pidns,
            nr: record.child_ns_pid as u32,
        };
        // A waiter in the host namespace gets host pids; elsewhere, look the alias up.
        let resolved = if key.pidns == PROC_PID_INIT_INO {
            Some(key.nr)
        } else {
            unsafe { ZOMBIE_PIDS.get(&key) }.copied()
        };
        if let Some((pid, zombie, kept)) = resolved.and_then(|pid| match slot::zombie(pid) {
            Some(zombie) => Some((pid, zombie, reap::Kept::Slot)),
            None => Some((pid, unsafe { ZOMBIES.get(&pid) }?, reap::Kept::Map)),
        }) {
            record.child_pid = pid;
            record.flags |= WAIT_REAPED;
            {
                let reaper = reap::Reaper {
                    pid: record.header.pid,
                    tid,
                    comm: record.header.comm,
                };
                reap::emit(zombie, &reaper, ReapHow::Wait, record.header.ts_ns);
                reap::forget(zombie, kept);
            }
        }
    }
    emit::output(&record);
    Ok(())
}

fn read_user<T>(base: *const u8, offset: usize) -> Result<T, ProbeError> {
    unsafe { bpf_probe_read_user(base.wrapping_add(offset) as *const T) }
        .map_err(|_| ProbeError::UserRead)
}
