//! The last comm seen per process, so an exec can say what the process was called before.

use std::collections::HashMap;

use crate::{
    engine::snapshot::Snapshot,
    event::{Comm, Event, EventData},
};

/// Bounded: entries leave when their process is released; if releases were lost the map is
/// cleared at this size rather than grow.
const MAX_ENTRIES: usize = 1 << 16;

#[derive(Default)]
pub struct CommCache {
    comms: HashMap<u32, Comm>,
}

impl CommCache {
    /// Seeded with every process of the start-up snapshot.
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        Self {
            comms: snapshot
                .procs
                .iter()
                .map(|p| (p.pid, Comm::from(p.comm.as_str())))
                .collect(),
        }
    }

    /// Fills in `comm_before` of an exec, and remembers comms.
    pub fn enrich(&mut self, event: &mut Event) {
        let pid = event.task.pid;
        if self.comms.len() >= MAX_ENTRIES {
            self.comms.clear();
        }
        match &mut event.data {
            EventData::Exec(exec) => {
                exec.comm_before = self.comms.insert(pid, event.task.comm);
            }
            EventData::Fork(fork) if !fork.thread => {
                self.comms.insert(fork.child_pid, event.task.comm);
            }
            EventData::Reap(_) => {
                self.comms.remove(&pid);
            }
            EventData::Lost(_) => {}
            _ => {
                self.comms.entry(pid).or_insert(event.task.comm);
            }
        }
    }
}
