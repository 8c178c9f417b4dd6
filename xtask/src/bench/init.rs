//! Section 5: `tracer init` against tini and dumb-init, interleaved in each round. Each init
//! runs as PID 1 of a new pid namespace (`unshare --pid --fork`), as in a container, with the
//! workload as its child: reap latency (an orphan's exit to its release, `workload orphans`),
//! signal-forward latency (kill of init to the child's handler, `workload forward`), and the
//! idle resident set of `INIT sleep 1000`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use super::{Context, report::Section, signals::memory_kib, stats::Summary, tools};

/// Measurements per run of the workload.
const PER_RUN: u32 = 500;

struct Init {
    name: &'static str,
    /// The command line up to the child's.
    argv: Vec<PathBuf>,
}

fn inits(tracer: &Path) -> Vec<Init> {
    let mut all = vec![Init {
        name: "tracer init",
        argv: vec![tracer.to_path_buf(), "init".into(), "--".into()],
    }];
    if let Some(tini) = tools::find("tini") {
        all.push(Init {
            name: "tini",
            argv: vec![tini, "--".into()],
        });
    }
    if let Some(dumb) = tools::find("dumb-init") {
        all.push(Init {
            name: "dumb-init",
            argv: vec![dumb],
        });
    }
    all
}

#[derive(Default)]
struct Results {
    reap_ns: Vec<f64>,
    reap_lost: u64,
    forward_ns: Vec<f64>,
    forward_lost: u64,
    /// p99 of each run, for the spread.
    reap_p99s: Vec<f64>,
    forward_p99s: Vec<f64>,
    rss_kib: Vec<f64>,
}

/// Runs `workload MODE PER_RUN` under `init` as PID 1 of a new pid namespace.
fn latencies(init: &Init, workload: &Path, mode: &str) -> Result<(Vec<f64>, u64)> {
    let output = Command::new("unshare")
        .args(["--pid", "--fork", "--"])
        .args(&init.argv)
        .arg(workload)
        .args([mode, &PER_RUN.to_string()])
        .stderr(Stdio::null())
        .output()
        .context("running unshare (util-linux)")?;
    if !output.status.success() {
        bail!("{} {mode} failed: {}", init.name, output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lat: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("lat=")?.parse().ok())
        .collect();
    let lost = stdout.lines().filter(|l| *l == "lost=1").count() as u64;
    Ok((lat, lost))
}

/// VmRSS of `INIT sleep 1000` one second after its start.
fn idle_rss(init: &Init) -> Result<u64> {
    let mut child = Command::new(&init.argv[0])
        .args(&init.argv[1..])
        .args(["sleep", "1000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", init.name))?;
    sleep(Duration::from_secs(1));
    let rss = memory_kib(child.id(), "VmRSS:");
    // SIGTERM: each init forwards it to sleep and exits with it.
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait()?;
    rss.with_context(|| format!("no VmRSS for {}", init.name))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

fn us(ns: f64) -> String {
    format!("{:.0} µs", ns / 1000.0)
}

pub fn run(ctx: &Context) -> Result<Section> {
    let inits = inits(ctx.observers.tracer());
    let workload = ctx.workloads.path();
    let mut results: Vec<Results> = inits.iter().map(|_| Results::default()).collect();
    for round in 0..ctx.args.init_repeats {
        eprintln!(
            "bench: init round {}/{}: {}",
            round + 1,
            ctx.args.init_repeats,
            inits.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")
        );
        for (init, r) in inits.iter().zip(&mut results) {
            let (lat, lost) = latencies(init, workload, "orphans")?;
            r.reap_p99s.push(percentile(&sorted(&lat), 0.99));
            r.reap_ns.extend(lat);
            r.reap_lost += lost;
            let (lat, lost) = latencies(init, workload, "forward")?;
            r.forward_p99s.push(percentile(&sorted(&lat), 0.99));
            r.forward_ns.extend(lat);
            r.forward_lost += lost;
            r.rss_kib.push(idle_rss(init)? as f64);
        }
    }

    let mut rows = Vec::new();
    let mut json_inits = Vec::new();
    let mut figures = Vec::new();
    for (init, r) in inits.iter().zip(&results) {
        let reap = sorted(&r.reap_ns);
        let fwd = sorted(&r.forward_ns);
        let (reap_p50, reap_p99) = (percentile(&reap, 0.5), percentile(&reap, 0.99));
        let (fwd_p50, fwd_p99) = (percentile(&fwd, 0.5), percentile(&fwd, 0.99));
        let rss = Summary::of(&r.rss_kib);
        let p99_range = |v: &[f64]| {
            Summary::of(v).map_or("—".into(), |s| format!("{}–{}", us(s.min), us(s.max)))
        };
        rows.push(vec![
            init.name.to_owned(),
            format!(
                "{} / {} (per run {})",
                us(reap_p50),
                us(reap_p99),
                p99_range(&r.reap_p99s)
            ),
            format!(
                "{} / {} (per run {})",
                us(fwd_p50),
                us(fwd_p99),
                p99_range(&r.forward_p99s)
            ),
            rss.map_or("—".into(), |s| {
                format!("{:.0} KiB ({:.0}–{:.0})", s.median, s.min, s.max)
            }),
            format!("{} / {}", r.reap_lost, r.forward_lost),
        ]);
        json_inits.push(json!({
            "init": init.name,
            "reap_ns": { "p50": reap_p50, "p99": reap_p99, "n": reap.len(), "p99_per_run": r.reap_p99s, "not_reaped_in_1s": r.reap_lost },
            "forward_ns": { "p50": fwd_p50, "p99": fwd_p99, "n": fwd.len(), "p99_per_run": r.forward_p99s, "not_delivered_in_1s": r.forward_lost },
            "idle_rss_kib": rss.map(|s| s.json()),
        }));
        figures.push((reap_p99, fwd_p99, rss.map_or(f64::NAN, |s| s.median)));
    }

    let mut notes = Vec::new();
    let tini = inits.iter().position(|i| i.name == "tini");
    let (reap_p99, fwd_p99, rss) = figures[0];
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    notes.push(format!(
        "- Reap p99 ≤ 1 ms: {} ({}).",
        met(reap_p99 <= 1e6),
        us(reap_p99)
    ));
    match tini {
        Some(t) => {
            let (_, tini_fwd, tini_rss) = figures[t];
            notes.push(format!(
                "- Forward latency no worse than tini's (p99): {} ({} vs {}).",
                met(fwd_p99 <= tini_fwd),
                us(fwd_p99),
                us(tini_fwd)
            ));
            notes.push(format!(
                "- Idle RSS within 2× tini's: {} ({rss:.0} KiB vs {tini_rss:.0} KiB, {:.1}×).",
                met(rss <= 2.0 * tini_rss),
                rss / tini_rss
            ));
        }
        None => notes.push("- tini is not installed: no comparison.".into()),
    }
    Ok(Section {
        title: format!(
            "5. Init: each as PID 1 of a new pid namespace, {} rounds (interleaved) of {PER_RUN} \
             orphans and {PER_RUN} forwarded signals; latencies p50 / p99 over all rounds; idle \
             RSS of `INIT sleep 1000` after 1 s, median (min–max)",
            ctx.args.init_repeats
        ),
        header: [
            "init",
            "reap latency p50 / p99",
            "signal-forward latency p50 / p99",
            "idle RSS",
            "not reaped / not delivered in 1 s",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
        json: json!({ "per_run": PER_RUN, "inits": json_inits }),
    })
}
