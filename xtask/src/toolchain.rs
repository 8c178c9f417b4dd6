//! The installed nightly toolchain and bpf-linker: found, checked, and installed when missing.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

/// The `nightly` toolchain that builds the probes.
pub struct Nightly {
    pub sysroot: PathBuf,
    pub rustc: PathBuf,
}

impl Nightly {
    /// Finds the installed `nightly` through rustup.
    pub fn find() -> Result<Self> {
        let output = Command::new("rustc")
            .args(["+nightly", "--print", "sysroot"])
            .output()
            .context("running rustc: is Rust installed (rustup)?")?;
        if !output.status.success() {
            bail!(
                "no nightly toolchain: the probes need one (rustup toolchain install nightly \
                 --component rust-src)"
            );
        }
        let sysroot = PathBuf::from(String::from_utf8(output.stdout)?.trim());
        let rustc = sysroot.join("bin/rustc");
        Ok(Self { sysroot, rustc })
    }

    /// `rustc -vV` of the nightly, which names its commit and LLVM version.
    pub fn version_line(&self) -> Result<String> {
        let output = Command::new(&self.rustc).arg("-vV").output()?;
        Ok(String::from_utf8(output.stdout)?)
    }

    /// Major version of the LLVM the nightly was built with.
    pub fn llvm_major(&self) -> Result<u32> {
        let version = self.version_line()?;
        let llvm = version
            .lines()
            .find_map(|line| line.strip_prefix("LLVM version: "))
            .context("nightly rustc does not report its LLVM version")?;
        llvm.split('.')
            .next()
            .and_then(|major| major.parse().ok())
            .with_context(|| format!("unexpected LLVM version {llvm:?}"))
    }

    /// Whether the `rust-src` component is installed (then `-Z build-std` works).
    pub fn has_rust_src(&self) -> bool {
        self.sysroot
            .join("lib/rustlib/src/rust/library/Cargo.lock")
            .exists()
    }

    /// The nightly's own shared libLLVM, as `(directory, link name)`.
    fn libllvm(&self) -> Result<(PathBuf, String)> {
        let dir = self.sysroot.join("lib");
        for entry in std::fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name
                .strip_prefix("libLLVM-")
                .and_then(|rest| rest.strip_suffix(".so"))
            {
                return Ok((dir, format!("LLVM-{stem}")));
            }
        }
        bail!(
            "no libLLVM-*.so in {}: the nightly is incomplete",
            dir.display()
        )
    }
}

/// Makes sure a working bpf-linker is on PATH, installing it against the nightly's own LLVM
/// when it is missing or no longer runs (a nightly update replaced the LLVM it linked).
pub fn ensure_bpf_linker(nightly: &Nightly) -> Result<()> {
    if bpf_linker_runs() {
        return Ok(());
    }
    let major = nightly.llvm_major()?;
    let (dir, lib) = nightly.libllvm()?;
    eprintln!("xtask: installing bpf-linker against the nightly's LLVM {major} (about 2 minutes)");
    let rustflags = format!(
        "-L {dir} -l dylib={lib} -C link-arg=-Wl,-rpath,{dir}",
        dir = dir.display()
    );
    let status = Command::new("cargo")
        .args(["install", "bpf-linker", "--version", "^0.13"])
        .args(["--no-default-features", "--features"])
        .arg(format!("llvm-{major},no-llvm-linking"))
        .env("RUSTFLAGS", rustflags)
        .status()
        .context("running cargo install bpf-linker")?;
    if !status.success() || !bpf_linker_runs() {
        bail!("installing bpf-linker failed (see cargo's output above)");
    }
    Ok(())
}

fn bpf_linker_runs() -> bool {
    Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// The workspace's target directory.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
