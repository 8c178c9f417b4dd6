//! Loading and attaching the embedded eBPF programs, and access to their maps.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, TracePoint},
};
use tracer_common::{
    self as wire, CPU_STATE_MAP, CpuState, ERRORS_MAP, EVENTS_MAP, GLOBAL_CURRENT_TASK_BTF,
    GLOBAL_PID_SLOT_MASK, GLOBAL_TRACE_THREADS, GLOBAL_WAKEUP_BYTES, Header, MAX_PID_LEVELS,
    MAX_PID_SLOTS, NsPidKey, PROC_PID_INIT_INO, SIGNAL_RUNS_MAP, SignalRuns, WAIT_SLOTS_MAP,
    WaitSlot, ZOMBIE_PIDS_MAP, ZOMBIE_SLOTS_MAP, ZOMBIES_MAP, ZombieRecord, ZombieSlot,
    offsets::GLOBAL_OFFSETS,
};

use crate::{
    btf,
    engine::snapshot::{ProcInfo, Snapshot},
    proc, tracefs,
};

/// The probes, built for BPF and embedded at compile time.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-probes"));

/// BTF tracepoints: (program, kernel tracepoint).
const BTF_PROGRAMS: [&str; 7] = [
    "sched_process_fork",
    "sched_process_exec",
    "sched_process_exit",
    "sched_process_free",
    "sched_process_wait",
    "signal_generate",
    "signal_deliver",
];

/// Per-syscall tracepoints (never the all-syscalls raw tracepoint, which would tax every
/// syscall on the host).
const SYSCALL_PROGRAMS: [&str; 4] = [
    "sys_enter_wait4",
    "sys_enter_waitid",
    "sys_exit_wait4",
    "sys_exit_waitid",
];

pub struct LoadOptions {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Report thread creation and thread exits.
    pub threads: bool,
    /// Turn on the probes' diagnostics (aya-log), written to stderr.
    pub debug: bool,
}

/// The probes' diagnostics, to be read when its descriptor is readable.
pub type ProbeLog = aya_log::EbpfLogger<&'static dyn log::Log>;

/// Loaded and attached probes. Dropping this (or [`detach`](Probes::detach)) detaches them.
pub struct Probes {
    /// The programs and the maps not taken out; `None` once detached.
    ebpf: Option<Ebpf>,
    ring: Option<RingBuf<MapData>>,
    cpu_state: PerCpuArray<MapData, CpuState>,
    errors: PerCpuArray<MapData, u64>,
    signal_runs: PerCpuArray<MapData, SignalRuns>,
    log: Option<ProbeLog>,
}

/// Events lost on one CPU that no `Lost` record has reported yet.
pub struct Unreported {
    pub cpu: u32,
    pub count: u64,
    pub total: u64,
}

impl Probes {
    pub fn load(options: &LoadOptions) -> Result<Self> {
        if OBJECT.is_empty() {
            bail!(
                "this tracer binary was built without its eBPF probes (AYA_BUILD_SKIP): build it \
                 with `cargo xtask build`"
            );
        }
        check_privileges()?;
        let offsets = btf::resolve(Path::new(btf::VMLINUX_BTF))?;
        let tracing = tracefs::root()?;
        let (args, ret) = tracefs::syscall_offsets(&tracing)?;
        if (args as usize, ret as usize) != (wire::SYS_ENTER_ARGS, wire::SYS_EXIT_RET) {
            bail!(
                "this kernel lays out syscall tracepoint records unlike any the probes know \
                 (arguments at {args}, return value at {ret}): it is not supported"
            );
        }
        let threads: u32 = options.threads.into();
        let wakeup_bytes = u64::from(options.ring_bytes / 4);
        let current_task_btf: u32 = kernel_at_least(5, 11).into();
        let PidSlots {
            slots: pid_slots,
            held,
        } = PidSlots::for_this_host();
        // Off unless asked for: the probes then skip their logging code entirely.
        let log_level: u8 = if options.debug { u8::MAX } else { 0 };

        let mut ebpf = EbpfLoader::new()
            .override_global(GLOBAL_OFFSETS, &offsets, true)
            .override_global(GLOBAL_TRACE_THREADS, &threads, true)
            .override_global(GLOBAL_WAKEUP_BYTES, &wakeup_bytes, true)
            .override_global(GLOBAL_CURRENT_TASK_BTF, &current_task_btf, true)
            .override_global(aya_log::LEVEL, &log_level, true)
            .override_global(GLOBAL_PID_SLOT_MASK, &(pid_slots - 1), true)
            .map_max_entries(EVENTS_MAP, options.ring_bytes)
            .map_max_entries(WAIT_SLOTS_MAP, pid_slots)
            .map_max_entries(ZOMBIE_SLOTS_MAP, pid_slots)
            .load(OBJECT)
            .map_err(explain_load_error)?;
        if held {
            hold_pid_slots(&mut ebpf)?;
        }

        let kernel_btf = Btf::from_sys_fs().context("reading the kernel's BTF")?;
        for name in BTF_PROGRAMS {
            let program: &mut BtfTracePoint = ebpf
                .program_mut(name)
                .with_context(|| format!("the probes have no program {name}"))?
                .try_into()?;
            program
                .load(name, &kernel_btf)
                .with_context(|| format!("loading the {name} probe"))?;
            program
                .attach()
                .with_context(|| format!("attaching to tracepoint {name}"))?;
        }
        for name in SYSCALL_PROGRAMS {
            let program: &mut TracePoint = ebpf
                .program_mut(name)
                .with_context(|| format!("the probes have no program {name}"))?
                .try_into()?;
            program
                .load()
                .with_context(|| format!("loading the {name} probe"))?;
            program
                .attach("syscalls", name)
                .with_context(|| format!("attaching to tracepoint syscalls:{name}"))?;
        }

        let ring = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).context("no EVENTS map")?)?;
        let cpu_state =
            PerCpuArray::try_from(ebpf.take_map(CPU_STATE_MAP).context("no CPU_STATE map")?)?;
        let errors = PerCpuArray::try_from(ebpf.take_map(ERRORS_MAP).context("no ERRORS map")?)?;
        let signal_runs = PerCpuArray::try_from(
            ebpf.take_map(SIGNAL_RUNS_MAP)
                .context("no SIGNAL_RUNS map")?,
        )?;
        let log = if options.debug {
            static LOGGER: StderrLogger = StderrLogger;
            Some(aya_log::EbpfLogger::init_with_logger(
                &mut ebpf,
                &LOGGER as &dyn log::Log,
            )?)
        } else {
            None
        };
        let probes = Self {
            ebpf: Some(ebpf),
            ring: Some(ring),
            cpu_state,
            errors,
            signal_runs,
            log,
        };
        Ok(probes)
    }

    /// The ring buffer, once: the reader owns it from then on.
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// The probes' diagnostics reader, once (only with `debug`).
    pub fn take_log(&mut self) -> Option<ProbeLog> {
        self.log.take()
    }

    /// Detaches and unloads the programs; the maps taken out (the ring buffer, the counters)
    /// stay readable. Returns once no probe can still be running.
    pub fn detach(&mut self) {
        if self.ebpf.take().is_none() {
            return;
        }
        // Closing a link unhooks the program, but a run that already started on another CPU
        // finishes within an RCU grace period: wait for one (MEMBARRIER_CMD_GLOBAL does).
        // SAFETY: membarrier takes no pointers.
        let waited = unsafe { libc::syscall(libc::SYS_membarrier, 1, 0, 0) } == 0;
        if !waited {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// CPUs holding counted signal repeats not yet written (see [`SignalRuns`]).
    pub fn cpus_with_runs(&self) -> Vec<u32> {
        let Ok(values) = self.signal_runs.get(&0, 0) else {
            return Vec::new();
        };
        values
            .iter()
            .enumerate()
            .filter(|(_, r)| r.generate.count != 0 || r.deliver.count != 0)
            .map(|(cpu, _)| cpu as u32)
            .collect()
    }

    /// The signal repeats still counted in the map, as the burst records the probes would have
    /// written. Only once [`detach`](Self::detach)ed: the probes no longer change them.
    pub fn leftover_bursts(&self) -> Vec<Vec<u8>> {
        if self.ebpf.is_some() {
            return Vec::new();
        }
        let Ok(values) = self.signal_runs.get(&0, 0) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for runs in values.iter() {
            if runs.generate.count != 0 {
                records.push(crate::decode::record_bytes(&runs.generate));
            }
            if runs.deliver.count != 0 {
                records.push(crate::decode::record_bytes(&runs.deliver));
            }
        }
        records
    }

    /// Events lost that no `Lost` record reported yet (the probes report a loss with the
    /// next event that fits; at the end there may be no next event).
    pub fn unreported_lost(&self) -> Vec<Unreported> {
        let Ok(values) = self.cpu_state.get(&0, 0) else {
            return Vec::new();
        };
        values
            .iter()
            .enumerate()
            .filter(|(_, c)| c.lost_pending != 0)
            .map(|(cpu, c)| Unreported {
                cpu: cpu as u32,
                count: c.lost_pending,
                total: c.lost_total,
            })
            .collect()
    }

    /// Probe failures (kernel reads, user reads, full maps), summed over CPUs.
    pub fn errors(&self) -> u64 {
        (0..wire::PROBE_ERROR_KINDS)
            .filter_map(|i| self.errors.get(&i, 0).ok())
            .map(|values| values.iter().sum::<u64>())
            .sum()
    }

    /// Puts the zombies of `snapshot` (taken after [`load`](Self::load)) into the probes'
    /// zombie map, so their release is reported like any other (with the exit time unknown).
    pub fn seed_zombies(&mut self, snapshot: &Snapshot) -> Result<()> {
        let own_ns = proc::ns_inode(Path::new("/proc/self/ns/pid")).unwrap_or(0);
        let records: Vec<ZombieRecord> = snapshot
            .procs
            .iter()
            .filter(|p| p.state == 'Z')
            .map(|p| zombie_record(p, own_ns))
            .collect();
        let ebpf = self.ebpf.as_mut().context("the probes are detached")?;
        let mut zombies: HashMap<_, u32, ZombieRecord> =
            HashMap::try_from(ebpf.map_mut(ZOMBIES_MAP).context("no ZOMBIES map")?)?;
        for record in &records {
            // A zombie released between the scan and now simply is not there any more.
            let _ = zombies.insert(record.header.pid, record, 0);
        }
        let mut aliases: HashMap<_, NsPidKey, u32> =
            HashMap::try_from(ebpf.map_mut(ZOMBIE_PIDS_MAP).context("no ZOMBIE_PIDS")?)?;
        for record in &records {
            // Host-namespace waiters get host pids, which need no alias.
            for key in record.keys[..record.levels as usize]
                .iter()
                .filter(|k| k.pidns != PROC_PID_INIT_INO)
            {
                let _ = aliases.insert(key, record.header.pid, 0);
            }
        }
        Ok(())
    }
}

/// A zombie as /proc shows it. Only our own namespace and the zombie's own are known by
/// inode, which covers waiters on the host and inside one level of containers.
fn zombie_record(stat: &ProcInfo, own_ns: u32) -> ZombieRecord {
    let mut comm = [0u8; wire::COMM_LEN];
    let len = stat.comm.len().min(wire::COMM_LEN - 1);
    comm[..len].copy_from_slice(&stat.comm.as_bytes()[..len]);
    let zombie_ns = if stat.pidns == 0 { own_ns } else { stat.pidns };
    let ns_pid = stat.ns_pid;
    let mut keys = [NsPidKey::default(); MAX_PID_LEVELS];
    let mut levels = 0;
    keys[0] = NsPidKey {
        pidns: zombie_ns,
        nr: ns_pid,
    };
    levels += 1;
    if zombie_ns != own_ns {
        keys[1] = NsPidKey {
            pidns: own_ns,
            nr: stat.pid,
        };
        levels += 1;
    }
    ZombieRecord {
        header: Header {
            kind: wire::EventKind::Exit as u32,
            pid: stat.pid,
            tid: stat.pid,
            ns_pid,
            pidns: zombie_ns,
            ppid: stat.ppid,
            uid: proc::uid(stat.pid).unwrap_or(0),
            cpu: 0,
            // Unknown: the exit happened before the tracer started.
            ts_ns: 0,
            start_ns: stat.start_ns,
            cgroup_id: 0,
            comm,
        },
        exit_code: stat.exit_status,
        levels,
        keys,
    }
}

/// The probes' per-pid slot arrays (waits in progress, exited processes), whose overflow is
/// the hash maps.
struct PidSlots {
    /// Entries of each array: one per possible pid when `pid_max` allows (two live pids then
    /// never share a slot), at most `MAX_PID_SLOTS`.
    slots: u32,
    /// The one slot is taken before the probes start, so that everything goes to the maps.
    held: bool,
}

impl PidSlots {
    /// `TRACER_PID_SLOTS` overrides the size for tests: a power of two, or 0 for one slot held
    /// (every wait and zombie then goes through the hash maps).
    fn for_this_host() -> Self {
        match std::env::var("TRACER_PID_SLOTS")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
        {
            Some(0) => {
                return Self {
                    slots: 1,
                    held: true,
                };
            }
            Some(slots) if slots.is_power_of_two() && slots <= MAX_PID_SLOTS => {
                return Self { slots, held: false };
            }
            _ => {}
        }
        let slots = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .map_or(MAX_PID_SLOTS, |pid_max| {
                pid_max.clamp(1, MAX_PID_SLOTS).next_power_of_two()
            });
        Self { slots, held: false }
    }
}

/// Takes slot 0 of both arrays for a pid no task has, before any probe runs.
fn hold_pid_slots(ebpf: &mut Ebpf) -> Result<()> {
    const NO_TASK: u32 = u32::MAX;
    let mut waits: Array<_, WaitSlot> =
        Array::try_from(ebpf.map_mut(WAIT_SLOTS_MAP).context("no WAIT_SLOTS map")?)?;
    let wait = WaitSlot {
        tid: NO_TASK,
        claims: 1,
        ..WaitSlot::default()
    };
    waits.set(0, wait, 0)?;
    let mut zombies: Array<_, ZombieSlot> = Array::try_from(
        ebpf.map_mut(ZOMBIE_SLOTS_MAP)
            .context("no ZOMBIE_SLOTS map")?,
    )?;
    let zombie = ZombieSlot {
        pid: NO_TASK,
        reported: 1,
        claims: 1,
        zombie: ZombieRecord {
            header: Header::default(),
            exit_code: 0,
            levels: 0,
            keys: [NsPidKey::default(); MAX_PID_LEVELS],
        },
    };
    zombies.set(0, zombie, 0)?;
    Ok(())
}

/// Whether the running kernel is at least `major.minor` (from uname's release).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (major, minor)
}

/// Capabilities in the effective set, from /proc/self/status.
fn check_privileges() -> Result<()> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let caps = proc::status_field(std::process::id(), "CapEff")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| caps & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap))
        .map(|(_, name)| name)
        .collect();
    bail!(
        "loading the probes needs root or CAP_BPF+CAP_PERFMON (missing {}): run with sudo",
        missing.join("+")
    )
}

fn explain_load_error(err: aya::EbpfError) -> anyhow::Error {
    let text = err.to_string();
    let hint =
        if text.contains("ring") || text.contains("RINGBUF") || text.contains("Invalid argument") {
            " (a BPF ring buffer needs Linux 5.8 or newer, and --ring-size must be a power of two \
         multiple of the page size)"
        } else {
            ""
        };
    anyhow::Error::new(err).context(format!("loading the eBPF probes failed{hint}"))
}

/// Writes the probes' diagnostics to stderr, one line each.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        eprintln!("tracer: probe: {}", record.args());
    }

    fn flush(&self) {}
}
