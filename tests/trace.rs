//! Kernel tests of `tracer trace`: real probes, real processes, each test looking only at the
//! processes it started. They need root; without it they say they were skipped.

mod common;

use std::process::Command;

use common::{
    fixture,
    trace::{event_lines, root_or_skip, trace, trace_env},
};
use tracer::event::{
    Disposition, Event, EventData, Exec, Exit, Fork, Reap, ReapHow, Sig, Signal, SignalDeliver,
    SignalResult, Wait,
};

/// Every `sig` that `pid` sent to `target`, as plain `signal` events and `signal_burst`
/// counts: how many in all, and how many had each result.
fn sent_to(events: &[Event], pid: u32, target: u32, sig: u32) -> SentCount {
    let mut sent = SentCount::default();
    for e in events.iter().filter(|e| e.task.pid == pid) {
        match &e.data {
            EventData::Signal(s) if s.sig == Sig(sig) && s.target.pid == target => {
                sent.plain += 1;
                sent.add(s.result, 1);
            }
            EventData::SignalBurst(b) if b.sig == Sig(sig) && b.target.pid == target => {
                sent.bursts += 1;
                for (result, n) in b.by_result() {
                    sent.add(result, n);
                }
            }
            _ => {}
        }
    }
    sent
}

#[derive(Debug, Default, PartialEq, Eq)]
struct SentCount {
    plain: u64,
    bursts: u64,
    total: u64,
    delivered: u64,
    already_pending: u64,
    other: u64,
}

impl SentCount {
    fn add(&mut self, result: SignalResult, n: u64) {
        self.total += n;
        match result {
            SignalResult::Delivered => self.delivered += n,
            SignalResult::AlreadyPending => self.already_pending += n,
            _ => self.other += n,
        }
    }
}

/// Deliveries of `sig` to `pid`: plain `signal_deliver` events and `deliver_burst` counts.
fn delivered_to(events: &[Event], pid: u32, sig: u32) -> u64 {
    events
        .iter()
        .filter(|e| e.task.pid == pid)
        .map(|e| match &e.data {
            EventData::SignalDeliver(d) if d.sig == Sig(sig) => 1,
            EventData::DeliverBurst(d) if d.sig == Sig(sig) => d.count,
            _ => 0,
        })
        .sum()
}

fn forks(events: &[Event]) -> impl Iterator<Item = (&Event, &Fork)> {
    events.iter().filter_map(|e| match &e.data {
        EventData::Fork(f) => Some((e, f)),
        _ => None,
    })
}

fn execs(events: &[Event]) -> impl Iterator<Item = (&Event, &Exec)> {
    events.iter().filter_map(|e| match &e.data {
        EventData::Exec(x) => Some((e, x)),
        _ => None,
    })
}

fn exits(events: &[Event], pid: u32) -> Vec<&Exit> {
    events
        .iter()
        .filter(|e| e.task.pid == pid)
        .filter_map(|e| match &e.data {
            EventData::Exit(x) if x.process => Some(x),
            _ => None,
        })
        .collect()
}

fn reap_of(events: &[Event], pid: u32) -> &Reap {
    events
        .iter()
        .filter(|e| e.task.pid == pid)
        .find_map(|e| match &e.data {
            EventData::Reap(r) => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reap event for {pid}: {events:#?}"))
}

fn signals_from(events: &[Event], pid: u32, sig: u32) -> Vec<&Signal> {
    events
        .iter()
        .filter(|e| e.task.pid == pid)
        .filter_map(|e| match &e.data {
            EventData::Signal(s) if s.sig == Sig(sig) => Some(s),
            _ => None,
        })
        .collect()
}

fn deliveries(events: &[Event], pid: u32, sig: u32) -> Vec<&SignalDeliver> {
    events
        .iter()
        .filter(|e| e.task.pid == pid)
        .filter_map(|e| match &e.data {
            EventData::SignalDeliver(d) if d.sig == Sig(sig) => Some(d),
            _ => None,
        })
        .collect()
}

#[test]
fn fork_reports_the_pids_the_process_saw() {
    if !root_or_skip("fork_reports_the_pids_the_process_saw") {
        return;
    }
    let t = trace(&[], &[fixture("lifecycle").to_str().unwrap(), "fork"]);
    let (parent, child) = (t.printed("self"), t.printed("child"));
    let (event, fork) = forks(&t.events)
        .find(|(_, f)| f.child_pid == child)
        .unwrap_or_else(|| panic!("no fork of {child}: {:#?}", t.events));
    assert_eq!(event.task.pid, parent);
    assert_eq!(fork.child_ppid, parent);
    assert!(!fork.thread);
    // The parent's own parent, read through task_struct.real_parent, is the tracer.
    let parent_stat_ppid = forks(&t.events)
        .find(|(_, f)| f.child_pid == parent)
        .map(|(e, _)| e.task.pid)
        .expect("fork of the command by the tracer");
    assert_eq!(event.task.ppid, parent_stat_ppid);
    // The exit code the parent got from waitpid, as the probe read task_struct.exit_code.
    let status = t.printed("status");
    let exit = exits(&t.events, child);
    assert_eq!(exit.len(), 1);
    assert_eq!(exit[0].status.status, status);
    assert_eq!(exit[0].status.code, Some(7));
}

#[test]
fn exec_reports_the_filename() {
    if !root_or_skip("exec_reports_the_filename") {
        return;
    }
    let lifecycle = fixture("lifecycle");
    let path = lifecycle.to_str().unwrap();
    let t = trace(&[], &["/bin/sh", "-c", &format!("exec {path} fork")]);
    let me = t.printed("self");
    let (_, exec) = execs(&t.events)
        .find(|(e, _)| e.task.pid == me && e.task.comm.as_str() == "lifecycle")
        .unwrap_or_else(|| panic!("no exec of {path} by {me}: {:#?}", t.events));
    assert_eq!(exec.filename, path);
    assert_eq!(exec.argv, [path, "fork"]);
    assert_eq!(
        exec.comm_before.map(|c| c.as_str().into_owned()),
        Some("sh".to_owned())
    );
}

#[test]
fn exit_code_and_command_exit_status() {
    if !root_or_skip("exit_code_and_command_exit_status") {
        return;
    }
    let t = trace(&[], &["/bin/sh", "-c", "echo self=$$; exit 3"]);
    let exit = exits(&t.events, t.printed("self"));
    assert_eq!(exit.len(), 1, "{:#?}", t.events);
    assert_eq!(exit[0].status.code, Some(3));
    assert_eq!(exit[0].status.killed_by, None);
    assert_eq!(t.code(), Some(3), "tracer exits with the command's code");
}

#[test]
fn killed_by_sigkill() {
    if !root_or_skip("killed_by_sigkill") {
        return;
    }
    let t = trace(&[], &["/bin/sh", "-c", "echo self=$$; kill -9 $$"]);
    let exit = exits(&t.events, t.printed("self"));
    assert_eq!(exit.len(), 1, "{:#?}", t.events);
    assert_eq!(exit[0].status.killed_by, Some(Sig(9)));
    assert_eq!(exit[0].status.code, None);
    assert_eq!(t.code(), Some(128 + 9));
}

#[test]
fn reap_names_the_parent_and_the_zombie_time() {
    if !root_or_skip("reap_names_the_parent_and_the_zombie_time") {
        return;
    }
    wait_then_reap(&[], 1000);
}

/// `lifecycle zombie-then-wait MS` under the tracer (with `env`): the child a zombie for MS,
/// peeked at with waitid(WNOWAIT), then reaped by wait4. Both waits and the reap say so.
fn wait_then_reap(env: &[(&str, &str)], ms: u64) {
    let lifecycle = fixture("lifecycle");
    let ms_arg = ms.to_string();
    let t = trace_env(
        env,
        &[],
        &[lifecycle.to_str().unwrap(), "zombie-then-wait", &ms_arg],
    );
    let (parent, child) = (t.printed("self"), t.printed("child"));
    let reap = reap_of(&t.events, child);
    assert_eq!(reap.how, ReapHow::Wait);
    assert_eq!(reap.reaper_pid, parent);
    let zombie_ns = reap.zombie_ns.expect("exit time known");
    assert!(zombie_ns >= ms * 1_000_000, "zombie for {zombie_ns} ns");
    assert!(zombie_ns < 30_000_000_000, "zombie for {zombie_ns} ns");
    let waits: Vec<&Wait> = t
        .events
        .iter()
        .filter(|e| e.task.pid == parent)
        .filter_map(|e| match &e.data {
            EventData::Wait(w) => Some(w),
            _ => None,
        })
        .collect();
    // The wait that collected it says so.
    let reaped = waits.iter().find(|w| w.reaped).expect("a wait that reaped");
    assert_eq!(reaped.child_pid, Some(child));
    assert_eq!(reaped.ret, i64::from(child));
    assert!(reaped.duration_ns.is_some(), "entry seen: {reaped:?}");
    // The waitid(WNOWAIT) before it: arguments and siginfo known, the zombie left in place.
    let peek = waits
        .iter()
        .find(|w| w.which == Some(1))
        .unwrap_or_else(|| panic!("no waitid(P_PID): {waits:#?}"));
    assert!(!peek.reaped && peek.ret == 0, "{peek:?}");
    assert_eq!(peek.child_ns_pid, Some(child as i32));
    assert_eq!(
        peek.status,
        Some(0),
        "si_status read from the caller: {peek:?}"
    );
}

/// A zombie of a pid namespace whose init never waits is released by the kernel when that init
/// exits (zap_pid_ns_processes, no wait syscall): the trace still shows its release, and does
/// not end before it arrives (the kernel frees the task a grace period after it leaves /proc).
#[test]
fn namespace_teardown_releases_a_zombie() {
    if !root_or_skip("namespace_teardown_releases_a_zombie") {
        return;
    }
    let t = trace(
        &["--events", "fork,exit,reap"],
        &[
            "unshare",
            "--pid",
            "--fork",
            "sh",
            "-c",
            "sh -c 'exit 3' & exec sleep 0.5",
        ],
    );
    let exit = t
        .events
        .iter()
        .find(|e| matches!(&e.data, EventData::Exit(x) if x.status.code == Some(3)))
        .unwrap_or_else(|| panic!("the child exiting 3: {:#?}", t.events));
    let init = exit.task.ppid;
    assert_eq!(exit.task.ns_pid, 2, "{exit:?}");
    let reap = reap_of(&t.events, exit.task.pid);
    assert_eq!(reap.how, ReapHow::Other, "{reap:?}");
    assert_eq!(reap.reaper_pid, init, "{reap:?}");
    let zombie_ns = reap.zombie_ns.expect("exit time known");
    assert!(zombie_ns >= 300_000_000, "zombie for {zombie_ns} ns");
}

#[test]
fn parent_ignoring_sigchld_autoreaps() {
    if !root_or_skip("parent_ignoring_sigchld_autoreaps") {
        return;
    }
    autoreap(&[]);
}

/// `lifecycle ignore-sigchld` under the tracer (with `env`): the kernel releases the child at
/// its exit, never a zombie.
fn autoreap(env: &[(&str, &str)]) {
    let lifecycle = fixture("lifecycle");
    let t = trace_env(env, &[], &[lifecycle.to_str().unwrap(), "ignore-sigchld"]);
    let (parent, child) = (t.printed("self"), t.printed("child"));
    let reap = reap_of(&t.events, child);
    assert_eq!(reap.how, ReapHow::Autoreap);
    assert_eq!(reap.reaper_pid, parent);
    assert_eq!(reap.zombie_ns, Some(0));
}

/// The probes keep waits and zombies in per-pid slots and fall back to hash maps when a slot
/// is taken; with the one slot taken from the start (TRACER_PID_SLOTS=0) everything goes
/// through the maps, and reports the same.
#[test]
fn waits_and_reaps_are_the_same_when_the_slots_are_taken() {
    if !root_or_skip("waits_and_reaps_are_the_same_when_the_slots_are_taken") {
        return;
    }
    let maps_only = [("TRACER_PID_SLOTS", "0")];
    wait_then_reap(&maps_only, 300);
    autoreap(&maps_only);
}

#[test]
fn signal_to_a_process_that_ignores_it() {
    if !root_or_skip("signal_to_a_process_that_ignores_it") {
        return;
    }
    let t = trace(
        &[],
        &[
            fixture("lifecycle").to_str().unwrap(),
            "ignore-signal",
            "10",
        ],
    );
    let me = t.printed("self");
    let sent = signals_from(&t.events, me, 10);
    assert_eq!(sent.len(), 1, "{:#?}", t.events);
    assert_eq!(sent[0].target.pid, me);
    assert_eq!(sent[0].result, SignalResult::Ignored);
    assert_eq!(sent[0].target.disposition, Disposition::Ignore);
}

#[test]
fn handled_signal_is_delivered_to_the_handler() {
    if !root_or_skip("handled_signal_is_delivered_to_the_handler") {
        return;
    }
    let t = trace(
        &[],
        &[
            fixture("lifecycle").to_str().unwrap(),
            "handle-signal",
            "12",
        ],
    );
    let me = t.printed("self");
    let sent = signals_from(&t.events, me, 12);
    assert_eq!(sent.len(), 1, "{:#?}", t.events);
    assert_eq!(sent[0].result, SignalResult::Delivered);
    assert_eq!(sent[0].target.disposition, Disposition::Handler);
    let delivered = deliveries(&t.events, me, 12);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].disposition, Disposition::Handler);
}

#[test]
fn burst_to_a_blocked_signal_merges() {
    if !root_or_skip("burst_to_a_blocked_signal_merges") {
        return;
    }
    let t = trace(
        &[],
        &[
            fixture("lifecycle").to_str().unwrap(),
            "blocked-burst",
            "10",
            "5",
        ],
    );
    let me = t.printed("self");
    assert_eq!(t.printed("handled"), 1);
    // The first as a `signal` event, the four repeats counted in a burst (or more events,
    // when something else ran on that CPU in between).
    let sent = sent_to(&t.events, me, me, 10);
    assert_eq!(
        (sent.total, sent.delivered, sent.already_pending),
        (5, 1, 4)
    );
    let first = signals_from(&t.events, me, 10)[0];
    assert_eq!(first.result, SignalResult::Delivered);
    assert!(first.blocked);
    for e in &t.events {
        if let EventData::SignalBurst(b) = &e.data {
            assert_eq!(b.blocked_count, b.count, "{b:?}");
        }
    }
    assert_eq!(delivered_to(&t.events, me, 10), 1);
}

/// 200,000 SIGUSR1 to a child with a handler: every one is accounted for, in `signal` events
/// and burst counts, and so is every delivery the child's handler counted; the engine's
/// `coalesced` counts add up to the merged ones exactly, and nothing is lost.
#[test]
fn signal_storm_to_a_child_is_counted_exactly() {
    if !root_or_skip("signal_storm_to_a_child_is_counted_exactly") {
        return;
    }
    const N: u64 = 200_000;
    let t = trace(
        &[],
        &[
            fixture("lifecycle").to_str().unwrap(),
            "storm-child",
            &N.to_string(),
        ],
    );
    let (me, child) = (t.printed("self"), t.printed("child"));
    assert_eq!(u64::from(t.printed("sent")), N);
    assert!(t.stderr().contains(", 0 lost"), "{}", t.stderr());
    let sent = sent_to(&t.events, me, child, 10);
    assert_eq!(sent.total, N, "{sent:?}");
    assert_eq!(sent.other, 0, "{sent:?}");
    assert!(sent.bursts > 0, "a storm is counted in bursts: {sent:?}");
    assert!(
        sent.plain + sent.bursts < N / 10,
        "{sent:?}: no fewer records than signals"
    );
    let handled = u64::from(t.printed("handled"));
    assert_eq!(delivered_to(&t.events, child, 10), handled);
    // Each delivery took one signal sent "delivered"; none is left pending at the end.
    assert_eq!(sent.delivered, handled, "{sent:?}");
    let mut coalesced = 0;
    for f in &t.findings {
        assert_eq!(f["reason"], "coalesced", "{f}");
        assert_eq!(f["target"]["pid"], child);
        coalesced += f["count"].as_u64().unwrap();
    }
    assert_eq!(coalesced, sent.already_pending);
    eprintln!(
        "{N} sent in {} signal events and {} bursts: {} delivered, {} merged; {handled} handled",
        sent.plain, sent.bursts, sent.delivered, sent.already_pending
    );
}

/// After a storm the process goes quiet: the counts of its last repeats still reach the log
/// while it sleeps (the tracer nudges the CPU that holds them), and a single signal after that
/// is a `signal` event of its own, written at once.
#[test]
fn storm_tail_and_single_signal_arrive_while_the_sender_sleeps() {
    if !root_or_skip("storm_tail_and_single_signal_arrive_while_the_sender_sleeps") {
        return;
    }
    const N: u64 = 20_000;
    let log = std::env::temp_dir().join(format!("storm-tail-{}.jsonl", std::process::id()));
    let mut tracer = Command::new(common::tracer())
        .args(["trace", "--format", "json", "-o"])
        .arg(&log)
        .arg("--")
        .arg(fixture("lifecycle"))
        .args(["storm-then-kill", &N.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running tracer");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(tracer.stdout.take().unwrap()));
    let mut printed = |key: &str| -> u64 {
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(v) = line.strip_prefix(key).and_then(|l| l.strip_prefix('=')) {
                return v.parse().unwrap();
            }
        }
        panic!("no {key}= printed");
    };
    let me = printed("self") as u32;
    let logged = || -> Vec<Event> {
        // Still being written: its last line may be cut short.
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        event_lines(&text)
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    // The storm is over; its sender sleeps for a second.
    assert_eq!(printed("storm"), N);
    let storm_done = std::time::Instant::now();
    let waited = loop {
        let events = logged();
        let seen = sent_to(&events, me, me, 10);
        if seen.total == N && delivered_to(&events, me, 10) == N {
            break storm_done.elapsed();
        }
        assert!(
            storm_done.elapsed() < std::time::Duration::from_millis(800),
            "the storm's last counts did not arrive while its sender slept: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    eprintln!("the storm's counts were all in the log {waited:?} after it ended");
    assert_eq!(printed("single"), 1);
    let sent = std::time::Instant::now();
    loop {
        let events = logged();
        let seen = sent_to(&events, me, me, 10);
        if seen.total == N + 1 {
            let last = signals_from(&events, me, 10).pop().unwrap();
            assert_eq!(last.result, SignalResult::Delivered);
            assert!(
                !events
                    .iter()
                    .any(|e| e.task.pid == me && matches!(e.data, EventData::Exit(_))),
                "logged before its sender exited"
            );
            break;
        }
        assert!(
            sent.elapsed() < std::time::Duration::from_millis(800),
            "the single signal did not arrive while its sender slept: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(tracer.wait().unwrap().success());
    let events = logged();
    assert_eq!(
        delivered_to(&events, me, 10),
        N + 1,
        "every delivery accounted for"
    );
    let _ = std::fs::remove_file(&log);
}

#[test]
fn threads_are_hidden_unless_asked_for() {
    if !root_or_skip("threads_are_hidden_unless_asked_for") {
        return;
    }
    let lifecycle = fixture("lifecycle");
    let thread_forks = |flags: &[&str]| {
        let t = trace(flags, &[lifecycle.to_str().unwrap(), "thread"]);
        let me = t.printed("self");
        forks(&t.events)
            .filter(|(e, f)| e.task.pid == me && f.thread && f.child_pid == me)
            .count()
    };
    assert_eq!(thread_forks(&[]), 0);
    assert_eq!(thread_forks(&["--threads"]), 1);
}

#[test]
fn tiny_ring_buffer_reports_lost_events() {
    if !root_or_skip("tiny_ring_buffer_reports_lost_events") {
        return;
    }
    // Forks are too slow to outrun the reader even with a 4K ring; a signal storm is not: each
    // signal is two events, a few microseconds apart. Alternating two signals, so that no
    // event repeats the one before and none is counted into a burst.
    let t = trace(
        &["--ring-size", "4K"],
        &[
            fixture("lifecycle").to_str().unwrap(),
            "signal-mix",
            "300000",
        ],
    );
    let lost: u64 = t
        .events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::Lost(l) => Some(l.count),
            _ => None,
        })
        .sum();
    assert!(lost > 0, "no loss reported; stderr: {}", t.stderr());
    assert!(
        t.stderr().contains(&format!(", {lost} lost")),
        "summary names the loss: {}",
        t.stderr()
    );
    assert_eq!(t.code(), Some(0));
}

#[test]
fn unprivileged_trace_refuses_in_one_line() {
    if !root_or_skip("unprivileged_trace_refuses_in_one_line") {
        return;
    }
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([common::tracer(), "trace", "--duration", "1s"])
        .output()
        .expect("running setpriv");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("CAP_BPF+CAP_PERFMON") && stderr.contains("sudo"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_clap_errors() {
    let output = Command::new(common::tracer())
        .args(["trace", "--duration", "5parsecs"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid duration"), "{stderr}");
}

#[test]
fn pid_follows_descendants_born_later() {
    if !root_or_skip("pid_follows_descendants_born_later") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let go = dir.join(format!("pid-go-{}", std::process::id()));
    let log = dir.join(format!("pid-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&go);
    // Once the tracer is attached, this starts a child that exits with 4.
    let mut target = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "while [ ! -e {} ]; do sleep 0.05; done; /bin/sh -c 'exit 4'; exit 0",
            go.display()
        ))
        .spawn()
        .unwrap();
    let pid = target.id();
    let tracer = Command::new(common::tracer())
        .args(["trace", "--format", "json", "--duration", "20s", "--pid"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&log)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The log's first line is written once the probes are attached.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&log).map_or(true, |m| m.len() == 0) {
        assert!(std::time::Instant::now() < deadline, "tracer did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::write(&go, "").unwrap();
    target.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let output = tracer.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events: Vec<Event> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|line| line.starts_with("{\"ts_ns\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&go);
    let children: Vec<u32> = forks(&events)
        .filter(|(e, _)| e.task.pid == pid)
        .map(|(_, f)| f.child_pid)
        .collect();
    assert!(
        children
            .iter()
            .any(|&c| exits(&events, c).iter().any(|x| x.status.code == Some(4))),
        "a child born after the trace started exits with 4: {events:#?}"
    );
    let strangers: Vec<&Event> = events
        .iter()
        .filter(|e| {
            !matches!(e.data, EventData::Lost(_))
                && e.task.pid != pid
                && !children.contains(&e.task.pid)
        })
        .collect();
    assert!(
        strangers.is_empty(),
        "only the followed processes appear: {strangers:#?}"
    );
}

#[test]
fn unprivileged_tree_and_replay_still_work() {
    if !root_or_skip("unprivileged_tree_and_replay_still_work") {
        return;
    }
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(common::tracer())
            .args(args)
            .output()
            .expect("running setpriv")
    };
    let tree = as_nobody(&["tree"]);
    let stdout = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.status.success(),
        "{}",
        String::from_utf8_lossy(&tree.stderr)
    );
    assert!(
        stdout.lines().next().is_some_and(|l| l.starts_with("1 ")),
        "{stdout}"
    );

    // A log recorded as root, replayed as nobody.
    let t = trace(&[], &["/bin/sh", "-c", "exit 6"]);
    assert_eq!(t.code(), Some(6));
    let log = std::env::temp_dir().join(format!("replay-nobody-{}.jsonl", std::process::id()));
    let mut text =
        String::from("{\"tracer_log\":1,\"start_ns\":0,\"boot_unix_ns\":0,\"boot_id\":\"\"}\n");
    for event in &t.events {
        text.push_str(&serde_json::to_string(event).unwrap());
        text.push('\n');
    }
    std::fs::write(&log, text).unwrap();
    let replay = as_nobody(&["replay", log.to_str().unwrap()]);
    let _ = std::fs::remove_file(&log);
    let out = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    assert!(out.contains("exited with code 6"), "{out}");
}
