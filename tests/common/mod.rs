//! Shared by the integration tests: fixtures compiled on first use, a running `tracer init`
//! whose output can be awaited line by line, and `tracer trace` runs read back as events.

#![allow(dead_code, reason = "each test file uses its own subset")]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub mod rng;
pub mod trace;

/// Generous: the CI machine has two noisy cores.
pub const LONG: Duration = Duration::from_secs(30);

/// `tests/fixtures/NAME.c`, compiled with `cc` once per test process.
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(format!("{name}.c"));
    // Named as the source, so comm (and -v reports) show the fixture's own name.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
    std::fs::create_dir_all(&dir).expect("creating the fixture directory");
    let out = dir.join(name);
    let status = Command::new("cc")
        .args(["-O1", "-Wall", "-pthread", "-o"])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("running cc");
    assert!(status.success(), "cc failed for {}", source.display());
    built.insert(name.to_owned(), out.clone());
    out
}

/// A fixture file that is not compiled (e.g. run.js).
pub fn fixture_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name)
}

/// The tracer binary under test: this build's, or the one `TRACER_BIN` names (`cargo xtask
/// test` runs the init tests a second time against the static release binary users ship).
pub fn tracer() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("TRACER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_tracer").to_owned())
    })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// How init runs: as PID 1 of a fresh PID namespace, or as a plain child subreaper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Namespace,
    Subreaper,
}

/// The modes this test run can exercise: a PID namespace needs root.
pub fn modes() -> Vec<Mode> {
    if is_root() {
        vec![Mode::Namespace, Mode::Subreaper]
    } else {
        println!("skipped: needs root (PID namespace mode)");
        vec![Mode::Subreaper]
    }
}

/// `tracer init ARGS` in the given mode, stdin/stdout/stderr piped.
pub fn init_command<S: AsRef<std::ffi::OsStr>>(mode: Mode, args: &[S]) -> Command {
    let mut cmd = match mode {
        Mode::Namespace => {
            let mut c = Command::new("unshare");
            c.args(["--pid", "--fork"]).arg(tracer());
            c
        }
        Mode::Subreaper => Command::new(tracer()),
    };
    cmd.arg("init").args(args);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Lines from a pipe, awaited with a timeout; every line read is kept for failure messages.
pub struct Lines {
    rx: Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn new(r: impl Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// The next line matching `pred`, within `timeout`; None on timeout or end of output.
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The next line, whatever it is, within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<String> {
        self.wait_for(timeout, |_| true)
    }

    /// Everything until the writers close the pipe (or `timeout`).
    pub fn rest(&mut self, timeout: Duration) -> Vec<String> {
        let start = self.seen.len();
        while self.next(timeout).is_some() {}
        self.seen[start..].to_vec()
    }
}

/// A running `tracer init` (possibly inside `unshare`).
pub struct Running {
    pub mode: Mode,
    pub child: Child,
    pub out: Lines,
    pub err: Lines,
    init_pid: Option<i32>,
}

impl Running {
    pub fn start<S: AsRef<std::ffi::OsStr>>(mode: Mode, args: &[S]) -> Self {
        Self::spawn(mode, init_command(mode, args))
    }

    pub fn spawn(mode: Mode, mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("spawning tracer init");
        let out = Lines::new(child.stdout.take().expect("stdout piped"));
        let err = Lines::new(child.stderr.take().expect("stderr piped"));
        Self {
            mode,
            child,
            out,
            err,
            init_pid: None,
        }
    }

    /// init's pid as this test sees it (under `unshare` it is unshare's child).
    pub fn init_pid(&mut self) -> i32 {
        if let Some(pid) = self.init_pid {
            return pid;
        }
        let pid = match self.mode {
            Mode::Subreaper => self.child.id() as i32,
            Mode::Namespace => {
                let unshare = self.child.id() as i32;
                wait_until(LONG, || children(unshare).first().copied())
                    .expect("unshare never forked init")
            }
        };
        self.init_pid = Some(pid);
        pid
    }

    /// Sends `sig` to init.
    pub fn signal(&mut self, sig: i32) {
        let pid = self.init_pid();
        if sig == libc::SIGKILL {
            self.kill_descendants();
        }
        // SAFETY: kill has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// SIGKILLs everything below init. A subreaper init killed outright would otherwise leave
    /// its descendants to the host's init, outliving the test.
    fn kill_descendants(&mut self) {
        if self.mode == Mode::Subreaper {
            for pid in descendants(self.init_pid()) {
                // SAFETY: kill has no memory effects.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// Closes init's stdin.
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Waits for init (and unshare) to exit; panics after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                panic!(
                    "tracer init did not exit within {timeout:?}\nstdout: {:?}\nstderr: {:?}",
                    self.out.seen, self.err.seen
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The exit code; panics if init was killed by a signal.
    pub fn code(&mut self, timeout: Duration) -> i32 {
        let status = self.wait(timeout);
        status.code().unwrap_or_else(|| {
            panic!(
                "tracer init died of a signal: {status:?}\nstderr: {:?}",
                self.err.seen
            )
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if self.init_pid.is_some() {
                self.kill_descendants();
            }
            if let Some(pid) = self.init_pid.filter(|_| self.mode == Mode::Namespace) {
                // SAFETY: kill has no memory effects. PID 1 dying takes its namespace with it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Direct children of `pid`, from /proc.
pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Every descendant of `pid`.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        for c in children(p) {
            out.push(c);
            queue.push(c);
        }
    }
    out
}

/// The state letter of a process (`Z` for a zombie), None if it is gone.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// A `Status:`-style field of /proc/PID/status.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// Polls `f` every 5 ms until it returns Some, for at most `timeout`.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Sets every signal but SIGKILL/SIGSTOP to SIG_DFL, glibc's internal ones included (which its
/// `sigaction` refuses), with the raw system call. Async-signal-safe, for `pre_exec`.
pub fn reset_all_dispositions() {
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: the kernel reads `dfl` only; 8 is the size of its signal set.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
}
