//! `tracer init` end to end: each test runs init as PID 1 of a fresh PID namespace (needs root)
//! and as a plain child subreaper.

mod common;

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{LONG, Mode, Running, fixture, fixture_file, modes, state, wait_until};

fn sh(script: &str) -> Vec<String> {
    vec!["--".into(), "sh".into(), "-c".into(), script.into()]
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Run to completion, return (exit code, stderr lines).
fn run_to_end(mode: Mode, a: &[String]) -> (i32, Vec<String>, Vec<String>) {
    let mut r = Running::start(mode, a);
    r.close_stdin();
    let code = r.code(LONG);
    let out = r.out.rest(LONG);
    let err = r.err.rest(LONG);
    (code, out, err)
}

#[test]
fn exit_codes_0_to_255_pass_through() {
    for mode in modes() {
        for n in 0..=255 {
            let (code, _, err) = run_to_end(mode, &sh(&format!("exit {n}")));
            assert_eq!(code, n, "{mode:?}: exit {n}, stderr {err:?}");
        }
    }
}

#[test]
fn killed_child_gives_128_plus_signal() {
    for mode in modes() {
        for (name, n) in [("TERM", 15), ("USR1", 10), ("USR2", 12), ("KILL", 9)] {
            let (code, _, err) = run_to_end(mode, &sh(&format!("kill -s {name} $$")));
            assert_eq!(code, 128 + n, "{mode:?}: SIG{name}, stderr {err:?}");
        }
    }
}

#[test]
fn missing_command_is_127_and_non_executable_is_126() {
    let dir = tempdir("exec");
    let plain = dir.join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    for mode in modes() {
        let (code, _, err) = run_to_end(mode, &args(&["--", "/nonexistent/command"]));
        assert_eq!(code, 127, "{mode:?}: {err:?}");
        assert_eq!(err.len(), 1, "{mode:?}: one line: {err:?}");
        assert!(
            err[0].starts_with("tracer init: ") && err[0].contains("not found"),
            "{err:?}"
        );

        let (code, _, err) = run_to_end(mode, &args(&["--", "no-such-command-anywhere"]));
        assert_eq!(code, 127, "{mode:?}: PATH lookup: {err:?}");

        let (code, _, err) = run_to_end(mode, &args(&["--", plain.to_str().unwrap()]));
        assert_eq!(code, 126, "{mode:?}: {err:?}");
        assert_eq!(err.len(), 1, "{mode:?}: one line: {err:?}");
        assert!(err[0].contains("permission denied"), "{err:?}");
    }
}

/// Starts init over `sig_echo` and waits for it to be ready.
fn start_echo(mode: Mode, extra: &[&str]) -> Running {
    let echo = fixture("sig_echo");
    let mut a = args(extra);
    a.push("--".into());
    a.push(echo.to_str().unwrap().into());
    let mut r = Running::start(mode, &a);
    r.out
        .wait_for(LONG, |l| l.starts_with("ready"))
        .expect("sig_echo ready");
    r
}

#[test]
fn every_catchable_signal_reaches_the_child() {
    for mode in modes() {
        let mut r = start_echo(mode, &["--grace", "5"]);
        // INT, QUIT and TERM start the shutdown, so they go last.
        let order = (1..=31)
            .filter(|s| ![9, 17, 19, 2, 3, 15].contains(s))
            .chain([2, 3, 15]);
        for sig in order {
            r.signal(sig);
            let want = format!("got signal {sig}");
            let line = r.out.next(LONG);
            assert_eq!(
                line.as_deref(),
                Some(want.as_str()),
                "{mode:?}: signal {sig}"
            );
        }
        // sig_echo survives SIGTERM, so the grace period ends in SIGKILL.
        assert_eq!(r.code(LONG), 128 + 9, "{mode:?}");
    }
}

#[test]
fn rewrite_maps_and_drops() {
    for mode in modes() {
        let mut r = start_echo(mode, &["--rewrite", "USR1:USR2", "--rewrite", "HUP:0"]);
        r.signal(libc::SIGUSR1);
        assert_eq!(
            r.out.next(LONG).as_deref(),
            Some("got signal 12"),
            "{mode:?}"
        );
        r.signal(libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(300));
        r.signal(libc::SIGWINCH);
        // Had HUP gone through, its line would come first.
        assert_eq!(
            r.out.next(LONG).as_deref(),
            Some("got signal 28"),
            "{mode:?}"
        );
        r.signal(libc::SIGKILL);
    }
}

#[test]
fn process_group_reaches_a_grandchild() {
    let echo = fixture("sig_echo");
    let script = format!(
        "trap 'echo sh got USR1' USR1; {} & wait; wait",
        echo.display()
    );
    for mode in modes() {
        for how in ["none", "flag", "env"] {
            let mut a = Vec::new();
            if how == "flag" {
                a.push("-g".to_owned());
            }
            a.extend(sh(&script));
            let mut cmd = common::init_command(mode, &a);
            if how == "env" {
                cmd.env("TRACER_INIT_PROCESS_GROUP", "1");
            }
            let mut r = Running::spawn(mode, cmd);
            r.out
                .wait_for(LONG, |l| l.starts_with("ready"))
                .expect("ready");
            r.signal(libc::SIGUSR1);
            // The two may print in either order.
            let sh_line = r.out.wait_for(LONG, |l| l == "sh got USR1");
            assert!(sh_line.is_some(), "{mode:?} {how}: {:?}", r.out.seen);
            let echoed = |r: &mut Running| {
                r.out.seen.iter().any(|l| l == "got signal 10")
                    || r.out
                        .wait_for(Duration::from_secs(1), |l| l == "got signal 10")
                        .is_some()
            };
            if how == "none" {
                assert!(
                    !echoed(&mut r),
                    "{mode:?}: without -g only the child gets it"
                );
            } else {
                assert!(echoed(&mut r), "{mode:?} {how}: {:?}", r.out.seen);
            }
            r.signal(libc::SIGKILL);
        }
    }
}

#[test]
fn hundred_background_processes_leave_no_zombie() {
    let script = "for i in $(seq 100); do sleep 0.5 & echo $!; done; exit 0";
    for mode in modes() {
        let mut a = args(&["-v"]);
        a.extend(sh(script));
        let start = Instant::now();
        let (code, out, err) = run_to_end(mode, &a);
        let took = start.elapsed();
        assert_eq!(code, 0, "{mode:?}: {err:?}");
        assert_eq!(out.len(), 100, "{mode:?}: {out:?}");
        let summary = err.last().expect("summary line");
        assert!(
            summary.contains("reaped 101 processes (100 adopted orphans)"),
            "{mode:?}: {err:?}"
        );
        let reaped = err
            .iter()
            .filter(|l| l.contains(") killed by SIGTERM") || l.contains(") exited 0"))
            .count();
        assert_eq!(reaped, 100, "{mode:?}: one line per orphan: {err:?}");
        assert!(took < Duration::from_secs(20), "{mode:?}: took {took:?}");
        if mode == Mode::Subreaper {
            for pid in out.iter().map(|p| p.parse::<i32>().unwrap()) {
                let left = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep");
                assert!(!left, "{pid} still there after init exited");
            }
        }
    }
}

#[test]
fn seed_node_run_js_with_make_zombie_leaves_no_zombie() {
    let make_zombie = fixture("make_zombie");
    let run_js = fixture_file("run.js");
    let node_args = |init: bool| {
        let mut a = Vec::new();
        if init {
            a.extend(args(&["-v", "--"]));
        }
        a.extend([
            "node".to_owned(),
            run_js.to_str().unwrap().to_owned(),
            make_zombie.to_str().unwrap().to_owned(),
            "1".to_owned(),
        ]);
        a
    };
    if common::is_root() {
        // Control: node as PID 1 keeps the zombie, so the check below can see one.
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork"])
            .args(node_args(false))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut r = Running::spawn(Mode::Namespace, cmd);
        r.out
            .wait_for(LONG, |l| l.contains("make_zombie exited"))
            .expect("make_zombie ran");
        let node = r.init_pid();
        let zombie = wait_until(Duration::from_secs(5), || {
            common::descendants(node)
                .into_iter()
                .find(|p| state(*p) == Some('Z'))
        });
        assert!(zombie.is_some(), "node as PID 1 should have kept a zombie");
    }
    for mode in modes() {
        let mut r = Running::start(mode, &node_args(true));
        r.out
            .wait_for(LONG, |l| l.contains("make_zombie exited"))
            .expect("make_zombie ran");
        let line = r
            .err
            .wait_for(LONG, |l| l.contains("(make_zombie) exited 0"));
        assert!(
            line.is_some(),
            "{mode:?}: zombie reaped and reported: {:?}",
            r.err.seen
        );
        let init = r.init_pid();
        std::thread::sleep(Duration::from_millis(300));
        let zombies: Vec<i32> = common::descendants(init)
            .into_iter()
            .filter(|p| state(*p) == Some('Z'))
            .collect();
        assert!(zombies.is_empty(), "{mode:?}: zombies {zombies:?}");
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 128 + 15, "{mode:?}: node dies of SIGTERM");
    }
}

#[test]
fn seed_sigterm_reaches_signal_test() {
    let signal_test = fixture("signal_test");
    for mode in modes() {
        let mut r = Running::start(mode, &["--", signal_test.to_str().unwrap()]);
        r.out
            .wait_for(LONG, |l| l.contains("ready"))
            .expect("ready");
        r.signal(libc::SIGTERM);
        let got = r.out.wait_for(LONG, |l| l == "got signal 15");
        assert!(got.is_some(), "{mode:?}: {:?}", r.out.seen);
        r.close_stdin();
        assert_eq!(
            r.code(LONG),
            0,
            "{mode:?}: signal_test exits 0 at end of input"
        );
    }
}

/// init over `sh` that leaves `sig_trap MODE` behind as an orphan, then exits 0 once told.
fn start_with_orphan(mode: Mode, trap: &str, grace: &str, exit_at_once: bool) -> Running {
    let fx = fixture("sig_trap");
    let script = if exit_at_once {
        format!("{} {trap} & read _; exit 0", fx.display())
    } else {
        format!(
            "trap 'echo main got TERM' TERM; ({} {trap} &); while :; do sleep 0.2; done",
            fx.display()
        )
    };
    let mut a = args(&["-v", "--grace", grace]);
    a.extend(sh(&script));
    let mut r = Running::start(mode, &a);
    r.out
        .wait_for(LONG, |l| l.starts_with("ready"))
        .expect("ready");
    r
}

#[test]
fn graceful_shutdown_orphan_that_traps_sigterm_exits_within_grace() {
    for mode in modes() {
        // The child exits while the orphan still runs: init sends it SIGTERM.
        let mut r = start_with_orphan(mode, "trap", "20", true);
        let start = Instant::now();
        writeln!(r.child.stdin.as_mut().unwrap()).unwrap();
        let got = r.out.wait_for(LONG, |l| l.starts_with("trapped SIGTERM"));
        assert!(got.is_some(), "{mode:?}: {:?}", r.out.seen);
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{mode:?}: {:?}",
            start.elapsed()
        );
        let err = r.err.rest(LONG);
        assert!(
            err.iter().any(|l| l.contains("(sig_trap) exited 0")),
            "{mode:?}: {err:?}"
        );

        // SIGTERM to init while the child survives it: the adopted orphan gets it from init
        // directly, well before the grace period ends.
        let mut r = start_with_orphan(mode, "trap", "4", false);
        let start = Instant::now();
        r.signal(libc::SIGTERM);
        let got = r.out.wait_for(LONG, |l| l.starts_with("trapped SIGTERM"));
        assert!(got.is_some(), "{mode:?}: {:?}", r.out.seen);
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{mode:?}: {:?}",
            start.elapsed()
        );
        // The shell runs its trap only after its current command, so this may come later.
        let main_got = r.out.seen.iter().any(|l| l == "main got TERM")
            || r.out.wait_for(LONG, |l| l == "main got TERM").is_some();
        assert!(main_got, "{mode:?}: {:?}", r.out.seen);
        assert_eq!(
            r.code(LONG),
            128 + 9,
            "{mode:?}: the child outlived the grace"
        );
    }
}

#[test]
fn graceful_shutdown_wakes_a_stopped_orphan_so_it_can_act_on_sigterm() {
    for mode in modes() {
        let mut r = start_with_orphan(mode, "trap", "20", true);
        let init = r.init_pid();
        let orphan = wait_until(LONG, || {
            common::descendants(init).into_iter().find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sig_trap")
            })
        })
        .expect("sig_trap running");
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(orphan, libc::SIGSTOP) };
        wait_until(LONG, || (state(orphan) == Some('T')).then_some(())).expect("stopped");
        let start = Instant::now();
        writeln!(r.child.stdin.as_mut().unwrap()).unwrap();
        let got = r.out.wait_for(LONG, |l| l.starts_with("trapped SIGTERM"));
        assert!(got.is_some(), "{mode:?}: {:?}", r.out.seen);
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{mode:?}: {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn graceful_shutdown_orphan_that_ignores_sigterm_is_killed_after_grace() {
    for mode in modes() {
        let mut r = start_with_orphan(mode, "ignore", "2", true);
        let start = Instant::now();
        writeln!(r.child.stdin.as_mut().unwrap()).unwrap();
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1900),
            "{mode:?}: killed before the grace: {took:?}"
        );
        assert!(took < Duration::from_secs(15), "{mode:?}: {took:?}");
        let err = r.err.rest(LONG);
        assert!(
            err.iter()
                .any(|l| l.contains("(sig_trap) killed by SIGKILL")),
            "{mode:?}: {err:?}"
        );
    }
}

#[test]
fn signal_mask_and_ignored_dispositions_are_restored_in_the_child() {
    for mode in modes() {
        for inherit in [false, true] {
            let mut cmd = common::init_command(mode, &["--", "grep", "^Sig", "/proc/self/status"]);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    // Start from a known state: the test harness (and glibc's posix_spawn)
                    // may leave signals ignored.
                    common::reset_all_dispositions();
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    if inherit {
                        libc::sigaddset(&mut set, libc::SIGUSR1);
                        libc::sigaddset(&mut set, libc::SIGWINCH);
                        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
                        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                    }
                    libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                    Ok(())
                });
            }
            let mut r = Running::spawn(mode, cmd);
            r.close_stdin();
            assert_eq!(r.code(LONG), 0, "{mode:?}");
            let out = r.out.rest(LONG);
            let field = |name: &str| {
                out.iter()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| u64::from_str_radix(v.trim_start_matches(':').trim(), 16).unwrap())
                    .unwrap_or_else(|| panic!("{name} in {out:?}"))
            };
            let bit = |s: i32| 1u64 << (s - 1);
            let (blocked, ignored) = if inherit {
                (
                    bit(libc::SIGUSR1) | bit(libc::SIGWINCH),
                    bit(libc::SIGUSR2) | bit(libc::SIGPIPE),
                )
            } else {
                (0, 0)
            };
            assert_eq!(
                field("SigBlk"),
                blocked,
                "{mode:?} inherit={inherit}: {out:?}"
            );
            assert_eq!(
                field("SigIgn"),
                ignored,
                "{mode:?} inherit={inherit}: {out:?}"
            );
        }
    }
}

#[test]
fn pty_ctrl_c_in_an_interactive_child_exits_130() {
    for mode in modes() {
        let (master, slave) = open_pty();
        let script = "echo ready; read line; echo \"read:$line\"; exec cat";
        let mut cmd = common::init_command(mode, &sh(script));
        on_pty(&mut cmd, slave);
        let mut child = cmd.spawn().expect("spawn under pty");
        let mut writer = std::fs::File::from(master.try_clone().unwrap());
        let mut screen = common::Lines::new(std::fs::File::from(master));
        assert!(
            screen.wait_for(LONG, |l| l.trim() == "ready").is_some(),
            "{mode:?}: {:?}",
            screen.seen
        );
        // A background group reading the terminal would be stopped by SIGTTIN: this only
        // answers if init made the child's group the foreground group.
        writer.write_all(b"hello\n").unwrap();
        let read = screen.wait_for(LONG, |l| l.trim() == "read:hello");
        assert!(read.is_some(), "{mode:?}: {:?}", screen.seen);
        writer.write_all(b"\x03").unwrap();
        let end = Instant::now() + LONG;
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("{mode:?}: no exit after Ctrl-C: {:?}", screen.seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(130), "{mode:?}: {:?}", screen.seen);
    }
}

/// Opens a pty; returns the master and the slave's path.
fn open_pty() -> (std::os::fd::OwnedFd, std::ffi::CString) {
    use std::os::fd::FromRawFd as _;
    // SAFETY: standard pty setup; the master fd is owned by the caller.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = std::ffi::CStr::from_ptr(libc::ptsname(m)).to_owned();
        (std::os::fd::OwnedFd::from_raw_fd(m), name)
    }
}

/// Makes `cmd` a session leader with `slave` as controlling terminal on 0, 1 and 2, with
/// every signal at its default: init passes ignored dispositions on to its child, as exec does,
/// and a suite started in the background by a non-interactive shell has SIGINT and SIGQUIT
/// ignored, which would make the terminal's Ctrl-C do nothing.
fn on_pty(cmd: &mut Command, slave: std::ffi::CString) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            common::reset_all_dispositions();
            libc::setsid();
            let fd = libc::open(slave.as_ptr(), libc::O_RDWR);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::ioctl(fd, libc::TIOCSCTTY, 0);
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            libc::close(fd);
            Ok(())
        });
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
}

#[test]
fn pty_init_started_in_the_background_leaves_the_terminal_alone() {
    // Subreaper mode only: under unshare both groups read as 0 and cannot be told apart.
    let (master, slave) = open_pty();
    // The shell keeps the terminal while init runs in a group of its own, as a background job.
    let script = format!(
        "{} {} init -- sleep 1.5 & sleep 0.7; echo fg=$(cut -d' ' -f8 /proc/$$/stat); echo me=$$; wait",
        fixture("in_new_group").display(),
        common::tracer()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    on_pty(&mut cmd, slave);
    let mut child = cmd.spawn().expect("spawn under pty");
    let mut screen = common::Lines::new(std::fs::File::from(master.try_clone().unwrap()));
    let fg = screen
        .wait_for(LONG, |l| l.starts_with("fg="))
        .expect("fg line");
    let me = screen
        .wait_for(LONG, |l| l.starts_with("me="))
        .expect("me line");
    assert_eq!(
        fg.trim().trim_start_matches("fg=").trim(),
        me.trim().trim_start_matches("me="),
        "the shell lost its terminal: {:?}",
        screen.seen
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn job_control_signals_are_forwarded_and_init_never_stops() {
    for mode in modes() {
        let mut r = Running::start(mode, &["--", "sleep", "1000"]);
        let init = r.init_pid();
        let sleep = wait_until(LONG, || common::children(init).first().copied()).expect("child");
        for (sig, want) in [
            (libc::SIGTSTP, 'T'),
            (libc::SIGCONT, 'S'),
            (libc::SIGTTIN, 'T'),
            (libc::SIGCONT, 'S'),
            (libc::SIGTTOU, 'T'),
            (libc::SIGCONT, 'S'),
        ] {
            r.signal(sig);
            let seen = wait_until(LONG, || (state(sleep) == Some(want)).then_some(()));
            assert!(
                seen.is_some(),
                "{mode:?}: after {sig} child is {:?}",
                state(sleep)
            );
            assert_ne!(state(init), Some('T'), "{mode:?}: init stopped");
        }
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 128 + 15, "{mode:?}");
    }
}

#[test]
fn remap_exit_turns_codes_into_0() {
    for mode in modes() {
        let mut a = args(&["--remap-exit", "3", "--remap-exit", "143"]);
        a.extend(sh("exit 3"));
        assert_eq!(run_to_end(mode, &a).0, 0, "{mode:?}");
        let mut a = args(&["--remap-exit", "3", "--remap-exit", "143"]);
        a.extend(sh("exit 4"));
        assert_eq!(run_to_end(mode, &a).0, 4, "{mode:?}");
        let mut a = args(&["--remap-exit", "143"]);
        a.extend(sh("kill -s TERM $$"));
        assert_eq!(run_to_end(mode, &a).0, 0, "{mode:?}");
    }
}

#[test]
fn pdeathsig_is_forwarded_when_inits_parent_dies() {
    let echo = fixture("sig_echo");
    for mode in modes() {
        let init_args = [
            "init",
            "--pdeathsig",
            "USR1",
            "--grace",
            "1",
            "--",
            echo.to_str().unwrap(),
        ];
        // init's parent: unshare itself, or a shell in subreaper mode.
        let mut cmd = match mode {
            Mode::Namespace => {
                let mut c = Command::new("unshare");
                c.args(["--pid", "--fork", common::tracer()])
                    .args(init_args);
                c
            }
            Mode::Subreaper => {
                let mut c = Command::new("sh");
                c.args(["-c", "\"$@\" & wait", "sh", common::tracer()])
                    .args(init_args);
                c
            }
        };
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut r = Running::spawn(Mode::Namespace, cmd);
        r.out
            .wait_for(LONG, |l| l.starts_with("ready"))
            .expect("ready");
        let init = r.init_pid();
        r.child.kill().unwrap();
        r.child.wait().unwrap();
        let got = r.out.wait_for(LONG, |l| l == "got signal 10");
        assert!(got.is_some(), "{mode:?}: {:?}", r.out.seen);
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(init, libc::SIGTERM) };
        let gone = wait_until(LONG, || {
            std::fs::metadata(format!("/proc/{init}"))
                .is_err()
                .then_some(())
        });
        assert!(gone.is_some(), "{mode:?}: init still running");
    }
}

#[test]
fn init_holds_no_descriptors_and_sits_in_root_while_the_child_keeps_its_own() {
    let dir = tempdir("cwd");
    for mode in modes() {
        let script = "pwd; echo extra >&5; read x; echo \"in:$x\"; read y; exit 0";
        let mut cmd = common::init_command(mode, &sh(script));
        cmd.current_dir(&*dir);
        let (rd, wr) = pipe();
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Exactly 0, 1, 2 and 5: whatever else the harness leaked is closed.
                if wr == 5 {
                    libc::fcntl(5, libc::F_SETFD, 0);
                } else {
                    libc::dup2(wr, 5);
                }
                libc::syscall(libc::SYS_close_range, 3u32, 4u32, 0u32);
                libc::syscall(libc::SYS_close_range, 6u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let mut r = Running::spawn(mode, cmd);
        // SAFETY: the write end now lives in init and its child only.
        unsafe { libc::close(wr) };
        let mut extra = common::Lines::new(std::fs::File::from(rd));
        assert_eq!(
            r.out.next(LONG).as_deref(),
            Some(dir.to_str().unwrap()),
            "{mode:?}"
        );
        assert_eq!(extra.next(LONG).as_deref(), Some("extra"), "{mode:?}");
        writeln!(r.child.stdin.as_mut().unwrap(), "hello").unwrap();
        assert_eq!(r.out.next(LONG).as_deref(), Some("in:hello"), "{mode:?}");
        let init = r.init_pid();
        // While init is still finishing the spawn it briefly holds a few descriptors of its
        // own; once settled it must hold only what it was given.
        let look = || {
            let cwd = std::fs::read_link(format!("/proc/{init}/cwd")).unwrap();
            let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{init}/fd"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect();
            fds.sort_unstable();
            (cwd, fds)
        };
        let settled = wait_until(LONG, || {
            let (cwd, fds) = look();
            (cwd == std::path::Path::new("/") && fds == [0, 1, 2, 5]).then_some(())
        });
        assert!(settled.is_some(), "{mode:?}: init holds {:?}", look());
        r.close_stdin();
        assert_eq!(r.code(LONG), 0, "{mode:?}");
    }
}

#[test]
fn trace_log_failure_falls_back_to_a_plain_init() {
    for mode in modes() {
        let mut a = args(&["--trace-log", "/proc/nonexistent/x"]);
        a.extend(sh("sleep 1.5; exit 7"));
        let (code, _, err) = run_to_end(mode, &a);
        assert_eq!(code, 7, "{mode:?}: {err:?}");
        assert_eq!(
            err,
            ["tracer init: --trace-log needs CAP_BPF+CAP_PERFMON; running as a plain init"],
            "{mode:?}"
        );
    }
}

#[test]
fn trace_log_records_the_subtree_for_replay() {
    if !common::is_root() {
        eprintln!("trace_log_records_the_subtree_for_replay: skipped: needs root");
        return;
    }
    for mode in modes() {
        let log =
            std::env::temp_dir().join(format!("init-trace-{}-{mode:?}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let mut a = args(&["--trace-log", log.to_str().unwrap()]);
        // The command exits, and init ends what is left of the tree, only when the test closes
        // its stdin: after the orphan has exec'd sleep, so that it dies as `sleep`.
        a.extend(sh("sh -c 'exit 3'; (sleep 30 &); read line; exit 0"));
        let mut r = Running::start(mode, &a);
        let init = r.init_pid();
        wait_until(LONG, || {
            common::descendants(init).into_iter().find(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            })
        })
        .unwrap_or_else(|| panic!("{mode:?}: the orphan never ran sleep"));
        r.close_stdin();
        let code = r.code(LONG);
        let err = r.err.rest(LONG);
        assert_eq!(code, 0, "{mode:?}: {err:?}");
        let text = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        let events: Vec<tracer::event::Event> = text
            .lines()
            .skip(1)
            .filter(|l| l.starts_with("{\"ts_ns\""))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        let exited_3 = events.iter().any(
            |e| matches!(&e.data, tracer::event::EventData::Exit(x) if x.status.code == Some(3)),
        );
        assert!(
            exited_3,
            "{mode:?}: the command's child exiting 3 is in the log: {text}"
        );
        let exec_sleep = events.iter().any(|e| {
            matches!(&e.data, tracer::event::EventData::Exec(x) if x.filename.ends_with("/sleep"))
        });
        assert!(
            exec_sleep,
            "{mode:?}: the orphan's exec is in the log: {text}"
        );
        // The orphaned sleep is reaped by init itself, and the log says so.
        let reaped_by_init = events.iter().any(|e| {
            matches!(&e.data, tracer::event::EventData::Reap(r)
                if e.task.comm.as_str() == "sleep" && r.reaper_comm.as_str() == "tracer")
        });
        assert!(reaped_by_init, "{mode:?}: {text}");
    }
}

#[test]
fn verbose_names_the_parent_that_orphaned_a_process() {
    // X exits at 0.5 s and wakes init, which then sees P and P's child Z; P exits at 1 s,
    // orphaning Z, which init reaps at 1.5 s.
    let script = "(sh -c 'sleep 0.5' &); sh -c 'sleep 1.5 & exec sleep 1' & sleep 2.5";
    for mode in modes() {
        let mut a = args(&["-v"]);
        a.extend(sh(script));
        let (code, _, err) = run_to_end(mode, &a);
        assert_eq!(code, 0, "{mode:?}: {err:?}");
        let z = err
            .iter()
            .find(|l| l.contains("(sleep) exited 0") && l.contains("orphaned by"));
        assert!(
            z.is_some_and(|l| l.contains("(sleep)")),
            "{mode:?}: {err:?}"
        );
        let summary = err.last().unwrap();
        assert!(summary.contains("exit 0;"), "{mode:?}: {summary}");
    }
}

fn pipe() -> (std::os::fd::OwnedFd, i32) {
    use std::os::fd::FromRawFd as _;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both; the read end is owned, the write end handed over raw.
    unsafe {
        assert_eq!(libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC), 0);
        (std::os::fd::OwnedFd::from_raw_fd(fds[0]), fds[1])
    }
}

/// A scratch directory under the target dir, removed when dropped.
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(tag: &str) -> TempDir {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("init-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

#[test]
fn idle_init_never_wakes_up() {
    for mode in modes() {
        let mut r = Running::start(mode, &["--", "sleep", "1000"]);
        let init = r.init_pid();
        wait_until(LONG, || (!common::children(init).is_empty()).then_some(()))
            .expect("child started");
        std::thread::sleep(Duration::from_millis(300));
        let switches = |pid| {
            common::status_field(pid, "voluntary_ctxt_switches")
                .and_then(|v| v.parse::<u64>().ok())
                .expect("voluntary_ctxt_switches")
        };
        let before = switches(init);
        std::thread::sleep(Duration::from_millis(1500));
        let after = switches(init);
        assert_eq!(before, after, "{mode:?}: init woke up while idle");
        assert_eq!(state(init), Some('S'), "{mode:?}");
        r.signal(libc::SIGTERM);
        assert_eq!(r.code(LONG), 128 + 15, "{mode:?}");
    }
}

#[test]
fn environment_equivalents() {
    for mode in modes() {
        let mut cmd = common::init_command(mode, &sh("(sleep 0.2 &); exit 0"));
        cmd.env("TRACER_INIT_VERBOSE", "1")
            .env("TRACER_INIT_SUBREAPER", "1");
        let mut r = Running::spawn(mode, cmd);
        r.close_stdin();
        assert_eq!(r.code(LONG), 0, "{mode:?}");
        let err = r.err.rest(LONG);
        assert!(
            err.last()
                .is_some_and(|l| l.contains("reaped 2 processes (1 adopted orphans)")),
            "{mode:?}: {err:?}"
        );

        let mut cmd = common::init_command(mode, &sh("exit 0"));
        cmd.env("TRACER_INIT_VERBOSE", "lots");
        let mut r = Running::spawn(mode, cmd);
        r.close_stdin();
        assert_eq!(r.code(LONG), 1, "{mode:?}");
        let err = r.err.rest(LONG);
        assert_eq!(err.len(), 1, "{mode:?}: {err:?}");
        assert!(err[0].starts_with("tracer: TRACER_INIT_VERBOSE"), "{err:?}");
    }
}
