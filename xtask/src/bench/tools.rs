//! The comparison tools, installed from Debian's packages when missing.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

/// Debian packages the bench compares against (tini and dumb-init are for the init section).
const PACKAGES: [&str; 4] = ["bpftrace", "forkstat", "tini", "dumb-init"];

pub struct Tools {
    pub bpftrace: Option<PathBuf>,
    pub forkstat: Option<PathBuf>,
    /// Tools that could not be installed, with why, for the report.
    pub skipped: Vec<String>,
}

/// Finds the tools, installing the missing ones with apt-get (one `apt-get update` first if
/// an install fails); never fails: what cannot be had is skipped and said so.
pub fn ensure() -> Tools {
    let missing: Vec<&str> = PACKAGES.into_iter().filter(|p| find(p).is_none()).collect();
    if !missing.is_empty() {
        eprintln!("bench: installing {}", missing.join(" "));
        if !apt_install(&missing) {
            eprintln!("bench: apt-get install failed; running apt-get update and trying again");
            let updated = quiet(Command::new("apt-get").arg("update"));
            if updated {
                apt_install(&missing);
            }
        }
    }
    let skipped = PACKAGES
        .into_iter()
        .filter(|name| find(name).is_none())
        .map(|name| {
            eprintln!("bench: {name} is not available: skipping what needs it");
            format!("{name} (not installed: apt-get install failed)")
        })
        .collect();
    Tools {
        bpftrace: find("bpftrace"),
        forkstat: find("forkstat"),
        skipped,
    }
}

fn apt_install(packages: &[&str]) -> bool {
    // One package at a time: one that does not exist must not stop the others.
    let mut all = true;
    for package in packages {
        all &= quiet(
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .arg(package)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    }
    all
}

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `name` on PATH (or in /usr/sbin, which root's PATH may lack).
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|p| p.is_file())
}
