//! The dropped-signal detector: signals ignored by a namespace init or by the target, merged
//! into one already pending, refused by a full queue, pending until the target died, or
//! blocked for longer than `--blocked-after`.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
};

use super::{
    Engine, Finding,
    findings::{DropReason, ProcRef, SignalDropped},
    table::flag,
};
use crate::{
    event::{Disposition, Event, ExitStatus, Sig, Signal, SignalDeliver, SignalResult},
    signals::default_ignored,
};

const SIGKILL: u32 = 9;
const SIGCONT: u32 = 18;
/// si_code of signals the kernel sends for itself (`SEND_SIG_PRIV`).
const SI_KERNEL: i32 = 0x80;

/// A signal generated and not yet seen delivered.
#[derive(Clone, Debug)]
struct Pending {
    first_ns: u64,
    target: u32,
    target_start: u64,
    sender: ProcRef,
    si_code: i32,
    disposition: Disposition,
    blocked: bool,
    /// Instances merged into this one while it was pending.
    merged: u32,
    /// Real-time instances queued behind it.
    queued: u32,
    blocked_reported: bool,
}

#[derive(Default)]
pub struct Signals {
    /// (target pid, signal) → the pending instance.
    pending: HashMap<(u32, u32), Pending, super::table::FastHash>,
    /// Blocked-after deadlines: (deadline, target pid, signal, first_ns).
    deadlines: BinaryHeap<Reverse<(u64, u32, u32, u64)>>,
    /// Drops by reason and signal, for the summary.
    pub drops: BTreeMap<(DropReason, u32), u64>,
}

impl Signals {
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.peek().map(|Reverse((d, ..))| *d)
    }

    pub fn count_drop(&mut self, reason: DropReason, sig: u32) {
        *self.drops.entry((reason, sig)).or_default() += 1;
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

/// Stop signals, whose default action stops the process.
fn is_stop(sig: u32) -> bool {
    matches!(sig, 19..=22)
}

impl Engine {
    pub(super) fn on_signal(&mut self, event: &Event, s: &Signal, out: &mut Vec<Finding>) {
        let ts = event.ts_ns;
        let sig = s.sig.0;
        let sender = self.process(&event.task, ts);
        let target = self.signal_target(s, ts);
        if matches!(sig, SIGCONT | SIGKILL) {
            self.table.at_mut(target).flags &= !flag::STOPPED;
        }
        // The kernel's own SIGKILLs (a group exit killing the other threads, a namespace's
        // teardown, the OOM killer) are how processes die, not signals anyone meant to send.
        if sig == SIGKILL && s.si_code == SI_KERNEL {
            return;
        }
        let quiet = default_ignored(sig) && !self.config.all_signals;
        let dropped = |engine: &Self, reason| SignalDropped {
            ts_ns: ts,
            reason,
            sig: s.sig,
            si_code: s.si_code,
            sender: engine.proc_ref(sender),
            from_kernel: s.si_code > 0,
            target: engine.proc_ref(target),
            disposition: s.disposition,
            count: None,
            pending_ns: None,
            children: Vec::new(),
        };
        match s.result {
            SignalResult::Ignored => {
                let init = s.target_ns_pid == 1;
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
                    let mut f = dropped(self, reason);
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
            SignalResult::Overflow => {
                out.push(Finding::SignalDropped(dropped(
                    self,
                    DropReason::QueueOverflow,
                )));
            }
            SignalResult::AlreadyPending => {
                if quiet {
                    return;
                }
                let key = (s.target_pid, sig);
                if let Some(p) = self.signals.pending.get_mut(&key) {
                    p.merged += 1;
                    return;
                }
                // The pending instance was sent before the trace, or was not tracked (a
                // fatal default signal): the burst starts here.
                self.track(s, ts, sender, target, 1);
            }
            SignalResult::Delivered | SignalResult::LostInfo => {
                // Tracked until delivered: signals it blocks, and those a handler will take.
                // A fatal default one is acted on at once (its "delivery" is the exit); a
                // stop or ignored-by-default one needs no delivery to be seen.
                // Default-ignored ones (a SIGCHLD to a handler, very common) only with
                // --all-signals.
                let track = s.blocked || s.disposition == Disposition::Handler;
                if !track || sig == SIGKILL || quiet {
                    return;
                }
                if let Some(p) = self.signals.pending.get_mut(&(s.target_pid, sig)) {
                    // Real-time signals queue: another instance behind the pending one.
                    p.queued += 1;
                    return;
                }
                self.track(s, ts, sender, target, 0);
            }
        }
    }

    fn track(&mut self, s: &Signal, ts: u64, sender: u32, target: u32, merged: u32) {
        let sig = s.sig.0;
        let pending = Pending {
            first_ns: ts,
            target,
            target_start: self.table.at(target).start_ns,
            sender: self.proc_ref(sender),
            si_code: s.si_code,
            disposition: s.disposition,
            blocked: s.blocked,
            merged,
            queued: 0,
            blocked_reported: false,
        };
        self.signals.pending.insert((s.target_pid, sig), pending);
        let t = self.table.at_mut(target);
        t.pending_signals = t.pending_signals.saturating_add(1);
        if s.blocked {
            self.signals.deadlines.push(Reverse((
                ts.saturating_add(self.config.blocked_after_ns),
                s.target_pid,
                sig,
                ts,
            )));
        }
    }

    /// The target's entry, made from the signal's fields when the table does not know it.
    fn signal_target(&mut self, s: &Signal, ts: u64) -> u32 {
        if let Some(idx) = self.table.lookup(s.target_pid, s.target_start_ns) {
            return idx;
        }
        let task = crate::event::Task {
            pid: s.target_pid,
            tid: s.target_tid,
            ns_pid: s.target_ns_pid,
            pidns: s.target_pidns,
            ppid: 0,
            uid: 0,
            cgroup_id: 0,
            comm: s.target_comm,
            start_ns: s.target_start_ns,
        };
        self.process(&task, ts)
    }

    pub(super) fn on_deliver(&mut self, event: &Event, d: &SignalDeliver, out: &mut Vec<Finding>) {
        let idx = self.process(&event.task, event.ts_ns);
        let sig = d.sig.0;
        if is_stop(sig) && d.disposition == Disposition::Default {
            self.table.at_mut(idx).flags |= flag::STOPPED;
        }
        let key = (event.task.pid, sig);
        let Some(p) = self.signals.pending.get_mut(&key) else {
            return;
        };
        if p.queued > 0 {
            p.queued -= 1;
            return;
        }
        let p = self.signals.pending.remove(&key).expect("present");
        self.untrack(p.target, p.target_start);
        if p.merged > 0 {
            out.push(self.burst_finding(&p, sig, event.ts_ns));
        }
    }

    fn untrack(&mut self, target: u32, start: u64) {
        if self.table.check(target, start).is_some() {
            let t = self.table.at_mut(target);
            t.pending_signals = t.pending_signals.saturating_sub(1);
        }
    }

    fn burst_finding(&self, p: &Pending, sig: u32, now: u64) -> Finding {
        let target = match self.table.check(p.target, p.target_start) {
            Some(_) => self.proc_ref(p.target),
            None => Self::unknown_ref(0, crate::event::Comm::from("?")),
        };
        Finding::SignalDropped(SignalDropped {
            ts_ns: now,
            reason: DropReason::Coalesced,
            sig: Sig(sig),
            si_code: p.si_code,
            sender: p.sender.clone(),
            from_kernel: p.si_code > 0,
            target,
            disposition: p.disposition,
            count: Some(p.merged),
            pending_ns: Some(now.saturating_sub(p.first_ns)),
            children: Vec::new(),
        })
    }

    /// The target `idx` exited with wait status `status`: what was still pending for it was
    /// never delivered, unless it is the signal that killed it.
    pub(super) fn signals_target_gone(
        &mut self,
        idx: u32,
        ts: u64,
        status: u32,
        out: &mut Vec<Finding>,
    ) {
        if self.table.at(idx).pending_signals == 0 {
            return;
        }
        let pid = self.table.at(idx).pid;
        let killed_by = ExitStatus::from_wait_status(status).killed_by.map(|s| s.0);
        for sig in 1..=crate::signals::SIGRTMAX {
            let Some(p) = self.signals.pending.remove(&(pid, sig)) else {
                continue;
            };
            if p.merged > 0 {
                out.push(self.burst_finding(&p, sig, ts));
            }
            if killed_by == Some(sig) {
                continue;
            }
            out.push(Finding::SignalDropped(SignalDropped {
                ts_ns: ts,
                reason: DropReason::TargetExited,
                sig: Sig(sig),
                si_code: p.si_code,
                sender: p.sender.clone(),
                from_kernel: p.si_code > 0,
                target: self.proc_ref(idx),
                disposition: p.disposition,
                count: (p.queued > 0).then_some(p.queued + 1),
                pending_ns: Some(ts.saturating_sub(p.first_ns)),
                children: Vec::new(),
            }));
        }
        self.table.at_mut(idx).pending_signals = 0;
    }

    /// Drops what is tracked for a released process.
    pub(super) fn signals_forget(&mut self, idx: u32) {
        if self.table.at(idx).pending_signals == 0 {
            return;
        }
        let pid = self.table.at(idx).pid;
        self.signals.pending.retain(|&(p, _), _| p != pid);
        self.table.at_mut(idx).pending_signals = 0;
    }

    /// Reports signals pending past `--blocked-after` because the target blocks them.
    pub(super) fn blocked_deadlines(&mut self, out: &mut Vec<Finding>) {
        while let Some(&Reverse((deadline, pid, sig, first))) = self.signals.deadlines.peek() {
            if deadline > self.now {
                break;
            }
            self.signals.deadlines.pop();
            let Some(p) = self.signals.pending.get_mut(&(pid, sig)) else {
                continue;
            };
            if p.first_ns != first || p.blocked_reported || !p.blocked {
                continue;
            }
            p.blocked_reported = true;
            let p = p.clone();
            let target = match self.table.check(p.target, p.target_start) {
                Some(_) => self.proc_ref(p.target),
                None => continue,
            };
            out.push(Finding::SignalDropped(SignalDropped {
                ts_ns: deadline,
                reason: DropReason::Blocked,
                sig: Sig(sig),
                si_code: p.si_code,
                sender: p.sender,
                from_kernel: p.si_code > 0,
                target,
                disposition: p.disposition,
                count: None,
                pending_ns: Some(deadline - p.first_ns),
                children: Vec::new(),
            }));
        }
    }

    /// The end of the input: bursts still open are reported as they stand.
    pub(super) fn flush_bursts(&mut self, out: &mut Vec<Finding>) {
        let mut open: Vec<((u32, u32), Pending)> = self
            .signals
            .pending
            .iter()
            .filter(|(_, p)| p.merged > 0)
            .map(|(k, p)| (*k, p.clone()))
            .collect();
        open.sort_by_key(|(k, p)| (p.first_ns, *k));
        for (key, p) in open {
            out.push(self.burst_finding(&p, key.1, self.now));
            if let Some(q) = self.signals.pending.get_mut(&key) {
                q.merged = 0;
            }
        }
    }
}
