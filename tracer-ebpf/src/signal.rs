//! `signal_generate` (a signal was sent, and what the kernel did with it) and
//! `signal_deliver` (a task is about to act on a signal). Repeats of the same event on one CPU
//! are counted rather than written (see `runs`); the cheap fields that tell a repeat are read
//! first, the rest only for an event that is written.

use aya_ebpf::{
    helpers::bpf_get_current_task, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use tracer_common::{
    Disposition, EventKind, NUDGE_SIGNAL, NUDGE_VALUE, ProbeError, SignalDeliverRecord,
    SignalRecord, kernel,
};

use crate::{
    emit,
    maps::off,
    runs::{self, DeliverKey, GenerateKey},
    task::{Task, comm_of, fill_header, probe_read, read, read_ptr, task_ids},
};

/// `SEND_SIG_NOINFO` and `SEND_SIG_PRIV`: the kernel's stand-ins for "no siginfo".
const SEND_SIG_NOINFO: usize = 0;
const SEND_SIG_PRIV: usize = 1;
/// si_code values the kernel implies for them.
const SI_USER: i32 = 0;
const SI_KERNEL: i32 = 0x80;

fn disposition(handler: u64) -> Disposition {
    match handler {
        kernel::SIG_DFL => Disposition::Default,
        kernel::SIG_IGN => Disposition::Ignore,
        _ => Disposition::Handler,
    }
}

fn si_code(info: *const u8) -> Result<i32, ProbeError> {
    match info as usize {
        SEND_SIG_NOINFO => Ok(SI_USER),
        SEND_SIG_PRIV => Ok(SI_KERNEL),
        _ => Ok(read(info, kernel::SIGINFO_CODE)),
    }
}

#[btf_tracepoint(function = "signal_generate")]
pub fn signal_generate(ctx: BtfTracePointContext) -> i32 {
    if let Err(error) = try_signal_generate(&ctx) {
        crate::maps::report(&ctx, "signal_generate", error);
    }
    0
}

fn try_signal_generate(ctx: &BtfTracePointContext) -> Result<(), ProbeError> {
    let sig: i32 = ctx.arg(0);
    let info: *const u8 = ctx.arg(1);
    let target: Task = ctx.arg(2);
    let group: i32 = ctx.arg(3);
    let result: i32 = ctx.arg(4);
    if sig < 1 || sig as u32 > kernel::NSIG {
        return Ok(());
    }
    let code = si_code(info)?;
    if is_nudge(sig as u32, code, info, target) {
        runs::nudged();
        return Ok(());
    }
    let index = (sig as usize - 1) & (kernel::NSIG as usize - 1);
    let sighand = read_ptr(target, off!(task_sighand));
    let handler: u64 = if sighand.is_null() {
        kernel::SIG_DFL
    } else {
        // Indexed by the signal number: a computed address, so a probe read.
        let action = sighand.wrapping_add(off!(sighand_action) + index * off!(k_sigaction_size));
        probe_read(action.wrapping_add(off!(k_sigaction_handler)))?
    };
    let blocked: u64 = read(target, off!(task_blocked));
    let leader = read_ptr(target, off!(task_group_leader));
    let key = GenerateKey {
        target_tid: read(target, off!(task_pid)),
        target_start_ns: read(leader, off!(task_start_boottime)),
        sig: sig as u32,
        code,
        group: group as u32,
        disposition: disposition(handler) as u32,
    };
    let blocked = ((blocked >> index) & 1) as u32;
    if runs::repeat_generate(&key, result as u32, blocked != 0) {
        return Ok(());
    }
    let ids = task_ids(target)?;
    let mut record = SignalRecord {
        sig: key.sig,
        code,
        result: result as u32,
        group: key.group,
        target_pid: ids.pid,
        target_tid: ids.tid,
        target_ns_pid: ids.ns_pid,
        target_pidns: ids.pidns,
        disposition: key.disposition,
        blocked,
        target_start_ns: ids.start_ns,
        target_comm: comm_of(target)?,
        ..SignalRecord::default()
    };
    fill_header(&mut record.header, EventKind::Signal as u32)?;
    emit::output(&record);
    runs::open_generate(&record);
    Ok(())
}

/// A tracer's nudge (see `tracer_common::NUDGE_SIGNAL`): sent by a thread to itself.
#[inline(always)]
fn is_nudge(sig: u32, code: i32, info: *const u8, target: Task) -> bool {
    sig == NUDGE_SIGNAL
        && code == kernel::SI_QUEUE
        && target as u64 == unsafe { bpf_get_current_task() }
        && read::<u64>(info, kernel::SIGINFO_VALUE) == NUDGE_VALUE
}

#[btf_tracepoint(function = "signal_deliver")]
pub fn signal_deliver(ctx: BtfTracePointContext) -> i32 {
    if let Err(error) = try_signal_deliver(&ctx) {
        crate::maps::report(&ctx, "signal_deliver", error);
    }
    0
}

fn try_signal_deliver(ctx: &BtfTracePointContext) -> Result<(), ProbeError> {
    let sig: i32 = ctx.arg(0);
    let info: *const u8 = ctx.arg(1);
    let action: *const u8 = ctx.arg(2);
    let handler: u64 = read(action, off!(k_sigaction_handler));
    let flags: u64 = read(action, off!(k_sigaction_flags));
    let key = DeliverKey {
        sig: sig as u32,
        code: si_code(info)?,
        disposition: disposition(handler) as u32,
        sa_flags: flags as u32,
    };
    if runs::repeat_deliver(&key) {
        return Ok(());
    }
    let mut record = SignalDeliverRecord {
        sig: key.sig,
        code: key.code,
        disposition: key.disposition,
        sa_flags: key.sa_flags,
        ..SignalDeliverRecord::default()
    };
    fill_header(&mut record.header, EventKind::SignalDeliver as u32)?;
    emit::output(&record);
    runs::open_deliver(&record);
    Ok(())
}
