//! Section 1: kernel overhead. Each workload untraced and under each observer, interleaved
//! (untraced, tracer, bpftrace, forkstat, untraced again, untraced, …), each observer started
//! and attached before the workload and stopped after it. Then, with the kernel's BPF run-time
//! statistics on, the CPU time the tracer's and bpftrace's probes take per unit of work.

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    Context,
    bpf_stats::{self, StatsOn},
    report::Section,
    runners::Observer,
    stats::{Summary, thousands},
    workloads::Workload,
};

#[derive(Default)]
struct Cell {
    rates: Vec<f64>,
    /// Rate over the same round's untraced rate.
    ratios: Vec<f64>,
    /// Work per CPU-second over the same round's untraced work per CPU-second: the cost of
    /// the probes in the workload's own context, which other load on the machine hardly moves.
    cpu_ratios: Vec<f64>,
    /// CPU the observer process itself used during the run, in % of one CPU.
    observer_cpu: Vec<f64>,
    lost: Vec<u64>,
    /// CPU time per unit of work, in ns.
    cpu_per_op_ns: Vec<f64>,
    /// In-kernel run time of the observer's probes per unit of work, in ns (separate runs).
    probe_ns_per_op: Vec<f64>,
    /// The same less what an empty program measures per run (see `bpf_stats::cost_per_run`).
    probe_net_ns_per_op: Vec<f64>,
    /// Program runs per unit of work in the same runs.
    probe_runs_per_op: Vec<f64>,
}

pub fn run(ctx: &Context) -> Result<Section> {
    let observers = ctx.observers.available();
    let mut cells: Vec<Vec<Cell>> = Workload::ALL
        .iter()
        .map(|_| observers.iter().map(|_| Cell::default()).collect())
        .collect();
    each_round("overhead", ctx.args.repeats, |w, workload| {
        let mut untraced = None;
        for (o, &observer) in observers.iter().enumerate() {
            let running = ctx.observers.start(observer, &[])?;
            let cpu_before = running.cpu_s();
            let run = ctx.workloads.run(workload, ctx.args.run_ms, 1)?;
            let observer_cpu = running.cpu_s() - cpu_before;
            let stopped = running.stop()?;
            let base = *untraced.get_or_insert(run);
            let cell = &mut cells[w][o];
            cell.rates.push(run.rate);
            cell.ratios.push(run.rate / base.rate);
            cell.cpu_ratios.push(base.cpu_per_op_ns / run.cpu_per_op_ns);
            cell.cpu_per_op_ns.push(run.cpu_per_op_ns);
            cell.observer_cpu
                .push(observer_cpu / (ctx.args.run_ms as f64 / 1000.0) * 100.0);
            cell.lost.extend(stopped.lost);
        }
        Ok(())
    })?;
    let mut probe_notes = Vec::new();
    if stats_already_on() {
        probe_notes.push(
            "- The kernel's BPF statistics were on before the bench started \
             (kernel.bpf_stats_enabled = 1): the throughput runs include their cost."
                .to_owned(),
        );
    }
    let mut stats_cost = None;
    match StatsOn::enable() {
        Ok(_stats) => {
            match bpf_stats::cost_per_run() {
                Ok(cost) => {
                    probe_notes.push(format!(
                        "- An empty program measures {cost:.0} ns a run on this machine, mostly \
                         the statistics' own clock reads; probe CPU is net of that, per run."
                    ));
                    stats_cost = Some(cost);
                }
                Err(err) => probe_notes.push(format!(
                    "- Probe CPU includes the statistics' own cost: it could not be measured \
                     ({err:#})."
                )),
            }
            measure_probes(ctx, &observers, &mut cells, stats_cost.unwrap_or(0.0))?
        }
        Err(err) => probe_notes.push(format!(
            "- Probe CPU not measured: the kernel's BPF statistics could not be turned on \
             ({err})."
        )),
    }

    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut notes = Vec::new();
    for (w, workload) in Workload::ALL.into_iter().enumerate() {
        let mut by_observer = serde_json::Map::new();
        let untraced_cpu_ns = untraced_cpu_per_op(&cells[w]);
        for (o, observer) in observers.iter().enumerate() {
            let cell = &cells[w][o];
            let rate = Summary::of(&cell.rates);
            let ratio = Summary::of(&cell.ratios);
            let cpu_ratio = Summary::of(&cell.cpu_ratios);
            let observer_cpu = Summary::of(&cell.observer_cpu);
            let lost = match observer {
                Observer::Untraced | Observer::UntracedAgain => "".to_owned(),
                Observer::Tracer => lost_text(&cell.lost),
                // bpftrace reports loss in its output, which goes to /dev/null here; forkstat
                // has no loss report (the proc connector drops on socket overrun silently).
                _ => "not reported".to_owned(),
            };
            rows.push(vec![
                workload.label().to_owned(),
                observer.name().to_owned(),
                rate.map_or("—".into(), |s| s.rate_text()),
                match observer {
                    Observer::Untraced => "1".to_owned(),
                    _ => ratio.map_or("—".into(), |s| s.ratio_text()),
                },
                match observer {
                    Observer::Untraced => "1".to_owned(),
                    _ => cpu_ratio.map_or("—".into(), |s| s.ratio_text()),
                },
                match observer {
                    Observer::Untraced | Observer::UntracedAgain => "".to_owned(),
                    _ => observer_cpu.map_or("—".into(), |s| format!("{:.0}%", s.median)),
                },
                probe_text(*observer, cell, untraced_cpu_ns),
                lost,
            ]);
            by_observer.insert(
                observer.name().to_owned(),
                json!({
                    "rate_per_s": rate.map(|s| s.json()),
                    "ratio_to_untraced": ratio.map(|s| s.json()),
                    "work_per_cpu_ratio_to_untraced": cpu_ratio.map(|s| s.json()),
                    "observer_cpu_percent": observer_cpu.map(|s| s.json()),
                    "probe_ns_per_op": Summary::of(&cell.probe_ns_per_op).map(|s| s.json()),
                    "probe_net_ns_per_op": Summary::of(&cell.probe_net_ns_per_op)
                        .map(|s| s.json()),
                    "probe_runs_per_op": Summary::of(&cell.probe_runs_per_op).map(|s| s.json()),
                    "rates": cell.rates,
                    "lost": (*observer == Observer::Tracer).then_some(&cell.lost),
                }),
            );
        }
        results.push(json!({
            "workload": workload.mode(),
            "label": workload.label(),
            "observers": Value::Object(by_observer),
        }));
        notes.push(verdict(workload, &observers, &cells[w]));
    }
    notes.extend(probe_notes);
    Ok(Section {
        title: format!(
            "1. Kernel overhead: throughput, median (±half range) over {} interleaved rounds of \
             {} ms; ratios to untraced in the same round, median (min–max); work per CPU-second \
             counts the workload's own CPU time (probes included); observer CPU is the \
             observer's own, in % of one CPU; probe CPU per unit is the in-kernel run time of \
             the observer's BPF programs over {} separate runs{}, median, and in % of the \
             untraced unit's CPU time; untraced again is a second untraced run, last in each \
             round: its ratio is this machine's noise",
            ctx.args.repeats,
            ctx.args.run_ms,
            ctx.args.probe_repeats,
            if stats_cost.is_some() {
                ", less what an empty program measures per run"
            } else {
                ""
            }
        ),
        header: [
            "workload",
            "observer",
            "throughput",
            "throughput ratio",
            "work per CPU-s ratio",
            "observer CPU",
            "probe CPU per unit",
            "lost",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
        json: json!({
            "repeats": ctx.args.repeats,
            "probe_repeats": ctx.args.probe_repeats,
            "stats_cost_ns_per_run": stats_cost,
            "run_ms": ctx.args.run_ms,
            "workloads": results,
        }),
    })
}

/// Runs each workload under each observer with BPF programs, with the kernel's statistics on
/// (the caller holds them on), and records the programs' run time per unit of work: host-wide
/// run time during the run, over the workload's units, as counted and less `stats_cost` ns per
/// program run. Statistics add clock reads to every program run, so these are runs of their
/// own, not the throughput runs.
fn measure_probes(
    ctx: &Context,
    observers: &[Observer],
    cells: &mut [Vec<Cell>],
    stats_cost: f64,
) -> Result<()> {
    each_round("probe CPU", ctx.args.probe_repeats, |w, workload| {
        for (o, &observer) in observers.iter().enumerate() {
            if !matches!(observer, Observer::Tracer | Observer::Bpftrace) {
                continue;
            }
            let running = ctx.observers.start(observer, &[])?;
            let before = running.probe_time();
            let run = ctx.workloads.run(workload, ctx.args.run_ms, 1)?;
            let after = running.probe_time();
            running.stop()?;
            if let (Some(before), Some(after)) = (before, after) {
                let spent = after.since(before);
                let units = run.ops.max(1) as f64;
                let cell = &mut cells[w][o];
                cell.probe_ns_per_op.push(spent.ns as f64 / units);
                cell.probe_net_ns_per_op
                    .push(spent.net_ns(stats_cost) / units);
                cell.probe_runs_per_op.push(spent.runs as f64 / units);
            }
        }
        Ok(())
    })
}

/// Calls `f` with every workload (and its index) in each of `repeats` rounds, saying on stderr
/// which `what` round it is at.
fn each_round(
    what: &str,
    repeats: u32,
    mut f: impl FnMut(usize, Workload) -> Result<()>,
) -> Result<()> {
    for round in 0..repeats {
        for (w, workload) in Workload::ALL.into_iter().enumerate() {
            eprintln!(
                "bench: {what} round {}/{repeats}: {}",
                round + 1,
                workload.label()
            );
            f(w, workload)?;
        }
    }
    Ok(())
}

/// Whether the kernel's BPF statistics are on host-wide (`kernel.bpf_stats_enabled`).
fn stats_already_on() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|v| v.trim() == "1")
}

/// Median CPU time of one unit of work, untraced (the throughput rounds' untraced runs).
fn untraced_cpu_per_op(cells: &[Cell]) -> Option<f64> {
    Summary::of(&cells.first()?.cpu_per_op_ns).map(|s| s.median)
}

/// `5.9 µs (2.1%)`: probe CPU per unit, and its share of the untraced unit's CPU time.
fn probe_text(observer: Observer, cell: &Cell, untraced_cpu_ns: Option<f64>) -> String {
    match observer {
        Observer::Tracer | Observer::Bpftrace => {}
        Observer::Forkstat => return "no BPF".to_owned(),
        _ => return String::new(),
    }
    let Some(probe) = Summary::of(&cell.probe_net_ns_per_op) else {
        return "—".to_owned();
    };
    let share = untraced_cpu_ns
        .filter(|&ns| ns > 0.0)
        .map_or(String::new(), |ns| {
            format!(" ({:.1}%)", probe.median / ns * 100.0)
        });
    format!("{:.2} µs{share}", probe.median / 1000.0)
}

fn lost_text(lost: &[u64]) -> String {
    let total: u64 = lost.iter().sum();
    format!(
        "{} (max {} in a run)",
        thousands(total),
        lost.iter().max().copied().unwrap_or(0)
    )
}

/// The targets for one workload: tracer ≥ 0.99 of untraced, ≥ bpftrace, nothing lost.
fn verdict(workload: Workload, observers: &[Observer], cells: &[Cell]) -> String {
    // The median of one figure of `observer`'s cell, when it has that observer and figure.
    let median = |observer, figure: fn(&Cell) -> &Vec<f64>| {
        observers
            .iter()
            .position(|o| *o == observer)
            .and_then(|i| Summary::of(figure(&cells[i])))
            .map(|s| s.median)
    };
    let ratio: fn(&Cell) -> &Vec<f64> = |c| &c.ratios;
    let cpu_ratio: fn(&Cell) -> &Vec<f64> = |c| &c.cpu_ratios;
    let probe: fn(&Cell) -> &Vec<f64> = |c| &c.probe_net_ns_per_op;
    let Some(tracer) = median(Observer::Tracer, ratio) else {
        return format!("- {}: no tracer measurement", workload.label());
    };
    let lost: u64 = observers
        .iter()
        .position(|o| *o == Observer::Tracer)
        .map_or(0, |i| cells[i].lost.iter().sum());
    let mut parts = vec![format!(
        "throughput ratio {tracer:.3} {} the 0.99 target",
        if tracer >= 0.99 { "meets" } else { "misses" }
    )];
    if let Some(bpftrace) = median(Observer::Bpftrace, ratio) {
        parts.push(format!(
            "{} bpftrace ({bpftrace:.3})",
            if tracer >= bpftrace {
                "at least as good as"
            } else {
                "worse than"
            }
        ));
    }
    if let (Some(cpu), Some(bpftrace)) = (
        median(Observer::Tracer, cpu_ratio),
        median(Observer::Bpftrace, cpu_ratio),
    ) {
        parts.push(format!(
            "work per CPU-second {cpu:.3} (bpftrace {bpftrace:.3})"
        ));
    }
    parts.push(format!("{lost} lost"));
    if let (Some(tracer), Some(untraced)) = (
        median(Observer::Tracer, probe),
        untraced_cpu_per_op(cells).filter(|&ns| ns > 0.0),
    ) {
        let bpftrace = median(Observer::Bpftrace, probe).map_or(String::new(), |b| {
            format!(" (bpftrace {:.1}%)", b / untraced * 100.0)
        });
        parts.push(format!(
            "probes {:.1}% of the unit's CPU time{bpftrace}",
            tracer / untraced * 100.0
        ));
    }
    if let Some(again) = median(Observer::UntracedAgain, ratio) {
        parts.push(format!("no observer at all {again:.3}"));
    }
    format!("- {}: {}.", workload.label(), parts.join(", "))
}
