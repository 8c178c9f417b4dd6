//! The process table: one entry per process *incarnation*, named by (host pid, start time).
//!
//! Entries live in a slab addressed by `u32` index so that parent, child and sibling links are
//! four bytes each and an entry stays put while it exists. The pid index points at the newest
//! incarnation of each pid; older ones (reaped, kept for the retention window) hang off it in
//! a chain, so PID reuse never merges two processes.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasherDefault, Hasher},
};

use crate::event::Comm;

/// No entry.
pub const NONE: u32 = u32::MAX;

/// Flags of an entry.
pub mod flag {
    /// Its last thread exited (a zombie unless also `REAPED`).
    pub const EXITED: u16 = 1 << 0;
    pub const REAPED: u16 = 1 << 1;
    /// It vanished without its exit being seen (events lost); found out from /proc.
    pub const EXIT_MISSED: u16 = 1 << 2;
    /// Its start time came from /proc: exact only to a clock tick.
    pub const START_FROM_PROC: u16 = 1 << 3;
    /// PID 1 of its PID namespace.
    pub const NS_INIT: u16 = 1 << 4;
    /// Seen to adopt an orphan that its namespace's init would otherwise have got.
    pub const SUBREAPER: u16 = 1 << 5;
    /// Its parent now is not the one that started it.
    pub const ADOPTED: u16 = 1 << 6;
    /// A `zombie` finding was made about it.
    pub const ZOMBIE_REPORTED: u16 = 1 << 7;
    /// Stopped by a stop signal.
    pub const STOPPED: u16 = 1 << 8;
    /// Born during the trace (its fork was seen), so "never" about it means never.
    pub const BORN_IN_TRACE: u16 = 1 << 9;
    /// Its exit time is a lower bound: it exited before the trace started.
    pub const EXIT_BEFORE_TRACE: u16 = 1 << 10;
    /// A stand-in for a process known only by pid (a namespace init never seen yet); the first
    /// event from that pid fills it in.
    pub const PLACEHOLDER: u16 = 1 << 11;
    /// A `zombie` finding was made about it at some point (`ZOMBIE_REPORTED` is cleared when
    /// a new reaper adopts it, to report that one too).
    pub const EVER_REPORTED: u16 = 1 << 12;
}

/// Execs kept per process: the first and the latest ones; a process that execs in a loop
/// does not grow its entry.
pub const MAX_EXECS: usize = 4;

/// Bytes of one exec's header in an [`ExecHistory`]: its time and its filename's length.
const EXEC_HEADER: usize = 8 + 2;

/// A process's execs (the first and the latest, [`MAX_EXECS`] at most), packed into one
/// allocation: for each, its time (8 bytes), its filename's length (2 bytes) and the filename.
/// Most processes exec once: one allocation per process, freed in one go at retirement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecHistory(Box<[u8]>);

impl ExecHistory {
    /// Adds an exec; the second-oldest goes when there are already [`MAX_EXECS`]. A filename
    /// longer than 65535 bytes (the kernel's limit is 4096) keeps its first 65535 at most.
    pub fn push(&mut self, ts_ns: u64, filename: &str) {
        let mut end = filename.len().min(usize::from(u16::MAX));
        while !filename.is_char_boundary(end) {
            end -= 1;
        }
        let name = &filename.as_bytes()[..end];
        let old = &self.0[..];
        // The record to drop to stay within MAX_EXECS: the second one.
        let skip = if self.len() >= MAX_EXECS {
            let first = record_len(old, 0);
            first..first + record_len(old, first)
        } else {
            0..0
        };
        let mut bytes = Vec::with_capacity(old.len() - skip.len() + EXEC_HEADER + name.len());
        bytes.extend_from_slice(&old[..skip.start]);
        bytes.extend_from_slice(&old[skip.end..]);
        bytes.extend_from_slice(&ts_ns.to_le_bytes());
        bytes.extend_from_slice(&(name.len() as u16).to_le_bytes());
        bytes.extend_from_slice(name);
        self.0 = bytes.into_boxed_slice();
    }

    /// The execs, oldest first: (time, filename).
    pub fn iter(&self) -> impl Iterator<Item = (u64, &str)> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let bytes = &self.0[..];
            if at >= bytes.len() {
                return None;
            }
            let ts = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
            let len = record_len(bytes, at) - EXEC_HEADER;
            let name = &bytes[at + EXEC_HEADER..at + EXEC_HEADER + len];
            at += EXEC_HEADER + len;
            // Only whole strs are ever pushed.
            Some((ts, std::str::from_utf8(name).unwrap_or_default()))
        })
    }

    /// How many execs it holds (walks the records' headers only).
    pub fn len(&self) -> usize {
        let (mut at, mut n) = (0, 0);
        while at < self.0.len() {
            at += record_len(&self.0, at);
            n += 1;
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Bytes it holds.
    pub fn bytes(&self) -> usize {
        self.0.len()
    }
}

/// Bytes of the record at `at` in a packed history, header included.
fn record_len(bytes: &[u8], at: usize) -> usize {
    EXEC_HEADER + usize::from(u16::from_le_bytes([bytes[at + 8], bytes[at + 9]]))
}

/// What the table knows about one process.
#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: u32,
    pub ns_pid: u32,
    pub pidns: u32,
    pub parent: u32,
    pub first_child: u32,
    pub next_sibling: u32,
    pub prev_sibling: u32,
    /// The previous incarnation of this pid still in the table.
    pub older: u32,
    /// The next incarnation of this pid (`NONE`: this is the newest), so that retiring an
    /// entry unchains it without walking the chain from the newest.
    pub newer: u32,
    /// The parent whose exit orphaned it (check `orphaned_by_start`: the slot may be reused).
    pub orphaned_by: u32,
    /// Unreaped exited children it holds.
    pub zombies_held: u32,
    /// Of those, the ones reported as zombies.
    pub zombies_reported: u32,
    /// Adopted children it has reaped with wait().
    pub reaped_adopted: u32,
    /// `zombies_reported` when a leak was last reported about it.
    pub leak_reported: u32,
    /// Raw wait status of its exit.
    pub exit_status: u32,
    pub start_ns: u64,
    pub orphaned_by_start: u64,
    pub cgroup_id: u64,
    /// 0: alive.
    pub exit_ns: u64,
    pub reaped_ns: u64,
    /// When it was last reparented.
    pub adopted_ns: u64,
    /// Last wait call of any kind; last one for any child (pid -1 / P_ALL).
    pub last_wait_ns: u64,
    pub last_wait_any_ns: u64,
    pub comm: Comm,
    pub flags: u16,
    /// The signals the detector may track for it, one bit each (bit `sig - 1`): its exit and
    /// release look up those entries only. A bit can outlive its entry (taken over by a later
    /// process with the same pid); the entry's target is checked.
    pub signals_tracked: u64,
    pub execs: ExecHistory,
}

impl Proc {
    pub fn new(pid: u32, start_ns: u64, comm: Comm) -> Self {
        Self {
            pid,
            ns_pid: pid,
            pidns: 0,
            parent: NONE,
            first_child: NONE,
            next_sibling: NONE,
            prev_sibling: NONE,
            older: NONE,
            newer: NONE,
            orphaned_by: NONE,
            zombies_held: 0,
            zombies_reported: 0,
            reaped_adopted: 0,
            leak_reported: 0,
            exit_status: 0,
            start_ns,
            orphaned_by_start: 0,
            cgroup_id: 0,
            exit_ns: 0,
            reaped_ns: 0,
            adopted_ns: 0,
            last_wait_ns: 0,
            last_wait_any_ns: 0,
            comm,
            flags: 0,
            signals_tracked: 0,
            execs: ExecHistory::default(),
        }
    }

    pub fn has(&self, f: u16) -> bool {
        self.flags & f != 0
    }

    pub fn is_zombie(&self) -> bool {
        self.flags & (flag::EXITED | flag::REAPED) == flag::EXITED
    }

    pub fn is_alive(&self) -> bool {
        !self.has(flag::EXITED | flag::REAPED)
    }

    pub fn record_exec(&mut self, ts_ns: u64, filename: &str) {
        self.execs.push(ts_ns, filename);
    }
}

/// The multiplier of the engine's hashers (2^64 / golden ratio).
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Hashes a pid: pids are dense small integers, so one multiply spreads them well and costs
/// a fraction of SipHash (the engine does one lookup per event).
#[derive(Default)]
pub struct PidHasher(u64);

impl Hasher for PidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(MIX);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(MIX);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ self.0).wrapping_mul(MIX);
    }
}

/// The multiply hasher for the engine's small integer keys (pids, signal numbers, ids).
pub type FastHash = BuildHasherDefault<PidHasher>;

pub type PidMap<V> = HashMap<u32, V, FastHash>;

/// Hashes a pid to itself in the low bits, which pick the bucket, and to a mix of it in the
/// top seven, which the map keeps as the bucket's tag. The kernel hands out pids in order,
/// so processes started one after another sit in neighbouring buckets: a fork, and the
/// retirement of its pid's older incarnation, find the bucket in a cache line already
/// loaded instead of one a spread hash would leave cold.
#[derive(Default)]
pub struct PidOrderHasher(u64);

impl Hasher for PidOrderHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used with pids; any other key hashes as PidHasher hashes it.
        let mut h = PidHasher(self.0);
        h.write(bytes);
        self.0 = h.finish();
    }

    fn write_u32(&mut self, n: u32) {
        const TAG: u64 = 0x7F << 57;
        let n = u64::from(n);
        self.0 = n | (n.wrapping_mul(MIX) & TAG);
    }
}

/// Slots per chunk of the slab. The slab grows a chunk at a time, not by doubling, so the
/// memory held stays within one chunk of what the entries need.
const CHUNK: usize = 1024;

/// Entries in fixed-size chunks, addressed by a flat index.
#[derive(Default)]
struct Slab {
    chunks: Vec<Vec<Option<Proc>>>,
    len: usize,
}

impl Slab {
    fn get(&self, idx: usize) -> Option<&Option<Proc>> {
        self.chunks.get(idx / CHUNK)?.get(idx % CHUNK)
    }

    fn push(&mut self, proc: Proc) -> usize {
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        self.chunks.last_mut().expect("a chunk").push(Some(proc));
        self.len += 1;
        self.len - 1
    }

    fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    fn iter(&self) -> impl Iterator<Item = &Option<Proc>> {
        self.chunks.iter().flatten()
    }
}

impl std::ops::Index<usize> for Slab {
    type Output = Option<Proc>;

    fn index(&self, idx: usize) -> &Option<Proc> {
        &self.chunks[idx / CHUNK][idx % CHUNK]
    }
}

impl std::ops::IndexMut<usize> for Slab {
    fn index_mut(&mut self, idx: usize) -> &mut Option<Proc> {
        &mut self.chunks[idx / CHUNK][idx % CHUNK]
    }
}

/// Slots in [`Recent`].
const RECENT: usize = 16;

/// The latest exact lookups, one per low bits of the pid: (pid, index, start). Events come in
/// runs about a few processes (a parent and the child it just started), and most of them find
/// their entry here without a hash lookup.
struct Recent([(u32, u32, u64); RECENT]);

impl Default for Recent {
    fn default() -> Self {
        Self([(0, NONE, 0); RECENT])
    }
}

#[derive(Default)]
pub struct Table {
    slots: Slab,
    free: Vec<u32>,
    recent: Recent,
    by_pid: HashMap<u32, u32, BuildHasherDefault<PidOrderHasher>>,
    /// Reaped entries in the order they were reaped: (reaped at, index, start).
    retiring: VecDeque<(u64, u32, u64)>,
    /// ns per clock tick, to compare /proc start times with exact ones.
    ns_per_tick: u64,
    len: usize,
    pub retired: u64,
}

impl Table {
    pub fn new(ns_per_tick: u64) -> Self {
        Self {
            ns_per_tick: ns_per_tick.max(1),
            ..Self::default()
        }
    }

    pub fn set_ns_per_tick(&mut self, ns_per_tick: u64) {
        self.ns_per_tick = ns_per_tick.max(1);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, idx: u32) -> Option<&Proc> {
        self.slots.get(idx as usize)?.as_ref()
    }

    /// The entry at `idx`; panics on a dangling index, which is a bug in the table.
    pub fn at(&self, idx: u32) -> &Proc {
        self.slots[idx as usize].as_ref().expect("live index")
    }

    pub fn at_mut(&mut self, idx: u32) -> &mut Proc {
        self.slots[idx as usize].as_mut().expect("live index")
    }

    /// The entry at `idx` if it is still the process that started at `start_ns`.
    pub fn check(&self, idx: u32, start_ns: u64) -> Option<&Proc> {
        self.get(idx).filter(|p| p.start_ns == start_ns)
    }

    fn same_start(&self, p: &Proc, start_ns: u64) -> bool {
        if p.start_ns == start_ns || p.has(flag::PLACEHOLDER) {
            return true;
        }
        p.has(flag::START_FROM_PROC) && p.start_ns / self.ns_per_tick == start_ns / self.ns_per_tick
    }

    /// The incarnation of `pid` that started at `start_ns` (exact; or to the tick for
    /// entries read from /proc, which are then made exact).
    pub fn lookup(&mut self, pid: u32, start_ns: u64) -> Option<u32> {
        let slot = pid as usize % RECENT;
        let (recent_pid, recent_idx, recent_start) = self.recent.0[slot];
        if recent_idx != NONE && recent_pid == pid && recent_start == start_ns {
            return Some(recent_idx);
        }
        let mut idx = *self.by_pid.get(&pid)?;
        while idx != NONE {
            let p = self.at(idx);
            if self.same_start(p, start_ns) {
                let p = self.at_mut(idx);
                if p.start_ns != start_ns && start_ns != 0 {
                    p.start_ns = start_ns;
                    p.flags &= !(flag::START_FROM_PROC | flag::PLACEHOLDER);
                }
                // Only exact matches: a placeholder or an entry read from /proc must go
                // through the checks above.
                if p.start_ns == start_ns {
                    self.recent.0[slot] = (pid, idx, start_ns);
                }
                return Some(idx);
            }
            idx = p.older;
        }
        None
    }

    /// The incarnation of `pid` that started at `start_ns`, without touching the table.
    pub fn find(&self, pid: u32, start_ns: u64) -> Option<&Proc> {
        let mut idx = *self.by_pid.get(&pid)?;
        while idx != NONE {
            let p = self.at(idx);
            if self.same_start(p, start_ns) {
                return Some(p);
            }
            idx = p.older;
        }
        None
    }

    /// Every incarnation of `pid` in the table, newest first.
    pub fn incarnations(&self, pid: u32) -> Vec<&Proc> {
        let mut out = Vec::new();
        let mut idx = self.by_pid.get(&pid).copied().unwrap_or(NONE);
        while idx != NONE {
            let p = self.at(idx);
            out.push(p);
            idx = p.older;
        }
        out
    }

    /// The newest incarnation of `pid`, if it is the one that started at `start_ns` (a fork's
    /// child is always the newest: no need to walk the older ones).
    pub fn newest_if(&self, pid: u32, start_ns: u64) -> Option<u32> {
        let idx = *self.by_pid.get(&pid)?;
        self.same_start(self.at(idx), start_ns).then_some(idx)
    }

    /// The newest incarnation of `pid`.
    pub fn current(&self, pid: u32) -> Option<u32> {
        self.by_pid.get(&pid).copied()
    }

    /// Adds an entry as the newest incarnation of its pid, under `proc.parent`.
    pub fn insert(&mut self, mut proc: Proc) -> u32 {
        let parent = proc.parent;
        proc.parent = NONE;
        proc.first_child = NONE;
        proc.next_sibling = NONE;
        proc.prev_sibling = NONE;
        proc.newer = NONE;
        let pid = proc.pid;
        let idx = match self.free.pop() {
            Some(idx) => {
                self.slots[idx as usize] = Some(proc);
                idx
            }
            None => self.slots.push(proc) as u32,
        };
        // A new incarnation comes first in the pid's chain: a lookup must walk it again (a
        // placeholder matches any start).
        let recent = &mut self.recent.0[pid as usize % RECENT];
        if recent.0 == pid {
            recent.1 = NONE;
        }
        let older = self.by_pid.insert(pid, idx).unwrap_or(NONE);
        self.at_mut(idx).older = older;
        if older != NONE {
            self.at_mut(older).newer = idx;
        }
        self.len += 1;
        if parent != NONE {
            self.link(idx, parent);
        }
        idx
    }

    /// Makes `idx` a child of `parent` (taking it from its current parent).
    pub fn set_parent(&mut self, idx: u32, parent: u32) {
        self.unlink(idx);
        if parent == NONE {
            // Not a record of a parent it had: one it has not (the old one may be retired
            // and its slot reused).
            self.at_mut(idx).parent = NONE;
        } else {
            self.link(idx, parent);
        }
    }

    fn link(&mut self, idx: u32, parent: u32) {
        let head = self.at(parent).first_child;
        {
            let p = self.at_mut(idx);
            p.parent = parent;
            p.next_sibling = head;
            p.prev_sibling = NONE;
        }
        if head != NONE {
            self.at_mut(head).prev_sibling = idx;
        }
        self.at_mut(parent).first_child = idx;
    }

    /// Takes `idx` out of its parent's children (its `parent` field is kept, as a record).
    pub fn unlink(&mut self, idx: u32) {
        let (parent, prev, next) = {
            let p = self.at(idx);
            (p.parent, p.prev_sibling, p.next_sibling)
        };
        if parent == NONE {
            return;
        }
        // `parent` is kept as a record after the entry leaves the list (at its reap), and that
        // parent may since have been retired: then it is in no list, and the slot is empty.
        let in_list = prev != NONE || self.get(parent).is_some_and(|p| p.first_child == idx);
        if !in_list {
            return;
        }
        if prev != NONE {
            self.at_mut(prev).next_sibling = next;
        } else {
            self.at_mut(parent).first_child = next;
        }
        if next != NONE {
            self.at_mut(next).prev_sibling = prev;
        }
        let p = self.at_mut(idx);
        p.prev_sibling = NONE;
        p.next_sibling = NONE;
    }

    /// The children of `idx` still linked (alive or zombie).
    pub fn children(&self, idx: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut c = self.at(idx).first_child;
        while c != NONE {
            out.push(c);
            c = self.at(c).next_sibling;
        }
        out
    }

    /// Queues a reaped entry for retirement once `reaped_ns + retention` has passed.
    pub fn retire_later(&mut self, idx: u32, reaped_ns: u64) {
        let start = self.at(idx).start_ns;
        self.retiring.push_back((reaped_ns, idx, start));
    }

    /// Retires entries reaped at or before `cutoff`; returns how many.
    pub fn retire_until(&mut self, cutoff: u64) -> usize {
        let mut n = 0;
        while let Some(&(at, idx, start)) = self.retiring.front() {
            if at > cutoff {
                break;
            }
            self.retiring.pop_front();
            if self.get(idx).is_some_and(|p| p.start_ns == start) {
                self.remove(idx);
                n += 1;
            }
        }
        n
    }

    /// Entries waiting for retirement.
    pub fn retiring(&self) -> usize {
        self.retiring.len()
    }

    fn remove(&mut self, idx: u32) {
        self.unlink(idx);
        // Whatever still points at it as parent (children of a process whose exit was
        // missed) loses the link rather than dangle.
        let mut c = self.at(idx).first_child;
        while c != NONE {
            let next = self.at(c).next_sibling;
            let child = self.at_mut(c);
            child.parent = NONE;
            child.next_sibling = NONE;
            child.prev_sibling = NONE;
            c = next;
        }
        let (pid, older, newer) = {
            let p = self.at(idx);
            (p.pid, p.older, p.newer)
        };
        // Unchain it from the incarnations of its pid.
        if newer == NONE {
            if older == NONE {
                self.by_pid.remove(&pid);
            } else {
                self.by_pid.insert(pid, older);
            }
        } else {
            self.at_mut(newer).older = older;
        }
        if older != NONE {
            self.at_mut(older).newer = newer;
        }
        // Parent links of other entries that pointed here are indexes that may be reused;
        // entries keep only children links to the living, and `orphaned_by` is checked
        // against the start time before use.
        let recent = &mut self.recent.0[pid as usize % RECENT];
        if recent.1 == idx {
            recent.1 = NONE;
        }
        self.slots[idx as usize] = None;
        self.free.push(idx);
        self.len -= 1;
        self.retired += 1;
    }

    /// Every entry's index.
    pub fn indexes(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries().map(|(i, _)| i)
    }

    /// Every entry with its index.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &Proc)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|p| (i as u32, p)))
    }

    /// Bytes the table holds: slots, indexes, exec histories (an estimate from capacities;
    /// allocator overhead not included).
    pub fn bytes(&self) -> usize {
        self.bytes_but_execs() + self.entries().map(|(_, p)| exec_bytes(p)).sum::<usize>()
    }

    /// [`bytes`](Self::bytes) but the exec histories, which take a pass over the entries (the
    /// summary adds them up in its own).
    pub fn bytes_but_execs(&self) -> usize {
        use std::mem::size_of;
        let slots = self.slots.capacity() * size_of::<Option<Proc>>()
            + self.slots.chunks.capacity() * size_of::<Vec<Option<Proc>>>();
        let free = self.free.capacity() * 4;
        // hashbrown: one control byte per bucket plus the entry; buckets ≈ capacity × 8/7.
        let by_pid = self.by_pid.capacity() * 8 / 7 * (size_of::<(u32, u32)>() + 1);
        let retiring = self.retiring.capacity() * size_of::<(u64, u32, u64)>();
        slots + free + by_pid + retiring
    }
}

/// Bytes of an entry's exec history.
pub fn exec_bytes(p: &Proc) -> usize {
    p.execs.bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history keeps the first exec and the latest ones, in order, whatever their names.
    #[test]
    fn exec_history_keeps_the_first_and_the_latest() {
        let mut h = ExecHistory::default();
        assert!(h.is_empty());
        assert_eq!(h.iter().count(), 0);
        let names = ["/bin/sh", "", "/usr/bin/ünïcödé", "/x", "/a/b/c", "/last"];
        for (i, name) in names.iter().enumerate() {
            h.push(i as u64 * 10, name);
            let got: Vec<(u64, &str)> = h.iter().collect();
            // The first, then the newest ones that fit.
            let keep = (i + 1).min(MAX_EXECS);
            let mut want = vec![(0, names[0])];
            want.extend((i + 2 - keep..=i).map(|j| (j as u64 * 10, names[j])));
            assert_eq!(got, want, "after {} execs", i + 1);
            assert_eq!(h.len(), keep);
        }
        let long = "é".repeat(40_000);
        h.push(99, &long);
        let (ts, name) = h.iter().last().unwrap();
        assert_eq!(ts, 99);
        assert_eq!(
            name.len(),
            65_534,
            "cut at a char boundary within 65535 bytes"
        );
        assert!(long.starts_with(name));
    }

    /// `lookup` (which remembers recent answers) finds what a walk of the pid's chain finds,
    /// through inserts of new incarnations, placeholders, entries read from /proc, and
    /// retirements.
    #[test]
    fn lookups_agree_with_the_chain_walk() {
        let mut table = Table::new(10);
        let mut rng = crate::rng::Rng(0x100c);
        let mut next = || rng.next();
        let mut live: Vec<(u32, u32, u64)> = Vec::new();
        let mut gone: Vec<(u32, u64)> = Vec::new();
        let mut now = 0;
        for step in 1..20_000u64 {
            match next() % 8 {
                0 | 1 => {
                    let pid = (next() % 40) as u32;
                    let mut p = Proc::new(pid, step * 7, Comm::default());
                    match next() % 6 {
                        0 => p.flags |= flag::PLACEHOLDER,
                        1 => p.flags |= flag::START_FROM_PROC,
                        _ => {}
                    }
                    live.push((pid, table.insert(p), step * 7));
                }
                2 if !live.is_empty() => {
                    let (pid, idx, _) = live.swap_remove((next() % live.len() as u64) as usize);
                    gone.push((pid, table.at(idx).start_ns));
                    now += 1;
                    table.retire_later(idx, now);
                    table.retire_until(now);
                }
                _ => {
                    // A start some entry has, one near it (same clock tick), a retired
                    // entry's, or any.
                    let (pid, start) = match (live.is_empty(), next() % 4) {
                        (_, 3) if !gone.is_empty() => gone[(next() % gone.len() as u64) as usize],
                        (false, 0) => {
                            let (pid, idx, _) = live[(next() % live.len() as u64) as usize];
                            (pid, table.at(idx).start_ns)
                        }
                        (false, 1) => {
                            let (pid, _, start) = live[(next() % live.len() as u64) as usize];
                            (pid, start / 10 * 10 + next() % 10)
                        }
                        _ => ((next() % 40) as u32, next() % (step * 7 + 1)),
                    };
                    let want = table.find(pid, start).map(|p| p as *const Proc);
                    let got = table.lookup(pid, start).map(|i| table.at(i) as *const Proc);
                    assert_eq!(got, want, "pid {pid} start {start} at step {step}");
                }
            }
        }
    }

    /// Incarnations inserted and retired in random order stay chained newest first, with
    /// `newer` the mirror of `older`, as a plain list per pid says they should be.
    #[test]
    fn incarnation_chains_survive_any_retirement_order() {
        let mut table = Table::new(1);
        let mut model: HashMap<u32, Vec<(u64, u32)>> = HashMap::new();
        let mut rng = crate::rng::Rng(0x5eed);
        let mut next = || rng.next();
        let mut now = 0;
        for step in 0..4_000u64 {
            let live: Vec<(u32, u64, u32)> = model
                .iter()
                .flat_map(|(&pid, v)| v.iter().map(move |&(start, idx)| (pid, start, idx)))
                .collect();
            if live.is_empty() || !next().is_multiple_of(3) {
                let pid = (next() % 5) as u32;
                let idx = table.insert(Proc::new(pid, step, Comm::default()));
                model.entry(pid).or_default().insert(0, (step, idx));
            } else {
                let (pid, start, idx) = live[(next() % live.len() as u64) as usize];
                now += 1;
                table.retire_later(idx, now);
                assert_eq!(table.retire_until(now), 1);
                model.get_mut(&pid).unwrap().retain(|&(s, _)| s != start);
            }
            for pid in 0..5 {
                let chain: Vec<u64> = table.incarnations(pid).iter().map(|p| p.start_ns).collect();
                let expected: Vec<u64> = model
                    .get(&pid)
                    .map(|v| v.iter().map(|&(s, _)| s).collect())
                    .unwrap_or_default();
                assert_eq!(chain, expected, "pid {pid} at step {step}");
                let mut newer = NONE;
                let mut idx = table.current(pid).unwrap_or(NONE);
                while idx != NONE {
                    assert_eq!(table.at(idx).newer, newer, "pid {pid} at step {step}");
                    newer = idx;
                    idx = table.at(idx).older;
                }
            }
        }
    }
}
