//! Running `tracer trace` on a command and reading back the events it logged.

use std::{
    path::Path,
    process::{Command, Output},
};

use tracer::event::Event;

/// Whether kernel tests can run; prints why not when they cannot.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("{test}: skipped: needs root (cargo xtask test runs it as root)");
    }
    root
}

/// A finished `tracer trace --format json -o FILE … -- COMMAND`.
pub struct Trace {
    pub events: Vec<Event>,
    /// The engine's findings the trace wrote between the events.
    pub findings: Vec<serde_json::Value>,
    pub output: Output,
}

impl Trace {
    /// `key=value` lines the command printed.
    pub fn printed(&self, key: &str) -> u32 {
        let stdout = String::from_utf8_lossy(&self.output.stdout);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("command printed no {key}=: {stdout}"))
            .parse()
            .unwrap()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

/// Runs the tracer on `command` with `flags`; returns the events it logged.
pub fn trace(flags: &[&str], command: &[&str]) -> Trace {
    trace_env(&[], flags, command)
}

/// [`trace`] with variables added to the tracer's environment.
pub fn trace_env(env: &[(&str, &str)], flags: &[&str], command: &[&str]) -> Trace {
    static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("trace-{}-{n}.jsonl", std::process::id()));
    let output = Command::new(super::tracer())
        .envs(env.iter().copied())
        .args(["trace", "--format", "json", "--duration", "60s", "-o"])
        .arg(&log)
        .args(flags)
        .arg("--")
        .args(command)
        .output()
        .expect("running tracer");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // After the header, events (`{"ts_ns":...}`) and the engine's findings (`{"finding":...}`);
    // the rest is what the engine learned from /proc (`{"snapshot":...}`, `{"cgroup":...}`).
    let events = event_lines(&text).map(parse).collect();
    let findings = text
        .lines()
        .skip(1)
        .filter(|line| line.starts_with("{\"finding\""))
        .map(parse)
        .collect();
    let _ = std::fs::remove_file(&log);
    Trace {
        events,
        findings,
        output,
    }
}

/// The event lines of a JSON Lines log (`{"ts_ns":…}`), past its header.
pub fn event_lines(log: &str) -> impl Iterator<Item = &str> {
    log.lines()
        .skip(1)
        .filter(|line| line.starts_with("{\"ts_ns\""))
}

fn parse<T: serde::de::DeserializeOwned>(line: &str) -> T {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}
