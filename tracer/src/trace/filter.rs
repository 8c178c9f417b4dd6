//! Which events a trace shows: by kind, and by subtree (a pid and everything it starts).

use std::collections::HashSet;

use tracer_common::EventKind;

use crate::event::{Event, EventData};

/// A set of processes that grows with every fork of a member and shrinks when a member is
/// released. Membership is by pid, so a process stays in when it is reparented away.
#[derive(Debug, Default)]
pub struct Subtree {
    members: HashSet<u32>,
}

impl Subtree {
    pub fn new(roots: impl IntoIterator<Item = u32>) -> Self {
        Self {
            members: roots.into_iter().collect(),
        }
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
            EventData::Signal(signal) => self.contains(pid) || self.contains(signal.target_pid),
            EventData::Reap(_) => self.members.remove(&pid),
            EventData::Lost(_) => true,
            _ => self.contains(pid),
        }
    }
}

/// The event kinds to show.
#[derive(Clone, Copy, Debug)]
pub struct Kinds {
    shown: [bool; 9],
}

impl Kinds {
    /// Every kind, or those listed. `lost` is always shown: a loss is never silent.
    pub fn new(listed: &[EventKind]) -> Self {
        let mut shown = [listed.is_empty(); 9];
        for kind in listed {
            shown[*kind as usize] = true;
        }
        shown[EventKind::Lost as usize] = true;
        Self { shown }
    }

    pub fn shows(&self, kind: EventKind) -> bool {
        self.shown[kind as usize]
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
    fn lost_is_always_shown() {
        let kinds = Kinds::new(&[EventKind::Fork]);
        assert!(kinds.shows(EventKind::Fork) && kinds.shows(EventKind::Lost));
        assert!(!kinds.shows(EventKind::Exit));
        assert!(Kinds::new(&[]).shows(EventKind::SignalDeliver));
    }
}
