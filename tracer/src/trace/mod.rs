//! `tracer trace`: load the probes, stream events, end cleanly.

mod comms;
pub mod filter;
mod nudge;
mod stats;

use std::{
    collections::HashSet,
    ffi::OsString,
    fs::File,
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
    time::{Instant, sleep_until},
};
use tracer_common::{EventKind, SIGNAL_RUN_NS, STRAGGLER_READ_NS};

use self::{
    comms::CommCache,
    filter::{Kinds, Subtree},
    nudge::Nudger,
    stats::Stats,
};
use crate::{
    clock,
    decode::decode,
    duration::parse_duration,
    engine::Finding,
    event::{Event, EventData, Lost, Task},
    output::{self, Format, Sink},
    probes::{LoadOptions, Probes},
};

/// Options of `tracer trace`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    tracer trace                              every process on the host\n  \
    tracer trace --pid 1234                   1234 and everything it starts\n  \
    tracer trace --format json -o run.jsonl -- make -j4\n  \
    tracer trace --events exit,reap,signal --duration 30s")]
pub struct TraceArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write events to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Show only PID and its descendants, including those born later.
    #[arg(long, value_name = "PID", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// Also show thread creation and thread exits.
    #[arg(long)]
    pub threads: bool,
    /// Show only these event kinds (comma-separated: fork, exec, exit, wait, reap, signal,
    /// signal_deliver). Lost-event reports are always shown; signal_burst and deliver_burst
    /// (repeats counted in the kernel) go with signal and signal_deliver.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_kind)]
    pub events: Vec<EventKind>,
    /// Stop after DURATION (500ms, 5s, 2m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub engine: crate::engine::EngineArgs,
    /// Ring buffer size: a power of two, at least 4K (e.g. 256K, 8M, 64M).
    #[arg(long, value_name = "BYTES", value_parser = parse_ring_size,
          default_value = "8M")]
    pub ring_size: u32,
    /// Follow the process that started this tracer and its descendants. For `tracer init
    /// --trace-log`, which cannot name itself by host pid from inside a pid namespace.
    #[arg(long, hide = true, conflicts_with_all = ["pid", "command"])]
    pub follow_parent: bool,
    /// Show the probes' own diagnostics (failed kernel reads, full maps) on stderr.
    #[arg(long)]
    pub debug: bool,
    /// Launch COMMAND and show only its subtree (orphans reparented away included); end when
    /// the subtree is gone, with COMMAND's exit code.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

fn parse_kind(text: &str) -> Result<EventKind, String> {
    EventKind::ALL
        .into_iter()
        .filter(|k| *k != EventKind::Lost)
        .find(|k| k.name() == text)
        .ok_or_else(|| {
            format!(
                "unknown event kind {text:?}: choose from fork, exec, exit, wait, reap, signal, \
                 signal_deliver (signal_burst, deliver_burst)"
            )
        })
}

fn parse_ring_size(text: &str) -> Result<u32, String> {
    let upper = text.trim().to_ascii_uppercase();
    let (num, scale) = match upper.trim_end_matches('B').chars().last() {
        Some('K') => (&upper[..upper.find('K').unwrap_or(0)], 1u64 << 10),
        Some('M') => (&upper[..upper.find('M').unwrap_or(0)], 1 << 20),
        Some('G') => (&upper[..upper.find('G').unwrap_or(0)], 1 << 30),
        _ => (upper.trim_end_matches('B'), 1),
    };
    let bytes = num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&b| b >= 4096 && b.is_power_of_two() && b <= 1 << 30)
        .ok_or_else(|| {
            format!("invalid ring size {text:?}: use a power of two from 4K to 1G, like 256K or 8M")
        })?;
    Ok(bytes as u32)
}

/// Runs the tracer until its end condition; returns the exit status.
pub fn run(args: TraceArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the event loop")?;
    runtime.block_on(trace(args))
}

/// What ended the trace.
enum End {
    /// Ctrl-C or SIGTERM (the signal number).
    Signal(i32),
    Duration,
    /// The command and its whole subtree are gone.
    SubtreeGone,
}

struct Pipeline {
    sink: Box<dyn Sink>,
    kinds: Kinds,
    subtree: Option<Subtree>,
    comms: CommCache,
    stats: Stats,
    /// The detectors, fed what the subtree filter lets through (what the log holds, so that
    /// a replay of the log finds the same).
    engine: crate::engine::live::LiveEngine,
    /// When the latest record that may have opened a run of signal repeats was read, and when
    /// the CPUs still holding counts are to be nudged (see `nudge`).
    run_opened: Option<Instant>,
    nudge_at: Option<Instant>,
}

impl Pipeline {
    fn handle(&mut self, mut event: Event) -> io::Result<()> {
        self.comms.enrich(&mut event);
        self.stats.saw(&event);
        let in_subtree = self
            .subtree
            .as_mut()
            .is_none_or(|tree| tree.observe(&event));
        if in_subtree {
            let findings = self.engine.before(&event);
            self.write(findings)?;
        }
        if in_subtree && self.kinds.shows(event.data.kind()) {
            self.stats.shown(&event);
            self.sink.event(&event)?;
        }
        if in_subtree {
            let findings = self.engine.after(&event);
            self.write(findings)?;
        }
        Ok(())
    }

    /// Writes what the engine learned from the system (the log's record of it), then what it
    /// found.
    fn write(&mut self, findings: Vec<Finding>) -> io::Result<()> {
        for observation in self.engine.take_observations() {
            self.sink.observation(&observation)?;
        }
        for finding in &findings {
            self.sink.finding(finding)?;
        }
        Ok(())
    }

    /// Deadlines (zombie-after, blocked-after) that passed with no event to notice them.
    fn tick(&mut self) -> io::Result<()> {
        let findings = self.engine.tick();
        self.write(findings)?;
        self.sink.flush()
    }

    /// Reads everything in the ring buffer; returns how many records there were.
    fn drain(&mut self, ring: &mut RingBuf<MapData>) -> io::Result<usize> {
        let mut records = 0;
        let mut runs_opened = false;
        while let Some(item) = ring.next() {
            records += 1;
            match decode(&item) {
                Ok(event) => {
                    drop(item);
                    // Every signal record the probes write opens a run of repeats.
                    runs_opened |= matches!(
                        event.data,
                        EventData::Signal(_) | EventData::SignalDeliver(_)
                    );
                    self.handle(event)?;
                }
                Err(err) => self.stats.bad_record(&err),
            }
        }
        if runs_opened {
            let now = Instant::now();
            self.run_opened = Some(now);
            self.nudge_at
                .get_or_insert(now + Duration::from_nanos(SIGNAL_RUN_NS));
        }
        self.sink.flush()?;
        Ok(records)
    }

    /// Time to nudge: the CPUs still holding counts write them. While runs keep opening, again
    /// after the latest can take no more repeats.
    fn nudge(&mut self, probes: &Probes, nudger: &Nudger) {
        nudger.nudge(probes.cpus_with_runs());
        let run = Duration::from_nanos(SIGNAL_RUN_NS);
        self.nudge_at = self
            .run_opened
            .map(|opened| opened + run)
            .filter(|&at| at > Instant::now());
    }

    /// Decodes and handles records the probes did not write themselves (read from their maps).
    fn handle_record(&mut self, bytes: &[u8]) -> io::Result<()> {
        match decode(bytes) {
            Ok(event) => self.handle(event),
            Err(err) => {
                self.stats.bad_record(&err);
                Ok(())
            }
        }
    }
}

async fn trace(args: TraceArgs) -> Result<ExitCode> {
    if let Some(pid) = args.pid
        && crate::proc::stat(pid).is_err()
    {
        bail!("no process with pid {pid}");
    }
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout()),
    };

    let mut probes = Probes::load(&LoadOptions {
        ring_bytes: args.ring_size,
        threads: args.threads,
        debug: args.debug,
    })?;
    if let Some(log) = probes.take_log() {
        tokio::spawn(forward_probe_log(log));
    }
    let ring = probes.take_ring().context("ring buffer already taken")?;
    // SAFETY: the ring buffer owns its file descriptor, and the AsyncFd owns the ring buffer
    // until it is dropped; the descriptor is neither replaced nor closed meanwhile.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .context("watching the ring buffer")?;
    let start_ns = clock::boot_ns();
    // One look at /proc, after the probes are attached (so nothing falls between the two),
    // for the zombies already there, the comms, the engine's process table and the --pid
    // subtree: a member that exits from here on is seen to go, so no stale pid stays a member
    // and later matches a stranger.
    let snapshot = crate::engine::snapshot::snapshot(start_ns);
    probes.seed_zombies(&snapshot)?;
    let subtree = match args.pid {
        Some(pid) => Some(Subtree::new(descendants_of(pid, &snapshot)?)),
        None if args.follow_parent => Some(Subtree::new([host_parent(ring.get_mut())?])),
        None if !args.command.is_empty() => Some(Subtree::new([])),
        None => None,
    };
    let mut pipeline = Pipeline {
        sink: output::sink(args.format, out, start_ns)?,
        kinds: Kinds::new(&args.events),
        subtree,
        comms: CommCache::from_snapshot(&snapshot),
        stats: Stats::default(),
        engine: crate::engine::live::LiveEngine::new((&args.engine).into(), snapshot),
        run_opened: None,
        nudge_at: None,
    };
    if let Some(tree) = &pipeline.subtree {
        let mut pids: Vec<u32> = tree.members().collect();
        pids.sort_unstable();
        pipeline.engine.widen_scope(pids);
    }
    let nudger = Nudger::start().context("starting the nudge thread")?;
    // The log's first lines, out now: the header's presence tells a watcher the probes are
    // attached; the start snapshot (and the scope) follow it.
    pipeline.write(Vec::new()).context("writing events")?;
    pipeline.sink.flush().context("writing events")?;

    // The probes are attached and the ring buffer open before the command starts: nothing it
    // does can be missed.
    let mut child = match args.command.split_first() {
        Some((program, rest)) => {
            let child = tokio::process::Command::new(program)
                .args(rest)
                .spawn()
                .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
            if let (Some(tree), Some(pid)) = (pipeline.subtree.as_mut(), child.id()) {
                tree.insert(pid);
                pipeline.engine.widen_scope(vec![pid]);
            }
            Some(child)
        }
        None => None,
    };
    let mut command_status = None;

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let deadline = args.duration.map(|d| Instant::now() + d);
    let far_future = Instant::now() + Duration::from_secs(86400 * 365);
    // Once the command has exited, members whose release we did not see (events lost) are
    // checked against /proc now and then, so the trace still ends.
    let mut recheck = tokio::time::interval(Duration::from_millis(250));
    // Not a burst of the ticks missed while the command ran: checks stay 250 ms apart.
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut missing = HashSet::new();
    // Set after a read that found records: the probes do not wake us for every record, so
    // read again shortly after (see tracer_common::STRAGGLER_READ_NS). Unset when idle.
    let mut straggler_read: Option<Instant> = None;
    let straggler_delay = Duration::from_nanos(STRAGGLER_READ_NS);

    let end = loop {
        if command_status.is_some() && pipeline.subtree.as_ref().is_some_and(Subtree::is_empty) {
            break End::SubtreeGone;
        }
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("waiting for events")?;
                if pipeline.drain(guard.get_inner_mut()).context("writing events")? > 0 {
                    straggler_read = Some(Instant::now() + straggler_delay);
                }
                guard.clear_ready();
            }
            _ = sleep_until(straggler_read.unwrap_or(far_future)), if straggler_read.is_some() => {
                let found = pipeline.drain(ring.get_mut()).context("writing events")?;
                straggler_read = (found > 0).then(|| Instant::now() + straggler_delay);
            }
            status = async { child.as_mut().expect("guarded").wait().await },
                if child.is_some() && command_status.is_none() => {
                command_status = Some(status.context("waiting for the command")?);
            }
            _ = recheck.tick(), if command_status.is_some() => {
                // Whatever is already in the ring buffer is not lost: read it first.
                pipeline.drain(ring.get_mut()).context("writing events")?;
                if let Some(tree) = pipeline.subtree.as_mut() {
                    forget_vanished(tree, &mut missing);
                }
            }
            _ = sleep_until(pipeline.nudge_at.unwrap_or(far_future)),
                if pipeline.nudge_at.is_some() => {
                pipeline.nudge(&probes, &nudger);
            }
            _ = sleep_until(pipeline.engine.wake_at().unwrap_or(far_future)),
                if pipeline.engine.wake_at().is_some() => {
                // Events already in the ring buffer come first: they may settle the deadline.
                pipeline.drain(ring.get_mut()).context("writing events")?;
                pipeline.tick().context("writing events")?;
            }
            _ = interrupt.recv() => break End::Signal(libc::SIGINT),
            _ = terminate.recv() => break End::Signal(libc::SIGTERM),
            _ = sleep_until(deadline.unwrap_or(far_future)), if deadline.is_some() => {
                break End::Duration;
            }
        }
    };

    // A last drain; then, the probes detached, what they wrote meanwhile, the signal repeats
    // they still counted, and whatever loss no record reported.
    pipeline.drain(ring.get_mut()).context("writing events")?;
    probes.detach();
    pipeline.drain(ring.get_mut()).context("writing events")?;
    for record in probes.leftover_bursts() {
        pipeline.handle_record(&record).context("writing events")?;
    }
    for lost in probes.unreported_lost() {
        let event = Event {
            ts_ns: clock::boot_ns(),
            task: Task {
                cpu: Some(lost.cpu),
                ..Task::default()
            },
            data: EventData::Lost(Lost {
                count: lost.count,
                total: lost.total,
            }),
        };
        pipeline.handle(event).context("writing events")?;
    }
    let findings = pipeline.engine.finish();
    pipeline.write(findings).context("writing events")?;
    pipeline.sink.flush().context("writing events")?;
    eprintln!("tracer: {}", pipeline.stats.summary(probes.errors()));
    eprintln!("tracer: {}", pipeline.engine.summary());

    let code = match (&end, command_status) {
        (_, Some(status)) => shell_code(status),
        (End::Signal(sig), None) if child.is_some() => 128 + *sig as u8,
        _ => 0,
    };
    Ok(ExitCode::from(code))
}

/// Copies the probes' diagnostics to stderr as they come.
async fn forward_probe_log(log: crate::probes::ProbeLog) -> Result<()> {
    // SAFETY: the logger owns its ring buffer descriptor for as long as the AsyncFd lives.
    let mut log = unsafe { AsyncFd::register_with_interest(log, Interest::READABLE) }?;
    loop {
        let mut guard = log.readable_mut().await?;
        guard.get_inner_mut().flush();
        guard.clear_ready();
    }
}

fn shell_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128 + sig as u8,
        _ => 1,
    }
}

/// `pid` and its descendants in `snapshot`.
fn descendants_of(pid: u32, snapshot: &crate::engine::snapshot::Snapshot) -> Result<Vec<u32>> {
    if !snapshot.procs.iter().any(|p| p.pid == pid) {
        bail!("process {pid} exited before the trace started");
    }
    let parents: Vec<(u32, u32)> = snapshot.procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let mut members = vec![pid];
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        members.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    Ok(members)
}

/// The host pid of this process's parent, learned from an event this process causes itself:
/// inside a pid namespace, getppid() and /proc only give the namespace's numbers, the probes
/// give both. Runs before anything is written; the records it reads are not shown.
fn host_parent(ring: &mut RingBuf<MapData>) -> Result<u32> {
    let my_pid = std::process::id();
    let my_pidns = crate::proc::ns_inode(std::path::Path::new("/proc/self/ns/pid"));
    // A waitid with no children fails at once, and its return is written to the ring before
    // the call returns to us.
    // SAFETY: info is a valid siginfo_t to write to.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOHANG);
    }
    while let Some(item) = ring.next() {
        let Ok(event) = decode(&item) else { continue };
        if matches!(event.data, EventData::Wait(_))
            && event.task.ns_pid == my_pid
            && my_pidns.is_none_or(|ns| ns == event.task.pidns)
        {
            return Ok(event.task.ppid);
        }
    }
    bail!("could not learn this process's parent from the probes")
}

/// Drops members that no longer exist (their release was among lost events).
/// Drops the members /proc has not had at this check and the one before. A release shows in
/// /proc before its event arrives: the kernel frees a task a grace period later, and a
/// namespace's zombies released by its dying init come only that way, so one check would end
/// the trace before their `reap` events. `missing` carries the pids gone at the last check.
fn forget_vanished(tree: &mut Subtree, missing: &mut HashSet<u32>) {
    let gone: HashSet<u32> = tree
        .members()
        .filter(|pid| crate::proc::stat(*pid).is_err())
        .collect();
    for &pid in gone.intersection(&*missing) {
        tree.remove(pid);
    }
    *missing = gone;
}

#[cfg(test)]
mod tests {
    use tracer_common::DEFAULT_RING_BYTES;

    use super::*;

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_size("8M"), Ok(8 << 20));
        assert_eq!(parse_ring_size("256K"), Ok(256 << 10));
        assert_eq!(parse_ring_size("4096"), Ok(4096));
        assert_eq!(
            parse_ring_size(&DEFAULT_RING_BYTES.to_string()),
            Ok(DEFAULT_RING_BYTES)
        );
        for bad in ["3M", "1K", "abc", "2G", ""] {
            assert!(parse_ring_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_kinds() {
        assert_eq!(parse_kind("signal_deliver"), Ok(EventKind::SignalDeliver));
        assert!(parse_kind("lost").is_err());
        assert!(parse_kind("forks").unwrap_err().contains("choose from"));
    }
}
