use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See, live or after the fact, who forked whom, who exited how, who reaped them and when,
/// which signals were sent and which never arrived.
#[derive(Parser)]
#[command(name = "tracer", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream process lifecycle events (fork, exec, exit, wait, reap, signals) from the kernel.
    Trace(tracer::trace::TraceArgs),
    /// Run the zombie and dropped-signal detectors over a log written by `trace --format json`.
    Replay(tracer::replay::ReplayArgs),
    /// Show the process tree now, marking zombies and their reapers, namespace inits and
    /// containers.
    Tree(tracer::tree::TreeArgs),
    /// Run as a container's PID 1: reap every child, forward signals, report what was reaped.
    Init(tracer::init::InitArgs),
}

/// `tracer init` parsed on its own: as a container's PID 1 it lives for the container's whole
/// life, so it does not build (or keep resident) the other subcommands' argument parsers.
#[derive(Parser)]
#[command(name = "tracer init", about = INIT_ABOUT, long_about = None)]
struct InitCli {
    #[command(flatten)]
    args: tracer::init::InitArgs,
}

const INIT_ABOUT: &str =
    "Run as a container's PID 1: reap every child, forward signals, report what was reaped";

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let result = if argv.nth(1).is_some_and(|command| command == "init") {
        let args = std::iter::once("tracer init".into()).chain(argv);
        tracer::init::run(InitCli::parse_from(args).args)
    } else {
        match Cli::parse().command {
            Command::Trace(args) => tracer::trace::run(args),
            Command::Init(args) => tracer::init::run(args),
            Command::Replay(args) => tracer::replay::run(args),
            Command::Tree(args) => tracer::tree::run(args),
        }
    };
    match result {
        Ok(code) => code,
        // A reader that went away (`tracer trace | head`) is a normal end, not an error.
        Err(err)
            if err.chain().any(|cause| {
                cause
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("tracer: {}", without_errno(&format!("{err:#}")));
            ExitCode::FAILURE
        }
    }
}

/// `message` without the ` (os error N)` that system errors append: the words before it
/// already say what went wrong.
fn without_errno(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" (os error ") {
        let tail = &rest[at + " (os error ".len()..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && tail[digits..].starts_with(')') {
            out.push_str(&rest[..at]);
            rest = &tail[digits + 1..];
        } else {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_errno;

    #[test]
    fn system_errors_read_without_their_number() {
        let err = std::io::Error::from_raw_os_error(28);
        assert_eq!(
            without_errno(&format!("writing the output: {err}")),
            "writing the output: No space left on device"
        );
        assert_eq!(
            without_errno("cannot open a (os error 2): b (os error 13)"),
            "cannot open a: b"
        );
        assert_eq!(without_errno("a (os error x)"), "a (os error x)");
        assert_eq!(without_errno("pid (os error 7"), "pid (os error 7");
    }
}
