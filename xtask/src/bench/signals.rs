//! Section 2: signal storm. One process sends N SIGUSR1 to itself, to a handler, as fast as it
//! can; untraced, then under `tracer trace --format json -- workload signals N`, whose JSON
//! Lines the bench reads as they come and counts: every SIGUSR1 from that pid, as `signal`
//! events and the counts of `signal_burst` records (repeats the probes counted in the kernel),
//! and every delivery of it, as `signal_deliver` events and `deliver_burst` counts, against
//! what the workload says it sent and handled; and how many records that took.

use std::{
    io::{BufRead as _, BufReader, Read},
    process::{Command, Stdio},
    thread::sleep,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use super::{
    Context,
    report::Section,
    runners::{Observer, summary_kind, tracer_summary},
    stats::{Summary, thousands},
    workloads::value,
};

const SIGUSR1: u32 = 10;

struct Traced {
    rate: f64,
    sent: u64,
    handled: u64,
    /// SIGUSR1 from (and to) the workload's pid in the JSON log.
    seen: Seen,
    lost: u64,
    summary_signal: Option<u64>,
    peak_rss_kib: u64,
    /// Largest resident set seen while the storm ran (VmRSS, sampled every 20 ms).
    max_rss_kib: u64,
    /// From the workload's last signal to the tracer's exit: how far behind it was.
    drain_s: f64,
}

impl Traced {
    /// SIGUSR1 sends and deliveries the log should have accounted for and did not.
    fn missing(&self) -> u64 {
        self.sent.saturating_sub(self.seen.generated())
            + self.handled.saturating_sub(self.seen.delivered())
    }
}

/// SIGUSR1 of one pid in a log: records of each kind, and what the bursts counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    signal: u64,
    signal_bursts: u64,
    signal_burst_count: u64,
    deliver: u64,
    deliver_bursts: u64,
    deliver_burst_count: u64,
}

impl Seen {
    /// Sends accounted for: one per `signal` event plus the bursts' counts.
    fn generated(&self) -> u64 {
        self.signal + self.signal_burst_count
    }

    fn delivered(&self) -> u64 {
        self.deliver + self.deliver_burst_count
    }

    /// Records the storm took in the log.
    fn records(&self) -> u64 {
        self.signal + self.signal_bursts + self.deliver + self.deliver_bursts
    }
}

pub fn run(ctx: &Context) -> Result<Section> {
    let n = ctx.args.signals;
    let mut untraced = Vec::new();
    let mut traced = Vec::new();
    // The tracer on the whole host writing text to /dev/null: the cost without the JSON log
    // and the bench reading it. (rate, lost) per run.
    let mut quiet = Vec::new();
    for round in 0..ctx.args.signal_repeats {
        eprintln!(
            "bench: signal storm round {}/{}: {} signals",
            round + 1,
            ctx.args.signal_repeats,
            thousands(n)
        );
        untraced.push(untraced_rate(ctx, n)?);
        traced.push(traced_run(ctx, n)?);
        let running = ctx.observers.start(Observer::Tracer, &[])?;
        let rate = untraced_rate(ctx, n)?;
        let stopped = running.stop()?;
        quiet.push((rate, stopped.lost.unwrap_or(0)));
    }

    let rates: Vec<f64> = traced.iter().map(|t| t.rate).collect();
    let ratios: Vec<f64> = traced
        .iter()
        .zip(&untraced)
        .map(|(t, u)| t.rate / u)
        .collect();
    let quiet_ratios: Vec<f64> = quiet
        .iter()
        .zip(&untraced)
        .map(|((q, _), u)| q / u)
        .collect();
    let quiet_ratio_s = Summary::of(&quiet_ratios);
    let untraced_s = Summary::of(&untraced);
    let rate_s = Summary::of(&rates);
    let ratio_s = Summary::of(&ratios);
    let per_run =
        |f: &dyn Fn(&Traced) -> String| traced.iter().map(f).collect::<Vec<_>>().join("; ");
    let rows = vec![
        vec![
            "untraced rate".into(),
            untraced_s.map_or("—".into(), |s| s.rate_text()),
        ],
        vec![
            "traced rate".into(),
            rate_s.map_or("—".into(), |s| s.rate_text()),
        ],
        vec![
            "ratio to untraced".into(),
            ratio_s.map_or("—".into(), |s| s.ratio_text()),
        ],
        vec![
            "sent / accounted for in `signal` + `signal_burst`, per run".into(),
            per_run(&|t| format!("{} / {}", thousands(t.sent), thousands(t.seen.generated()))),
        ],
        vec![
            "handled / accounted for in `signal_deliver` + `deliver_burst`, per run".into(),
            per_run(&|t| {
                format!(
                    "{} / {}",
                    thousands(t.handled),
                    thousands(t.seen.delivered())
                )
            }),
        ],
        vec![
            "lost (tracer's count), per run".into(),
            per_run(&|t| thousands(t.lost)),
        ],
        vec![
            "records for the storm: signal + signal_burst + signal_deliver + deliver_burst, per \
             run"
            .into(),
            per_run(&|t| {
                format!(
                    "{} ({} + {} + {} + {})",
                    thousands(t.seen.records()),
                    thousands(t.seen.signal),
                    thousands(t.seen.signal_bursts),
                    thousands(t.seen.deliver),
                    thousands(t.seen.deliver_bursts)
                )
            }),
        ],
        vec![
            "ratio under `tracer trace -o /dev/null` (whole host, text)".into(),
            quiet_ratio_s.map_or("—".into(), |s| s.ratio_text()),
        ],
        vec![
            "lost under `tracer trace -o /dev/null`, per run".into(),
            quiet
                .iter()
                .map(|(_, l)| thousands(*l))
                .collect::<Vec<_>>()
                .join("; "),
        ],
        vec![
            "missing from the log / tracer's lost count, per run".into(),
            per_run(&|t| format!("{} / {}", thousands(t.missing()), thousands(t.lost))),
        ],
        vec![
            "tracer RSS: peak (VmHWM) / largest sampled in the storm, per run".into(),
            per_run(&|t| {
                format!(
                    "{:.1} / {:.1} MiB",
                    t.peak_rss_kib as f64 / 1024.0,
                    t.max_rss_kib as f64 / 1024.0
                )
            }),
        ],
        vec![
            "tracer done after the storm, per run".into(),
            per_run(&|t| format!("{:.2} s", t.drain_s)),
        ],
    ];
    let exact = traced
        .iter()
        .all(|t| t.seen.generated() == t.sent && t.seen.delivered() == t.handled && t.lost == 0);
    let missing: u64 = traced.iter().map(Traced::missing).sum();
    let lost: u64 = traced.iter().map(|t| t.lost).sum();
    let notes = vec![if exact {
        "- Every signal sent and every delivery was accounted for in the log, nothing lost."
            .to_owned()
    } else {
        format!(
            "- Not exact: {} sends or deliveries missing from the log over all runs; the \
             tracer counted {} lost.",
            thousands(missing),
            thousands(lost)
        )
    }];
    let json_runs: Vec<_> = traced
        .iter()
        .zip(&untraced)
        .map(|(t, u)| {
            json!({
                "untraced_rate_per_s": u,
                "traced_rate_per_s": t.rate,
                "sent": t.sent,
                "handled": t.handled,
                "generated_accounted": t.seen.generated(),
                "delivered_accounted": t.seen.delivered(),
                "records": t.seen.records(),
                "signal_events": t.seen.signal,
                "signal_bursts": t.seen.signal_bursts,
                "signal_deliver_events": t.seen.deliver,
                "deliver_bursts": t.seen.deliver_bursts,
                "summary_signal": t.summary_signal,
                "lost": t.lost,
                "peak_rss_kib": t.peak_rss_kib,
                "max_rss_kib": t.max_rss_kib,
                "drain_s": t.drain_s,
            })
        })
        .collect();
    Ok(Section {
        title: format!(
            "2. Signal storm: {} SIGUSR1 to a handler, {} interleaved rounds, tracer writing \
             JSON Lines that the bench counts",
            thousands(n),
            ctx.args.signal_repeats
        ),
        header: vec!["figure".into(), "value".into()],
        rows,
        notes,
        json: json!({
            "signals": n,
            "untraced_rate_per_s": untraced_s.map(|s| s.json()),
            "traced_rate_per_s": rate_s.map(|s| s.json()),
            "ratio_to_untraced": ratio_s.map(|s| s.json()),
            "devnull_ratio_to_untraced": quiet_ratio_s.map(|s| s.json()),
            "devnull_lost": quiet.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
            "exact": exact,
            "runs": json_runs,
        }),
    })
}

fn untraced_rate(ctx: &Context, n: u64) -> Result<f64> {
    let output = Command::new(ctx.workloads.path())
        .args(["signals", &n.to_string()])
        .output()
        .context("running the signal workload")?;
    if !output.status.success() {
        bail!("the signal workload failed: {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    Ok(value(&stdout, "sent")? as f64 / (value(&stdout, "ns")? as f64 / 1e9))
}

fn traced_run(ctx: &Context, n: u64) -> Result<Traced> {
    let report = ctx.dir.join("signals.out");
    let stderr_path = ctx.dir.join("signals-tracer.stderr");
    let mut child = Command::new(ctx.observers.tracer())
        .args(["trace", "--format", "json", "--"])
        .arg(ctx.workloads.path())
        .args(["signals", &n.to_string()])
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()
        .context("starting the tracer")?;
    let stdout = child.stdout.take().context("tracer stdout")?;
    let counter = std::thread::spawn(move || count(stdout));

    let pid = child.id();
    let (mut peak_rss_kib, mut max_rss_kib) = (0, 0);
    let status = loop {
        peak_rss_kib = peak_rss_kib.max(memory_kib(pid, "VmHWM:").unwrap_or(0));
        max_rss_kib = max_rss_kib.max(memory_kib(pid, "VmRSS:").unwrap_or(0));
        if let Some(status) = child.try_wait()? {
            break status;
        }
        sleep(Duration::from_millis(20));
    };
    let done_ns = monotonic_ns();
    let seen = counter.join().expect("counter thread")?;
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "tracer with the signal workload failed ({status}): {}",
            stderr.trim()
        );
    }
    let summary = tracer_summary(&stderr)
        .with_context(|| format!("the tracer printed no summary: {}", stderr.trim()))?;
    let printed = std::fs::read_to_string(&report).context("the workload's report")?;
    let sent = value(&printed, "sent")?;
    let ns = value(&printed, "ns")?;
    let ended_at = value(&printed, "end_ns")?;
    // Both are CLOCK_MONOTONIC readings; the tracer's exit is seen within one poll (20 ms).
    let drain_s = done_ns.saturating_sub(ended_at) as f64 / 1e9;
    let pid_printed = value(&printed, "pid")?;
    Ok(Traced {
        rate: sent as f64 / (ns as f64 / 1e9),
        sent,
        handled: value(&printed, "handled")?,
        seen: seen.get(&pid_printed).copied().unwrap_or_default(),
        lost: summary.lost,
        summary_signal: summary_kind(&stderr, "signal"),
        peak_rss_kib,
        max_rss_kib,
        drain_s,
    })
}

type PerPid = std::collections::HashMap<u64, Seen>;

/// Counts SIGUSR1 records per pid in a JSON Lines stream: `signal`, `signal_deliver`, and the
/// bursts with their counts.
fn count(stream: impl Read) -> Result<PerPid> {
    let mut seen = PerPid::new();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = String::new();
    while reader
        .read_line(&mut line)
        .context("reading the tracer's output")?
        != 0
    {
        // Only the few fields needed, without a full parse: the tracer writes these keys
        // first-level and in this spelling (see README, `--format json`).
        let kind = [
            r#""event":"signal","#,
            r#""event":"signal_burst","#,
            r#""event":"signal_deliver","#,
            r#""event":"deliver_burst","#,
        ]
        .into_iter()
        .position(|kind| line.contains(kind));
        if let Some(kind) = kind
            && field(&line, "sig") == Some(u64::from(SIGUSR1))
            && let Some(pid) = field(&line, "pid")
        {
            let s = seen.entry(pid).or_default();
            let count = || field(&line, "count").unwrap_or(0);
            match kind {
                0 => s.signal += 1,
                1 => {
                    s.signal_bursts += 1;
                    s.signal_burst_count += count();
                }
                2 => s.deliver += 1,
                _ => {
                    s.deliver_bursts += 1;
                    s.deliver_burst_count += count();
                }
            }
        }
        line.clear();
    }
    Ok(seen)
}

/// The number after `"key":` in a JSON line.
fn field(line: &str, key: &str) -> Option<u64> {
    let pattern = format!("\"{key}\":");
    let start = line.find(&pattern)? + pattern.len();
    let digits: String = line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// A `/proc/PID/status` memory line (`VmHWM:`, `VmRSS:`), in KiB.
pub(super) fn memory_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sigusr1_and_bursts_per_pid() {
        let log = concat!(
            r#"{"format":1}"#,
            "\n",
            r#"{"ts_ns":1,"pid":42,"tid":42,"event":"signal","sig":10,"target_pid":42}"#,
            "\n",
            r#"{"ts_ns":2,"pid":42,"tid":42,"event":"signal_deliver","sig":10}"#,
            "\n",
            r#"{"ts_ns":3,"pid":42,"tid":42,"event":"signal","sig":17,"target_pid":1}"#,
            "\n",
            r#"{"ts_ns":4,"pid":7,"tid":7,"event":"signal","sig":10,"target_pid":42}"#,
            "\n",
            r#"{"ts_ns":5,"pid":42,"tid":42,"event":"signal_burst","sig":10,"target_pid":42,"count":999}"#,
            "\n",
            r#"{"ts_ns":6,"pid":42,"tid":42,"event":"deliver_burst","sig":10,"count":500}"#,
            "\n",
        );
        let seen = count(log.as_bytes()).unwrap();
        let me = seen[&42];
        assert_eq!(
            (me.generated(), me.delivered(), me.records()),
            (1 + 999, 1 + 500, 4)
        );
        assert_eq!(seen[&7].generated(), 1);
        assert_eq!(field(r#"{"target_pid":5,"pid":6}"#, "pid"), Some(6));
    }
}
