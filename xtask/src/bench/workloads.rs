//! The workload programs (`xtask/bench/workload.c`), compiled with `cc` once per bench run.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, Result, bail};

const SOURCE: &str = include_str!("../../bench/workload.c");

/// What section 1 measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Fork,
    Exec,
    Thread,
    Pipeline,
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Fork,
        Workload::Exec,
        Workload::Thread,
        Workload::Pipeline,
    ];

    /// The workload program's mode argument, and the key in results.json.
    pub fn mode(self) -> &'static str {
        match self {
            Workload::Fork => "fork",
            Workload::Exec => "exec",
            Workload::Thread => "thread",
            Workload::Pipeline => "pipeline",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Workload::Fork => "fork+_exit+waitpid",
            Workload::Exec => "fork+exec /bin/true",
            Workload::Thread => "pthread create+join",
            Workload::Pipeline => "sh -c 'echo|cat|cat'",
        }
    }
}

/// One timed run.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Units done.
    pub ops: u64,
    /// Units per second of wall time.
    pub rate: f64,
    /// CPU time (user + system, workload and its children) per unit, in ns.
    pub cpu_per_op_ns: f64,
}

pub struct Workloads {
    binary: PathBuf,
}

impl Workloads {
    /// Compiles the workload program into `dir`.
    pub fn compile(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let source = dir.join("workload.c");
        std::fs::write(&source, SOURCE)?;
        let binary = dir.join("workload");
        let status = Command::new("cc")
            .args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(&binary)
            .arg(&source)
            .status()
            .context("running cc (the workloads are C programs)")?;
        if !status.success() {
            bail!("compiling {} failed", source.display());
        }
        Ok(Self { binary })
    }

    pub fn path(&self) -> &Path {
        &self.binary
    }

    /// Runs `workload` for `ms` in `workers` processes.
    pub fn run(&self, workload: Workload, ms: u64, workers: u32) -> Result<Run> {
        let output = Command::new(&self.binary)
            .args([workload.mode(), &ms.to_string(), &workers.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .context("running the workload")?;
        if !output.status.success() {
            bail!("workload {} failed: {}", workload.mode(), output.status);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let ops = value(&stdout, "ops")?;
        let ns = value(&stdout, "ns")?;
        let cpu_ns = value(&stdout, "cpu_ns")?;
        Ok(Run {
            ops,
            rate: ops as f64 / (ns as f64 / 1e9),
            cpu_per_op_ns: cpu_ns as f64 / ops.max(1) as f64,
        })
    }
}

/// The number in a `key=value` line the workload printed.
pub fn value(stdout: &str, key: &str) -> Result<u64> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("the workload printed no {key}=: {stdout:?}"))?
        .trim()
        .parse()
        .with_context(|| format!("the workload printed a bad {key}="))
}
