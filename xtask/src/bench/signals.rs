//! Section 2: signal storm. One process sends N SIGUSR1 to itself, to a handler, as fast as it
//! can; untraced, then under `tracer trace --format json -- workload signals N`, whose JSON
//! Lines the bench reads as they come and counts: every `signal` of SIGUSR1 from that pid and
//! every `signal_deliver` of it, against what the workload says it sent and handled.

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
    /// `signal` events of SIGUSR1 from the workload's pid in the JSON log.
    seen_signal: u64,
    /// `signal_deliver` events of SIGUSR1 to the workload in the JSON log.
    seen_deliver: u64,
    lost: u64,
    summary_signal: Option<u64>,
    peak_rss_kib: u64,
    /// Largest resident set seen while the storm ran (VmRSS, sampled every 20 ms).
    max_rss_kib: u64,
    /// From the workload's last signal to the tracer's exit: how far behind it was.
    drain_s: f64,
}

impl Traced {
    /// SIGUSR1 signal and delivery events the log should have had and did not.
    fn missing(&self) -> u64 {
        self.sent.saturating_sub(self.seen_signal) + self.handled.saturating_sub(self.seen_deliver)
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
            "`signal` events seen / sent, per run".into(),
            per_run(&|t| format!("{} / {}", thousands(t.seen_signal), thousands(t.sent))),
        ],
        vec![
            "`signal_deliver` seen / handled, per run".into(),
            per_run(&|t| format!("{} / {}", thousands(t.seen_deliver), thousands(t.handled))),
        ],
        vec![
            "lost (tracer's count), per run".into(),
            per_run(&|t| thousands(t.lost)),
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
        .all(|t| t.seen_signal == t.sent && t.seen_deliver == t.handled && t.lost == 0);
    let missing: u64 = traced.iter().map(Traced::missing).sum();
    let lost: u64 = traced.iter().map(|t| t.lost).sum();
    let notes = vec![if exact {
        "- Every signal sent and every delivery was in the log, nothing lost.".to_owned()
    } else {
        format!(
            "- Not exact: {} signal/deliver events missing from the log over all runs; the \
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
                "seen_signal": t.seen_signal,
                "seen_signal_deliver": t.seen_deliver,
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
    let (seen_signal, seen_deliver) = counter.join().expect("counter thread")?;
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
    let (seen_signal, seen_deliver) = (
        seen_signal.get(&pid_printed).copied().unwrap_or(0),
        seen_deliver.get(&pid_printed).copied().unwrap_or(0),
    );
    Ok(Traced {
        rate: sent as f64 / (ns as f64 / 1e9),
        sent,
        handled: value(&printed, "handled")?,
        seen_signal,
        seen_deliver,
        lost: summary.lost,
        summary_signal: summary_kind(&stderr, "signal"),
        peak_rss_kib,
        max_rss_kib,
        drain_s,
    })
}

type PerPid = std::collections::HashMap<u64, u64>;

/// Counts SIGUSR1 `signal` and `signal_deliver` events per pid in a JSON Lines stream.
fn count(stream: impl Read) -> Result<(PerPid, PerPid)> {
    let mut signals = PerPid::new();
    let mut deliveries = PerPid::new();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = String::new();
    while reader
        .read_line(&mut line)
        .context("reading the tracer's output")?
        != 0
    {
        // Only the few fields needed, without a full parse: the tracer writes these keys
        // first-level and in this spelling (see README, `--format json`).
        let table = if line.contains(r#""event":"signal","#) {
            Some(&mut signals)
        } else if line.contains(r#""event":"signal_deliver","#) {
            Some(&mut deliveries)
        } else {
            None
        };
        if let Some(table) = table
            && field(&line, "sig") == Some(u64::from(SIGUSR1))
            && let Some(pid) = field(&line, "pid")
        {
            *table.entry(pid).or_default() += 1;
        }
        line.clear();
    }
    Ok((signals, deliveries))
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
    fn counts_sigusr1_per_pid() {
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
        );
        let (signals, deliveries) = count(log.as_bytes()).unwrap();
        assert_eq!(signals.get(&42), Some(&1));
        assert_eq!(signals.get(&7), Some(&1));
        assert_eq!(deliveries.get(&42), Some(&1));
        assert_eq!(field(r#"{"target_pid":5,"pid":6}"#, "pid"), Some(6));
    }
}
