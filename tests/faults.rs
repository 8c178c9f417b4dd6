//! Faults: the tracer killed with SIGKILL in the middle of a fork storm, then started again.
//! Kernel tests: they need root and say "skipped" without it.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use common::{
    fixture,
    trace::{root_or_skip, trace},
};
use tracer::event::EventData;

/// Fork loops on every core until dropped.
struct Storm(Vec<Child>);

impl Storm {
    fn start() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let lifecycle = fixture("lifecycle");
        Storm(
            (0..cpus)
                .map(|_| {
                    Command::new(&lifecycle)
                        .args(["fork-burst", "100000000"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("starting a fork loop")
                })
                .collect(),
        )
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `log` has its header line and at least `lines` more: the tracer is mid-stream.
fn wait_for_lines(log: &Path, lines: usize, tracer: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().count() > lines {
            return;
        }
        assert!(
            tracer.try_wait().unwrap().is_none(),
            "the tracer exited before writing events"
        );
        assert!(Instant::now() < deadline, "no events within 30 s");
        sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_during_a_fork_storm_then_restart() {
    if !root_or_skip("sigkill_during_a_fork_storm_then_restart") {
        return;
    }
    let storm = Storm::start();
    let log =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("killed-{}.jsonl", std::process::id()));
    for round in 0..3 {
        let mut first = Command::new(common::tracer())
            .args(["trace", "--format", "json", "-o"])
            .arg(&log)
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the tracer");
        wait_for_lines(&log, 100, &mut first);
        first.kill().expect("SIGKILL");
        let status = first.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "round {round}"
        );
    }
    let _ = std::fs::remove_file(&log);

    // Started again with the storm still running: it loads, attaches, and reports exactly
    // what its own command did, with nothing lost.
    let t = trace(&[], &[fixture("lifecycle").to_str().unwrap(), "fork"]);
    assert_eq!(t.code(), Some(0), "{}", t.stderr());
    let child = t.printed("child");
    let fork = t.events.iter().any(|e| match &e.data {
        EventData::Fork(f) => f.child_pid == child,
        _ => false,
    });
    assert!(fork, "no fork of {child}: {}", t.stderr());
    let exit_code = t.events.iter().find_map(|e| match &e.data {
        EventData::Exit(x) if e.task.pid == child && x.process => x.status.code,
        _ => None,
    });
    assert_eq!(exit_code, Some(7), "{}", t.stderr());
    let reaped = t
        .events
        .iter()
        .any(|e| e.task.pid == child && matches!(e.data, EventData::Reap(_)));
    assert!(reaped, "no reap of {child}: {}", t.stderr());
    assert!(t.stderr().contains(", 0 lost"), "{}", t.stderr());

    // And system-wide too: the storm's forks are seen.
    let output = Command::new(common::tracer())
        .args([
            "trace",
            "-o",
            "/dev/null",
            "--events",
            "fork",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let forks: u64 = stderr
        .split("(fork ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fork count in {stderr}"));
    assert!(
        forks > 100,
        "{forks} forks in a second of fork storm: {stderr}"
    );
    drop(storm);
}
