//! Reading one event line. Lines as our writer writes them go through the hand-written reader
//! in `fast.rs`; any other valid JSON comes here, to serde.
//!
//! `Event`'s own `Deserialize` goes through serde's `flatten` and internal tagging, which
//! buffer every field into an intermediate tree first; that is several times slower than the
//! replay's budget. The serde reader here reads a line into one flat struct of optional fields
//! in a single pass and builds the `Event` from it, for the same result (checked against
//! `Event`'s own reader in the engine tests, and against the fast reader in its own).

use std::borrow::Cow;

use serde::Deserialize;

use crate::event::{
    Comm, DeliverBurst, Disposition, Event, EventData, Exec, Exit, ExitStatus, Fork, Lost, Reap,
    ReapHow, Sig, Signal, SignalBurst, SignalDeliver, SignalResult, SignalTarget, Task, Wait,
    WaitSyscall,
};

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Fork,
    Exec,
    Exit,
    Wait,
    Reap,
    Signal,
    SignalDeliver,
    Lost,
    SignalBurst,
    DeliverBurst,
}

/// Every field any event kind has.
#[derive(Deserialize)]
struct Flat<'a> {
    ts_ns: u64,
    pid: u32,
    tid: u32,
    ns_pid: u32,
    pidns: u32,
    ppid: u32,
    uid: u32,
    cgroup_id: u64,
    #[serde(borrow)]
    comm: Cow<'a, str>,
    start_ns: u64,
    cpu: Option<u32>,
    event: Kind,
    child_pid: Option<u32>,
    child_tid: Option<u32>,
    /// u32 in a fork, i32 in a wait.
    child_ns_pid: Option<i64>,
    child_pidns: Option<u32>,
    child_ppid: Option<u32>,
    child_start_ns: Option<u64>,
    thread: Option<bool>,
    filename: Option<String>,
    argv: Option<Vec<String>>,
    argv_truncated: Option<bool>,
    #[serde(borrow)]
    comm_before: Option<Cow<'a, str>>,
    old_tid: Option<u32>,
    /// The raw wait status (exit, reap), or wait's optional status.
    status: Option<i64>,
    code: Option<u8>,
    sig: Option<u32>,
    core_dumped: Option<bool>,
    process: Option<bool>,
    syscall: Option<WaitSyscall>,
    ret: Option<i64>,
    upid: Option<i32>,
    which: Option<i32>,
    options: Option<u32>,
    reaped: Option<bool>,
    duration_ns: Option<u64>,
    reaper_pid: Option<u32>,
    reaper_tid: Option<u32>,
    #[serde(borrow)]
    reaper_comm: Option<Cow<'a, str>>,
    how: Option<ReapHow>,
    exit_ns: Option<u64>,
    zombie_ns: Option<u64>,
    si_code: Option<i32>,
    result: Option<SignalResult>,
    group: Option<bool>,
    target_pid: Option<u32>,
    target_tid: Option<u32>,
    target_ns_pid: Option<u32>,
    target_pidns: Option<u32>,
    #[serde(borrow)]
    target_comm: Option<Cow<'a, str>>,
    target_start_ns: Option<u64>,
    disposition: Option<Disposition>,
    blocked: Option<bool>,
    sa_flags: Option<u32>,
    count: Option<u64>,
    total: Option<u64>,
    first_ns: Option<u64>,
    delivered: Option<u64>,
    ignored: Option<u64>,
    already_pending: Option<u64>,
    overflow: Option<u64>,
    lost_info: Option<u64>,
    blocked_count: Option<u64>,
}

/// One event from its JSON line: the fast reader for the writer's own lines, serde for
/// anything else (and for the error message when the line is not an event).
pub fn parse_event(line: &[u8]) -> Result<Event, String> {
    match super::fast::parse_event_fast(line) {
        Some(event) => Ok(event),
        None => parse_event_serde(line),
    }
}

/// One event from its JSON line, read by serde: any key order, whitespace or escape.
pub fn parse_event_serde(line: &[u8]) -> Result<Event, String> {
    let f: Flat = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let task = Task {
        pid: f.pid,
        tid: f.tid,
        ns_pid: f.ns_pid,
        pidns: f.pidns,
        ppid: f.ppid,
        uid: f.uid,
        cgroup_id: f.cgroup_id,
        comm: Comm::from(f.comm.as_ref()),
        start_ns: f.start_ns,
        cpu: f.cpu,
    };
    let data = data(f_kind(&f), f)?;
    Ok(Event {
        ts_ns: data.0,
        task,
        data: data.1,
    })
}

fn f_kind(f: &Flat) -> &'static str {
    match f.event {
        Kind::Fork => "fork",
        Kind::Exec => "exec",
        Kind::Exit => "exit",
        Kind::Wait => "wait",
        Kind::Reap => "reap",
        Kind::Signal => "signal",
        Kind::SignalDeliver => "signal_deliver",
        Kind::Lost => "lost",
        Kind::SignalBurst => "signal_burst",
        Kind::DeliverBurst => "deliver_burst",
    }
}

fn data(kind: &'static str, f: Flat) -> Result<(u64, EventData), String> {
    let need = |name: &str| format!("missing field `{name}` in a {kind} event");
    macro_rules! req {
        ($field:ident) => {
            f.$field.ok_or_else(|| need(stringify!($field)))?
        };
    }
    let status = |raw: u32| ExitStatus {
        status: raw,
        code: f.code,
        killed_by: f.sig.map(Sig),
        core_dumped: f.core_dumped.unwrap_or(false),
    };
    let target = || -> Result<SignalTarget, String> {
        Ok(SignalTarget {
            group: req!(group),
            pid: req!(target_pid),
            tid: req!(target_tid),
            ns_pid: req!(target_ns_pid),
            pidns: req!(target_pidns),
            comm: Comm::from(
                f.target_comm
                    .as_deref()
                    .ok_or_else(|| need("target_comm"))?,
            ),
            start_ns: req!(target_start_ns),
            disposition: req!(disposition),
        })
    };
    let data = match f.event {
        Kind::Fork => EventData::Fork(Fork {
            child_pid: req!(child_pid),
            child_tid: req!(child_tid),
            child_ns_pid: u32::try_from(req!(child_ns_pid)).map_err(|e| e.to_string())?,
            child_pidns: req!(child_pidns),
            child_ppid: req!(child_ppid),
            child_start_ns: req!(child_start_ns),
            thread: req!(thread),
        }),
        Kind::Exec => EventData::Exec(Exec {
            filename: f.filename.clone().ok_or_else(|| need("filename"))?,
            argv: f.argv.clone().ok_or_else(|| need("argv"))?,
            argv_truncated: req!(argv_truncated),
            comm_before: f.comm_before.as_deref().map(Comm::from),
            old_tid: f.old_tid,
        }),
        Kind::Exit => EventData::Exit(Exit {
            status: status(u32::try_from(req!(status)).map_err(|e| e.to_string())?),
            process: req!(process),
        }),
        Kind::Wait => EventData::Wait(Wait {
            syscall: req!(syscall),
            ret: req!(ret),
            upid: req!(upid),
            which: f.which,
            options: req!(options),
            child_ns_pid: f
                .child_ns_pid
                .map(i32::try_from)
                .transpose()
                .map_err(|e| e.to_string())?,
            child_pid: f.child_pid,
            reaped: req!(reaped),
            status: f
                .status
                .map(i32::try_from)
                .transpose()
                .map_err(|e| e.to_string())?,
            duration_ns: f.duration_ns,
        }),
        Kind::Reap => EventData::Reap(Reap {
            reaper_pid: req!(reaper_pid),
            reaper_tid: req!(reaper_tid),
            reaper_comm: Comm::from(
                f.reaper_comm
                    .as_deref()
                    .ok_or_else(|| need("reaper_comm"))?,
            ),
            how: req!(how),
            status: status(u32::try_from(req!(status)).map_err(|e| e.to_string())?),
            exit_ns: f.exit_ns,
            zombie_ns: f.zombie_ns,
        }),
        Kind::Signal => EventData::Signal(Signal {
            sig: Sig(req!(sig)),
            si_code: req!(si_code),
            result: req!(result),
            target: target()?,
            blocked: req!(blocked),
        }),
        Kind::SignalDeliver => EventData::SignalDeliver(SignalDeliver {
            sig: Sig(req!(sig)),
            si_code: req!(si_code),
            disposition: req!(disposition),
            sa_flags: req!(sa_flags),
        }),
        Kind::Lost => EventData::Lost(Lost {
            count: req!(count),
            total: req!(total),
        }),
        Kind::SignalBurst => EventData::SignalBurst(Box::new(SignalBurst {
            sig: Sig(req!(sig)),
            si_code: req!(si_code),
            target: target()?,
            blocked_count: req!(blocked_count),
            first_ns: req!(first_ns),
            count: req!(count),
            delivered: req!(delivered),
            ignored: req!(ignored),
            already_pending: req!(already_pending),
            overflow: req!(overflow),
            lost_info: req!(lost_info),
        })),
        Kind::DeliverBurst => EventData::DeliverBurst(DeliverBurst {
            sig: Sig(req!(sig)),
            si_code: req!(si_code),
            disposition: req!(disposition),
            sa_flags: req!(sa_flags),
            first_ns: req!(first_ns),
            count: req!(count),
        }),
    };
    Ok((f.ts_ns, data))
}
