//! Counts for the end-of-trace summary.

use tracer_common::EventKind;

use crate::{
    decode::DecodeError,
    event::{Event, EventData},
};

#[derive(Default)]
pub struct Stats {
    seen: u64,
    shown: [u64; EventKind::SLOTS],
    /// Signals and deliveries the bursts shown stand for.
    burst_signals: u64,
    burst_deliveries: u64,
    lost: u64,
    bad_records: u64,
}

impl Stats {
    pub fn saw(&mut self, event: &Event) {
        self.seen += 1;
        if let EventData::Lost(lost) = &event.data {
            self.lost = self.lost.saturating_add(lost.count);
        }
    }

    pub fn shown(&mut self, event: &Event) {
        self.shown[event.data.kind() as usize] += 1;
        match &event.data {
            EventData::SignalBurst(b) => {
                self.burst_signals = self.burst_signals.saturating_add(b.count);
            }
            EventData::DeliverBurst(d) => {
                self.burst_deliveries = self.burst_deliveries.saturating_add(d.count);
            }
            _ => {}
        }
    }

    pub fn bad_record(&mut self, err: &DecodeError) {
        if self.bad_records == 0 {
            eprintln!("tracer: skipping a malformed record from the kernel: {err}");
        }
        self.bad_records += 1;
    }

    /// `1234 events (fork 10, exit 10, ...), 0 lost`; with bursts, `…, bursts of 999998 more
    /// signals and 999998 more deliveries, 0 lost`.
    pub fn summary(&self, probe_errors: u64) -> String {
        let total: u64 = self.shown.iter().sum();
        let by_kind: Vec<String> = EventKind::ALL
            .into_iter()
            .filter(|k| *k != EventKind::Lost && self.shown[*k as usize] != 0)
            .map(|k| format!("{} {}", k.name(), self.shown[k as usize]))
            .collect();
        let mut line = format!("{total} events");
        if !by_kind.is_empty() {
            line.push_str(&format!(" ({})", by_kind.join(", ")));
        }
        if self.burst_signals != 0 || self.burst_deliveries != 0 {
            line.push_str(&format!(
                ", bursts of {} more signals and {} more deliveries",
                self.burst_signals, self.burst_deliveries
            ));
        }
        line.push_str(&format!(", {} lost", self.lost));
        if self.seen as usize != total as usize {
            line.push_str(&format!(", {} seen in all", self.seen));
        }
        if probe_errors != 0 {
            line.push_str(&format!(", {probe_errors} probe read failures"));
        }
        if self.bad_records != 0 {
            line.push_str(&format!(", {} malformed records skipped", self.bad_records));
        }
        line
    }
}
