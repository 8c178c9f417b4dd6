//! Builds the probes (`tracer-ebpf`) for BPF with the installed `nightly` and bpf-linker, and
//! leaves the object in `OUT_DIR/tracer-probes`, where `src/probes/mod.rs` embeds it.
//!
//! `core` for the BPF target comes from `-Z build-std=core` (needs the nightly's rust-src) or,
//! when `TRACER_BPF_SYSROOT` names one, from a prebuilt sysroot (`cargo xtask setup` makes it
//! when rust-src is missing). `AYA_BUILD_SKIP=1` skips the probes entirely: the binary then
//! builds, and says at run time that it has no probes.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

const BPF_TARGET: &str = "bpfel-unknown-none";

fn main() -> Result<()> {
    for var in ["AYA_BUILD_SKIP", "TRACER_BPF_SYSROOT", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("no manifest dir")?);
    let workspace = manifest_dir.parent().context("tracer is in a workspace")?;
    for dir in ["tracer-ebpf", "tracer-common"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let object = out_dir.join("tracer-probes");

    if env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        println!("cargo:warning=AYA_BUILD_SKIP is set: building tracer without its probes");
        fs::write(&object, [])?;
        return Ok(());
    }

    let sysroot = env::var_os("TRACER_BPF_SYSROOT")
        .map(PathBuf::from)
        .or_else(|| Some(workspace.join("target/bpf-sysroot")).filter(|p| p.join("lib").is_dir()));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").context("no target arch")?;
    let mut rustflags = vec![
        format!("--cfg=bpf_target_arch=\"{arch}\""),
        "-Cdebuginfo=2".to_owned(),
        "-Clink-arg=--btf".to_owned(),
    ];
    let mut cmd = Command::new("rustup");
    cmd.args([
        "run",
        "nightly",
        "cargo",
        "build",
        "--package",
        "tracer-ebpf",
        "--bins",
    ]);
    cmd.args(["--release", "--target", BPF_TARGET]);
    match &sysroot {
        Some(sysroot) => rustflags.push(format!("--sysroot={}", sysroot.display())),
        None => {
            cmd.args(["-Z", "build-std=core"]);
        }
    }
    // A separate target dir: cargo would otherwise wait on the lock this build holds.
    let target_dir = out_dir.join("ebpf-target");
    cmd.arg("--target-dir").arg(&target_dir);
    cmd.current_dir(workspace);
    cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"));
    for var in [
        "RUSTC",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd
        .output()
        .context("running cargo +nightly (is rustup installed?)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("rust-src") || stderr.contains("bpf-linker") {
            "\nhint: run `cargo xtask setup`, which installs bpf-linker and a BPF sysroot"
        } else {
            ""
        };
        bail!("building the eBPF probes failed:\n{stderr}{hint}");
    }
    forward_warnings(&String::from_utf8_lossy(&output.stderr));
    let built = target_dir.join(BPF_TARGET).join("release/tracer-probes");
    copy(&built, &object)
}

/// Repeats the probes' compiler warnings, each with where it is, as this build's own: the
/// nested cargo's output is captured, and would otherwise only be seen when it fails.
fn forward_warnings(stderr: &str) {
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        // Skip cargo's "`tracer-ebpf` (bin …) generated N warnings" summary.
        if let Some(warning) = line.strip_prefix("warning: ")
            && !warning.starts_with('`')
        {
            let at = lines
                .next()
                .and_then(|l| l.trim_start().strip_prefix("--> "))
                .unwrap_or("?");
            println!("cargo:warning=probes: {warning} at {at}");
        }
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}
