//! Bad command lines: each ends with one clear error line naming what is wrong, a non-zero
//! exit, and no panic. These run as any user: every case fails before the probes would load.

mod common;

use std::process::Command;

struct Failure {
    code: Option<i32>,
    stderr: String,
}

/// Runs the tracer with `args`, with backtraces on so that a panic could not hide.
fn fail(args: &[&str]) -> Failure {
    let output = Command::new(common::tracer())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("running tracer");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.stdout.is_empty(), "{args:?} printed on stdout");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{args:?} panicked: {stderr}"
    );
    Failure {
        code: output.status.code(),
        stderr,
    }
}

/// A usage error: exit 2 and one `error:` line naming `what` (clap follows it with a usage
/// line and a pointer to --help).
fn usage_error(args: &[&str], what: &[&str]) {
    let f = fail(args);
    assert_eq!(f.code, Some(2), "{args:?}: {}", f.stderr);
    let errors: Vec<&str> = f.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{args:?}: {}", f.stderr);
    assert!(errors[0].starts_with("error: "), "{}", f.stderr);
    for word in what {
        assert!(
            errors[0].contains(word),
            "{args:?}: no {word:?} in {:?}",
            errors[0]
        );
    }
}

/// A run-time refusal: exit 1 and exactly one line, `tracer: …`, naming `what`.
fn one_line_refusal(args: &[&str], what: &[&str]) {
    let f = fail(args);
    assert_eq!(f.code, Some(1), "{args:?}: {}", f.stderr);
    assert_eq!(f.stderr.lines().count(), 1, "{args:?}: {}", f.stderr);
    assert!(f.stderr.starts_with("tracer: "), "{}", f.stderr);
    for word in what {
        assert!(
            f.stderr.contains(word),
            "{args:?}: no {word:?} in {}",
            f.stderr
        );
    }
}

#[test]
fn unknown_flag() {
    usage_error(&["trace", "--frobnicate"], &["--frobnicate"]);
}

#[test]
fn unknown_subcommand() {
    usage_error(&["frobnicate"], &["frobnicate"]);
}

#[test]
fn bad_duration() {
    usage_error(
        &["trace", "--duration", "5parsecs"],
        &["invalid duration", "5parsecs"],
    );
    usage_error(&["trace", "--duration=-1s"], &["invalid duration", "-1s"]);
    usage_error(
        &["trace", "--duration", "1.2.3s"],
        &["invalid duration", "1.2.3s"],
    );
}

#[test]
fn bad_ring_size() {
    for bad in ["3M", "1K", "lots", "2G", "0"] {
        usage_error(&["trace", "--ring-size", bad], &["invalid ring size", bad]);
    }
}

#[test]
fn bad_event_kind() {
    usage_error(&["trace", "--events", "fork,forks"], &["forks"]);
}

#[test]
fn output_that_cannot_be_created() {
    let path = "/nonexistent/dir/x";
    one_line_refusal(
        &["trace", "-o", path, "--duration", "1s"],
        &["cannot create", path],
    );
    assert!(!std::path::Path::new(path).exists());
}

#[test]
fn pid_that_does_not_exist() {
    // Above pid_max on any Linux (at most 2^22): no such process, ever.
    one_line_refusal(
        &["trace", "--pid", "999999999", "--duration", "1s"],
        &["999999999"],
    );
    // Within range but not running (the machine's pid_max may be 32768, so stay under it).
    let free = (30_000..32_000)
        .rev()
        .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        .expect("a free pid");
    let free = free.to_string();
    one_line_refusal(&["trace", "--pid", &free, "--duration", "1s"], &[&free]);
}

#[test]
fn pid_and_command_together() {
    usage_error(&["trace", "--pid", "1", "--", "true"], &["--pid"]);
}

/// A log in a temporary file, removed when dropped.
struct Log(std::path::PathBuf);

impl Log {
    fn new(name: &str, content: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tracer-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, content).expect("writing a test log");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn replay_of_a_log_that_is_not_json() {
    let log = Log::new("not-json", "hello, world\nnot a log at all\n");
    one_line_refusal(&["replay", log.path()], &["not a tracer log"]);
}

#[test]
fn replay_of_a_log_from_a_newer_format_version() {
    let log = Log::new(
        "newer",
        "{\"tracer_log\":999,\"start_ns\":0,\"boot_unix_ns\":0,\"boot_id\":\"x\"}\n",
    );
    one_line_refusal(&["replay", log.path()], &["999", "newer"]);
}

#[test]
fn replay_of_an_empty_file() {
    let log = Log::new("empty", "");
    one_line_refusal(&["replay", log.path()], &["empty"]);
}

#[test]
fn replay_of_a_file_that_does_not_exist() {
    let path = "/nonexistent/run.jsonl";
    one_line_refusal(&["replay", path], &["cannot open", path]);
}
