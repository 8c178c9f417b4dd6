//! Kernel ABI constants the probes and the decoder agree on. These are user-visible ABI
//! (signal numbers, sigaction handler values, siginfo layout), stable across kernels.

pub const SIGCHLD: u32 = 17;
/// `SIG_DFL`.
pub const SIG_DFL: u64 = 0;
/// `SIG_IGN`.
pub const SIG_IGN: u64 = 1;
/// `SA_NOCLDWAIT`: children of this process are released at exit.
pub const SA_NOCLDWAIT: u64 = 2;
/// Highest signal number (`_NSIG`).
pub const NSIG: u32 = 64;
/// waitid's `WNOWAIT`: leave the child waitable.
pub const WNOWAIT: u32 = 0x0100_0000;
/// Offset of `si_code` in a `siginfo_t`.
pub const SIGINFO_CODE: usize = 8;
/// Offset of `si_value` in a `siginfo_t` sent with `SI_QUEUE` (after `si_pid`, `si_uid`).
pub const SIGINFO_VALUE: usize = 24;
/// `SI_QUEUE`: si_code of `sigqueue()` and `rt_tgsigqueueinfo()`.
pub const SI_QUEUE: i32 = -1;
/// Offset of `si_pid` in a `siginfo_t` (64-bit: the union starts at 16).
pub const SIGINFO_PID: usize = 16;
/// Offset of `si_status` in a `siginfo_t` for SIGCHLD.
pub const SIGINFO_STATUS: usize = 24;
/// `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED`: si_code values of a child that exited.
pub const CLD_EXITED: i32 = 1;
pub const CLD_DUMPED: i32 = 3;
