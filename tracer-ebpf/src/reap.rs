//! The `Reap` record, shared by the two places a release is seen: a wait that returned a
//! zombie, and the freeing of a zombie no wait accounted for.

use tracer_common::{COMM_LEN, EventKind, ReapHow, ReapRecord, ZombieRecord};

use crate::{
    emit,
    maps::{ZOMBIE_PIDS, ZOMBIES},
    slot,
};

/// Who released a zombie.
pub struct Reaper {
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; COMM_LEN],
}

#[inline(never)]
pub fn emit(zombie: &ZombieRecord, reaper: &Reaper, how: ReapHow, released_ns: u64) {
    let exit_ns = zombie.header.ts_ns;
    let mut record = ReapRecord {
        header: zombie.header,
        reaper_pid: reaper.pid,
        reaper_tid: reaper.tid,
        how: how as u32,
        exit_code: zombie.exit_code,
        exit_ns,
        zombie_ns: released_ns.saturating_sub(exit_ns),
        reaper_comm: reaper.comm,
    };
    record.header.kind = EventKind::Reap as u32;
    record.header.ts_ns = released_ns;
    emit::output(&record);
}

/// Where a zombie's record is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// In its slot (`slot`).
    Slot,
    /// In `ZOMBIES`.
    Map,
}

/// Drops a released zombie: its namespace aliases, and its record from `ZOMBIES`, or, from a
/// slot, marks it reported (the slot is given back when the task is freed).
#[inline(never)]
pub fn forget(zombie: &ZombieRecord, kept: Kept) {
    forget_aliases(zombie);
    match kept {
        Kept::Slot => slot::report_zombie(zombie.header.pid),
        Kept::Map => {
            let _ = ZOMBIES.remove(&zombie.header.pid);
        }
    }
}

/// Drops the namespace aliases of a released zombie.
#[inline(always)]
fn forget_aliases(zombie: &ZombieRecord) {
    let pid = zombie.header.pid;
    for i in 0..tracer_common::MAX_PID_LEVELS {
        if i as u32 >= zombie.levels {
            break;
        }
        let key = zombie.keys[i];
        if key.pidns == tracer_common::PROC_PID_INIT_INO {
            continue;
        }
        // Only drop the alias if it still names this process (the pid may already be reused
        // in that namespace once the zombie is gone).
        if unsafe { ZOMBIE_PIDS.get(&key) }.is_some_and(|&p| p == pid) {
            let _ = ZOMBIE_PIDS.remove(&key);
        }
    }
}
