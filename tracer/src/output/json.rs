//! JSON Lines: a first line describing the log, then one object per line: events, the
//! engine's findings, and what the engine learned from /proc (`{"snapshot":...}`,
//! `{"cgroup":...}`), so that a replay starts from and reconciles with the same process table.

use std::io::{self, BufWriter, Write};

use serde::{Deserialize, Serialize};

use super::Sink;
use crate::{
    engine::{Finding, Observation},
    event::{Event, LOG_FORMAT_VERSION},
};

/// The first line of a JSON Lines log.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogHeader {
    /// Format version; readers refuse versions newer than theirs.
    pub tracer_log: u32,
    /// Boot-clock time the trace started at.
    pub start_ns: u64,
    /// Unix time (ns) of boot: add it to any `ts_ns` for wall-clock time.
    pub boot_unix_ns: u64,
    /// The kernel's boot id: `ts_ns` values compare only within one boot.
    pub boot_id: String,
}

pub struct JsonSink {
    out: BufWriter<Box<dyn Write>>,
}

impl JsonSink {
    pub fn new(out: Box<dyn Write>, start_ns: u64) -> io::Result<Self> {
        let header = LogHeader {
            tracer_log: LOG_FORMAT_VERSION,
            start_ns,
            boot_unix_ns: crate::clock::boot_unix_ns(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        };
        Self::with_header(out, &header)
    }

    /// A sink whose first line is `header` as given: `tracer replay` passes on the header of
    /// the log it reads, so its JSON output is again a log of the same trace.
    pub fn with_header(out: Box<dyn Write>, header: &LogHeader) -> io::Result<Self> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        serde_json::to_writer(&mut out, header)?;
        out.write_all(b"\n")?;
        Ok(Self { out })
    }
}

impl Sink for JsonSink {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        super::json_event::write_event(&mut self.out, event)?;
        self.out.write_all(b"\n")
    }

    fn finding(&mut self, finding: &Finding) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, finding)?;
        self.out.write_all(b"\n")
    }

    fn observation(&mut self, observation: &Observation) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, observation)?;
        self.out.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
