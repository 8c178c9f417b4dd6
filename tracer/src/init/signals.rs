//! Signal names, the one blocking wait, and `--rewrite`.

use std::time::Duration;

use anyhow::{Context as _, bail};

/// Linux has 64 signals; the real-time ones start at glibc's SIGRTMIN (34).
pub const MAX_SIGNAL: i32 = 64;

/// `SIGTERM`, `SIGRTMIN+2`.
pub fn name(sig: i32) -> String {
    crate::signals::signal_name(sig.unsigned_abs()).into_owned()
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+3`. `allow_zero` admits `0` (drop).
pub fn parse(text: &str, allow_zero: bool) -> anyhow::Result<i32> {
    let t = text.trim();
    if allow_zero && t == "0" {
        return Ok(0);
    }
    match crate::signals::parse_signal(t) {
        Some(sig) => Ok(sig as i32),
        None => bail!("{text:?} is not a signal name or number (1-{MAX_SIGNAL})"),
    }
}

/// Whether a handler or disposition can be set at all (not KILL/STOP, not glibc-internal).
pub fn catchable(sig: i32) -> bool {
    sig != libc::SIGKILL
        && sig != libc::SIGSTOP
        && (1..=MAX_SIGNAL).contains(&sig)
        && (sig < 32 || sig >= libc::SIGRTMIN())
}

/// `--rewrite FROM:TO` as a lookup table; TO 0 means drop.
#[derive(Debug, Clone)]
pub struct Rewrites([i32; MAX_SIGNAL as usize + 1]);

impl Rewrites {
    pub fn parse(specs: &[String]) -> anyhow::Result<Self> {
        let mut table = [0; MAX_SIGNAL as usize + 1];
        for (i, slot) in table.iter_mut().enumerate() {
            *slot = i as i32;
        }
        for spec in specs {
            let (from, to) = spec
                .split_once(':')
                .with_context(|| format!("--rewrite {spec:?}: expected FROM:TO"))?;
            let from = parse(from, false).with_context(|| format!("--rewrite {spec:?}"))?;
            let to = parse(to, true).with_context(|| format!("--rewrite {spec:?}"))?;
            if !catchable(from) || from == libc::SIGCHLD {
                bail!(
                    "--rewrite {spec:?}: init never receives {} to rewrite",
                    name(from)
                );
            }
            table[from as usize] = to;
        }
        Ok(Self(table))
    }

    /// The signal to send on for a received one; 0 to drop it.
    pub fn map(&self, sig: i32) -> i32 {
        self.0.get(sig as usize).copied().unwrap_or(sig)
    }
}

/// Blocks every signal and sets every disposition back to default, returning the set to wait on.
/// Blocked signals stay pending for `wait` even at PID 1, where the kernel would otherwise drop
/// default-disposition signals; an inherited SIG_IGN for SIGCHLD would make the kernel reap for
/// us and hide exit statuses, so nothing inherited may stay in effect in init itself.
pub fn take_over() -> anyhow::Result<libc::sigset_t> {
    // SAFETY: plain libc signal calls on this single-threaded process; sets are initialised.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &all, std::ptr::null_mut()) != 0 {
            bail!("cannot block signals: {}", std::io::Error::last_os_error());
        }
        for sig in 1..=MAX_SIGNAL {
            if catchable(sig) {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        Ok(all)
    }
}

/// What the single blocking wait returned.
pub enum Woken {
    Signal(libc::siginfo_t),
    TimedOut,
}

/// Sleeps until a signal is pending, or until `timeout` passes when one is given. There is no
/// timeout unless a deadline (grace period) is running, so an idle init uses no CPU.
pub fn wait(set: &libc::sigset_t, timeout: Option<Duration>) -> Woken {
    loop {
        // SAFETY: `info` is plain data the kernel fills in; `set` was initialised by take_over.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = match timeout {
            None => unsafe { libc::sigwaitinfo(set, &mut info) },
            Some(t) => {
                let ts = libc::timespec {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                };
                unsafe { libc::sigtimedwait(set, &mut info, &ts) }
            }
        };
        if rc > 0 {
            return Woken::Signal(info);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EAGAIN) => return Woken::TimedOut,
            // EINTR after a SIGSTOP/SIGCONT of init itself: just wait again.
            _ => continue,
        }
    }
}

/// Whether the signal went out. Failure is normal: a process may exit between lookup and kill.
pub fn send(pid: i32, sig: i32) -> bool {
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime() {
        assert_eq!(parse("TERM", false).unwrap(), libc::SIGTERM);
        assert_eq!(parse("sigusr1", false).unwrap(), libc::SIGUSR1);
        assert_eq!(parse("9", false).unwrap(), 9);
        assert_eq!(parse("RTMIN+2", false).unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse("0", true).unwrap(), 0);
        assert!(parse("0", false).is_err());
        assert!(parse("65", false).is_err());
        assert!(parse("NOPE", false).is_err());
        assert_eq!(name(libc::SIGWINCH), "SIGWINCH");
        assert_eq!(name(libc::SIGRTMIN() + 1), "SIGRTMIN+1");
    }

    #[test]
    fn rewrites_map_drop_and_refuse_the_uncatchable() {
        let r = Rewrites::parse(&["TERM:QUIT".into(), "HUP:0".into()]).unwrap();
        assert_eq!(r.map(libc::SIGTERM), libc::SIGQUIT);
        assert_eq!(r.map(libc::SIGHUP), 0);
        assert_eq!(r.map(libc::SIGUSR1), libc::SIGUSR1);
        assert!(Rewrites::parse(&["KILL:TERM".into()]).is_err());
        assert!(Rewrites::parse(&["CHLD:TERM".into()]).is_err());
        assert!(Rewrites::parse(&["TERM".into()]).is_err());
    }
}
