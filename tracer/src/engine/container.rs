//! Which container a process is in, read from its cgroup path.
//!
//! Runtimes name the cgroup after the container: docker (`/docker/ID`,
//! `docker-ID.scope`), containerd and Kubernetes (`cri-containerd-ID.scope`,
//! `/kubepods/.../ID`), cri-o (`crio-ID.scope`), podman (`libpod-ID.scope`), and systemd
//! puts scopes (`machine-NAME.scope`, `run-rXXX.scope`) around transient units.

use serde::{Deserialize, Serialize};

/// A container as its cgroup path names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Container {
    /// `docker`, `containerd`, `cri-o`, `podman`, `kubepods` or `systemd`.
    pub runtime: String,
    /// The id (hex ids shortened to 12 characters, as `docker ps` shows them) or scope name.
    pub id: String,
}

impl std::fmt::Display for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.runtime, self.id)
    }
}

/// The container a cgroup path belongs to, if it names one. The innermost match wins, so a
/// container nested in a systemd scope is named by its runtime.
pub fn container_of(cgroup_path: &str) -> Option<Container> {
    let mut found = None;
    let mut parent = "";
    for part in cgroup_path.split('/').filter(|p| !p.is_empty()) {
        if let Some(c) = from_component(part, parent) {
            found = Some(c);
        }
        parent = part;
    }
    found
}

fn container(runtime: &str, id: &str) -> Container {
    let id = if is_hex_id(id) { &id[..12] } else { id };
    Container {
        runtime: runtime.to_owned(),
        id: id.to_owned(),
    }
}

fn is_hex_id(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn from_component(part: &str, parent: &str) -> Option<Container> {
    const SCOPES: [(&str, &str); 5] = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
        ("containerd-", "containerd"),
    ];
    let unit = part
        .strip_suffix(".scope")
        .or_else(|| part.strip_suffix(".slice"));
    if let Some(unit) = unit {
        for (prefix, runtime) in SCOPES {
            if let Some(id) = unit.strip_prefix(prefix).filter(|id| is_hex_id(id)) {
                return Some(container(runtime, id));
            }
        }
        // crio-conmon-ID.scope and libpod-conmon-ID.scope hold the monitor, not the container.
        // init.scope holds the host's PID 1, which is no container.
        if part.ends_with(".scope") && !part.contains("conmon") && part != "init.scope" {
            return Some(container("systemd", part));
        }
        return None;
    }
    if is_hex_id(part) {
        let runtime = match parent {
            "docker" => "docker",
            "libpod_parent" => "podman",
            "crio" => "cri-o",
            p if p.starts_with("pod") || p.starts_with("kubepods") => "kubepods",
            _ => "container",
        };
        return Some(container(runtime, part));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f2c0ab1d3e5f67890123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn runtimes() {
        let cases = [
            (format!("/docker/{ID}"), "docker"),
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (
                format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope"),
                "containerd",
            ),
            (format!("/kubepods.slice/crio-{ID}.scope"), "cri-o"),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
            ),
            (format!("/kubepods/besteffort/pod1234/{ID}"), "kubepods"),
        ];
        for (path, runtime) in cases {
            let c = container_of(&path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(
                (c.runtime.as_str(), c.id.as_str()),
                (runtime, &ID[..12]),
                "{path}"
            );
        }
        let scope = container_of("/user.slice/user-1000.slice/session-3.scope").unwrap();
        assert_eq!(scope, container("systemd", "session-3.scope"));
        for none in ["/", "/init.scope", "/system.slice/cron.service", ""] {
            assert_eq!(container_of(none), None, "{none}");
        }
    }
}
