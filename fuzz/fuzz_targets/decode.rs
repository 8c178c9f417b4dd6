//! Arbitrary bytes as one ring buffer record: the decoder must reject or accept them without
//! panicking, and whatever it accepts must format in both output formats.

#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use tracer::output::{Format, sink};

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = tracer::decode::decode(data) {
        for format in [Format::Text, Format::Json] {
            let mut out = sink(format, Box::new(io::sink()), 0).expect("a sink to nowhere");
            out.event(&event).expect("writing to nowhere");
        }
        serde_json::to_string(&event).expect("an event serializes");
    }
});
