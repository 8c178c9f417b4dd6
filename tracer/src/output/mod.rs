//! Output sinks: where events go once decoded and filtered. Each sink formats events one way;
//! the tracer does not care which it writes to.

mod json;
pub(crate) mod json_event;
mod text;

use std::io::{self, Write};

pub use json::{JsonSink, LogHeader};
pub use text::TextSink;

use crate::{
    engine::{Finding, Observation},
    event::Event,
};

/// A destination for events.
pub trait Sink {
    fn event(&mut self, event: &Event) -> io::Result<()>;
    /// A conclusion of the engine, interleaved with the events in time order.
    fn finding(&mut self, finding: &Finding) -> io::Result<()>;
    /// What the engine learned from /proc or /sys rather than from an event; a log records it
    /// for replay, a display need not show it.
    fn observation(&mut self, _observation: &Observation) -> io::Result<()> {
        Ok(())
    }
    /// Pushes out what is buffered (called when the ring buffer has been drained, so output
    /// keeps pace with events without a write per event).
    fn flush(&mut self) -> io::Result<()>;
}

/// Output format of `trace` and `replay`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One aligned line per event, for people.
    Text,
    /// JSON Lines: one object per event, for programs and `tracer replay`.
    Json,
}

/// A sink of `format` writing to `out`; `start_ns` is the boot-clock time shown as 0 in text.
pub fn sink(format: Format, out: Box<dyn Write>, start_ns: u64) -> io::Result<Box<dyn Sink>> {
    Ok(match format {
        Format::Text => Box::new(TextSink::new(out, start_ns)),
        Format::Json => Box::new(JsonSink::new(out, start_ns)?),
    })
}
