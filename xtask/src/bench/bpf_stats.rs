//! The kernel's run-time statistics of BPF programs: turning them on, reading a program's
//! figures, and measuring what the statistics themselves add to every run.

use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

use anyhow::{Context as _, Result, bail};

/// The id and run time of the BPF program that descriptor `fd` of process `pid` (a number, or
/// `self`) holds, from `/proc/PID/fdinfo/FD`.
pub fn program(pid: &str, fd: &str) -> Result<(u64, ProbeTime)> {
    let path = format!("/proc/{pid}/fdinfo/{fd}");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    prog_fdinfo(&text).with_context(|| format!("{path} holds no BPF program's run time"))
}

/// The id and run time of the BPF program a `/proc/PID/fdinfo/N` describes.
fn prog_fdinfo(text: &str) -> Option<(u64, ProbeTime)> {
    let field = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some((
        field("prog_id")?,
        ProbeTime {
            ns: field("run_time_ns")?,
            runs: field("run_cnt")?,
        },
    ))
}

/// In-kernel run time of BPF programs, summed.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProbeTime {
    pub ns: u64,
    pub runs: u64,
}

impl ProbeTime {
    pub fn since(self, earlier: ProbeTime) -> ProbeTime {
        ProbeTime {
            ns: self.ns.saturating_sub(earlier.ns),
            runs: self.runs.saturating_sub(earlier.runs),
        }
    }

    /// The run time less `cost_per_run` for every run (what [`cost_per_run`] measures), in ns;
    /// never below zero.
    pub fn net_ns(self, cost_per_run: f64) -> f64 {
        (self.ns as f64 - cost_per_run * self.runs as f64).max(0.0)
    }
}

/// The kernel's run-time statistics of BPF programs, on while this lives (`BPF_ENABLE_STATS`,
/// Linux 5.8): each program run then also reads the clock twice, so they stay off while
/// throughput is measured.
pub struct StatsOn {
    _on: OwnedFd,
}

impl StatsOn {
    pub fn enable() -> std::io::Result<Self> {
        const BPF_ENABLE_STATS: libc::c_long = 32;
        const BPF_STATS_RUN_TIME: u32 = 0;
        // `union bpf_attr` for this command: `struct { __u32 type; } enable_stats`.
        let attr: u32 = BPF_STATS_RUN_TIME;
        // SAFETY: the attribute is a valid, initialised 4-byte struct for this command.
        let on = unsafe { sys_bpf(BPF_ENABLE_STATS, &attr)? };
        Ok(Self { _on: on })
    }
}

/// What the statistics count for a program that does nothing, in ns per run: an empty program
/// attached to the `syscalls:sys_enter_getppid` tracepoint and run by this thread in a loop;
/// the median of a few rounds. Statistics must be on ([`StatsOn`]).
///
/// The kernel times a run between two clock reads, so part of both reads counts as the
/// program's; so do the call into the program and its entry and exit, which are there with
/// statistics off too. Subtracting this per run leaves the programs' own work, slightly
/// understated by that call; the tracepoint's dispatch to a program is outside the timed span
/// either way.
///
/// The instructions, the perf event's flags and its ioctl numbers are written out for
/// little-endian machines with the generic ioctl layout (x86, Arm, RISC-V).
pub fn cost_per_run() -> Result<f64> {
    if cfg!(target_endian = "big") {
        bail!("measured only on little-endian machines");
    }
    const ROUNDS: usize = 5;
    const RUNS: u32 = 200_000;
    let probe = EmptyProbe::attach("syscalls", "sys_enter_getppid")?;
    let mut per_run = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let before = probe.time()?;
        for _ in 0..RUNS {
            // SAFETY: getppid takes no arguments and cannot fail.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        let spent = probe.time()?.since(before);
        if spent.runs == 0 {
            bail!("the empty program on sys_enter_getppid never ran");
        }
        per_run.push(spent.ns as f64 / spent.runs as f64);
    }
    per_run.sort_by(f64::total_cmp);
    Ok(per_run[ROUNDS / 2])
}

/// A program of two instructions (`r0 = 0; exit`) attached to a tracepoint through a perf
/// event; detached when dropped.
struct EmptyProbe {
    prog: OwnedFd,
    _event: OwnedFd,
}

impl EmptyProbe {
    fn attach(group: &str, name: &str) -> Result<Self> {
        let id = tracepoint_id(group, name)?;
        let prog = load_empty_program().context("loading an empty BPF program")?;
        let event = open_tracepoint_event(id)
            .with_context(|| format!("opening a perf event on {group}:{name}"))?;
        const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
        const PERF_EVENT_IOC_SET_BPF: libc::c_ulong = 0x4004_2408;
        // SAFETY: both ioctls take an integer argument (a program descriptor, or nothing) on a
        // perf event descriptor we own.
        let attached = unsafe {
            libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_SET_BPF, prog.as_raw_fd()) == 0
                && libc::ioctl(event.as_raw_fd(), PERF_EVENT_IOC_ENABLE, 0) == 0
        };
        if !attached {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("attaching an empty BPF program to {group}:{name}"));
        }
        Ok(Self {
            prog,
            _event: event,
        })
    }

    fn time(&self) -> Result<ProbeTime> {
        let (_, time) = program("self", &self.prog.as_raw_fd().to_string())?;
        Ok(time)
    }
}

fn tracepoint_id(group: &str, name: &str) -> Result<u64> {
    let mut tried = Vec::new();
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let path = format!("{root}/events/{group}/{name}/id");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return text
                .trim()
                .parse()
                .with_context(|| format!("{path} does not hold a number"));
        }
        tried.push(path);
    }
    bail!(
        "no tracepoint {group}:{name} ({} not readable)",
        tried.join(", ")
    )
}

fn load_empty_program() -> std::io::Result<OwnedFd> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
    // `r0 = 0` (BPF_ALU64 | BPF_MOV | BPF_K) and `exit` (BPF_JMP | BPF_EXIT).
    let insns: [u64; 2] = [0xb7, 0x95];
    let license = c"GPL";
    // The start of `union bpf_attr` for BPF_PROG_LOAD; the kernel zero-fills the rest.
    #[repr(C)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
    }
    let mut prog_name = [0u8; 16];
    prog_name[..5].copy_from_slice(b"empty");
    let attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_TRACEPOINT,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
    };
    // SAFETY: `attr` is a valid prefix of `union bpf_attr` for this command, and the
    // instructions and license it points to outlive the call.
    unsafe { sys_bpf(BPF_PROG_LOAD, &attr) }
}

/// The bpf system call with `attr`, the start of `union bpf_attr` for `cmd` (the kernel takes
/// the rest as zeroes), for a command that returns a new descriptor.
///
/// # Safety
/// `attr` must be a valid, fully initialised prefix of `union bpf_attr` for `cmd`, and every
/// pointer in it valid for the kernel to read during the call.
unsafe fn sys_bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<OwnedFd> {
    // SAFETY: as the caller promises; the size passed is `attr`'s own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    owned(fd)
}

fn open_tracepoint_event(id: u64) -> std::io::Result<OwnedFd> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    // `struct perf_event_attr` as of its first version (PERF_ATTR_SIZE_VER0, 64 bytes).
    #[repr(C)]
    struct EventAttr {
        kind: u32,
        size: u32,
        config: u64,
        sample_period: u64,
        sample_type: u64,
        read_format: u64,
        flags: u64,
        wakeup_events: u32,
        bp_type: u32,
        config1: u64,
    }
    let attr = EventAttr {
        kind: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<EventAttr>() as u32,
        config: id,
        sample_period: 1,
        sample_type: 0,
        read_format: 0,
        // Bit 0: disabled until PERF_EVENT_IOC_ENABLE.
        flags: 1,
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: `attr` is a valid `perf_event_attr` of the size it declares; pid 0 and cpu -1
    // mean this thread on any CPU (the program runs for every task regardless).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const EventAttr,
            0 as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    owned(fd)
}

/// A descriptor a syscall returned (or the error it set).
fn owned(fd: libc::c_long) -> std::io::Result<OwnedFd> {
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just returned to us, owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_run_time_takes_the_cost_off_every_run() {
        let spent = ProbeTime { ns: 1000, runs: 4 };
        assert_eq!(spent.net_ns(80.0), 680.0);
        assert_eq!(spent.net_ns(0.0), 1000.0);
        assert_eq!(spent.net_ns(300.0), 0.0);
    }

    #[test]
    fn reads_a_programs_run_time_from_its_fdinfo() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\nprog_type:\t26\n\
                      prog_jited:\t1\nprog_tag:\t067787cee9c289c3\nmemlock:\t12288\n\
                      prog_id:\t57525\nrun_time_ns:\t123456\nrun_cnt:\t78\n\
                      recursion_misses:\t0\nverified_insns:\t1608\n";
        let (id, time) = prog_fdinfo(fdinfo).expect("a program's fdinfo");
        assert_eq!((id, time.ns, time.runs), (57525, 123456, 78));
        // A map's or link's descriptor has no run time.
        assert!(prog_fdinfo("pos:\t0\nmap_type:\t27\nmap_id:\t12\n").is_none());
    }
}
