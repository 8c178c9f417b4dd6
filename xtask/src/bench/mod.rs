//! `cargo xtask bench`: what the tracer costs and what it loses, side by side with what people
//! would otherwise run, on this machine, now.
//!
//! Each section is a module returning a [`report::Section`]: (1) kernel overhead, (2) signal
//! storm, (3) ring buffer saturation. The engine/replay throughput and memory section and the
//! init latency section (issue 5, sections 4 and 5) need `tracer replay` and `tracer init`,
//! which this branch does not have yet; they are added as two more modules and two more lines
//! in [`run`] when those land.

mod overhead;
mod report;
mod runners;
mod saturation;
mod signals;
mod stats;
mod tools;
mod workloads;

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::build;

/// Options of `cargo xtask bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Interleaved rounds for the overhead section.
    #[arg(long, default_value_t = 7)]
    pub repeats: u32,
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
    /// Run only these sections (comma-separated numbers: 1 overhead, 2 signals, 3 saturation).
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
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
    let observers = runners::Observers::new(&tracer, &tools, &dir)?;
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
            other => bail!("no bench section {other}: the sections are 1, 2 and 3"),
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
