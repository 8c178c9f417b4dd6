//! Kernel structure offsets, resolved by userspace from the running kernel's BTF and handed to
//! the probes as one read-only global. Nothing in the eBPF object depends on the layout of the
//! kernel it was built on.

/// Name of the global holding [`Offsets`].
pub const GLOBAL_OFFSETS: &str = "OFFSETS";

/// Byte offsets (and a few sizes) of the kernel fields the probes read. Every field is a `u32`,
/// so the struct has no padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_start_boottime: u32,
    pub task_exit_code: u32,
    pub task_signal: u32,
    pub task_sighand: u32,
    pub task_thread_pid: u32,
    pub task_comm: u32,
    pub task_mm: u32,
    pub task_blocked: u32,
    pub task_cred: u32,
    pub task_cgroups: u32,
    /// `cred.uid.val`.
    pub cred_uid: u32,
    pub css_set_dfl_cgrp: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
    pub signal_live: u32,
    pub sighand_action: u32,
    /// `sizeof(struct k_sigaction)`.
    pub k_sigaction_size: u32,
    pub k_sigaction_handler: u32,
    pub k_sigaction_flags: u32,
    pub pid_level: u32,
    pub pid_numbers: u32,
    /// `sizeof(struct upid)`.
    pub upid_size: u32,
    pub upid_nr: u32,
    pub upid_ns: u32,
    /// `pid_namespace.ns.inum`.
    pub pidns_inum: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub binprm_filename: u32,
}

#[cfg(feature = "user")]
// SAFETY: repr(C), only u32 fields.
unsafe impl aya::Pod for Offsets {}

const _: () = assert!(core::mem::size_of::<Offsets>() == 32 * 4);
