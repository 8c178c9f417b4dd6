//! Writing records to the ring buffer, with every record that does not fit counted and
//! reported: a `Lost` record with the count goes out before the next record that fits.

use aya_ebpf::maps::ring_buf::RingBufEntry;
use tracer_common::{EventKind, Header, LostCounter, LostRecord};

use crate::{
    maps::{EVENTS, LOST},
    task::fill_header,
};

/// Copies a record (built on the stack) into the ring buffer.
#[inline(always)]
pub fn output<T: 'static>(record: &T) {
    let Some(lost) = LOST.get_ptr_mut(0) else {
        return;
    };
    flush_lost(lost);
    if EVENTS.output::<T>(record, 0).is_err() {
        count_lost(lost);
    }
}

/// Reserves room for a record too large for the BPF stack; the caller fills every byte it
/// later declares valid, then submits.
#[inline(always)]
pub fn reserve<T: 'static>() -> Option<RingBufEntry<T>> {
    let lost = LOST.get_ptr_mut(0)?;
    flush_lost(lost);
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_lost(lost);
    }
    entry
}

#[inline(always)]
fn count_lost(lost: *mut LostCounter) {
    unsafe {
        (*lost).pending += 1;
        (*lost).total += 1;
    }
}

#[inline(always)]
fn flush_lost(lost: *mut LostCounter) {
    if unsafe { (*lost).pending } != 0 {
        report_lost(lost);
    }
}

#[inline(never)]
fn report_lost(lost: *mut LostCounter) {
    let mut record = LostRecord {
        header: Header::default(),
        count: unsafe { (*lost).pending },
        total: unsafe { (*lost).total },
    };
    // A header that cannot be filled completely still says which CPU lost how many.
    let _ = fill_header(&mut record.header, EventKind::Lost as u32);
    record.header.kind = EventKind::Lost as u32;
    if EVENTS.output::<LostRecord>(&record, 0).is_ok() {
        unsafe { (*lost).pending = 0 };
    }
}
