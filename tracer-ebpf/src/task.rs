//! Reading `task_struct` and friends at offsets resolved from the running kernel's BTF.

use aya_ebpf::helpers::{
    bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
    bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns, bpf_probe_read_kernel,
    generated::bpf_get_smp_processor_id,
};
use tracer_common::{COMM_LEN, Header, NsPidKey, ProbeError};

use crate::maps::off;

pub type Task = *const u8;

/// Reads a `T` at `base + offset` in kernel memory.
#[inline(always)]
pub fn read<T>(base: *const u8, offset: usize) -> Result<T, ProbeError> {
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset) as *const T) }
        .map_err(|_| ProbeError::KernelRead)
}

#[inline(always)]
pub fn read_ptr(base: *const u8, offset: usize) -> Result<*const u8, ProbeError> {
    read::<*const u8>(base, offset)
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

/// The pid number and pid namespace inode of a `struct pid` at its deepest level.
#[inline(always)]
pub fn pid_in_own_ns(pid: *const u8) -> Result<NsPidKey, ProbeError> {
    if pid.is_null() {
        return Ok(NsPidKey::default());
    }
    let level: u32 = read(pid, off!(pid_level))?;
    pid_at_level(pid, level)
}

/// The pid number and namespace inode of a `struct pid` at `level` (0 = the host).
#[inline(always)]
pub fn pid_at_level(pid: *const u8, level: u32) -> Result<NsPidKey, ProbeError> {
    let upid = pid.wrapping_add(off!(pid_numbers) + level as usize * off!(upid_size));
    let nr: u32 = read(upid, off!(upid_nr))?;
    let ns = read_ptr(upid, off!(upid_ns))?;
    let pidns: u32 = read(ns, off!(pidns_inum))?;
    Ok(NsPidKey { pidns, nr })
}

/// Ids of any task (the current one or another).
#[inline(always)]
pub fn task_ids(task: Task) -> Result<TaskIds, ProbeError> {
    let tid: u32 = read(task, off!(task_pid))?;
    let pid: u32 = read(task, off!(task_tgid))?;
    let parent = read_ptr(task, off!(task_real_parent))?;
    let ppid: u32 = read(parent, off!(task_tgid))?;
    let leader = read_ptr(task, off!(task_group_leader))?;
    let start_ns: u64 = read(leader, off!(task_start_boottime))?;
    let leader_pid = read_ptr(leader, off!(task_thread_pid))?;
    let ns = pid_in_own_ns(leader_pid)?;
    Ok(TaskIds {
        pid,
        tid,
        ns_pid: ns.nr,
        pidns: ns.pidns,
        ppid,
        start_ns,
    })
}

#[inline(always)]
pub fn current() -> Task {
    unsafe { bpf_get_current_task() as Task }
}

#[inline(always)]
pub fn now() -> u64 {
    unsafe { bpf_ktime_get_boot_ns() }
}

/// Fills `header` for the current task.
#[inline(always)]
pub fn fill_header(header: &mut Header, kind: u32) -> Result<(), ProbeError> {
    let pid_tgid = bpf_get_current_pid_tgid();
    header.kind = kind;
    header.pid = (pid_tgid >> 32) as u32;
    header.tid = pid_tgid as u32;
    header.uid = bpf_get_current_uid_gid() as u32;
    header.cpu = unsafe { bpf_get_smp_processor_id() };
    header.ts_ns = now();
    header.cgroup_id = unsafe { bpf_get_current_cgroup_id() };
    header.comm = bpf_get_current_comm().unwrap_or([0; COMM_LEN]);
    let ids = task_ids(current())?;
    header.ns_pid = ids.ns_pid;
    header.pidns = ids.pidns;
    header.ppid = ids.ppid;
    header.start_ns = ids.start_ns;
    Ok(())
}

/// `task->comm` of another task.
#[inline(always)]
pub fn comm_of(task: Task) -> Result<[u8; COMM_LEN], ProbeError> {
    read(task, off!(task_comm))
}
