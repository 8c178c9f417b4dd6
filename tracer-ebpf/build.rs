use std::env;

use which::which;

/// Rebuild the probes when bpf-linker changes: it is invoked by rustc, not cargo, so cargo
/// would not notice otherwise.
fn main() {
    println!("cargo:rerun-if-env-changed=PATH");
    if let Ok(path) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let _ = env::var_os("CARGO_CFG_BPF_TARGET_ARCH");
}
