//! Section 4: the lineage engine. Events per second on one core for the engine alone (the
//! engine test suite's benchmark, events already in memory), lines per second for `tracer
//! replay` of a large synthetic churn log (the real binary, output to /dev/null), table bytes
//! per live process, and resident memory while millions of processes churn through a replay
//! fed from a pipe (it must stay flat).

use std::{
    fs::File,
    io::{BufWriter, Write},
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use super::{
    Context,
    report::Section,
    signals::memory_kib,
    stats::{Summary, thousands},
};
use crate::build::workspace_root;

const HEADER: &str = r#"{"tracer_log":4,"start_ns":0,"boot_unix_ns":0,"boot_id":"bench"}"#;
const PIDNS: u32 = 4026531836;
/// The shell every churned process is a child of.
const SHELL: u32 = 10;

/// The fields every event has, for a host process: the shell's on CPU 0, the others' on 1.
fn common(out: &mut impl Write, ts: u64, pid: u32, ppid: u32, comm: &str, start: u64) {
    let cpu = u32::from(pid != SHELL);
    // Writes to a BufWriter; errors surface at its flush.
    let _ = write!(
        out,
        r#"{{"ts_ns":{ts},"pid":{pid},"tid":{pid},"ns_pid":{pid},"pidns":{PIDNS},"ppid":{ppid},"uid":0,"cgroup_id":1,"comm":"{comm}","start_ns":{start},"cpu":{cpu},"#
    );
}

fn fork(out: &mut impl Write, ts: u64, parent: u32, pstart: u64, child: u32, cstart: u64) {
    let pp = if parent == 1 { 0 } else { 1 };
    let comm = if parent == 1 { "init" } else { "shell" };
    common(out, ts, parent, pp, comm, pstart);
    let _ = writeln!(
        out,
        r#""event":"fork","child_pid":{child},"child_tid":{child},"child_ns_pid":{child},"child_pidns":{PIDNS},"child_ppid":{parent},"child_start_ns":{cstart},"thread":false}}"#
    );
}

/// Three lines per process: the shell forks it, it exits, the shell reaps it. Pids cycle
/// through 30,000 values, as on a real host; `start_ns` tells the reuses apart.
fn churn_one(out: &mut impl Write, i: u64) {
    let t = 1_000_000_000 + i * 10_000;
    let pid = 100 + (i % 30_000) as u32;
    fork(out, t, SHELL, 1, pid, t);
    common(out, t + 400, pid, SHELL, "worker", t);
    let _ = writeln!(
        out,
        r#""event":"exit","status":0,"code":0,"process":true}}"#
    );
    common(out, t + 500, pid, SHELL, "worker", t);
    let _ = writeln!(
        out,
        r#""event":"reap","reaper_pid":{SHELL},"reaper_tid":{SHELL},"reaper_comm":"shell","how":"wait","status":0,"code":0,"exit_ns":{},"zombie_ns":100}}"#,
        t + 400
    );
}

fn prologue(out: &mut impl Write) {
    let _ = writeln!(out, "{HEADER}");
    fork(out, 1, 1, 0, SHELL, 1);
}

/// A log of `processes` churned processes: 3 lines each, plus the header and the shell.
fn write_churn_log(path: &Path, processes: u64) -> Result<u64> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    prologue(&mut out);
    for i in 0..processes {
        churn_one(&mut out, i);
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(2 + 3 * processes)
}

/// A log of `n` processes forked by init that never exit.
fn write_live_log(path: &Path, n: u64) -> Result<()> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let _ = writeln!(out, "{HEADER}");
    for i in 0..n {
        fork(&mut out, 2 + i, 1, 0, 1000 + i as u32, 2 + i);
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What one `tracer replay` run took.
struct Replay {
    wall_s: f64,
    /// Peak resident set (ru_maxrss), KiB.
    max_rss_kib: u64,
    stderr: String,
}

fn replay(tracer: &Path, file: &Path, dir: &Path) -> Result<Replay> {
    let stderr_path = dir.join("replay.stderr");
    let start = Instant::now();
    let child = Command::new(tracer)
        .arg("replay")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(File::create(&stderr_path)?)
        .spawn()
        .context("starting tracer replay")?;
    let (status, max_rss_kib) = wait_rusage(child.id())?;
    let wall_s = start.elapsed().as_secs_f64();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    if !status.success() {
        bail!(
            "tracer replay {} failed ({status}): {stderr}",
            file.display()
        );
    }
    Ok(Replay {
        wall_s,
        max_rss_kib,
        stderr,
    })
}

/// Waits for `pid` with wait4, for its peak resident set.
fn wait_rusage(pid: u32) -> Result<(std::process::ExitStatus, u64)> {
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, status and usage are valid to write.
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    if r < 0 {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    Ok((
        std::process::ExitStatus::from_raw(status),
        usage.ru_maxrss as u64,
    ))
}

/// `~N KiB` from the replay's summary: the engine's own estimate of its table.
fn table_kib(stderr: &str) -> Option<u64> {
    let at = stderr.rfind(" KiB")?;
    let digits: String = stderr[..at]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// The engine test suite's benchmark, engine part only: `= X M events/s on one core`.
fn engine_alone() -> Result<f64> {
    let output = Command::new("cargo")
        .args([
            "test",
            "--release",
            "-q",
            "-p",
            "tracer",
            "--test",
            "engine",
            "--",
            "--ignored",
            "--exact",
            "benchmark",
            "--nocapture",
        ])
        .env("BENCH_ENGINE_ONLY", "1")
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test for the engine benchmark")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("the engine benchmark failed: {stdout}");
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("engine:"))
        .with_context(|| format!("the engine benchmark printed no rate: {stdout}"))?;
    let rate = line
        .split("= ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|r| r.parse::<f64>().ok())
        .with_context(|| format!("cannot read the engine rate in {line:?}"))?;
    Ok(rate * 1e6)
}

/// Churn through `tracer replay --retention 1s -`, fed from a pipe so no 3-GB file is needed: VmRSS of the
/// replay at each quarter, and how long it all took.
fn churn(tracer: &Path, processes: u64) -> Result<(Vec<u64>, f64)> {
    let mut child = Command::new(tracer)
        // Processes are 10 µs apart in the log (100,000 a second): with the default 60 s
        // retention the table would legitimately grow for the first 6 million. A 1 s window
        // (100,000 reaped entries kept) reaches its steady state within the first quarter.
        .args(["replay", "--retention", "1s", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tracer replay -")?;
    let pid = child.id();
    let start = Instant::now();
    let mut rss = Vec::new();
    {
        let mut input = BufWriter::with_capacity(1 << 20, child.stdin.take().expect("piped"));
        prologue(&mut input);
        let quarter = processes / 4;
        for i in 0..processes {
            churn_one(&mut input, i);
            if (i + 1) % quarter == 0 {
                input.flush().context("feeding tracer replay")?;
                rss.push(memory_kib(pid, "VmRSS:").unwrap_or(0));
            }
        }
        input.flush().context("feeding tracer replay")?;
    }
    let output = child.wait_with_output()?;
    let wall = start.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "tracer replay - failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((rss, wall))
}

pub fn run(ctx: &Context) -> Result<Section> {
    let tracer = ctx.observers.tracer();
    let args = &ctx.args;
    let log = ctx.dir.join("churn.jsonl");
    eprintln!(
        "bench: engine: writing a log of {} churned processes",
        thousands(args.replay_processes)
    );
    let lines = write_churn_log(&log, args.replay_processes)?;
    let live_n = 1_000_000;
    let live = ctx.dir.join("live.jsonl");
    let empty = ctx.dir.join("empty.jsonl");
    write_live_log(&live, live_n)?;
    write_live_log(&empty, 0)?;

    let mut engine_rates = Vec::new();
    let mut replay_rates = Vec::new();
    let mut per_live_table = Vec::new();
    let mut per_live_rss = Vec::new();
    for round in 0..args.engine_repeats {
        eprintln!("bench: engine round {}/{}", round + 1, args.engine_repeats);
        engine_rates.push(engine_alone()?);
        let r = replay(tracer, &log, &ctx.dir)?;
        replay_rates.push(lines as f64 / r.wall_s);
        let base = replay(tracer, &empty, &ctx.dir)?;
        let full = replay(tracer, &live, &ctx.dir)?;
        if let Some(kib) = table_kib(&full.stderr) {
            per_live_table.push(kib as f64 * 1024.0 / live_n as f64);
        }
        per_live_rss.push(
            full.max_rss_kib.saturating_sub(base.max_rss_kib) as f64 * 1024.0 / live_n as f64,
        );
    }
    eprintln!(
        "bench: engine: churning {} processes through tracer replay -",
        thousands(args.churn)
    );
    let (rss, churn_s) = churn(tracer, args.churn)?;
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&live);

    let engine_s = Summary::of(&engine_rates);
    let replay_s = Summary::of(&replay_rates);
    let table_s = Summary::of(&per_live_table);
    let rss_s = Summary::of(&per_live_rss);
    let bytes = |s: Option<Summary>| {
        s.map_or("—".into(), |s| {
            format!("{:.0} B ({:.0}–{:.0})", s.median, s.min, s.max)
        })
    };
    let rss_text = rss
        .iter()
        .map(|k| format!("{:.1}", *k as f64 / 1024.0))
        .collect::<Vec<_>>()
        .join(" / ");
    let (first, last) = (
        rss.first().copied().unwrap_or(0),
        rss.last().copied().unwrap_or(0),
    );
    let growth = last as f64 / first.max(1) as f64;
    let rows = vec![
        vec![
            "engine alone, events in memory (events/s, one core)".into(),
            engine_s.map_or("—".into(), |s| s.rate_text()),
        ],
        vec![
            format!(
                "`tracer replay` of {} lines ({} churned processes), lines/s",
                thousands(lines),
                thousands(args.replay_processes)
            ),
            replay_s.map_or("—".into(), |s| s.rate_text()),
        ],
        vec![
            format!(
                "table bytes per live process, engine's estimate ({} live)",
                thousands(live_n)
            ),
            bytes(table_s),
        ],
        vec![
            format!(
                "peak RSS per live process, replay of {} live minus none",
                thousands(live_n)
            ),
            bytes(rss_s),
        ],
        vec![
            format!(
                "VmRSS after 25/50/75/100% of {} churned processes (MiB)",
                thousands(args.churn)
            ),
            rss_text.clone(),
        ],
        vec![
            "time to churn them through `tracer replay --retention 1s -`".into(),
            format!(
                "{churn_s:.1} s ({}/s processes)",
                thousands((args.churn as f64 / churn_s) as u64)
            ),
        ],
    ];
    let notes = vec![format!(
        "- Memory under churn: {} from the first quarter to the last ({growth:.3}×).",
        if growth <= 1.05 { "flat" } else { "GROWING" }
    )];
    Ok(Section {
        title: format!(
            "4. Engine: median (±half range) over {} rounds; churn fed through a pipe, one run",
            args.engine_repeats
        ),
        header: ["figure", "value"].map(String::from).to_vec(),
        rows,
        notes,
        json: json!({
            "engine_events_per_s": engine_s.map(|s| s.json()),
            "replay_lines": lines,
            "replay_lines_per_s": replay_s.map(|s| s.json()),
            "live_processes": live_n,
            "table_bytes_per_live_process": table_s.map(|s| s.json()),
            "rss_bytes_per_live_process": rss_s.map(|s| s.json()),
            "churned_processes": args.churn,
            "churn_rss_kib_at_quarters": rss,
            "churn_seconds": churn_s,
        }),
    })
}
