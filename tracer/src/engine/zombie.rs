//! The zombie-leak detector: zombies older than `--zombie-after`, their release, and reapers
//! that hold ever more of them.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
};

use super::{
    Engine, Finding,
    findings::{CommCount, Diagnosis, ProcRef, Zombie, ZombieLeak, ZombieReaped},
    table::{NONE, Proc, flag},
};
use crate::event::{Comm, Event, ExitStatus, Reap, ReapHow};

/// A zombie-to-be: (deadline, index, start time).
type Deadline = (u64, u32, u64);

/// Deadlines of zombies-to-be, earliest first. Entries whose process was reaped meanwhile are
/// skipped when they come up.
///
/// Nearly every deadline is an exit's time plus `--zombie-after`, so they come in order: those
/// go to the back of a queue, and only the few that come out of order go to a heap. The next
/// deadline is the earlier of the two fronts, so they come out in the order one heap would
/// give, while a heap of all of them (hundreds of thousands under churn) would cost a walk
/// through memory for every push and pop.
#[derive(Default)]
pub struct Zombies {
    in_order: VecDeque<Deadline>,
    out_of_order: BinaryHeap<Reverse<Deadline>>,
}

impl Zombies {
    pub fn schedule(&mut self, idx: u32, start_ns: u64, deadline: u64) {
        let d = (deadline, idx, start_ns);
        if self.in_order.back().is_none_or(|&last| last <= d) {
            self.in_order.push_back(d);
        } else {
            self.out_of_order.push(Reverse(d));
        }
    }

    pub fn next_deadline(&self) -> Option<u64> {
        self.peek().map(|(d, _, _)| d)
    }

    fn peek(&self) -> Option<Deadline> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(&a), Some(&Reverse(b))) => Some(a.min(b)),
            (a, b) => a.copied().or(b.map(|&Reverse(b)| b)),
        }
    }

    fn pop(&mut self) -> Option<Deadline> {
        let next = self.peek()?;
        if self.in_order.front() == Some(&next) {
            self.in_order.pop_front()
        } else {
            self.out_of_order.pop().map(|Reverse(d)| d)
        }
    }
}

impl Engine {
    /// Reports the zombies whose deadline has passed.
    pub(super) fn zombie_deadlines(&mut self, out: &mut Vec<Finding>) {
        while let Some((deadline, idx, start)) = self.zombies.peek() {
            if deadline > self.now {
                break;
            }
            self.zombies.pop();
            let Some(p) = self.table.check(idx, start) else {
                continue;
            };
            if !p.is_zombie() || p.has(flag::ZOMBIE_REPORTED) {
                continue;
            }
            // Adopted as a zombie: its new reaper gets the full --zombie-after too (the
            // deadline scheduled at the adoption comes up later).
            let since = if p.has(flag::ADOPTED) {
                p.exit_ns.max(p.adopted_ns)
            } else {
                p.exit_ns
            };
            if since.saturating_add(self.config.zombie_after_ns) > deadline {
                continue;
            }
            self.table.at_mut(idx).flags |= flag::ZOMBIE_REPORTED | flag::EVER_REPORTED;
            let parent = self.table.at(idx).parent;
            if parent != NONE {
                self.table.at_mut(parent).zombies_reported += 1;
            }
            out.push(Finding::Zombie(self.zombie_finding(idx, deadline)));
            if parent != NONE {
                self.check_leak(parent, deadline, out);
            }
        }
    }

    fn zombie_finding(&self, idx: u32, now: u64) -> Zombie {
        let p = self.table.at(idx);
        let before = p.has(flag::EXIT_BEFORE_TRACE);
        let parent = p.parent;
        let (reaper, diagnosis, last_wait, held) = if parent != NONE {
            let r = self.table.at(parent);
            (
                self.proc_ref(parent),
                self.diagnose(r, p),
                (r.last_wait_ns != 0).then_some(r.last_wait_ns),
                r.zombies_held,
            )
        } else {
            (
                Self::unknown_ref(0, Comm::from("?")),
                Diagnosis::NoWaitSinceTraceStart,
                None,
                0,
            )
        };
        let adopted_from = p
            .has(flag::ADOPTED)
            .then(|| self.table.check(p.orphaned_by, p.orphaned_by_start))
            .flatten()
            .map(|_| self.proc_ref(p.orphaned_by));
        Zombie {
            ts_ns: now,
            process: self.proc_ref(idx),
            exit_status: (!before || p.exit_status != 0)
                .then(|| ExitStatus::from_wait_status(p.exit_status)),
            exit_ns: (!before).then_some(p.exit_ns),
            age_ns: now.saturating_sub(p.exit_ns),
            age_at_least: before,
            reaper,
            adopted: p.has(flag::ADOPTED),
            adopted_from,
            diagnosis,
            reaper_last_wait_ns: last_wait,
            reaper_zombies: held,
        }
    }

    /// Why `reaper` has not released `zombie` (for a leak, `zombie` is the oldest it holds).
    fn diagnose(&self, reaper: &Proc, zombie: &Proc) -> Diagnosis {
        if reaper.has(flag::STOPPED) {
            return Diagnosis::Stopped;
        }
        if reaper.has(flag::EXITED) {
            return Diagnosis::Exiting;
        }
        if reaper.last_wait_ns == 0 {
            return if reaper.has(flag::BORN_IN_TRACE) {
                Diagnosis::NeverWaited
            } else {
                Diagnosis::NoWaitSinceTraceStart
            };
        }
        // It became this reaper's business when it exited or was adopted, the later.
        let since = zombie.exit_ns.max(zombie.adopted_ns);
        if reaper.last_wait_ns < since {
            Diagnosis::NotWaitedSinceExit
        } else {
            Diagnosis::WaitsOnlyForOthers
        }
    }

    /// Reports a leak when `reaper` holds `--leak-threshold` reported zombies, and again each
    /// time that count doubles.
    pub(super) fn check_leak(&mut self, reaper: u32, now: u64, out: &mut Vec<Finding>) {
        let r = self.table.at(reaper);
        let n = r.zombies_reported;
        let threshold = self.config.leak_threshold.max(1);
        if n < threshold || n < r.leak_reported.saturating_mul(2) || n == r.leak_reported {
            return;
        }
        self.table.at_mut(reaper).leak_reported = n;
        let r = self.table.at(reaper);
        let mut comms: Vec<CommCount> = Vec::new();
        let mut adopted = 0;
        let mut oldest: Option<u32> = None;
        for child in self.table.children(reaper) {
            let c = self.table.at(child);
            if !(c.is_zombie() && c.has(flag::ZOMBIE_REPORTED)) {
                continue;
            }
            if c.has(flag::ADOPTED) {
                adopted += 1;
            }
            if oldest.is_none_or(|o| self.table.at(o).exit_ns > c.exit_ns) {
                oldest = Some(child);
            }
            match comms.iter_mut().find(|cc| cc.comm == c.comm) {
                Some(cc) => cc.count += 1,
                None => comms.push(CommCount {
                    comm: c.comm,
                    count: 1,
                }),
            }
        }
        // Most frequent first; ties by name, so the output does not depend on table order.
        comms.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.comm.as_str().cmp(&b.comm.as_str()))
        });
        let diagnosis = match oldest {
            Some(o) => self.diagnose(r, self.table.at(o)),
            None => Diagnosis::NoWaitSinceTraceStart,
        };
        out.push(Finding::ZombieLeak(ZombieLeak {
            ts_ns: now,
            reaper: self.proc_ref(reaper),
            zombies: n,
            adopted,
            reaped_adopted: r.reaped_adopted,
            comms,
            diagnosis,
            reaper_last_wait_ns: (r.last_wait_ns != 0).then_some(r.last_wait_ns),
        }));
    }

    /// A process was released: by a wait, by the kernel at exit (autoreap), or otherwise.
    pub(super) fn on_reap(&mut self, event: &Event, reap: &Reap, out: &mut Vec<Finding>) {
        let ts = event.ts_ns;
        let task = &event.task;
        let idx = match self.table.lookup(task.pid, task.start_ns) {
            Some(idx) => idx,
            None => {
                // Exited before the trace (or its events were lost): known from its release.
                let idx = self.process(task, ts);
                let p = self.table.at_mut(idx);
                p.flags |= flag::EXITED;
                match reap.exit_ns {
                    Some(exit) => p.exit_ns = exit,
                    None => {
                        p.flags |= flag::EXIT_BEFORE_TRACE;
                        p.exit_ns = self.start_ns.unwrap_or(ts).min(ts);
                    }
                }
                p.exit_status = reap.status.status;
                if p.parent != NONE {
                    let parent = p.parent;
                    self.table.at_mut(parent).zombies_held += 1;
                }
                idx
            }
        };
        if self.table.at(idx).has(flag::REAPED) {
            if self.table.at(idx).has(flag::EXIT_MISSED) {
                // Marked gone by a reconcile; this is the real release.
                self.table.at_mut(idx).reaped_ns = ts;
            }
            return;
        }
        if !self.table.at(idx).has(flag::EXITED) {
            // Its exit event was lost.
            let exit = reap.exit_ns.unwrap_or(ts);
            self.on_exit(idx, exit, reap.status.status, out);
        }
        // The releaser must be the parent (for a wait) or is the parent at release.
        let reaper = self.table.current(reap.reaper_pid);
        let parent = self.table.at(idx).parent;
        if let Some(reaper) = reaper
            && parent != reaper
            && reap.how != ReapHow::Autoreap
            && self
                .table
                .get(parent)
                .is_none_or(|p| p.pid != reap.reaper_pid)
        {
            let predicted = (parent != NONE).then_some(parent);
            self.correct_parent(idx, reaper, predicted, ts);
        }
        let parent = self.table.at(idx).parent;
        let p = self.table.at_mut(idx);
        let reported = p.has(flag::ZOMBIE_REPORTED);
        let ever = p.has(flag::EVER_REPORTED);
        let adopted = p.has(flag::ADOPTED);
        p.flags |= flag::REAPED;
        p.reaped_ns = ts;
        let (exit_ns, before) = (p.exit_ns, p.has(flag::EXIT_BEFORE_TRACE));
        if parent != NONE {
            let r = self.table.at_mut(parent);
            r.zombies_held = r.zombies_held.saturating_sub(1);
            if reported {
                r.zombies_reported = r.zombies_reported.saturating_sub(1);
            }
            if adopted && reap.how == ReapHow::Wait {
                r.reaped_adopted += 1;
            }
        }
        if ever {
            let reaper_ref = match reaper {
                Some(r) => self.proc_ref(r),
                None => Self::unknown_ref(reap.reaper_pid, reap.reaper_comm),
            };
            let age = reap.zombie_ns.unwrap_or_else(|| ts.saturating_sub(exit_ns));
            out.push(Finding::ZombieReaped(ZombieReaped {
                ts_ns: ts,
                process: self.proc_ref(idx),
                reaper: reaper_ref,
                how: reap.how,
                age_ns: age,
                age_at_least: before && reap.zombie_ns.is_none(),
            }));
        }
        self.signals_forget(idx);
        self.table.unlink(idx);
        self.table.retire_later(idx, ts);
    }

    /// The `n` reapers holding the most unreaped zombies now, most first, of `held`: every
    /// entry that holds some, with how many.
    pub(super) fn top_reapers(&self, mut held: Vec<(u32, u32)>, n: usize) -> Vec<(ProcRef, u32)> {
        held.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| self.table.at(a.0).pid.cmp(&self.table.at(b.0).pid))
        });
        held.truncate(n);
        held.into_iter()
            .map(|(i, z)| (self.proc_ref(i), z))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deadlines come out in the order one heap of all of them gives, however they went in.
    #[test]
    fn deadlines_come_out_as_from_one_heap() {
        let mut rng = crate::rng::Rng(0x2b);
        let mut next = move || rng.next();
        let mut zombies = Zombies::default();
        let mut heap = BinaryHeap::new();
        let mut t = 0u64;
        for _ in 0..20_000 {
            if next().is_multiple_of(3) {
                let now = t.saturating_sub(next() % 50);
                loop {
                    let expected = heap.peek().map(|&Reverse(d): &Reverse<Deadline>| d);
                    assert_eq!(zombies.peek(), expected);
                    match expected {
                        Some(d) if d.0 <= now => {
                            heap.pop();
                            assert_eq!(zombies.pop(), Some(d));
                        }
                        _ => break,
                    }
                }
            } else {
                // Mostly increasing, sometimes back in time, with ties.
                t += next() % 4;
                let deadline = if next().is_multiple_of(5) {
                    t.saturating_sub(next() % 20)
                } else {
                    t
                };
                let d = (deadline, (next() % 8) as u32, next() % 3);
                zombies.schedule(d.1, d.2, d.0);
                heap.push(Reverse(d));
            }
        }
        while let Some(Reverse(d)) = heap.pop() {
            assert_eq!(zombies.pop(), Some(d));
        }
        assert_eq!(zombies.pop(), None);
    }
}
