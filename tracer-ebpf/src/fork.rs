//! `sched_process_fork`: a new process or thread.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{EventKind, FORK_THREAD, ForkRecord, ProbeError};

use crate::{
    emit,
    maps::trace_threads,
    task::{Task, fill_header_of, task_ids},
};

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    if let Err(error) = try_sched_process_fork(&ctx) {
        crate::maps::report(&ctx, "sched_process_fork", error);
    }
    0
}

fn try_sched_process_fork(ctx: &BtfTracePointContext) -> Result<(), ProbeError> {
    let parent: Task = ctx.arg(0);
    let child: Task = ctx.arg(1);
    let ids = task_ids(child)?;
    let thread = ids.pid != ids.tid;
    if thread && !trace_threads() {
        return Ok(());
    }
    let mut record = ForkRecord {
        child_pid: ids.pid,
        child_tid: ids.tid,
        child_ns_pid: ids.ns_pid,
        child_pidns: ids.pidns,
        child_ppid: ids.ppid,
        flags: if thread { FORK_THREAD } else { 0 },
        child_start_ns: ids.start_ns,
        ..ForkRecord::default()
    };
    // The forking task is the current one.
    fill_header_of(&mut record.header, EventKind::Fork as u32, parent)?;
    emit::output(&record);
    Ok(())
}
