//! Per-pid slots: where the probes keep a wait in progress and an exited process's record in
//! the common case, instead of the hash maps `WAITS` and `ZOMBIES`, which become the overflow.
//!
//! Why: these probes run inside fork, exit and wait, kernel code that has just pushed theirs out
//! of the caches, and there a hash map insert or delete costs 0.5-0.7 µs and a lookup 0.3 µs
//! (bpf_stats, on this project's 2-CPU VMs), several per fork+exit+wait. An array lookup the
//! verifier inlines: a bounds check and an address, no call. A slot is indexed by
//! `pid & PID_SLOT_MASK`; userspace sizes the arrays from `pid_max` (at most
//! `MAX_PID_SLOTS`), so two live pids rarely share one, and when they do, the second goes to the
//! hash map exactly as before.
//!
//! Taking a slot: add 1 to its `claims` atomically, then read it back. Of any number of
//! concurrent takers at most one reads 1 (each reads after its own add, and two adds make 2): it
//! owns the slot; the others subtract their 1 again and use the map. The owner alone writes the
//! slot and gives it back exactly once: a wait slot in its own syscall's exit, a zombie slot when
//! the task is freed. A plain atomic add (BPF_XADD) is all this needs, and every kernel this
//! runs on has it.

use tracer_common::{WaitArgs, WaitSlot, ZombieRecord, ZombieSlot};

use crate::maps::{WAIT_SLOTS, ZOMBIE_SLOTS, pid_slot_mask};

/// `*counter += value`, atomically. Rust offers no atomic read-modify-write on the BPF target
/// (it declares no compare-and-swap), so this is the instruction itself.
#[inline(always)]
fn atomic_add(counter: *mut u64, value: u64) {
    // SAFETY: `counter` points into a map value, which lives as long as the map.
    unsafe {
        core::arch::asm!(
            "lock *(u64 *)({counter} + 0) += {value}",
            counter = in(reg) counter,
            value = in(reg) value,
        )
    };
}

#[inline(always)]
fn try_claim(claims: *mut u64) -> bool {
    atomic_add(claims, 1);
    if unsafe { core::ptr::read_volatile(claims) } == 1 {
        return true;
    }
    give_back(claims);
    false
}

#[inline(always)]
fn give_back(claims: *mut u64) {
    // Adding u64::MAX subtracts 1: add is the one atomic every kernel's BPF has.
    atomic_add(claims, u64::MAX);
}

#[inline(always)]
fn wait_slot(tid: u32) -> Option<*mut WaitSlot> {
    WAIT_SLOTS.get_ptr_mut(tid & pid_slot_mask())
}

/// Room for the arguments of a wait `tid` is entering, or `None` when its slot is taken (the
/// caller uses `WAITS`).
#[inline(always)]
pub fn enter_wait(tid: u32) -> Option<*mut WaitArgs> {
    let slot = wait_slot(tid)?;
    unsafe {
        // Still ours only if a call's exit went unseen; then the claim is ours too.
        if (*slot).tid != tid {
            if !try_claim(&raw mut (*slot).claims) {
                return None;
            }
            (*slot).tid = tid;
        }
        Some(&raw mut (*slot).args)
    }
}

/// The wait `tid` is in, if it has the slot.
#[inline(always)]
pub fn wait_of(tid: u32) -> Option<*mut WaitArgs> {
    let slot = wait_slot(tid)?;
    unsafe { ((*slot).tid == tid).then_some(&raw mut (*slot).args) }
}

/// Ends the wait `tid` has the slot for and returns its arguments.
#[inline(always)]
pub fn leave_wait(tid: u32) -> Option<WaitArgs> {
    let slot = wait_slot(tid)?;
    unsafe {
        if (*slot).tid != tid {
            return None;
        }
        let args = (*slot).args;
        (*slot).tid = 0;
        give_back(&raw mut (*slot).claims);
        Some(args)
    }
}

#[inline(always)]
fn zombie_slot(pid: u32) -> Option<*mut ZombieSlot> {
    ZOMBIE_SLOTS.get_ptr_mut(pid & pid_slot_mask())
}

/// Keeps `zombie` in its process's slot; false when the slot is taken (the caller uses
/// `ZOMBIES`).
#[inline(always)]
pub fn keep_zombie(zombie: &ZombieRecord) -> bool {
    let pid = zombie.header.pid;
    let Some(slot) = zombie_slot(pid) else {
        return false;
    };
    unsafe {
        if !try_claim(&raw mut (*slot).claims) {
            return false;
        }
        (*slot).zombie = *zombie;
        (*slot).reported = 0;
        (*slot).pid = pid;
    }
    true
}

/// The unreported record of exited process `pid`, if it is in a slot.
///
/// A process whose release was not reported yet still has its pid (it is freed only when
/// released), so no other process with that pid can have exited meanwhile, except by reusing
/// the pid within the grace period between a release nobody waited for and the free: the
/// kernel hands pids out cyclically, so that takes `pid_max` forks in a few milliseconds.
#[inline(always)]
pub fn zombie(pid: u32) -> Option<&'static ZombieRecord> {
    let slot = zombie_slot(pid)?;
    unsafe { ((*slot).pid == pid && (*slot).reported == 0).then(|| &(*slot).zombie) }
}

/// Marks the release of `pid`, whose record [`zombie`] found, as reported.
#[inline(always)]
pub fn report_zombie(pid: u32) {
    if let Some(slot) = zombie_slot(pid) {
        unsafe {
            if (*slot).pid == pid {
                (*slot).reported = 1;
            }
        }
    }
}

/// The slot of a process whose task is being freed.
pub struct Freed(*mut ZombieSlot);

/// The slot of the process being freed (its pid and start time), if its record is in one.
#[inline(always)]
pub fn freed_zombie(pid: u32, start_ns: u64) -> Option<Freed> {
    let slot = zombie_slot(pid)?;
    // A slot holding another process with this pid (the freed one's exit was not seen, or its
    // record went to the map) is not this one's to give back.
    unsafe {
        ((*slot).pid == pid && (*slot).zombie.header.start_ns == start_ns).then_some(Freed(slot))
    }
}

impl Freed {
    /// The record, when no wait reported the release.
    #[inline(always)]
    pub fn unreported(&self) -> Option<&ZombieRecord> {
        unsafe { ((*self.0).reported == 0).then(|| &(*self.0).zombie) }
    }

    /// Frees the slot; the record must not be used after this.
    #[inline(always)]
    pub fn give_back(self) {
        unsafe {
            (*self.0).pid = 0;
            give_back(&raw mut (*self.0).claims);
        }
    }
}
