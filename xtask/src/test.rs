//! `cargo xtask test`: every test, the kernel ones as root.
//!
//! Test binaries are built as the invoking user, then run one after another (as root: through
//! sudo when the user is not root), so that only the test processes get privileges. They are
//! built with the dev profile: overflow checks stay on, so the hostile-input tests catch
//! arithmetic a crafted record could break.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

use crate::build;

pub fn run(filter: Option<&str>) -> Result<()> {
    let (setup, release) = build::build()?;
    let output = setup
        .cargo()
        .args(["test", "--workspace", "--no-run", "--message-format=json"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo test --no-run")?;
    if !output.status.success() {
        bail!("building the tests failed");
    }
    let mut binaries = Vec::new();
    for line in output.stdout.split(|&b| b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact"
            && message["profile"]["test"] == true
            && let Some(exe) = message["executable"].as_str()
        {
            let name = message["target"]["name"].as_str().unwrap_or(exe).to_owned();
            // cargo runs a package's tests from the package's directory; so do we.
            let dir = message["manifest_path"]
                .as_str()
                .and_then(|manifest| std::path::Path::new(manifest).parent())
                .map(|dir| dir.to_path_buf())
                .unwrap_or_else(build::workspace_root);
            binaries.push((name, exe.to_owned(), dir));
        }
    }
    if binaries.is_empty() {
        bail!("cargo built no test binaries");
    }
    let root = build::is_root();
    if !root {
        eprintln!("xtask: kernel tests need root; running the test binaries with sudo");
    }
    // The init tests run twice: against this build's tracer, and against the release binary
    // (statically linked) that users copy into their images.
    let mut runs: Vec<(String, &str, &Path, Option<&Path>)> = binaries
        .iter()
        .map(|(name, exe, dir)| (name.clone(), exe.as_str(), dir.as_path(), None))
        .collect();
    if let Some((_, exe, dir)) = binaries.iter().find(|(name, _, _)| name == "init") {
        runs.push((
            "init (release binary)".into(),
            exe,
            dir,
            Some(release.as_path()),
        ));
    }
    let mut failed = Vec::new();
    for (name, exe, dir, tracer_bin) in &runs {
        eprintln!("xtask: running {name}");
        let mut cmd = if root {
            Command::new(exe)
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("--preserve-env=PATH,RUST_TEST_THREADS,TRACER_BIN")
                .arg(exe);
            sudo
        };
        // Kernel tests start processes and load probes; one binary at a time, and inside a
        // binary two threads, keeps a 2-core machine responsive enough for timing-based
        // assertions with wide margins.
        cmd.current_dir(dir).env("RUST_TEST_THREADS", "2");
        if let Some(bin) = tracer_bin {
            cmd.env("TRACER_BIN", bin);
        }
        if let Some(filter) = filter {
            cmd.arg(filter);
        }
        let status = cmd.status().with_context(|| format!("running {exe}"))?;
        if !status.success() {
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!("tests failed in: {}", failed.join(", "));
    }
    Ok(())
}
