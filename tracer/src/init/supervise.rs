//! The event loop: wait for a signal, reap or forward, shut the tree down, exit when it is gone.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::Config;
use super::procfs::ProcFs;
use super::reap::{self, Knowledge, Reaped};
use super::report::{self, Ended, ReapLine, Stats, say};
use super::shutdown::{Shutdown, Tree, has_children};
use super::signals::{self, Woken};
use super::spawn::{self, Terminal};

const TRACE_FALLBACK: &str = "--trace-log needs CAP_BPF+CAP_PERFMON; running as a plain init";

/// A helper that fails this soon after its start is taken to lack privileges.
const TRACE_STARTUP: Duration = Duration::from_secs(1);

struct Helper {
    pid: i32,
    started: Instant,
    /// When it was told to stop; after the grace it gets SIGKILL.
    stopping: Option<Instant>,
    killed: bool,
}

struct Init {
    cfg: Config,
    procfs: Option<ProcFs>,
    terminal: Option<Terminal>,
    main: i32,
    main_ended: Option<Ended>,
    helper: Option<Helper>,
    shutdown: Option<Shutdown>,
    knowledge: Option<Knowledge>,
    stats: Stats,
    own: i32,
}

pub fn run(cfg: Config) -> anyhow::Result<ExitCode> {
    // SAFETY: getppid/prctl/chdir take no pointers we keep.
    let parent = unsafe { libc::getppid() };
    let set = signals::take_over()?;
    if let Some(sig) = cfg.pdeathsig {
        // SAFETY: as above.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) } != 0 {
            bail!("--pdeathsig: {}", std::io::Error::last_os_error());
        }
    }
    let own = std::process::id() as i32;
    if own != 1 {
        become_subreaper(cfg.subreaper_required)?;
    }
    let procfs = ProcFs::open();
    let terminal = Terminal::find();
    let verbose = cfg.verbose;
    let mut init = Init {
        procfs,
        terminal,
        main: 0,
        main_ended: None,
        helper: None,
        shutdown: None,
        knowledge: (verbose > 0).then(Knowledge::default),
        stats: Stats::default(),
        own,
        cfg,
    };
    let start_dir = spawn::StartDir::leave();
    if let Some(file) = init.cfg.trace_log.clone() {
        match spawn::trace_helper(&file, verbose > 0, start_dir.as_ref()) {
            Ok(pid) => {
                spawn::await_trace_ready(pid, &file, TRACE_STARTUP * 10);
                init.helper = Some(Helper {
                    pid,
                    started: Instant::now(),
                    stopping: None,
                    killed: false,
                })
            }
            Err(_) => say(format_args!("{TRACE_FALLBACK}")),
        }
    }
    init.main = match spawn::main_child(&init.cfg.command, terminal, start_dir.as_ref()) {
        Ok(pid) => pid,
        Err(err) => {
            say(format_args!("{}", err.message));
            init.abandon_helper();
            return Ok(ExitCode::from(err.code));
        }
    };
    if verbose > 1 {
        say(format_args!("started child {}", init.main));
    }
    // Holding the start directory would pin its mount; the child keeps it.
    if start_dir.is_none() {
        // SAFETY: the path is a valid C string.
        unsafe { libc::chdir(c"/".as_ptr()) };
    }
    drop(start_dir);
    if let Some(sig) = init.cfg.pdeathsig {
        // SAFETY: no pointers.
        if unsafe { libc::getppid() } != parent {
            // The parent died before the prctl took effect, so the signal will never come.
            init.on_signal(sig);
        }
    }
    Ok(init.run_loop(&set))
}

fn become_subreaper(required: bool) -> anyhow::Result<()> {
    // SAFETY: no pointers.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if required {
        bail!("cannot register as child subreaper: {err}");
    }
    say(format_args!(
        "warning: not PID 1 and cannot register as child subreaper ({err}); orphans will go to the system's init instead"
    ));
    Ok(())
}

impl Init {
    fn run_loop(&mut self, set: &libc::sigset_t) -> ExitCode {
        loop {
            match signals::wait(set, self.timeout()) {
                Woken::TimedOut => self.on_timeout(),
                Woken::Signal(info) => {
                    let woke = Instant::now();
                    if info.si_signo == libc::SIGCHLD {
                        self.on_sigchld(woke);
                    } else {
                        let own_doing = matches!(info.si_code, libc::SI_USER | libc::SI_TKILL)
                            // SAFETY: si_pid is valid for SI_USER/SI_TKILL.
                            && unsafe { info.si_pid() } == self.own;
                        // A signal init caused itself (SIGPIPE from a closed stderr) is not
                        // the container's to see.
                        if !own_doing {
                            self.on_signal(info.si_signo);
                        }
                    }
                    if let (Some(k), Some(p)) = (self.knowledge.as_mut(), self.procfs.as_ref()) {
                        k.observe(p, self.main);
                    }
                }
            }
            if let Some(code) = self.progress() {
                return code;
            }
        }
    }

    fn tree(&self) -> Tree<'_> {
        Tree {
            procfs: self.procfs.as_ref(),
            main: self.main,
            helper: self.helper.as_ref().map(|h| h.pid),
            process_group: self.cfg.process_group,
        }
    }

    fn timeout(&self) -> Option<Duration> {
        let grace = self.shutdown.as_ref().map(Shutdown::remaining);
        let helper = self.helper.as_ref().and_then(|h| {
            let since = h.stopping.filter(|_| !h.killed)?;
            Some((since + self.cfg.grace).saturating_duration_since(Instant::now()))
        });
        match (grace, helper) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_signal(&mut self, sig: i32) {
        let to = self.cfg.rewrites.map(sig);
        let verbose = self.cfg.verbose;
        if to == 0 {
            self.stats.dropped += 1;
            if verbose > 1 {
                say(format_args!("dropped {}", signals::name(sig)));
            }
            return;
        }
        self.stats.forwarded += 1;
        let main_alive = self.main_ended.is_none();
        if main_alive {
            let target = if self.cfg.process_group {
                -self.main
            } else {
                self.main
            };
            signals::send(target, to);
            if verbose > 1 {
                say(format_args!("forwarded {} to {target}", signals::name(to)));
            }
        } else {
            let n = self.tree().signal_all(to, false, false);
            if verbose > 1 {
                say(format_args!(
                    "forwarded {} to {n} remaining processes",
                    signals::name(to)
                ));
            }
        }
        let stops_tree = matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT);
        if stops_tree && self.shutdown.is_none() {
            self.shutdown = Some(Shutdown::start(self.cfg.grace));
            let n = self.tree().signal_all(to, main_alive, true);
            if verbose > 0 {
                say(format_args!(
                    "{} received: sent {} to {n} other processes, SIGKILL in {}",
                    signals::name(sig),
                    signals::name(to),
                    report::human(self.cfg.grace)
                ));
            }
        }
    }

    fn on_sigchld(&mut self, woke: Instant) {
        let mut reaped = Vec::new();
        reap::reap_all(self.procfs.as_ref(), self.knowledge.as_mut(), woke, |r| {
            reaped.push(r)
        });
        for r in reaped {
            self.on_reaped(r);
        }
    }

    fn on_reaped(&mut self, r: Reaped) {
        if r.pid == self.main {
            self.stats.reaped += 1;
            self.main_ended = Some(r.ended);
            if self.cfg.verbose > 1 {
                say(format_args!("child {} {}", r.pid, r.ended));
            }
            return;
        }
        if let Some(h) = self.helper.as_ref().filter(|h| h.pid == r.pid) {
            let failed = r.ended != Ended::Exited(0);
            if h.stopping.is_none() && failed {
                if h.started.elapsed() <= TRACE_STARTUP {
                    say(format_args!("{TRACE_FALLBACK}"));
                } else {
                    say(format_args!(
                        "--trace-log helper {}; the trace log stops here",
                        r.ended
                    ));
                }
            }
            self.helper = None;
            return;
        }
        self.stats.reaped += 1;
        self.stats.adopted += 1;
        if self.cfg.verbose > 0 {
            report::reaped(&ReapLine {
                pid: r.pid,
                comm: r.comm.as_deref(),
                ended: r.ended,
                zombie_for: r.zombie_for,
                orphaned_by: r.orphaned_by.as_ref().map(|(p, c)| (*p, c.as_str())),
            });
        }
    }

    fn on_timeout(&mut self) {
        let now = Instant::now();
        if let Some(s) = self.shutdown.as_mut() {
            if s.killed {
                self.tree().signal_all(libc::SIGKILL, false, false);
            } else if now >= s.deadline {
                s.killed = true;
                let n = self.tree().signal_all(libc::SIGKILL, false, false);
                if self.cfg.verbose > 0 && n > 0 {
                    say(format_args!("grace period over: SIGKILL to {n} processes"));
                }
            }
        }
        let grace = self.cfg.grace;
        if let Some(h) = self.helper.as_mut()
            && let Some(since) = h.stopping
            && !h.killed
            && now >= since + grace
        {
            h.killed = true;
            signals::send(h.pid, libc::SIGKILL);
        }
    }

    /// After every event: start a shutdown if the child is gone but others remain, and say
    /// when init may exit.
    fn progress(&mut self) -> Option<ExitCode> {
        let ended = self.main_ended?;
        let left = match self.tree().anything_left() {
            Some(left) => left,
            None => {
                // Without /proc the helper cannot be told apart, so it stops now.
                self.stop_helper();
                has_children()
            }
        };
        if left {
            match &self.shutdown {
                None => {
                    self.shutdown = Some(Shutdown::start(self.cfg.grace));
                    let n = self.tree().signal_all(libc::SIGTERM, false, true);
                    if self.cfg.verbose > 0 {
                        say(format_args!(
                            "child {ended}: sent SIGTERM to {n} remaining processes, SIGKILL in {}",
                            report::human(self.cfg.grace)
                        ));
                    }
                }
                // Whatever was forked after the SIGKILL round gets the same.
                Some(s) if s.killed => {
                    self.tree().signal_all(libc::SIGKILL, false, false);
                }
                Some(_) => {}
            }
            return None;
        }
        if self.helper.is_some() {
            // The tree is gone, so the trace log is complete: only now stop the helper.
            self.stop_helper();
            return None;
        }
        Some(self.finish(ended))
    }

    fn stop_helper(&mut self) {
        if let Some(h) = self.helper.as_mut()
            && h.stopping.is_none()
        {
            h.stopping = Some(Instant::now());
            signals::send(h.pid, libc::SIGTERM);
        }
    }

    /// On exec failure there is no tree to log: the helper goes at once.
    fn abandon_helper(&mut self) {
        if let Some(h) = self.helper.take() {
            signals::send(h.pid, libc::SIGKILL);
            let mut status = 0;
            // SAFETY: waitpid writes only `status`.
            unsafe { libc::waitpid(h.pid, &mut status, 0) };
        }
    }

    fn finish(&mut self, ended: Ended) -> ExitCode {
        let mut code = ended.code();
        if u8::try_from(code).is_ok_and(|c| self.cfg.remap_exit.contains(&c)) {
            code = 0;
        }
        if let Some(t) = self.terminal {
            t.restore(self.main);
        }
        if self.cfg.verbose > 0 {
            report::summary(Some(ended), code, &self.stats);
        }
        ExitCode::from(u8::try_from(code).unwrap_or(255))
    }
}
