//! Section 3: saturation. Both cores run the fork loop at full speed under `tracer trace -o
//! /dev/null --ring-size SIZE`, for ring sizes from 4K to the default 8M (interleaved over
//! the rounds, each after an untraced run); loss per size is what sizes the ring.

use anyhow::Result;
use serde_json::json;

use super::{
    Context,
    report::Section,
    runners::Observer,
    stats::{Summary, thousands},
    workloads::Workload,
};

/// 4K and 16K are below any sensible setting: they show where loss starts.
pub const RING_SIZES: [&str; 10] = [
    "4K", "16K", "64K", "128K", "256K", "512K", "1M", "2M", "4M", "8M",
];

#[derive(Default)]
struct Runs {
    ratios: Vec<f64>,
    events: Vec<u64>,
    lost: Vec<u64>,
}

pub fn run(ctx: &Context) -> Result<Section> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()) as u32;
    let mut runs: Vec<Runs> = RING_SIZES.iter().map(|_| Runs::default()).collect();
    let mut untraced = Vec::new();
    for round in 0..ctx.args.saturation_repeats {
        eprintln!(
            "bench: saturation round {}/{}: {workers} fork loops",
            round + 1,
            ctx.args.saturation_repeats
        );
        for (i, size) in RING_SIZES.iter().enumerate() {
            // An untraced run right before each traced one: other load on a shared machine
            // drifts within a round.
            let base = ctx
                .workloads
                .run(Workload::Fork, ctx.args.run_ms, workers)?
                .rate;
            untraced.push(base);
            let running = ctx
                .observers
                .start(Observer::Tracer, &["--ring-size", size])?;
            let rate = ctx
                .workloads
                .run(Workload::Fork, ctx.args.run_ms, workers)?
                .rate;
            let stopped = running.stop()?;
            runs[i].ratios.push(rate / base);
            runs[i].events.extend(stopped.events);
            runs[i].lost.extend(stopped.lost);
        }
    }

    let mut rows = Vec::new();
    let mut results = Vec::new();
    let mut smallest_lossless = None;
    for (size, r) in RING_SIZES.iter().zip(&runs) {
        let lost_total: u64 = r.lost.iter().sum();
        let events_total: u64 = r.events.iter().sum();
        // Lost of all that happened: what the tracer wrote plus what it could not.
        let share = lost_total as f64 / (events_total + lost_total).max(1) as f64 * 100.0;
        let ratio = Summary::of(&r.ratios);
        if lost_total == 0 && smallest_lossless.is_none() {
            smallest_lossless = Some(*size);
        }
        if lost_total != 0 {
            smallest_lossless = None;
        }
        rows.push(vec![
            (*size).to_owned(),
            ratio.map_or("—".into(), |s| s.ratio_text()),
            r.events
                .iter()
                .map(|e| thousands(*e))
                .collect::<Vec<_>>()
                .join(", "),
            r.lost
                .iter()
                .map(|l| thousands(*l))
                .collect::<Vec<_>>()
                .join(", "),
            format!("{share:.2}%"),
        ]);
        results.push(json!({
            "ring_size": size,
            "ratio_to_untraced": ratio.map(|s| s.json()),
            "events": r.events,
            "lost": r.lost,
            "lost_percent": share,
        }));
    }
    let untraced_s = Summary::of(&untraced);
    let notes = vec![
        format!(
            "- Untraced, {workers} fork loops together: {}.",
            untraced_s.map_or("—".into(), |s| s.rate_text())
        ),
        match smallest_lossless {
            Some(size) => {
                format!("- Smallest ring from which no size up lost anything in any run: {size}.")
            }
            None => "- Every size lost events in some run (the largest included).".to_owned(),
        },
    ];
    Ok(Section {
        title: format!(
            "3. Saturation: {workers} fork loops (one per core) for {} ms under `tracer trace -o \
             /dev/null --ring-size SIZE`, {} rounds",
            ctx.args.run_ms, ctx.args.saturation_repeats
        ),
        header: [
            "ring size",
            "ratio to untraced",
            "events, per run",
            "lost, per run",
            "lost share",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        notes,
        json: json!({
            "workers": workers,
            "run_ms": ctx.args.run_ms,
            "untraced_rate_per_s": untraced_s.map(|s| s.json()),
            "sizes": results,
            "smallest_lossless": smallest_lossless,
        }),
    })
}
