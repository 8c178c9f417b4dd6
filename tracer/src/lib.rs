//! The `tracer` library: the eBPF loader and event decoder, the lineage engine, the output
//! sinks and the init. The `tracer` binary is a thin command line over it.

pub mod init;
pub mod trace;
