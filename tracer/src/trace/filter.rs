//! Which events a trace shows: by kind, and by subtree (a pid and everything it starts).

use std::collections::{HashMap, HashSet};

use tracer_common::EventKind;

use crate::event::{Event, EventData};

/// How long a released member's pid is remembered for burst records written late (the probes
/// write them within tens of milliseconds).
const LATE_BURSTS_NS: u64 = 10_000_000_000;

/// Released members kept before the first look for ones past `LATE_BURSTS_NS`.
const PRUNE_AT_LEAST: usize = 4096;

/// A set of processes that grows with every fork of a member and shrinks when a member is
/// released. Membership is by pid, so a process stays in when it is reparented away.
#[derive(Debug)]
pub struct Subtree {
    members: HashSet<u32>,
    /// Members released lately, and when: the probes write counted signal repeats late, so a
    /// burst of what a member sent or received before its release can come after it.
    released: HashMap<u32, u64>,
    /// Size of `released` at which the ones past `LATE_BURSTS_NS` are next dropped: twice what
    /// stayed the last time, so that a subtree releasing thousands a second costs no pass
    /// over them per release.
    prune_at: usize,
}

impl Subtree {
    pub fn new(roots: impl IntoIterator<Item = u32>) -> Self {
        Self {
            members: roots.into_iter().collect(),
            released: HashMap::new(),
            prune_at: PRUNE_AT_LEAST,
        }
    }

    /// `pid` was a member released after `first_ns`.
    fn released_since(&self, pid: u32, first_ns: u64) -> bool {
        self.released.get(&pid).is_some_and(|&at| first_ns <= at)
    }

    fn release(&mut self, pid: u32, ts_ns: u64) -> bool {
        if !self.members.remove(&pid) {
            return false;
        }
        if self.released.len() >= self.prune_at {
            self.released
                .retain(|_, at| at.saturating_add(LATE_BURSTS_NS) >= ts_ns);
            self.prune_at = (2 * self.released.len()).max(PRUNE_AT_LEAST);
        }
        self.released.insert(pid, ts_ns);
        true
    }

    pub fn insert(&mut self, pid: u32) {
        self.members.insert(pid);
    }

    pub fn contains(&self, pid: u32) -> bool {
        self.members.contains(&pid)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> impl Iterator<Item = u32> + '_ {
        self.members.iter().copied()
    }

    pub fn remove(&mut self, pid: u32) {
        self.members.remove(&pid);
    }

    /// Updates membership with `event` and says whether the event concerns the subtree.
    pub fn observe(&mut self, event: &Event) -> bool {
        let pid = event.task.pid;
        match &event.data {
            EventData::Fork(fork) => {
                let inside = self.contains(pid) || self.contains(fork.child_pid);
                if inside && !fork.thread {
                    self.members.insert(fork.child_pid);
                }
                inside
            }
            EventData::Signal(signal) => self.contains(pid) || self.contains(signal.target.pid),
            EventData::SignalBurst(burst) => {
                self.contains(pid)
                    || self.contains(burst.target.pid)
                    || self.released_since(pid, burst.first_ns)
                    || self.released_since(burst.target.pid, burst.first_ns)
            }
            EventData::DeliverBurst(burst) => {
                self.contains(pid) || self.released_since(pid, burst.first_ns)
            }
            EventData::Reap(_) => self.release(pid, event.ts_ns),
            EventData::Lost(_) => true,
            _ => self.contains(pid),
        }
    }
}

/// The event kinds to show.
#[derive(Clone, Copy, Debug)]
pub struct Kinds {
    shown: [bool; EventKind::SLOTS],
}

impl Kinds {
    /// Every kind, or those listed. `lost` is always shown: a loss is never silent. Bursts
    /// (repeats counted in the kernel) go with the kind they repeat: `signal` shows
    /// `signal_burst` too, so that the signals shown are all the signals sent.
    pub fn new(listed: &[EventKind]) -> Self {
        let mut shown = [listed.is_empty(); EventKind::SLOTS];
        for kind in listed {
            shown[*kind as usize] = true;
        }
        shown[EventKind::Lost as usize] = true;
        Self { shown }
    }

    pub fn shows(&self, kind: EventKind) -> bool {
        self.shown[kind as usize] || self.shown[kind.base() as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Comm, ExitStatus, Fork, Reap, ReapHow, Task};

    fn event(pid: u32, data: EventData) -> Event {
        Event {
            ts_ns: 0,
            task: Task {
                pid,
                tid: pid,
                ..Task::default()
            },
            data,
        }
    }

    fn fork(parent: u32, child: u32) -> Event {
        event(
            parent,
            EventData::Fork(Fork {
                child_pid: child,
                child_tid: child,
                child_ns_pid: child,
                child_pidns: 0,
                child_ppid: parent,
                child_start_ns: 0,
                thread: false,
            }),
        )
    }

    fn reap(pid: u32) -> Event {
        event(
            pid,
            EventData::Reap(Reap {
                reaper_pid: 1,
                reaper_tid: 1,
                reaper_comm: Comm::from("init"),
                how: ReapHow::Wait,
                status: ExitStatus::from_wait_status(0),
                exit_ns: None,
                zombie_ns: None,
            }),
        )
    }

    #[test]
    fn follows_descendants_and_forgets_the_released() {
        let mut tree = Subtree::new([10]);
        assert!(tree.observe(&fork(10, 11)));
        assert!(tree.observe(&fork(11, 12)));
        assert!(!tree.observe(&fork(99, 100)));
        assert!(tree.contains(12) && !tree.contains(100));
        assert!(tree.observe(&reap(12)));
        assert!(!tree.contains(12));
        // pid 12 reused by an outsider later: not ours.
        assert!(!tree.observe(&fork(99, 12)));
        assert!(!tree.contains(12));
    }

    #[test]
    fn late_bursts_of_released_members_are_kept() {
        let mut tree = Subtree::new([10]);
        assert!(tree.observe(&fork(10, 11)));
        let mut reaped = reap(11);
        reaped.ts_ns = 500;
        assert!(tree.observe(&reaped));
        let deliveries = |first_ns| {
            event(
                11,
                EventData::DeliverBurst(crate::event::DeliverBurst {
                    sig: crate::event::Sig(10),
                    si_code: 0,
                    disposition: crate::event::Disposition::Handler,
                    sa_flags: 0,
                    first_ns,
                    count: 9,
                }),
            )
        };
        assert!(tree.observe(&deliveries(400)), "counted before the release");
        assert!(
            !tree.observe(&deliveries(600)),
            "pid 11 is someone else's now"
        );
        assert!(!tree.contains(11));
    }

    /// A subtree releasing members without end keeps only those of the last `LATE_BURSTS_NS`
    /// (and at most twice as many between looks), and still knows the recent ones.
    #[test]
    fn released_members_are_kept_for_late_bursts_only() {
        let mut tree = Subtree::new([1]);
        let per_window = 3_000u64;
        let step = LATE_BURSTS_NS / per_window;
        for i in 0..50_000u64 {
            let pid = 2 + (i % 30_000) as u32;
            tree.insert(pid);
            assert!(tree.release(pid, i * step));
            assert!(
                tree.released.len() as u64 <= 2 * per_window.max(PRUNE_AT_LEAST as u64) + 1,
                "{} kept at release {i}",
                tree.released.len()
            );
        }
        let last = 2 + (49_999 % 30_000) as u32;
        assert!(tree.released_since(last, 49_999 * step));
    }

    #[test]
    fn lost_is_always_shown() {
        let kinds = Kinds::new(&[EventKind::Fork]);
        assert!(kinds.shows(EventKind::Fork) && kinds.shows(EventKind::Lost));
        assert!(!kinds.shows(EventKind::Exit));
        assert!(Kinds::new(&[]).shows(EventKind::SignalDeliver));
    }

    #[test]
    fn bursts_go_with_the_kind_they_repeat() {
        let kinds = Kinds::new(&[EventKind::Signal]);
        assert!(kinds.shows(EventKind::SignalBurst));
        assert!(!kinds.shows(EventKind::DeliverBurst));
        let kinds = Kinds::new(&[EventKind::DeliverBurst]);
        assert!(kinds.shows(EventKind::DeliverBurst));
        assert!(!kinds.shows(EventKind::SignalDeliver));
    }
}
