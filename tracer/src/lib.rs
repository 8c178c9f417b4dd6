//! The `tracer` library: the eBPF loader and event decoder, the output sinks, and the init.
//! The `tracer` binary is a thin command line over it.

pub mod btf;
pub mod clock;
pub mod decode;
pub mod duration;
pub mod engine;
pub mod event;
pub mod init;
pub mod output;
pub mod probes;
pub mod proc;
pub mod replay;
#[cfg(test)]
#[path = "../../tests/common/rng.rs"]
#[allow(
    dead_code,
    reason = "shared with the integration tests, which use the rest"
)]
mod rng;
#[cfg(test)]
mod samples;
pub mod signals;
pub mod trace;
pub mod tracefs;
pub mod tree;
