//! `sched_process_exit` (a thread or process exited) and `sched_process_free` (a process was
//! released: the end of its zombie time).

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use tracer_common::{
    EXIT_PROCESS, EventKind, ExitRecord, MAX_PID_LEVELS, NsPidKey, PROC_PID_INIT_INO, ProbeError,
    ReapHow, ZombieRecord, kernel,
};

use crate::{
    emit,
    maps::{ZOMBIE_PIDS, ZOMBIES, count_error, off, trace_threads},
    reap::{self, Kept},
    slot,
    task::{Task, comm_of, fill_header_of, now, pid_at_level, pid_level, read, read_ptr},
    wait,
};

#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    if let Err(error) = try_sched_process_exit(&ctx) {
        crate::maps::report(&ctx, "sched_process_exit", error);
    }
    0
}

fn try_sched_process_exit(ctx: &BtfTracePointContext) -> Result<(), ProbeError> {
    let task: Task = ctx.arg(0);
    let exit_code: u32 = read(task, off!(task_exit_code));
    // `signal->live` has already been decremented for this thread: zero means it was the last
    // one, so the process as a whole has exited. (Newer kernels pass this as an argument;
    // reading it works on all of them.)
    let signal = read_ptr(task, off!(task_signal));
    let live: i32 = read(signal, off!(signal_live));
    let process_exit = live == 0;
    if !process_exit && !trace_threads() {
        return Ok(());
    }
    let mut record = ExitRecord {
        exit_code,
        flags: if process_exit { EXIT_PROCESS } else { 0 },
        ..ExitRecord::default()
    };
    // The exiting task is the current one.
    fill_header_of(&mut record.header, EventKind::Exit as u32, task)?;
    emit::output(&record);
    if process_exit {
        remember_zombie(task, &record)?;
    }
    Ok(())
}

/// Keeps what the exit looked like until the process is released, under its host pid (in its
/// slot, or in `ZOMBIES`) and under the pid every namespace it lives in knows it by (a wait
/// returns the latter).
#[inline(always)]
fn remember_zombie(task: Task, exit: &ExitRecord) -> Result<(), ProbeError> {
    let leader = read_ptr(task, off!(task_group_leader));
    let pid = read_ptr(leader, off!(task_thread_pid));
    let level = pid_level(pid);
    let mut zombie = ZombieRecord {
        header: exit.header,
        exit_code: exit.exit_code,
        levels: 0,
        keys: [NsPidKey::default(); MAX_PID_LEVELS],
    };
    // Deepest level first: the waiter is almost always in the process's own namespace or
    // the one right above it.
    for i in 0..MAX_PID_LEVELS {
        if i as u32 > level {
            break;
        }
        let key = pid_at_level(pid, level - i as u32, exit.header.pid)?;
        zombie.keys[i] = key;
        zombie.levels = i as u32 + 1;
        // In the host namespace the pid a wait returns is the host pid: no alias needed.
        if key.pidns != PROC_PID_INIT_INO && ZOMBIE_PIDS.insert(&key, &exit.header.pid, 0).is_err()
        {
            count_error(ProbeError::MapFull);
        }
    }
    if !slot::keep_zombie(&zombie) && ZOMBIES.insert(&exit.header.pid, &zombie, 0).is_err() {
        count_error(ProbeError::MapFull);
    }
    Ok(())
}

#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> i32 {
    if let Err(error) = try_sched_process_free(&ctx) {
        crate::maps::report(&ctx, "sched_process_free", error);
    }
    0
}

/// The task is being freed, a grace period after it was released. A zombie still on record
/// here was released without a wait this program saw return: by the kernel at exit (its
/// parent ignores SIGCHLD), or by a wait whose return we have not seen yet. A slot is given
/// back here, whether or not a wait reported the release.
fn try_sched_process_free(ctx: &BtfTracePointContext) -> Result<(), ProbeError> {
    let task: Task = ctx.arg(0);
    let tid: u32 = read(task, off!(task_pid));
    let pid: u32 = read(task, off!(task_tgid));
    if tid != pid {
        return Ok(());
    }
    let start_ns: u64 = read(task, off!(task_start_boottime));
    if let Some(freed) = slot::freed_zombie(pid, start_ns) {
        let reported = match freed.unreported() {
            Some(zombie) => report_release(task, zombie, Kept::Slot),
            None => Ok(()),
        };
        freed.give_back();
        return reported;
    }
    match unsafe { ZOMBIES.get(&pid) } {
        Some(zombie) => report_release(task, zombie, Kept::Map),
        None => Ok(()),
    }
}

/// Reports the release of `zombie`, whose task is being freed, and forgets it.
#[inline(always)]
fn report_release(task: Task, zombie: &ZombieRecord, kept: Kept) -> Result<(), ProbeError> {
    let parent = read_ptr(task, off!(task_real_parent));
    let parent_pid: u32 = read(parent, off!(task_tgid));
    let parent_comm = comm_of(parent)?;
    let how = if wait::in_flight(parent_pid).is_some_and(|w| unsafe { (*w).entered } != 0) {
        ReapHow::Wait
    } else if ignores_children(parent) {
        ReapHow::Autoreap
    } else {
        ReapHow::Other
    };
    let released = match how {
        // Released inside exit_notify(), right after the exit: never a zombie.
        ReapHow::Autoreap => zombie.header.ts_ns,
        _ => now(),
    };
    let reaper = reap::Reaper {
        pid: parent_pid,
        tid: parent_pid,
        comm: parent_comm,
    };
    reap::emit(zombie, &reaper, how, released);
    reap::forget(zombie, kept);
    Ok(())
}

/// Whether `task` has SIGCHLD set to SIG_IGN or SA_NOCLDWAIT, which makes the kernel release
/// its children at exit.
fn ignores_children(task: Task) -> bool {
    let sighand = read_ptr(task, off!(task_sighand));
    if sighand.is_null() {
        return false;
    }
    // A constant index (SIGCHLD), so a plain load at a constant offset.
    let action = off!(sighand_action) + (kernel::SIGCHLD as usize - 1) * off!(k_sigaction_size);
    let handler: u64 = read(sighand, action + off!(k_sigaction_handler));
    let flags: u64 = read(sighand, action + off!(k_sigaction_flags));
    handler == kernel::SIG_IGN || flags & kernel::SA_NOCLDWAIT != 0
}
