//! tracefs: mounted when it is not, and read for the layout of the syscall tracepoint records
//! the wait probes parse.

use std::{ffi::CString, fs, path::PathBuf};

use anyhow::{Context as _, Result, bail};

const MOUNTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs root, mounting it at `/sys/kernel/tracing` when no mount exists.
pub fn root() -> Result<PathBuf> {
    for dir in MOUNTS {
        if fs::metadata(format!("{dir}/events")).is_ok() {
            return Ok(PathBuf::from(dir));
        }
    }
    let target = CString::new(MOUNTS[0])?;
    let fstype = CString::new("tracefs")?;
    let source = CString::new("nodev")?;
    // SAFETY: all pointers are valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        bail!(
            "tracefs is not mounted and mounting it at {} failed: {err}",
            MOUNTS[0]
        );
    }
    Ok(PathBuf::from(MOUNTS[0]))
}

/// One field of a tracepoint record.
#[derive(Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: u32,
    pub size: u32,
}

/// Fields of `events/CATEGORY/NAME/format`.
pub fn fields(root: &std::path::Path, category: &str, name: &str) -> Result<Vec<Field>> {
    let path = root.join("events").join(category).join(name).join("format");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse_format(&text))
}

fn parse_format(text: &str) -> Vec<Field> {
    text.lines()
        .filter_map(|line| {
            let mut decl = None;
            let mut offset = None;
            let mut size = None;
            for part in line.trim().split(';') {
                let part = part.trim();
                if let Some(d) = part.strip_prefix("field:") {
                    decl = Some(d);
                } else if let Some(o) = part.strip_prefix("offset:") {
                    offset = o.parse().ok();
                } else if let Some(s) = part.strip_prefix("size:") {
                    size = s.parse().ok();
                }
            }
            let name = decl?.split_whitespace().last()?.trim_start_matches('*');
            let name = name.split('[').next()?.to_owned();
            Some(Field {
                name,
                offset: offset?,
                size: size?,
            })
        })
        .collect()
}

/// Offset of the first argument in a `sys_enter_*` record and of `ret` in a `sys_exit_*`
/// record, checked to be the 8-byte slots the probes read.
pub fn syscall_offsets(root: &std::path::Path) -> Result<(u32, u32)> {
    let enter = fields(root, "syscalls", "sys_enter_wait4")?;
    let nr = enter
        .iter()
        .find(|f| f.name == "__syscall_nr")
        .context("sys_enter_wait4 has no __syscall_nr field")?;
    let first_arg = enter
        .iter()
        .filter(|f| f.offset > nr.offset)
        .min_by_key(|f| f.offset)
        .context("sys_enter_wait4 has no argument fields")?;
    if first_arg.size != 8 {
        bail!(
            "unexpected syscall argument size {} in sys_enter_wait4",
            first_arg.size
        );
    }
    let exit = fields(root, "syscalls", "sys_exit_wait4")?;
    let ret = exit
        .iter()
        .find(|f| f.name == "ret")
        .context("sys_exit_wait4 has no ret field")?;
    Ok((first_arg.offset, ret.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_syscall_format() {
        let text = "name: sys_enter_wait4\nID: 123\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
            \tfield:pid_t upid;\toffset:16;\tsize:8;\tsigned:0;\n\
            \tfield:int * stat_addr;\toffset:24;\tsize:8;\tsigned:0;\n\nprint fmt: \"\"\n";
        let fields = parse_format(text);
        assert_eq!(fields.len(), 4);
        assert_eq!(
            fields[2],
            Field {
                name: "upid".into(),
                offset: 16,
                size: 8
            }
        );
        assert_eq!(fields[3].name, "stat_addr");
    }
}
