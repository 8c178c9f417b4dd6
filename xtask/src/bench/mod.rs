//! `cargo xtask bench`: what the tracer costs and what it loses, side by side with what people
//! would otherwise run, on this machine, now.
//!
//! Each section is a module returning a [`report::Section`]: (1) kernel overhead, (2) signal
//! storm, (3) ring buffer saturation, (4) engine and replay throughput and memory, (5) `tracer
//! init` against tini and dumb-init.

mod bpf_stats;
mod engine;
mod init;
mod overhead;
mod report;
mod runners;
mod saturation;
mod signals;
mod stats;
mod tools;
mod workloads;

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};

use crate::build;

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Interleaved rounds for the overhead section.
    #[arg(long, default_value_t = 7)]
    pub repeats: u32,
    /// Runs per workload and observer with the kernel's BPF statistics on, for the probes'
    /// CPU time (overhead section).
    #[arg(long, default_value_t = 3)]
    pub probe_repeats: u32,
    /// Length of one workload run, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub run_ms: u64,
    /// Signals sent in one signal storm run.
    #[arg(long, default_value_t = 1_000_000)]
    pub signals: u64,
    /// Rounds of the signal storm.
    #[arg(long, default_value_t = 3)]
    pub signal_repeats: u32,
    /// Rounds over all ring sizes in the saturation section.
    #[arg(long, default_value_t = 2)]
    pub saturation_repeats: u32,
    /// Rounds of the engine section (engine alone, replay, live-process memory).
    #[arg(long, default_value_t = 5)]
    pub engine_repeats: u32,
    /// Churned processes in the log `tracer replay` reads for its lines/s (3 lines each).
    #[arg(long, default_value_t = 1_000_000)]
    pub replay_processes: u64,
    /// Processes churned through one `tracer replay -` while its memory is sampled: ten million,
    /// about 90 s on a 2-core VM.
    #[arg(long, default_value_t = 10_000_000)]
    pub churn: u64,
    /// Interleaved rounds of the init section.
    #[arg(long, default_value_t = 3)]
    pub init_repeats: u32,
    /// Run only these sections (comma-separated numbers: 1 overhead, 2 signals, 3 saturation,
    /// 4 engine, 5 init).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3,4,5")]
    pub sections: Vec<u32>,
}

/// What every section uses.
pub struct Context {
    pub args: BenchArgs,
    pub workloads: workloads::Workloads,
    pub observers: runners::Observers,
    /// `target/bench`: the workload binary, scratch files, results.json.
    pub dir: PathBuf,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if !build::is_root() {
        bail!("the bench loads probes and installs packages: run it as root");
    }
    let (_, tracer) = build::build()?;
    let dir = crate::toolchain::target_dir(&build::workspace_root()).join("bench");
    let tools = tools::ensure();
    let workloads = workloads::Workloads::compile(&dir)?;
    // A copy of its own: a `cargo test --release` (the engine section runs one) links
    // target/release/tracer again, the plain dynamic way, and the sections after it must
    // measure the binary users run.
    let copy = dir.join("tracer");
    std::fs::copy(&tracer, &copy)
        .with_context(|| format!("cannot copy {} to {}", tracer.display(), copy.display()))?;
    let observers = runners::Observers::new(&copy, &tools, &dir)?;
    let ctx = Context {
        args,
        workloads,
        observers,
        dir: dir.clone(),
    };

    let mut sections = Vec::new();
    for number in &ctx.args.sections {
        sections.push(match number {
            1 => overhead::run(&ctx)?,
            2 => signals::run(&ctx)?,
            3 => saturation::run(&ctx)?,
            4 => engine::run(&ctx)?,
            5 => init::run(&ctx)?,
            other => bail!("no bench section {other}: the sections are 1 to 5"),
        });
    }

    let report = report::Report {
        machine: machine(),
        method: method(&ctx),
        skipped: tools.skipped,
        sections,
    };
    println!("{}", report.markdown());
    let json = dir.join("results.json");
    report.write_json(&json)?;
    eprintln!("bench: wrote {}", json.display());
    Ok(())
}

/// CPUs, kernel and load: what the numbers were measured on (the README names the machine).
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown kernel".into());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mut line = format!("{cpus} CPUs ({model}), kernel {kernel}");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    if let Some(one) = load.split_whitespace().next() {
        line.push_str(&format!(", load average at the start {one}"));
    }
    line
}

fn method(ctx: &Context) -> Vec<String> {
    let tracer = ctx.observers.tracer().display();
    vec![format!(
        "Throughput is what each workload does per second of its own clock; only ratios \
             to the untraced runs of the same round are targets (absolute rates on a shared VM \
             are context). The tracer is `{tracer} trace -o /dev/null` (all probes), bpftrace \
             runs a script on the same tracepoints printing one line per event to /dev/null, \
             forkstat is `forkstat -e all` (proc connector) to /dev/null. Each observer is started \
             and attached (its BPF links, perf events or netlink socket open, then 300 ms) \
             before the run and stopped with SIGINT after it; the tracer's loss is the `N lost` \
             of its summary line."
    )]
}
