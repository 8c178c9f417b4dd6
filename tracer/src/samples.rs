//! Events for the tests of every writer and reader of the event model: every kind, every
//! optional field present and absent, the edges of every integer, strings that need escaping.

use crate::event::{
    Comm, DeliverBurst, Disposition, EventData, Exec, Exit, ExitStatus, Fork, Lost, Reap, ReapHow,
    Sig, Signal, SignalBurst, SignalDeliver, SignalResult, SignalTarget, Task, Wait, WaitSyscall,
};

/// Strings that need escaping or are otherwise awkward.
pub const AWKWARD: [&str; 12] = [
    "",
    "plain",
    "with \"quotes\"",
    "back\\slash\\",
    "\\\"",
    "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{1f}",
    "del \u{7f}",
    "ünï código",
    "日本語のコマンド",
    "emoji 🦀 and 𝄞",
    "lossy \u{fffd}\u{fffd}",
    "/\\/ </script>",
];

pub fn task(comm: Comm) -> Task {
    Task {
        pid: u32::MAX,
        tid: 0,
        ns_pid: 1,
        pidns: 4026531836,
        ppid: 7,
        uid: 65534,
        cgroup_id: u64::MAX,
        comm,
        start_ns: 1,
        cpu: Some(u32::MAX),
    }
}

/// Every kind the writer writes, every optional field present and absent, the edges of
/// every integer.
pub fn kinds(s: &str) -> Vec<EventData> {
    let statuses = [
        ExitStatus::from_wait_status(0),
        ExitStatus::from_wait_status(255 << 8),
        ExitStatus::from_wait_status(9),
        ExitStatus::from_wait_status(11 | 0x80),
        ExitStatus::from_wait_status(u32::MAX),
        ExitStatus {
            status: 0x7f,
            code: None,
            killed_by: None,
            core_dumped: false,
        },
    ];
    let mut out = vec![
        EventData::Fork(Fork {
            child_pid: u32::MAX,
            child_tid: 0,
            child_ns_pid: 1,
            child_pidns: u32::MAX,
            child_ppid: 2,
            child_start_ns: u64::MAX,
            thread: true,
        }),
        EventData::Fork(Fork {
            child_pid: 0,
            child_tid: 0,
            child_ns_pid: 0,
            child_pidns: 0,
            child_ppid: 0,
            child_start_ns: 0,
            thread: false,
        }),
        EventData::Exec(Exec {
            filename: s.into(),
            argv: vec![s.into(), String::new(), "a b".into(), s.into()],
            argv_truncated: true,
            comm_before: Some(Comm::from(s)),
            old_tid: Some(u32::MAX),
        }),
        EventData::Exec(Exec {
            filename: s.into(),
            argv: vec![],
            argv_truncated: false,
            comm_before: None,
            old_tid: None,
        }),
        EventData::Exec(Exec {
            filename: String::new(),
            argv: vec![s.into()],
            argv_truncated: false,
            comm_before: None,
            old_tid: Some(0),
        }),
        EventData::Wait(Wait {
            syscall: WaitSyscall::Waitid,
            ret: i64::MIN,
            upid: i32::MIN,
            which: Some(i32::MAX),
            options: u32::MAX,
            child_ns_pid: Some(i32::MIN),
            child_pid: Some(u32::MAX),
            reaped: true,
            status: Some(i32::MIN),
            duration_ns: Some(u64::MAX),
        }),
        EventData::Wait(Wait {
            syscall: WaitSyscall::Wait4,
            ret: i64::MAX,
            upid: -1,
            which: None,
            options: 0,
            child_ns_pid: None,
            child_pid: None,
            reaped: false,
            status: None,
            duration_ns: None,
        }),
        EventData::Wait(Wait {
            syscall: WaitSyscall::Wait4,
            ret: -10,
            upid: 0,
            which: Some(-1),
            options: 1,
            child_ns_pid: Some(-1),
            child_pid: None,
            reaped: false,
            status: Some(0),
            duration_ns: Some(0),
        }),
        EventData::Signal(Signal {
            sig: Sig(u32::MAX),
            si_code: i32::MIN,
            result: SignalResult::Delivered,
            target: SignalTarget {
                group: true,
                pid: u32::MAX,
                tid: 0,
                ns_pid: 1,
                pidns: 2,
                comm: Comm::from(s),
                start_ns: u64::MAX,
                disposition: Disposition::Default,
            },
            blocked: false,
        }),
        EventData::Lost(Lost {
            count: u64::MAX,
            total: 0,
        }),
    ];
    for (i, result) in [
        SignalResult::Ignored,
        SignalResult::AlreadyPending,
        SignalResult::Overflow,
        SignalResult::LostInfo,
    ]
    .into_iter()
    .enumerate()
    {
        out.push(EventData::Signal(Signal {
            sig: Sig(i as u32 + 1),
            si_code: i32::MAX,
            result,
            target: SignalTarget {
                group: i % 2 == 0,
                pid: 0,
                tid: 0,
                ns_pid: 0,
                pidns: 0,
                comm: Comm::from(""),
                start_ns: 0,
                disposition: [Disposition::Ignore, Disposition::Handler][i % 2],
            },
            blocked: true,
        }));
    }
    for (i, disposition) in [
        Disposition::Default,
        Disposition::Ignore,
        Disposition::Handler,
    ]
    .into_iter()
    .enumerate()
    {
        out.push(EventData::SignalDeliver(SignalDeliver {
            sig: Sig([0, 34, 64][i]),
            si_code: [-6, 0, 0x80][i],
            disposition,
            sa_flags: [0, 0x4000_0000, u32::MAX][i],
        }));
        out.push(EventData::DeliverBurst(DeliverBurst {
            sig: Sig([10, 1, 64][i]),
            si_code: [0, -6, i32::MIN][i],
            disposition,
            sa_flags: [u32::MAX, 0, 4][i],
            first_ns: [0, 1, u64::MAX][i],
            count: [u64::MAX, 0, 1_000_000][i],
        }));
        out.push(EventData::SignalBurst(Box::new(SignalBurst {
            sig: Sig([1, 10, 64][i]),
            si_code: [i32::MIN, 0, -1][i],
            target: SignalTarget {
                group: i == 1,
                pid: [0, 7, u32::MAX][i],
                tid: [u32::MAX, 7, 0][i],
                ns_pid: 1,
                pidns: 4026531836,
                comm: Comm::from(s),
                start_ns: [u64::MAX, 0, 3][i],
                disposition,
            },
            blocked_count: [0, 5, u64::MAX][i],
            first_ns: [1, u64::MAX, 0][i],
            count: [3, 0, u64::MAX][i],
            delivered: [1, 0, u64::MAX][i],
            ignored: [1, 0, 2][i],
            already_pending: [1, 0, 0][i],
            overflow: [0, 0, 9][i],
            lost_info: [0, 1, 0][i],
        })));
    }
    for status in statuses {
        out.push(EventData::Exit(Exit {
            status,
            process: status.status % 2 == 0,
        }));
        for (how, times) in [
            (ReapHow::Wait, (Some(u64::MAX), Some(0))),
            (ReapHow::Autoreap, (None, None)),
            (ReapHow::Other, (Some(5), None)),
            (ReapHow::Wait, (None, Some(3))),
        ] {
            out.push(EventData::Reap(Reap {
                reaper_pid: 1,
                reaper_tid: u32::MAX,
                reaper_comm: Comm::from(s),
                how,
                status,
                exit_ns: times.0,
                zombie_ns: times.1,
            }));
        }
    }
    out
}
