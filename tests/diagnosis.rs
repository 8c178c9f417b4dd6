//! Kernel tests of the engine (root, real processes), from BACKGROUND.md's experiments: each
//! runs `tracer trace --format json -o LOG -- COMMAND`, then checks the findings the live
//! trace wrote to LOG and those `tracer replay LOG` derives, which must be the same.

mod common;

use std::{
    collections::BTreeSet,
    ffi::OsStr,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::{
        Mutex,
        mpsc::{Receiver, channel},
    },
    time::{Duration, Instant},
};

use common::{
    fixture, fixture_file,
    trace::{event_lines, root_or_skip},
};
use serde_json::Value;
use tracer::{
    engine::{Config, Engine},
    event::{Event, EventData},
};

/// One trace at a time: each loads the probes, and two at once on a small machine slow each
/// other past the timeouts.
static SERIAL: Mutex<()> = Mutex::new(());

/// A running `tracer trace`, its command's stdin and stdout lines.
struct Traced {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: PathBuf,
}

fn trace(name: &str, flags: &[&str], command: &[&OsStr]) -> Traced {
    let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("diagnosis-{name}-{}.jsonl", std::process::id()));
    let mut child = Command::new(common::tracer())
        .args(["trace", "--format", "json", "--duration", "90s", "-o"])
        .arg(&log)
        .args(flags)
        .arg("--")
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running tracer");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stdin = child.stdin.take();
    Traced {
        child,
        stdin,
        lines,
        log,
    }
}

impl Traced {
    /// The value of the first `key=value` line the command prints.
    fn printed(&self, key: &str, seen: &mut Vec<String>) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {key}= within 30 s; printed {seen:?}"));
            seen.push(line.clone());
            if let Some(v) = line.strip_prefix(key).and_then(|l| l.strip_prefix('=')) {
                return v.to_owned();
            }
        }
    }

    /// Waits for a line the command prints that starts with `prefix`.
    fn line_starting(&self, prefix: &str, seen: &mut Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line {prefix:?} within 30 s; printed {seen:?}"));
            seen.push(line.clone());
            if line.starts_with(prefix) {
                return;
            }
        }
    }

    /// Host pid of PID 1 of the namespace the command (`unshare --fork`) made: the child of
    /// the tracer's child.
    fn namespace_init(&self) -> u32 {
        let tracer = self.child.id();
        let pids = tracer::proc::pids().unwrap();
        let ppid = |p: u32| tracer::proc::stat(p).map(|s| s.ppid).ok();
        pids.iter()
            .copied()
            .find(|&p| {
                ppid(p).and_then(ppid) == Some(tracer) && tracer::proc::nspids(p).last() == Some(&1)
            })
            .expect("the namespace's init")
    }

    fn send(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Closes the command's stdin and waits for the trace to end.
    fn finish(mut self) -> Finished {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tracer did not end within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let printed: Vec<String> = self.lines.try_iter().collect();
        Finished {
            log: self.log,
            status_ok: status.success(),
            printed,
        }
    }
}

struct Finished {
    log: PathBuf,
    status_ok: bool,
    printed: Vec<String>,
}

impl Finished {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn events(&self) -> Vec<Event> {
        event_lines(&self.text())
            .map(|l| {
                let event: Event = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                // The replay's fast reader reads the kernel's real events the same.
                assert_eq!(
                    tracer::replay::parse_event(l.as_bytes()).as_ref(),
                    Ok(&event)
                );
                event
            })
            .collect()
    }

    /// The findings the live trace wrote.
    fn live(&self) -> Vec<Value> {
        findings(&self.text())
    }

    /// The findings `tracer replay` derives from the log, with `flags`.
    fn replayed(&self, flags: &[&str]) -> Vec<Value> {
        let out = Command::new(common::tracer())
            .args(["replay", "--format", "json"])
            .args(flags)
            .arg(&self.log)
            .output()
            .expect("running tracer replay");
        assert!(
            out.status.success(),
            "replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        findings(&String::from_utf8(out.stdout).unwrap())
    }

    /// Replayed findings, checked to be the live ones (compared without the parts that
    /// depend on more than the log: container names come from /sys/fs/cgroup live only).
    fn checked(&self, flags: &[&str]) -> Vec<Value> {
        let replayed = self.replayed(flags);
        let live = self.live();
        assert_eq!(
            keys(&live),
            keys(&replayed),
            "live and replayed findings differ\nlive: {live:#?}\nreplayed: {replayed:#?}"
        );
        let _ = std::fs::remove_file(&self.log);
        replayed
    }
}

fn findings(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| l.starts_with("{\"finding\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What a finding says, without its wording.
fn keys(findings: &[Value]) -> BTreeSet<String> {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {} {} {} {} {}",
                f["finding"],
                f["reason"],
                f["ts_ns"],
                f["process"]["pid"],
                f["reaper"]["pid"],
                f["target"]["pid"],
                f["count"]
            )
        })
        .collect()
}

fn of_kind<'a>(findings: &'a [Value], kind: &str) -> Vec<&'a Value> {
    findings.iter().filter(|f| f["finding"] == kind).collect()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// node's run.js as PID 1 of a new PID namespace spawns make_zombie, which leaves its child
/// a zombie for 2 s (its own zombie, reported after 1 s) and exits; node adopts the zombie
/// and never reaps it (reported again, naming node). The trace ends when the test kills
/// node (the namespace dies with it).
#[test]
fn node_as_namespace_init_keeps_adopted_zombie() {
    if !root_or_skip("node_as_namespace_init_keeps_adopted_zombie") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let make_zombie = fixture("make_zombie");
    let run_js = fixture_file("run.js");
    let flags = ["--zombie-after", "1s"];
    let traced = trace(
        "node",
        &flags,
        &[
            os("unshare"),
            os("--pid"),
            os("--fork"),
            os("--mount-proc"),
            os("node"),
            run_js.as_os_str(),
            make_zombie.as_os_str(),
            os("2"),
        ],
    );
    let mut seen = Vec::new();
    traced.line_starting("run.js: make_zombie exited", &mut seen);
    // Past --zombie-after with no event at all: the live tracer's timer must report it.
    std::thread::sleep(Duration::from_millis(2500));
    let node = traced.namespace_init();
    // SAFETY: plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(node as i32, libc::SIGKILL) }, 0);
    let done = traced.finish();
    let findings = done.checked(&flags);
    let zombies = of_kind(&findings, "zombie");
    assert_eq!(zombies.len(), 2, "{findings:#?}");
    let first = zombies[0];
    assert_eq!(first["process"]["comm"], "make_zombie", "{first:#}");
    assert_eq!(first["reaper"]["comm"], "make_zombie", "{first:#}");
    assert_eq!(first["adopted"], false, "{first:#}");
    assert_eq!(first["diagnosis"], "never_waited", "{first:#}");
    let z = zombies[1];
    assert_eq!(z["process"]["pid"], first["process"]["pid"]);
    assert_eq!(z["process"]["comm"], "make_zombie", "{z:#}");
    assert_eq!(z["reaper"]["pid"], node, "{z:#}");
    assert_eq!(z["reaper"]["comm"], "node", "{z:#}");
    assert_eq!(z["reaper"]["ns_pid"], 1, "{z:#}");
    assert_eq!(z["reaper"]["ns_init"], true, "{z:#}");
    assert_eq!(z["adopted"], true, "{z:#}");
    assert_eq!(z["adopted_from"]["comm"], "make_zombie", "{z:#}");
    // libuv waits for the pids node spawned, never for any child.
    assert_eq!(z["diagnosis"], "waits_only_for_others", "{z:#}");
    assert!(
        of_kind(&findings, "zombie_leak").is_empty(),
        "{findings:#?}"
    );
    // Released only when the namespace died with node.
    let reaped = of_kind(&findings, "zombie_reaped");
    assert_eq!(reaped.len(), 1, "{findings:#?}");
    assert_eq!(reaped[0]["process"]["pid"], z["process"]["pid"]);
}

/// The same with node spawning make_zombie three times: three zombies held, a leak.
#[test]
fn node_as_namespace_init_leaks_zombies() {
    if !root_or_skip("node_as_namespace_init_leaks_zombies") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let make_zombie = fixture("make_zombie");
    let script = format!(
        "const {{ spawn }} = require('child_process'); \
         for (let i = 0; i < 3; i++) {{ \
           spawn({:?}, ['2']).on('exit', () => console.log('exited')); }} \
         setInterval(() => {{}}, 1 << 30);",
        make_zombie.display().to_string()
    );
    let flags = ["--zombie-after", "1s"];
    let traced = trace(
        "leak",
        &flags,
        &[
            os("unshare"),
            os("--pid"),
            os("--fork"),
            os("--mount-proc"),
            os("node"),
            os("-e"),
            os(&script),
        ],
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        traced.line_starting("exited", &mut seen);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let node = traced.namespace_init();
    // SAFETY: plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(node as i32, libc::SIGKILL) }, 0);
    let done = traced.finish();
    let findings = done.checked(&flags);
    // Each zombie twice: as make_zombie's, then as node's.
    let zombies: Vec<&Value> = of_kind(&findings, "zombie")
        .into_iter()
        .filter(|z| z["reaper"]["comm"] == "node")
        .collect();
    assert_eq!(zombies.len(), 3, "{findings:#?}");
    assert_eq!(of_kind(&findings, "zombie").len(), 6, "{findings:#?}");
    for z in &zombies {
        assert_eq!(z["reaper"]["pid"], node, "{z:#}");
        assert_eq!(z["adopted_from"]["comm"], "make_zombie", "{z:#}");
    }
    let leaks = of_kind(&findings, "zombie_leak");
    assert_eq!(leaks.len(), 1, "{findings:#?}");
    let leak = leaks[0];
    assert_eq!(leak["reaper"]["pid"], node);
    assert_eq!(leak["reaper"]["ns_pid"], 1);
    assert_eq!((&leak["zombies"], &leak["adopted"]), (&3.into(), &3.into()));
    assert_eq!(leak["reaped_adopted"], 0);
}

/// `bash -c` as PID 1 of a new PID namespace runs signal_test; SIGTERM to bash is dropped by
/// the kernel (no handler), and signal_test never hears of it.
#[test]
fn bash_as_namespace_init_drops_sigterm() {
    if !root_or_skip("bash_as_namespace_init_drops_sigterm") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let signal_test = fixture("signal_test");
    // "; true" keeps bash from exec'ing signal_test in its place.
    let script = format!("{}; true", signal_test.display());
    let traced = trace(
        "bash",
        &[],
        &[
            os("unshare"),
            os("--pid"),
            os("--fork"),
            os("--mount-proc"),
            os("bash"),
            os("-c"),
            os(&script),
        ],
    );
    let mut seen = Vec::new();
    traced.line_starting("signal_test: ready", &mut seen);
    let app = host_pid_of(&signal_test);
    let bash = tracer::proc::stat(app).unwrap().ppid;
    assert_eq!(tracer::proc::stat(bash).unwrap().comm, "bash");
    assert_eq!(tracer::proc::nspids(bash).last(), Some(&1));
    // SAFETY: plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(bash as i32, libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(500));
    let done = traced.finish();
    assert!(
        !done
            .printed
            .iter()
            .chain(&seen)
            .any(|l| l.contains("got signal 15")),
        "signal_test got it: {:?}",
        done.printed
    );
    let findings = done.checked(&[]);
    let drops = of_kind(&findings, "signal_dropped");
    assert_eq!(drops.len(), 1, "{findings:#?}");
    let d = drops[0];
    assert_eq!(d["reason"], "ignored_by_init");
    assert_eq!(d["sig_name"], "SIGTERM");
    assert_eq!(d["target"]["pid"], bash);
    assert_eq!(d["target"]["comm"], "bash");
    assert_eq!(d["sender"]["pid"], std::process::id());
    let children: Vec<&Value> = d["children"].as_array().unwrap().iter().collect();
    assert_eq!(children.len(), 1, "{d:#}");
    assert_eq!(children[0]["pid"], app);
    assert_eq!(children[0]["comm"], "signal_test");
}

/// The host pid of the running process whose executable is `exe` (polls: it may be about to
/// start).
fn host_pid_of(exe: &Path) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for pid in tracer::proc::pids().unwrap() {
            if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no process runs {}",
            exe.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pid freed and handed out again (forced with ns_last_pid) names two processes, each with
/// its own parent: in a new PID namespace (same namespace pid) and on the host (same host
/// pid, the table's key).
#[test]
fn reused_pid_stays_two_processes() {
    if !root_or_skip("reused_pid_stays_two_processes") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reuse = fixture("reuse_pid");
    for in_namespace in [true, false] {
        let mut command = vec![];
        if in_namespace {
            command.extend([os("unshare"), os("--pid"), os("--fork"), os("--mount-proc")]);
        }
        command.push(reuse.as_os_str());
        let traced = trace("reuse", &[], &command);
        let done = traced.finish();
        assert!(done.status_ok, "reuse_pid failed: {:?}", done.printed);
        let printed = |key: &str| -> u32 {
            done.printed
                .iter()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {key}= in {:?}", done.printed))
                .parse()
                .unwrap()
        };
        let (first, middle, second) = (printed("first"), printed("middle"), printed("second"));
        assert_eq!(first, second);
        let events = done.events();
        let mut engine = Engine::new(Config::default());
        for e in &events {
            engine.feed(e);
        }
        // The forks that made A, M and B, by the pid numbers the program printed.
        let forks: Vec<(u32, u32, u32, u64)> = events
            .iter()
            .filter_map(|e| match &e.data {
                EventData::Fork(f) if !f.thread => {
                    Some((e.task.pid, f.child_ns_pid, f.child_pid, f.child_start_ns))
                }
                _ => None,
            })
            .collect();
        let root = forks
            .iter()
            .find(|(_, _, _, _)| true)
            .map(|f| f.2)
            .expect("forks");
        let made = |ns_pid: u32| -> Vec<(u32, u32, u64)> {
            forks
                .iter()
                .filter(|f| f.1 == ns_pid)
                .map(|f| (f.0, f.2, f.3))
                .collect()
        };
        let a = made(first);
        let m = made(middle);
        assert_eq!(a.len(), 2, "two forks got pid {first}: {forks:?}");
        assert_eq!(m.len(), 1, "{forks:?}");
        let (m_host, m_start) = (m[0].1, m[0].2);
        let table = engine.table();
        let entry_a = table.find(a[0].1, a[0].2).expect("A in the table");
        let entry_b = table.find(a[1].1, a[1].2).expect("B in the table");
        assert_ne!(entry_a.start_ns, entry_b.start_ns);
        let parent = |p: &tracer::engine::table::Proc| table.get(p.parent).map(|pp| pp.pid);
        let program = a[0].0;
        assert_eq!(parent(entry_a), Some(program), "A is the program's child");
        assert_eq!(parent(entry_b), Some(m_host), "B is M's child");
        assert_eq!(table.find(m_host, m_start).and_then(parent), Some(program));
        if !in_namespace {
            assert_eq!(a[0].1, a[1].1, "same host pid");
            assert_eq!(table.incarnations(a[0].1).len(), 2);
        }
        assert_eq!(engine.counters().disagreements, 0);
        let _ = root;
        let _ = std::fs::remove_file(&done.log);
    }
}

/// SIGUSR1 to a process that blocks it and then exits: pending past --blocked-after, then
/// lost with the target.
#[test]
fn blocked_signal_dies_with_its_target() {
    if !root_or_skip("blocked_signal_dies_with_its_target") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let block = fixture("block_signal");
    let flags = ["--blocked-after", "1s"];
    let traced = trace("blocked", &flags, &[block.as_os_str()]);
    let pid: i32 = traced.printed("pid", &mut Vec::new()).parse().unwrap();
    // SAFETY: plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    std::thread::sleep(Duration::from_millis(1500));
    let done = traced.finish();
    let findings = done.checked(&flags);
    let drops = of_kind(&findings, "signal_dropped");
    let reasons: Vec<&Value> = drops.iter().map(|d| &d["reason"]).collect();
    assert_eq!(reasons, ["blocked", "target_exited"], "{findings:#?}");
    for d in drops {
        assert_eq!(d["sig_name"], "SIGUSR1");
        assert_eq!(d["target"]["pid"], pid);
        assert_eq!(d["sender"]["pid"], std::process::id());
    }
}

/// Five SIGUSR1 to a process that blocks it: one stays pending, four are merged into it;
/// when unblocked the handler runs once.
#[test]
fn burst_to_blocked_target_is_coalesced() {
    if !root_or_skip("burst_to_blocked_target_is_coalesced") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let block = fixture("block_signal");
    let mut traced = trace("burst", &[], &[block.as_os_str()]);
    let mut seen = Vec::new();
    let pid: i32 = traced.printed("pid", &mut seen).parse().unwrap();
    for _ in 0..5 {
        // SAFETY: plain kill(2) of a process this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
    }
    traced.send("unblock\n");
    assert_eq!(traced.printed("delivered", &mut seen), "1");
    let done = traced.finish();
    let findings = done.checked(&[]);
    let drops = of_kind(&findings, "signal_dropped");
    assert_eq!(drops.len(), 1, "{findings:#?}");
    let d = drops[0];
    assert_eq!(d["reason"], "coalesced");
    assert_eq!(d["count"], 4);
    assert_eq!(d["sig_name"], "SIGUSR1");
    assert_eq!(d["target"]["pid"], pid);
}

/// 100,000 SIGUSR1 to a child with a handler, most of them counted in bursts the probes write
/// late and CPU by CPU: the live trace and a replay of its log find the same, the `coalesced`
/// counts add up to the signals merged away, and nothing is `target_exited` or `blocked`.
#[test]
fn signal_storm_in_bursts_replays_the_same() {
    if !root_or_skip("signal_storm_in_bursts_replays_the_same") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lifecycle = fixture("lifecycle");
    let traced = trace(
        "storm",
        &[],
        &[lifecycle.as_os_str(), os("storm-child"), os("100000")],
    );
    let mut seen = Vec::new();
    let parent: u32 = traced.printed("self", &mut seen).parse().unwrap();
    let done = traced.finish();
    let events = done.events();
    let merged: u64 = events
        .iter()
        .filter(|e| e.task.pid == parent)
        .map(|e| match &e.data {
            EventData::Signal(s) if s.sig.0 == 10 => {
                u64::from(s.result == tracer::event::SignalResult::AlreadyPending)
            }
            EventData::SignalBurst(b) if b.sig.0 == 10 => b.already_pending,
            _ => 0,
        })
        .sum();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.data, EventData::SignalBurst(_))),
        "a storm is counted in bursts"
    );
    let findings = done.checked(&[]);
    let mut coalesced = 0;
    for f in of_kind(&findings, "signal_dropped") {
        assert_eq!(f["reason"], "coalesced", "{findings:#?}");
        coalesced += f["count"].as_u64().unwrap();
    }
    assert_eq!(coalesced, merged);
}
