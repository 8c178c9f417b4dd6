//! The boot clock the probes timestamp with, and its relation to wall time.

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `CLOCK_BOOTTIME` now, in ns: the clock of every event's `ts_ns`.
pub fn boot_ns() -> u64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

/// Unix time of boot, in ns.
pub fn boot_unix_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME).saturating_sub(boot_ns())
}
