//! Events as JSON, written field by field: the same bytes `serde_json::to_writer` gives for
//! [`Event`] (a test holds the two together), without going through serde's generic map
//! machinery. The tracer writes one of these per kernel event, and on a small machine the CPU
//! the tracer spends is CPU the traced workload does not get.

use std::io::{self, Write};

use crate::{
    event::{
        Comm, Disposition, Event, EventData, ExitStatus, ReapHow, Sig, SignalResult, SignalTarget,
        WaitSyscall,
    },
    signals::signal_name,
};

struct Out<'a, W: Write> {
    w: &'a mut W,
    ints: itoa::Buffer,
}

impl<W: Write> Out<'_, W> {
    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.w.write_all(bytes)
    }

    /// `,"key":` (the first key of an object is written with its `{`).
    fn key(&mut self, key: &str) -> io::Result<()> {
        self.w.write_all(b",\"")?;
        self.w.write_all(key.as_bytes())?;
        self.w.write_all(b"\":")
    }

    fn int(&mut self, key: &str, value: impl itoa::Integer) -> io::Result<()> {
        self.key(key)?;
        let text = self.ints.format(value);
        self.w.write_all(text.as_bytes())
    }

    fn bool(&mut self, key: &str, value: bool) -> io::Result<()> {
        self.key(key)?;
        self.w.write_all(if value { b"true" } else { b"false" })
    }

    fn str(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.key(key)?;
        serde_json::to_writer(&mut *self.w, value).map_err(io::Error::from)
    }

    /// A string known to need no escaping (enum names).
    fn name(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.key(key)?;
        self.w.write_all(b"\"")?;
        self.w.write_all(value.as_bytes())?;
        self.w.write_all(b"\"")
    }

    fn comm(&mut self, key: &str, comm: &Comm) -> io::Result<()> {
        self.str(key, &comm.as_str())
    }

    fn sig(&mut self, sig: Sig) -> io::Result<()> {
        self.int("sig", sig.0)?;
        self.name("sig_name", &signal_name(sig.0))
    }

    fn signal_target(&mut self, t: &SignalTarget) -> io::Result<()> {
        self.bool("group", t.group)?;
        self.int("target_pid", t.pid)?;
        self.int("target_tid", t.tid)?;
        self.int("target_ns_pid", t.ns_pid)?;
        self.int("target_pidns", t.pidns)?;
        self.comm("target_comm", &t.comm)?;
        self.int("target_start_ns", t.start_ns)?;
        self.name("disposition", disposition_name(t.disposition))
    }

    fn status(&mut self, status: &ExitStatus) -> io::Result<()> {
        self.int("status", status.status)?;
        if let Some(code) = status.code {
            self.int("code", code)?;
        }
        if let Some(sig) = status.killed_by {
            self.sig(sig)?;
        }
        if status.core_dumped {
            self.bool("core_dumped", true)?;
        }
        Ok(())
    }
}

/// Writes `event` as one JSON object (no newline).
pub fn write_event<W: Write>(w: &mut W, event: &Event) -> io::Result<()> {
    let mut o = Out {
        w,
        ints: itoa::Buffer::new(),
    };
    let t = &event.task;
    o.raw(b"{\"ts_ns\":")?;
    let ts = o.ints.format(event.ts_ns);
    o.w.write_all(ts.as_bytes())?;
    o.int("pid", t.pid)?;
    o.int("tid", t.tid)?;
    o.int("ns_pid", t.ns_pid)?;
    o.int("pidns", t.pidns)?;
    o.int("ppid", t.ppid)?;
    o.int("uid", t.uid)?;
    o.int("cgroup_id", t.cgroup_id)?;
    o.comm("comm", &t.comm)?;
    o.int("start_ns", t.start_ns)?;
    if let Some(cpu) = t.cpu {
        o.int("cpu", cpu)?;
    }
    o.name("event", event.data.kind().name())?;
    match &event.data {
        EventData::Fork(f) => {
            o.int("child_pid", f.child_pid)?;
            o.int("child_tid", f.child_tid)?;
            o.int("child_ns_pid", f.child_ns_pid)?;
            o.int("child_pidns", f.child_pidns)?;
            o.int("child_ppid", f.child_ppid)?;
            o.int("child_start_ns", f.child_start_ns)?;
            o.bool("thread", f.thread)?;
        }
        EventData::Exec(e) => {
            o.str("filename", &e.filename)?;
            o.key("argv")?;
            serde_json::to_writer(&mut *o.w, &e.argv).map_err(io::Error::from)?;
            o.bool("argv_truncated", e.argv_truncated)?;
            if let Some(before) = &e.comm_before {
                o.comm("comm_before", before)?;
            }
            if let Some(tid) = e.old_tid {
                o.int("old_tid", tid)?;
            }
        }
        EventData::Exit(x) => {
            o.status(&x.status)?;
            o.bool("process", x.process)?;
        }
        EventData::Wait(w) => {
            o.name(
                "syscall",
                match w.syscall {
                    WaitSyscall::Wait4 => "wait4",
                    WaitSyscall::Waitid => "waitid",
                },
            )?;
            o.int("ret", w.ret)?;
            o.int("upid", w.upid)?;
            if let Some(which) = w.which {
                o.int("which", which)?;
            }
            o.int("options", w.options)?;
            if let Some(pid) = w.child_ns_pid {
                o.int("child_ns_pid", pid)?;
            }
            if let Some(pid) = w.child_pid {
                o.int("child_pid", pid)?;
            }
            o.bool("reaped", w.reaped)?;
            if let Some(status) = w.status {
                o.int("status", status)?;
            }
            if let Some(ns) = w.duration_ns {
                o.int("duration_ns", ns)?;
            }
        }
        EventData::Reap(r) => {
            o.int("reaper_pid", r.reaper_pid)?;
            o.int("reaper_tid", r.reaper_tid)?;
            o.comm("reaper_comm", &r.reaper_comm)?;
            o.name(
                "how",
                match r.how {
                    ReapHow::Wait => "wait",
                    ReapHow::Autoreap => "autoreap",
                    ReapHow::Other => "other",
                },
            )?;
            o.status(&r.status)?;
            if let Some(ns) = r.exit_ns {
                o.int("exit_ns", ns)?;
            }
            if let Some(ns) = r.zombie_ns {
                o.int("zombie_ns", ns)?;
            }
        }
        EventData::Signal(s) => {
            o.sig(s.sig)?;
            o.int("si_code", s.si_code)?;
            o.name("result", result_name(s.result))?;
            o.signal_target(&s.target)?;
            o.bool("blocked", s.blocked)?;
        }
        EventData::SignalDeliver(d) => {
            o.sig(d.sig)?;
            o.int("si_code", d.si_code)?;
            o.name("disposition", disposition_name(d.disposition))?;
            o.int("sa_flags", d.sa_flags)?;
        }
        EventData::Lost(l) => {
            o.int("count", l.count)?;
            o.int("total", l.total)?;
        }
        EventData::SignalBurst(b) => {
            o.sig(b.sig)?;
            o.int("si_code", b.si_code)?;
            o.signal_target(&b.target)?;
            o.int("blocked_count", b.blocked_count)?;
            o.int("first_ns", b.first_ns)?;
            o.int("count", b.count)?;
            o.int("delivered", b.delivered)?;
            o.int("ignored", b.ignored)?;
            o.int("already_pending", b.already_pending)?;
            o.int("overflow", b.overflow)?;
            o.int("lost_info", b.lost_info)?;
        }
        EventData::DeliverBurst(d) => {
            o.sig(d.sig)?;
            o.int("si_code", d.si_code)?;
            o.name("disposition", disposition_name(d.disposition))?;
            o.int("sa_flags", d.sa_flags)?;
            o.int("first_ns", d.first_ns)?;
            o.int("count", d.count)?;
        }
    }
    o.raw(b"}")
}

fn result_name(result: SignalResult) -> &'static str {
    match result {
        SignalResult::Delivered => "delivered",
        SignalResult::Ignored => "ignored",
        SignalResult::AlreadyPending => "already_pending",
        SignalResult::Overflow => "overflow",
        SignalResult::LostInfo => "lost_info",
    }
}

fn disposition_name(disposition: Disposition) -> &'static str {
    match disposition {
        Disposition::Default => "default",
        Disposition::Ignore => "ignore",
        Disposition::Handler => "handler",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::*,
        samples::{AWKWARD, kinds, task},
    };

    #[test]
    fn writes_exactly_what_serde_writes() {
        let events = AWKWARD.iter().enumerate().flat_map(|(i, s)| {
            kinds(s).into_iter().map(move |data| {
                let mut task = task(Comm::from(*s));
                // Events replayed from logs before format 4 have no CPU.
                task.cpu = (i % 2 == 0).then_some(i as u32);
                Event {
                    ts_ns: i as u64,
                    task,
                    data,
                }
            })
        });
        for event in events {
            let mut fast = Vec::new();
            write_event(&mut fast, &event).unwrap();
            let serde = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }
}
