//! The brain: a process table that survives PID reuse, and the zombie and dropped-signal
//! detectors, as one pure state machine.
//!
//! The engine is fed events ([`Engine::observe`]) and told the time ([`Engine::tick`]); it
//! returns findings. It does no I/O: what it knows of the system outside events comes in as
//! a [`Snapshot`] ([`Engine::bootstrap`], [`Engine::reconcile`]), so the live tracer, `tracer
//! replay` and tests all drive the same code and the same input gives the same output.

pub mod container;
pub mod findings;
pub mod live;
pub mod observation;
mod reparent;
mod signal;
pub mod snapshot;
pub mod summary;
pub mod table;
mod zombie;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

pub use findings::Finding;
pub use observation::{Observation, SnapshotReason};
pub use snapshot::Snapshot;
pub use summary::Summary;

use self::{
    container::{Container, container_of},
    findings::ProcRef,
    signal::Signals,
    table::{NONE, Proc, Table, flag},
    zombie::Zombies,
};
use crate::{
    duration::parse_duration,
    event::{Comm, Event, EventData, Task},
};

/// The detectors' settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// A process exited-but-unreaped this long is a `zombie` finding.
    pub zombie_after_ns: u64,
    /// A reaper holding this many reported zombies is a `zombie_leak`.
    pub leak_threshold: u32,
    /// A signal pending this long because the target blocks it is a `blocked` drop.
    pub blocked_after_ns: u64,
    /// Report default-ignored signals (SIGCHLD, SIGWINCH, SIGURG, SIGCONT) too.
    pub all_signals: bool,
    /// Reaped processes are forgotten this long after their release.
    pub retention_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            zombie_after_ns: 5_000_000_000,
            leak_threshold: 3,
            blocked_after_ns: 5_000_000_000,
            all_signals: false,
            retention_ns: 60_000_000_000,
        }
    }
}

/// The detectors' command-line flags, shared by `trace` and `replay`.
#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// Report a process exited-but-unreaped for longer than DURATION as a zombie.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub zombie_after: Duration,
    /// Report a zombie leak when one reaper holds N unreaped zombies (again each time the
    /// count doubles).
    #[arg(long, value_name = "N", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub leak_threshold: u32,
    /// Report a signal pending longer than DURATION because its target blocks it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub blocked_after: Duration,
    /// Also report drops of signals that are ignored by default (SIGCHLD, SIGWINCH, SIGURG,
    /// SIGCONT).
    #[arg(long)]
    pub all_signals: bool,
    /// Forget reaped processes DURATION after their release (bounds memory under churn).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub retention: Duration,
}

impl From<&EngineArgs> for Config {
    fn from(args: &EngineArgs) -> Self {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Self {
            zombie_after_ns: ns(args.zombie_after),
            leak_threshold: args.leak_threshold,
            blocked_after_ns: ns(args.blocked_after),
            all_signals: args.all_signals,
            retention_ns: ns(args.retention),
        }
    }
}

/// Something the table noticed that contradicts what it predicted: surfaced in the summary,
/// never silently fixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub ts_ns: u64,
    pub text: String,
}

/// Counters the summary reports.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Events by kind (index: `EventKind as usize`).
    pub events: [u64; tracer_common::EventKind::SLOTS],
    pub lost: u64,
    pub findings: HashMap<&'static str, u64>,
    pub exits_missed: u64,
    pub reconciles: u64,
    pub subreapers_learned: u64,
    pub disagreements: u64,
    /// The first few, for the summary.
    pub disagreement_samples: Vec<Disagreement>,
    /// Events about processes the table did not know (born before the trace, or fork lost).
    pub unknown_processes: u64,
}

pub struct Engine {
    config: Config,
    table: Table,
    /// PID namespace inode → its init's entry.
    ns_inits: table::PidMap<u32>,
    /// cgroup id → the container its path names (from snapshots; events carry only ids).
    containers: HashMap<u64, Option<Container>, table::FastHash>,
    zombies: Zombies,
    signals: Signals,
    /// The latest time seen (events and ticks); time never goes back.
    now: u64,
    /// The latest event time seen (what a replay of the same events also knows at the end).
    last_event_ns: u64,
    /// Boot-clock time the engine started observing (first snapshot or first event).
    start_ns: Option<u64>,
    /// Lost events were reported and no reconcile has happened since.
    needs_reconcile: bool,
    /// The processes the trace is about (`--pid`, `-- COMMAND`) and every process they
    /// start, by pid; `None`: everything. Findings about no process in it are not reported.
    scope: Option<HashSet<u32>>,
    counters: Counters,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            table: Table::new(10_000_000),
            ns_inits: table::PidMap::default(),
            containers: HashMap::default(),
            zombies: Zombies::default(),
            signals: Signals::default(),
            now: 0,
            last_event_ns: 0,
            start_ns: None,
            needs_reconcile: false,
            scope: None,
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// (target, signal) pairs the dropped-signal detector holds, pending or kept for records
    /// the probes may still write late.
    pub fn signal_entries(&self) -> usize {
        self.signals.entries_len()
    }

    /// Events were lost since the last reconcile: the caller should take a snapshot and
    /// [`reconcile`](Self::reconcile) (a replay cannot; the summary says so).
    pub fn needs_reconcile(&self) -> bool {
        self.needs_reconcile
    }

    /// The earliest time a `tick` could produce a finding or retire an entry; `None` when
    /// nothing is outstanding (so an idle live tracer need not wake up).
    pub fn next_deadline(&self) -> Option<u64> {
        // Retirement needs no wake-up: an idle table does not grow, and the next event's
        // tick retires what is due.
        match (self.zombies.next_deadline(), self.signals.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Processes one event and the deadlines that passed before it: what a replay or live
    /// tracer calls per event. Findings come in time order.
    pub fn feed(&mut self, event: &Event) -> Vec<Finding> {
        let mut out = Vec::new();
        self.tick_into(event.ts_ns, &mut out);
        self.observe_into(event, &mut out);
        out
    }

    /// Fires the deadlines that have passed by `now_ns` (zombie-after, blocked-after) and
    /// retires entries past the retention window.
    pub fn tick(&mut self, now_ns: u64) -> Vec<Finding> {
        let mut out = Vec::new();
        self.tick_into(now_ns, &mut out);
        out
    }

    /// [`tick`](Self::tick), its findings added to `out`.
    fn tick_into(&mut self, now_ns: u64, out: &mut Vec<Finding>) {
        self.now = self.now.max(now_ns);
        let from = out.len();
        if self.zombies.next_deadline().is_some_and(|d| d <= self.now) {
            self.zombie_deadlines(out);
        }
        if self.signals.next_deadline().is_some_and(|d| d <= self.now) {
            self.blocked_deadlines(out);
            self.settle_deadlines(out);
        }
        self.sweep_signals();
        if let Some(cutoff) = self.now.checked_sub(self.config.retention_ns) {
            self.table.retire_until(cutoff);
        }
        self.count(out, from);
    }

    /// The end of the input: closes what is still open (bursts of merged signals, targets gone
    /// with signals pending that were waiting for late records).
    pub fn finish(&mut self) -> Vec<Finding> {
        let mut out = Vec::new();
        self.flush_bursts(&mut out);
        self.count(&mut out, 0);
        out
    }

    /// Drops the findings from `from` on outside the scope and counts the rest for the
    /// summary; inline, since nearly every event has none.
    #[inline]
    fn count(&mut self, findings: &mut Vec<Finding>, from: usize) {
        if findings.len() > from {
            self.count_some(findings, from);
        }
    }

    fn count_some(&mut self, findings: &mut Vec<Finding>, from: usize) {
        if let Some(scope) = &self.scope {
            let mut i = 0;
            findings.retain(|f| {
                i += 1;
                i <= from || f.pids().any(|pid| scope.contains(&pid))
            });
        }
        let findings = &findings[from..];
        for f in findings.iter() {
            *self.counters.findings.entry(f.kind()).or_default() += 1;
        }
        for f in findings.iter() {
            if let Finding::SignalDropped(s) = f {
                self.signals.count_drop(s.reason, s.sig.0, s.count);
            }
        }
    }

    /// Updates the table with one event; returns the findings it causes.
    pub fn observe(&mut self, event: &Event) -> Vec<Finding> {
        let mut out = Vec::new();
        self.observe_into(event, &mut out);
        out
    }

    /// [`observe`](Self::observe), its findings added to `out`.
    fn observe_into(&mut self, event: &Event, out: &mut Vec<Finding>) {
        self.now = self.now.max(event.ts_ns);
        self.last_event_ns = self.last_event_ns.max(event.ts_ns);
        self.start_ns.get_or_insert(event.ts_ns);
        if self.signals.saw_cpu(event.task.cpu, event.ts_ns) {
            self.let_go_released();
        }
        self.counters.events[event.data.kind() as usize] += 1;
        let from = out.len();
        match &event.data {
            EventData::Fork(fork) if !fork.thread => self.on_fork(event, fork),
            EventData::Fork(_) => {
                self.process(&event.task, event.ts_ns);
            }
            EventData::Exec(exec) => {
                let idx = self.process(&event.task, event.ts_ns);
                let p = self.table.at_mut(idx);
                p.record_exec(event.ts_ns, &exec.filename);
                p.comm = event.task.comm;
            }
            EventData::Exit(exit) => {
                let idx = self.process(&event.task, event.ts_ns);
                if exit.process {
                    self.on_exit(idx, event.ts_ns, exit.status.status, out);
                }
            }
            EventData::Wait(wait) => {
                let idx = self.process(&event.task, event.ts_ns);
                let p = self.table.at_mut(idx);
                p.last_wait_ns = event.ts_ns;
                // Any child: wait4(-1) / waitid(P_ALL). A pgid wait (< -1 or P_PGID) may
                // also cover the zombie, but cannot be checked without pgids: not counted.
                let any = match wait.which {
                    Some(which) => which == 0,
                    None => wait.upid == -1,
                };
                if any {
                    p.last_wait_any_ns = event.ts_ns;
                }
            }
            EventData::Reap(reap) => self.on_reap(event, reap, out),
            EventData::Signal(sig) => self.on_signal(event, sig, out),
            EventData::SignalDeliver(d) => self.on_deliver(event, d, out),
            EventData::SignalBurst(b) => self.on_signal_burst(event, b, out),
            EventData::DeliverBurst(d) => self.on_deliver_burst(event, d, out),
            EventData::Lost(lost) => {
                self.counters.lost = self.counters.lost.saturating_add(lost.count);
                self.needs_reconcile = true;
                self.signals.lost();
            }
        }
        self.count(out, from);
    }

    /// The entry an event header names, created from the header when the table does not
    /// know it; checks the header's parent against the table's.
    fn process(&mut self, task: &Task, ts_ns: u64) -> u32 {
        if let Some(idx) = self.table.lookup(task.pid, task.start_ns) {
            let p = self.table.at_mut(idx);
            // The comm changes at exec and with prctl(PR_SET_NAME): the latest header wins.
            p.comm = task.comm;
            p.flags &= !flag::PLACEHOLDER;
            p.cgroup_id = task.cgroup_id;
            if task.pidns != 0 {
                p.pidns = task.pidns;
                p.ns_pid = task.ns_pid;
            }
            self.confirm_parent(idx, task.ppid, ts_ns);
            return idx;
        }
        self.counters.unknown_processes += 1;
        self.forget_pid_reused(task.pid, ts_ns);
        let mut p = Proc::new(task.pid, task.start_ns, task.comm);
        p.ns_pid = task.ns_pid;
        p.pidns = task.pidns;
        p.cgroup_id = task.cgroup_id;
        p.parent = self.table.current(task.ppid).unwrap_or(NONE);
        let idx = self.table.insert(p);
        self.note_ns_init(idx);
        idx
    }

    /// A new incarnation of `pid` appeared: an older one the table still thinks unreaped must
    /// have been released unseen.
    fn forget_pid_reused(&mut self, pid: u32, ts_ns: u64) {
        if let Some(old) = self.table.current(pid)
            && !self.table.at(old).has(flag::REAPED)
        {
            self.mark_exit_missed(old, ts_ns);
        }
    }

    /// Records that `idx` is gone without its exit or release seen.
    fn mark_exit_missed(&mut self, idx: u32, ts_ns: u64) {
        self.counters.exits_missed += 1;
        let p = self.table.at_mut(idx);
        let was_zombie = p.is_zombie();
        let reported = p.has(flag::ZOMBIE_REPORTED);
        p.flags |= flag::EXIT_MISSED | flag::REAPED;
        if !p.has(flag::EXITED) {
            p.flags |= flag::EXITED;
            p.exit_ns = ts_ns;
        }
        p.reaped_ns = ts_ns;
        let parent = p.parent;
        if parent != NONE && was_zombie {
            let pp = self.table.at_mut(parent);
            pp.zombies_held = pp.zombies_held.saturating_sub(1);
            if reported {
                pp.zombies_reported = pp.zombies_reported.saturating_sub(1);
            }
        }
        // Its children were reparented somewhere unseen; the next event or snapshot says
        // where.
        for child in self.table.children(idx) {
            self.table.set_parent(child, NONE);
        }
        self.table.unlink(idx);
        self.table.retire_later(idx, ts_ns);
    }

    fn note_ns_init(&mut self, idx: u32) {
        let p = self.table.at(idx);
        if p.ns_pid == 1 && p.pidns != 0 {
            let pidns = p.pidns;
            self.table.at_mut(idx).flags |= flag::NS_INIT;
            self.ns_inits.insert(pidns, idx);
        }
    }

    /// Widens the scope to `pids` and, from now on, every process they start.
    pub fn widen_scope(&mut self, pids: &[u32]) {
        self.scope.get_or_insert_default().extend(pids);
    }

    fn on_fork(&mut self, event: &Event, fork: &crate::event::Fork) {
        if let Some(scope) = &mut self.scope
            && scope.contains(&event.task.pid)
        {
            scope.insert(fork.child_pid);
        }
        let forker = self.process(&event.task, event.ts_ns);
        if self
            .table
            .newest_if(fork.child_pid, fork.child_start_ns)
            .is_some()
        {
            // Already known: read from /proc by a bootstrap that ran after the fork.
            return;
        }
        self.forget_pid_reused(fork.child_pid, event.ts_ns);
        let parent = if fork.child_ppid == event.task.pid {
            forker
        } else {
            // CLONE_PARENT / CLONE_THREAD-less siblings: the real parent is another process.
            self.table.current(fork.child_ppid).unwrap_or(NONE)
        };
        let mut p = Proc::new(fork.child_pid, fork.child_start_ns, event.task.comm);
        p.ns_pid = fork.child_ns_pid;
        p.pidns = fork.child_pidns;
        p.cgroup_id = event.task.cgroup_id;
        p.parent = parent;
        p.flags |= flag::BORN_IN_TRACE;
        let idx = self.table.insert(p);
        self.note_ns_init(idx);
    }

    /// Loads what /proc showed when the trace started. Call it once, after the event source
    /// is open and before its first event, so nothing falls between the two.
    pub fn bootstrap(&mut self, snap: &Snapshot) {
        self.table.set_ns_per_tick(snap.ns_per_tick);
        self.start_ns = Some(snap.taken_ns);
        self.now = self.now.max(snap.taken_ns);
        self.learn_cgroups(snap);
        // Parents first would need a topological order; insert all, then link.
        let mut idxs = Vec::with_capacity(snap.procs.len());
        for info in &snap.procs {
            if self.table.lookup(info.pid, info.start_ns).is_some() {
                idxs.push(NONE);
                continue;
            }
            let idx = self.table.insert(self.proc_from_info(info, snap.taken_ns));
            self.note_ns_init(idx);
            idxs.push(idx);
        }
        for (info, &idx) in snap.procs.iter().zip(&idxs) {
            if idx == NONE {
                continue;
            }
            if let Some(parent) = self.table.current(info.ppid) {
                self.table.set_parent(idx, parent);
                if self.table.at(idx).is_zombie() {
                    self.table.at_mut(parent).zombies_held += 1;
                    self.zombies.schedule(
                        idx,
                        self.table.at(idx).start_ns,
                        snap.taken_ns + self.config.zombie_after_ns,
                    );
                }
            }
        }
    }

    fn learn_cgroups(&mut self, snap: &Snapshot) {
        for info in &snap.procs {
            if info.cgroup_id != 0 {
                self.containers
                    .entry(info.cgroup_id)
                    .or_insert_with(|| container_of(&info.cgroup));
            }
        }
    }

    /// Tells the engine which container a cgroup id belongs to (for cgroups created after the
    /// snapshot; the live tracer resolves them from /sys/fs/cgroup).
    pub fn learn_cgroup(&mut self, cgroup_id: u64, path: &str) {
        self.containers.insert(cgroup_id, container_of(path));
    }

    /// Whether the engine has a container answer for a cgroup id.
    pub fn knows_cgroup(&self, cgroup_id: u64) -> bool {
        self.containers.contains_key(&cgroup_id)
    }

    fn proc_from_info(&self, info: &snapshot::ProcInfo, taken_ns: u64) -> Proc {
        let mut p = Proc::new(info.pid, info.start_ns, Comm::from(info.comm.as_str()));
        p.ns_pid = info.ns_pid;
        p.pidns = info.pidns;
        p.cgroup_id = info.cgroup_id;
        p.flags |= flag::START_FROM_PROC;
        if let Some(exe) = &info.exe {
            p.record_exec(0, exe);
        }
        match info.state {
            'Z' | 'X' => {
                p.flags |= flag::EXITED | flag::EXIT_BEFORE_TRACE;
                p.exit_ns = taken_ns;
                p.exit_status = info.exit_status;
            }
            'T' | 't' => p.flags |= flag::STOPPED,
            _ => {}
        }
        p
    }

    /// Checks the table against a fresh /proc snapshot after events were lost: processes it
    /// thinks alive that /proc lacks (or has with another start time) are marked "exit
    /// missed"; zombies it did not know of are scheduled; processes it never saw are added.
    pub fn reconcile(&mut self, snap: &Snapshot) -> Vec<Finding> {
        self.counters.reconciles += 1;
        self.needs_reconcile = false;
        self.now = self.now.max(snap.taken_ns);
        self.learn_cgroups(snap);
        let mut by_pid: HashMap<u32, &snapshot::ProcInfo> = HashMap::new();
        for info in &snap.procs {
            by_pid.insert(info.pid, info);
        }
        let ns_per_tick = snap.ns_per_tick.max(1);
        let mut out = Vec::new();
        let all: Vec<u32> = self.table.indexes().collect();
        for idx in all {
            let Some(p) = self.table.get(idx) else {
                continue;
            };
            if p.has(flag::REAPED) {
                continue;
            }
            let seen = by_pid
                .get(&p.pid)
                .filter(|info| info.start_ns / ns_per_tick == p.start_ns / ns_per_tick);
            match seen {
                None => self.mark_exit_missed(idx, snap.taken_ns),
                Some(info) if info.state == 'Z' && p.is_alive() => {
                    // Its exit was lost: a zombie from now on, at least.
                    self.counters.exits_missed += 1;
                    let status = info.exit_status;
                    let p = self.table.at_mut(idx);
                    p.flags |= flag::EXIT_MISSED | flag::EXIT_BEFORE_TRACE;
                    self.on_exit(idx, snap.taken_ns, status, &mut out);
                }
                Some(_) => {}
            }
        }
        // New processes and real parents.
        for info in &snap.procs {
            let idx = match self.table.lookup(info.pid, info.start_ns) {
                Some(idx) => idx,
                None => {
                    self.forget_pid_reused(info.pid, snap.taken_ns);
                    let idx = self.table.insert(self.proc_from_info(info, snap.taken_ns));
                    self.note_ns_init(idx);
                    if self.table.at(idx).is_zombie() {
                        self.zombies.schedule(
                            idx,
                            info.start_ns,
                            snap.taken_ns + self.config.zombie_after_ns,
                        );
                    }
                    idx
                }
            };
            if let Some(parent) = self.table.current(info.ppid)
                && self.table.at(idx).parent != parent
                && !self.table.at(idx).has(flag::REAPED)
            {
                let zombie = self.table.at(idx).is_zombie();
                let old = self.table.at(idx).parent;
                if zombie && old != NONE {
                    let o = self.table.at_mut(old);
                    o.zombies_held = o.zombies_held.saturating_sub(1);
                }
                self.table.set_parent(idx, parent);
                if zombie {
                    self.table.at_mut(parent).zombies_held += 1;
                }
            }
        }
        self.count(&mut out, 0);
        out
    }

    /// A process as findings name it.
    fn proc_ref(&self, idx: u32) -> ProcRef {
        let p = self.table.at(idx);
        ProcRef {
            pid: p.pid,
            comm: p.comm,
            start_ns: p.start_ns,
            ns_pid: p.ns_pid,
            pidns: p.pidns,
            ns_init: p.has(flag::NS_INIT),
            container: self.containers.get(&p.cgroup_id).cloned().flatten(),
        }
    }

    /// A process known only by pid (its entry was retired or never made).
    fn unknown_ref(pid: u32, comm: Comm) -> ProcRef {
        ProcRef {
            pid,
            comm,
            start_ns: 0,
            ns_pid: pid,
            pidns: 0,
            ns_init: false,
            container: None,
        }
    }

    /// The state of the table and the detectors, for the end of a run.
    pub fn summary(&self) -> Summary {
        Summary::of(self)
    }
}
