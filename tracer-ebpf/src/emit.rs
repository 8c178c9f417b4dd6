//! Writing records to the ring buffer, with every record that does not fit counted and
//! reported: a `Lost` record with the count goes out before the next record that fits.
//! Signal repeats counted on this CPU (`runs`) go out before any other record this CPU writes,
//! so the ring buffer holds each CPU's events in the order they happened.
//!
//! The reader is woken for a record only when this CPU has not woken it for
//! `WAKEUP_INTERVAL_NS`, or when a quarter of the ring is waiting; userspace reads again
//! shortly after every read that found records, which collects the ones written in between.
//! [`output`] paces with the time already in the record's header: a second clock read per
//! event costs as much as the rest of the pacing (helper calls are what a probe pays for).
//! [`try_output`] and [`submit_flags`] read the clock: a burst's header time is its last
//! repeat, which may be long past.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    maps::ring_buf::RingBufEntry,
};
use tracer_common::{CpuState, EventKind, Header, LostRecord, WAKEUP_INTERVAL_NS};

use crate::{
    maps::{CPU_STATE, EVENTS, wakeup_bytes},
    task::{fill_header, now},
};

/// Copies a record (built on the stack) into the ring buffer. Every record starts with a
/// [`Header`] (the wire contract, see `tracer_common::event`) whose `ts_ns` is filled.
#[inline(always)]
pub fn output<T: 'static>(record: &T) {
    const { assert!(core::mem::size_of::<T>() >= core::mem::size_of::<Header>()) };
    let Some(state) = CPU_STATE.get_ptr_mut(0) else {
        return;
    };
    flush_lost(state);
    crate::runs::flush();
    // SAFETY: every record type is repr(C) with a `Header` first (asserted large enough above).
    let ts_ns = unsafe { (*(record as *const T as *const Header)).ts_ns };
    if EVENTS
        .output::<T>(record, wake_flags(state, ts_ns))
        .is_err()
    {
        count_lost(state);
    }
}

/// Reserves room for a record too large for the BPF stack; the caller fills every byte it
/// later declares valid, then submits with [`submit_flags`].
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<RingBufEntry<T>> {
    let state = CPU_STATE.get_ptr_mut(0)?;
    flush_lost(state);
    crate::runs::flush();
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_lost(state);
    }
    entry
}

/// Copies a record into the ring buffer without counting it lost when it does not fit: for
/// counts the caller keeps and writes again later. Says whether it was written.
#[inline(always)]
pub fn try_output<T: 'static>(record: &T) -> bool {
    let flags = match CPU_STATE.get_ptr_mut(0) {
        Some(state) => wake_flags(state, now()),
        None => 0,
    };
    EVENTS.output::<T>(record, flags).is_ok()
}

/// Flags for submitting a reserved record.
#[inline(always)]
pub fn submit_flags() -> u64 {
    match CPU_STATE.get_ptr_mut(0) {
        Some(state) => wake_flags(state, now()),
        None => 0,
    }
}

/// `now` may lie in the past (a reap record carries the release time, for an autoreap the
/// exit's): such a record never counts as due.
#[inline(always)]
fn wake_flags(state: *mut CpuState, now: u64) -> u64 {
    let due = now.saturating_sub(unsafe { (*state).last_wakeup_ns }) >= WAKEUP_INTERVAL_NS;
    if due || EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= wakeup_bytes() {
        unsafe { (*state).last_wakeup_ns = now };
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
fn count_lost(state: *mut CpuState) {
    unsafe {
        (*state).lost_pending += 1;
        (*state).lost_total += 1;
    }
}

#[inline(always)]
fn flush_lost(state: *mut CpuState) {
    if unsafe { (*state).lost_pending } != 0 {
        report_lost(state);
    }
}

#[inline(never)]
fn report_lost(state: *mut CpuState) {
    let mut record = LostRecord {
        header: Header::default(),
        count: unsafe { (*state).lost_pending },
        total: unsafe { (*state).lost_total },
    };
    // A header that cannot be filled completely still says which CPU lost how many.
    let _ = fill_header(&mut record.header, EventKind::Lost as u32);
    record.header.kind = EventKind::Lost as u32;
    if EVENTS
        .output::<LostRecord>(&record, BPF_RB_FORCE_WAKEUP as u64)
        .is_ok()
    {
        unsafe { (*state).lost_pending = 0 };
    }
}
