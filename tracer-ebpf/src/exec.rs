//! `sched_process_exec`: a process replaced its program.

use aya_ebpf::{
    helpers::{bpf_probe_read_kernel_str_bytes, generated::bpf_probe_read_user},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use tracer_common::{ARGS_LEN, EXEC_ARGS_TRUNCATED, EventKind, ExecRecord, ProbeError};

use crate::{
    emit,
    maps::off,
    task::{Task, fill_header_of, read, read_ptr},
};

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    if let Err(error) = try_sched_process_exec(&ctx) {
        crate::maps::report(&ctx, "sched_process_exec", error);
    }
    0
}

fn try_sched_process_exec(ctx: &BtfTracePointContext) -> Result<(), ProbeError> {
    let task: Task = ctx.arg(0);
    let old_tid: i32 = ctx.arg(1);
    let bprm: *const u8 = ctx.arg(2);
    let Some(mut entry) = emit::reserve::<ExecRecord>() else {
        return Ok(());
    };
    let record = unsafe { &mut *entry.as_mut_ptr() };
    let filled = fill(record, task, old_tid, bprm);
    if filled.is_err() {
        entry.discard(0);
        return filled;
    }
    entry.submit(emit::submit_flags());
    Ok(())
}

#[inline(always)]
fn fill(
    record: &mut ExecRecord,
    task: Task,
    old_tid: i32,
    bprm: *const u8,
) -> Result<(), ProbeError> {
    // The task exec'ing is the current one.
    fill_header_of(&mut record.header, EventKind::Exec as u32, task)?;
    record.old_tid = old_tid as u32;
    record.flags = 0;
    record.filename_len = 0;
    record.args_len = 0;

    let filename = read_ptr(bprm, off!(binprm_filename));
    if let Ok(name) = unsafe { bpf_probe_read_kernel_str_bytes(filename, &mut record.filename) } {
        record.filename_len = name.len() as u32;
    }

    let mm = read_ptr(task, off!(task_mm));
    let start: u64 = read(mm, off!(mm_arg_start));
    let end: u64 = read(mm, off!(mm_arg_end));
    let total = end.saturating_sub(start);
    let dst = record.args.as_mut_ptr() as *mut core::ffi::c_void;
    let src = start as *const core::ffi::c_void;
    // Two call sites so that the verifier sees a constant or a masked (bounded) size.
    let len = if total >= ARGS_LEN as u64 {
        record.flags |= if total > ARGS_LEN as u64 {
            EXEC_ARGS_TRUNCATED
        } else {
            0
        };
        let ret = unsafe { bpf_probe_read_user(dst, ARGS_LEN as u32, src) };
        if ret < 0 { 0 } else { ARGS_LEN as u32 }
    } else {
        let len = (total as u32) & (ARGS_LEN as u32 - 1);
        let ret = unsafe { bpf_probe_read_user(dst, len, src) };
        if ret < 0 { 0 } else { len }
    };
    if len == 0 && total != 0 {
        crate::maps::count_error(ProbeError::UserRead);
    }
    record.args_len = len;
    Ok(())
}
