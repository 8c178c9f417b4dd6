//! Reading the lines our own writer writes, without serde. `output/json_event.rs` puts every
//! key of an event in one known order, with known types and no whitespace, so a line it wrote
//! is a fixed sequence of `,"key":value` that can be checked and read left to right with no
//! map, no key lookup and no intermediate tree.
//!
//! Anything else (another key order, whitespace, a key this reader does not expect, an escape
//! it does not handle, a number out of range) makes it give up with `None`, and the line goes
//! to the serde reader, which decides. A line is accepted here only if serde reads it too and
//! to the same [`Event`], so this changes the speed of a replay, never its result (held by the
//! tests against the serde reader, and by the hostile-input tests).

use std::borrow::Cow;

use crate::event::{
    Comm, DeliverBurst, Disposition, Event, EventData, Exec, Exit, ExitStatus, Fork, Lost, Reap,
    ReapHow, Sig, Signal, SignalBurst, SignalDeliver, SignalResult, SignalTarget, Task, Wait,
    WaitSyscall,
};

/// `,"name":`, the bytes before every value but the first.
macro_rules! key {
    ($name:literal) => {
        concat!(",\"", $name, "\":").as_bytes()
    };
}

/// One event from a line exactly as the writer writes it; `None` for anything else.
pub fn parse_event_fast(line: &[u8]) -> Option<Event> {
    let mut c = Cursor { s: line, i: 0 };
    c.lit(b"{\"ts_ns\":")?;
    let ts_ns = c.u64()?;
    let task = Task {
        pid: c.field(key!("pid"), Cursor::u32)?,
        tid: c.field(key!("tid"), Cursor::u32)?,
        ns_pid: c.field(key!("ns_pid"), Cursor::u32)?,
        pidns: c.field(key!("pidns"), Cursor::u32)?,
        ppid: c.field(key!("ppid"), Cursor::u32)?,
        uid: c.field(key!("uid"), Cursor::u32)?,
        cgroup_id: c.field(key!("cgroup_id"), Cursor::u64)?,
        comm: c.field(key!("comm"), Cursor::comm)?,
        start_ns: c.field(key!("start_ns"), Cursor::u64)?,
        cpu: c.optional(key!("cpu"), Cursor::u32)?,
    };
    c.lit(key!("event"))?;
    let data = match c.name()? {
        b"fork" => EventData::Fork(Fork {
            child_pid: c.field(key!("child_pid"), Cursor::u32)?,
            child_tid: c.field(key!("child_tid"), Cursor::u32)?,
            child_ns_pid: c.field(key!("child_ns_pid"), Cursor::u32)?,
            child_pidns: c.field(key!("child_pidns"), Cursor::u32)?,
            child_ppid: c.field(key!("child_ppid"), Cursor::u32)?,
            child_start_ns: c.field(key!("child_start_ns"), Cursor::u64)?,
            thread: c.field(key!("thread"), Cursor::bool)?,
        }),
        b"exec" => EventData::Exec(Exec {
            filename: c.field(key!("filename"), Cursor::string)?,
            argv: c.field(key!("argv"), Cursor::strings)?,
            argv_truncated: c.field(key!("argv_truncated"), Cursor::bool)?,
            comm_before: c.optional(key!("comm_before"), Cursor::comm)?,
            old_tid: c.optional(key!("old_tid"), Cursor::u32)?,
        }),
        b"exit" => EventData::Exit(Exit {
            status: c.status()?,
            process: c.field(key!("process"), Cursor::bool)?,
        }),
        b"wait" => EventData::Wait(Wait {
            syscall: c.field(key!("syscall"), |c| match c.name()? {
                b"wait4" => Some(WaitSyscall::Wait4),
                b"waitid" => Some(WaitSyscall::Waitid),
                _ => None,
            })?,
            ret: c.field(key!("ret"), Cursor::i64)?,
            upid: c.field(key!("upid"), Cursor::i32)?,
            which: c.optional(key!("which"), Cursor::i32)?,
            options: c.field(key!("options"), Cursor::u32)?,
            child_ns_pid: c.optional(key!("child_ns_pid"), Cursor::i32)?,
            child_pid: c.optional(key!("child_pid"), Cursor::u32)?,
            reaped: c.field(key!("reaped"), Cursor::bool)?,
            status: c.optional(key!("status"), Cursor::i32)?,
            duration_ns: c.optional(key!("duration_ns"), Cursor::u64)?,
        }),
        b"reap" => EventData::Reap(Reap {
            reaper_pid: c.field(key!("reaper_pid"), Cursor::u32)?,
            reaper_tid: c.field(key!("reaper_tid"), Cursor::u32)?,
            reaper_comm: c.field(key!("reaper_comm"), Cursor::comm)?,
            how: c.field(key!("how"), |c| match c.name()? {
                b"wait" => Some(ReapHow::Wait),
                b"autoreap" => Some(ReapHow::Autoreap),
                b"other" => Some(ReapHow::Other),
                _ => None,
            })?,
            status: c.status()?,
            exit_ns: c.optional(key!("exit_ns"), Cursor::u64)?,
            zombie_ns: c.optional(key!("zombie_ns"), Cursor::u64)?,
        }),
        b"signal" => EventData::Signal(Signal {
            sig: c.sig()?,
            si_code: c.field(key!("si_code"), Cursor::i32)?,
            result: c.field(key!("result"), |c| match c.name()? {
                b"delivered" => Some(SignalResult::Delivered),
                b"ignored" => Some(SignalResult::Ignored),
                b"already_pending" => Some(SignalResult::AlreadyPending),
                b"overflow" => Some(SignalResult::Overflow),
                b"lost_info" => Some(SignalResult::LostInfo),
                _ => None,
            })?,
            target: c.signal_target()?,
            blocked: c.field(key!("blocked"), Cursor::bool)?,
        }),
        b"signal_deliver" => EventData::SignalDeliver(SignalDeliver {
            sig: c.sig()?,
            si_code: c.field(key!("si_code"), Cursor::i32)?,
            disposition: c.field(key!("disposition"), Cursor::disposition)?,
            sa_flags: c.field(key!("sa_flags"), Cursor::u32)?,
        }),
        b"lost" => EventData::Lost(Lost {
            count: c.field(key!("count"), Cursor::u64)?,
            total: c.field(key!("total"), Cursor::u64)?,
        }),
        b"signal_burst" => EventData::SignalBurst(Box::new(SignalBurst {
            sig: c.sig()?,
            si_code: c.field(key!("si_code"), Cursor::i32)?,
            target: c.signal_target()?,
            blocked_count: c.field(key!("blocked_count"), Cursor::u64)?,
            first_ns: c.field(key!("first_ns"), Cursor::u64)?,
            count: c.field(key!("count"), Cursor::u64)?,
            delivered: c.field(key!("delivered"), Cursor::u64)?,
            ignored: c.field(key!("ignored"), Cursor::u64)?,
            already_pending: c.field(key!("already_pending"), Cursor::u64)?,
            overflow: c.field(key!("overflow"), Cursor::u64)?,
            lost_info: c.field(key!("lost_info"), Cursor::u64)?,
        })),
        b"deliver_burst" => EventData::DeliverBurst(DeliverBurst {
            sig: c.sig()?,
            si_code: c.field(key!("si_code"), Cursor::i32)?,
            disposition: c.field(key!("disposition"), Cursor::disposition)?,
            sa_flags: c.field(key!("sa_flags"), Cursor::u32)?,
            first_ns: c.field(key!("first_ns"), Cursor::u64)?,
            count: c.field(key!("count"), Cursor::u64)?,
        }),
        _ => return None,
    };
    c.lit(b"}")?;
    (c.i == line.len()).then_some(Event { ts_ns, task, data })
}

/// A position in a line. Every reader returns `None` (and the line goes to serde) on anything
/// but exactly what the writer writes.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `lit`, if the line continues with it. Inlined so that the comparison is
    /// of a constant length (a few loads, not a call to `memcmp`).
    #[inline(always)]
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let rest = self.s.get(self.i..)?;
        rest.starts_with(lit).then(|| self.i += lit.len())
    }

    /// `key` then a value read by `read`.
    #[inline(always)]
    fn field<T>(&mut self, key: &[u8], read: impl FnOnce(&mut Self) -> Option<T>) -> Option<T> {
        self.lit(key)?;
        read(self)
    }

    /// A field the writer leaves out when it has no value: `Some(None)` when the line does not
    /// continue with `key`, `None` when it does and the value is not readable.
    #[inline(always)]
    fn optional<T>(
        &mut self,
        key: &[u8],
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.lit(key) {
            Some(()) => read(self).map(Some),
            None => Some(None),
        }
    }

    /// The digits of a JSON integer: no sign, no leading zero, no overflow.
    #[inline(always)]
    fn digits(&mut self) -> Option<u64> {
        let s = self.s;
        let start = self.i;
        let mut i = start;
        let mut n: u64 = 0;
        while let Some(digit) = s.get(i).map(|b| b.wrapping_sub(b'0')).filter(|&d| d <= 9) {
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            i += 1;
        }
        let digits = &s[start..i];
        // "0" alone is a number; "01" is not JSON, and "" is nothing. 19 digits always fit in a
        // u64, 20 fit up to u64::MAX, more never do.
        let fits = match digits.len() {
            0 => false,
            1 => true,
            len => {
                digits[0] != b'0'
                    && (len < 20 || (len == 20 && digits <= &b"18446744073709551615"[..]))
            }
        };
        if !fits {
            return None;
        }
        self.i = i;
        Some(n)
    }

    fn u64(&mut self) -> Option<u64> {
        self.digits()
    }

    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.digits()?).ok()
    }

    fn u8(&mut self) -> Option<u8> {
        u8::try_from(self.digits()?).ok()
    }

    fn i64(&mut self) -> Option<i64> {
        if self.lit(b"-").is_none() {
            return i64::try_from(self.digits()?).ok();
        }
        // `-0` is left to serde.
        match self.digits()? {
            0 => None,
            n if n <= i64::MAX as u64 => Some(-(n as i64)),
            n if n == i64::MAX as u64 + 1 => Some(i64::MIN),
            _ => None,
        }
    }

    fn i32(&mut self) -> Option<i32> {
        i32::try_from(self.i64()?).ok()
    }

    fn bool(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|()| false)
        }
    }

    /// A string with no escapes, as its bytes: the names of kinds and enum values.
    fn name(&mut self) -> Option<&'a [u8]> {
        self.lit(b"\"")?;
        let rest = self.s.get(self.i..)?;
        let len = rest.iter().position(|&b| b == b'"')?;
        let name = &rest[..len];
        if name.contains(&b'\\') {
            return None;
        }
        self.i += len + 1;
        Some(name)
    }

    fn disposition(&mut self) -> Option<Disposition> {
        match self.name()? {
            b"default" => Some(Disposition::Default),
            b"ignore" => Some(Disposition::Ignore),
            b"handler" => Some(Disposition::Handler),
            _ => None,
        }
    }

    /// A JSON string: borrowed from the line when it has no escape.
    fn str(&mut self) -> Option<Cow<'a, str>> {
        self.lit(b"\"")?;
        let start = self.i;
        let s = self.s;
        let mut ascii = true;
        loop {
            match *s.get(self.i)? {
                b'"' => break,
                b'\\' => return self.escaped(start).map(Cow::Owned),
                // Raw control characters are not JSON; serde says so.
                0..=0x1f => return None,
                b => {
                    ascii &= b.is_ascii();
                    self.i += 1;
                }
            }
        }
        let raw = &s[start..self.i];
        let text = if ascii {
            // SAFETY: every byte is ASCII, which is UTF-8.
            unsafe { std::str::from_utf8_unchecked(raw) }
        } else {
            std::str::from_utf8(raw).ok()?
        };
        self.i += 1;
        Some(Cow::Borrowed(text))
    }

    /// The rest of a string from `start` (just after its opening quote), escapes decoded: the
    /// ones the writer uses (`\"`, `\\`, `\n`, `\t`, `\r`, `\b`, `\f`, `\u00XX`) and `\/`.
    /// Surrogate escapes are left to serde.
    fn escaped(&mut self, start: usize) -> Option<String> {
        let s = self.s;
        let mut out = Vec::with_capacity(s.len().saturating_sub(start).min(256));
        let mut i = start;
        loop {
            let b = *s.get(i)?;
            i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = *s.get(i)?;
                    i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = std::str::from_utf8(s.get(i..i + 4)?).ok()?;
                            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                                return None;
                            }
                            i += 4;
                            // Fails for surrogates, which serde pairs up or rejects.
                            char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
                        }
                        _ => return None,
                    };
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                }
                0..=0x1f => return None,
                _ => out.push(b),
            }
        }
        // Escapes decode to whole characters, so the result is valid UTF-8 exactly when the
        // raw runs between them are.
        let text = String::from_utf8(out).ok()?;
        self.i = i;
        Some(text)
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(Cow::into_owned)
    }

    fn comm(&mut self) -> Option<Comm> {
        self.str().map(|s| Comm::from(s.as_ref()))
    }

    /// A JSON array of strings, as the writer writes it: `[]` or `["a","b"]`.
    fn strings(&mut self) -> Option<Vec<String>> {
        self.lit(b"[")?;
        let mut out = Vec::new();
        if self.lit(b"]").is_some() {
            return Some(out);
        }
        loop {
            out.push(self.string()?);
            if self.lit(b"]").is_some() {
                return Some(out);
            }
            self.lit(b",")?;
        }
    }

    /// `,"sig":N,"sig_name":"NAME"`. The name is not read back (serde ignores it too), but it
    /// must be a string this reader can read.
    fn sig(&mut self) -> Option<Sig> {
        let sig = self.field(key!("sig"), Cursor::u32)?;
        self.field(key!("sig_name"), Cursor::str)?;
        Some(Sig(sig))
    }

    /// `,"group":...,"disposition":"NAME"`: where a signal went, as the writer flattens it.
    fn signal_target(&mut self) -> Option<SignalTarget> {
        Some(SignalTarget {
            group: self.field(key!("group"), Cursor::bool)?,
            pid: self.field(key!("target_pid"), Cursor::u32)?,
            tid: self.field(key!("target_tid"), Cursor::u32)?,
            ns_pid: self.field(key!("target_ns_pid"), Cursor::u32)?,
            pidns: self.field(key!("target_pidns"), Cursor::u32)?,
            comm: self.field(key!("target_comm"), Cursor::comm)?,
            start_ns: self.field(key!("target_start_ns"), Cursor::u64)?,
            disposition: self.field(key!("disposition"), Cursor::disposition)?,
        })
    }

    /// An exit status as the writer flattens it: the raw status, then the code, the signal,
    /// and `core_dumped` when there are.
    fn status(&mut self) -> Option<ExitStatus> {
        let status = self.field(key!("status"), Cursor::u32)?;
        let code = self.optional(key!("code"), Cursor::u8)?;
        let killed_by = if self.s.get(self.i..)?.starts_with(key!("sig")) {
            Some(self.sig()?)
        } else {
            None
        };
        let core_dumped = self.optional(key!("core_dumped"), Cursor::bool)?;
        Some(ExitStatus {
            status,
            code,
            killed_by,
            core_dumped: core_dumped.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        output::json_event::write_event,
        replay::parse_event_serde,
        rng::Rng,
        samples::{AWKWARD, kinds, task},
    };

    fn written(event: &Event) -> Vec<u8> {
        let mut line = Vec::new();
        write_event(&mut line, event).unwrap();
        line
    }

    /// The fast reader reads `line`, to what serde reads.
    fn fast_as_serde(line: &[u8]) -> Event {
        let text = String::from_utf8_lossy(line);
        let fast = parse_event_fast(line).unwrap_or_else(|| panic!("fast reader gave up: {text}"));
        let serde = parse_event_serde(line).unwrap_or_else(|e| panic!("serde: {e}: {text}"));
        assert_eq!(fast, serde, "{text}");
        fast
    }

    #[test]
    fn reads_every_kind_as_serde_does() {
        let mut kernel_comm = *b"bad\xff\xfeutf8\xc3\0\0\0\0\0\0";
        kernel_comm[15] = 0;
        let comms = AWKWARD
            .iter()
            .map(|s| Comm::from(*s))
            .chain([Comm::from_kernel(kernel_comm), Comm::from("üüüüüüüüü")]);
        let mut n = 0;
        for (i, comm) in comms.enumerate() {
            for data in kinds(AWKWARD[i % AWKWARD.len()]) {
                let event = Event {
                    ts_ns: [0, 1, u64::MAX][i % 3],
                    task: task(comm),
                    data,
                };
                let line = written(&event);
                let read = fast_as_serde(&line);
                assert_eq!(read, as_text(event), "{}", String::from_utf8_lossy(&line));
                n += 1;
            }
        }
        assert!(n > 500, "{n}");
    }

    /// `event` as its text can hold it: a comm is written as text, so bytes that are not
    /// UTF-8 read back as U+FFFD, and bytes after a NUL are not kept.
    fn as_text(mut event: Event) -> Event {
        let text = |comm: &mut Comm| *comm = Comm::from(comm.as_str().as_ref());
        text(&mut event.task.comm);
        match &mut event.data {
            EventData::Exec(e) => e.comm_before.iter_mut().for_each(text),
            EventData::Reap(r) => text(&mut r.reaper_comm),
            EventData::Signal(s) => text(&mut s.target.comm),
            EventData::SignalBurst(b) => text(&mut b.target.comm),
            _ => {}
        }
        event
    }

    fn random_string(rng: &mut Rng) -> String {
        const PIECES: [&str; 14] = [
            "a", "Z", " ", "\"", "\\", "/", "\u{0}", "\n", "\u{1f}", "\u{7f}", "é", "€", "🦀",
            "\u{fffd}",
        ];
        (0..rng.next() % 20).map(|_| rng.pick(&PIECES)).collect()
    }

    fn random_int(rng: &mut Rng) -> u64 {
        match rng.next() % 4 {
            0 => rng.next() % 10,
            1 => rng.next() >> (rng.next() % 64),
            2 => u64::MAX - rng.next() % 3,
            _ => rng.next(),
        }
    }

    #[test]
    fn reads_random_events_as_serde_does() {
        let mut rng = Rng(0x5eed_fa57);
        for _ in 0..20_000 {
            let s = random_string(&mut rng);
            let mut kinds = kinds(&s);
            let mut data = kinds.swap_remove(rng.below(kinds.len()));
            let int = random_int(&mut rng);
            match &mut data {
                EventData::Fork(f) => f.child_start_ns = int,
                EventData::Exec(e) => e.argv.push(random_string(&mut rng)),
                EventData::Exit(x) => x.status = ExitStatus::from_wait_status(int as u32),
                EventData::Wait(w) => w.ret = int as i64,
                EventData::Reap(r) => r.exit_ns = Some(int),
                EventData::Signal(s) => s.si_code = int as i32,
                EventData::SignalDeliver(d) => d.sa_flags = int as u32,
                EventData::Lost(l) => l.total = int,
                EventData::SignalBurst(b) => b.count = int,
                EventData::DeliverBurst(d) => d.count = int,
            }
            let event = Event {
                ts_ns: random_int(&mut rng),
                task: Task {
                    pid: random_int(&mut rng) as u32,
                    cgroup_id: random_int(&mut rng),
                    comm: Comm::from(random_string(&mut rng).as_str()),
                    ..task(Comm::default())
                },
                data,
            };
            let line = written(&event);
            let read = fast_as_serde(&line);
            assert_eq!(read, as_text(event), "{}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn numbers_of_every_length() {
        let mut rng = Rng(0xd1);
        for _ in 0..200_000 {
            let n = random_int(&mut rng);
            for tail in ["}", ",\"x\":", "", "a", "}}}}}}}}}}"] {
                let text = format!("{n}{tail}");
                let mut c = Cursor {
                    s: text.as_bytes(),
                    i: 0,
                };
                assert_eq!(c.u64(), Some(n), "{text}");
                assert_eq!(c.i, n.to_string().len(), "{text}");
            }
        }
        for bad in [
            "",
            "01",
            "00",
            "18446744073709551616",
            "99999999999999999999",
            "-1",
            "a",
        ] {
            for tail in ["", "}", "}}}}}}}}}}"] {
                let text = format!("{bad}{tail}");
                let mut c = Cursor {
                    s: text.as_bytes(),
                    i: 0,
                };
                assert_eq!(c.u64(), None, "{text}");
                assert_eq!(c.i, 0);
            }
        }
        for byte in 0..=255u8 {
            let text = [b'7', byte, b'}', b'}', b'}', b'}', b'}', b'}', b'}', b'}'];
            let mut c = Cursor { s: &text, i: 0 };
            let expect = if byte.is_ascii_digit() {
                70 + u64::from(byte - b'0')
            } else {
                7
            };
            assert_eq!(c.u64(), Some(expect), "{byte}");
        }
    }

    /// Lines the writer does not write go to serde, which decides; the fast reader only takes
    /// what it reads to the same event.
    #[test]
    fn other_lines_fall_back_to_serde() {
        const BASE: &str = r#"{"ts_ns":5,"pid":10,"tid":10,"ns_pid":10,"pidns":4026531836,"ppid":1,"uid":0,"cgroup_id":1,"comm":"sh","start_ns":1,"event":"exit","status":0,"code":0,"process":true}"#;
        fast_as_serde(BASE.as_bytes());
        let variants = [
            // Another key order.
            BASE.replace(r#""pid":10,"tid":10"#, r#""tid":10,"pid":10"#),
            BASE.replace(r#""code":0,"process":true"#, r#""process":true,"code":0"#),
            // Whitespace.
            BASE.replace(',', ", "),
            BASE.replace('{', "{ "),
            BASE.replace(":", " : "),
            format!("{BASE} "),
            format!(" {BASE}"),
            // Unknown keys, anywhere.
            BASE.replace(r#""uid":0,"#, r#""uid":0,"extra":[1,{"a":null}],"#),
            BASE.replace('}', r#","extra":"x"}"#),
            // Escapes the writer does not write.
            BASE.replace(r#""sh""#, r#""\u0073\u0068""#),
            BASE.replace(r#""sh""#, r#""s\/h""#),
            BASE.replace(r#""sh""#, r#""\ud83e\udd80""#),
            BASE.replace(r#""sh""#, r#""\ud83e""#),
            BASE.replace(r#""sh""#, r#""\uDC00x""#),
            BASE.replace(r#""sh""#, r#""\x""#),
            BASE.replace(r#""sh""#, "\"s\u{1}h\""),
            // Numbers the writer does not write.
            BASE.replace(r#""pid":10"#, r#""pid":010"#),
            BASE.replace(r#""pid":10"#, r#""pid":10.0"#),
            BASE.replace(r#""pid":10"#, r#""pid":1e1"#),
            BASE.replace(r#""pid":10"#, r#""pid":-0"#),
            BASE.replace(r#""pid":10"#, r#""pid":-1"#),
            BASE.replace(r#""pid":10"#, r#""pid":4294967296"#),
            BASE.replace(r#""ts_ns":5"#, r#""ts_ns":18446744073709551616"#),
            BASE.replace(r#""code":0"#, r#""code":256"#),
            BASE.replace(r#""code":0"#, r#""code":null"#),
            BASE.replace(r#""status":0"#, r#""status":-0"#),
            // Repeated keys, missing keys, other kinds, other values.
            BASE.replace(r#""pid":10,"#, r#""pid":10,"pid":10,"#),
            BASE.replace(r#""code":0,"#, r#""code":0,"code":0,"#),
            BASE.replace(r#""uid":0,"#, ""),
            BASE.replace(r#""process":true"#, r#""process":1"#),
            BASE.replace(r#""process":true"#, r#""process":True"#),
            BASE.replace(r#""exit""#, r#""exi\u0074""#),
            BASE.replace(r#""exit""#, r#""finding""#),
            BASE.replace(r#""exit""#, r#""fork""#),
            BASE.replace(r#","code":0"#, r#","core_dumped":false"#),
            BASE.replace(r#","code":0"#, r#","sig":9,"sig_name":7"#),
            BASE.replace(r#","code":0"#, r#","sig":9,"sig_name":"\u0053IGKILL""#),
            // Not an object, or more than one.
            format!("{BASE}{BASE}"),
            format!("[{BASE}]"),
            BASE[..BASE.len() - 1].to_owned(),
            String::new(),
            "{}".to_owned(),
        ];
        for line in &variants {
            let fast = parse_event_fast(line.as_bytes());
            let serde = parse_event_serde(line.as_bytes());
            if let Some(fast) = &fast {
                assert_eq!(Ok(fast), serde.as_ref(), "{line}");
            }
            assert_eq!(crate::replay::parse_event(line.as_bytes()), serde, "{line}");
        }
        // Some of those are valid events serde reads, which must still come out.
        let read = variants
            .iter()
            .filter(|l| parse_event_serde(l.as_bytes()).is_ok())
            .count();
        assert!(read >= 10, "{read}");
    }
}
