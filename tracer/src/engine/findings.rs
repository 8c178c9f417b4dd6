//! What the engine concludes: findings, their JSON form (`"finding": KIND`), and one
//! readable line each for the text output.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::container::Container;
use crate::{
    duration::human,
    event::{Comm, Disposition, ExitStatus, ReapHow, Sig},
};

/// One conclusion about the traced processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// A process has been exited-but-unreaped longer than `--zombie-after`.
    Zombie(Zombie),
    /// A zombie reported earlier was finally released.
    ZombieReaped(ZombieReaped),
    /// One reaper holds several unreaped zombies, or ever more of them.
    ZombieLeak(ZombieLeak),
    /// A signal was sent and never acted on as sent.
    SignalDropped(SignalDropped),
}

impl Finding {
    /// The pids a finding is about (the process, its reaper, the signal's sender and target).
    pub fn pids(&self) -> impl Iterator<Item = u32> {
        let (a, b) = match self {
            Self::Zombie(f) => (f.process.pid, Some(f.reaper.pid)),
            Self::ZombieReaped(f) => (f.process.pid, Some(f.reaper.pid)),
            Self::ZombieLeak(f) => (f.reaper.pid, None),
            Self::SignalDropped(f) => (f.target.pid, Some(f.sender.pid)),
        };
        std::iter::once(a).chain(b)
    }

    /// Boot-clock time the finding is about (its deadline, or the event that caused it).
    pub fn ts_ns(&self) -> u64 {
        match self {
            Self::Zombie(f) => f.ts_ns,
            Self::ZombieReaped(f) => f.ts_ns,
            Self::ZombieLeak(f) => f.ts_ns,
            Self::SignalDropped(f) => f.ts_ns,
        }
    }

    /// `zombie`, `zombie_reaped`, `zombie_leak` or `signal_dropped`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Zombie(_) => "zombie",
            Self::ZombieReaped(_) => "zombie_reaped",
            Self::ZombieLeak(_) => "zombie_leak",
            Self::SignalDropped(_) => "signal_dropped",
        }
    }
}

/// A process as a finding names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: u32,
    pub comm: Comm,
    /// With `pid`, names the process for good (0: unknown).
    pub start_ns: u64,
    /// Its pid inside its own PID namespace.
    pub ns_pid: u32,
    /// Inode of its PID namespace (0: unknown).
    pub pidns: u32,
    /// It is PID 1 of its PID namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ns_init: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

impl fmt::Display for ProcRef {
    /// `4321 (chrome)`, `1 (npm, pid 1 in container docker abc123)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.pid, self.comm)?;
        match (&self.container, self.ns_pid != self.pid || self.ns_init) {
            (Some(c), _) => write!(f, ", pid {} in container {c}", self.ns_pid)?,
            (None, true) if self.ns_init => write!(f, ", pid 1 of its namespace")?,
            (None, true) => write!(f, ", pid {} in its namespace", self.ns_pid)?,
            (None, false) => {}
        }
        f.write_str(")")
    }
}

/// Why a reaper has not released its zombie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Diagnosis {
    /// Born during the trace and has never called wait.
    NeverWaited,
    /// Existed before the trace and has not called wait since it started.
    NoWaitSinceTraceStart,
    /// Has called wait, but not since this child exited.
    NotWaitedSinceExit,
    /// Has called wait since, but only for other, named children (`waitpid(PID)`), as
    /// libuv does for the children node spawned itself.
    WaitsOnlyForOthers,
    /// Is stopped (SIGSTOP and the like), so cannot wait.
    Stopped,
    /// Is itself exiting.
    Exiting,
}

impl Diagnosis {
    fn describe(self, last_wait: Option<u64>, now: u64) -> String {
        let ago = |t: Option<u64>| t.map(|t| human(now.saturating_sub(t))).unwrap_or_default();
        match self {
            Self::NeverWaited => "has never called wait()".into(),
            Self::NoWaitSinceTraceStart => "has not called wait() since the trace started".into(),
            Self::NotWaitedSinceExit => format!(
                "has not called wait() since the child exited (last {} ago)",
                ago(last_wait)
            ),
            Self::WaitsOnlyForOthers => format!(
                "waits only for other, named children, never for any child (last wait {} ago)",
                ago(last_wait)
            ),
            Self::Stopped => "is stopped and cannot wait".into(),
            Self::Exiting => "is itself exiting".into(),
        }
    }
}

/// A process exited-but-unreaped longer than `--zombie-after`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zombie {
    pub ts_ns: u64,
    pub process: ProcRef,
    /// How it ended (unknown when it was a zombie before the trace and /proc did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<ExitStatus>,
    /// When it exited (absent: before the trace started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_ns: Option<u64>,
    /// How long it has been a zombie; a lower bound when `age_at_least`.
    pub age_ns: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub age_at_least: bool,
    /// Who has to wait for it: its parent now.
    pub reaper: ProcRef,
    /// The reaper is not the original parent: it inherited the zombie, or its live parent.
    pub adopted: bool,
    /// The parent whose exit orphaned it (or its ancestor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_from: Option<ProcRef>,
    pub diagnosis: Diagnosis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaper_last_wait_ns: Option<u64>,
    /// Unreaped zombies the reaper holds in all, this one included.
    pub reaper_zombies: u32,
}

/// A zombie reported earlier was released.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZombieReaped {
    pub ts_ns: u64,
    pub process: ProcRef,
    pub reaper: ProcRef,
    pub how: ReapHow,
    /// Its whole time as a zombie; a lower bound when `age_at_least`.
    pub age_ns: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub age_at_least: bool,
}

/// How many zombies of one name a reaper holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommCount {
    pub comm: Comm,
    pub count: u32,
}

/// A reaper holding `--leak-threshold` or more unreaped zombies (again each time the count
/// doubles).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZombieLeak {
    pub ts_ns: u64,
    pub reaper: ProcRef,
    /// Zombies older than `--zombie-after` it holds now.
    pub zombies: u32,
    /// Of those, how many it inherited rather than started.
    pub adopted: u32,
    /// Adopted children it has ever reaped.
    pub reaped_adopted: u32,
    /// Their names, most frequent first.
    pub comms: Vec<CommCount>,
    pub diagnosis: Diagnosis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaper_last_wait_ns: Option<u64>,
}

/// Why a signal never arrived as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Sent to PID 1 of a PID namespace with no handler for it: the kernel drops it.
    IgnoredByInit,
    /// The target ignores it (SIG_IGN), or was exiting.
    Ignored,
    /// Already pending: merged into the pending one (`count` merged).
    Coalesced,
    /// Real-time signal refused: the target's queue is full.
    QueueOverflow,
    /// Queued, but the target exited before it was delivered.
    TargetExited,
    /// Pending longer than `--blocked-after` because the target blocks it.
    Blocked,
}

impl DropReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::IgnoredByInit => "ignored_by_init",
            Self::Ignored => "ignored",
            Self::Coalesced => "coalesced",
            Self::QueueOverflow => "queue_overflow",
            Self::TargetExited => "target_exited",
            Self::Blocked => "blocked",
        }
    }
}

/// A signal that was sent and not acted on as sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalDropped {
    pub ts_ns: u64,
    pub reason: DropReason,
    #[serde(flatten)]
    pub sig: Sig,
    pub si_code: i32,
    /// The sender: the process that called kill(), or the one the kernel acted for
    /// (the exiting child of a SIGCHLD, the faulting process of a SIGSEGV).
    pub sender: ProcRef,
    /// The kernel generated it (si_code > 0), rather than kill() and friends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_kernel: bool,
    pub target: ProcRef,
    /// The target's disposition for the signal when it was sent.
    pub disposition: Disposition,
    /// How many signals this finding is about when more than one: `coalesced`, how many were
    /// merged into the pending one (`count + 1` were sent); otherwise how many were dropped
    /// this way (a burst of them, or real-time signals queued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// `blocked`, `target_exited`: how long it was pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_ns: Option<u64>,
    /// `ignored_by_init`: the init's children, none of whom got the signal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<ProcRef>,
}

fn status_text(status: Option<ExitStatus>) -> String {
    match status {
        Some(s) => match (s.code, s.killed_by) {
            (Some(code), _) => format!("exited {code}"),
            (None, Some(sig)) => format!("killed by {sig}"),
            _ => format!("status {:#x}", s.status),
        },
        None => "exited".into(),
    }
}

fn at_least(flag: bool) -> &'static str {
    if flag { "at least " } else { "" }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Zombie(z) => {
                write!(
                    f,
                    "ZOMBIE  {} {}, unreaped for {}{}; reaper {}",
                    z.process,
                    status_text(z.exit_status),
                    at_least(z.age_at_least),
                    human(z.age_ns),
                    z.reaper,
                )?;
                match &z.adopted_from {
                    Some(from) => write!(f, " adopted it from {from} and")?,
                    None if z.adopted => f.write_str(" adopted it and")?,
                    None => f.write_str(" is its parent and")?,
                }
                write!(
                    f,
                    " {}",
                    z.diagnosis.describe(z.reaper_last_wait_ns, z.ts_ns)
                )?;
                if z.reaper_zombies > 1 {
                    write!(f, " ({} zombies held)", z.reaper_zombies)?;
                }
                Ok(())
            }
            Self::ZombieReaped(r) => {
                let how = match r.how {
                    ReapHow::Wait => "reaped by",
                    ReapHow::Autoreap => "autoreaped, parent",
                    ReapHow::Other => "released, parent",
                };
                write!(
                    f,
                    "ZOMBIE REAPED  {} {how} {} after {}{} as a zombie",
                    r.process,
                    r.reaper,
                    at_least(r.age_at_least),
                    human(r.age_ns)
                )
            }
            Self::ZombieLeak(l) => {
                write!(
                    f,
                    "ZOMBIE LEAK  {} holds {} unreaped zombies",
                    l.reaper, l.zombies
                )?;
                let names: Vec<String> = l
                    .comms
                    .iter()
                    .map(|c| format!("{} ×{}", c.comm, c.count))
                    .collect();
                if !names.is_empty() {
                    write!(f, " ({})", names.join(", "))?;
                }
                write!(
                    f,
                    "; it adopted {} of them and has reaped {} of the children it adopted; it {}",
                    l.adopted,
                    if l.reaped_adopted == 0 {
                        "none".to_owned()
                    } else {
                        l.reaped_adopted.to_string()
                    },
                    l.diagnosis.describe(l.reaper_last_wait_ns, l.ts_ns)
                )
            }
            Self::SignalDropped(s) => {
                write!(
                    f,
                    "SIGNAL DROPPED  {} from {}{} to {}: ",
                    s.sig,
                    s.sender,
                    if s.from_kernel { " (kernel)" } else { "" },
                    s.target
                )?;
                let times = match (s.reason, s.count) {
                    (DropReason::Coalesced, _) | (_, None | Some(0..=1)) => String::new(),
                    (_, Some(n)) => format!(" ({n} of them)"),
                };
                match s.reason {
                    DropReason::IgnoredByInit => {
                        write!(
                            f,
                            "ignored_by_init: PID 1 of a namespace with no handler for {}, the \
                             kernel dropped it{times}",
                            s.sig
                        )?;
                        if !s.children.is_empty() {
                            let kids: Vec<String> =
                                s.children.iter().map(ToString::to_string).collect();
                            write!(f, "; its children got nothing: {}", kids.join(", "))?;
                        }
                        Ok(())
                    }
                    DropReason::Ignored => match s.disposition {
                        Disposition::Ignore => write!(f, "ignored: the target ignores it{times}"),
                        _ => write!(f, "ignored: the target was exiting{times}"),
                    },
                    DropReason::Coalesced => write!(
                        f,
                        "coalesced: {} sent while one was pending, {} merged away",
                        s.count.unwrap_or(0).saturating_add(1),
                        s.count.unwrap_or(0)
                    ),
                    DropReason::QueueOverflow => write!(
                        f,
                        "queue_overflow: the target's signal queue is full{times}"
                    ),
                    DropReason::TargetExited => write!(
                        f,
                        "target_exited: pending {} and never delivered before the target \
                         exited{times}",
                        human(s.pending_ns.unwrap_or(0))
                    ),
                    DropReason::Blocked => write!(
                        f,
                        "blocked: pending for {} because the target blocks it",
                        human(s.pending_ns.unwrap_or(0))
                    ),
                }
            }
        }
    }
}
