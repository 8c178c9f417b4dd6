//! `tracer replay FILE`: the engine run over a JSON Lines log written by `tracer trace
//! --format json -o FILE`, printing the events, the findings and the summary as a live trace
//! would. Time comes from the events, so the same log always gives the same output.

mod fast;
mod lines;
mod parse;

use std::{
    fs::File,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context as _, Result, bail};
pub use fast::parse_event_fast;
pub use parse::{parse_event, parse_event_serde};

use self::lines::Lines;
use crate::{
    engine::{Config, Engine, EngineArgs, Finding, Observation},
    event::{Event, LOG_FORMAT_VERSION},
    output::{Format, JsonSink, LogHeader, Sink, TextSink},
};

/// Options of `tracer replay`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    tracer trace --format json -o run.jsonl -- npm start\n  \
    tracer replay run.jsonl\n  \
    tracer replay --zombie-after 1s --format json run.jsonl")]
pub struct ReplayArgs {
    /// A log written by `tracer trace --format json -o FILE` (`-` for standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    #[command(flatten)]
    pub engine: EngineArgs,
}

pub fn run(args: ReplayArgs) -> Result<ExitCode> {
    let input: Box<dyn Read + Send> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(
            File::open(&args.file)
                .with_context(|| format!("cannot open {}", args.file.display()))?,
        )
    };
    let stdout: Box<dyn Write> = Box::new(io::stdout().lock());
    let summary = replay(
        input,
        &args.file,
        args.format,
        Config::from(&args.engine),
        stdout,
    )?;
    eprintln!("tracer: {summary}");
    Ok(ExitCode::SUCCESS)
}

/// What a replay ends with: the engine's summary, and a note if the log was cut short.
pub struct Replayed {
    pub summary: crate::engine::Summary,
    pub lines: u64,
    pub truncated: Option<u64>,
}

impl std::fmt::Display for Replayed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "replayed {} lines\n{}", self.lines, self.summary)
    }
}

/// Events and observations in log order, as the reading thread hands them on.
enum Item {
    Event(Event),
    Observation(Observation),
}

/// Items handed on at a time: few enough to keep memory small, enough that the two threads
/// rarely wait for each other.
const BATCH: usize = 1024;
/// Batches in flight between the two threads.
const BATCHES: usize = 4;

/// How reading the log ended.
struct ReadEnd {
    lines: u64,
    truncated: Option<u64>,
}

/// Replays the log read from `input` (named `name` in messages) into `out`. One thread reads
/// and parses the lines, the calling one runs the engine and writes the output: the same
/// output, in the same order, as one thread doing both.
pub fn replay(
    input: Box<dyn Read + Send>,
    name: &Path,
    format: Format,
    config: Config,
    out: Box<dyn Write>,
) -> Result<Replayed> {
    let name = name.display();
    let mut lines = Lines::new(input);
    let reading = || format!("reading {name}");
    let Some(first) = lines.next_line().with_context(reading)? else {
        bail!("{name} is empty: not a tracer log");
    };
    let header = parse_header(first).with_context(|| format!("{name}:1"))?;
    let mut sink: Box<dyn Sink> = match format {
        Format::Text => Box::new(TextSink::new(out, header.start_ns)),
        Format::Json => Box::new(JsonSink::with_header(out, &header)?),
    };
    let mut engine = Engine::new(config);
    let emit = |sink: &mut Box<dyn Sink>, findings: Vec<Finding>| -> Result<()> {
        for f in &findings {
            sink.finding(f).context("writing the output")?;
        }
        Ok(())
    };
    let name = name.to_string();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Item>>(BATCHES);
    // Not joined when a write fails: the reader may be waiting on a quiet input (a pipe from a
    // live trace), and it ends at its next batch anyway.
    let reader = {
        let name = name.clone();
        std::thread::Builder::new()
            .name("replay-reader".into())
            .spawn(move || read_items(lines, &name, tx))
            .context("starting the replay's reading thread")?
    };
    for batch in rx {
        for item in batch {
            match item {
                Item::Observation(observation) => {
                    sink.observation(&observation)
                        .context("writing the output")?;
                    emit(&mut sink, engine.apply(&observation))?;
                }
                Item::Event(event) => {
                    emit(&mut sink, engine.tick(event.ts_ns))?;
                    sink.event(&event).context("writing the output")?;
                    emit(&mut sink, engine.observe(&event))?;
                }
            }
        }
    }
    let ReadEnd { lines, truncated } = reader
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the replay's reading thread failed")))?;
    if let Some(lineno) = truncated {
        cut_short(&name, lineno);
    }
    emit(&mut sink, engine.finish())?;
    sink.flush().context("writing the output")?;
    Ok(Replayed {
        summary: engine.summary(),
        lines,
        truncated,
    })
}

/// Reads and parses the lines after the header, handing them on in batches; ends at the end
/// of the log, at a line cut short (the writer stopped mid-line), at a malformed line or a
/// failed read (the error says which; what came before is handed on first), or when the
/// other side stopped taking batches.
fn read_items(
    mut lines: Lines<Box<dyn Read + Send>>,
    name: &str,
    tx: std::sync::mpsc::SyncSender<Vec<Item>>,
) -> Result<ReadEnd> {
    let reading = || format!("reading {name}");
    let mut lineno = 1u64;
    let mut truncated = None;
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // A full batch, or about to wait for the input (a live trace piped in): hand on what
        // is parsed.
        if !batch.is_empty() && (batch.len() == BATCH || !lines.ready()) {
            let some = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(some).is_err() {
                // The other side stopped (a write failed): it reports why.
                return Ok(ReadEnd {
                    lines: lineno,
                    truncated,
                });
            }
        }
        let line = match lines.next_line() {
            Ok(Some(line)) => line,
            Ok(None) => break,
            // Nothing is left in the batch: it was handed on before the read.
            Err(err) => return Err(err).with_context(reading),
        };
        lineno += 1;
        let complete = line.last() == Some(&b'\n');
        let text = trim(line);
        if text.is_empty() || is_derived(text) {
            continue;
        }
        let parsed = if Observation::is_observation(text) {
            serde_json::from_slice(text)
                .map(Item::Observation)
                .map_err(|err| format!("not a snapshot or cgroup line: {err}"))
        } else {
            parse_event(text)
                .map(Item::Event)
                .map_err(|err| format!("not an event: {err}"))
        };
        match parsed {
            Ok(item) => batch.push(item),
            // The writer died mid-line: the last line has no newline and does not parse.
            Err(_) if !complete => {
                truncated = Some(lineno);
                break;
            }
            Err(what) => {
                // What came before the bad line is replayed, as it would be in one thread.
                let _ = tx.send(batch);
                bail!("{name}:{lineno}: {what}");
            }
        }
    }
    let _ = tx.send(batch);
    Ok(ReadEnd {
        lines: lineno,
        truncated,
    })
}

fn cut_short(name: &impl std::fmt::Display, lineno: u64) {
    eprintln!(
        "tracer: {name}:{lineno}: the last line is cut short (the writer stopped mid-line); \
         replayed up to the line before"
    );
}

fn trim(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Lines a live trace derived from the events (its findings): the replay derives its own.
fn is_derived(line: &[u8]) -> bool {
    line.starts_with(b"{\"finding\"")
}

fn parse_header(line: &[u8]) -> Result<LogHeader> {
    #[derive(serde::Deserialize)]
    struct Version {
        tracer_log: u32,
    }
    let version: Version = serde_json::from_slice(trim(line)).map_err(|_| {
        anyhow::anyhow!(
            "not a tracer log: the first line should be a header like {{\"tracer_log\":1,...}}"
        )
    })?;
    if version.tracer_log > LOG_FORMAT_VERSION {
        bail!(
            "log format version {} is newer than this tracer reads (up to {}): replay it with a \
             newer tracer",
            version.tracer_log,
            LOG_FORMAT_VERSION
        );
    }
    serde_json::from_slice(trim(line)).context("malformed log header")
}
