#![no_std]
// The probes live in the `tracer-probes` binary (src/main.rs); this library target exists so
// that `tracer` can declare a build-dependency on this crate and be rebuilt when it changes.
