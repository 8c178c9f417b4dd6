//! One aligned line per event, for people.

use std::{
    fmt::Write as _,
    io::{self, BufWriter, Write},
};

use super::Sink;
use crate::{
    duration::human,
    event::{
        DeliverBurst, Disposition, Event, EventData, Exec, ReapHow, SignalBurst, SignalResult, Wait,
    },
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
        EventData::SignalDeliver(d) => write!(line, "{}: {}", d.sig, action(d.disposition)),
        EventData::SignalBurst(b) => write_signal_burst(line, b, event.ts_ns),
        EventData::DeliverBurst(d) => write_deliver_burst(line, d, event.ts_ns),
        EventData::Lost(l) => write!(
            line,
            "{} events lost on CPU {} (ring buffer full; {} lost there in all)",
            l.count, l.cpu, l.total
        ),
    };
}

fn action(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Default => "default action",
        Disposition::Ignore => "ignored",
        Disposition::Handler => "handler runs",
    }
}

/// `SIGUSR1 ×199,999 more → 4243 (child) (delivered 100,000, already pending 99,999) over 1.2 s`
fn write_signal_burst(line: &mut String, b: &SignalBurst, last_ns: u64) -> std::fmt::Result {
    write!(
        line,
        "{} ×{} more → {} ({})",
        b.sig,
        thousands(b.count),
        b.target_pid,
        b.target_comm
    )?;
    if b.target_ns_pid != b.target_pid {
        write!(line, " [pid {} in its namespace]", b.target_ns_pid)?;
    }
    if !b.group {
        write!(line, " thread {}", b.target_tid)?;
    }
    line.push_str(" (");
    let mut first = true;
    for (result, n) in b.by_result() {
        if n != 0 {
            if !first {
                line.push_str(", ");
            }
            first = false;
            let label = match result {
                SignalResult::Delivered => "delivered",
                SignalResult::Ignored => "ignored",
                SignalResult::AlreadyPending => "already pending",
                SignalResult::Overflow => "queue overflow",
                SignalResult::LostInfo => "delivered without siginfo",
            };
            write!(line, "{label} {}", thousands(n))?;
        }
    }
    line.push(')');
    if b.blocked_count != 0 {
        write!(
            line,
            ", {} while the target blocked it",
            thousands(b.blocked_count)
        )?;
    }
    write!(line, " over {}", human(last_ns.saturating_sub(b.first_ns)))
}

/// `SIGUSR1 ×99,999 more: handler runs, over 1.2 s`
fn write_deliver_burst(line: &mut String, d: &DeliverBurst, last_ns: u64) -> std::fmt::Result {
    write!(
        line,
        "{} ×{} more: {}, over {}",
        d.sig,
        thousands(d.count),
        action(d.disposition),
        human(last_ns.saturating_sub(d.first_ns))
    )
}

/// `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Comm, Sig, Task};

    fn line(data: EventData) -> String {
        let mut line = String::new();
        let event = Event {
            ts_ns: 3_200_000_000,
            task: Task {
                pid: 4242,
                comm: Comm::from("storm"),
                ..Task::default()
            },
            data,
        };
        format_line(&mut line, &event, 1_000_000_000);
        line
    }

    #[test]
    fn bursts_read_as_counts() {
        let burst = SignalBurst {
            sig: Sig(10),
            si_code: 0,
            group: true,
            target_pid: 4243,
            target_tid: 4243,
            target_ns_pid: 4243,
            target_pidns: 1,
            target_comm: Comm::from("child"),
            target_start_ns: 1,
            disposition: Disposition::Handler,
            blocked_count: 0,
            first_ns: 2_000_000_000,
            count: 199_999,
            delivered: 100_000,
            ignored: 0,
            already_pending: 99_999,
            overflow: 0,
            lost_info: 0,
        };
        assert_eq!(
            line(EventData::SignalBurst(burst)),
            "   2.200000 signal_burst      4242 storm           SIGUSR1 ×199,999 more → 4243 \
             (child) (delivered 100,000, already pending 99,999) over 1.2 s"
        );
        let deliveries = DeliverBurst {
            sig: Sig(10),
            si_code: 0,
            disposition: Disposition::Handler,
            sa_flags: 0,
            first_ns: 3_000_000_000,
            count: 1_000,
        };
        assert_eq!(
            line(EventData::DeliverBurst(deliveries)),
            "   2.200000 deliver_burst     4242 storm           SIGUSR1 ×1,000 more: handler \
             runs, over 200 ms"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }
}
