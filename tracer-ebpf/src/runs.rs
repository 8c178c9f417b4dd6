//! Runs of identical signal events, counted per CPU instead of written one by one.
//!
//! A signal storm is millions of `signal_generate` and `signal_deliver` events that differ only
//! in their time (and, for generate, in the kernel's result: a storm alternates "delivered"
//! and "already pending"). Written one by one they fill the ring buffer faster than the reader
//! empties it. Here each CPU keeps one open run per kind (`SignalRuns`): the first event of a
//! run is written as usual, at once; an identical event on the same CPU within
//! [`SIGNAL_RUN_NS`] of it is only counted (exact counts, per result for generate, first and last
//! time). The counts are written as one burst record
//! - before the next record this CPU writes, of any kind ([`flush`], from `emit`): the ring
//!   buffer keeps each CPU's events in order;
//! - when a different signal event replaces the run (it is a record, so the above);
//! - when userspace nudges the CPU ([`nudged`]), which it does [`SIGNAL_RUN_NS`] after reading
//!   a record that opened a run, for the CPUs that still hold counts;
//! - at the end, by userspace reading the map once the probes are detached.
//!
//! Counts that do not fit in the ring buffer stay in the map and go out with the next flush:
//! a burst is never lost, only late. Both signal probes run with interrupts off (under the
//! target's siglock), so only the other probes' [`flush`] can be interrupted by them; `busy`
//! makes the interrupting probe leave the runs alone and write its event as a plain record.

use tracer_common::{
    EventKind, Header, SIGNAL_RESULTS, SIGNAL_RUN_NS, SignalDeliverRecord, SignalRecord, SignalRuns,
};

use crate::{
    emit,
    maps::SIGNAL_RUNS,
    task::{current_tid, now},
};

/// What identifies a `signal_generate` event apart from its time, its result and whether the
/// target blocks the signal at that moment (both counted).
pub struct GenerateKey {
    pub target_tid: u32,
    pub target_start_ns: u64,
    pub sig: u32,
    pub code: i32,
    pub group: u32,
    pub disposition: u32,
}

/// What identifies a `signal_deliver` event apart from its time.
pub struct DeliverKey {
    pub sig: u32,
    pub code: i32,
    pub disposition: u32,
    pub sa_flags: u32,
}

/// This CPU's runs, unless a probe this one interrupted is changing them.
#[inline(always)]
fn runs() -> Option<*mut SignalRuns> {
    let runs = SIGNAL_RUNS.get_ptr_mut(0)?;
    if unsafe { core::ptr::read_volatile(&(*runs).busy) } != 0 {
        return None;
    }
    Some(runs)
}

#[inline(always)]
fn set_busy(runs: *mut SignalRuns, busy: u64) {
    unsafe { core::ptr::write_volatile(&mut (*runs).busy, busy) };
}

/// Writes the counts this CPU holds, keeping the runs open. Cheap when there are none.
#[inline(always)]
pub fn flush() {
    let Some(runs) = runs() else {
        return;
    };
    if unsafe { (*runs).generate.count == 0 && (*runs).deliver.count == 0 } {
        return;
    }
    write_counts(runs);
}

#[inline(never)]
fn write_counts(runs: *mut SignalRuns) {
    set_busy(runs, 1);
    unsafe {
        let generate = &mut (*runs).generate;
        if generate.count != 0 && emit::try_output(generate) {
            generate.count = 0;
            generate.results = [0; SIGNAL_RESULTS];
            generate.blocked = 0;
        }
        let deliver = &mut (*runs).deliver;
        if deliver.count != 0 && emit::try_output(deliver) {
            deliver.count = 0;
        }
    }
    set_busy(runs, 0);
}

/// A nudge from userspace ran on this CPU: write the counts and close the runs (an event after
/// this opens a new run, with a record userspace sees).
#[inline(always)]
pub fn nudged() {
    let Some(runs) = runs() else {
        return;
    };
    write_counts(runs);
    unsafe {
        if (*runs).generate.count == 0 {
            (*runs).generate_start_ns = 0;
        }
        if (*runs).deliver.count == 0 {
            (*runs).deliver_start_ns = 0;
        }
    }
}

/// Counts a `signal_generate` event with `result` (and `blocked`) into the open run when it
/// repeats the run's first event; false when it does not (the caller writes it and opens a
/// new run).
#[inline(always)]
pub fn repeat_generate(key: &GenerateKey, result: u32, blocked: bool) -> bool {
    let Some(runs) = runs() else {
        return false;
    };
    let index = result as usize;
    if index >= SIGNAL_RESULTS {
        return false;
    }
    unsafe {
        let run = &mut (*runs).generate;
        let first = &run.signal;
        if first.target_tid != key.target_tid
            || first.target_start_ns != key.target_start_ns
            || first.sig != key.sig
            || first.code != key.code
            || first.group != key.group
            || first.disposition != key.disposition
            || !count_repeat(
                (*runs).generate_start_ns,
                &mut run.signal.header,
                &mut run.first_ns,
                &mut run.count,
            )
        {
            return false;
        }
        run.results[index] += 1;
        run.blocked += u64::from(blocked);
    }
    true
}

/// Counts a `signal_deliver` event into the open run when it repeats the run's first event.
#[inline(always)]
pub fn repeat_deliver(key: &DeliverKey) -> bool {
    let Some(runs) = runs() else {
        return false;
    };
    unsafe {
        let run = &mut (*runs).deliver;
        let first = &run.deliver;
        first.sig == key.sig
            && first.code == key.code
            && first.disposition == key.disposition
            && first.sa_flags == key.sa_flags
            && count_repeat(
                (*runs).deliver_start_ns,
                &mut run.deliver.header,
                &mut run.first_ns,
                &mut run.count,
            )
    }
}

/// The part of counting a repeat both kinds share, once the event's fields matched the run's
/// first: the same thread, within `SIGNAL_RUN_NS` of the run's start (`start_ns`, 0: none
/// open). The thread and the clock are asked last: a helper call is what a probe pays for.
#[inline(always)]
fn count_repeat(start_ns: u64, first: &mut Header, first_ns: &mut u64, count: &mut u64) -> bool {
    if start_ns == 0 || first.tid != current_tid() {
        return false;
    }
    let now = now();
    if now.wrapping_sub(start_ns) >= SIGNAL_RUN_NS {
        return false;
    }
    if *count == 0 {
        *first_ns = now;
    }
    *count += 1;
    first.ts_ns = now;
    true
}

/// Opens a run with `record`, just written, as its first event. Counts that could not be
/// written stay: their run stays, and `record` opens none.
#[inline(always)]
pub fn open_generate(record: &SignalRecord) {
    let Some(runs) = runs() else {
        return;
    };
    unsafe {
        if (*runs).generate.count != 0 {
            return;
        }
        let run = &mut (*runs).generate;
        run.signal = *record;
        run.signal.header.kind = EventKind::SignalBurst as u32;
        run.signal.result = 0;
        run.signal.blocked = 0;
        (*runs).generate_start_ns = record.header.ts_ns;
    }
}

/// Opens a `signal_deliver` run with `record`, just written.
#[inline(always)]
pub fn open_deliver(record: &SignalDeliverRecord) {
    let Some(runs) = runs() else {
        return;
    };
    unsafe {
        if (*runs).deliver.count != 0 {
            return;
        }
        let run = &mut (*runs).deliver;
        run.deliver = *record;
        run.deliver.header.kind = EventKind::DeliverBurst as u32;
        (*runs).deliver_start_ns = record.header.ts_ns;
    }
}
