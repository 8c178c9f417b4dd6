//! `cargo xtask fuzz`: long cargo-fuzz runs of the targets in `fuzz/` (libFuzzer, nightly).
//! Targets: `decode` (arbitrary bytes as a ring buffer record) and `replay` (arbitrary bytes as
//! a `tracer replay` log). The test suite has short deterministic stand-ins
//! (`tests/decode_hostile.rs`, `tests/replay_hostile.rs`) that need neither.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::build::workspace_root;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// The fuzz target (a file in fuzz/fuzz_targets/): decode or replay.
    #[arg(default_value = "decode")]
    pub target: String,
    /// How long to fuzz, in seconds.
    #[arg(long, default_value_t = 600)]
    pub seconds: u64,
    /// Parallel fuzzing jobs.
    #[arg(long, default_value_t = 1)]
    pub jobs: u32,
}

pub fn run(args: &FuzzArgs) -> Result<()> {
    let root = workspace_root();
    let targets = root.join("fuzz/fuzz_targets");
    if !targets.join(format!("{}.rs", args.target)).is_file() {
        bail!(
            "no fuzz target {:?}: the targets are the files in {}",
            args.target,
            targets.display()
        );
    }
    ensure_cargo_fuzz()?;
    let mut cmd = Command::new("cargo");
    cmd.args(["+nightly", "fuzz", "run", "--fuzz-dir", "fuzz"])
        .arg(&args.target)
        .arg("--")
        .arg(format!("-max_total_time={}", args.seconds));
    if args.jobs > 1 {
        // With -jobs, libFuzzer runs workers in child processes logging to fuzz-N.log.
        cmd.arg(format!("-jobs={}", args.jobs))
            .arg(format!("-workers={}", args.jobs));
    }
    let status = cmd
        .current_dir(&root)
        // The decoder and the log reader need no probes: skip the BPF build inside the
        // sanitizer build.
        .env("AYA_BUILD_SKIP", "1")
        .status()
        .context("running cargo fuzz")?;
    if !status.success() {
        bail!(
            "cargo fuzz found a failure or could not run (crash inputs are in fuzz/artifacts/{})",
            args.target
        );
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz");
    let status = Command::new("cargo")
        .args(["install", "--locked", "cargo-fuzz"])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz failed");
    }
    Ok(())
}
