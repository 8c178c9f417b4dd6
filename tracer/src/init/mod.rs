//! `tracer init`: a reaping, signal-forwarding PID 1 for containers.

use std::process::ExitCode;

/// Options of `tracer init`.
#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// The command to run as the only direct child.
    #[arg(last = true, required = true)]
    pub command: Vec<std::ffi::OsString>,
}

/// Runs init until the command and every adopted process are gone; returns the exit status.
pub fn run(args: InitArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("tracer init is not available yet")
}
