//! Reading `task_struct` and friends at offsets resolved from the running kernel's BTF.
//!
//! Two ways to read kernel memory, and the cost difference matters (these run on every fork,
//! exit, wait and signal on the host):
//! - [`read`]: a plain load through a pointer the verifier knows the BTF type of (tracepoint
//!   arguments, `bpf_get_current_task_btf()`, and pointers loaded from those), at an offset
//!   it knows as a constant (from the frozen `OFFSETS`). The verifier checks the access
//!   against the running kernel's BTF and turns it into a fault-safe load: no helper call.
//! - [`probe_read`]: `bpf_probe_read_kernel`, for addresses computed at run time (an array
//!   indexed by a level or a signal number), where the verifier cannot check a plain load.

use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
    generated::{bpf_get_current_task_btf, bpf_get_smp_processor_id},
};
use tracer_common::{COMM_LEN, Header, NsPidKey, PROC_PID_INIT_INO, ProbeError};

use crate::maps::{current_task_btf, off};

pub type Task = *const u8;

/// Loads a `T` at `base + offset`; `base` must be a BTF-typed kernel pointer and `offset`
/// one of `OFFSETS` (see the module comment). A faulting load yields zeroes.
#[inline(always)]
pub fn read<T>(base: *const u8, offset: usize) -> T {
    unsafe { core::ptr::read_volatile(base.wrapping_add(offset) as *const T) }
}

#[inline(always)]
pub fn read_ptr(base: *const u8, offset: usize) -> *const u8 {
    read::<*const u8>(base, offset)
}

/// Reads a `T` at a computed kernel address.
#[inline(always)]
pub fn probe_read<T>(address: *const u8) -> Result<T, ProbeError> {
    unsafe { bpf_probe_read_kernel(address as *const T) }.map_err(|_| ProbeError::KernelRead)
}

/// Ids of a task, as a [`Header`] carries them.
pub struct TaskIds {
    pub pid: u32,
    pub tid: u32,
    pub ns_pid: u32,
    pub pidns: u32,
    pub ppid: u32,
    pub start_ns: u64,
}

/// Pid namespace depth of a `struct pid` (0: the host's namespace).
#[inline(always)]
pub fn pid_level(pid: *const u8) -> u32 {
    if pid.is_null() {
        0
    } else {
        read(pid, off!(pid_level))
    }
}

/// The pid number and namespace inode of a `struct pid` at `level`. `host_nr` is the number
/// at level 0, which needs no read: the host namespace's inode is a kernel constant.
#[inline(always)]
pub fn pid_at_level(pid: *const u8, level: u32, host_nr: u32) -> Result<NsPidKey, ProbeError> {
    if level == 0 {
        return Ok(NsPidKey {
            pidns: PROC_PID_INIT_INO,
            nr: host_nr,
        });
    }
    let upid = pid.wrapping_add(off!(pid_numbers) + level as usize * off!(upid_size));
    let nr: u32 = probe_read(upid.wrapping_add(off!(upid_nr)))?;
    let ns: *const u8 = probe_read(upid.wrapping_add(off!(upid_ns)))?;
    let pidns: u32 = probe_read(ns.wrapping_add(off!(pidns_inum)))?;
    Ok(NsPidKey { pidns, nr })
}

/// Ids of a task reached through a BTF-typed pointer.
#[inline(always)]
pub fn task_ids(task: Task) -> Result<TaskIds, ProbeError> {
    let tid: u32 = read(task, off!(task_pid));
    let pid: u32 = read(task, off!(task_tgid));
    let parent = read_ptr(task, off!(task_real_parent));
    let ppid: u32 = read(parent, off!(task_tgid));
    let leader = read_ptr(task, off!(task_group_leader));
    let start_ns: u64 = read(leader, off!(task_start_boottime));
    let leader_pid = read_ptr(leader, off!(task_thread_pid));
    let ns = pid_at_level(leader_pid, pid_level(leader_pid), pid)?;
    Ok(TaskIds {
        pid,
        tid,
        ns_pid: ns.nr,
        pidns: ns.pidns,
        ppid,
        start_ns,
    })
}

/// The same through `bpf_probe_read_kernel`, for the current task on kernels without
/// `bpf_get_current_task_btf()` (before 5.11).
#[inline(never)]
fn task_ids_probed(task: Task) -> Result<TaskIds, ProbeError> {
    let at = |field: usize| task.wrapping_add(field);
    let tid: u32 = probe_read(at(off!(task_pid)))?;
    let pid: u32 = probe_read(at(off!(task_tgid)))?;
    let parent: *const u8 = probe_read(at(off!(task_real_parent)))?;
    let ppid: u32 = probe_read(parent.wrapping_add(off!(task_tgid)))?;
    let leader: *const u8 = probe_read(at(off!(task_group_leader)))?;
    let start_ns: u64 = probe_read(leader.wrapping_add(off!(task_start_boottime)))?;
    let leader_pid: *const u8 = probe_read(leader.wrapping_add(off!(task_thread_pid)))?;
    let level: u32 = if leader_pid.is_null() {
        0
    } else {
        probe_read(leader_pid.wrapping_add(off!(pid_level)))?
    };
    let ns = pid_at_level(leader_pid, level, pid)?;
    Ok(TaskIds {
        pid,
        tid,
        ns_pid: ns.nr,
        pidns: ns.pidns,
        ppid,
        start_ns,
    })
}

/// The current task as a BTF-typed pointer; only where [`current_task_btf`] holds. That is a
/// constant set at load time: the verifier only ever follows one branch on it, so kernels
/// without the newer helper never meet it.
#[inline(always)]
pub fn current() -> Task {
    unsafe { bpf_get_current_task_btf() as Task }
}

#[inline(always)]
pub fn now() -> u64 {
    unsafe { bpf_ktime_get_boot_ns() }
}

/// The current thread's host tid.
#[inline(always)]
pub fn current_tid() -> u32 {
    bpf_get_current_pid_tgid() as u32
}

/// Fills `header` for the current task.
#[inline(always)]
pub fn fill_header(header: &mut Header, kind: u32) -> Result<(), ProbeError> {
    if current_task_btf() {
        return fill_header_of(header, kind, current());
    }
    header.kind = kind;
    header.cpu = unsafe { bpf_get_smp_processor_id() };
    header.ts_ns = now();
    header.uid = bpf_get_current_uid_gid() as u32;
    header.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    header.comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    let ids = task_ids_probed(unsafe { bpf_get_current_task() } as Task)?;
    set_ids(header, &ids);
    Ok(())
}

/// Fills `header` for `task`, the current task reached through a BTF-typed pointer (the
/// tracepoint argument of fork, exec and exit): plain loads on every kernel, and no helper
/// call to find the task.
#[inline(always)]
pub fn fill_header_of(header: &mut Header, kind: u32, task: Task) -> Result<(), ProbeError> {
    header.kind = kind;
    header.cpu = unsafe { bpf_get_smp_processor_id() };
    header.ts_ns = now();
    // The same walks the uid, cgroup id and comm helpers make, as plain loads.
    let cred = read_ptr(task, off!(task_cred));
    header.uid = read(cred, off!(cred_uid));
    let cgroups = read_ptr(task, off!(task_cgroups));
    let cgroup = read_ptr(cgroups, off!(css_set_dfl_cgrp));
    let kn = read_ptr(cgroup, off!(cgroup_kn));
    header.cgroup_id = read(kn, off!(kernfs_node_id));
    header.comm = read(task, off!(task_comm));
    let ids = task_ids(task)?;
    set_ids(header, &ids);
    Ok(())
}

#[inline(always)]
fn set_ids(header: &mut Header, ids: &TaskIds) {
    header.pid = ids.pid;
    header.tid = ids.tid;
    header.ns_pid = ids.ns_pid;
    header.pidns = ids.pidns;
    header.ppid = ids.ppid;
    header.start_ns = ids.start_ns;
}

/// `task->comm` of another task.
#[inline(always)]
pub fn comm_of(task: Task) -> Result<[u8; COMM_LEN], ProbeError> {
    probe_read(task.wrapping_add(off!(task_comm)))
}
