use std::{env, fs, path::PathBuf};

use anyhow::Context as _;
use aya_build::{Package, Toolchain};

/// Builds the eBPF object with the installed `nightly` and bpf-linker, into `OUT_DIR`, where
/// `src/probes.rs` embeds it. `AYA_BUILD_SKIP=1` skips it (for `cargo check`-like work without
/// the eBPF toolchain); the binary then says at run time that it has no probes.
fn main() -> anyhow::Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tracer-ebpf");
    aya_build::build_ebpf(
        [Package {
            name: "tracer-ebpf",
            root_dir,
            ..Default::default()
        }],
        Toolchain::default(),
    )?;
    let object = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?)
        .join("tracer-probes");
    if !object.exists() {
        fs::write(&object, []).with_context(|| format!("writing {}", object.display()))?;
    }
    Ok(())
}
