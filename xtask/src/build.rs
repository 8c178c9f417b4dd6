//! Set-up and build of the `tracer` binary.

use std::{
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{sysroot, toolchain};

/// Environment variable telling `tracer/build.rs` which sysroot holds `core` for BPF.
pub const SYSROOT_ENV: &str = "TRACER_BPF_SYSROOT";

/// What a build needs in its environment, once set-up is done.
pub struct Setup {
    /// `Some` when the probes must be built against a recovered sysroot.
    pub bpf_sysroot: Option<PathBuf>,
}

impl Setup {
    /// A `cargo` command with the environment the probes' build needs.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.current_dir(workspace_root());
        if let Some(sysroot) = &self.bpf_sysroot {
            cmd.env(SYSROOT_ENV, sysroot);
        }
        cmd
    }
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Checks the toolchain and installs what is missing.
pub fn setup() -> Result<Setup> {
    let nightly = toolchain::Nightly::find()?;
    toolchain::ensure_bpf_linker(&nightly)?;
    // TRACER_BPF_CORE=docs forces the rust-docs route, to check it on a machine with rust-src.
    let force_docs = std::env::var("TRACER_BPF_CORE").is_ok_and(|v| v == "docs");
    let bpf_sysroot = if nightly.has_rust_src() && !force_docs {
        None
    } else {
        let target = toolchain::target_dir(&workspace_root());
        Some(sysroot::ensure(&nightly, &target)?)
    };
    Ok(Setup { bpf_sysroot })
}

/// Builds `target/release/tracer`; returns the set-up used and the binary's path.
///
/// On glibc hosts the binary is linked statically (static-pie): it then runs in any image,
/// distroless, Alpine or scratch included, which is where `tracer init` is wanted, and as a
/// container's PID 1 it does not keep the whole of libc.so resident. `cargo rustc` passes the
/// flag to the binary alone; through RUSTFLAGS it would also reach proc-macro crates, which
/// cannot be static.
pub fn build() -> Result<(Setup, PathBuf)> {
    let setup = setup()?;
    let mut cargo = setup.cargo();
    cargo.args([
        "rustc",
        "--release",
        "--package",
        "tracer",
        "--bin",
        "tracer",
    ]);
    if cfg!(target_env = "gnu") {
        cargo.args(["--", "-C", "target-feature=+crt-static"]);
    }
    let status = cargo.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let binary = toolchain::target_dir(&workspace_root()).join("release/tracer");
    eprintln!("xtask: built {}", binary.display());
    Ok((setup, binary))
}

/// Builds, then replaces this process with the tracer (under sudo when not root).
pub fn run(args: &[String]) -> Result<()> {
    let (_, binary) = build()?;
    let err = if is_root() {
        Command::new(&binary).args(args).exec()
    } else {
        eprintln!("xtask: tracer needs root to load its probes; running it with sudo");
        Command::new("sudo").arg(&binary).args(args).exec()
    };
    Err(err).with_context(|| format!("running {}", binary.display()))
}

pub fn is_root() -> bool {
    // /proc/self/status "Uid:" line: real, effective, saved, fs.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
