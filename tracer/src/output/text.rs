//! One aligned line per event, for people.

use std::{
    fmt::Write as _,
    io::{self, Write},
};

use super::Sink;
use crate::{
    duration::Human,
    event::{
        DeliverBurst, Disposition, Event, EventData, Exec, ExitStatus, ReapHow, SignalBurst,
        SignalResult, SignalTarget, Wait,
    },
    signals::signal_name,
};

/// Bytes of lines gathered before they are written out.
const BUFFER: usize = 64 * 1024;

pub struct TextSink {
    out: Box<dyn Write>,
    start_ns: u64,
    /// Lines not written out yet. They are formatted right here, so a line is copied once,
    /// into `out`, and not first through a line buffer of its own.
    lines: String,
}

impl TextSink {
    pub fn new(out: Box<dyn Write>, start_ns: u64) -> Self {
        Self {
            out,
            start_ns,
            lines: String::with_capacity(BUFFER + 1024),
        }
    }

    fn write_out(&mut self) -> io::Result<()> {
        let written = self.out.write_all(self.lines.as_bytes());
        self.lines.clear();
        written
    }

    /// Writes out the lines once there are enough of them.
    fn line_done(&mut self) -> io::Result<()> {
        self.lines.push('\n');
        if self.lines.len() >= BUFFER {
            return self.write_out();
        }
        Ok(())
    }
}

impl Sink for TextSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        format_line(&mut self.lines, event, self.start_ns);
        self.line_done()
    }

    fn finding(&mut self, finding: &crate::engine::Finding) -> io::Result<()> {
        seconds(
            &mut self.lines,
            finding.ts_ns().saturating_sub(self.start_ns),
        );
        let _ = write!(self.lines, " {finding}");
        self.line_done()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.out.flush()
    }
}

/// What is still gathered goes out, as `BufWriter` does when it is dropped.
impl Drop for TextSink {
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

/// Writes one event as a line (without the newline). The parts every line has, and the
/// common kinds, are written piece by piece rather than through `format!`: a replay writes
/// millions of lines, and padding and float formatting through `fmt` cost more than reading
/// them (the tests hold the two ways together).
pub fn format_line(line: &mut String, event: &Event, start_ns: u64) {
    let task = &event.task;
    let mut ints = itoa::Buffer::new();
    // `{rel:>11.6} {kind:<14} {pid:>7} {comm:<15} `
    seconds(line, event.ts_ns.saturating_sub(start_ns));
    line.push(' ');
    line.push_str(kind_column(&event.data));
    line.push(' ');
    pad_left(line, ints.format(task.pid), 7);
    line.push(' ');
    pad_right(line, &task.comm.as_str(), 15);
    line.push(' ');
    let _ = match &event.data {
        EventData::Fork(f) => {
            line.push_str(if f.thread {
                "→ thread "
            } else {
                "→ child "
            });
            line.push_str(ints.format(if f.thread { f.child_tid } else { f.child_pid }));
            if f.child_ns_pid != f.child_pid && !f.thread {
                line.push_str(" (pid ");
                line.push_str(ints.format(f.child_ns_pid));
                line.push_str(" in its namespace)");
            }
            if f.child_ppid != task.pid {
                line.push_str(", parent ");
                line.push_str(ints.format(f.child_ppid));
            }
            Ok(())
        }
        EventData::Exec(e) => write_exec(line, e, &task.comm.as_str()),
        EventData::Exit(e) => {
            exit_status(line, &e.status);
            if !e.process {
                line.push_str(" (thread ");
                line.push_str(ints.format(task.tid));
                line.push(')');
            }
            Ok(())
        }
        EventData::Wait(w) => write_wait(line, w),
        EventData::Reap(r) => {
            let by = |line: &mut String| {
                line.push_str(itoa::Buffer::new().format(r.reaper_pid));
                line.push_str(" (");
                line.push_str(&r.reaper_comm.as_str());
                line.push(')');
            };
            match (r.how, r.zombie_ns) {
                (ReapHow::Autoreap, _) => {
                    line.push_str("autoreaped at exit: parent ");
                    by(line);
                    line.push_str(" ignores SIGCHLD");
                }
                (ReapHow::Wait, Some(z)) => {
                    line.push_str("reaped by ");
                    by(line);
                    line.push_str(" after ");
                    Human(z).push_to(line);
                    line.push_str(" as zombie");
                }
                (ReapHow::Wait, None) => {
                    line.push_str("reaped by ");
                    by(line);
                    line.push_str(", a zombie since before the trace started");
                }
                (ReapHow::Other, Some(z)) => {
                    line.push_str("released after ");
                    Human(z).push_to(line);
                    line.push_str(" as zombie (parent ");
                    by(line);
                    line.push(')');
                }
                (ReapHow::Other, None) => {
                    line.push_str("released (parent ");
                    by(line);
                    line.push(')');
                }
            }
            line.push_str(" (");
            exit_status(line, &r.status);
            line.push(')');
            Ok(())
        }
        EventData::Signal(s) => {
            line.push_str(&signal_name(s.sig.0));
            signal_target(line, &mut ints, &s.target);
            line.push_str(": ");
            line.push_str(s.result.describe());
            if s.blocked {
                line.push_str(", blocked by the target");
            }
            Ok(())
        }
        EventData::SignalDeliver(d) => {
            line.push_str(&signal_name(d.sig.0));
            line.push_str(": ");
            line.push_str(action(d.disposition));
            Ok(())
        }
        EventData::SignalBurst(b) => write_signal_burst(line, b, event.ts_ns),
        EventData::DeliverBurst(d) => write_deliver_burst(line, d, event.ts_ns),
        EventData::Lost(l) => write_lost(line, l, event.task.cpu),
    };
}

/// `{:>11.6}` of `ns` as seconds, `ns as f64 / 1e9`, with integers. The float is within 1 ns
/// of the exact quotient below 2^53 ns, so it rounds to the same microsecond unless the
/// remainder is within 2 ns of the half; there, the float is compared exactly with the half
/// to see which way it rounds. Larger times, and a float exactly on the half, are left to the
/// float formatting.
fn seconds(line: &mut String, ns: u64) {
    let rem = ns % 1000;
    let up = if ns >= 1 << 53 {
        None
    } else if (498..=502).contains(&rem) {
        rounds_up(ns)
    } else {
        Some(rem > 500)
    };
    let Some(up) = up else {
        let _ = write!(line, "{:>11.6}", ns as f64 / 1e9);
        return;
    };
    let micros = ns / 1000 + u64::from(up);
    let mut ints = itoa::Buffer::new();
    let secs = ints.format(micros / 1_000_000);
    pad_left(line, secs, 11 - 7);
    line.push('.');
    let frac = ints.format(micros % 1_000_000);
    line.push_str(&"000000"[frac.len()..]);
    line.push_str(frac);
}

/// Whether `ns as f64 / 1e9` (0 < ns < 2^53) is above the half microsecond nearest `ns`:
/// `None` if it is exactly on it. The float is `m * 2^-shift`; the half is `half / 1e9`.
fn rounds_up(ns: u64) -> Option<bool> {
    let bits = (ns as f64 / 1e9).to_bits();
    let exp = ((bits >> 52) & 0x7ff) as u32;
    let m = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
    // The float is normal (at least 1e-9) and below 2^23, so 29 < shift < 128; both sides
    // are about `m * 1e9`, below 2^84.
    let shift = 1075 - exp;
    let half = u128::from(ns / 1000 * 1000 + 500);
    match (m * 1_000_000_000).cmp(&(half << shift)) {
        std::cmp::Ordering::Greater => Some(true),
        std::cmp::Ordering::Less => Some(false),
        std::cmp::Ordering::Equal => None,
    }
}

/// The kind column, `{kind:<14}`, as constants.
fn kind_column(data: &EventData) -> &'static str {
    match data {
        EventData::Fork(_) => "fork          ",
        EventData::Exec(_) => "exec          ",
        EventData::Exit(_) => "exit          ",
        EventData::Wait(_) => "wait          ",
        EventData::Reap(_) => "reap          ",
        EventData::Signal(_) => "signal        ",
        EventData::SignalDeliver(_) => "signal_deliver",
        EventData::Lost(_) => "lost          ",
        EventData::SignalBurst(_) => "signal_burst  ",
        EventData::DeliverBurst(_) => "deliver_burst ",
    }
}

fn action(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Default => "default action",
        Disposition::Ignore => "ignored",
        Disposition::Handler => "handler runs",
    }
}

/// ` → 4243 (child) [pid 5 in its namespace] thread 4244`: where a signal went, the namespace
/// pid when it differs, the thread when it was sent to one.
fn signal_target(line: &mut String, ints: &mut itoa::Buffer, t: &SignalTarget) {
    line.push_str(" → ");
    line.push_str(ints.format(t.pid));
    line.push_str(" (");
    line.push_str(&t.comm.as_str());
    line.push(')');
    if t.ns_pid != t.pid {
        line.push_str(" [pid ");
        line.push_str(ints.format(t.ns_pid));
        line.push_str(" in its namespace]");
    }
    if !t.group {
        line.push_str(" thread ");
        line.push_str(ints.format(t.tid));
    }
}

/// `SIGUSR1 ×199,999 more → 4243 (child) (delivered 100,000, already pending 99,999) over 1.2 s`
fn write_signal_burst(line: &mut String, b: &SignalBurst, last_ns: u64) -> std::fmt::Result {
    write!(line, "{} ×{} more", b.sig, thousands(b.count))?;
    signal_target(line, &mut itoa::Buffer::new(), &b.target);
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
    write!(line, " over {}", Human(last_ns.saturating_sub(b.first_ns)))
}

/// `SIGUSR1 ×99,999 more: handler runs, over 1.2 s`
fn write_deliver_burst(line: &mut String, d: &DeliverBurst, last_ns: u64) -> std::fmt::Result {
    write!(
        line,
        "{} ×{} more: {}, over {}",
        d.sig,
        thousands(d.count),
        action(d.disposition),
        Human(last_ns.saturating_sub(d.first_ns))
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

/// Enough spaces for any column.
const SPACES: &str = "                ";

/// `{text:<width}`: the text, then spaces up to `width` characters.
fn pad_right(line: &mut String, text: &str, width: usize) {
    line.push_str(text);
    let chars = if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    };
    line.push_str(&SPACES[..width.saturating_sub(chars)]);
}

/// `{text:>width}` for ASCII text: spaces, then the text.
fn pad_left(line: &mut String, text: &str, width: usize) {
    line.push_str(&SPACES[..width.saturating_sub(text.len())]);
    line.push_str(text);
}

/// An exit status as [`ExitStatus`]'s `Display` writes it.
fn exit_status(line: &mut String, status: &ExitStatus) {
    match status.code {
        Some(code) => {
            line.push_str("exited with code ");
            line.push_str(itoa::Buffer::new().format(code));
        }
        None => {
            let _ = write!(line, "{status}");
        }
    }
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
        write!(line, " after waiting {}", Human(d))?;
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

/// A `lost` event, on `cpu` (`?` when its line did not say: not one this tracer wrote).
fn write_lost(line: &mut String, l: &crate::event::Lost, cpu: Option<u32>) -> std::fmt::Result {
    let cpu = cpu.map_or_else(|| "?".to_owned(), |cpu| cpu.to_string());
    write!(
        line,
        "{} events lost on CPU {cpu} (ring buffer full; {} lost there in all)",
        l.count, l.total
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        duration::human,
        event::{
            Comm, Exit, Fork, Lost, Reap, Sig, Signal, SignalDeliver, SignalResult, Task,
            WaitSyscall,
        },
        rng::Rng,
    };

    /// The line as `fmt` writes it: what `format_line` wrote before it was written piece by
    /// piece, kept as the reference it must match.
    fn reference(event: &Event, start_ns: u64) -> String {
        let mut line = String::new();
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
            EventData::Exec(e) => write_exec(&mut line, e, &task.comm.as_str()),
            EventData::Exit(e) => {
                let _ = write!(line, "{}", e.status);
                if !e.process {
                    let _ = write!(line, " (thread {})", task.tid);
                }
                Ok(())
            }
            EventData::Wait(w) => write_wait(&mut line, w),
            EventData::Reap(r) => {
                let by = format!("{} ({})", r.reaper_pid, r.reaper_comm);
                match (r.how, r.zombie_ns) {
                    (ReapHow::Autoreap, _) => {
                        write!(line, "autoreaped at exit: parent {by} ignores SIGCHLD")
                    }
                    (ReapHow::Wait, Some(z)) => {
                        write!(line, "reaped by {by} after {} as zombie", human(z))
                    }
                    (ReapHow::Wait, None) => write!(
                        line,
                        "reaped by {by}, a zombie since before the trace started"
                    ),
                    (ReapHow::Other, Some(z)) => {
                        write!(line, "released after {} as zombie (parent {by})", human(z))
                    }
                    (ReapHow::Other, None) => write!(line, "released (parent {by})"),
                }
                .and_then(|_| write!(line, " ({})", r.status))
            }
            EventData::Signal(s) => {
                let t = &s.target;
                let _ = write!(line, "{} → {} ({})", s.sig, t.pid, t.comm);
                if t.ns_pid != t.pid {
                    let _ = write!(line, " [pid {} in its namespace]", t.ns_pid);
                }
                if !t.group {
                    let _ = write!(line, " thread {}", t.tid);
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
            EventData::Lost(l) => write_lost(&mut line, l, event.task.cpu),
            EventData::SignalBurst(b) => write_signal_burst(&mut line, b, event.ts_ns),
            EventData::DeliverBurst(d) => write_deliver_burst(&mut line, d, event.ts_ns),
        };
        line
    }

    /// Small, huge, and next to the roundings of the time column and of `human`.
    fn random_int(rng: &mut Rng) -> u64 {
        match rng.next() % 5 {
            0 => rng.next() % 2000,
            1 => (rng.next() % 100_000) * 1000 + 495 + rng.next() % 11,
            2 => rng.next() >> (rng.next() % 64),
            3 => (1 << 53) - 3 + rng.next() % 6,
            _ => rng.next(),
        }
    }

    fn random_comm(rng: &mut Rng) -> Comm {
        let mut bytes = [0; 16];
        let piece = rng.pick(&["sh", "ä", "日本", "🦀", "\u{7f}", "x y", "\u{1}", "\u{ff}"]);
        let mut text = String::new();
        for _ in 0..rng.next() % 8 {
            text.push_str(piece);
        }
        let len = text.len().min(15);
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        if rng.one_in(8) {
            bytes[rng.next() as usize % 15] = 0xff;
        }
        Comm::from_kernel(bytes)
    }

    #[test]
    fn time_column_is_what_fmt_writes() {
        let check = |ns: u64| {
            let mut line = String::new();
            seconds(&mut line, ns);
            assert_eq!(line, format!("{:>11.6}", ns as f64 / 1e9), "{ns}");
        };
        // Every half microsecond up to 0.2 s (where ties round one way or the other), the
        // ones the float holds exactly (500 * 5^6 * odd), and the edges.
        for micros in 0..200_000 {
            for rem in [0, 497, 498, 499, 500, 501, 502, 503, 999] {
                check(micros * 1000 + rem);
            }
        }
        for odd in (1..20_000u64).step_by(2) {
            check(500 * 15625 * odd);
        }
        for ns in [
            (1 << 53) - 500,
            (1 << 53) - 1,
            1 << 53,
            u64::MAX,
            999_999_999_999_500,
        ] {
            check(ns);
        }
    }

    #[test]
    fn lines_are_what_fmt_writes() {
        let mut rng = Rng(0x7e47);
        let mut line = String::new();
        for i in 0..100_000 {
            let small = |rng: &mut Rng| rng.pick(&[0u32, 1, 7, 99_999, u32::MAX]);
            let status =
                ExitStatus::from_wait_status(rng.pick(&[0, 3 << 8, 9, 11 | 0x80, 0x7f, 0xffff]));
            let sig = Sig(rng.pick(&[1, 9, 15, 17, 34, 40, 64, 65, 0]));
            let data = match i % 8 {
                0 => EventData::Fork(Fork {
                    child_pid: small(&mut rng),
                    child_tid: small(&mut rng),
                    child_ns_pid: small(&mut rng),
                    child_pidns: 1,
                    child_ppid: small(&mut rng),
                    child_start_ns: 0,
                    thread: rng.one_in(2),
                }),
                1 => EventData::Exit(Exit {
                    status,
                    process: rng.one_in(2),
                }),
                2 | 3 => EventData::Reap(Reap {
                    reaper_pid: small(&mut rng),
                    reaper_tid: 0,
                    reaper_comm: random_comm(&mut rng),
                    how: rng.pick(&[ReapHow::Wait, ReapHow::Autoreap, ReapHow::Other]),
                    status,
                    exit_ns: None,
                    zombie_ns: (!rng.one_in(4)).then(|| random_int(&mut rng)),
                }),
                4 => EventData::Signal(Signal {
                    sig,
                    si_code: 0,
                    result: rng.pick(&[SignalResult::Delivered, SignalResult::LostInfo]),
                    target: SignalTarget {
                        group: rng.one_in(2),
                        pid: small(&mut rng),
                        tid: small(&mut rng),
                        ns_pid: small(&mut rng),
                        pidns: 0,
                        comm: random_comm(&mut rng),
                        start_ns: 0,
                        disposition: Disposition::Default,
                    },
                    blocked: rng.one_in(2),
                }),
                5 => EventData::SignalDeliver(SignalDeliver {
                    sig,
                    si_code: 0,
                    disposition: rng.pick(&[
                        Disposition::Default,
                        Disposition::Ignore,
                        Disposition::Handler,
                    ]),
                    sa_flags: 0,
                }),
                6 => EventData::Wait(Wait {
                    syscall: WaitSyscall::Wait4,
                    ret: rng.pick(&[-10, 0, 5]),
                    upid: -1,
                    which: None,
                    options: 0,
                    child_ns_pid: Some(5),
                    child_pid: None,
                    reaped: true,
                    status: Some(0),
                    duration_ns: Some(random_int(&mut rng)),
                }),
                _ => EventData::Lost(Lost {
                    count: random_int(&mut rng),
                    total: random_int(&mut rng),
                }),
            };
            let event = Event {
                ts_ns: random_int(&mut rng),
                task: Task {
                    pid: small(&mut rng),
                    tid: small(&mut rng),
                    comm: random_comm(&mut rng),
                    ..Task::default()
                },
                data,
            };
            let start_ns = rng.pick(&[0, 0, 1_000_000_000, event.ts_ns, u64::MAX]);
            line.clear();
            format_line(&mut line, &event, start_ns);
            assert_eq!(line, reference(&event, start_ns), "{event:?}");
        }
    }

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
            target: SignalTarget {
                group: true,
                pid: 4243,
                tid: 4243,
                ns_pid: 4243,
                pidns: 1,
                comm: Comm::from("child"),
                start_ns: 1,
                disposition: Disposition::Handler,
            },
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
            line(EventData::SignalBurst(Box::new(burst))),
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
