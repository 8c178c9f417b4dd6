//! Signal names and numbers (Linux, x86-64 and arm64 numbering).

use std::borrow::Cow;

const NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The first real-time signal as the C library numbers it (glibc and musl keep 32 and 33).
pub const SIGRTMIN: u32 = 34;
pub const SIGRTMAX: u32 = 64;

/// `SIGTERM`, `SIGRTMIN+3`, or `SIG99` for numbers outside the range.
pub fn signal_name(sig: u32) -> Cow<'static, str> {
    match sig {
        1..=31 => Cow::Borrowed(NAMES[sig as usize]),
        SIGRTMIN => Cow::Borrowed("SIGRTMIN"),
        SIGRTMAX => Cow::Borrowed("SIGRTMAX"),
        n if (SIGRTMIN..SIGRTMAX).contains(&n) => Cow::Owned(format!("SIGRTMIN+{}", n - SIGRTMIN)),
        n => Cow::Owned(format!("SIG{n}")),
    }
}

/// Parses `TERM`, `SIGTERM`, `sigterm`, `15`, `RTMIN+2`.
pub fn parse_signal(text: &str) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(pos) = NAMES
        .iter()
        .position(|n| n.strip_prefix("SIG") == Some(name))
    {
        return Some(pos as u32);
    }
    match name {
        "RTMIN" => Some(SIGRTMIN),
        "RTMAX" => Some(SIGRTMAX),
        "IOT" => Some(6),
        "POLL" => Some(29),
        _ => {
            let n = if let Some(offset) = name.strip_prefix("RTMIN+") {
                SIGRTMIN.checked_add(offset.parse().ok()?)?
            } else {
                SIGRTMAX.checked_sub(name.strip_prefix("RTMAX-")?.parse().ok()?)?
            };
            (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
        }
    }
}

/// Signals whose default action is to ignore them: sending one to a process that has no
/// handler is not a drop anyone meant.
pub fn default_ignored(sig: u32) -> bool {
    matches!(sig, 17 | 18 | 23 | 28)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for sig in 1..=SIGRTMAX {
            if sig == 32 || sig == 33 {
                continue;
            }
            assert_eq!(parse_signal(&signal_name(sig)), Some(sig), "{sig}");
        }
        assert_eq!(parse_signal("term"), Some(15));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("SIGRTMIN+2"), Some(36));
        assert_eq!(parse_signal("RTMAX-1"), Some(63));
        assert_eq!(parse_signal("RTMIN+40"), None);
        assert_eq!(parse_signal("NOPE"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(signal_name(99), "SIG99");
    }
}
