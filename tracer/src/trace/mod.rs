//! `tracer trace`: load the probes and stream events.

use std::process::ExitCode;

/// Options of `tracer trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {}

/// Runs the tracer until its end condition; returns the exit status.
pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("not yet")
}
