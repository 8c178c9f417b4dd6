//! Ring buffer records to [`Event`]s. Every record is length-checked and every enumerated
//! field is decoded with `TryFrom`: bytes from the kernel (or from a fuzzer) never become an
//! out-of-range enum or a bad read.

use std::mem::size_of;

use tracer_common as wire;

use crate::event::{
    Comm, DeliverBurst, Disposition, Event, EventData, Exec, Exit, ExitStatus, Fork, Lost, Reap,
    ReapHow, Sig, Signal, SignalBurst, SignalDeliver, SignalResult, SignalTarget, Task, Wait,
    WaitSyscall,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than a header")]
    Short(usize),
    #[error("unknown event kind {0}")]
    UnknownKind(u32),
    #[error("{kind} record of {len} bytes, expected at least {expected}")]
    Truncated {
        kind: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{field} has unknown value {value}")]
    BadValue { field: &'static str, value: u32 },
    #[error("signal burst of {count} whose counts by result add up to something else")]
    BurstCounts { count: u64 },
}

/// Reads a `T` from the start of `bytes`, which must be long enough.
fn read<T: Copy>(bytes: &[u8], kind: &'static str) -> Result<T, DecodeError> {
    if bytes.len() < size_of::<T>() {
        return Err(DecodeError::Truncated {
            kind,
            len: bytes.len(),
            expected: size_of::<T>(),
        });
    }
    // SAFETY: length checked above; T is a repr(C) struct of integers and byte arrays, valid
    // for any bit pattern; read_unaligned makes no alignment assumption.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

fn task(h: &wire::Header) -> Task {
    Task {
        pid: h.pid,
        tid: h.tid,
        ns_pid: h.ns_pid,
        pidns: h.pidns,
        ppid: h.ppid,
        uid: h.uid,
        cgroup_id: h.cgroup_id,
        comm: Comm::from_kernel(h.comm),
        start_ns: h.start_ns,
        cpu: Some(h.cpu),
    }
}

/// Decodes one ring buffer record.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let header: wire::Header =
        read(bytes, "header").map_err(|_| DecodeError::Short(bytes.len()))?;
    let kind = wire::EventKind::try_from(header.kind)
        .map_err(|wire::UnknownKind(k)| DecodeError::UnknownKind(k))?;
    let name = kind.name();
    let data = match kind {
        wire::EventKind::Fork => {
            let r: wire::ForkRecord = read(bytes, name)?;
            EventData::Fork(Fork {
                child_pid: r.child_pid,
                child_tid: r.child_tid,
                child_ns_pid: r.child_ns_pid,
                child_pidns: r.child_pidns,
                child_ppid: r.child_ppid,
                child_start_ns: r.child_start_ns,
                thread: r.flags & wire::FORK_THREAD != 0,
            })
        }
        wire::EventKind::Exec => {
            let r: wire::ExecRecord = read(bytes, name)?;
            let filename_len = (r.filename_len as usize).min(wire::FILENAME_LEN);
            let filename = &r.filename[..filename_len];
            let filename = filename.split(|&b| b == 0).next().unwrap_or_default();
            let args_len = (r.args_len as usize).min(wire::ARGS_LEN);
            let mut argv: Vec<String> = r.args[..args_len]
                .split(|&b| b == 0)
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            // argv ends with a NUL, which leaves one empty piece behind.
            if argv.last().is_some_and(String::is_empty) {
                argv.pop();
            }
            EventData::Exec(Exec {
                filename: String::from_utf8_lossy(filename).into_owned(),
                argv,
                argv_truncated: r.flags & wire::EXEC_ARGS_TRUNCATED != 0,
                comm_before: None,
                old_tid: (r.old_tid != header.tid).then_some(r.old_tid),
            })
        }
        wire::EventKind::Exit => {
            let r: wire::ExitRecord = read(bytes, name)?;
            EventData::Exit(Exit {
                status: ExitStatus::from_wait_status(r.exit_code),
                process: r.flags & wire::EXIT_PROCESS != 0,
            })
        }
        wire::EventKind::Wait => {
            let r: wire::WaitRecord = read(bytes, name)?;
            let waitid = r.which != wire::WAIT_WHICH_WAIT4;
            let known = r.flags & wire::WAIT_STATUS_KNOWN != 0;
            EventData::Wait(Wait {
                syscall: if waitid {
                    WaitSyscall::Waitid
                } else {
                    WaitSyscall::Wait4
                },
                ret: r.ret,
                upid: r.upid,
                which: waitid.then_some(r.which),
                options: r.options,
                child_ns_pid: (r.child_ns_pid > 0).then_some(r.child_ns_pid),
                child_pid: (r.child_pid != 0).then_some(r.child_pid),
                reaped: r.flags & wire::WAIT_REAPED != 0,
                status: known.then_some(r.status),
                duration_ns: (r.start_ns != 0).then(|| header.ts_ns.saturating_sub(r.start_ns)),
            })
        }
        wire::EventKind::Reap => {
            let r: wire::ReapRecord = read(bytes, name)?;
            let how = match wire::ReapHow::try_from(r.how) {
                Ok(wire::ReapHow::Wait) => ReapHow::Wait,
                Ok(wire::ReapHow::Autoreap) => ReapHow::Autoreap,
                Ok(wire::ReapHow::Other) => ReapHow::Other,
                Err(wire::UnknownReapHow(value)) => {
                    return Err(DecodeError::BadValue {
                        field: "reap how",
                        value,
                    });
                }
            };
            let exit_known = r.exit_ns != 0;
            EventData::Reap(Reap {
                reaper_pid: r.reaper_pid,
                reaper_tid: r.reaper_tid,
                reaper_comm: Comm::from_kernel(r.reaper_comm),
                how,
                status: ExitStatus::from_wait_status(r.exit_code),
                exit_ns: exit_known.then_some(r.exit_ns),
                zombie_ns: exit_known.then_some(r.zombie_ns),
            })
        }
        wire::EventKind::Signal => {
            let r: wire::SignalRecord = read(bytes, name)?;
            EventData::Signal(Signal {
                sig: Sig(r.sig),
                si_code: r.code,
                result: signal_result(r.result)?,
                target: signal_target(&r)?,
                blocked: r.blocked != 0,
            })
        }
        wire::EventKind::SignalDeliver => {
            let r: wire::SignalDeliverRecord = read(bytes, name)?;
            EventData::SignalDeliver(SignalDeliver {
                sig: Sig(r.sig),
                si_code: r.code,
                disposition: disposition(r.disposition)?,
                sa_flags: r.sa_flags,
            })
        }
        wire::EventKind::SignalBurst => {
            let r: wire::SignalBurstRecord = read(bytes, name)?;
            let s = r.signal;
            let [delivered, ignored, already_pending, overflow, lost_info] = r.results;
            if r.results
                .iter()
                .try_fold(0u64, |sum, &n| sum.checked_add(n))
                != Some(r.count)
            {
                return Err(DecodeError::BurstCounts { count: r.count });
            }
            EventData::SignalBurst(Box::new(SignalBurst {
                sig: Sig(s.sig),
                si_code: s.code,
                target: signal_target(&s)?,
                blocked_count: r.blocked,
                first_ns: r.first_ns,
                count: r.count,
                delivered,
                ignored,
                already_pending,
                overflow,
                lost_info,
            }))
        }
        wire::EventKind::DeliverBurst => {
            let r: wire::DeliverBurstRecord = read(bytes, name)?;
            let d = r.deliver;
            EventData::DeliverBurst(DeliverBurst {
                sig: Sig(d.sig),
                si_code: d.code,
                disposition: disposition(d.disposition)?,
                sa_flags: d.sa_flags,
                first_ns: r.first_ns,
                count: r.count,
            })
        }
        wire::EventKind::Lost => {
            let r: wire::LostRecord = read(bytes, name)?;
            EventData::Lost(Lost {
                count: r.count,
                total: r.total,
            })
        }
    };
    Ok(Event {
        ts_ns: header.ts_ns,
        task: task(&header),
        data,
    })
}

/// The target part of a signal record, which a burst record repeats.
fn signal_target(r: &wire::SignalRecord) -> Result<SignalTarget, DecodeError> {
    Ok(SignalTarget {
        group: r.group != 0,
        pid: r.target_pid,
        tid: r.target_tid,
        ns_pid: r.target_ns_pid,
        pidns: r.target_pidns,
        comm: Comm::from_kernel(r.target_comm),
        start_ns: r.target_start_ns,
        disposition: disposition(r.disposition)?,
    })
}

fn signal_result(value: u32) -> Result<SignalResult, DecodeError> {
    Ok(match wire::SignalResult::try_from(value) {
        Ok(wire::SignalResult::Delivered) => SignalResult::Delivered,
        Ok(wire::SignalResult::Ignored) => SignalResult::Ignored,
        Ok(wire::SignalResult::AlreadyPending) => SignalResult::AlreadyPending,
        Ok(wire::SignalResult::Overflow) => SignalResult::Overflow,
        Ok(wire::SignalResult::LoseInfo) => SignalResult::LostInfo,
        Err(wire::UnknownSignalResult(value)) => {
            return Err(DecodeError::BadValue {
                field: "signal result",
                value,
            });
        }
    })
}

fn disposition(value: u32) -> Result<Disposition, DecodeError> {
    Ok(match wire::Disposition::try_from(value) {
        Ok(wire::Disposition::Default) => Disposition::Default,
        Ok(wire::Disposition::Ignore) => Disposition::Ignore,
        Ok(wire::Disposition::Handler) => Disposition::Handler,
        Err(wire::UnknownDisposition(value)) => {
            return Err(DecodeError::BadValue {
                field: "disposition",
                value,
            });
        }
    })
}

/// Views a record as the bytes the kernel would have written: for tests and fuzzing, and for
/// the burst counts userspace reads from the probes' map at the end of a trace.
pub fn record_bytes<T: Copy>(record: &T) -> Vec<u8> {
    // SAFETY: T is a padding-free repr(C) record; every byte is initialized.
    unsafe { std::slice::from_raw_parts((record as *const T).cast::<u8>(), size_of::<T>()) }
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: wire::EventKind) -> wire::Header {
        let mut comm = [0; 16];
        comm[..4].copy_from_slice(b"bash");
        wire::Header {
            kind: kind as u32,
            pid: 100,
            tid: 101,
            ns_pid: 1,
            pidns: 4026531836,
            ppid: 99,
            uid: 1000,
            cpu: 1,
            ts_ns: 5_000_000_000,
            start_ns: 4_000_000_000,
            cgroup_id: 77,
            comm,
        }
    }

    /// Decodes, then checks the JSON form survives a round trip unchanged.
    fn roundtrip(bytes: &[u8]) -> Event {
        let event = decode(bytes).expect("decodes");
        let json = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event, "{json}");
        assert_eq!(event.task.pid, 100);
        assert_eq!(event.task.comm.as_str(), "bash");
        event
    }

    #[test]
    fn fork() {
        let r = wire::ForkRecord {
            header: header(wire::EventKind::Fork),
            child_pid: 200,
            child_tid: 200,
            child_ns_pid: 2,
            child_pidns: 9,
            child_ppid: 100,
            flags: 0,
            child_start_ns: 5,
        };
        let EventData::Fork(f) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!((f.child_pid, f.child_ns_pid, f.thread), (200, 2, false));
    }

    #[test]
    fn exec() {
        let mut r = wire::ExecRecord {
            header: header(wire::EventKind::Exec),
            old_tid: 101,
            filename_len: 7,
            args_len: 10,
            flags: 0,
            filename: [0; wire::FILENAME_LEN],
            args: [0; wire::ARGS_LEN],
        };
        r.filename[..7].copy_from_slice(b"/bin/ls");
        r.args[..10].copy_from_slice(b"ls\0-la\0/x\0");
        let EventData::Exec(e) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!(e.filename, "/bin/ls");
        assert_eq!(e.argv, ["ls", "-la", "/x"]);
        assert_eq!(e.old_tid, None);
    }

    #[test]
    fn exit_code_and_signal() {
        let mut r = wire::ExitRecord {
            header: header(wire::EventKind::Exit),
            exit_code: 3 << 8,
            flags: wire::EXIT_PROCESS,
        };
        let EventData::Exit(e) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!(
            (e.status.code, e.status.killed_by, e.process),
            (Some(3), None, true)
        );
        r.exit_code = 9 | 0x80;
        let EventData::Exit(e) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!(e.status.killed_by, Some(Sig(9)));
        assert!(e.status.core_dumped);
        assert_eq!(e.status.to_string(), "killed by SIGKILL (core dumped)");
        assert_eq!(e.status.shell_code(), 137);
    }

    #[test]
    fn wait() {
        let r = wire::WaitRecord {
            header: header(wire::EventKind::Wait),
            start_ns: 4_000_000_000,
            ret: 200,
            options: 0,
            upid: -1,
            which: wire::WAIT_WHICH_WAIT4,
            child_ns_pid: 200,
            child_pid: 200,
            status: 0,
            si_code: 0,
            flags: wire::WAIT_REAPED | wire::WAIT_STATUS_KNOWN,
        };
        let EventData::Wait(w) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!(w.syscall, WaitSyscall::Wait4);
        assert_eq!(
            (w.child_pid, w.reaped, w.status),
            (Some(200), true, Some(0))
        );
        assert_eq!(w.duration_ns, Some(1_000_000_000));
    }

    #[test]
    fn reap() {
        let r = wire::ReapRecord {
            header: header(wire::EventKind::Reap),
            reaper_pid: 99,
            reaper_tid: 99,
            how: wire::ReapHow::Autoreap as u32,
            exit_code: 0,
            exit_ns: 4_500_000_000,
            zombie_ns: 0,
            reaper_comm: *b"init\0\0\0\0\0\0\0\0\0\0\0\0",
        };
        let EventData::Reap(p) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!(
            (p.how, p.reaper_pid, p.zombie_ns),
            (ReapHow::Autoreap, 99, Some(0))
        );
        let bad = wire::ReapRecord { how: 9, ..r };
        assert!(matches!(
            decode(&record_bytes(&bad)),
            Err(DecodeError::BadValue { .. })
        ));
    }

    #[test]
    fn signal() {
        let r = wire::SignalRecord {
            header: header(wire::EventKind::Signal),
            sig: 15,
            code: 0,
            result: wire::SignalResult::Ignored as u32,
            group: 1,
            target_pid: 77,
            target_tid: 77,
            target_ns_pid: 1,
            target_pidns: 5,
            disposition: wire::Disposition::Default as u32,
            blocked: 0,
            target_start_ns: 1,
            target_comm: [0; 16],
        };
        let event = roundtrip(&record_bytes(&r));
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "signal");
        assert_eq!(json["sig"], 15);
        assert_eq!(json["sig_name"], "SIGTERM");
        assert_eq!(json["result"], "ignored");
        let bad = wire::SignalRecord { result: 17, ..r };
        assert!(decode(&record_bytes(&bad)).is_err());
        let bad = wire::SignalRecord {
            disposition: 3,
            ..r
        };
        assert!(decode(&record_bytes(&bad)).is_err());
    }

    #[test]
    fn signal_deliver_and_lost() {
        let r = wire::SignalDeliverRecord {
            header: header(wire::EventKind::SignalDeliver),
            sig: 2,
            code: 0,
            disposition: wire::Disposition::Handler as u32,
            sa_flags: 0,
        };
        let EventData::SignalDeliver(d) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!((d.sig, d.disposition), (Sig(2), Disposition::Handler));
        let r = wire::LostRecord {
            header: header(wire::EventKind::Lost),
            count: 5,
            total: 9,
        };
        let event = roundtrip(&record_bytes(&r));
        let EventData::Lost(l) = event.data else {
            panic!()
        };
        assert_eq!((l.count, l.total, event.task.cpu), (5, 9, Some(1)));
    }

    #[test]
    fn bursts() {
        let signal = wire::SignalRecord {
            header: header(wire::EventKind::SignalBurst),
            sig: 10,
            code: 0,
            result: 0,
            group: 1,
            target_pid: 77,
            target_tid: 78,
            target_ns_pid: 77,
            target_pidns: 5,
            disposition: wire::Disposition::Handler as u32,
            blocked: 0,
            target_start_ns: 1,
            target_comm: [0; 16],
        };
        let r = wire::SignalBurstRecord {
            signal,
            first_ns: 4_000_000_000,
            count: 7,
            results: [4, 0, 3, 0, 0],
            blocked: 2,
        };
        let EventData::SignalBurst(b) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!(
            (b.count, b.delivered, b.already_pending, b.target.tid),
            (7, 4, 3, 78)
        );
        let bad = wire::SignalBurstRecord { count: 8, ..r };
        assert_eq!(
            decode(&record_bytes(&bad)),
            Err(DecodeError::BurstCounts { count: 8 })
        );
        let bad = wire::SignalBurstRecord {
            count: 1,
            results: [u64::MAX, 2, 0, 0, 0],
            ..r
        };
        assert!(decode(&record_bytes(&bad)).is_err());
        let short = &record_bytes(&r)[..size_of::<wire::SignalRecord>()];
        assert!(matches!(decode(short), Err(DecodeError::Truncated { .. })));

        let r = wire::DeliverBurstRecord {
            deliver: wire::SignalDeliverRecord {
                header: header(wire::EventKind::DeliverBurst),
                sig: 10,
                code: 0,
                disposition: wire::Disposition::Handler as u32,
                sa_flags: 0,
            },
            first_ns: 4_000_000_000,
            count: 5,
        };
        let EventData::DeliverBurst(d) = roundtrip(&record_bytes(&r)).data else {
            panic!()
        };
        assert_eq!((d.sig, d.count), (Sig(10), 5));
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        assert_eq!(decode(&[0; 10]), Err(DecodeError::Short(10)));
        let mut h = header(wire::EventKind::Fork);
        h.kind = 42;
        assert_eq!(decode(&record_bytes(&h)), Err(DecodeError::UnknownKind(42)));
        let h = header(wire::EventKind::Fork);
        assert!(matches!(
            decode(&record_bytes(&h)),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
