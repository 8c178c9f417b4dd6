//! `tracer tree`: the process tree now, from /proc, like pstree, with what matters for
//! reaping and signals marked: zombies and the parent that must reap them, PID namespace
//! inits, containers, and likely subreapers.
//!
//! What /proc cannot tell: whether a process is a child subreaper (`PR_SET_CHILD_SUBREAPER`
//! is not in /proc/PID/status), so those are marked only as likely, from programs known to
//! set it; and how long a zombie has been one (no exit time is kept).

use std::{
    collections::{HashMap, HashSet},
    io::{self, Write},
    process::ExitCode,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    clock,
    engine::{
        container::container_of,
        snapshot::{ProcInfo, Snapshot, snapshot},
    },
    event::ExitStatus,
};

/// Options of `tracer tree`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    tracer tree               every process (kernel threads left out)\n  \
    tracer tree --pid 1234    1234 and its descendants")]
pub struct TreeArgs {
    /// Show only PID and its descendants.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
}

pub fn run(args: TreeArgs) -> Result<ExitCode> {
    let snap = snapshot(clock::boot_ns());
    let mut out = io::stdout().lock();
    match render(&snap, args.pid, &mut out) {
        Err(err)
            if err
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            // `tracer tree | head`: the reader has seen enough.
            Ok(ExitCode::SUCCESS)
        }
        result => result
            .context("writing the tree")
            .map(|()| ExitCode::SUCCESS),
    }
}

/// Writes the tree of `snap` (from `root`, or every root but the kernel threads').
pub fn render(snap: &Snapshot, root: Option<u32>, out: &mut dyn Write) -> Result<()> {
    let by_pid: HashMap<u32, &ProcInfo> = snap.procs.iter().map(|p| (p.pid, p)).collect();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in &snap.procs {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    for kids in children.values_mut() {
        kids.sort_unstable();
    }
    let roots: Vec<u32> = match root {
        Some(pid) => {
            if !by_pid.contains_key(&pid) {
                bail!("no process with pid {pid}");
            }
            vec![pid]
        }
        None => {
            let mut roots: Vec<u32> = snap
                .procs
                .iter()
                // kthreadd (2) and its kernel threads are left out, as pstree does.
                .filter(|p| !by_pid.contains_key(&p.ppid) && p.pid != 2)
                .map(|p| p.pid)
                .collect();
            roots.sort_unstable();
            roots
        }
    };
    let host_pidns = by_pid.get(&1).map(|p| p.pidns).unwrap_or(0);
    let tree = Tree {
        by_pid,
        children,
        host_pidns,
    };
    let mut seen = HashSet::new();
    let mut zombies = 0;
    for r in roots {
        tree.write(out, r, "", None, &mut seen, &mut zombies)?;
    }
    if zombies > 0 {
        writeln!(
            out,
            "\n{zombies} zombie(s): each stays until the parent shown with it calls wait()."
        )?;
    }
    writeln!(
        out,
        "note: \"subreaper?\" marks programs known to set PR_SET_CHILD_SUBREAPER; Linux does \
         not show the flag in /proc, so others go unmarked."
    )?;
    Ok(())
}

struct Tree<'a> {
    by_pid: HashMap<u32, &'a ProcInfo>,
    children: HashMap<u32, Vec<u32>>,
    host_pidns: u32,
}

impl Tree<'_> {
    fn write(
        &self,
        out: &mut dyn Write,
        pid: u32,
        prefix: &str,
        branch: Option<bool>,
        seen: &mut HashSet<u32>,
        zombies: &mut u32,
    ) -> io::Result<()> {
        if !seen.insert(pid) {
            return Ok(());
        }
        let Some(p) = self.by_pid.get(&pid) else {
            return Ok(());
        };
        let (lead, child_prefix) = match branch {
            None => (String::new(), prefix.to_owned()),
            Some(last) => (
                format!("{prefix}{}", if last { "└─ " } else { "├─ " }),
                format!("{prefix}{}", if last { "   " } else { "│  " }),
            ),
        };
        let mut line = format!("{lead}{} {}", p.pid, p.comm);
        let marks = self.marks(p);
        if !marks.is_empty() {
            line.push_str(&format!("  [{}]", marks.join(", ")));
        }
        let kids = self.children.get(&pid).map(Vec::as_slice).unwrap_or(&[]);
        let held = kids
            .iter()
            .filter(|k| self.by_pid.get(k).is_some_and(|c| is_zombie(c)))
            .count();
        if held > 0 {
            line.push_str(&format!("  holds {held} zombie(s) it has not reaped"));
        }
        if is_zombie(p) {
            *zombies += 1;
            let status = ExitStatus::from_wait_status(p.exit_status);
            let parent = self
                .by_pid
                .get(&p.ppid)
                .map(|pp| format!("{} ({})", pp.pid, pp.comm))
                .unwrap_or_else(|| p.ppid.to_string());
            line.push_str(&format!(
                "  <defunct> {status}; reaper {parent} has not called wait() for it"
            ));
        }
        writeln!(out, "{line}")?;
        for (i, &kid) in kids.iter().enumerate() {
            self.write(
                out,
                kid,
                &child_prefix,
                Some(i + 1 == kids.len()),
                seen,
                zombies,
            )?;
        }
        Ok(())
    }

    fn marks(&self, p: &ProcInfo) -> Vec<String> {
        let mut marks = Vec::new();
        let parent = self.by_pid.get(&p.ppid);
        if p.ns_pid == 1 && p.pid != 1 {
            marks.push(format!("PID 1 of pid namespace {}", p.pidns));
        } else if p.ns_pid != p.pid {
            marks.push(format!("pid {} in its namespace", p.ns_pid));
        } else if p.pidns != 0 && p.pidns != self.host_pidns && self.host_pidns != 0 {
            marks.push(format!("pid namespace {}", p.pidns));
        }
        let container = container_of(&p.cgroup);
        let parents = parent.and_then(|pp| container_of(&pp.cgroup));
        if let Some(c) = container.filter(|c| parents.as_ref() != Some(c)) {
            marks.push(format!("container {c}"));
        }
        if let Some(why) = likely_subreaper(p) {
            marks.push(format!("subreaper? ({why})"));
        }
        if matches!(p.state, 'T' | 't') {
            marks.push("stopped".into());
        }
        marks
    }
}

fn is_zombie(p: &ProcInfo) -> bool {
    p.state == 'Z'
}

/// Programs that set `PR_SET_CHILD_SUBREAPER`, as far as their name and command line show.
fn likely_subreaper(p: &ProcInfo) -> Option<&'static str> {
    let cmdline = || {
        std::fs::read(format!("/proc/{}/cmdline", p.pid))
            .map(|b| {
                b.split(|&c| c == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    match p.comm.as_str() {
        c if c.starts_with("containerd-shim") => Some("containerd shims do"),
        "systemd" if p.pid != 1 && cmdline().iter().any(|a| a == "--user") => {
            Some("systemd user managers do")
        }
        "tini" if cmdline().iter().any(|a| a == "-s") => Some("tini -s"),
        "tracer" if cmdline().iter().any(|a| a == "init") => Some("tracer init"),
        "conmon" => Some("conmon does"),
        _ => None,
    }
}
