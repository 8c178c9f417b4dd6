//! The end-of-run summary: events by kind, losses, findings by kind, the reapers holding the
//! most zombies, dropped signals by reason and signal, and the table's size.

use std::fmt;

use serde::Serialize;
use tracer_common::EventKind;

use super::{
    Engine,
    findings::ProcRef,
    table::{self, flag},
};
use crate::signals::signal_name;

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Events by kind, in kind order.
    pub events: Vec<(String, u64)>,
    pub lost: u64,
    /// Findings by kind, in a fixed order.
    pub findings: Vec<(String, u64)>,
    /// Reapers holding unreaped zombies at the end, most first.
    pub top_reapers: Vec<ReaperCount>,
    /// Dropped signals by reason and signal.
    pub dropped_signals: Vec<DropCount>,
    pub table: TableSize,
    pub exits_missed: u64,
    pub reconciles: u64,
    /// Lost events were reported and no /proc reconcile followed (always so in a replay).
    pub unreconciled_loss: bool,
    pub subreapers_learned: u64,
    /// Reparentings the kernel contradicted: bugs in the table, shown not hidden.
    pub parent_disagreements: u64,
    pub disagreement_samples: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReaperCount {
    pub reaper: ProcRef,
    pub zombies: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct DropCount {
    pub reason: String,
    pub sig: u32,
    pub sig_name: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct TableSize {
    /// Entries in all.
    pub entries: usize,
    pub alive: usize,
    pub zombies: usize,
    /// Reaped, kept until the retention window passes.
    pub retained: usize,
    /// Entries retired (forgotten) so far.
    pub retired: u64,
    /// Signals tracked as pending.
    pub pending_signals: usize,
    /// Estimated bytes held by the table.
    pub bytes: usize,
}

const FINDING_KINDS: [&str; 4] = ["zombie", "zombie_reaped", "zombie_leak", "signal_dropped"];

impl Summary {
    pub(super) fn of(engine: &Engine) -> Self {
        let c = &engine.counters;
        let events = EventKind::ALL
            .into_iter()
            .filter(|k| c.events[*k as usize] != 0)
            .map(|k| (k.name().to_owned(), c.events[k as usize]))
            .collect();
        let findings = FINDING_KINDS
            .iter()
            .map(|k| ((*k).to_owned(), c.findings.get(k).copied().unwrap_or(0)))
            .collect();
        // One pass over the table (it may hold millions) for all it says.
        let t = &engine.table;
        let (mut alive, mut zombies, mut retained, mut exec_bytes) = (0, 0, 0, 0);
        let mut held = Vec::new();
        for (i, p) in t.entries() {
            if p.has(flag::REAPED) {
                retained += 1;
            } else if p.has(flag::EXITED) {
                zombies += 1;
            } else {
                alive += 1;
            }
            if p.zombies_held > 0 {
                held.push((i, p.zombies_held));
            }
            exec_bytes += table::exec_bytes(p);
        }
        let top_reapers = engine
            .top_reapers(held, 5)
            .into_iter()
            .map(|(reaper, zombies)| ReaperCount { reaper, zombies })
            .collect();
        let dropped_signals = engine
            .signals
            .drops
            .iter()
            .map(|(&(reason, sig), &count)| DropCount {
                reason: reason.name().to_owned(),
                sig,
                sig_name: signal_name(sig).into_owned(),
                count,
            })
            .collect();
        Self {
            events,
            lost: c.lost,
            findings,
            top_reapers,
            dropped_signals,
            table: TableSize {
                entries: t.len(),
                alive,
                zombies,
                retained,
                retired: t.retired,
                pending_signals: engine.signals.pending_len(),
                bytes: t.bytes_but_execs() + exec_bytes,
            },
            exits_missed: c.exits_missed,
            reconciles: c.reconciles,
            unreconciled_loss: engine.needs_reconcile,
            subreapers_learned: c.subreapers_learned,
            parent_disagreements: c.disagreements,
            disagreement_samples: c
                .disagreement_samples
                .iter()
                .map(|d| d.text.clone())
                .collect(),
        }
    }
}

impl fmt::Display for Summary {
    /// A few lines for people, each starting with what it counts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.events.iter().map(|(_, n)| n).sum();
        let kinds: Vec<String> = self
            .events
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        write!(f, "engine: {total} events")?;
        if !kinds.is_empty() {
            write!(f, " ({})", kinds.join(", "))?;
        }
        write!(f, ", {} lost", self.lost)?;
        if self.unreconciled_loss {
            f.write_str(
                " (not reconciled with /proc: the table may hold processes that are gone)",
            )?;
        }
        let found: Vec<String> = self
            .findings
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        write!(f, "\nfindings: {}", found.join(", "))?;
        if !self.top_reapers.is_empty() {
            let top: Vec<String> = self
                .top_reapers
                .iter()
                .map(|r| format!("{} holds {}", r.reaper, r.zombies))
                .collect();
            write!(f, "\nzombies held now: {}", top.join("; "))?;
        }
        if !self.dropped_signals.is_empty() {
            let drops: Vec<String> = self
                .dropped_signals
                .iter()
                .map(|d| format!("{} {} {}", d.reason, d.sig_name, d.count))
                .collect();
            write!(f, "\ndropped signals: {}", drops.join(", "))?;
        }
        let t = &self.table;
        write!(
            f,
            "\nprocess table: {} entries ({} alive, {} zombies, {} reaped and retained), {} \
             retired, {} signals pending, ~{} KiB",
            t.entries,
            t.alive,
            t.zombies,
            t.retained,
            t.retired,
            t.pending_signals,
            t.bytes.div_ceil(1024)
        )?;
        if self.exits_missed != 0 || self.reconciles != 0 {
            write!(
                f,
                "\nexits missed: {} (after {} reconcile(s) with /proc)",
                self.exits_missed, self.reconciles
            )?;
        }
        if self.subreapers_learned != 0 {
            write!(
                f,
                "\nsubreapers learned from reparenting: {}",
                self.subreapers_learned
            )?;
        }
        if self.parent_disagreements != 0 {
            write!(
                f,
                "\nparent disagreements (table vs kernel): {}",
                self.parent_disagreements
            )?;
            for s in &self.disagreement_samples {
                write!(f, "\n  {s}")?;
            }
        }
        Ok(())
    }
}
