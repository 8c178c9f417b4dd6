//! Starting an observer (the tracer, bpftrace, forkstat, or none), waiting until it has attached,
//! and stopping it with SIGINT to read what it lost; the in-kernel run time of its probes.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    bpf_stats::{self, ProbeTime},
    tools::Tools,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observer {
    Untraced,
    Tracer,
    Bpftrace,
    Forkstat,
    /// No observer, measured last in a round: its ratio to the round's first untraced run is
    /// the spread a ratio has on this machine when there is nothing to measure.
    UntracedAgain,
}

impl Observer {
    pub fn name(self) -> &'static str {
        match self {
            Observer::Untraced => "untraced",
            Observer::Tracer => "tracer",
            Observer::Bpftrace => "bpftrace",
            Observer::Forkstat => "forkstat",
            Observer::UntracedAgain => "untraced again",
        }
    }
}

/// bpftrace on the tracepoints the tracer's probes use, printing a line per event with the
/// facts the tracer's records carry (ids, comm, the tracepoint's arguments, exit code).
const BPFTRACE_SCRIPT: &str = r#"
tracepoint:sched:sched_process_fork { printf("fork %llu %d %d %d %s %d %d\n", nsecs, pid, tid, uid, comm, args->parent_pid, args->child_pid); }
tracepoint:sched:sched_process_exec { printf("exec %llu %d %d %d %s %s %d\n", nsecs, pid, tid, uid, comm, str(args->filename), args->old_pid); }
tracepoint:sched:sched_process_exit { printf("exit %llu %d %d %d %s %d\n", nsecs, pid, tid, uid, comm, curtask->exit_code); }
tracepoint:sched:sched_process_free { printf("reap %llu %d %d %d %s %d\n", nsecs, pid, tid, uid, comm, args->pid); }
tracepoint:sched:sched_process_wait { printf("wait %llu %d %d %d %s %d\n", nsecs, pid, tid, uid, comm, args->pid); }
tracepoint:signal:signal_generate { printf("signal %llu %d %d %d %s %d %d %d %d %d\n", nsecs, pid, tid, uid, comm, args->sig, args->code, args->pid, args->group, args->result); }
tracepoint:signal:signal_deliver { printf("deliver %llu %d %d %d %s %d %d %lu %lu\n", nsecs, pid, tid, uid, comm, args->sig, args->code, args->sa_handler, args->sa_flags); }
tracepoint:syscalls:sys_enter_wait4 { printf("wait4 %llu %d %d %s %d %d\n", nsecs, pid, tid, comm, args->upid, args->options); }
tracepoint:syscalls:sys_exit_wait4 { printf("wait4_ret %llu %d %d %s %d\n", nsecs, pid, tid, comm, args->ret); }
tracepoint:syscalls:sys_enter_waitid { printf("waitid %llu %d %d %s %d %d %d\n", nsecs, pid, tid, comm, args->which, args->upid, args->options); }
tracepoint:syscalls:sys_exit_waitid { printf("waitid_ret %llu %d %d %s %d\n", nsecs, pid, tid, comm, args->ret); }
"#;
/// Probes in the script; bpftrace opens one perf event per probe, plus one per CPU for output.
const BPFTRACE_PROBES: usize = 11;
/// Programs the tracer attaches, each holding a BPF link.
const TRACER_PROGRAMS: usize = 11;

pub struct Observers {
    tracer: PathBuf,
    bpftrace: Option<PathBuf>,
    forkstat: Option<PathBuf>,
    script: PathBuf,
    dir: PathBuf,
}

/// An observer running, or none.
pub struct Running {
    observer: Observer,
    child: Option<Child>,
    stderr: PathBuf,
}

/// What an observer said when it stopped.
pub struct Stopped {
    /// Events it reports it lost, when it reports that.
    pub lost: Option<u64>,
    /// Events it reports it wrote, when it reports that.
    pub events: Option<u64>,
}

impl Observers {
    pub fn new(tracer: &Path, tools: &Tools, dir: &Path) -> Result<Self> {
        let script = dir.join("lifecycle.bt");
        std::fs::write(&script, BPFTRACE_SCRIPT)?;
        Ok(Self {
            tracer: tracer.to_path_buf(),
            bpftrace: tools.bpftrace.clone(),
            forkstat: tools.forkstat.clone(),
            script,
            dir: dir.to_path_buf(),
        })
    }

    pub fn tracer(&self) -> &Path {
        &self.tracer
    }

    /// The observers this machine has, untraced first and again last.
    pub fn available(&self) -> Vec<Observer> {
        let mut all = vec![Observer::Untraced, Observer::Tracer];
        if self.bpftrace.is_some() {
            all.push(Observer::Bpftrace);
        }
        if self.forkstat.is_some() {
            all.push(Observer::Forkstat);
        }
        all.push(Observer::UntracedAgain);
        all
    }

    /// Starts `observer` on the whole host and returns once it has attached; `tracer_args`
    /// are extra flags for the tracer.
    pub fn start(&self, observer: Observer, tracer_args: &[&str]) -> Result<Running> {
        let stderr = self.dir.join(format!("{}.stderr", observer.name()));
        let mut cmd = match observer {
            Observer::Untraced | Observer::UntracedAgain => {
                return Ok(Running {
                    observer,
                    child: None,
                    stderr,
                });
            }
            Observer::Tracer => {
                let mut cmd = Command::new(&self.tracer);
                cmd.args(["trace", "-o", "/dev/null"]).args(tracer_args);
                cmd
            }
            Observer::Bpftrace => {
                let mut cmd = Command::new(self.bpftrace.as_ref().context("no bpftrace")?);
                cmd.args(["-o", "/dev/null"]).arg(&self.script);
                cmd
            }
            Observer::Forkstat => {
                let mut cmd = Command::new(self.forkstat.as_ref().context("no forkstat")?);
                cmd.args(["-e", "all"]);
                cmd
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr)?)
            .spawn()
            .with_context(|| format!("starting {}", observer.name()))?;
        let mut running = Running {
            observer,
            child: Some(child),
            stderr,
        };
        running.wait_attached()?;
        Ok(running)
    }
}

/// An observer left running by an error is killed, so it does not go on tracing the sections
/// after it.
impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Running {
    /// Polls the observer's open files until its probes are attached (or its proc connector
    /// socket open), then gives it a moment to start reading.
    fn wait_attached(&mut self) -> Result<()> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let Some(child) = self.child.as_mut() else {
            return Ok(());
        };
        let pid = child.id();
        let ready = |fds: &[String]| {
            let count = |kind: &str| fds.iter().filter(|f| f.contains(kind)).count();
            match self.observer {
                Observer::Untraced | Observer::UntracedAgain => true,
                Observer::Tracer => count("bpf_link") >= TRACER_PROGRAMS,
                Observer::Bpftrace => count("[perf_event]") >= BPFTRACE_PROBES + cpus,
                Observer::Forkstat => count("socket:") >= 1,
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "{} exited before it attached ({status}): {}",
                    self.observer.name(),
                    std::fs::read_to_string(&self.stderr)
                        .unwrap_or_default()
                        .trim()
                );
            }
            if ready(&open_files(pid)) {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} did not attach within 30 s", self.observer.name());
            }
            sleep(Duration::from_millis(20));
        }
        // Attached is not yet reading: the tracer opens its output and /proc caches after
        // attaching, bpftrace starts polling its buffers, forkstat subscribes.
        sleep(Duration::from_millis(300));
        Ok(())
    }

    /// CPU time the observer has used so far (all its threads), in seconds; 0 for none.
    pub fn cpu_s(&self) -> f64 {
        self.child
            .as_ref()
            .and_then(|c| cpu_s(c.id()))
            .unwrap_or(0.0)
    }

    /// Run time and runs of the observer's BPF programs so far (those it holds open), when
    /// it has any. The kernel counts them only while statistics are on ([`super::bpf_stats::StatsOn`]).
    pub fn probe_time(&self) -> Option<ProbeTime> {
        let pid = self.child.as_ref()?.id();
        let mut seen = std::collections::HashSet::new();
        let mut total = ProbeTime::default();
        for (fd, target) in open_fds(pid) {
            if target != "anon_inode:bpf-prog" {
                continue;
            }
            // Two descriptors may hold one program.
            if let Ok((id, time)) = bpf_stats::program(&pid.to_string(), &fd)
                && seen.insert(id)
            {
                total.ns += time.ns;
                total.runs += time.runs;
            }
        }
        (!seen.is_empty()).then_some(total)
    }

    /// SIGINT, then the lost count from its summary (the tracer's `…, N lost` line).
    pub fn stop(mut self) -> Result<Stopped> {
        let Some(mut child) = self.child.take() else {
            return Ok(Stopped {
                lost: Some(0),
                events: None,
            });
        };
        interrupt(child.id());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} did not stop within 60 s of SIGINT",
                    self.observer.name()
                );
            }
            sleep(Duration::from_millis(10));
        };
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let summary = match self.observer {
            Observer::Tracer => Some(tracer_summary(&stderr).with_context(|| {
                format!(
                    "the tracer ({status}) printed no summary: {}",
                    stderr.trim()
                )
            })?),
            _ => None,
        };
        Ok(Stopped {
            lost: summary.map(|s| s.lost),
            events: summary.map(|s| s.events),
        })
    }
}

/// Sends SIGINT (what Ctrl-C sends) to `pid`.
pub fn interrupt(pid: u32) {
    // SAFETY: kill has no memory preconditions; pid is our own child's, not yet reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

/// utime + stime of a whole process, from `/proc/PID/stat`, in seconds (clock-tick resolution).
fn cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counting from 0 after it.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / hz.max(1) as f64)
}

/// What `/proc/PID/fd/*` point to.
fn open_files(pid: u32) -> Vec<String> {
    open_fds(pid)
        .into_iter()
        .map(|(_, target)| target)
        .collect()
}

/// The open descriptors of `pid` (their numbers as in `/proc/PID/fd`) and what they point to.
fn open_fds(pid: u32) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let target = std::fs::read_link(e.path()).ok()?;
        Some((
            e.file_name().to_string_lossy().into_owned(),
            target.to_string_lossy().into_owned(),
        ))
    })
    .collect()
}

/// The tracer's `tracer: N events (…), M lost` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub events: u64,
    pub lost: u64,
}

/// The trace's own summary line, `tracer: N events (…), N lost`. Since the engine was merged
/// the summary goes on with `tracer: engine: …` and more lines, so the last `tracer: ` line is
/// not it: the one that starts with the count is.
fn summary_line(stderr: &str) -> Option<&str> {
    stderr.lines().rev().find_map(|l| {
        l.strip_prefix("tracer: ")
            .filter(|l| l.contains(" lost") && l.starts_with(|c: char| c.is_ascii_digit()))
    })
}

pub fn tracer_summary(stderr: &str) -> Option<Summary> {
    let line = summary_line(stderr)?;
    let events = line.split(' ').next()?.parse().ok()?;
    let lost = line
        .split(", ")
        .find_map(|part| part.strip_suffix(" lost"))?
        .parse()
        .ok()?;
    Some(Summary { events, lost })
}

/// The count the tracer's summary gives for one event kind (`signal 1000001`).
pub fn summary_kind(stderr: &str, kind: &str) -> Option<u64> {
    let line = summary_line(stderr)?;
    let inner = line.split_once('(')?.1.split_once(')')?.0;
    inner
        .split(", ")
        .find_map(|part| part.strip_prefix(kind)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tracer_summary() {
        let stderr = "tracer: 19 events (fork 3, signal 2, signal_deliver 2), 4 lost\n";
        assert_eq!(
            tracer_summary(stderr),
            Some(Summary {
                events: 19,
                lost: 4
            })
        );
        assert_eq!(summary_kind(stderr, "signal"), Some(2));
        assert_eq!(summary_kind(stderr, "fork"), Some(3));
        assert_eq!(summary_kind(stderr, "exec"), None);
        let stderr = "tracer: 0 events, 0 lost, 12 seen in all\n";
        assert_eq!(tracer_summary(stderr), Some(Summary { events: 0, lost: 0 }));
        assert_eq!(tracer_summary("tracer: cannot create x\n"), None);
        let stderr = "tracer: 7797 events (fork 1558, exec 1), 0 lost\ntracer: engine: 7797 \
                      events (fork 1558, exec 1), 0 lost\nfindings: zombie 0\n";
        assert_eq!(
            tracer_summary(stderr),
            Some(Summary {
                events: 7797,
                lost: 0
            })
        );
        assert_eq!(summary_kind(stderr, "fork"), Some(1558));
    }
}
