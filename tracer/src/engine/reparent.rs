//! Exits and reparenting: where a dead process's children go, and the check of that guess
//! against the parent later events report.

use super::{
    Disagreement, Engine, Finding,
    findings::ZombieReaped,
    table::{NONE, flag},
};
use crate::event::ReapHow;

/// Disagreements kept for the summary.
const MAX_SAMPLES: usize = 8;

impl Engine {
    /// The last thread of `idx` exited at `ts_ns` with wait status `status`.
    pub(super) fn on_exit(&mut self, idx: u32, ts_ns: u64, status: u32, out: &mut Vec<Finding>) {
        let p = self.table.at_mut(idx);
        if p.has(flag::EXITED) && !p.has(flag::EXIT_MISSED) {
            return;
        }
        let missed_then_seen = p.has(flag::REAPED);
        p.flags |= flag::EXITED;
        p.flags &= !flag::STOPPED;
        p.exit_ns = ts_ns;
        p.exit_status = status;
        let (parent, start) = (p.parent, p.start_ns);
        if missed_then_seen {
            // A reconcile marked it gone just before its exit event arrived: nothing left to
            // do but keep the real exit time.
            return;
        }
        if parent != NONE {
            self.table.at_mut(parent).zombies_held += 1;
        }
        self.signals_target_gone(idx, ts_ns, out);
        if self.dies_with_namespace(idx) {
            // Its namespace's init is gone: the kernel kills and releases everything in the
            // namespace as part of that exit, and no wait of anyone's is involved.
            self.release_with_namespace(idx, ts_ns, out);
        } else {
            self.zombies.schedule(
                idx,
                start,
                ts_ns.saturating_add(self.config.zombie_after_ns),
            );
        }
        if self.table.at(idx).has(flag::NS_INIT) {
            for child in self.table.children(idx) {
                if self.table.at(child).is_zombie() {
                    self.release_with_namespace(child, ts_ns, out);
                }
            }
        }
        self.reparent_children(idx, ts_ns, out);
    }

    /// Whether `idx` is in a PID namespace whose init has exited.
    fn dies_with_namespace(&self, idx: u32) -> bool {
        let p = self.table.at(idx);
        !p.has(flag::NS_INIT)
            && self
                .ns_inits
                .get(&p.pidns)
                .and_then(|&i| self.table.get(i))
                .is_some_and(|init| init.has(flag::EXITED))
    }

    /// Releases zombie `idx` as its namespace's teardown does.
    fn release_with_namespace(&mut self, idx: u32, ts_ns: u64, out: &mut Vec<Finding>) {
        let p = self.table.at_mut(idx);
        let reported = p.has(flag::ZOMBIE_REPORTED);
        let ever = p.has(flag::EVER_REPORTED);
        p.flags |= flag::REAPED;
        p.reaped_ns = ts_ns;
        let (parent, exit_ns, before) = (p.parent, p.exit_ns, p.has(flag::EXIT_BEFORE_TRACE));
        if parent != NONE {
            let r = self.table.at_mut(parent);
            r.zombies_held = r.zombies_held.saturating_sub(1);
            if reported {
                r.zombies_reported = r.zombies_reported.saturating_sub(1);
            }
        }
        if ever {
            let reaper = if parent != NONE {
                self.proc_ref(parent)
            } else {
                Self::unknown_ref(0, crate::event::Comm::from("?"))
            };
            out.push(Finding::ZombieReaped(ZombieReaped {
                ts_ns,
                process: self.proc_ref(idx),
                reaper,
                how: ReapHow::Other,
                age_ns: ts_ns.saturating_sub(exit_ns),
                age_at_least: before,
            }));
        }
        self.signals_forget(idx);
        self.table.unlink(idx);
        self.table.retire_later(idx, ts_ns);
    }

    /// Moves the children of exiting `idx` to the nearest living subreaper among its
    /// ancestors in its PID namespace, else to that namespace's init, as the kernel does.
    fn reparent_children(&mut self, idx: u32, ts_ns: u64, out: &mut Vec<Finding>) {
        let children = self.table.children(idx);
        if children.is_empty() {
            return;
        }
        let Some(reaper) = self
            .find_reaper(idx)
            .or_else(|| self.host_init_placeholder(idx))
        else {
            // The init of a namespace: its children are killed with it and it reaps them
            // itself on the way out. Or an unknown reaper: later events will say.
            if !self.table.at(idx).has(flag::NS_INIT) {
                for child in children {
                    self.move_child(child, NONE, idx, ts_ns);
                }
            }
            return;
        };
        let mut adopted_zombies = false;
        for child in children {
            adopted_zombies |= self.table.at(child).is_zombie();
            self.move_child(child, reaper, idx, ts_ns);
        }
        if adopted_zombies {
            self.check_leak(reaper, ts_ns, out);
        }
    }

    /// Moves `child` from `from` to `to` (`NONE`: not known yet), keeping the zombie counts.
    fn move_child(&mut self, child: u32, to: u32, from: u32, ts_ns: u64) {
        let (zombie, reported) = {
            let c = self.table.at(child);
            (c.is_zombie(), c.has(flag::ZOMBIE_REPORTED))
        };
        let from_start = self.table.at(from).start_ns;
        if zombie {
            let f = self.table.at_mut(from);
            f.zombies_held = f.zombies_held.saturating_sub(1);
            if reported {
                f.zombies_reported = f.zombies_reported.saturating_sub(1);
            }
        }
        self.table.set_parent(child, to);
        if to != NONE && zombie {
            self.table.at_mut(to).zombies_held += 1;
            // The new reaper is answerable from now on: a zombie of its own after
            // --zombie-after more, even if the old parent was already reported for it.
            let c = self.table.at_mut(child);
            c.flags &= !flag::ZOMBIE_REPORTED;
            let start = c.start_ns;
            self.zombies.schedule(
                child,
                start,
                ts_ns.saturating_add(self.config.zombie_after_ns),
            );
        }
        let c = self.table.at_mut(child);
        c.flags |= flag::ADOPTED;
        c.orphaned_by = from;
        c.orphaned_by_start = from_start;
        c.adopted_ns = ts_ns;
        if to == NONE {
            // Remember the orphaner as the parent of record until the real one shows up.
            c.parent = NONE;
        }
    }

    /// Who adopts the orphans of `idx`.
    fn find_reaper(&self, idx: u32) -> Option<u32> {
        let p = self.table.at(idx);
        let pidns = p.pidns;
        let mut a = p.parent;
        // Only ancestors in the same PID namespace can be its subreaper (the kernel walks
        // while the ancestor's pid is at the same namespace level).
        let mut hops = 0;
        while a != NONE && hops < 4096 {
            let anc = self.table.get(a)?;
            if anc.pidns != pidns && pidns != 0 && anc.pidns != 0 {
                break;
            }
            if anc.has(flag::SUBREAPER) && anc.is_alive() {
                return Some(a);
            }
            a = anc.parent;
            hops += 1;
        }
        match self.ns_inits.get(&pidns).copied() {
            Some(init) if init == idx => None,
            Some(init) if self.table.get(init).is_some_and(|i| i.is_alive()) => Some(init),
            _ => None,
        }
    }

    /// For an orphan of the initial PID namespace whose init the table has never seen (a
    /// replay of a log filtered to one subtree): pid 1, a stand-in that its first event fills
    /// in. Processes of the initial namespace are the ones whose pid there is their host pid.
    fn host_init_placeholder(&mut self, idx: u32) -> Option<u32> {
        let p = self.table.at(idx);
        if p.ns_pid != p.pid || p.pidns == 0 || p.pid == 1 || self.ns_inits.contains_key(&p.pidns) {
            return None;
        }
        let pidns = p.pidns;
        // Pid 1 known from /proc but with its namespace unreadable (a sandbox may hide
        // /proc/1/ns from root): it is that init.
        if let Some(one) = self.table.current(1)
            && self.table.at(one).pidns == 0
        {
            let p = self.table.at_mut(one);
            p.pidns = pidns;
            p.flags |= flag::NS_INIT;
            self.ns_inits.insert(pidns, one);
            return Some(one);
        }
        let mut init = super::table::Proc::new(1, 0, crate::event::Comm::from("?"));
        init.ns_pid = 1;
        init.pidns = pidns;
        init.flags |= flag::PLACEHOLDER | flag::NS_INIT;
        let init = self.table.insert(init);
        self.ns_inits.insert(pidns, init);
        Some(init)
    }

    /// Checks the parent the kernel reports for `idx` (`ppid`, host pid) against the table.
    /// When they differ after a reparenting the table predicted: either the real parent is
    /// an ancestor it did not know to be a subreaper (learned now), or the table is wrong,
    /// which is surfaced as a disagreement.
    pub(super) fn confirm_parent(&mut self, idx: u32, ppid: u32, ts_ns: u64) {
        let p = self.table.at(idx);
        let parent = p.parent;
        if ppid == 0 || p.has(flag::REAPED) {
            return;
        }
        if parent != NONE && self.table.get(parent).is_some_and(|pp| pp.pid == ppid) {
            return;
        }
        // A header read between the old parent's exit event and its reparenting still names
        // the old parent.
        if p.has(flag::ADOPTED)
            && self
                .table
                .check(p.orphaned_by, p.orphaned_by_start)
                .is_some_and(|o| o.pid == ppid)
        {
            return;
        }
        let Some(actual) = self.table.current(ppid) else {
            return;
        };
        let predicted = (parent != NONE).then_some(parent);
        self.correct_parent(idx, actual, predicted, ts_ns);
    }

    /// Sets the real parent of `idx`, learning subreapers and recording disagreements.
    pub(super) fn correct_parent(
        &mut self,
        idx: u32,
        actual: u32,
        predicted: Option<u32>,
        ts_ns: u64,
    ) {
        let adopted = self.table.at(idx).has(flag::ADOPTED);
        if let Some(predicted) = predicted {
            let orphaner = self.table.at(idx).orphaned_by;
            let orphaner_start = self.table.at(idx).orphaned_by_start;
            let learned = adopted
                && self.table.check(orphaner, orphaner_start).is_some()
                && self.is_ancestor(actual, orphaner);
            if learned {
                self.table.at_mut(actual).flags |= flag::SUBREAPER;
                self.counters.subreapers_learned += 1;
            } else if !self.needs_reconcile {
                let c = self.table.at(idx);
                let text = format!(
                    "{} ({}): table had parent {} ({}), kernel says {} ({})",
                    c.pid,
                    c.comm,
                    self.table.at(predicted).pid,
                    self.table.at(predicted).comm,
                    self.table.at(actual).pid,
                    self.table.at(actual).comm,
                );
                self.counters.disagreements += 1;
                if self.counters.disagreement_samples.len() < MAX_SAMPLES {
                    self.counters
                        .disagreement_samples
                        .push(Disagreement { ts_ns, text });
                }
            }
        }
        let zombie = self.table.at(idx).is_zombie();
        let reported = self.table.at(idx).has(flag::ZOMBIE_REPORTED);
        if let Some(old) = predicted.filter(|_| zombie) {
            let o = self.table.at_mut(old);
            o.zombies_held = o.zombies_held.saturating_sub(1);
            if reported {
                o.zombies_reported = o.zombies_reported.saturating_sub(1);
            }
        }
        self.table.set_parent(idx, actual);
        if zombie {
            let a = self.table.at_mut(actual);
            a.zombies_held += 1;
            if reported {
                a.zombies_reported += 1;
            }
        }
    }

    /// Whether `anc` is `idx` or one of its ancestors in the table.
    fn is_ancestor(&self, anc: u32, idx: u32) -> bool {
        let mut a = idx;
        let mut hops = 0;
        while a != NONE && hops < 4096 {
            if a == anc {
                return true;
            }
            a = self.table.get(a).map_or(NONE, |p| p.parent);
            hops += 1;
        }
        false
    }
}
