//! The engine fed synthetic event sequences: no root, no kernel. Each test builds the events
//! the probes would emit for a scenario and checks the table and the findings.

mod common;

use std::{
    io::Write,
    path::Path,
    sync::{Arc, Mutex},
};

use tracer::{
    engine::{
        Config, Engine, Finding, Observation, SnapshotReason,
        findings::{Diagnosis, DropReason},
        snapshot::{ProcInfo, Snapshot},
        table::flag,
    },
    event::*,
    output::{Format, JsonSink, LogHeader, Sink},
    replay::replay,
};

const S: u64 = 1_000_000_000;
const HOST_NS: u32 = 4026531836;
const CHILD_NS: u32 = 4026532999;

/// A process as event headers describe it.
#[derive(Clone, Copy)]
struct P {
    pid: u32,
    ppid: u32,
    ns_pid: u32,
    pidns: u32,
    start: u64,
    comm: &'static str,
}

impl P {
    fn host(pid: u32, ppid: u32, start: u64, comm: &'static str) -> Self {
        Self {
            pid,
            ppid,
            ns_pid: pid,
            pidns: HOST_NS,
            start,
            comm,
        }
    }

    fn task(&self) -> Task {
        Task {
            pid: self.pid,
            tid: self.pid,
            ns_pid: self.ns_pid,
            pidns: self.pidns,
            ppid: self.ppid,
            uid: 0,
            cgroup_id: 0,
            comm: Comm::from(self.comm),
            start_ns: self.start,
            cpu: None,
        }
    }

    fn with_ppid(mut self, ppid: u32) -> Self {
        self.ppid = ppid;
        self
    }
}

fn ev(ts: u64, p: &P, data: EventData) -> Event {
    Event {
        ts_ns: ts,
        task: p.task(),
        data,
    }
}

fn fork(ts: u64, parent: &P, child: &P) -> Event {
    ev(
        ts,
        parent,
        EventData::Fork(Fork {
            child_pid: child.pid,
            child_tid: child.pid,
            child_ns_pid: child.ns_pid,
            child_pidns: child.pidns,
            child_ppid: child.ppid,
            child_start_ns: child.start,
            thread: false,
        }),
    )
}

fn exit(ts: u64, p: &P, code: u8) -> Event {
    exit_status(ts, p, u32::from(code) << 8, true)
}

/// An exit with this raw wait status, of the process or (`process` false) one of its threads.
fn exit_status(ts: u64, p: &P, status: u32, process: bool) -> Event {
    ev(
        ts,
        p,
        EventData::Exit(Exit {
            status: ExitStatus::from_wait_status(status),
            process,
        }),
    )
}

/// `count` events lost on `cpu`, `total` there in all.
fn lost(ts: u64, p: &P, count: u64, total: u64, cpu: u32) -> Event {
    let mut e = ev(ts, p, EventData::Lost(Lost { count, total }));
    e.task.cpu = Some(cpu);
    e
}

fn wait(ts: u64, p: &P, upid: i32, reaped: Option<u32>) -> Event {
    ev(
        ts,
        p,
        EventData::Wait(Wait {
            syscall: WaitSyscall::Wait4,
            ret: reaped.map_or(0, i64::from),
            upid,
            which: None,
            options: 0,
            child_ns_pid: reaped.map(|p| p as i32),
            child_pid: reaped,
            reaped: reaped.is_some(),
            status: None,
            duration_ns: None,
        }),
    )
}

fn reap(ts: u64, p: &P, reaper: &P, exit_ns: Option<u64>) -> Event {
    ev(
        ts,
        p,
        EventData::Reap(Reap {
            reaper_pid: reaper.pid,
            reaper_tid: reaper.pid,
            reaper_comm: Comm::from(reaper.comm),
            how: ReapHow::Wait,
            status: ExitStatus::from_wait_status(0),
            exit_ns,
            zombie_ns: exit_ns.map(|e| ts - e),
        }),
    )
}

/// A process-directed signal to `to`, which has `disposition` for it.
fn target(to: &P, disposition: Disposition) -> SignalTarget {
    SignalTarget {
        group: true,
        pid: to.pid,
        tid: to.pid,
        ns_pid: to.ns_pid,
        pidns: to.pidns,
        comm: Comm::from(to.comm),
        start_ns: to.start,
        disposition,
    }
}

fn signal(
    ts: u64,
    from: &P,
    to: &P,
    sig: u32,
    result: SignalResult,
    disposition: Disposition,
    blocked: bool,
) -> Event {
    ev(
        ts,
        from,
        EventData::Signal(Signal {
            sig: Sig(sig),
            si_code: 0,
            result,
            target: target(to, disposition),
            blocked,
        }),
    )
}

/// [`signal`] to a handler that does not block the signal.
fn to_handler(ts: u64, from: &P, to: &P, sig: u32, result: SignalResult) -> Event {
    signal(ts, from, to, sig, result, Disposition::Handler, false)
}

fn deliver(ts: u64, p: &P, sig: u32, disposition: Disposition) -> Event {
    ev(
        ts,
        p,
        EventData::SignalDeliver(SignalDeliver {
            sig: Sig(sig),
            si_code: 0,
            disposition,
            sa_flags: 0,
        }),
    )
}

/// `count` more signals like `signal(...)` sent from `first` to `ts`, `delivered` of them
/// delivered and the rest merged into one already pending.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per field a test varies"
)]
fn signal_burst(
    ts: u64,
    first: u64,
    from: &P,
    to: &P,
    sig: u32,
    disposition: Disposition,
    blocked: bool,
    delivered: u64,
    already_pending: u64,
) -> Event {
    ev(
        ts,
        from,
        EventData::SignalBurst(Box::new(SignalBurst {
            sig: Sig(sig),
            si_code: 0,
            target: target(to, disposition),
            blocked_count: u64::from(blocked),
            first_ns: first,
            count: delivered + already_pending,
            delivered,
            ignored: 0,
            already_pending,
            overflow: 0,
            lost_info: 0,
        })),
    )
}

/// [`signal_burst`] to a handler that does not block the signal.
fn handler_burst(
    ts: u64,
    first: u64,
    from: &P,
    to: &P,
    sig: u32,
    delivered: u64,
    already_pending: u64,
) -> Event {
    let blocked = false;
    signal_burst(
        ts,
        first,
        from,
        to,
        sig,
        Disposition::Handler,
        blocked,
        delivered,
        already_pending,
    )
}

/// `count` more deliveries of `sig` to `p`, from `first` to `ts`.
fn deliver_burst(ts: u64, first: u64, p: &P, sig: u32, count: u64) -> Event {
    ev(
        ts,
        p,
        EventData::DeliverBurst(DeliverBurst {
            sig: Sig(sig),
            si_code: 0,
            disposition: Disposition::Handler,
            sa_flags: 0,
            first_ns: first,
            count,
        }),
    )
}

/// Feeds events the way a replay does; returns every finding.
fn run(engine: &mut Engine, events: &[Event]) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in events {
        out.extend(engine.feed(e));
    }
    out
}

fn zombies(findings: &[Finding]) -> Vec<&tracer::engine::findings::Zombie> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::Zombie(z) => Some(z),
            _ => None,
        })
        .collect()
}

fn drops(findings: &[Finding]) -> Vec<&tracer::engine::findings::SignalDropped> {
    findings
        .iter()
        .filter_map(|f| match f {
            Finding::SignalDropped(s) => Some(s),
            _ => None,
        })
        .collect()
}

fn parent_pid(engine: &Engine, p: &P) -> Option<u32> {
    let entry = engine.table().find(p.pid, p.start).expect("in the table");
    engine.table().get(entry.parent).map(|pp| pp.pid)
}

fn host_init() -> P {
    P::host(1, 0, 1, "init")
}

#[test]
fn pid_reuse_keeps_two_processes() {
    let mut e = Engine::new(Config::default());
    let init = host_init();
    let a = P::host(100, 1, 10, "a");
    let b = P::host(300, 1, 11, "b");
    let old = P::host(200, 100, 20, "old");
    let new = P::host(200, 300, 40, "new");
    run(
        &mut e,
        &[
            fork(12, &init, &a),
            fork(13, &init, &b),
            fork(20, &a, &old),
            exit(30, &old, 0),
            reap(31, &old, &a, Some(30)),
            fork(40, &b, &new),
            exit(50, &new, 7),
        ],
    );
    let all = e.table().incarnations(200);
    assert_eq!(all.len(), 2, "two incarnations of pid 200");
    assert_eq!(parent_pid(&e, &old), Some(100));
    assert_eq!(parent_pid(&e, &new), Some(300));
    assert!(e.table().find(200, 20).unwrap().has(flag::REAPED));
    assert!(e.table().find(200, 40).unwrap().is_zombie());
    // The new one's exit did not touch the old one.
    assert_eq!(e.table().find(200, 20).unwrap().exit_status, 0);
    assert_eq!(e.table().find(200, 40).unwrap().exit_status, 7 << 8);
    assert_eq!(e.counters().exits_missed, 0);
}

#[test]
fn pid_reuse_without_seen_release_marks_exit_missed() {
    let mut e = Engine::new(Config::default());
    let a = P::host(100, 1, 10, "a");
    let old = P::host(200, 100, 20, "old");
    let new = P::host(200, 100, 40, "new");
    run(&mut e, &[fork(20, &a, &old), fork(40, &a, &new)]);
    assert_eq!(e.table().incarnations(200).len(), 2);
    let gone = e.table().find(200, 20).unwrap();
    assert!(gone.has(flag::EXIT_MISSED) && gone.has(flag::REAPED));
    assert!(e.table().find(200, 40).unwrap().is_alive());
    assert_eq!(e.counters().exits_missed, 1);
}

/// A zombie whose parent's exit was missed loses its parent link, so that when the parent's
/// entry is retired and its slot reused, the zombie's own missed exit later touches neither
/// the empty slot nor the process now in it.
#[test]
fn missed_exits_of_a_zombie_and_its_parent_in_turn() {
    let init = host_init();
    let parent = P::host(100, 1, 10, "parent");
    let zombie = P::host(200, 100, 20, "zombie");
    let mut e = Engine::new(Config {
        retention_ns: S,
        ..Config::default()
    });
    run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(20, &parent, &zombie),
            exit(S, &zombie, 0),
            // The parent's pid reused: its exit was missed.
            fork(2 * S, &init, &P::host(100, 1, 2 * S, "parent2")),
        ],
    );
    // The parent's entry retired; its slot taken by a process holding a zombie of its own.
    e.tick(4 * S);
    let holder = P::host(300, 1, 5 * S, "holder");
    let held = P::host(301, 300, 5 * S + 1, "held");
    run(
        &mut e,
        &[
            fork(5 * S, &init, &holder),
            fork(5 * S + 1, &holder, &held),
            exit(5 * S + 2, &held, 0),
            // The zombie's pid reused: its exit (it was a zombie) was missed too.
            fork(6 * S, &init, &P::host(200, 1, 6 * S, "zombie2")),
        ],
    );
    let holder = e.table().find(300, 5 * S).unwrap();
    assert_eq!(holder.zombies_held, 1);
    assert_eq!(e.counters().exits_missed, 2);
}

/// unshare (50) → init of a new namespace (60, pid 1) → mid (61) → leaf (62). Leaf exits,
/// mid exits without waiting: the zombie leaf goes to the namespace init, which never waits.
#[test]
fn zombie_reparented_to_namespace_init() {
    let mut e = Engine::new(Config::default());
    let unshare = P::host(50, 1, 5, "unshare");
    let node = P {
        pid: 60,
        ppid: 50,
        ns_pid: 1,
        pidns: CHILD_NS,
        start: 6,
        comm: "node",
    };
    let mid = P {
        pid: 61,
        ppid: 60,
        ns_pid: 2,
        pidns: CHILD_NS,
        start: 7,
        comm: "make_zombie",
    };
    let leaf = P {
        pid: 62,
        ppid: 61,
        ns_pid: 3,
        pidns: CHILD_NS,
        start: 8,
        comm: "make_zombie",
    };
    let live = P {
        pid: 63,
        ppid: 61,
        ns_pid: 4,
        pidns: CHILD_NS,
        start: 9,
        comm: "sleeper",
    };
    let f = run(
        &mut e,
        &[
            fork(6, &unshare, &node),
            fork(7, &node, &mid),
            fork(8, &mid, &leaf),
            fork(9, &mid, &live),
            exit(S, &leaf, 0),
            exit(2 * S, &mid, 0),
            // node's libuv waits for the child it spawned, by pid.
            wait(2 * S + 1, &node, 61, Some(61)),
            reap(2 * S + 2, &mid, &node, Some(2 * S)),
            // The live orphan's next event names its new parent.
            exec_event(3 * S, &live.with_ppid(60)),
        ],
    );
    assert!(zombies(&f).is_empty(), "not yet 5 s: {f:?}");
    assert_eq!(parent_pid(&e, &live), Some(60));
    assert_eq!(parent_pid(&e, &leaf), Some(60));
    assert_eq!(e.counters().disagreements, 0);
    let f = e.tick(7 * S);
    let z = zombies(&f);
    assert_eq!(z.len(), 1, "{f:?}");
    let z = z[0];
    assert_eq!((z.process.pid, z.reaper.pid), (62, 60));
    assert!(z.reaper.ns_init && z.reaper.ns_pid == 1);
    assert!(z.adopted);
    assert_eq!(z.adopted_from.as_ref().map(|p| p.pid), Some(61));
    assert_eq!(z.diagnosis, Diagnosis::WaitsOnlyForOthers);
    assert_eq!(
        z.ts_ns,
        7 * S,
        "at its deadline (--zombie-after from its adoption), not when the tick came"
    );
    assert_eq!(z.age_ns, 6 * S);
    let text = f[0].to_string();
    assert!(
        text.starts_with("ZOMBIE  62 (make_zombie, pid 3 in its namespace) exited 0"),
        "{text}"
    );
    assert!(text.contains("reaper 60 (node, pid 1 of its namespace) adopted it from 61"));
    // Reaped at last: one zombie_reaped with the whole age.
    let f = e.feed(&reap(9 * S, &leaf, &node, Some(S)));
    match f.as_slice() {
        [Finding::ZombieReaped(r)] => assert_eq!((r.process.pid, r.age_ns), (62, 8 * S)),
        other => panic!("{other:?}"),
    }
}

fn exec_event(ts: u64, p: &P) -> Event {
    ev(
        ts,
        p,
        EventData::Exec(Exec {
            filename: format!("/bin/{}", p.comm),
            argv: vec![p.comm.into()],
            argv_truncated: false,
            comm_before: None,
            old_tid: None,
        }),
    )
}

/// A subreaper the table could not know of (prctl is not traced) is learned from the first
/// event of an orphan it adopted, and used for the next orphans.
#[test]
fn subreaper_learned_from_reparenting() {
    let mut e = Engine::new(Config::default());
    e.bootstrap(&snapshot(&[(1, 0, 'S', "init")], 1));
    let init = host_init();
    let shim = P::host(10, 1, 10, "shim");
    let mid = P::host(11, 10, 11, "mid");
    let kid = P::host(12, 11, 12, "kid");
    run(
        &mut e,
        &[
            fork(10, &init, &shim),
            fork(11, &shim, &mid),
            fork(12, &mid, &kid),
            exit(S, &mid, 0),
        ],
    );
    assert_eq!(parent_pid(&e, &kid), Some(1), "predicted: the init");
    e.feed(&exec_event(2 * S, &kid.with_ppid(10)));
    assert_eq!(parent_pid(&e, &kid), Some(10));
    assert_eq!(e.counters().subreapers_learned, 1);
    assert_eq!(e.counters().disagreements, 0);
    // Next time the table predicts the subreaper itself.
    let mid2 = P::host(13, 10, 13, "mid2");
    let kid2 = P::host(14, 13, 14, "kid2");
    run(
        &mut e,
        &[
            fork(3 * S, &shim, &mid2),
            fork(3 * S, &mid2, &kid2),
            exit(4 * S, &mid2, 0),
        ],
    );
    assert_eq!(parent_pid(&e, &kid2), Some(10));
}

/// A log filtered to one subtree has no event of the host's init: orphans go to a stand-in
/// pid 1 that the init's first event (if any) fills in.
#[test]
fn orphans_of_an_unseen_host_init() {
    let mut e = Engine::new(Config::default());
    let a = P::host(10, 5, 10, "a");
    let b = P::host(11, 10, 11, "b");
    let c = P::host(12, 11, 12, "c");
    run(
        &mut e,
        &[
            fork(10, &a, &b),
            fork(11, &b, &c),
            exit(S, &c, 0),
            exit(2 * S, &b, 0),
        ],
    );
    assert_eq!(parent_pid(&e, &c), Some(1));
    let f = e.tick(10 * S);
    let z = zombies(&f);
    assert_eq!(z.len(), 2, "{f:?}");
    let c_zombie = z.iter().find(|z| z.process.pid == 12).unwrap();
    assert_eq!(
        (c_zombie.reaper.pid, c_zombie.reaper.comm.as_str().as_ref()),
        (1, "?")
    );
    e.feed(&exec_event(11 * S, &P::host(1, 0, 1, "systemd")));
    assert_eq!(e.table().find(1, 1).unwrap().comm.as_str(), "systemd");
    assert_eq!(e.counters().disagreements, 0);
}

#[test]
fn parent_disagreement_is_surfaced() {
    let mut e = Engine::new(Config::default());
    e.bootstrap(&snapshot(&[(1, 0, 'S', "init"), (5, 1, 'S', "other")], 1));
    let init = host_init();
    let a = P::host(10, 1, 10, "a");
    let b = P::host(11, 10, 11, "b");
    run(
        &mut e,
        &[fork(10, &init, &a), fork(11, &a, &b), exit(S, &a, 0)],
    );
    // 5 is no ancestor of b: the kernel contradicts the table.
    e.feed(&exec_event(2 * S, &b.with_ppid(5)));
    assert_eq!(e.counters().disagreements, 1);
    assert_eq!(parent_pid(&e, &b), Some(5), "the kernel's word wins");
    let summary = e.summary().to_string();
    assert!(
        summary.contains("parent disagreements (table vs kernel): 1"),
        "{summary}"
    );
}

fn snapshot(procs: &[(u32, u32, char, &str)], taken_ns: u64) -> Snapshot {
    Snapshot {
        taken_ns,
        ns_per_tick: 10_000_000,
        procs: procs
            .iter()
            .map(|&(pid, ppid, state, comm)| ProcInfo {
                pid,
                ppid,
                start_ns: u64::from(pid) * 10_000_000,
                comm: comm.into(),
                exe: None,
                ns_pid: pid,
                pidns: HOST_NS,
                cgroup: String::new(),
                cgroup_id: 0,
                state,
                exit_status: 0,
            })
            .collect(),
    }
}

#[test]
fn zombie_diagnoses() {
    // Parent waited once, before the child exited: "not since".
    let mut e = Engine::new(Config::default());
    let init = host_init();
    let parent = P::host(10, 1, 10, "parent");
    let child = P::host(11, 10, 11, "child");
    let f = run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(11, &parent, &child),
            wait(S / 2, &parent, -1, None),
            exit(S, &child, 3),
            // Any later event drives the clock past the deadline.
            exec_event(7 * S, &parent),
        ],
    );
    let z = zombies(&f);
    assert_eq!(z.len(), 1, "{f:?}");
    assert_eq!(z[0].diagnosis, Diagnosis::NotWaitedSinceExit);
    assert!(!z[0].adopted);
    assert_eq!(z[0].exit_status.unwrap().code, Some(3));

    // Never waited at all.
    let mut e = Engine::new(Config::default());
    let f = run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(11, &parent, &child),
            exit(S, &child, 0),
        ],
    );
    assert!(f.is_empty());
    let f = e.tick(10 * S);
    assert_eq!(zombies(&f)[0].diagnosis, Diagnosis::NeverWaited);
    assert!(
        f[0].to_string().contains("has never called wait()"),
        "{}",
        f[0]
    );

    // Stopped parent.
    let mut e = Engine::new(Config::default());
    run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(11, &parent, &child),
            deliver(S / 2, &parent, 19, Disposition::Default),
            exit(S, &child, 0),
        ],
    );
    assert_eq!(zombies(&e.tick(10 * S))[0].diagnosis, Diagnosis::Stopped);

    // Reaped in time: no finding at all.
    let mut e = Engine::new(Config::default());
    let f = run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(11, &parent, &child),
            exit(S, &child, 0),
            wait(2 * S, &parent, -1, Some(11)),
            reap(2 * S, &child, &parent, Some(S)),
            exec_event(20 * S, &parent),
        ],
    );
    assert!(f.is_empty(), "{f:?}");
}

/// A zombie reported as its parent's, then orphaned: reported again once its new reaper has
/// had --zombie-after to reap it, naming the new reaper; one zombie_reaped at the end.
#[test]
fn reported_zombie_is_reported_again_for_its_adopter() {
    let mut e = Engine::new(Config::default());
    e.bootstrap(&snapshot(&[(1, 0, 'S', "init")], 1));
    let init = host_init();
    let parent = P::host(10, 1, 10, "parent");
    let child = P::host(11, 10, 11, "child");
    let f = run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(11, &parent, &child),
            exit(S, &child, 0),
            exit(8 * S, &parent, 0),
        ],
    );
    let z = zombies(&f);
    assert_eq!(z.len(), 1, "{f:?}");
    assert_eq!((z[0].reaper.pid, z[0].adopted), (10, false));
    assert!(
        zombies(&e.tick(12 * S)).is_empty(),
        "the adopter's 5 s are not over"
    );
    let f = e.tick(13 * S);
    // The parent itself is now init's zombie too.
    let z: Vec<_> = zombies(&f)
        .into_iter()
        .filter(|z| z.process.pid == 11)
        .collect();
    assert_eq!(z.len(), 1, "{f:?}");
    assert_eq!(
        (z[0].reaper.pid, z[0].adopted, z[0].age_ns),
        (1, true, 12 * S)
    );
    assert_eq!(z[0].adopted_from.as_ref().map(|p| p.pid), Some(10));
    let f = e.feed(&reap(14 * S, &child, &init, Some(S)));
    assert_eq!(
        f.iter().map(Finding::kind).collect::<Vec<_>>(),
        ["zombie_reaped"]
    );
}

/// The seed's story: chrome trees orphaned to npm, PID 1 of a container, which reaps none.
#[test]
fn zombie_leak_names_the_reaper_and_grows() {
    let mut e = Engine::new(Config::default());
    let runtime = P::host(40, 1, 4, "containerd-shim");
    let npm = P {
        pid: 50,
        ppid: 40,
        ns_pid: 1,
        pidns: CHILD_NS,
        start: 5,
        comm: "npm",
    };
    let mut events = vec![fork(5, &runtime, &npm)];
    let mut t = S;
    for i in 0..6u32 {
        let chrome = P {
            pid: 100 + 10 * i,
            ppid: 50,
            ns_pid: 10 + 10 * i,
            pidns: CHILD_NS,
            start: t,
            comm: "chrome",
        };
        let gpu = P {
            pid: chrome.pid + 1,
            ppid: chrome.pid,
            ns_pid: chrome.ns_pid + 1,
            pidns: CHILD_NS,
            start: t + 1,
            comm: "chrome",
        };
        events.extend([
            fork(t, &npm, &chrome),
            fork(t + 1, &chrome, &gpu),
            exit(t + 2, &chrome, 0),
            // npm does collect the chrome it started itself...
            wait(t + 3, &npm, chrome.pid as i32, Some(chrome.pid)),
            reap(t + 3, &chrome, &npm, Some(t + 2)),
            // ...but not the orphaned gpu process.
            exit(t + 4, &gpu.with_ppid(50), 0),
        ]);
        t += S;
    }
    events.push(exec_event(30 * S, &npm));
    let f = run(&mut e, &events);
    assert_eq!(zombies(&f).len(), 6);
    let leaks: Vec<_> = f
        .iter()
        .filter_map(|f| match f {
            Finding::ZombieLeak(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(
        leaks.iter().map(|l| l.zombies).collect::<Vec<_>>(),
        [3, 6],
        "at the threshold and when doubled: {f:?}"
    );
    let l = leaks[0];
    assert_eq!((l.reaper.pid, l.adopted, l.reaped_adopted), (50, 3, 0));
    assert_eq!(l.comms[0].comm.as_str(), "chrome");
    let text = Finding::ZombieLeak(l.clone()).to_string();
    assert!(
        text.starts_with("ZOMBIE LEAK  50 (npm, pid 1 of its namespace) holds 3 unreaped zombies (chrome ×3); it adopted 3 of them and has reaped none of the children it adopted"),
        "{text}"
    );
    let summary = e.summary();
    assert_eq!(summary.top_reapers[0].reaper.pid, 50);
    assert_eq!(summary.top_reapers[0].zombies, 6);
}

/// One event whose tick reports a zombie and which itself reaps it: both findings come from
/// that `feed`, in time order, and each is counted once.
#[test]
fn a_feeds_tick_and_event_findings_are_counted_once() {
    let init = host_init();
    let parent = P::host(10, 1, 10, "parent");
    let child = P::host(11, 10, 11, "child");
    let mut e = Engine::new(Config::default());
    run(
        &mut e,
        &[
            fork(10, &init, &parent),
            fork(S, &parent, &child),
            exit(2 * S, &child, 0),
        ],
    );
    let f = e.feed(&reap(10 * S, &child, &parent, Some(2 * S)));
    let kinds: Vec<&str> = f.iter().map(Finding::kind).collect();
    assert_eq!(kinds, ["zombie", "zombie_reaped"], "{f:?}");
    let counted = &e.counters().findings;
    assert_eq!((counted["zombie"], counted["zombie_reaped"]), (1, 1));
}

#[test]
fn zombies_from_before_the_trace_come_from_the_bootstrap() {
    let mut e = Engine::new(Config::default());
    e.bootstrap(&snapshot(
        &[
            (1, 0, 'S', "init"),
            (7, 1, 'S', "npm"),
            (8, 7, 'Z', "chrome"),
        ],
        100 * S,
    ));
    assert!(e.tick(104 * S).is_empty());
    assert_eq!(
        e.next_deadline(),
        Some(105 * S),
        "a deadline, for the live timer"
    );
    let f = e.tick(106 * S);
    let z = zombies(&f);
    assert_eq!(z.len(), 1, "{f:?}");
    assert!(z[0].age_at_least && z[0].exit_ns.is_none());
    assert_eq!(z[0].age_ns, 5 * S);
    assert_eq!(z[0].reaper.pid, 7);
    assert_eq!(z[0].diagnosis, Diagnosis::NoWaitSinceTraceStart);
    assert!(
        f[0].to_string().contains("unreaped for at least 5.0 s"),
        "{}",
        f[0]
    );
}

#[test]
fn container_comes_from_the_cgroup_path() {
    let mut e = Engine::new(Config::default());
    let id = "abc123def4567890abc123def4567890abc123def4567890abc123def4567890";
    let mut snap = snapshot(
        &[
            (1, 0, 'S', "init"),
            (7, 1, 'S', "npm"),
            (8, 7, 'Z', "chrome"),
        ],
        0,
    );
    for p in &mut snap.procs[1..] {
        p.cgroup = format!("/system.slice/docker-{id}.scope");
        p.cgroup_id = 77;
    }
    e.bootstrap(&snap);
    let f = e.tick(6 * S);
    let z = zombies(&f)[0];
    let c = z.reaper.container.as_ref().expect("a container");
    assert_eq!(
        (c.runtime.as_str(), c.id.as_str()),
        ("docker", "abc123def456")
    );
    assert!(
        f[0].to_string()
            .contains("reaper 7 (npm, pid 7 in container docker abc123def456)")
    );
}

#[test]
fn signal_ignored_by_namespace_init_names_its_children() {
    let mut e = Engine::new(Config::default());
    let docker = P::host(30, 1, 3, "dockerd");
    let bash = P {
        pid: 40,
        ppid: 30,
        ns_pid: 1,
        pidns: CHILD_NS,
        start: 4,
        comm: "bash",
    };
    let app = P {
        pid: 41,
        ppid: 40,
        ns_pid: 2,
        pidns: CHILD_NS,
        start: 5,
        comm: "signal_test",
    };
    let f = run(
        &mut e,
        &[
            fork(4, &docker, &bash),
            fork(5, &bash, &app),
            exec_event(6, &app),
            signal(
                S,
                &docker,
                &bash,
                15,
                SignalResult::Ignored,
                Disposition::Default,
                false,
            ),
        ],
    );
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!(d[0].reason, DropReason::IgnoredByInit);
    assert_eq!((d[0].sender.pid, d[0].target.pid), (30, 40));
    assert_eq!(
        d[0].children.iter().map(|c| c.pid).collect::<Vec<_>>(),
        [41]
    );
    let text = f[0].to_string();
    assert!(
        text.contains("SIGTERM from 30 (dockerd) to 40 (bash, pid 1 of its namespace)"),
        "{text}"
    );
    assert!(
        text.contains("its children got nothing: 41 (signal_test, pid 2 in its namespace)"),
        "{text}"
    );
}

#[test]
fn signal_ignored_and_default_ignored() {
    let init = host_init();
    let a = P::host(10, 1, 10, "a");
    let b = P::host(11, 1, 11, "b");
    let events = [
        fork(10, &init, &a),
        fork(11, &init, &b),
        signal(
            S,
            &a,
            &b,
            10,
            SignalResult::Ignored,
            Disposition::Ignore,
            false,
        ),
        // SIGCHLD to a parent that ignores it: normal, not a finding by default.
        signal(
            S,
            &a,
            &b,
            17,
            SignalResult::Ignored,
            Disposition::Ignore,
            false,
        ),
        signal(
            S,
            &a,
            &b,
            28,
            SignalResult::Ignored,
            Disposition::Default,
            false,
        ),
    ];
    let mut e = Engine::new(Config::default());
    let f = run(&mut e, &events);
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!((d[0].reason, d[0].sig.0), (DropReason::Ignored, 10));
    let mut e = Engine::new(Config {
        all_signals: true,
        ..Config::default()
    });
    assert_eq!(drops(&run(&mut e, &events)).len(), 3, "--all-signals");
}

/// A SIGCHLD pending for a handler when its target exits is everyday noise: shown only with
/// --all-signals.
#[test]
fn pending_sigchld_at_exit_is_quiet_by_default() {
    let init = host_init();
    let parent = P::host(10, 1, 10, "parent");
    let child = P::host(11, 10, 11, "child");
    let events = [
        fork(10, &init, &parent),
        fork(11, &parent, &child),
        exit(S, &child, 0),
        to_handler(S, &child, &parent, 17, SignalResult::Delivered),
        exit(S + 5, &parent, 0),
    ];
    assert!(drops(&run(&mut Engine::new(Config::default()), &events)).is_empty());
    let mut e = Engine::new(Config {
        all_signals: true,
        ..Config::default()
    });
    let f = run(&mut e, &events);
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!((d[0].reason, d[0].sig.0), (DropReason::TargetExited, 17));
}

#[test]
fn burst_to_blocked_target_is_coalesced_with_its_count() {
    let mut e = Engine::new(Config::default());
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut events = vec![
        fork(10, &init, &a),
        fork(11, &init, &b),
        signal(
            S,
            &a,
            &b,
            10,
            SignalResult::Delivered,
            Disposition::Handler,
            true,
        ),
    ];
    for i in 0..4 {
        events.push(signal(
            S + i + 1,
            &a,
            &b,
            10,
            SignalResult::AlreadyPending,
            Disposition::Handler,
            true,
        ));
    }
    let f = run(&mut e, &events);
    assert!(f.is_empty(), "the burst is open: {f:?}");
    // Unblocked after 2 s: delivered once, the burst closes.
    let f = e.feed(&deliver(3 * S, &b, 10, Disposition::Handler));
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!((d[0].reason, d[0].count), (DropReason::Coalesced, Some(4)));
    assert_eq!(d[0].pending_ns, Some(2 * S));
    assert!(
        f[0].to_string()
            .contains("coalesced: 5 sent while one was pending, 4 merged away")
    );
}

#[test]
fn blocked_past_deadline_then_target_exited() {
    let mut e = Engine::new(Config::default());
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    run(
        &mut e,
        &[
            fork(10, &init, &a),
            fork(11, &init, &b),
            signal(
                S,
                &a,
                &b,
                10,
                SignalResult::Delivered,
                Disposition::Default,
                true,
            ),
        ],
    );
    assert_eq!(e.next_deadline(), Some(6 * S));
    // No event for a while: the tick alone must report it.
    let f = e.tick(7 * S);
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!(
        (d[0].reason, d[0].pending_ns),
        (DropReason::Blocked, Some(5 * S))
    );
    assert!(e.tick(8 * S).is_empty(), "reported once");
    let f = e.feed(&exit(9 * S, &b, 0));
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!(
        (d[0].reason, d[0].pending_ns),
        (DropReason::TargetExited, Some(8 * S))
    );
}

#[test]
fn the_signal_that_kills_is_not_target_exited() {
    let mut e = Engine::new(Config::default());
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let killed = exit_status(2 * S, &b, 15, true);
    let f = run(
        &mut e,
        &[
            fork(10, &init, &a),
            fork(11, &init, &b),
            to_handler(S, &a, &b, 15, SignalResult::Delivered),
            killed,
        ],
    );
    assert!(drops(&f).is_empty(), "{f:?}");
}

#[test]
fn queue_overflow() {
    let mut e = Engine::new(Config::default());
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let f = e.feed(&to_handler(S, &a, &b, 40, SignalResult::Overflow));
    let d = drops(&f);
    assert_eq!((d[0].reason, d[0].sig.0), (DropReason::QueueOverflow, 40));
    assert!(f[0].to_string().contains("SIGRTMIN+6"), "{}", f[0]);
}

const MS: u64 = 1_000_000;

/// Signals merged away, summed over the `coalesced` findings.
fn coalesced(findings: &[Finding]) -> u64 {
    drops(findings)
        .iter()
        .filter(|d| d.reason == DropReason::Coalesced)
        .map(|d| d.count.unwrap_or(0))
        .sum()
}

/// A storm from `a` to `b`, written as the probes write it when sender and target run on two
/// CPUs: each CPU's first event plain, the repeats as bursts, in an order that `order` picks
/// (the bursts of one CPU can come before or after the other's).
fn storm(a: &P, b: &P, deliveries_first: bool) -> Vec<Event> {
    let init = host_init();
    let mut events = vec![
        fork(10, &init, a),
        fork(11, &init, b),
        to_handler(S, a, b, 10, SignalResult::Delivered),
        deliver(S + 1000, b, 10, Disposition::Handler),
    ];
    // 99,999 more sent: 50,000 delivered, 49,999 merged into one pending; 50,000 deliveries.
    let sent = handler_burst(S + 9 * MS, S + 2000, a, b, 10, 50_000, 49_999);
    let delivered = deliver_burst(S + 9 * MS + 500, S + 3000, b, 10, 50_000);
    if deliveries_first {
        events.extend([delivered, sent]);
    } else {
        events.extend([sent, delivered]);
    }
    events
}

#[test]
fn signal_storm_in_bursts_is_counted_exactly_in_either_order() {
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    for deliveries_first in [false, true] {
        let mut e = Engine::new(Config::default());
        let mut events = storm(&a, &b, deliveries_first);
        events.push(exit(2 * S, &b, 0));
        let mut f = run(&mut e, &events);
        f.extend(e.tick(10 * S));
        f.extend(e.finish());
        let d = drops(&f);
        assert!(
            d.iter().all(|d| d.reason == DropReason::Coalesced),
            "deliveries first: {deliveries_first}: {f:?}"
        );
        assert_eq!(
            coalesced(&f),
            49_999,
            "deliveries first: {deliveries_first}"
        );
        let summary = e.summary();
        assert_eq!(summary.table.pending_signals, 0);
        let line = summary.to_string();
        assert!(
            line.contains("dropped signals: coalesced SIGUSR1 49999"),
            "{line}"
        );
    }
}

/// The target moved to another CPU and exited there: its exit is read before the burst of its
/// last deliveries, which its old CPU writes later. Not a `target_exited`.
#[test]
fn deliveries_written_after_the_targets_exit_still_count() {
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut e = Engine::new(Config::default());
    let mut events = storm(&a, &b, false);
    // The burst above counted 50,000 deliveries of 50,000 sent; 1,000 more sent, and the
    // target's exit is read before the deliveries of those.
    events.extend([
        handler_burst(S + 19 * MS, S + 11 * MS, &a, &b, 10, 1_000, 0),
        exit(S + 20 * MS, &b, 0),
    ]);
    let f = run(&mut e, &events);
    assert!(
        drops(&f).iter().all(|d| d.reason == DropReason::Coalesced),
        "{f:?}"
    );
    assert!(e.next_deadline().is_some(), "waits for late records");
    let f = e.feed(&deliver_burst(S + 40 * MS, S + 12 * MS, &b, 10, 1_000));
    assert!(drops(&f).is_empty(), "{f:?}");
    let mut f = e.tick(5 * S);
    f.extend(e.finish());
    assert!(
        drops(&f)
            .iter()
            .all(|d| d.reason != DropReason::TargetExited),
        "{f:?}"
    );
}

/// The same, but the deliveries never come: the target did exit with one pending, and it is
/// said once the late records had their time.
#[test]
fn pending_at_exit_is_reported_after_late_records_had_their_time() {
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut e = Engine::new(Config::default());
    let mut events = storm(&a, &b, true);
    events.extend([
        handler_burst(S + 19 * MS, S + 11 * MS, &a, &b, 10, 1, 0),
        exit(S + 20 * MS, &b, 0),
    ]);
    let f = run(&mut e, &events);
    assert!(
        drops(&f)
            .iter()
            .all(|d| d.reason != DropReason::TargetExited),
        "not yet: {f:?}"
    );
    let deadline = e.next_deadline().expect("settle deadline");
    assert!(e.tick(deadline - 1).is_empty());
    let f = e.tick(deadline);
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!((d[0].reason, d[0].count), (DropReason::TargetExited, None));
    assert_eq!(d[0].ts_ns, deadline);
    assert_eq!(d[0].pending_ns, Some(MS));
    // At the end of the input instead: the same finding.
    let mut again = Engine::new(Config::default());
    run(&mut again, &events);
    let f = again.finish();
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!(
        (d[0].reason, d[0].ts_ns),
        (DropReason::TargetExited, deadline)
    );
}

/// A blocked target, five sent: the four merged ones come in a burst the sender's CPU writes
/// only after the target (on the other CPU) unblocked and took the pending one.
#[test]
fn merged_burst_written_after_the_delivery_is_coalesced() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut e = Engine::new(Config {
        blocked_after_ns: 100 * MS,
        ..Config::default()
    });
    let events = [
        fork(10, &init, &a),
        fork(11, &init, &b),
        signal(
            S,
            &a,
            &b,
            10,
            SignalResult::Delivered,
            Disposition::Handler,
            true,
        ),
        deliver(S + 50 * MS, &b, 10, Disposition::Handler),
        signal_burst(
            S + 4000,
            S + 1000,
            &a,
            &b,
            10,
            Disposition::Handler,
            true,
            0,
            4,
        ),
        exit(S + 60 * MS, &b, 0),
    ];
    let mut f = run(&mut e, &events);
    f.extend(e.tick(10 * S));
    f.extend(e.finish());
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!((d[0].reason, d[0].count), (DropReason::Coalesced, Some(4)));
}

/// `event` as written on `cpu`.
fn on(cpu: u32, mut event: Event) -> Event {
    event.task.cpu = Some(cpu);
    event
}

/// A signal to a handler, delivered on the target's CPU; the target exits and is reaped at
/// once, while the sender's CPU may still hold repeats of the send (one more, merged into
/// the pending one).
fn sent_delivered_exited_reaped(init: &P, a: &P, b: &P) -> Vec<Event> {
    vec![
        on(0, fork(10, init, a)),
        on(0, fork(11, init, b)),
        on(0, to_handler(S, a, b, 10, SignalResult::Delivered)),
        on(1, deliver(S + 100_000, b, 10, Disposition::Handler)),
        on(1, exit(S + 200_000, b, 0)),
        on(1, wait(S + 300_000, init, -1, Some(b.pid))),
        on(1, reap(S + 300_000, b, init, Some(S + 200_000))),
    ]
}

/// A released target's entry stays while the sender's CPU may still write a burst for it: the
/// merged repeat that comes after the release is coalesced into the delivered signal, and
/// nothing is reported pending at the exit.
#[test]
fn released_targets_entry_waits_for_a_burst_its_run_may_write() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut e = Engine::new(Config::default());
    let mut f = run(&mut e, &sent_delivered_exited_reaped(&init, &a, &b));
    // The target's CPU moved on; the sender's wrote nothing since.
    f.extend(e.feed(&on(
        1,
        fork(S + 20 * MS, &init, &P::host(12, 1, 12, "other")),
    )));
    assert_eq!(e.signal_entries(), 1);
    f.extend(e.feed(&on(
        0,
        handler_burst(S + 1_000, S + 1_000, &a, &b, 10, 0, 1),
    )));
    f.extend(e.tick(10 * S));
    f.extend(e.finish());
    let d = drops(&f);
    assert_eq!(d.len(), 1, "{f:?}");
    assert_eq!((d[0].reason, d[0].count), (DropReason::Coalesced, Some(1)));
    assert_eq!((d[0].sender.pid, d[0].target.pid), (a.pid, b.pid));
    assert_eq!(
        d[0].target.start_ns, b.start,
        "the target as the table still has it"
    );
}

/// Once both CPUs wrote a record `SIGNAL_RUN_NS` after the records that opened runs, no burst
/// can come: the released target's entry is let go then, not seconds later. Without CPUs in
/// the events, or after a loss, it is kept for the time the engine allows late records.
#[test]
fn released_targets_entry_goes_when_no_burst_can_come() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let later = |cpu, ms| {
        on(
            cpu,
            fork(S + ms * MS, &init, &P::host(100 + cpu, 1, ms, "other")),
        )
    };

    let mut e = Engine::new(Config::default());
    run(&mut e, &sent_delivered_exited_reaped(&init, &a, &b));
    assert_eq!(e.signal_entries(), 1);
    e.feed(&later(0, 11));
    assert_eq!(e.signal_entries(), 1, "the delivery's CPU may still write");
    e.feed(&later(1, 11));
    assert_eq!(e.signal_entries(), 0);

    // The delivery's CPU never writes again: its run is not seen to close, and the entry goes
    // when it has been idle for as long as the engine allows late records.
    let mut e = Engine::new(Config::default());
    run(&mut e, &sent_delivered_exited_reaped(&init, &a, &b));
    e.feed(&later(0, 11));
    e.feed(&later(0, 1_500));
    assert_eq!(
        e.signal_entries(),
        1,
        "the delivery's CPU wrote nothing since"
    );
    e.feed(&later(0, 3_100));
    assert_eq!(
        e.signal_entries(),
        0,
        "the delivery's CPU silent for twice SETTLE_NS"
    );

    let mut events = sent_delivered_exited_reaped(&init, &a, &b);
    for event in &mut events {
        event.task.cpu = None;
    }
    let mut e = Engine::new(Config::default());
    run(&mut e, &events);
    e.feed(&later(0, 11));
    e.feed(&later(1, 11));
    assert_eq!(e.signal_entries(), 1, "without CPUs");
    e.feed(&later(0, 3_100));
    assert_eq!(e.signal_entries(), 0, "without CPUs, after twice SETTLE_NS");

    let mut events = sent_delivered_exited_reaped(&init, &a, &b);
    events.insert(2, on(1, lost(S - 1, &init, 1, 1, 1)));
    let mut e = Engine::new(Config::default());
    run(&mut e, &events);
    e.feed(&later(0, 11));
    e.feed(&later(1, 11));
    assert_eq!(e.signal_entries(), 1, "after a loss");
}

/// A late burst took a released target's entry back; it still goes once the runs of both
/// CPUs have closed, not seconds later.
#[test]
fn released_targets_entry_taken_back_goes_when_its_runs_close() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let other = |cpu, ms, pid| {
        on(
            cpu,
            fork(S + ms * MS, &init, &P::host(pid, 1, pid.into(), "o")),
        )
    };
    let mut e = Engine::new(Config::default());
    run(&mut e, &sent_delivered_exited_reaped(&init, &a, &b));
    e.feed(&other(1, 20, 12));
    e.feed(&on(
        0,
        handler_burst(S + 1_000, S + 1_000, &a, &b, 10, 0, 1),
    ));
    assert_eq!(e.signal_entries(), 1);
    e.feed(&other(0, 30, 13));
    e.feed(&other(1, 31, 14));
    e.feed(&other(0, 32, 15));
    assert_eq!(e.signal_entries(), 0, "the runs of both CPUs closed");
}

/// Released targets' entries whose runs are never seen to close go twice `SETTLE_NS` after
/// they went idle, each on its own: one released later but idle earlier does not wait for
/// the one before it.
#[test]
fn released_targets_entries_are_swept_each_on_its_own() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let x = P::host(20, 1, 20, "x");
    let y = P::host(21, 1, 21, "y");
    let mut events = vec![
        on(0, fork(10, &init, &a)),
        on(0, fork(11, &init, &x)),
        on(0, fork(12, &init, &y)),
        // y: delivered on CPU 3 at 2 s and exits; a zombie until 3.5 s.
        on(0, to_handler(2 * S, &a, &y, 10, SignalResult::Delivered)),
        on(3, deliver(2 * S + 100_000, &y, 10, Disposition::Handler)),
        on(0, exit(2 * S + 200_000, &y, 0)),
        // x: delivered on CPU 2 at 3 s, exits and is reaped at once.
        on(0, to_handler(3 * S, &a, &x, 10, SignalResult::Delivered)),
        on(2, deliver(3 * S + 100_000, &x, 10, Disposition::Handler)),
        on(0, exit(3 * S + 200_000, &x, 0)),
        on(0, reap(3 * S + 300_000, &x, &init, Some(3 * S + 200_000))),
        on(0, reap(3 * S + S / 2, &y, &init, Some(2 * S + 200_000))),
    ];
    // Only CPU 0 writes from now on.
    let mut t = 3 * S + S / 2 + 50 * MS;
    while t < 5 * S + 500 * MS {
        let pid = 1000 + (t / MS) as u32;
        events.push(on(0, fork(t, &init, &P::host(pid, 1, t, "o"))));
        t += 50 * MS;
    }
    let mut e = Engine::new(Config::default());
    run(&mut e, &events);
    assert_eq!(
        e.signal_entries(),
        1,
        "y's, idle since 2.0002 s, went by 5.5 s"
    );
}

/// Bursts of signals ignored or refused: one finding each, with the exact count, and the
/// summary counts signals.
#[test]
fn ignored_and_overflowed_bursts_keep_their_counts() {
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut ignored = signal_burst(2 * S, S, &a, &b, 10, Disposition::Ignore, false, 0, 0);
    let mut overflow = handler_burst(2 * S, S, &a, &b, 40, 0, 0);
    if let EventData::SignalBurst(b) = &mut ignored.data {
        (b.ignored, b.count) = (70_000, 70_000);
    }
    if let EventData::SignalBurst(b) = &mut overflow.data {
        (b.overflow, b.delivered, b.count) = (3, 5, 8);
    }
    let mut e = Engine::new(Config::default());
    let f = run(
        &mut e,
        &[
            signal(
                S,
                &a,
                &b,
                10,
                SignalResult::Ignored,
                Disposition::Ignore,
                false,
            ),
            ignored,
            overflow,
        ],
    );
    let d = drops(&f);
    let got: Vec<_> = d.iter().map(|d| (d.reason, d.sig.0, d.count)).collect();
    assert_eq!(
        got,
        [
            (DropReason::Ignored, 10, None),
            (DropReason::Ignored, 10, Some(70_000)),
            (DropReason::QueueOverflow, 40, Some(3)),
        ]
    );
    assert!(f[1].to_string().ends_with("(70000 of them)"), "{}", f[1]);
    let line = e.summary().to_string();
    assert!(line.contains("ignored SIGUSR1 70001"), "{line}");
    assert!(line.contains("queue_overflow SIGRTMIN+6 3"), "{line}");
}

/// Deliveries with nothing pending are credit for a burst of sends written later, for a while
/// only: a burst that began after them is not what they delivered.
#[test]
fn early_deliveries_match_only_a_burst_that_began_before_them() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut e = Engine::new(Config::default());
    run(
        &mut e,
        &[
            fork(10, &init, &a),
            fork(11, &init, &b),
            deliver(S, &b, 12, Disposition::Handler),
            // Sent after that delivery: still pending.
            signal_burst(3 * S, 2 * S, &a, &b, 12, Disposition::Handler, true, 1, 0),
        ],
    );
    assert_eq!(e.summary().table.pending_signals, 1);
    let f = e.tick(9 * S);
    assert_eq!(
        drops(&f).iter().map(|d| d.reason).collect::<Vec<_>>(),
        [DropReason::Blocked]
    );
}

/// The sender moved to another CPU in the middle of a run: its old CPU still holds the burst
/// (sends up to the one still pending) when its new CPU writes a signal merged into that
/// pending one. With or without the target's deliveries of the burst seen first, nothing is
/// left pending and every merged signal is counted once.
#[test]
fn sender_moving_cpus_mid_burst_leaves_nothing_pending() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    for deliveries_seen_first in [true, false] {
        let mut events = vec![
            fork(10, &init, &a),
            fork(11, &init, &b),
            to_handler(S, &a, &b, 10, SignalResult::Delivered),
            deliver(S + MS, &b, 10, Disposition::Handler),
        ];
        // Held on the old CPU: 5 sent "delivered" (the last still pending), 100 merged.
        let held = handler_burst(S + 9 * MS, S + 2 * MS, &a, &b, 10, 5, 100);
        let deliveries = [
            deliver(S + 3 * MS, &b, 10, Disposition::Handler),
            deliver_burst(S + 8 * MS, S + 4 * MS, &b, 10, 3),
        ];
        if deliveries_seen_first {
            events.extend(deliveries.clone());
        }
        // From the new CPU: one more, merged into the pending one.
        events.push(to_handler(
            S + 10 * MS,
            &a,
            &b,
            10,
            SignalResult::AlreadyPending,
        ));
        if !deliveries_seen_first {
            events.extend(deliveries);
        }
        events.extend([
            held,
            deliver(S + 11 * MS, &b, 10, Disposition::Handler),
            exit(S + 12 * MS, &b, 0),
        ]);
        let mut e = Engine::new(Config::default());
        let mut f = run(&mut e, &events);
        f.extend(e.tick(10 * S));
        f.extend(e.finish());
        assert!(
            drops(&f).iter().all(|d| d.reason == DropReason::Coalesced),
            "deliveries seen first: {deliveries_seen_first}: {f:?}"
        );
        assert_eq!(
            coalesced(&f),
            101,
            "deliveries seen first: {deliveries_seen_first}"
        );
    }
}

/// What the probes write for one sender and one target when each CPU counts repeats in runs
/// (as `tracer-ebpf/src/runs.rs` does): the first event of a run at once, the repeats as a
/// burst when the CPU writes anything else, when a nudge comes, or at the end.
struct Probes<'a> {
    a: &'a P,
    b: &'a P,
    sig: u32,
    /// Per CPU: the open send run and the open delivery run.
    runs: [[Option<Run>; 2]; 2],
    written: Vec<Event>,
}

#[derive(Clone, Copy, Default)]
struct Run {
    start: u64,
    first: u64,
    last: u64,
    delivered: u64,
    merged: u64,
}

impl Run {
    fn count(&self) -> u64 {
        self.delivered + self.merged
    }
}

const SEND: usize = 0;
const DELIVERY: usize = 1;

impl Probes<'_> {
    /// Writes what `cpu` counted, keeping its runs open.
    fn flush(&mut self, cpu: usize) {
        for kind in [SEND, DELIVERY] {
            let Some(run) = self.runs[cpu][kind].as_mut() else {
                continue;
            };
            if run.count() == 0 {
                continue;
            }
            let r = *run;
            *run = Run {
                start: r.start,
                ..Run::default()
            };
            let written = if kind == SEND {
                handler_burst(
                    r.last,
                    r.first,
                    self.a,
                    self.b,
                    self.sig,
                    r.delivered,
                    r.merged,
                )
            } else {
                deliver_burst(r.last, r.first, self.b, self.sig, r.delivered)
            };
            self.write(cpu, written);
        }
    }

    /// A record `cpu` writes.
    fn write(&mut self, cpu: usize, mut event: Event) {
        event.task.cpu = Some(cpu as u32);
        self.written.push(event);
    }

    fn nudge(&mut self, cpu: usize) {
        self.flush(cpu);
        self.runs[cpu] = [None, None];
    }

    fn event(&mut self, cpu: usize, kind: usize, t: u64, delivered: bool) {
        if let Some(run) = self.runs[cpu][kind].as_mut()
            && t - run.start < 10 * MS
        {
            if run.count() == 0 {
                run.first = t;
            }
            run.last = t;
            if delivered {
                run.delivered += 1;
            } else {
                run.merged += 1;
            }
            return;
        }
        self.flush(cpu);
        let written = if kind == SEND {
            let result = if delivered {
                SignalResult::Delivered
            } else {
                SignalResult::AlreadyPending
            };
            signal(
                t,
                self.a,
                self.b,
                self.sig,
                result,
                Disposition::Handler,
                false,
            )
        } else {
            deliver(t, self.b, self.sig, Disposition::Handler)
        };
        self.write(cpu, written);
        self.runs[cpu][kind] = Some(Run {
            start: t,
            ..Run::default()
        });
    }
}

/// Storms through simulated probes: sender and target each on one of two CPUs, often moving,
/// other events flushing a CPU at random, nudges 1 to 900 ms apart (so records come late by up
/// to almost `SETTLE_NS`), the target released right after its exit. Whatever order the records
/// come in, nothing is reported pending at the target's exit, and the `coalesced` counts add up
/// to the signals merged away; the same whether the records say their CPU (and the engine lets
/// the released target's entry go as soon as no burst can come) or not.
#[test]
fn simulated_storms_through_per_cpu_runs_stay_exact() {
    let init = host_init();
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut rng = common::rng::Rng(0x005e_ed0f_5167_a1a5);
    for round in 0..40 {
        // Standard signals merge; real-time ones queue.
        let sig = if round % 3 == 2 { 40 } else { 10 };
        let mut probes = Probes {
            a: &a,
            b: &b,
            sig,
            runs: [[None; 2]; 2],
            written: vec![fork(10, &init, &a), fork(11, &init, &b)],
        };
        let (mut sender_cpu, mut target_cpu) = (0, 1);
        let (mut queued, mut merged) = (0u64, 0u64);
        let mut t = S;
        let mut next_nudge = t + 10 * MS;
        let send_odds = 3 + rng.below(6);
        for _ in 0..100_000 {
            t += 2_000;
            if rng.below(1_000) == 0 {
                sender_cpu ^= 1;
            }
            if rng.below(1_000) == 0 {
                target_cpu ^= 1;
            }
            if rng.below(2_000) == 0 {
                probes.flush(rng.below(2));
            }
            if rng.below(10) < send_odds {
                let delivered = sig >= 34 || queued == 0;
                if delivered {
                    queued += 1;
                } else {
                    merged += 1;
                }
                probes.event(sender_cpu, SEND, t, delivered);
            } else if queued > 0 {
                queued -= 1;
                probes.event(target_cpu, DELIVERY, t, true);
            }
            if t >= next_nudge {
                probes.nudge(0);
                probes.nudge(1);
                next_nudge = t + (1 + rng.below(900) as u64) * MS;
            }
        }
        while queued > 0 {
            t += 2_000;
            queued -= 1;
            probes.event(target_cpu, DELIVERY, t, true);
        }
        t += MS;
        probes.flush(target_cpu);
        probes.write(target_cpu, exit(t, &b, 0));
        // Its parent reaps it at once, on the other CPU or the same.
        let reaper_cpu = rng.below(2);
        probes.flush(reaper_cpu);
        probes.write(reaper_cpu, wait(t + 1_000, &init, -1, Some(b.pid)));
        probes.write(reaper_cpu, reap(t + 1_000, &b, &init, Some(t)));
        // Read from the map once the probes are detached.
        probes.flush(0);
        probes.flush(1);

        let mut without_cpu = probes.written.clone();
        for event in &mut without_cpu {
            event.task.cpu = None;
        }
        let mut found = Vec::new();
        for (events, cpus) in [(&probes.written, true), (&without_cpu, false)] {
            let mut e = Engine::new(Config::default());
            let mut f = run(&mut e, events);
            f.extend(e.finish());
            let wrong: Vec<_> = drops(&f)
                .into_iter()
                .filter(|d| d.reason != DropReason::Coalesced)
                .collect();
            assert!(wrong.is_empty(), "round {round}, cpus {cpus}: {wrong:?}");
            assert_eq!(coalesced(&f), merged, "round {round}, cpus {cpus}");
            assert_eq!(e.summary().table.pending_signals, 0, "round {round}");
            found.push(f);
        }
        assert_eq!(found[0], found[1], "round {round}");
    }
}

/// A log with bursts, replayed, gives what the live engine gave.
#[test]
fn replay_of_bursts_equals_live() {
    let a = P::host(10, 1, 10, "sender");
    let b = P::host(11, 1, 11, "target");
    let mut events = storm(&a, &b, true);
    events.extend([
        handler_burst(S + 19 * MS, S + 11 * MS, &a, &b, 10, 2, 7),
        exit(S + 20 * MS, &b, 0),
        exec_event(5 * S, &a),
    ]);
    let mut live = Engine::new(Config::default());
    let mut live_findings = run(&mut live, &events);
    live_findings.extend(live.finish());
    assert_eq!(coalesced(&live_findings), 49_999 + 7);
    assert_eq!(
        drops(&live_findings)
            .iter()
            .filter(|d| d.reason == DropReason::TargetExited)
            .map(|d| d.count)
            .collect::<Vec<_>>(),
        [Some(2)]
    );
    let log: String = events.iter().map(|e| event_line(e) + "\n").collect();
    let header = r#"{"tracer_log":1,"start_ns":0,"boot_unix_ns":0,"boot_id":"x"}"#;
    let out = SharedBuf::default();
    replay(
        Box::new(std::io::Cursor::new(
            format!("{header}\n{log}").into_bytes(),
        )),
        Path::new("log"),
        Format::Json,
        Config::default(),
        Box::new(out.clone()),
    )
    .unwrap();
    let replayed: Vec<Finding> = String::from_utf8(out.bytes())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"finding\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replayed, live_findings);
}

#[test]
fn lost_events_then_reconcile_marks_exit_missed() {
    let mut e = Engine::new(Config::default());
    e.bootstrap(&snapshot(&[(1, 0, 'S', "init"), (5, 1, 'S', "shell")], 0));
    let shell = P::host(5, 1, 5 * 10_000_000, "shell");
    let gone = P::host(6, 5, 60_000_000, "gone");
    let stays = P::host(7, 5, 70_000_000, "stays");
    run(
        &mut e,
        &[
            fork(S, &shell, &gone),
            fork(S, &shell, &stays),
            lost(2 * S, &host_init(), 10, 10, 0),
        ],
    );
    assert!(e.needs_reconcile());
    e.reconcile(&snapshot(
        &[
            (1, 0, 'S', "init"),
            (5, 1, 'S', "shell"),
            (7, 5, 'S', "stays"),
        ],
        3 * S,
    ));
    assert!(!e.needs_reconcile());
    assert!(
        e.table()
            .find(6, gone.start)
            .unwrap()
            .has(flag::EXIT_MISSED)
    );
    assert!(e.table().find(7, stays.start).unwrap().is_alive());
    assert_eq!(e.counters().exits_missed, 1);
    // Retired like any reaped process.
    e.tick(3 * S + e.config().retention_ns);
    assert!(e.table().find(6, gone.start).is_none());
}

/// Endless fork/exit/reap churn: with a retention window the table stays the same size.
#[test]
fn retirement_bounds_memory_under_churn() {
    let mut e = Engine::new(Config {
        retention_ns: S,
        ..Config::default()
    });
    let init = host_init();
    let parent = P::host(10, 1, 10, "parent");
    e.feed(&fork(10, &init, &parent));
    let mut t = S;
    let mut sizes = Vec::new();
    for round in 0..4u32 {
        for i in 0..20_000u32 {
            let pid = 1000 + (i % 30_000);
            let c = P::host(pid, 10, t, "worker");
            e.feed(&fork(t, &parent, &c));
            e.feed(&exit(t + 1000, &c, 0));
            e.feed(&reap(t + 2000, &c, &parent, Some(t + 1000)));
            t += 100_000; // 10k processes a second
        }
        sizes.push((round, e.table().len(), e.table().bytes()));
    }
    // 1 s of retention at 10k/s: about 10k entries, never the 80k that went through.
    for &(round, len, _) in &sizes {
        assert!(len <= 10_100, "round {round}: {len} entries");
    }
    assert_eq!(sizes[3].2, sizes[1].2, "bytes flat: {sizes:?}");
    assert!(e.summary().table.retired >= 69_000);
}

/// A log replayed gives the findings the live engine gave, and the same output every time.
#[test]
fn replay_equals_live_and_is_deterministic() {
    let init = host_init();
    let parent = P::host(10, 1, 10, "parent");
    let child = P::host(11, 10, 11, "child");
    let b = P::host(12, 1, 12, "target");
    let events = vec![
        fork(10, &init, &parent),
        fork(11, &parent, &child),
        fork(12, &init, &b),
        exit(S, &child, 0),
        signal(
            S,
            &parent,
            &b,
            10,
            SignalResult::Delivered,
            Disposition::Handler,
            true,
        ),
        signal(
            S + 1,
            &parent,
            &b,
            10,
            SignalResult::AlreadyPending,
            Disposition::Handler,
            true,
        ),
        exec_event(8 * S, &parent),
        reap(9 * S, &child, &parent, Some(S)),
        exit(10 * S, &b, 0),
    ];
    let mut live = Engine::new(Config::default());
    let mut live_findings = run(&mut live, &events);
    live_findings.extend(live.finish());
    assert_eq!(
        live_findings.iter().map(Finding::kind).collect::<Vec<_>>(),
        [
            "zombie",
            "signal_dropped",
            "zombie_reaped",
            "signal_dropped",
            "signal_dropped"
        ],
        "{live_findings:?}"
    );

    // The log a live trace writes: header, then events with its findings interleaved.
    let log = SharedBuf::default();
    let header = LogHeader {
        tracer_log: LOG_FORMAT_VERSION,
        start_ns: 0,
        boot_unix_ns: 1,
        boot_id: "test".into(),
    };
    let mut sink = JsonSink::with_header(Box::new(log.clone()), &header).unwrap();
    let mut again = Engine::new(Config::default());
    for e in &events {
        for f in again.tick(e.ts_ns) {
            sink.finding(&f).unwrap();
        }
        sink.event(e).unwrap();
        for f in again.observe(e) {
            sink.finding(&f).unwrap();
        }
    }
    sink.flush().unwrap();
    let log = log.bytes();

    let replayed = |log: &[u8]| {
        let out = SharedBuf::default();
        replay(
            Box::new(std::io::Cursor::new(log.to_vec())),
            Path::new("log"),
            Format::Json,
            Config::default(),
            Box::new(out.clone()),
        )
        .unwrap();
        out.bytes()
    };
    let first = replayed(&log);
    assert_eq!(first, replayed(&log), "same input, same output");
    let findings: Vec<Finding> = String::from_utf8(first)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"finding\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(findings, live_findings);
}

/// `--pid` and `-- COMMAND` traces are about one subtree: a zombie elsewhere on the host, from
/// before the trace, is not theirs to report; the subtree's own are, down to grandchildren.
#[test]
fn scope_limits_findings_to_the_traced_subtree() {
    let mut e = Engine::new(Config::default());
    e.apply(&Observation::Snapshot {
        reason: SnapshotReason::Start,
        snapshot: snapshot(
            &[
                (1, 0, 'S', "init"),
                (7, 1, 'S', "npm"),
                (8, 7, 'Z', "chrome"),
            ],
            0,
        ),
    });
    e.apply(&Observation::Scope { pids: vec![] });
    let shell = P::host(20, 1, S, "shell");
    let child = P::host(21, 20, 2 * S, "worker");
    let grandchild = P::host(22, 21, 3 * S, "helper");
    e.apply(&Observation::Scope { pids: vec![20] });
    let mut f = run(
        &mut e,
        &[
            fork(2 * S, &shell, &child),
            fork(3 * S, &child, &grandchild),
            exit(3 * S, &grandchild, 0),
        ],
    );
    f.extend(e.tick(10 * S));
    let pids: Vec<u32> = zombies(&f).iter().map(|z| z.process.pid).collect();
    assert_eq!(pids, [22], "{f:?}");
    let counted = e.summary().findings;
    assert!(counted.contains(&("zombie".into(), 1)), "{counted:?}");
}

/// What a live engine learned from /proc rather than from events (its start snapshot, a
/// cgroup first seen mid-trace, a reconcile after lost events) is in the log, so the replay
/// finds the same: the zombie from before the trace, containers, the exit missed.
#[test]
fn replay_learns_what_live_learned_from_proc() {
    let docker = "abc123def4567890abc123def4567890abc123def4567890abc123def4567890";
    let crio = "cafe0123456789abcafe0123456789abcafe0123456789abcafe0123456789ab";
    let mut start = snapshot(
        &[
            (1, 0, 'S', "init"),
            (7, 1, 'S', "npm"),
            (8, 7, 'Z', "chrome"),
            (9, 1, 'S', "gone"),
        ],
        0,
    );
    for p in &mut start.procs[1..3] {
        p.cgroup = format!("/system.slice/docker-{docker}.scope");
        p.cgroup_id = 77;
    }
    // A shell started in a cgroup that did not exist at the start, leaking a zombie.
    let shell = P::host(20, 1, 20 * S / 10, "shell");
    let child = P::host(21, 20, 21 * S / 10, "worker");
    let in_crio = |mut e: Event| {
        e.task.cgroup_id = 88;
        e
    };
    let events = [
        in_crio(fork(2 * S, &shell, &child)),
        in_crio(exit(3 * S, &child, 1)),
        lost(4 * S, &shell, 5, 5, 0),
        exec_event(12 * S, &shell),
    ];
    let mut reconcile = start.clone();
    reconcile.taken_ns = 4 * S;
    reconcile.procs.retain(|p| p.pid != 9);
    for (p, state) in [(shell, 'S'), (child, 'Z')] {
        reconcile.procs.push(ProcInfo {
            pid: p.pid,
            ppid: p.ppid,
            start_ns: p.start,
            comm: p.comm.into(),
            exe: None,
            ns_pid: p.pid,
            pidns: HOST_NS,
            cgroup: format!("/kubepods.slice/crio-{crio}.scope"),
            cgroup_id: 88,
            state,
            exit_status: 256,
        });
    }
    let observations = [
        (
            0,
            Observation::Snapshot {
                reason: SnapshotReason::Start,
                snapshot: start,
            },
        ),
        (
            1,
            Observation::Cgroup {
                id: 88,
                path: format!("/kubepods.slice/crio-{crio}.scope"),
            },
        ),
        (
            3,
            Observation::Snapshot {
                reason: SnapshotReason::Reconcile,
                snapshot: reconcile,
            },
        ),
    ];

    // Live: observations applied where the live tracer applies them, and written to the log.
    let log = SharedBuf::default();
    let header = LogHeader {
        tracer_log: LOG_FORMAT_VERSION,
        start_ns: 0,
        boot_unix_ns: 1,
        boot_id: "test".into(),
    };
    let mut sink = JsonSink::with_header(Box::new(log.clone()), &header).unwrap();
    let mut live = Engine::new(Config::default());
    let mut live_findings = Vec::new();
    let learn = |engine: &mut Engine, sink: &mut JsonSink, found: &mut Vec<Finding>, at| {
        for (_, o) in observations.iter().filter(|(i, _)| *i == at) {
            sink.observation(o).unwrap();
            found.extend(engine.apply(o));
        }
    };
    learn(&mut live, &mut sink, &mut live_findings, 0);
    for (i, e) in events.iter().enumerate() {
        live_findings.extend(live.tick(e.ts_ns));
        learn(&mut live, &mut sink, &mut live_findings, i + 1);
        sink.event(e).unwrap();
        live_findings.extend(live.observe(e));
    }
    live_findings.extend(live.finish());
    sink.flush().unwrap();
    let kinds: Vec<_> = live_findings.iter().map(Finding::kind).collect();
    assert_eq!(kinds, ["zombie", "zombie"], "{live_findings:?}");
    let z = zombies(&live_findings);
    assert_eq!((z[0].process.pid, z[1].process.pid), (8, 21));
    let container = |z: &tracer::engine::findings::Zombie| {
        let c = z.reaper.container.clone().expect("a container");
        (c.runtime, c.id)
    };
    assert_eq!(container(z[0]), ("docker".into(), "abc123def456".into()));
    assert_eq!(container(z[1]).1, "cafe01234567");
    assert_eq!(
        live.summary().exits_missed,
        1,
        "pid 9 went while events were lost"
    );

    let out = SharedBuf::default();
    let replayed = replay(
        Box::new(std::io::Cursor::new(log.bytes())),
        Path::new("log"),
        Format::Json,
        Config::default(),
        Box::new(out.clone()),
    )
    .unwrap();
    let out = String::from_utf8(out.bytes()).unwrap();
    let findings: Vec<Finding> = out
        .lines()
        .filter(|l| l.starts_with("{\"finding\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(findings, live_findings);
    assert_eq!(replayed.summary.exits_missed, 1);
    // The replay's own JSON output is again a replayable log: the observations are in it.
    assert_eq!(
        out.lines()
            .filter(|l| Observation::is_observation(l.as_bytes()))
            .count(),
        3
    );
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn replay_text(log: &str) -> anyhow::Result<String> {
    let out = SharedBuf::default();
    replay(
        Box::new(std::io::Cursor::new(log.as_bytes().to_vec())),
        Path::new("run.jsonl"),
        Format::Text,
        Config::default(),
        Box::new(out.clone()),
    )?;
    Ok(String::from_utf8(out.bytes()).unwrap())
}

fn event_line(e: &Event) -> String {
    serde_json::to_string(e).unwrap()
}

#[test]
fn replay_reports_bad_lines() {
    let header = r#"{"tracer_log":1,"start_ns":0,"boot_unix_ns":0,"boot_id":"x"}"#;
    let a = P::host(10, 1, 10, "a");
    let good = event_line(&exec_event(S, &a));
    let log = format!("{header}\n{good}\n{{\"ts_ns\": oops}}\n{good}\n");
    let err = format!("{:#}", replay_text(&log).unwrap_err());
    assert!(err.starts_with("run.jsonl:3: not an event"), "{err}");

    // Cut short by a crash: tolerated.
    let log = format!("{header}\n{good}\n{}", &good[..good.len() / 2]);
    let out = replay_text(&log).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");

    let newer = r#"{"tracer_log":99,"start_ns":0,"boot_unix_ns":0,"boot_id":"x"}"#;
    let err = format!("{:#}", replay_text(&format!("{newer}\n")).unwrap_err());
    assert!(err.contains("log format version 99 is newer"), "{err}");
    assert_eq!(err.lines().count(), 1);

    let err = format!("{:#}", replay_text(&format!("{good}\n")).unwrap_err());
    assert!(err.contains("not a tracer log"), "{err}");
}

/// `header` and `n` exec events of one process, one a line.
fn exec_log(n: u64) -> Vec<u8> {
    let header = r#"{"tracer_log":1,"start_ns":0,"boot_unix_ns":0,"boot_id":"x"}"#;
    let a = P::host(10, 1, 10, "a");
    let mut log = format!("{header}\n");
    for i in 0..n {
        log += &(event_line(&exec_event(S + i, &a)) + "\n");
    }
    log.into_bytes()
}

/// Gives its bytes, then `then` instead of the end.
struct Then<F>(std::io::Cursor<Vec<u8>>, F);

impl<F: FnMut() -> std::io::Result<usize>> std::io::Read for Then<F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => (self.1)(),
            n => Ok(n),
        }
    }
}

/// A failed read ends the replay with an error, after everything read before it: the
/// reader hands on what it parsed before each read of the input.
#[test]
fn replay_writes_what_it_read_before_a_read_error() {
    let out = SharedBuf::default();
    let input = Then(std::io::Cursor::new(exec_log(10)), || {
        Err(std::io::Error::other("device gone"))
    });
    let Err(err) = replay(
        Box::new(input),
        Path::new("run.jsonl"),
        Format::Text,
        Config::default(),
        Box::new(out.clone()),
    ) else {
        panic!("a failed read must end the replay with an error");
    };
    assert!(format!("{err:#}").contains("device gone"), "{err:#}");
    let text = String::from_utf8(out.bytes()).unwrap();
    assert_eq!(text.lines().count(), 10, "{text}");
}

/// Output that cannot be written ends the replay at once, even while the input is a quiet
/// pipe (a live trace with nothing to say).
#[test]
fn replay_ends_at_a_failed_write_while_its_input_is_quiet() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
        }
    }
    let input = Then(std::io::Cursor::new(exec_log(1_500)), || {
        std::thread::sleep(std::time::Duration::from_secs(10));
        Ok(0)
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let replayed = replay(
            Box::new(input),
            Path::new("-"),
            Format::Text,
            Config::default(),
            Box::new(Broken),
        );
        let _ = tx.send(replayed.map(|_| ()).map_err(|e| format!("{e:#}")));
    });
    let ended = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the replay still runs 5 s after its output broke");
    assert!(ended.unwrap_err().contains("writing the output"));
}

/// The replay's fast line reader gives exactly what `Event`'s own reader gives, for every
/// kind and every optional field.
#[test]
fn fast_reader_agrees_with_serde() {
    let a = P::host(10, 1, 10, "a");
    let b = P::host(11, 10, 11, "b");
    let mut events = churn_events(2);
    let killed = exit_status(5, &a, 0x89, false);
    let mut waitid = wait(6, &a, 0, Some(11));
    if let EventData::Wait(w) = &mut waitid.data {
        w.syscall = WaitSyscall::Waitid;
        w.which = Some(1);
        w.status = Some(-3);
        w.duration_ns = Some(99);
        w.ret = -10;
    }
    let mut exec = exec_event(7, &b);
    if let EventData::Exec(e) = &mut exec.data {
        e.comm_before = Some(Comm::from("before"));
        e.old_tid = Some(12);
        e.argv = vec!["with space".into(), "ünï\"q".into()];
        e.argv_truncated = true;
    }
    let mut autoreap = reap(8, &b, &a, None);
    if let EventData::Reap(r) = &mut autoreap.data {
        r.how = ReapHow::Autoreap;
        r.status = ExitStatus::from_wait_status(9);
    }
    let lost = lost(9, &a, 3, 7, 1);
    events.extend([
        killed,
        waitid,
        exec,
        autoreap,
        lost,
        signal(
            10,
            &a,
            &b,
            40,
            SignalResult::Overflow,
            Disposition::Ignore,
            true,
        ),
        signal(
            11,
            &a,
            &b,
            2,
            SignalResult::LostInfo,
            Disposition::Default,
            false,
        ),
        signal_burst(12, 3, &a, &b, 10, Disposition::Handler, true, 4, 5),
        deliver_burst(13, 4, &b, 10, 99),
    ]);
    for e in &events {
        let line = serde_json::to_string(e).unwrap();
        let fast = tracer::replay::parse_event(line.as_bytes()).unwrap();
        let slow: Event = serde_json::from_str(&line).unwrap();
        let flat = tracer::replay::parse_event_serde(line.as_bytes()).unwrap();
        assert_eq!(fast, slow, "{line}");
        assert_eq!(flat, slow, "{line}");
        assert_eq!(&fast, e, "{line}");
    }
    let err = tracer::replay::parse_event(br#"{"ts_ns":1,"pid":1,"tid":1,"ns_pid":1,"pidns":1,"ppid":0,"uid":0,"cgroup_id":0,"comm":"x","start_ns":1,"event":"fork"}"#)
        .unwrap_err();
    assert!(
        err.contains("missing field `child_pid` in a fork event"),
        "{err}"
    );
}

/// `tracer tree` marks zombies with the parent that must reap them, namespace inits and
/// containers (from a made-up /proc snapshot, so no root is needed).
#[test]
fn tree_marks_zombies_inits_and_containers() {
    let id = "abc123def4567890abc123def4567890abc123def4567890abc123def4567890";
    let mut snap = snapshot(
        &[
            (1, 0, 'S', "init"),
            (40, 1, 'S', "containerd-shim"),
            (50, 40, 'S', "npm"),
            (51, 50, 'S', "node"),
            (52, 50, 'Z', "chrome"),
            (53, 50, 'Z', "chrome"),
            (60, 1, 'S', "sshd"),
        ],
        0,
    );
    for p in &mut snap.procs[2..6] {
        p.pidns = CHILD_NS;
        p.cgroup = format!("/system.slice/docker-{id}.scope");
    }
    snap.procs[2].ns_pid = 1;
    snap.procs[3].ns_pid = 7;
    snap.procs[4].exit_status = 9;
    let mut out = Vec::new();
    tracer::tree::render(&snap, None, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1 init", "{text}");
    assert!(
        lines[1].starts_with("├─ 40 containerd-shim  [subreaper? (containerd shims do)]"),
        "{text}"
    );
    assert_eq!(
        lines[2],
        format!(
            "│  └─ 50 npm  [PID 1 of pid namespace {CHILD_NS}, container docker abc123def456]  \
             holds 2 zombie(s) it has not reaped"
        ),
        "{text}"
    );
    assert_eq!(
        lines[3], "│     ├─ 51 node  [pid 7 in its namespace]",
        "{text}"
    );
    assert!(
        lines[4]
            .ends_with("<defunct> killed by SIGKILL; reaper 50 (npm) has not called wait() for it")
            && lines[4].contains("├─ 52 chrome"),
        "{text}"
    );
    assert!(lines[6].starts_with("└─ 60 sshd"), "{text}");
    assert!(text.contains("2 zombie(s)"), "{text}");
    let mut out = Vec::new();
    tracer::tree::render(&snap, Some(51), &mut out).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("51 node  [pid 7 in its namespace]\n")
    );
    assert!(tracer::tree::render(&snap, Some(999), &mut Vec::new()).is_err());
}

/// When a namespace's init exits, the kernel kills and releases everything in it: zombies
/// reported there are reaped, and nothing is left in the table to leak.
#[test]
fn namespace_teardown_releases_its_zombies() {
    let mut e = Engine::new(Config::default());
    let unshare = P::host(50, 1, 5, "unshare");
    let init = P {
        pid: 60,
        ppid: 50,
        ns_pid: 1,
        pidns: CHILD_NS,
        start: 6,
        comm: "node",
    };
    let kid = P {
        pid: 61,
        ppid: 60,
        ns_pid: 2,
        pidns: CHILD_NS,
        start: 7,
        comm: "kid",
    };
    let live = P {
        pid: 62,
        ppid: 60,
        ns_pid: 3,
        pidns: CHILD_NS,
        start: 8,
        comm: "live",
    };
    let f = run(
        &mut e,
        &[
            fork(6, &unshare, &init),
            fork(7, &init, &kid),
            fork(8, &init, &live),
            exit(S, &kid, 0),
            exit(10 * S, &init, 0),
            // Killed by the teardown after the init's exit event.
            exit(10 * S + 1, &live, 0),
        ],
    );
    assert_eq!(
        f.iter().map(Finding::kind).collect::<Vec<_>>(),
        ["zombie", "zombie_reaped"],
        "{f:?}"
    );
    assert!(e.table().find(61, 7).unwrap().has(flag::REAPED));
    assert!(e.table().find(62, 8).unwrap().has(flag::REAPED));
    let later = e.tick(20 * S);
    // Only the init itself, which its parent never reaped in this story.
    assert_eq!(
        zombies(&later)
            .iter()
            .map(|z| z.process.pid)
            .collect::<Vec<_>>(),
        [60],
        "{later:?}"
    );
}

/// Counts the bytes allocated and not yet freed, for the memory figure of the benchmark.
struct Counting;

static LIVE_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live_bytes() -> isize {
    LIVE_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// A realistic mix: each process is forked, execs, gets a signal, exits, and is waited for
/// and reaped by its parent.
fn churn_events(n: u32) -> Vec<Event> {
    let init = host_init();
    let shell = P::host(10, 1, 10, "shell");
    let mut events = vec![fork(10, &init, &shell)];
    let mut t = S;
    // The shell on CPU 0, its workers on CPU 1, as a live trace's events say.
    for i in 0..n {
        let c = P::host(100 + i % 30_000, 10, t, "worker");
        events.extend([
            on(0, fork(t, &shell, &c)),
            on(1, exec_event(t + 100, &c)),
            on(
                0,
                to_handler(t + 200, &shell, &c, 15, SignalResult::Delivered),
            ),
            on(1, deliver(t + 300, &c, 15, Disposition::Handler)),
            on(1, exit(t + 400, &c, 0)),
            on(0, wait(t + 500, &shell, -1, Some(c.pid))),
            on(0, reap(t + 500, &c, &shell, Some(t + 400))),
        ]);
        t += 10_000;
    }
    events
}

/// CPU time of this thread, in seconds: the machine may be busy with other work, and the
/// figures are per core.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The three figures the issue asks for; run with
/// `cargo test --release -p tracer --test engine -- --ignored --nocapture benchmark`.
#[test]
#[ignore = "a benchmark: run it in release, alone"]
fn benchmark() {
    // 1. The engine alone, events decoded and in memory.
    let events = churn_events(300_000);
    let mut engine = Engine::new(Config {
        retention_ns: S,
        ..Config::default()
    });
    let (start, cpu) = (std::time::Instant::now(), thread_cpu());
    let mut found = 0;
    for e in &events {
        found += engine.feed(e).len();
    }
    let (wall, secs) = (start.elapsed().as_secs_f64(), thread_cpu() - cpu);
    println!(
        "engine: {} events in {secs:.3} s of CPU ({wall:.3} s wall) = {:.2} M events/s on one \
         core ({found} findings)",
        events.len(),
        events.len() as f64 / secs / 1e6
    );

    if std::env::var_os("BENCH_ENGINE_ONLY").is_some() {
        return;
    }

    // 2. tracer replay of a JSON Lines log (text output, thrown away).
    let mut log = Vec::new();
    writeln!(
        log,
        r#"{{"tracer_log":1,"start_ns":0,"boot_unix_ns":0,"boot_id":"bench"}}"#
    )
    .unwrap();
    for e in &events {
        serde_json::to_writer(&mut log, e).unwrap();
        log.push(b'\n');
    }
    // Where a replay's time goes: reading lines alone.
    let cpu = thread_cpu();
    let mut n = 0;
    for line in log.split(|&b| b == b'\n').skip(1).filter(|l| !l.is_empty()) {
        tracer::replay::parse_event(line).unwrap();
        n += 1;
    }
    let secs = thread_cpu() - cpu;
    println!(
        "replay's line reader alone: {n} lines in {secs:.3} s of CPU = {:.2} M lines/s",
        f64::from(n) / secs / 1e6
    );
    for format in [Format::Text, Format::Json] {
        let input = std::io::Cursor::new(log.clone());
        let (start, cpu) = (std::time::Instant::now(), thread_cpu());
        replay(
            Box::new(input),
            Path::new("bench.jsonl"),
            format,
            Config::default(),
            Box::new(std::io::sink()),
        )
        .unwrap();
        let (wall, secs) = (start.elapsed().as_secs_f64(), thread_cpu() - cpu);
        println!(
            "replay ({format:?} out, discarded): {} lines ({} MB) in {secs:.3} s of CPU \
             ({wall:.3} s wall) = {:.2} M lines/s",
            events.len() + 1,
            log.len() / 1_000_000,
            (events.len() + 1) as f64 / secs / 1e6
        );
    }

    // 3. Table memory per live process, and under churn.
    let mut engine = Engine::new(Config {
        retention_ns: S,
        ..Config::default()
    });
    let init = host_init();
    let before = live_bytes();
    let n = 100_000u32;
    for i in 0..n {
        let p = P::host(1000 + i, 1, u64::from(i) + 2, "sleeper");
        engine.feed(&fork(u64::from(i) + 2, &init, &p));
        engine.feed(&exec_event(u64::from(i) + 3, &p));
    }
    let per_live = (live_bytes() - before) as f64 / f64::from(n);
    println!("memory: {per_live:.0} bytes per live process ({n} live, one exec each)");
    let mut churn = Engine::new(Config {
        retention_ns: S,
        ..Config::default()
    });
    let events = churn_events(400_000);
    let before = live_bytes();
    let quarter = events.len() / 4;
    let mut sizes = Vec::new();
    for (i, e) in events.iter().enumerate() {
        churn.feed(e);
        if (i + 1) % quarter == 0 {
            sizes.push(live_bytes() - before);
        }
    }
    println!(
        "memory under churn (400k processes, 100k/s, 1 s retention), after each quarter: \
         {sizes:?} bytes; table {} entries",
        churn.table().len()
    );
    assert!(per_live <= 256.0, "{per_live} bytes per live process");
}
