//! Arbitrary bytes as a `tracer replay` log: the header check, the line reader and the engine
//! must reject or accept them without panicking, and the fast line reader must read a line as
//! serde does or leave it to serde. The input is tried whole (its first line as the header)
//! and, with a valid header in front, as event lines.

#![no_main]

use std::{io, path::Path};

use libfuzzer_sys::fuzz_target;
use tracer::{engine::Config, output::Format, replay::replay};

const HEADER: &[u8] =
    b"{\"tracer_log\":1,\"start_ns\":0,\"boot_unix_ns\":0,\"boot_id\":\"fuzz\"}\n";

fuzz_target!(|data: &[u8]| {
    let serde = tracer::replay::parse_event_serde(data);
    if let Some(fast) = tracer::replay::parse_event_fast(data) {
        assert_eq!(Ok(fast), serde);
    }
    let mut with_header = HEADER.to_vec();
    with_header.extend_from_slice(data);
    for (input, format) in [(data.to_vec(), Format::Text), (with_header, Format::Json)] {
        let _ = replay(
            Box::new(io::Cursor::new(input)),
            Path::new("fuzz.jsonl"),
            format,
            Config::default(),
            Box::new(io::sink()),
        );
    }
});
