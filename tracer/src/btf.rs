//! Kernel structure offsets from the running kernel's BTF (`/sys/kernel/btf/vmlinux`), so the
//! probes read `task_struct` and friends correctly on any kernel, not just the one they were
//! built on.

use std::path::Path;

use btfparse::{Offset, Readable, TypeInformation, TypeVariant};
use tracer_common::offsets::Offsets;

/// Where the kernel publishes its BTF.
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error(
        "this kernel has no BTF ({VMLINUX_BTF} is missing): tracer needs a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y (5.8 or newer)"
    )]
    Missing,
    #[error("reading {VMLINUX_BTF}: {0}")]
    Read(std::io::Error),
    #[error("parsing the kernel's BTF: {0}")]
    Parse(String),
    #[error("the kernel's BTF has no `{0}`: this kernel is not supported (needs 5.8 or newer)")]
    NoField(String),
}

struct Bytes(Vec<u8>);

impl Readable for Bytes {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).ok();
        let slice = start.and_then(|s| self.0.get(s..s.checked_add(buffer.len())?));
        match slice {
            Some(slice) => {
                buffer.copy_from_slice(slice);
                Ok(())
            }
            None => Err(btfparse::Error::new(
                btfparse::ErrorKind::IOError,
                "read past the end of the BTF data",
            )),
        }
    }
}

struct Types(TypeInformation);

impl Types {
    /// The id of the struct (not a forward declaration) called `name`.
    fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        let id = self
            .0
            .id_of(name)
            .ok_or_else(|| BtfError::NoField(format!("struct {name}")))?;
        match self.0.from_id(id) {
            Some(TypeVariant::Struct(_)) => Ok(id),
            _ => self
                .0
                .get()
                .iter()
                .find(|(_, ty)| matches!(ty, TypeVariant::Struct(s) if s.name().as_deref() == Some(name)))
                .map(|(&id, _)| id)
                .ok_or_else(|| BtfError::NoField(format!("struct {name}"))),
        }
    }

    /// Byte offset of `path` (like `sa.sa_handler`) in struct `ty`.
    fn offset(&self, ty: &str, path: &str) -> Result<u32, BtfError> {
        let id = self.struct_id(ty)?;
        match self.0.offset_of(id, path) {
            Ok((_, Offset::ByteOffset(offset))) => Ok(offset),
            _ => Err(BtfError::NoField(format!("{ty}.{path}"))),
        }
    }

    fn size(&self, ty: &str) -> Result<u32, BtfError> {
        let id = self.struct_id(ty)?;
        self.0
            .size_of(id)
            .ok()
            .and_then(|s| u32::try_from(s).ok())
            .ok_or_else(|| BtfError::NoField(format!("sizeof(struct {ty})")))
    }
}

/// Resolves every offset the probes need.
pub fn resolve(path: &Path) -> Result<Offsets, BtfError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(BtfError::Missing),
        Err(err) => return Err(BtfError::Read(err)),
    };
    let info =
        TypeInformation::new(&Bytes(bytes)).map_err(|e| BtfError::Parse(e.message().to_owned()))?;
    let t = Types(info);
    Ok(Offsets {
        task_pid: t.offset("task_struct", "pid")?,
        task_tgid: t.offset("task_struct", "tgid")?,
        task_real_parent: t.offset("task_struct", "real_parent")?,
        task_group_leader: t.offset("task_struct", "group_leader")?,
        task_start_boottime: t.offset("task_struct", "start_boottime")?,
        task_exit_code: t.offset("task_struct", "exit_code")?,
        task_signal: t.offset("task_struct", "signal")?,
        task_sighand: t.offset("task_struct", "sighand")?,
        task_thread_pid: t.offset("task_struct", "thread_pid")?,
        task_comm: t.offset("task_struct", "comm")?,
        task_mm: t.offset("task_struct", "mm")?,
        task_blocked: t.offset("task_struct", "blocked")?,
        task_cred: t.offset("task_struct", "cred")?,
        task_cgroups: t.offset("task_struct", "cgroups")?,
        cred_uid: t.offset("cred", "uid.val")?,
        css_set_dfl_cgrp: t.offset("css_set", "dfl_cgrp")?,
        cgroup_kn: t.offset("cgroup", "kn")?,
        kernfs_node_id: t.offset("kernfs_node", "id")?,
        signal_live: t.offset("signal_struct", "live")?,
        sighand_action: t.offset("sighand_struct", "action")?,
        k_sigaction_size: t.size("k_sigaction")?,
        k_sigaction_handler: t.offset("k_sigaction", "sa.sa_handler")?,
        k_sigaction_flags: t.offset("k_sigaction", "sa.sa_flags")?,
        pid_level: t.offset("pid", "level")?,
        pid_numbers: t.offset("pid", "numbers")?,
        upid_size: t.size("upid")?,
        upid_nr: t.offset("upid", "nr")?,
        upid_ns: t.offset("upid", "ns")?,
        pidns_inum: t.offset("pid_namespace", "ns.inum")?,
        mm_arg_start: t.offset("mm_struct", "arg_start")?,
        mm_arg_end: t.offset("mm_struct", "arg_end")?,
        binprm_filename: t.offset("linux_binprm", "filename")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On any machine with BTF, the offsets resolve and look like a task_struct.
    #[test]
    fn resolves_this_kernels_offsets() {
        let path = Path::new(VMLINUX_BTF);
        if !path.exists() {
            eprintln!("skipped: no {VMLINUX_BTF}");
            return;
        }
        let o = resolve(path).expect("offsets resolve");
        assert!(o.task_tgid > 0 && o.task_pid > 0 && o.task_tgid != o.task_pid);
        assert!(o.task_real_parent > o.task_tgid);
        assert_eq!(o.upid_size, 16, "struct upid is {{int, pointer}} on 64-bit");
        assert_eq!(o.k_sigaction_handler, 0);
    }

    #[test]
    fn missing_btf_is_one_clear_error() {
        let err = resolve(Path::new("/nonexistent/vmlinux")).unwrap_err();
        assert!(matches!(err, BtfError::Missing));
        assert!(err.to_string().contains("CONFIG_DEBUG_INFO_BTF"));
    }
}
