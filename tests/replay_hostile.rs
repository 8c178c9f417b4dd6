//! The log reader against hostile lines, deterministically: 50,000 mutated event lines (fixed
//! seed; half of them well-formed with random numbers, half broken) through
//! `tracer::replay::parse_event`, every event it accepts through the engine, and some through a
//! whole `replay` (header check, reader, engine, both output formats). Nothing may panic, and
//! the fast reader must read every line as serde does or leave it to serde. The test suite's
//! short stand-in for the `replay` cargo-fuzz target in `fuzz/`.

mod common;

use std::{io, path::Path};

use common::rng::Rng;

use tracer::{
    engine::{Config, Engine},
    output::Format,
    replay::{parse_event, parse_event_fast, parse_event_serde, replay},
};

const CASES: u32 = 50_000;
const HEADER: &str = r#"{"tracer_log":4,"start_ns":0,"boot_unix_ns":0,"boot_id":"x"}"#;

/// One valid line of each kind, as `tracer trace --format json` writes them, and a `lost`
/// line as logs before format 4 wrote it (its CPU at the end).
const VALID: [&str; 11] = [
    r#"{"ts_ns":1000,"pid":10,"tid":10,"ns_pid":10,"pidns":4026531836,"ppid":1,"uid":0,"cgroup_id":1,"comm":"shell","start_ns":1,"cpu":0,"event":"fork","child_pid":11,"child_tid":11,"child_ns_pid":11,"child_pidns":4026531836,"child_ppid":10,"child_start_ns":1000,"thread":false}"#,
    r#"{"ts_ns":1100,"pid":11,"tid":11,"ns_pid":11,"pidns":4026531836,"ppid":10,"uid":0,"cgroup_id":1,"comm":"ls","start_ns":1000,"cpu":1,"event":"exec","filename":"/usr/bin/ls","argv":["ls","-l"],"argv_truncated":false,"comm_before":"shell"}"#,
    r#"{"ts_ns":1200,"pid":10,"tid":10,"ns_pid":10,"pidns":4026531836,"ppid":1,"uid":0,"cgroup_id":1,"comm":"shell","start_ns":1,"cpu":0,"event":"signal","sig":15,"sig_name":"SIGTERM","si_code":0,"result":"delivered","group":true,"target_pid":11,"target_tid":11,"target_ns_pid":11,"target_pidns":4026531836,"target_comm":"ls","target_start_ns":1000,"disposition":"default","blocked":false}"#,
    r#"{"ts_ns":1300,"pid":11,"tid":11,"ns_pid":11,"pidns":4026531836,"ppid":10,"uid":0,"cgroup_id":1,"comm":"ls","start_ns":1000,"cpu":1,"event":"signal_deliver","sig":15,"sig_name":"SIGTERM","si_code":0,"disposition":"default","sa_flags":0}"#,
    r#"{"ts_ns":1400,"pid":11,"tid":11,"ns_pid":11,"pidns":4026531836,"ppid":10,"uid":0,"cgroup_id":1,"comm":"ls","start_ns":1000,"cpu":0,"event":"exit","status":15,"sig":15,"sig_name":"SIGTERM","process":true}"#,
    r#"{"ts_ns":1500,"pid":10,"tid":10,"ns_pid":10,"pidns":4026531836,"ppid":1,"uid":0,"cgroup_id":1,"comm":"shell","start_ns":1,"cpu":1,"event":"wait","syscall":"wait4","ret":11,"upid":-1,"options":0,"child_ns_pid":11,"child_pid":11,"reaped":true}"#,
    r#"{"ts_ns":1500,"pid":11,"tid":11,"ns_pid":11,"pidns":4026531836,"ppid":10,"uid":0,"cgroup_id":1,"comm":"ls","start_ns":1000,"cpu":0,"event":"reap","reaper_pid":10,"reaper_tid":10,"reaper_comm":"shell","how":"wait","status":15,"sig":15,"sig_name":"SIGTERM","exit_ns":1400,"zombie_ns":100}"#,
    r#"{"ts_ns":1600,"pid":0,"tid":0,"ns_pid":0,"pidns":0,"ppid":0,"uid":0,"cgroup_id":0,"comm":"","start_ns":0,"cpu":1,"event":"lost","count":3,"total":3}"#,
    r#"{"ts_ns":1600,"pid":0,"tid":0,"ns_pid":0,"pidns":0,"ppid":0,"uid":0,"cgroup_id":0,"comm":"","start_ns":0,"event":"lost","count":3,"total":3,"cpu":1}"#,
    r#"{"ts_ns":1250,"pid":10,"tid":10,"ns_pid":10,"pidns":4026531836,"ppid":1,"uid":0,"cgroup_id":1,"comm":"shell","start_ns":1,"cpu":1,"event":"signal_burst","sig":10,"sig_name":"SIGUSR1","si_code":0,"group":true,"target_pid":11,"target_tid":11,"target_ns_pid":11,"target_pidns":4026531836,"target_comm":"ls","target_start_ns":1000,"disposition":"handler","blocked_count":0,"first_ns":1210,"count":9,"delivered":5,"ignored":0,"already_pending":4,"overflow":0,"lost_info":0}"#,
    r#"{"ts_ns":1260,"pid":11,"tid":11,"ns_pid":11,"pidns":4026531836,"ppid":10,"uid":0,"cgroup_id":1,"comm":"ls","start_ns":1000,"cpu":0,"event":"deliver_burst","sig":10,"sig_name":"SIGUSR1","si_code":0,"disposition":"handler","sa_flags":0,"first_ns":1220,"count":5}"#,
];

/// Replacements for a number: the edges of every integer width, and not quite numbers.
const NUMBERS: [&str; 14] = [
    "0",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e308",
    "-0",
    "1.5",
    "null",
    "\"7\"",
    "[]",
    "99999999999999999999999999999999",
];

/// A well-formed line with random numbers: small ones (pids and times that collide, so the
/// engine meets reused pids, unknown parents, reaps before exits, time going backwards) and
/// huge ones. These mostly parse, and exercise the engine rather than the reader.
fn renumbered(rng: &mut Rng) -> Vec<u8> {
    let line = VALID[rng.below(VALID.len())].as_bytes();
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let number_starts = line[i].is_ascii_digit() && i > 0 && line[i - 1] == b':';
        if number_starts && rng.below(2) == 0 {
            while i < line.len() && line[i].is_ascii_digit() {
                i += 1;
            }
            let n = match rng.below(4) {
                0 => rng.next() % 4_294_967_296,
                _ => rng.next() % 40,
            };
            out.extend_from_slice(n.to_string().as_bytes());
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

/// One hostile line: a valid line mutated one to four times.
fn case(rng: &mut Rng) -> Vec<u8> {
    let mut line = VALID[rng.below(VALID.len())].as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = line.len().max(1);
        match rng.below(8) {
            // Flip a byte.
            0 => {
                let i = rng.below(len).min(line.len().saturating_sub(1));
                if let Some(b) = line.get_mut(i) {
                    *b = rng.next() as u8;
                }
            }
            // Cut the line short.
            1 => line.truncate(rng.below(len)),
            // Delete a range.
            2 => {
                let a = rng.below(len).min(line.len());
                let b = (a + rng.below(16)).min(line.len());
                line.drain(a..b);
            }
            // Duplicate a range (repeated keys, nested garbage).
            3 => {
                let a = rng.below(len).min(line.len());
                let b = (a + rng.below(64)).min(line.len());
                let piece = line[a..b].to_vec();
                line.splice(a..a, piece);
            }
            // Replace a number with an edge case.
            4 => {
                let digits: Vec<usize> = (0..line.len())
                    .filter(|&i| line[i].is_ascii_digit() && (i == 0 || line[i - 1] == b':'))
                    .collect();
                if !digits.is_empty() {
                    let a = digits[rng.below(digits.len())];
                    let b = (a..line.len())
                        .find(|&i| !line[i].is_ascii_digit())
                        .unwrap_or(line.len());
                    let n = NUMBERS[rng.below(NUMBERS.len())].as_bytes().to_vec();
                    line.splice(a..b, n);
                }
            }
            // Insert random bytes, invalid UTF-8 included.
            5 => {
                let at = rng.below(len).min(line.len());
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                line.splice(at..at, bytes);
            }
            // Splice in the tail of another kind's line (fields of the wrong kind).
            6 => {
                let other = VALID[rng.below(VALID.len())].as_bytes();
                let a = rng.below(len).min(line.len());
                let b = rng.below(other.len());
                line.truncate(a);
                line.extend_from_slice(&other[b..]);
            }
            // Change the event kind.
            _ => {
                let kinds = [
                    "fork",
                    "exec",
                    "exit",
                    "wait",
                    "reap",
                    "signal",
                    "signal_deliver",
                    "lost",
                    "signal_burst",
                    "deliver_burst",
                    "finding",
                    "",
                ];
                let text = String::from_utf8_lossy(&line).into_owned();
                if let Some(at) = text.find("\"event\":\"") {
                    let rest = &text[at + 9..];
                    if let Some(end) = rest.find('"') {
                        let kind = kinds[rng.below(kinds.len())];
                        line = format!("{}{kind}{}", &text[..at + 9], &rest[end..]).into_bytes();
                    }
                }
            }
        }
    }
    line
}

#[test]
fn seeds_are_valid() {
    for line in VALID {
        parse_event(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

#[test]
fn reader_and_engine_never_panic_on_hostile_lines() {
    let mut rng = Rng(0x5eed_1095_0000_0005);
    let mut engine = Engine::new(Config::default());
    let (mut accepted, mut rejected, mut fast) = (0u32, 0u32, 0u32);
    let mut batch = Vec::new();
    for i in 0..CASES {
        let line = if i % 2 == 0 {
            renumbered(&mut rng)
        } else {
            case(&mut rng)
        };
        let serde = parse_event_serde(&line);
        if let Some(event) = parse_event_fast(&line) {
            fast += 1;
            assert_eq!(
                Ok(&event),
                serde.as_ref(),
                "{}",
                String::from_utf8_lossy(&line)
            );
        }
        let read = parse_event(&line);
        assert_eq!(read, serde, "{}", String::from_utf8_lossy(&line));
        match read {
            Ok(event) => {
                accepted += 1;
                engine.tick(event.ts_ns);
                engine.observe(&event);
            }
            Err(_) => rejected += 1,
        }
        // Every 64 lines, also a whole replay of them behind a valid header (it stops at the
        // first bad line with an error, which is fine: it must not panic).
        batch.push(line);
        if i % 64 == 63 {
            let mut log = HEADER.as_bytes().to_vec();
            for l in batch.drain(..) {
                log.push(b'\n');
                log.extend_from_slice(&l);
            }
            for format in [Format::Text, Format::Json] {
                let _ = replay(
                    Box::new(io::Cursor::new(log.clone())),
                    Path::new("hostile.jsonl"),
                    format,
                    Config::default(),
                    Box::new(io::sink()),
                );
            }
        }
    }
    engine.finish();
    let _ = engine.summary().to_string();
    // Both sides must be exercised, or the mutations are too weak or too strong.
    assert!(accepted > 1000, "only {accepted} lines accepted");
    assert!(rejected > 1000, "only {rejected} lines rejected");
    assert!(fast > 1000, "only {fast} lines read by the fast reader");
}
