//! Starting the main child (own process group, the terminal, inherited signal state) and the
//! `--trace-log` helper.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use super::inherited;

/// The controlling terminal init can hand over: the descriptor and whose it was.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    pub fd: i32,
    pub original_foreground: i32,
}

impl Terminal {
    /// The first of stdin, stdout, stderr that is init's controlling terminal, if init is in
    /// its foreground group: started in the background from a shell, init must not take the
    /// terminal away from that shell.
    pub fn find() -> Option<Self> {
        // SAFETY: getpgrp has no preconditions.
        let own_group = unsafe { libc::getpgrp() };
        (0..=2).find_map(|fd| {
            // SAFETY: tcgetpgrp only reads; it fails with ENOTTY unless fd is our controlling tty.
            // Both it and getpgrp give 0 for a group outside init's PID namespace (unshare
            // --pid --fork from a shell), where the two cannot be told apart.
            let pgrp = unsafe { libc::tcgetpgrp(fd) };
            (pgrp >= 0 && pgrp == own_group).then_some(Terminal {
                fd,
                original_foreground: pgrp,
            })
        })
    }

    /// Gives the foreground back to whoever had it if the child's group still holds it, so an
    /// interactive shell that started init finds its terminal as it left it.
    pub fn restore(&self, child_group: i32) {
        // SAFETY: init keeps SIGTTOU blocked, so calling from a background group cannot stop it.
        unsafe {
            if self.original_foreground > 0 && libc::tcgetpgrp(self.fd) == child_group {
                libc::tcsetpgrp(self.fd, self.original_foreground);
            }
        }
    }
}

/// The directory init was started in, held only while the children are spawned: init moves to
/// `/` first, so that no child can run before init has let go of the directory, and each child
/// moves back by descriptor (which also works for a directory no path reaches any more).
pub struct StartDir(OwnedFd);

impl StartDir {
    /// Opens the current directory and moves init to `/`. None (and init stays) when the
    /// directory cannot be opened: then init moves only after the children are started.
    pub fn leave() -> Option<Self> {
        // SAFETY: open/chdir with valid C strings; the fd is owned right away.
        unsafe {
            let fd = libc::open(
                c".".as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            if fd < 0 {
                return None;
            }
            let dir = StartDir(OwnedFd::from_raw_fd(fd));
            (libc::chdir(c"/".as_ptr()) == 0).then_some(dir)
        }
    }
}

/// Why the command could not be started, and the exit code that says so.
pub struct SpawnError {
    pub code: u8,
    pub message: String,
}

/// Forks and execs COMMAND in a new process group that owns the terminal, with the signal state
/// init inherited. Returns its pid.
pub fn main_child(
    command: &[OsString],
    terminal: Option<Terminal>,
    start_dir: Option<&StartDir>,
) -> Result<i32, SpawnError> {
    let (mask, ignored) = inherited::get();
    let tty = terminal.map(|t| t.fd);
    let dir = start_dir.map(|d| d.0.as_raw_fd());
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]).process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = dir
                && libc::fchdir(fd) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // std has emptied the mask by now; SIGTTOU must stay blocked while a background
            // group takes the terminal, or the child would stop right here.
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
            if let Some(fd) = tty {
                libc::tcsetpgrp(fd, libc::getpid());
            }
            inherited::restore_in_child(mask, ignored)
        });
    }
    match cmd.spawn() {
        Ok(child) => Ok(child.id() as i32),
        Err(err) => Err(exec_error(&command[0], &err)),
    }
}

fn exec_error(program: &OsString, err: &io::Error) -> SpawnError {
    let name = Path::new(program).display();
    let not_found = match err.raw_os_error() {
        Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG | libc::ELOOP) => true,
        // execvp reports EACCES when a PATH directory was unreadable even if the command is in
        // none of them; like a shell, call that "not found".
        Some(libc::EACCES) => !program.as_encoded_bytes().contains(&b'/') && !on_path(program),
        _ => false,
    };
    if not_found {
        SpawnError {
            code: 127,
            message: format!("cannot run {name}: command not found"),
        }
    } else {
        let why = match err.raw_os_error() {
            Some(libc::EACCES) => "permission denied (not executable?)".to_owned(),
            Some(libc::ENOEXEC) => "not an executable format".to_owned(),
            _ => err.to_string(),
        };
        SpawnError {
            code: 126,
            message: format!("cannot run {name}: {why}"),
        }
    }
}

/// Whether some PATH directory has an entry of that name.
fn on_path(program: &OsString) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join(program).symlink_metadata().is_ok())
    })
}

/// Starts `tracer trace` on init's own subtree, in its own process group so that `-g` and
/// tree-wide signals never reach it. Its stderr only shows with `-v`: a missing capability is
/// reported by init in one line instead.
pub fn trace_helper(file: &Path, verbose: bool, start_dir: Option<&StartDir>) -> io::Result<i32> {
    let stderr = if verbose {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let dir = start_dir.map(|d| d.0.as_raw_fd());
    let mut cmd = Command::new("/proc/self/exe");
    // SAFETY: fchdir is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || match dir {
            Some(fd) if libc::fchdir(fd) != 0 => Err(io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    let child = cmd
        .arg("trace")
        .args(["--format", "json", "-o"])
        .arg(file)
        .arg("--follow-parent")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()?;
    Ok(child.id() as i32)
}

/// Waits (at most `limit`) until the trace helper has its probes attached, which it shows by
/// writing the log's first line, so that nothing the command does is missed; or until the
/// helper has exited (it is left for the main loop to reap and report).
pub fn await_trace_ready(pid: i32, file: &Path, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if std::fs::metadata(file).is_ok_and(|m| m.len() > 0) {
            return;
        }
        // SAFETY: info is a valid siginfo_t; WNOWAIT leaves the helper to be reaped later.
        let exited = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            ) == 0
                && info.si_pid() != 0
        };
        if exited {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
