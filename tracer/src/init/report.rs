//! What init tells people on stderr: warnings, `-v` reap lines, the exit summary.

use std::io::Write as _;
use std::time::Duration;

use super::signals;

/// One line on stderr. A closed or full stderr must not take init down (eprintln! would panic),
/// so write errors are dropped.
pub fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "tracer init: {line}");
}

/// How a process ended, from a wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed { signal: i32, core: bool },
}

impl Ended {
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            Ended::Killed {
                signal: libc::WTERMSIG(status),
                core: libc::WCOREDUMP(status),
            }
        } else {
            Ended::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// A shell's convention: the code, or 128+signal.
    pub fn code(self) -> i32 {
        match self {
            Ended::Exited(c) => c,
            Ended::Killed { signal, .. } => 128 + signal,
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Ended::Exited(c) => write!(f, "exited {c}"),
            Ended::Killed { signal, core } => {
                write!(f, "killed by {}", signals::name(signal))?;
                if core {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
        }
    }
}

/// A reaped process other than the main child, as `-v` reports it.
pub struct ReapLine<'a> {
    pub pid: i32,
    pub comm: Option<&'a str>,
    pub ended: Ended,
    pub zombie_for: Duration,
    pub orphaned_by: Option<(i32, &'a str)>,
}

pub fn reaped(r: &ReapLine<'_>) {
    let comm = r.comm.unwrap_or("?");
    let origin = match r.orphaned_by {
        Some((pid, comm)) => format!(", orphaned by {pid} ({comm})"),
        None => String::new(),
    };
    say(format_args!(
        "reaped {} ({comm}) {}, zombie for ≥{}{origin}",
        r.pid,
        r.ended,
        human(r.zombie_for)
    ));
}

pub fn human(d: Duration) -> String {
    let us = d.as_micros();
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1_000.0)
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

/// Counts for the one-line exit summary.
#[derive(Debug, Default)]
pub struct Stats {
    pub reaped: u64,
    pub adopted: u64,
    pub forwarded: u64,
    pub dropped: u64,
}

pub fn summary(ended: Option<Ended>, code: i32, stats: &Stats) {
    let child = match ended {
        Some(e) => format!("child {e}"),
        None => "child did not run".to_owned(),
    };
    say(format_args!(
        "{child}, exit {code}; reaped {} processes ({} adopted orphans), forwarded {} signals ({} dropped)",
        stats.reaped, stats.adopted, stats.forwarded, stats.dropped
    ));
}
