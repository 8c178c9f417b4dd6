//! `cargo xtask`: set-up, build, run and test of the tracer workspace.

mod bench;
mod build;
mod fuzz;
mod sysroot;
mod test;
mod toolchain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Set up, build, run and test the tracer")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check the toolchain and install what is missing (bpf-linker, a BPF sysroot).
    Setup,
    /// Set up, then build target/release/tracer with its probes embedded.
    Build,
    /// Build, then run target/release/tracer with ARGS as root.
    Run {
        /// Arguments for tracer, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then run every unit and integration test, kernel tests as root.
    Test {
        /// Only tests whose name contains this.
        filter: Option<String>,
    },
    /// Measure overhead, signal accounting and ring buffer loss against bpftrace and forkstat
    /// (as root; installs them); prints a table and writes target/bench/results.json.
    Bench(bench::BenchArgs),
    /// Fuzz the wire decoder with cargo-fuzz (nightly; installs cargo-fuzz if missing).
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => build::setup().map(|_| ()),
        Command::Build => build::build().map(|_| ()),
        Command::Run { args } => build::run(&args),
        Command::Test { filter } => test::run(filter.as_deref()),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}
