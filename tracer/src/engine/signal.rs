//! The dropped-signal detector: signals ignored by a namespace init or by the target, merged
//! into one already pending, refused by a full queue, pending until the target died, or
//! blocked for longer than `--blocked-after`.
//!
//! Signals are tracked per (target pid, signal) as counts: instances sent and not yet seen
//! delivered, instances merged into a pending one. Counts, not order, because of bursts: the
//! probes count repeats of one signal event per CPU and write them as one `signal_burst` or
//! `deliver_burst` record later (tens of milliseconds; see `tracer_common::SignalRuns`), so a
//! burst of sends can arrive after the deliveries of the signals it counts (sender and target
//! on two CPUs, or the sender moved), and a burst of deliveries after the target's exit (the
//! target moved). Hence three allowances, each good for [`SETTLE_NS`]:
//! - deliveries seen with nothing pending are kept as credit, which a burst of sends that began
//!   before them uses before it counts anything as pending;
//! - signals merged into one pending when none is counted assume one (sent before the trace, or
//!   in a burst still to come, which then accounts for it);
//! - a target that exits within [`SETTLE_NS`] of a delivery of a signal it still has pending
//!   is reported `target_exited` only that much later, if the deliveries do not arrive first.
//!
//! Plain `signal` and `signal_deliver` records are written as they happen, so they need none
//! of this: a send is always read before its delivery. Burst records are written late but
//! never lost, so the counts stay exact: every merged signal is in one `coalesced` count, every
//! refused or ignored one in one `queue_overflow` or `ignored` count.
//!
//! An entry whose target is released is kept only while a burst could still come for it. The
//! probes count repeats of a plain record only on the CPU that wrote it, only until
//! `SIGNAL_RUN_NS` after it, and write the counts before the next record that CPU writes; so
//! once a record from that CPU at least that much later has been read, no burst can follow
//! (each event says its CPU, log format 4). Without CPUs (older logs), or after a loss, entries
//! are kept for twice [`SETTLE_NS`] instead.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap, VecDeque, hash_map},
};

use tracer_common::SIGNAL_RUN_NS;

use super::{
    Engine, Finding,
    findings::{DropReason, ProcRef, SignalDropped},
    table::flag,
};
use crate::{
    event::{
        Comm, DeliverBurst, Disposition, Event, ExitStatus, Sig, Signal, SignalBurst,
        SignalDeliver, SignalResult, SignalTarget,
    },
    signals::default_ignored,
};

const SIGKILL: u32 = 9;
const SIGCONT: u32 = 18;
/// si_code of signals the kernel sends for itself (`SEND_SIG_PRIV`).
const SI_KERNEL: i32 = 0x80;

/// How long the engine allows for burst records the probes write late (at most tens of
/// milliseconds, see `tracer_common::SIGNAL_RUN_NS` and the tracer's nudges) before it
/// concludes from their absence.
pub const SETTLE_NS: u64 = 1_000_000_000;

/// Most CPUs whose records are followed: events from a higher one count as from an unknown
/// CPU (a log could say anything).
const MAX_CPUS: u32 = 8192;

/// Whether the probes may still be counting repeats of an entry's plain records of one kind,
/// to be written later as a burst.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Run {
    /// No plain record seen.
    #[default]
    None,
    /// The latest plain record was written on `cpu` at `start_ns`; earlier ones on other CPUs
    /// can no longer be counted.
    On { cpu: u32, start_ns: u64 },
    /// Not known: a record without a CPU, plain records on two CPUs whose runs may both be
    /// open, or a burst whose first record made no entry.
    Unknown,
}

/// When the entry of a released target can go.
enum Release {
    Now,
    /// Once the runs its plain records may have opened have closed; not before this one (the
    /// first still open).
    WhenRunsClose(Run),
    /// Only when idle for twice [`SETTLE_NS`] (late records may still come and matter).
    BySweep,
}

/// The entry of a released target, kept out of `entries` until no burst can come for it.
struct Released {
    key: (u32, u32),
    entry: Waiting,
}

enum Waiting {
    Here(Idle),
    /// Taken back into `entries` by a late record for its target: it goes from there as it
    /// would from here, or with the sweep if it is busy again.
    TakenBack {
        target: u32,
        target_start: u64,
    },
}

/// The part of an entry that a late record can still need once the entry is idle (see
/// [`Entry::idle`]): the rest is about the instance it last tracked, which a record that
/// makes one pending sets anew (and one merged into the instance seen delivered reports with
/// its own sender).
#[derive(Clone, Copy, Debug)]
struct Idle {
    target: u32,
    target_start: u64,
    gone_ns: Option<u64>,
    delivered_ns: u64,
    sent_ns: u64,
    credit_ns: u64,
    generate_run: Run,
    deliver_run: Run,
}

impl Idle {
    fn of(e: &Entry) -> Self {
        Self {
            target: e.target,
            target_start: e.target_start,
            gone_ns: e.gone_ns,
            delivered_ns: e.delivered_ns,
            sent_ns: e.sent_ns,
            credit_ns: e.credit_ns,
            generate_run: e.generate_run,
            deliver_run: e.deliver_run,
        }
    }

    /// It is about process `target`, which started at `start`.
    fn is_about(&self, target: u32, start: u64) -> bool {
        self.target == target && self.target_start == start
    }

    /// The latest send, delivery or credit seen, or the target's exit.
    fn last_seen_ns(&self) -> u64 {
        self.sent_ns
            .max(self.delivered_ns)
            .max(self.credit_ns)
            .max(self.gone_ns.unwrap_or(0))
    }

    /// When it can go (its target released): once no burst can come for it.
    fn release(&self, runs_uncertain: bool, cpu_seen_ns: &[u64]) -> Release {
        if self.gone_ns.is_none() {
            // Its exit was never seen: no late record waits for it.
            return Release::Now;
        }
        let runs = [self.generate_run, self.deliver_run];
        if runs_uncertain || runs.contains(&Run::Unknown) {
            return Release::BySweep;
        }
        match runs.into_iter().find(|&run| !closed(cpu_seen_ns, run)) {
            None => Release::Now,
            Some(open) => Release::WhenRunsClose(open),
        }
    }

    /// The entry again, with no instance.
    fn entry(self) -> Entry {
        Entry {
            delivered_ns: self.delivered_ns,
            sent_ns: self.sent_ns,
            credit_ns: self.credit_ns,
            generate_run: self.generate_run,
            deliver_run: self.deliver_run,
            ..Entry::new(self.target, self.target_start, self.gone_ns)
        }
    }
}

/// One (target, signal): what was sent and not yet seen delivered, and what is needed to match
/// records that arrive out of order.
#[derive(Clone, Debug)]
struct Entry {
    target: u32,
    target_start: u64,
    /// The instance pending the longest: when it was sent, by whom, how.
    first_ns: u64,
    sender: ProcRef,
    si_code: i32,
    disposition: Disposition,
    blocked: bool,
    blocked_reported: bool,
    /// Instances sent and not yet seen delivered (more than one: real-time signals queue).
    pending: u64,
    /// Instances assumed pending (and counted in `pending`) because signals were merged into
    /// them, their sends not seen: sent before the trace, or counted in a burst still to come,
    /// which then accounts for them (delivered since or not). The latest assumed at
    /// `assumed_ns`; forgotten [`SETTLE_NS`] later.
    assumed: u64,
    assumed_ns: u64,
    /// Instances merged into a pending one, not yet reported.
    merged: u64,
    /// Deliveries seen while nothing was pending (the latest at `credit_ns`): a burst of sends
    /// written after them may be what they delivered.
    credit: u64,
    credit_ns: u64,
    /// The latest delivery seen (0: none).
    delivered_ns: u64,
    /// The latest send seen.
    sent_ns: u64,
    /// The target exited at this time; what is still pending is reported
    /// [`SETTLE_NS`] later unless late deliveries arrive first.
    gone_ns: Option<u64>,
    settle_scheduled: bool,
    /// Runs the plain sends and deliveries seen may have opened.
    generate_run: Run,
    deliver_run: Run,
}

impl Entry {
    /// An entry about process `target` that has seen nothing yet.
    fn new(target: u32, target_start: u64, gone_ns: Option<u64>) -> Self {
        Self {
            target,
            target_start,
            first_ns: 0,
            sender: Engine::unknown_ref(0, Comm::from("?")),
            si_code: 0,
            disposition: Disposition::Default,
            blocked: false,
            blocked_reported: false,
            pending: 0,
            assumed: 0,
            assumed_ns: 0,
            merged: 0,
            credit: 0,
            credit_ns: 0,
            delivered_ns: 0,
            sent_ns: 0,
            gone_ns,
            settle_scheduled: false,
            generate_run: Run::None,
            deliver_run: Run::None,
        }
    }

    /// A finding about the instance this entry tracks (its sender, si_code, disposition),
    /// pending from its `first_ns` until `until_ns`.
    fn dropped(
        &self,
        reason: DropReason,
        sig: u32,
        ts_ns: u64,
        target: ProcRef,
        count: Option<u64>,
        until_ns: u64,
    ) -> Finding {
        Finding::SignalDropped(SignalDropped {
            ts_ns,
            reason,
            sig: Sig(sig),
            si_code: self.si_code,
            sender: self.sender.clone(),
            from_kernel: self.si_code > 0,
            target,
            disposition: self.disposition,
            count,
            pending_ns: Some(until_ns.saturating_sub(self.first_ns)),
            children: Vec::new(),
        })
    }

    /// It is about process `target`, which started at `start` (and not an earlier or later
    /// process with its pid).
    fn is_about(&self, target: u32, start: u64) -> bool {
        self.target == target && self.target_start == start
    }

    /// When it can go, its target released: by the sweep while it is still busy with a target
    /// whose exit was seen, else as [`Idle::release`] says.
    fn release(&self, runs_uncertain: bool, cpu_seen_ns: &[u64]) -> Release {
        if self.gone_ns.is_some() && !self.idle() {
            return Release::BySweep;
        }
        Idle::of(self).release(runs_uncertain, cpu_seen_ns)
    }

    /// Nothing pending, merged, assumed or credited: only a late burst could still change it.
    fn idle(&self) -> bool {
        self.pending == 0
            && self.merged == 0
            && self.assumed == 0
            && self.credit == 0
            && !self.settle_scheduled
    }
}

/// Signals sent, as one `signal` event or one `signal_burst` says.
struct Sent<'a> {
    /// When the first and the last were sent (the same for one).
    first_ns: u64,
    ts: u64,
    burst: bool,
    sig: u32,
    si_code: i32,
    disposition: Disposition,
    blocked: bool,
    target: &'a SignalTarget,
    /// By result (delivered and delivered-without-siginfo together).
    delivered: u64,
    ignored: u64,
    already_pending: u64,
    overflow: u64,
}

#[derive(Default)]
pub struct Signals {
    /// (target pid, signal) → what is tracked.
    entries: HashMap<(u32, u32), Entry, super::table::FastHash>,
    /// Blocked-after deadlines: (deadline, target pid, signal, first_ns).
    deadlines: BinaryHeap<Reverse<(u64, u32, u32, u64)>>,
    /// Targets gone with signals pending: (deadline, target pid, signal, gone_ns).
    settles: BinaryHeap<Reverse<(u64, u32, u32, u64)>>,
    /// When idle entries are next looked for and dropped.
    next_sweep_ns: u64,
    /// The latest event time read from each CPU (index: CPU number).
    cpu_seen_ns: Vec<u64>,
    /// Events were lost: a plain record that opened a run may be among them, so no entry is
    /// let go early from now on.
    runs_uncertain: bool,
    /// Runs of plain sends that made no entry (a fatal default signal, an ignored one), which
    /// an entry made later must know of: (target pid, signal) → (target start, run).
    untracked_runs: HashMap<(u32, u32), (u64, Run), super::table::FastHash>,
    /// Entries of released targets waiting for their runs to close, oldest first. They are
    /// moved here, out of `entries`, when their target is released: `entries` then holds only
    /// what live targets need, and stays small and in cache however many wait here, and they
    /// are let go in the order they came. A late record for a released target looks here
    /// (its bit in [`Proc::signals_tracked`](super::table::Proc::signals_tracked) says to).
    released: VecDeque<Released>,
    /// The open run the front of `released` was last found waiting for: the front is not
    /// looked at again before it closes. Records only move an entry's runs later, so it
    /// cannot go any sooner.
    front_waits: Option<Run>,
    /// Dropped signals by reason and signal, for the summary.
    pub drops: BTreeMap<(DropReason, u32), u64>,
}

impl Signals {
    pub fn next_deadline(&self) -> Option<u64> {
        let blocked = self.deadlines.peek().map(|Reverse((d, ..))| *d);
        let settle = self.settles.peek().map(|Reverse((d, ..))| *d);
        match (blocked, settle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counts the signals a finding says were dropped (`count` of them, else one).
    pub fn count_drop(&mut self, reason: DropReason, sig: u32, count: Option<u64>) {
        let n = self.drops.entry((reason, sig)).or_default();
        *n = n.saturating_add(count.unwrap_or(1));
    }

    /// Signals tracked as pending (their targets alive, or gone and being settled).
    pub fn pending_len(&self) -> usize {
        self.entries.values().filter(|e| e.pending > 0).count()
    }

    /// (target, signal) entries held, pending or not, those of released targets included.
    pub fn entries_len(&self) -> usize {
        let waiting = |r: &&Released| matches!(r.entry, Waiting::Here(_));
        self.entries.len() + self.released.iter().filter(waiting).count()
    }

    /// A record from `cpu` at `ts` was read: whatever that CPU counted before `ts` has been
    /// written. True when a released target's entry may now go: the run the oldest one waits
    /// for has closed, or it waits for none known.
    pub fn saw_cpu(&mut self, cpu: Option<u32>, ts: u64) -> bool {
        let Some(cpu) = known_cpu(cpu) else {
            return false;
        };
        let i = cpu as usize;
        if i >= self.cpu_seen_ns.len() {
            self.cpu_seen_ns.resize(i + 1, 0);
        }
        self.cpu_seen_ns[i] = self.cpu_seen_ns[i].max(ts);
        // After a loss no run is known to close: the sweep lets them go.
        !self.released.is_empty()
            && !self.runs_uncertain
            && self
                .front_waits
                .is_none_or(|run| closed(&self.cpu_seen_ns, run))
    }

    /// Events were lost.
    pub fn lost(&mut self) {
        self.runs_uncertain = true;
        // No run is waited for any more: the next event looks at the front again.
        self.front_waits = None;
    }

    /// `run` after a plain record from `cpu` at `ts`.
    fn opened(&self, run: Run, cpu: Option<u32>, ts: u64) -> Run {
        let Some(cpu) = known_cpu(cpu) else {
            return Run::Unknown;
        };
        match run {
            Run::On { cpu: c, start_ns } if c == cpu => Run::On {
                cpu,
                start_ns: start_ns.max(ts),
            },
            Run::Unknown => Run::Unknown,
            run if closed(&self.cpu_seen_ns, run) => Run::On { cpu, start_ns: ts },
            _ => Run::Unknown,
        }
    }
}

/// `cpu`, unless absent or beyond [`MAX_CPUS`].
fn known_cpu(cpu: Option<u32>) -> Option<u32> {
    cpu.filter(|&c| c < MAX_CPUS)
}

/// No repeats can still be counted in `run`, or written later: its CPU wrote a record
/// `SIGNAL_RUN_NS` or more after it opened.
fn closed(cpu_seen_ns: &[u64], run: Run) -> bool {
    match run {
        Run::None => true,
        Run::On { cpu, start_ns } => cpu_seen_ns
            .get(cpu as usize)
            .is_some_and(|&seen| seen >= start_ns.saturating_add(SIGNAL_RUN_NS)),
        Run::Unknown => false,
    }
}

/// Stop signals, whose default action stops the process.
fn is_stop(sig: u32) -> bool {
    matches!(sig, 19..=22)
}

/// A count as findings carry it: absent for one.
fn count_of(n: u64) -> Option<u64> {
    (n > 1).then_some(n)
}

impl Engine {
    pub(super) fn on_signal(&mut self, event: &Event, s: &Signal, out: &mut Vec<Finding>) {
        let one = |result| u64::from(s.result == result);
        let sent = Sent {
            first_ns: event.ts_ns,
            ts: event.ts_ns,
            burst: false,
            sig: s.sig.0,
            si_code: s.si_code,
            disposition: s.target.disposition,
            blocked: s.blocked,
            target: &s.target,
            delivered: one(SignalResult::Delivered) + one(SignalResult::LostInfo),
            ignored: one(SignalResult::Ignored),
            already_pending: one(SignalResult::AlreadyPending),
            overflow: one(SignalResult::Overflow),
        };
        self.on_sent(event, &sent, out);
    }

    pub(super) fn on_signal_burst(
        &mut self,
        event: &Event,
        b: &SignalBurst,
        out: &mut Vec<Finding>,
    ) {
        let sent = Sent {
            first_ns: b.first_ns.min(event.ts_ns),
            ts: event.ts_ns,
            burst: true,
            sig: b.sig.0,
            si_code: b.si_code,
            disposition: b.target.disposition,
            // A pending one may have found it blocked: tracked as blocked, and reported as
            // such if it stays pending past --blocked-after.
            blocked: b.blocked_count > 0,
            target: &b.target,
            delivered: b.delivered.saturating_add(b.lost_info),
            ignored: b.ignored,
            already_pending: b.already_pending,
            overflow: b.overflow,
        };
        self.on_sent(event, &sent, out);
    }

    fn on_sent(&mut self, event: &Event, s: &Sent, out: &mut Vec<Finding>) {
        let ts = s.ts;
        let sig = s.sig;
        let sender = self.process(&event.task, ts);
        let target = self.signal_target(s.target, ts);
        if matches!(sig, SIGCONT | SIGKILL) {
            self.table.at_mut(target).flags &= !flag::STOPPED;
        }
        // The kernel's own SIGKILLs (a group exit killing the other threads, a namespace's
        // teardown, the OOM killer) are how processes die, not signals anyone meant to send.
        if sig == SIGKILL && s.si_code == SI_KERNEL {
            return;
        }
        let quiet = default_ignored(sig) && !self.config.all_signals;
        let dropped = |engine: &Self, reason, count| SignalDropped {
            ts_ns: ts,
            reason,
            sig: Sig(sig),
            si_code: s.si_code,
            sender: engine.proc_ref(sender),
            from_kernel: s.si_code > 0,
            target: engine.proc_ref(target),
            disposition: s.disposition,
            count: count_of(count),
            pending_ns: None,
            children: Vec::new(),
        };
        if s.ignored > 0 {
            let init = s.target.ns_pid == 1;
            let reason = match s.disposition {
                Disposition::Default if init && !default_ignored(sig) => {
                    Some(DropReason::IgnoredByInit)
                }
                _ if quiet => None,
                Disposition::Ignore => Some(DropReason::Ignored),
                _ if init => Some(DropReason::IgnoredByInit),
                // Default or handler, yet ignored: the target was already exiting.
                _ => Some(DropReason::Ignored),
            };
            if let Some(reason) = reason {
                let mut f = dropped(self, reason, s.ignored);
                if reason == DropReason::IgnoredByInit {
                    f.children = self
                        .table
                        .children(target)
                        .into_iter()
                        .filter(|&c| self.table.at(c).is_alive())
                        .map(|c| self.proc_ref(c))
                        .collect();
                    f.children.sort_by_key(|c| c.pid);
                }
                out.push(Finding::SignalDropped(f));
            }
        }
        if s.overflow > 0 {
            out.push(Finding::SignalDropped(dropped(
                self,
                DropReason::QueueOverflow,
                s.overflow,
            )));
        }
        // Tracked until delivered: signals it blocks, and those a handler will take. A fatal
        // default one is acted on at once (its "delivery" is the exit); a stop or
        // ignored-by-default one needs no delivery to be seen. Default-ignored ones (a SIGCHLD
        // to a handler, very common) only with --all-signals.
        let track = (s.blocked || s.disposition == Disposition::Handler) && sig != SIGKILL;
        if quiet || (s.delivered == 0 || !track) && s.already_pending == 0 {
            if !quiet && !s.burst {
                self.untracked_send(s.target.pid, sig, target, event.task.cpu, ts);
            }
            return;
        }
        let created = self.entry(s.target.pid, sig, target, ts, out);
        self.sent_run((s.target.pid, sig), s.burst, created, event.task.cpu, ts);
        if s.delivered > 0 && track {
            self.sent_pending(s, sender, out);
        }
        if s.already_pending > 0 {
            self.sent_merged(s, sender, out);
        }
    }

    /// A plain send that needs no entry: the run it may open is noted where an entry made
    /// later for its target finds it.
    fn untracked_send(&mut self, pid: u32, sig: u32, target: u32, cpu: Option<u32>, ts: u64) {
        let start = self.table.at(target).start_ns;
        if let Some(e) = self.signals.entries.get(&(pid, sig))
            && e.target == target
            && e.target_start == start
        {
            let run = self.signals.opened(e.generate_run, cpu, ts);
            self.signals
                .entries
                .get_mut(&(pid, sig))
                .expect("present")
                .generate_run = run;
            return;
        }
        let before = match self.signals.untracked_runs.get(&(pid, sig)) {
            Some(&(s, run)) if s == start => run,
            _ => Run::None,
        };
        let run = self.signals.opened(before, cpu, ts);
        self.signals.untracked_runs.insert((pid, sig), (start, run));
    }

    /// Notes the run a send may have opened in its entry (`created` by it or not).
    fn sent_run(&mut self, key: (u32, u32), burst: bool, created: bool, cpu: Option<u32>, ts: u64) {
        let e = self.signals.entries.get(&key).expect("made by entry()");
        let mut run = e.generate_run;
        if created {
            // Plain sends to this target that made no entry.
            run = match self.signals.untracked_runs.remove(&key) {
                Some((start, run)) if start == e.target_start => run,
                // A burst whose plain record was not seen: before the trace, or lost.
                _ if burst => Run::Unknown,
                _ => Run::None,
            };
        }
        if !burst {
            run = self.signals.opened(run, cpu, ts);
        }
        self.signals
            .entries
            .get_mut(&key)
            .expect("present")
            .generate_run = run;
    }

    /// Instances now pending: those a burst sent after deliveries already seen are what those
    /// delivered, the rest are pending.
    fn sent_pending(&mut self, s: &Sent, sender: u32, out: &mut Vec<Finding>) {
        let key = (s.target.pid, s.sig);
        let e = self.signals.entries.get_mut(&key).expect("made by entry()");
        let mut n = s.delivered;
        if s.burst && e.credit > 0 && e.credit_ns >= s.first_ns {
            let used = e.credit.min(n);
            e.credit -= used;
            n -= used;
        }
        if s.burst
            && e.assumed > 0
            && s.first_ns <= e.assumed_ns
            && s.ts < e.assumed_ns.saturating_add(SETTLE_NS)
        {
            // Sent before the merges that made us assume them: these are they.
            let found = e.assumed.min(n);
            e.assumed -= found;
            n -= found;
        }
        e.sent_ns = e.sent_ns.max(s.ts);
        if n == 0 {
            return;
        }
        if e.pending == 0 {
            self.start_instance(key, s, sender);
        }
        let e = self.signals.entries.get_mut(&key).expect("present");
        e.pending = e.pending.saturating_add(n);
        self.settle_if_gone(key, s.ts, out);
    }

    /// Instances merged into a pending one.
    fn sent_merged(&mut self, s: &Sent, sender: u32, out: &mut Vec<Finding>) {
        let key = (s.target.pid, s.sig);
        let e = self.signals.entries.get_mut(&key).expect("made by entry()");
        e.sent_ns = e.sent_ns.max(s.ts);
        if e.pending > 0 {
            e.merged = e.merged.saturating_add(s.already_pending);
            return;
        }
        if e.credit > 0 || e.delivered_ns >= s.first_ns {
            // Merged into one already seen delivered: this was written after the delivery (a
            // burst), or deliveries were seen that sends still to come account for (so the
            // pending count was taken by a delivery of one of those).
            let mut p = e.clone();
            p.merged = s.already_pending;
            p.first_ns = s.first_ns;
            p.sender = self.proc_ref(sender);
            p.si_code = s.si_code;
            p.disposition = s.disposition;
            out.push(self.burst_finding(&p, key, s.ts));
            return;
        }
        // The pending instance was sent before the trace, or was not tracked (a fatal default
        // signal), or its send is in a burst still to come: assume one, the burst starts here.
        self.start_instance(key, s, sender);
        let e = self.signals.entries.get_mut(&key).expect("present");
        e.pending = 1;
        if e.assumed_ns.saturating_add(SETTLE_NS) <= s.ts {
            e.assumed = 0;
        }
        e.assumed = e.assumed.saturating_add(1);
        e.assumed_ns = s.ts;
        e.merged = s.already_pending;
        self.settle_if_gone(key, s.ts, out);
    }

    /// A new pending instance (nothing was pending) sent by table entry `sender` as `s` says.
    fn start_instance(&mut self, key: (u32, u32), s: &Sent, sender: u32) {
        let sender = self.proc_ref(sender);
        let e = self.signals.entries.get_mut(&key).expect("present");
        e.first_ns = s.ts;
        e.sender = sender;
        e.si_code = s.si_code;
        e.disposition = s.disposition;
        e.blocked = s.blocked;
        e.blocked_reported = false;
        if s.blocked && e.gone_ns.is_none() {
            self.signals.deadlines.push(Reverse((
                s.ts.saturating_add(self.config.blocked_after_ns),
                key.0,
                key.1,
                s.ts,
            )));
        }
    }

    /// The entry for (`pid`, `sig`) about process `target`, made if there is none (true); one
    /// about an earlier process with that pid is concluded first.
    fn entry(&mut self, pid: u32, sig: u32, target: u32, ts: u64, out: &mut Vec<Finding>) -> bool {
        let target_start = self.table.at(target).start_ns;
        if let Some(e) = self.signals.entries.get(&(pid, sig)) {
            if e.is_about(target, target_start) {
                return false;
            }
            // Replaced below. The earlier process's bit for it may stay set: the bits are
            // hints, checked against the entry's target before use.
            self.conclude(pid, sig, ts, out);
        }
        if let Some(e) = self.take_released(pid, sig, target, target_start) {
            self.signals.entries.insert((pid, sig), e.entry());
            return false;
        }
        let p = self.table.at(target);
        let entry = Entry::new(
            target,
            target_start,
            p.has(flag::EXITED).then_some(p.exit_ns),
        );
        self.signals.entries.insert((pid, sig), entry);
        self.table.at_mut(target).signals_tracked |= sig_bit(sig);
        true
    }

    /// The entry of released target `target` for `sig`, if it waits in `released`: a record
    /// written late for it came after all.
    fn take_released(&mut self, pid: u32, sig: u32, target: u32, start: u64) -> Option<Idle> {
        let p = self.table.at(target);
        if !p.has(flag::REAPED) || p.signals_tracked & sig_bit(sig) == 0 {
            return None;
        }
        let found = self.signals.released.iter_mut().rev().find(|r| {
            r.key == (pid, sig) && matches!(r.entry, Waiting::Here(e) if e.is_about(target, start))
        })?;
        let taken_back = Waiting::TakenBack {
            target,
            target_start: start,
        };
        match std::mem::replace(&mut found.entry, taken_back) {
            Waiting::Here(e) => Some(e),
            Waiting::TakenBack { .. } => None,
        }
    }

    /// An entry whose target is gone got something pending: settle it `SETTLE_NS` after the
    /// exit, or now when that has passed.
    fn settle_if_gone(&mut self, key: (u32, u32), ts: u64, out: &mut Vec<Finding>) {
        let e = self.signals.entries.get_mut(&key).expect("present");
        let Some(gone) = e.gone_ns else {
            return;
        };
        let at = gone.saturating_add(SETTLE_NS);
        // By the event's time, not the engine's: a live engine's clock also moves with the
        // timer, and a replay must decide the same.
        if at <= ts {
            self.conclude(key.0, key.1, ts, out);
        } else if !e.settle_scheduled {
            e.settle_scheduled = true;
            self.signals.settles.push(Reverse((at, key.0, key.1, gone)));
        }
    }

    /// The target of an entry is gone and no late record can change what is pending: reports
    /// the merged ones and the ones never delivered (unless it is what killed the target).
    fn conclude(&mut self, pid: u32, sig: u32, ts: u64, out: &mut Vec<Finding>) {
        let Some(e) = self.signals.entries.get_mut(&(pid, sig)) else {
            return;
        };
        e.settle_scheduled = false;
        let (pending, merged) = (e.pending, e.merged);
        if pending == 0 && merged == 0 {
            return;
        }
        e.pending = 0;
        e.merged = 0;
        let e = e.clone();
        let target = self.entry_target(&e, pid);
        if merged > 0 {
            let f = e.dropped(
                DropReason::Coalesced,
                sig,
                ts,
                target.clone(),
                Some(merged),
                ts,
            );
            out.push(f);
        }
        let killed_by = self.table.check(e.target, e.target_start).and_then(|t| {
            t.has(flag::EXITED)
                .then(|| ExitStatus::from_wait_status(t.exit_status).killed_by)
                .flatten()
        });
        if pending == 0 || killed_by == Some(Sig(sig)) {
            return;
        }
        let gone = e.gone_ns.unwrap_or(ts);
        let f = e.dropped(
            DropReason::TargetExited,
            sig,
            ts,
            target,
            count_of(pending),
            gone,
        );
        out.push(f);
    }

    /// The target's entry, made from the signal's fields when the table does not know it.
    fn signal_target(&mut self, t: &SignalTarget, ts: u64) -> u32 {
        if let Some(idx) = self.table.lookup(t.pid, t.start_ns) {
            return idx;
        }
        let task = crate::event::Task {
            pid: t.pid,
            tid: t.tid,
            ns_pid: t.ns_pid,
            pidns: t.pidns,
            ppid: 0,
            uid: 0,
            cgroup_id: 0,
            comm: t.comm,
            start_ns: t.start_ns,
            cpu: None,
        };
        self.process(&task, ts)
    }

    pub(super) fn on_deliver(&mut self, event: &Event, d: &SignalDeliver, out: &mut Vec<Finding>) {
        self.delivered(event, d.sig.0, d.disposition, 1, true, out);
    }

    pub(super) fn on_deliver_burst(
        &mut self,
        event: &Event,
        d: &DeliverBurst,
        out: &mut Vec<Finding>,
    ) {
        self.delivered(event, d.sig.0, d.disposition, d.count, false, out);
    }

    /// `count` deliveries of `sig` to the event's task, the last at the event's time, written
    /// as a `plain` record or a burst.
    fn delivered(
        &mut self,
        event: &Event,
        sig: u32,
        disposition: Disposition,
        count: u64,
        plain: bool,
        out: &mut Vec<Finding>,
    ) {
        let ts = event.ts_ns;
        let idx = self.process(&event.task, ts);
        if is_stop(sig) && disposition == Disposition::Default {
            self.table.at_mut(idx).flags |= flag::STOPPED;
        }
        if count == 0 || sig == SIGKILL || default_ignored(sig) && !self.config.all_signals {
            return;
        }
        let key = (event.task.pid, sig);
        let created = self.entry(key.0, sig, idx, ts, out);
        let run = self
            .signals
            .entries
            .get(&key)
            .expect("made by entry()")
            .deliver_run;
        let run = match (plain, created) {
            (true, _) => self.signals.opened(run, event.task.cpu, ts),
            // A burst of deliveries whose plain record was not seen.
            (false, true) => Run::Unknown,
            (false, false) => run,
        };
        let e = self.signals.entries.get_mut(&key).expect("present");
        e.deliver_run = run;
        e.delivered_ns = e.delivered_ns.max(ts);
        let used = e.pending.min(count);
        e.pending -= used;
        let rest = count - used;
        if rest > 0 {
            if e.credit_ns.saturating_add(SETTLE_NS) < ts {
                e.credit = 0;
            }
            e.credit = e.credit.saturating_add(rest);
            e.credit_ns = e.credit_ns.max(ts);
        }
        if used > 0 && e.pending == 0 && e.merged > 0 {
            let p = e.clone();
            e.merged = 0;
            out.push(self.burst_finding(&p, key, ts));
        }
    }

    fn untrack(&mut self, target: u32, start: u64, sig: u32) {
        if self.table.check(target, start).is_some() {
            self.table.at_mut(target).signals_tracked &= !sig_bit(sig);
        }
    }

    /// The `coalesced` finding for the signals merged into `p`'s instance (`key` names it).
    fn burst_finding(&self, p: &Entry, key: (u32, u32), now: u64) -> Finding {
        let target = self.entry_target(p, key.0);
        p.dropped(
            DropReason::Coalesced,
            key.1,
            now,
            target,
            Some(p.merged),
            now,
        )
    }

    /// The target of entry `e` of pid `pid`, or only its pid once the table let it go.
    fn entry_target(&self, e: &Entry, pid: u32) -> ProcRef {
        match self.table.check(e.target, e.target_start) {
            Some(_) => self.proc_ref(e.target),
            None => Self::unknown_ref(pid, Comm::from("?")),
        }
    }

    /// The target `idx` exited at `ts` (its exit status recorded): what was still pending for
    /// it was never delivered, unless it is the signal that killed it, or deliveries written
    /// late are still to come (a delivery of the same signal was seen within `SETTLE_NS`).
    pub(super) fn signals_target_gone(&mut self, idx: u32, ts: u64, out: &mut Vec<Finding>) {
        let tracked = self.table.at(idx).signals_tracked;
        if tracked == 0 {
            return;
        }
        let pid = self.table.at(idx).pid;
        let start = self.table.at(idx).start_ns;
        for sig in sigs_of(tracked) {
            let Some(e) = self.signals.entries.get_mut(&(pid, sig)) else {
                continue;
            };
            if !e.is_about(idx, start) {
                continue;
            }
            e.gone_ns = Some(ts);
            if e.pending > 0 && e.delivered_ns != 0 && e.delivered_ns.saturating_add(SETTLE_NS) > ts
            {
                self.settle_if_gone((pid, sig), ts, out);
            } else {
                self.conclude(pid, sig, ts, out);
            }
        }
    }

    /// Drops what is tracked for a released process, except what waits for late records: an
    /// entry with nothing outstanding goes as soon as no burst can come for it.
    pub(super) fn signals_forget(&mut self, idx: u32) {
        let tracked = self.table.at(idx).signals_tracked;
        if tracked == 0 {
            return;
        }
        let pid = self.table.at(idx).pid;
        let start = self.table.at(idx).start_ns;
        // Its own entries only, not a pass over the whole system's.
        for sig in sigs_of(tracked) {
            let key = (pid, sig);
            let Signals {
                entries,
                released,
                runs_uncertain,
                cpu_seen_ns,
                ..
            } = &mut self.signals;
            let hash_map::Entry::Occupied(e) = entries.entry(key) else {
                continue;
            };
            if !e.get().is_about(idx, start) {
                continue;
            }
            match e.get().release(*runs_uncertain, cpu_seen_ns) {
                Release::Now => {
                    e.remove();
                    self.table.at_mut(idx).signals_tracked &= !sig_bit(sig);
                }
                Release::WhenRunsClose(..) => {
                    let entry = Waiting::Here(Idle::of(&e.remove()));
                    released.push_back(Released { key, entry });
                }
                Release::BySweep => {}
            }
        }
    }

    /// Lets go the entries of released targets whose runs have closed since, oldest first.
    ///
    /// The target's bit for an entry let go stays set: the target is released, so only a late
    /// record for it or a later process with its pid could look, and bits are checked against
    /// what is found. Clearing it would load a target entry long gone cold.
    pub(super) fn let_go_released(&mut self) {
        while let Some(r) = self.signals.released.front() {
            let signals = &self.signals;
            let (uncertain, seen) = (signals.runs_uncertain, &signals.cpu_seen_ns);
            let (release, in_map) = match r.entry {
                Waiting::Here(e) => (e.release(uncertain, seen), false),
                // As the entry now stands.
                Waiting::TakenBack {
                    target,
                    target_start,
                } => match signals.entries.get(&r.key) {
                    Some(e) if e.is_about(target, target_start) => {
                        (e.release(uncertain, seen), true)
                    }
                    // Gone already, or the pid's entry is another process's now.
                    _ => (Release::Now, false),
                },
            };
            match release {
                Release::Now if in_map => {
                    self.signals.entries.remove(&r.key);
                }
                Release::Now => {}
                // Runs close in about the order they opened: the rest wait too.
                Release::WhenRunsClose(open) => {
                    self.signals.front_waits = Some(open);
                    break;
                }
                // Busy again: the sweep lets it go when it has been idle long enough.
                Release::BySweep if in_map => {}
                // A loss made its runs uncertain: the sweep lets it go.
                Release::BySweep => break,
            }
            self.signals.released.pop_front();
            self.signals.front_waits = None;
        }
    }

    /// Reports signals pending past `--blocked-after` because the target blocks it.
    pub(super) fn blocked_deadlines(&mut self, out: &mut Vec<Finding>) {
        while let Some(&Reverse((deadline, pid, sig, first))) = self.signals.deadlines.peek() {
            if deadline > self.now {
                break;
            }
            self.signals.deadlines.pop();
            let Some(p) = self.signals.entries.get_mut(&(pid, sig)) else {
                continue;
            };
            if p.pending == 0
                || p.first_ns != first
                || p.blocked_reported
                || !p.blocked
                || p.gone_ns.is_some()
            {
                continue;
            }
            // Deliveries of it were seen lately: ones written late may be this one's.
            let settled = p.delivered_ns.saturating_add(SETTLE_NS);
            if p.delivered_ns != 0 && settled > deadline {
                self.signals
                    .deadlines
                    .push(Reverse((settled, pid, sig, first)));
                continue;
            }
            p.blocked_reported = true;
            let p = p.clone();
            let target = match self.table.check(p.target, p.target_start) {
                Some(_) => self.proc_ref(p.target),
                None => continue,
            };
            out.push(p.dropped(DropReason::Blocked, sig, deadline, target, None, deadline));
        }
    }

    /// Targets gone with signals pending whose late records had their time.
    pub(super) fn settle_deadlines(&mut self, out: &mut Vec<Finding>) {
        while let Some(&Reverse((deadline, pid, sig, gone))) = self.signals.settles.peek() {
            if deadline > self.now {
                break;
            }
            self.signals.settles.pop();
            self.settle(deadline, pid, sig, gone, out);
        }
    }

    fn settle(&mut self, deadline: u64, pid: u32, sig: u32, gone: u64, out: &mut Vec<Finding>) {
        let Some(e) = self.signals.entries.get(&(pid, sig)) else {
            return;
        };
        if e.gone_ns == Some(gone) && e.settle_scheduled {
            self.conclude(pid, sig, deadline, out);
        }
    }

    /// Forgets entries with nothing pending and nothing for a late record to match, idle for
    /// twice `SETTLE_NS` (so that no record could still find them: the result is the same as
    /// keeping them).
    pub(super) fn sweep_signals(&mut self) {
        if self.now < self.signals.next_sweep_ns {
            return;
        }
        self.signals.next_sweep_ns = self.now.saturating_add(SETTLE_NS);
        let Some(horizon) = self.now.checked_sub(2 * SETTLE_NS) else {
            return;
        };
        let mut gone = Vec::new();
        self.signals.entries.retain(|&(_, sig), e| {
            let idle = e.pending == 0
                && e.merged == 0
                && !e.settle_scheduled
                && Idle::of(e).last_seen_ns() < horizon;
            if idle {
                gone.push((e.target, e.target_start, sig));
            }
            !idle
        });
        for (target, start, sig) in gone {
            self.untrack(target, start, sig);
        }
        // Released targets' entries idle as long, whose runs were not seen to close (their
        // CPU wrote nothing since, or events were lost), and the places of those taken back
        // that the lines above let go.
        let Signals {
            entries, released, ..
        } = &mut self.signals;
        let before = released.len();
        released.retain(|r| match r.entry {
            Waiting::Here(e) => e.last_seen_ns() >= horizon,
            Waiting::TakenBack {
                target,
                target_start,
            } => entries
                .get(&r.key)
                .is_some_and(|e| e.is_about(target, target_start)),
        });
        if released.len() != before {
            self.signals.front_waits = None;
        }
        let seen = &self.signals.cpu_seen_ns;
        self.signals
            .untracked_runs
            .retain(|_, (_, run)| !closed(seen, *run));
    }

    /// The end of the input: gone targets are settled, and bursts still open are reported as
    /// they stand, at the time of the last event.
    pub(super) fn flush_bursts(&mut self, out: &mut Vec<Finding>) {
        let mut settles = std::mem::take(&mut self.signals.settles).into_sorted_vec();
        settles.reverse();
        for Reverse((deadline, pid, sig, gone)) in settles {
            self.settle(deadline, pid, sig, gone, out);
        }
        let mut open: Vec<((u32, u32), Entry)> = self
            .signals
            .entries
            .iter()
            .filter(|(_, p)| p.merged > 0)
            .map(|(k, p)| (*k, p.clone()))
            .collect();
        open.sort_by_key(|(k, p)| (p.first_ns, *k));
        for (key, p) in open {
            out.push(self.burst_finding(&p, key, self.last_event_ns));
            if let Some(q) = self.signals.entries.get_mut(&key) {
                q.merged = 0;
            }
        }
    }
}

/// The bit of `sig` in [`Proc::signals_tracked`](super::table::Proc::signals_tracked).
fn sig_bit(sig: u32) -> u64 {
    1u64.checked_shl(sig.wrapping_sub(1)).unwrap_or(0)
}

/// The signals whose bits are set in `mask`.
fn sigs_of(mut mask: u64) -> impl Iterator<Item = u32> {
    // One step per set bit, lowest first: a process is usually tracked for one signal.
    std::iter::from_fn(move || {
        let bit = mask.trailing_zeros();
        (bit < 64).then(|| {
            mask &= mask - 1;
            bit + 1
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every signal's bit reads back as that signal, alone and in any pair, lowest first.
    #[test]
    fn tracked_bits_read_back_as_their_signals() {
        for a in 1..=64u32 {
            assert_eq!(sigs_of(sig_bit(a)).collect::<Vec<_>>(), [a]);
            for b in a + 1..=64 {
                let both: Vec<u32> = sigs_of(sig_bit(a) | sig_bit(b)).collect();
                assert_eq!(both, [a, b]);
            }
        }
        assert_eq!(sigs_of(0).count(), 0);
        assert_eq!(
            sigs_of(u64::MAX).collect::<Vec<_>>(),
            (1..=64).collect::<Vec<_>>()
        );
    }
}
