//! The wire decoder against hostile bytes, deterministically: ~200,000 pseudo-random and
//! mutated-valid ring buffer records (fixed seed) through `tracer::decode::decode`, and every
//! event it accepts through both output formats. Nothing may panic. This is the test suite's
//! short stand-in for the cargo-fuzz target in `fuzz/` (`cargo xtask fuzz` runs that long).

mod common;

use std::{io, mem::size_of, panic};

use common::rng::Rng;

use tracer::{
    decode::{decode, record_bytes},
    output::{Format, sink},
};
use tracer_common as wire;

const CASES: u32 = 200_000;

fn header(kind: wire::EventKind) -> wire::Header {
    wire::Header {
        kind: kind as u32,
        pid: 4242,
        tid: 4242,
        ts_ns: 5_000_000_000,
        start_ns: 4_000_000_000,
        comm: *b"storm\0\0\0\0\0\0\0\0\0\0\0",
        ..Default::default()
    }
}

/// One valid record of every kind, as the probes would write it.
fn valid_records() -> Vec<Vec<u8>> {
    use wire::EventKind as K;
    let mut exec = vec![0u8; size_of::<wire::ExecRecord>()];
    exec[..size_of::<wire::Header>()].copy_from_slice(&record_bytes(&header(K::Exec)));
    vec![
        record_bytes(&wire::ForkRecord {
            header: header(K::Fork),
            child_pid: 4243,
            ..Default::default()
        }),
        exec,
        record_bytes(&wire::ExitRecord {
            header: header(K::Exit),
            exit_code: 9 | 0x80,
            flags: wire::EXIT_PROCESS,
        }),
        record_bytes(&wire::WaitRecord {
            header: header(K::Wait),
            start_ns: 4_500_000_000,
            ret: 4243,
            which: wire::WAIT_WHICH_WAIT4,
            flags: wire::WAIT_REAPED | wire::WAIT_STATUS_KNOWN,
            ..Default::default()
        }),
        record_bytes(&wire::ReapRecord {
            header: header(K::Reap),
            how: wire::ReapHow::Wait as u32,
            exit_ns: 4_600_000_000,
            zombie_ns: 400_000_000,
            ..Default::default()
        }),
        record_bytes(&wire::SignalRecord {
            header: header(K::Signal),
            sig: 10,
            result: wire::SignalResult::Delivered as u32,
            disposition: wire::Disposition::Handler as u32,
            ..Default::default()
        }),
        record_bytes(&wire::SignalDeliverRecord {
            header: header(K::SignalDeliver),
            sig: 10,
            disposition: wire::Disposition::Handler as u32,
            ..Default::default()
        }),
        record_bytes(&wire::LostRecord {
            header: header(K::Lost),
            count: 3,
            total: 5,
        }),
        record_bytes(&wire::SignalBurstRecord {
            signal: wire::SignalRecord {
                header: header(K::SignalBurst),
                sig: 10,
                disposition: wire::Disposition::Handler as u32,
                ..Default::default()
            },
            first_ns: 4_900_000_000,
            count: 999_999,
            results: [500_000, 0, 499_999, 0, 0],
            blocked: 400_000,
        }),
        record_bytes(&wire::DeliverBurstRecord {
            deliver: wire::SignalDeliverRecord {
                header: header(K::DeliverBurst),
                sig: 10,
                disposition: wire::Disposition::Handler as u32,
                ..Default::default()
            },
            first_ns: 4_900_000_000,
            count: 500_000,
        }),
    ]
}

/// Case `i`: one of four shapes, so every decode path gets both sane and insane input.
fn case(rng: &mut Rng, valid: &[Vec<u8>], i: u32) -> Vec<u8> {
    let seed = &valid[rng.below(valid.len())];
    match i % 4 {
        // Any bytes, any length (most are short or of an unknown kind).
        0 => {
            let mut bytes = vec![0; rng.below(seed.len() + 64)];
            rng.fill(&mut bytes);
            bytes
        }
        // A known kind with every other byte random: reaches each record's field checks.
        1 => {
            let mut bytes = vec![0; seed.len()];
            rng.fill(&mut bytes);
            bytes[..4].copy_from_slice(&seed[..4]);
            bytes
        }
        // A valid record with a few bytes changed (lengths, enums, flags, strings).
        2 => {
            let mut bytes = seed.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            bytes
        }
        // A valid record cut short or with junk after it.
        _ => {
            let mut bytes = seed.clone();
            let len = rng.below(seed.len() + 32);
            bytes.resize(len, 0xa5);
            bytes
        }
    }
}

#[test]
fn decoder_never_panics_on_hostile_records() {
    let valid = valid_records();
    for record in &valid {
        decode(record).expect("the valid seeds decode");
    }
    let mut text = sink(Format::Text, Box::new(io::sink()), 4_000_000_000).unwrap();
    let mut json = sink(Format::Json, Box::new(io::sink()), 4_000_000_000).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut rejected) = (0u32, 0u32);
    for i in 0..CASES {
        let bytes = case(&mut rng, &valid, i);
        let outcome = panic::catch_unwind(panic::AssertUnwindSafe(|| match decode(&bytes) {
            Ok(event) => {
                text.event(&event).unwrap();
                json.event(&event).unwrap();
                serde_json::to_string(&event).unwrap();
                true
            }
            Err(err) => {
                // Errors are for people: they must format.
                assert!(!err.to_string().is_empty());
                false
            }
        }));
        match outcome {
            Ok(true) => accepted += 1,
            Ok(false) => rejected += 1,
            Err(_) => panic!(
                "case {i} panicked; input ({} bytes): {bytes:02x?}",
                bytes.len()
            ),
        }
    }
    eprintln!("{accepted} records accepted, {rejected} rejected, none panicked");
    // The cases reach both sides of the decoder, not just its length check.
    assert!(accepted > CASES / 10, "{accepted} accepted");
    assert!(rejected > CASES / 10, "{rejected} rejected");
}

/// Found by `cargo xtask fuzz` (target `decode`) within its first 40,000 inputs: a wait record
/// whose return value is `i64::MIN` made the text sink negate it, which overflowed: a panic in
/// builds with overflow checks (tests, fuzzing). The kernel never returns that from
/// wait4/waitid, but a damaged record or log can hold it.
#[test]
fn text_sink_survives_a_wait_returning_i64_min() {
    let record = wire::WaitRecord {
        header: header(wire::EventKind::Wait),
        ret: i64::MIN,
        which: wire::WAIT_WHICH_WAIT4,
        ..Default::default()
    };
    let event = decode(&record_bytes(&record)).expect("a wait record decodes");
    let mut text = sink(Format::Text, Box::new(io::sink()), 0).unwrap();
    text.event(&event).unwrap();
}
