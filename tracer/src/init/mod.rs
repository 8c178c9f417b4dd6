//! `tracer init`: a reaping, signal-forwarding PID 1 for containers.
//!
//! One thread, every signal blocked, and one blocking `sigwaitinfo` as the only wait: SIGCHLD
//! wakes it to reap, any other signal is forwarded, and a timeout exists only while a grace
//! period runs. No async runtime, no descriptors of its own.

mod inherited;
mod procfs;
mod reap;
mod report;
mod shutdown;
mod signals;
mod spawn;
mod supervise;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};

const MORE_HELP: &str = "\
Environment (for images, where flags are awkward):
  TRACER_INIT_PROCESS_GROUP=1   same as -g
  TRACER_INIT_SUBREAPER=1       same as -s
  TRACER_INIT_VERBOSE=N         same as N times -v

Job control: SIGTSTP, SIGTTIN and SIGTTOU sent to init are forwarded unchanged, like every other
signal, to the child (or with -g its group); init itself never stops. The child stops, or handles
them, as it would without init; a SIGCONT sent to init resumes it. When init is in the
foreground of a controlling terminal, the child's process group is made the foreground group,
so Ctrl-C, Ctrl-Z and terminal reads reach the child directly.

Shutdown: on SIGTERM, SIGINT or SIGQUIT (after forwarding it), and when the child exits while
other descendants remain, every remaining descendant gets the signal (SIGTERM when the child just
exited), then SIGKILL after --grace. init exits only when nothing is left to reap, with the
child's exit code, or 128+N if signal N killed it. 127: COMMAND not found; 126: not executable.

See docs/init.md.";

/// Options of `tracer init`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = MORE_HELP)]
pub struct InitArgs {
    /// Forward signals to the child's whole process group instead of the child alone.
    #[arg(short = 'g', long)]
    pub process_group: bool,

    /// Fail instead of only warning when init, not being PID 1, cannot register as child
    /// subreaper (it always tries when not PID 1).
    #[arg(short = 's', long)]
    pub subreaper: bool,

    /// Forward signal FROM as TO instead (names or numbers); TO 0 drops FROM. Repeatable.
    #[arg(long, value_name = "FROM:TO")]
    pub rewrite: Vec<String>,

    /// Exit 0 when the exit status (the child's code, or 128+signal) is CODE. Repeatable.
    #[arg(long, value_name = "CODE")]
    pub remap_exit: Vec<u8>,

    /// Ask for signal SIG when init's own parent dies; it is then forwarded like any other.
    #[arg(long, value_name = "SIG")]
    pub pdeathsig: Option<String>,

    /// How long descendants get to exit after the shutdown signal before SIGKILL
    /// (e.g. 10, 2.5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub grace: String,

    /// Report each reaped process other than the child, and a summary on exit; twice: also
    /// each signal forwarded.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Also write a JSON Lines trace of the subtree to FILE (needs CAP_BPF and CAP_PERFMON;
    /// without them init says so once and runs as a plain init).
    #[arg(long, value_name = "FILE")]
    pub trace_log: Option<PathBuf>,

    /// The command to run as the only direct child.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// Flags and environment, checked and merged.
pub struct Config {
    pub command: Vec<OsString>,
    pub process_group: bool,
    pub subreaper_required: bool,
    pub rewrites: signals::Rewrites,
    pub remap_exit: Vec<u8>,
    pub pdeathsig: Option<i32>,
    pub grace: Duration,
    pub verbose: u8,
    pub trace_log: Option<PathBuf>,
}

fn env_flag(name: &str) -> anyhow::Result<bool> {
    match std::env::var(name) {
        Err(_) => Ok(false),
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "" | "0" | "false" | "no" | "off" => Ok(false),
            _ => bail!("{name}={v:?}: expected 1 or 0"),
        },
    }
}

fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    crate::duration::parse_duration(text).map_err(|e| anyhow::anyhow!("--grace: {e}"))
}

impl Config {
    fn resolve(args: InitArgs) -> anyhow::Result<Self> {
        let env_verbose = match std::env::var("TRACER_INIT_VERBOSE") {
            Err(_) => 0,
            Ok(v) if v.trim().is_empty() => 0,
            Ok(v) => v
                .trim()
                .parse::<u8>()
                .with_context(|| format!("TRACER_INIT_VERBOSE={v:?}: expected a number"))?,
        };
        let pdeathsig = match &args.pdeathsig {
            None => None,
            Some(s) => {
                let sig = signals::parse(s, false).context("--pdeathsig")?;
                if !signals::catchable(sig) || sig == libc::SIGCHLD {
                    bail!(
                        "--pdeathsig {s}: init could not receive {}",
                        signals::name(sig)
                    );
                }
                Some(sig)
            }
        };
        Ok(Self {
            process_group: args.process_group || env_flag("TRACER_INIT_PROCESS_GROUP")?,
            subreaper_required: args.subreaper || env_flag("TRACER_INIT_SUBREAPER")?,
            rewrites: signals::Rewrites::parse(&args.rewrite)?,
            remap_exit: args.remap_exit,
            pdeathsig,
            grace: parse_duration(&args.grace)?,
            verbose: args.verbose.max(env_verbose),
            // Absolute now: init leaves its start directory before the helper starts.
            trace_log: args
                .trace_log
                .map(std::path::absolute)
                .transpose()
                .context("--trace-log")?,
            command: args.command,
        })
    }
}

/// Runs init until the command and every adopted process are gone; returns the exit status.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    supervise::run(Config::resolve(args)?)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn grace_durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
