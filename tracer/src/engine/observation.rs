//! What the engine learns from the system rather than from events: the /proc snapshot it
//! starts from, the snapshots it reconciles with after lost events, the cgroup paths that
//! name containers, and which processes the trace is about. The live tracer writes each one into its JSON Lines log where the engine
//! took it in, so that `tracer replay` of the log learns the same at the same point and finds
//! the same (pre-existing zombies, "exit missed", container ids).

use serde::{Deserialize, Serialize};

use super::{Engine, Finding, Snapshot};

/// One log line: `{"snapshot":{...}}`, `{"cgroup":{...}}` or `{"scope":{...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// Every process in /proc at one moment.
    Snapshot {
        reason: SnapshotReason,
        #[serde(flatten)]
        snapshot: Snapshot,
    },
    /// The cgroup v2 path of a cgroup id first seen in an event.
    Cgroup { id: u64, path: String },
    /// The trace is about these processes and what they start (`--pid`, `-- COMMAND`): the
    /// engine reports findings about them only.
    Scope { pids: Vec<u32> },
}

/// Why a snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotReason {
    /// The process table's starting point, taken once the event source was open.
    Start,
    /// A check of the table after events were lost.
    Reconcile,
}

impl Observation {
    /// Whether a log line is an observation rather than an event (a cheap look at its key).
    pub fn is_observation(line: &[u8]) -> bool {
        line.starts_with(b"{\"snapshot\"")
            || line.starts_with(b"{\"cgroup\"")
            || line.starts_with(b"{\"scope\"")
    }
}

impl Engine {
    /// Takes in an observation; returns what it concludes (a reconcile can find exits missed).
    pub fn apply(&mut self, observation: &Observation) -> Vec<Finding> {
        match observation {
            Observation::Snapshot {
                reason: SnapshotReason::Start,
                snapshot,
            } => {
                self.bootstrap(snapshot);
                Vec::new()
            }
            Observation::Snapshot {
                reason: SnapshotReason::Reconcile,
                snapshot,
            } => self.reconcile(snapshot),
            Observation::Cgroup { id, path } => {
                self.learn_cgroup(*id, path);
                Vec::new()
            }
            Observation::Scope { pids } => {
                self.widen_scope(pids);
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::snapshot::ProcInfo;

    #[test]
    fn lines_round_trip() {
        let snapshot = Observation::Snapshot {
            reason: SnapshotReason::Start,
            snapshot: Snapshot {
                taken_ns: 5,
                ns_per_tick: 10_000_000,
                procs: vec![ProcInfo {
                    pid: 7,
                    ppid: 1,
                    start_ns: 3,
                    comm: "a \"b\"".into(),
                    exe: None,
                    ns_pid: 7,
                    pidns: 4026531836,
                    cgroup: "/system.slice/docker-ab12.scope".into(),
                    cgroup_id: 99,
                    state: 'Z',
                    exit_status: 256,
                }],
            },
        };
        let cgroup = Observation::Cgroup {
            id: 99,
            path: "/kubepods/pod1/cafe".into(),
        };
        let scope = Observation::Scope { pids: vec![1, 2] };
        for observation in [snapshot, cgroup, scope] {
            let line = serde_json::to_string(&observation).unwrap();
            assert!(Observation::is_observation(line.as_bytes()), "{line}");
            let back: Observation = serde_json::from_str(&line).unwrap();
            assert_eq!(back, observation);
        }
    }
}
