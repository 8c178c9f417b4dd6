//! The engine as the live tracer runs it: bootstrapped from /proc, reconciled with /proc
//! after lost events, cgroups resolved to containers as they appear, and woken by a timer
//! only while a deadline is outstanding. This is the I/O the engine itself does not do.

use std::{
    collections::HashSet,
    fs,
    os::unix::fs::MetadataExt as _,
    path::Path,
    time::{Duration, Instant},
};

use super::{
    Config, Engine, Finding, Observation, SnapshotReason, Summary,
    snapshot::{Snapshot, snapshot},
};
use crate::{clock, event::Event};

/// A /proc reconcile at most this often, however often events are lost: a scan of /proc is
/// the expensive part, and losses come in bursts.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

pub struct LiveEngine {
    engine: Engine,
    last_reconcile: Option<Instant>,
    /// cgroup ids looked for in /sys/fs/cgroup and not found (each is looked for once).
    unresolved: HashSet<u64>,
    /// What the engine learned from the system since the last [`take_observations`]
    /// (Self::take_observations), for the log.
    observations: Vec<Observation>,
}

impl LiveEngine {
    /// Bootstraps from `snapshot`, taken once the ring buffer is open, before reading it.
    pub fn new(config: Config, snapshot: Snapshot) -> Self {
        let mut live = Self {
            engine: Engine::new(config),
            last_reconcile: None,
            unresolved: HashSet::new(),
            observations: Vec::new(),
        };
        live.learn(Observation::Snapshot {
            reason: SnapshotReason::Start,
            snapshot,
        });
        live
    }

    /// The deadlines passed by the time of `event`, and the container of a cgroup it is the
    /// first to show: call before showing it.
    pub fn before(&mut self, event: &Event) -> Vec<Finding> {
        let out = self.engine.tick(event.ts_ns);
        let cgroup = event.task.cgroup_id;
        if cgroup != 0
            && !self.engine.knows_cgroup(cgroup)
            && self.unresolved.insert(cgroup)
            && let Some(path) = cgroup_path(cgroup)
        {
            self.learn(Observation::Cgroup { id: cgroup, path });
        }
        out
    }

    /// What `event` changes: call after showing it.
    pub fn after(&mut self, event: &Event) -> Vec<Finding> {
        let mut out = self.engine.observe(event);
        if self.engine.needs_reconcile()
            && self
                .last_reconcile
                .is_none_or(|t| t.elapsed() >= RECONCILE_EVERY)
        {
            self.last_reconcile = Some(Instant::now());
            out.extend(self.reconcile());
        }
        out
    }

    /// Limits the findings to `pids` and what they start (added to earlier calls').
    pub fn widen_scope(&mut self, pids: Vec<u32>) {
        self.learn(Observation::Scope { pids });
    }

    /// What the engine learned from the system since the last call, in order: the log
    /// records it so a replay learns the same at the same point.
    pub fn take_observations(&mut self) -> std::vec::Drain<'_, Observation> {
        self.observations.drain(..)
    }

    fn learn(&mut self, observation: Observation) -> Vec<Finding> {
        let out = self.engine.apply(&observation);
        self.observations.push(observation);
        out
    }

    fn reconcile(&mut self) -> Vec<Finding> {
        self.learn(Observation::Snapshot {
            reason: SnapshotReason::Reconcile,
            snapshot: snapshot(clock::boot_ns()),
        })
    }

    /// When the timer should next call [`tick`](Self::tick); `None` while nothing is
    /// outstanding, so an idle tracer does not wake up.
    pub fn wake_at(&self) -> Option<tokio::time::Instant> {
        let deadline = self.engine.next_deadline()?;
        let wait = Duration::from_nanos(deadline.saturating_sub(clock::boot_ns()));
        // A little late rather than early: events stamped before the deadline may still be
        // on their way through the ring buffer.
        Some(tokio::time::Instant::now() + wait + Duration::from_millis(20))
    }

    /// The deadlines passed by now.
    pub fn tick(&mut self) -> Vec<Finding> {
        self.engine.tick(clock::boot_ns())
    }

    /// The end of the trace: a last reconcile if events were lost since the previous one
    /// (reconciles are rate-limited), then what is still open.
    pub fn finish(&mut self) -> Vec<Finding> {
        let mut out = Vec::new();
        if self.engine.needs_reconcile() {
            out.extend(self.reconcile());
        }
        out.extend(self.engine.finish());
        out
    }

    pub fn summary(&self) -> Summary {
        self.engine.summary()
    }
}

/// The cgroup v2 path whose directory has inode `id` (the id events carry), searched under
/// /sys/fs/cgroup to a bounded depth and breadth.
fn cgroup_path(id: u64) -> Option<String> {
    let root = Path::new("/sys/fs/cgroup");
    let mut queue = vec![(root.to_path_buf(), 0)];
    let mut visited = 0;
    while let Some((dir, depth)) = queue.pop() {
        visited += 1;
        if visited > 20_000 {
            return None;
        }
        let Ok(meta) = fs::metadata(&dir) else {
            continue;
        };
        if meta.ino() == id {
            let rel = dir.strip_prefix(root).ok()?;
            return Some(format!("/{}", rel.display()));
        }
        if depth >= 8 {
            continue;
        }
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                queue.push((entry.path(), depth + 1));
            }
        }
    }
    None
}
