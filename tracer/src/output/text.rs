//! One aligned line per event, for people.

use std::{
    fmt::Write as _,
    io::{self, BufWriter, Write},
};

use super::Sink;
use crate::{
    duration::human,
    event::{Disposition, Event, EventData, Exec, ReapHow, Wait},
};

pub struct TextSink {
    out: BufWriter<Box<dyn Write>>,
    start_ns: u64,
    line: String,
}

impl TextSink {
    pub fn new(out: Box<dyn Write>, start_ns: u64) -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, out),
            start_ns,
            line: String::with_capacity(256),
        }
    }
}

impl Sink for TextSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        self.line.clear();
        format_line(&mut self.line, event, self.start_ns);
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())
    }

    fn finding(&mut self, finding: &crate::engine::Finding) -> io::Result<()> {
        let rel = finding.ts_ns().saturating_sub(self.start_ns) as f64 / 1e9;
        writeln!(self.out, "{rel:>11.6} {finding}")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Writes one event as a line (without the newline).
pub fn format_line(line: &mut String, event: &Event, start_ns: u64) {
    let rel = event.ts_ns.saturating_sub(start_ns) as f64 / 1e9;
    let task = &event.task;
    let _ = write!(
        line,
        "{rel:>11.6} {kind:<14} {pid:>7} {comm:<15} ",
        kind = event.data.kind().name(),
        pid = task.pid,
        comm = task.comm,
    );
    let _ = match &event.data {
        EventData::Fork(f) => {
            let what = if f.thread { "thread" } else { "child" };
            let _ = write!(
                line,
                "→ {what} {}",
                if f.thread { f.child_tid } else { f.child_pid }
            );
            if f.child_ns_pid != f.child_pid && !f.thread {
                let _ = write!(line, " (pid {} in its namespace)", f.child_ns_pid);
            }
            if f.child_ppid != task.pid {
                let _ = write!(line, ", parent {}", f.child_ppid);
            }
            Ok(())
        }
        EventData::Exec(e) => write_exec(line, e, &task.comm.as_str()),
        EventData::Exit(e) => {
            let _ = write!(line, "{}", e.status);
            if !e.process {
                line.push_str(" (thread ");
                let _ = write!(line, "{})", task.tid);
            }
            Ok(())
        }
        EventData::Wait(w) => write_wait(line, w),
        EventData::Reap(r) => {
            let by = format!("{} ({})", r.reaper_pid, r.reaper_comm);
            match (r.how, r.zombie_ns) {
                (ReapHow::Autoreap, _) => {
                    write!(line, "autoreaped at exit: parent {by} ignores SIGCHLD")
                }
                (ReapHow::Wait, Some(z)) => {
                    write!(line, "reaped by {by} after {} as zombie", human(z))
                }
                (ReapHow::Wait, None) => {
                    write!(
                        line,
                        "reaped by {by}, a zombie since before the trace started"
                    )
                }
                (ReapHow::Other, Some(z)) => {
                    write!(line, "released after {} as zombie (parent {by})", human(z))
                }
                (ReapHow::Other, None) => write!(line, "released (parent {by})"),
            }
            .and_then(|_| write!(line, " ({})", r.status))
        }
        EventData::Signal(s) => {
            let _ = write!(line, "{} → {} ({})", s.sig, s.target_pid, s.target_comm);
            if s.target_ns_pid != s.target_pid {
                let _ = write!(line, " [pid {} in its namespace]", s.target_ns_pid);
            }
            if !s.group {
                let _ = write!(line, " thread {}", s.target_tid);
            }
            let _ = write!(line, ": {}", s.result.describe());
            if s.blocked {
                line.push_str(", blocked by the target");
            }
            Ok(())
        }
        EventData::SignalDeliver(d) => write!(
            line,
            "{}: {}",
            d.sig,
            match d.disposition {
                Disposition::Default => "default action",
                Disposition::Ignore => "ignored",
                Disposition::Handler => "handler runs",
            }
        ),
        EventData::Lost(l) => write!(
            line,
            "{} events lost on CPU {} (ring buffer full; {} lost there in all)",
            l.count, l.cpu, l.total
        ),
    };
}

fn write_exec(line: &mut String, e: &Exec, comm: &str) -> std::fmt::Result {
    line.push_str(&e.filename);
    for arg in e.argv.iter().skip(1) {
        line.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            write!(line, "{arg:?}")?;
        } else {
            line.push_str(arg);
        }
    }
    if e.argv_truncated {
        line.push_str(" …");
    }
    if let Some(before) = e.comm_before.filter(|b| b.as_str() != comm) {
        write!(line, " (was {before})")?;
    }
    Ok(())
}

fn write_wait(line: &mut String, w: &Wait) -> std::fmt::Result {
    let child = w
        .child_pid
        .map(|p| p as i64)
        .or(w.child_ns_pid.map(i64::from))
        .unwrap_or(w.ret);
    if w.ret < 0 {
        let syscall = match w.syscall {
            crate::event::WaitSyscall::Wait4 => "wait4",
            crate::event::WaitSyscall::Waitid => "waitid",
        };
        write!(
            line,
            "{syscall} failed: {}",
            errno_name(w.ret.unsigned_abs())
        )?;
    } else if w.reaped || (w.ret > 0 && w.status.is_none()) {
        write!(line, "collected {child}")?;
        if let Some(status) = w
            .status
            .filter(|_| w.syscall == crate::event::WaitSyscall::Wait4)
        {
            write!(
                line,
                " ({})",
                crate::event::ExitStatus::from_wait_status(status as u32)
            )?;
        }
    } else if w.child_ns_pid.is_some() {
        write!(
            line,
            "reported {child} (stopped, continued or left waitable)"
        )?;
    } else {
        line.push_str("no child ready");
    }
    if let Some(d) = w.duration_ns.filter(|&d| d >= 1_000_000) {
        write!(line, " after waiting {}", human(d))?;
    }
    Ok(())
}

fn errno_name(errno: u64) -> String {
    match errno {
        4 => "EINTR".into(),
        10 => "ECHILD (no children to wait for)".into(),
        14 => "EFAULT".into(),
        22 => "EINVAL".into(),
        512 => "ERESTARTSYS (interrupted)".into(),
        n => format!("errno {n}"),
    }
}
