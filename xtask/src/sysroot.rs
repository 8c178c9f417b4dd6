//! A sysroot holding `core` for the BPF target, for nightlies installed without `rust-src`.
//!
//! `-Z build-std=core` needs the `rust-src` component. Where it is missing and cannot be
//! downloaded, the same nightly's `rust-docs` component still carries every source file of
//! `core` (rustdoc's "source" pages); we recover them, compile `core` and an empty
//! `compiler_builtins` (the BPF backend inlines memory intrinsics) for `bpfel-unknown-none`, and
//! point the eBPF build at the result with `--sysroot`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::toolchain::Nightly;

/// Target the probes are built for.
pub const BPF_TARGET: &str = "bpfel-unknown-none";

/// Builds (or reuses) the sysroot under `target_dir`; returns its root.
pub fn ensure(nightly: &Nightly, target_dir: &Path) -> Result<PathBuf> {
    let root = target_dir.join("bpf-sysroot");
    let stamp = root.join("nightly-version");
    let version = nightly.version_line()?;
    if fs::read_to_string(&stamp).is_ok_and(|s| s == version) {
        return Ok(root);
    }
    let docs = nightly.sysroot.join("share/doc/rust/html/src/core");
    if !docs.is_dir() {
        bail!(
            "the nightly toolchain has neither the rust-src nor the rust-docs component, so \
             `core` cannot be built for BPF: install rust-src (rustup component add rust-src \
             --toolchain nightly)"
        );
    }
    eprintln!("xtask: nightly has no rust-src; building core for {BPF_TARGET} from its rust-docs");
    let _ = fs::remove_dir_all(&root);
    let src = root.join("src");
    let files = extract_sources(&docs, &src)?;
    let lib = root.join("lib/rustlib").join(BPF_TARGET).join("lib");
    fs::create_dir_all(&lib)?;
    let core_lib = src.join("library/core/src/lib.rs");
    // Documentation files pulled in with include_str! are not part of the rustdoc pages; they
    // only feed doc attributes, so empty stand-ins are exact for code generation.
    for _ in 0..4 {
        let out = compile(nightly, "core", &core_lib, &lib, &root)?;
        let missing = missing_includes(&out);
        if missing.is_empty() {
            break;
        }
        for file in missing {
            let path = Path::new(&file);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(path, "")?;
        }
    }
    if !lib.join("libcore.rlib").exists() {
        let out = compile(nightly, "core", &core_lib, &lib, &root)?;
        bail!("compiling core for {BPF_TARGET} failed:\n{out}");
    }
    let builtins = src.join("compiler_builtins.rs");
    fs::write(
        &builtins,
        "#![feature(compiler_builtins)]\n#![compiler_builtins]\n#![no_std]\n",
    )?;
    compile(nightly, "compiler_builtins", &builtins, &lib, &root)?;
    if !lib.join("libcompiler_builtins.rlib").exists() {
        bail!("compiling compiler_builtins for {BPF_TARGET} failed");
    }
    fs::write(&stamp, version)?;
    eprintln!(
        "xtask: recovered {files} source files; sysroot at {}",
        root.display()
    );
    Ok(root)
}

/// Runs rustc; returns its stderr (rustc's own failure is judged by the caller from the
/// missing output file, since a first pass is expected to fail on missing includes).
fn compile(
    nightly: &Nightly,
    name: &str,
    lib_rs: &Path,
    out: &Path,
    sysroot: &Path,
) -> Result<String> {
    let output = Command::new(&nightly.rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "--crate-name",
            name,
            "--edition",
            "2024",
            "--crate-type",
            "rlib",
        ])
        .args(["--target", BPF_TARGET])
        .args([
            "-C",
            "opt-level=3",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=2",
        ])
        .args(["-Z", "force-unstable-if-unmarked", "--cap-lints", "allow"])
        .arg("--sysroot")
        .arg(sysroot)
        .arg(lib_rs)
        .arg("-o")
        .arg(out.join(format!("lib{name}.rlib")))
        .output()
        .with_context(|| format!("running {}", nightly.rustc.display()))?;
    Ok(String::from_utf8_lossy(&output.stderr).into_owned())
}

fn missing_includes(stderr: &str) -> Vec<String> {
    let mut files: Vec<String> = stderr
        .lines()
        .filter_map(|line| line.split_once("couldn't read `"))
        .filter_map(|(_, rest)| rest.split_once('`'))
        .map(|(path, _)| path.to_owned())
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Writes every `*.rs.html` page under `docs` back to the source path it names; returns how
/// many files were written.
fn extract_sources(docs: &Path, out: &Path) -> Result<usize> {
    let mut count = 0;
    let mut stack = vec![docs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !path.to_string_lossy().ends_with(".rs.html") {
                continue;
            }
            let page = fs::read_to_string(&path)?;
            let (name, code) = source_of_page(&page)
                .with_context(|| format!("{} is not a rustdoc source page", path.display()))?;
            let dst = out.join(normalize(name));
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&dst, code)?;
            count += 1;
        }
    }
    Ok(count)
}

/// `library/core/src/../../stdarch/x.rs` → `library/stdarch/x.rs`.
fn normalize(path: &str) -> PathBuf {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.iter().collect()
}

/// The file path a rustdoc source page names and the source text it shows.
fn source_of_page(page: &str) -> Option<(&str, String)> {
    const NAME: &str = "content=\"Source of the Rust file `";
    let name_start = page.find(NAME)? + NAME.len();
    let name_len = page[name_start..].find('`')?;
    let name = &page[name_start..name_start + name_len];
    const CODE: &str = "<pre class=\"rust\"><code>";
    let code_start = page.find(CODE)? + CODE.len();
    let code_len = page[code_start..].find("</code></pre>")?;
    let html = &page[code_start..code_start + code_len];

    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        rest = &rest[lt..];
        let gt = rest.find('>')?;
        let tag = &rest[..=gt];
        rest = &rest[gt + 1..];
        // Line-number anchors carry their number as text; drop tag and text together.
        if tag.contains("data-nosnippet") {
            let end = rest.find("</a>")?;
            rest = &rest[end + 4..];
        }
    }
    text.push_str(rest);
    let mut code = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    if !code.ends_with('\n') {
        code.push('\n');
    }
    Some((name, code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_source_from_a_rustdoc_page() {
        let page = "<meta name=\"description\" content=\"Source of the Rust file \
                    `library/core/src/../../stdarch/a.rs`.\"><pre class=\"rust\"><code>\
                    <a href=#1 id=1 data-nosnippet>1</a><span class=\"kw\">fn </span>f() -&gt; \
                    Vec&lt;u8&gt; { a &amp;&amp; b }\n<a href=#2 id=2 data-nosnippet>2</a>\
                    </code></pre>";
        let (name, code) = source_of_page(page).unwrap();
        assert_eq!(normalize(name), PathBuf::from("library/stdarch/a.rs"));
        assert_eq!(code, "fn f() -> Vec<u8> { a && b }\n");
    }

    #[test]
    fn lists_missing_includes_once() {
        let err = "error: couldn't read `a/b.md`: No such file\nerror: couldn't read `a/b.md`: x\n\
                   error: couldn't read `c.md`: y";
        assert_eq!(missing_includes(err), ["a/b.md", "c.md"]);
    }
}
