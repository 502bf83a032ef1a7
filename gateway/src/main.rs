//! The `gateway` binary; the command line is `gateway::cli`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

/// glibc's per-thread arenas grow and trim with `mprotect` under this workload
/// (hundreds of calls a second, each a TLB flush); mimalloc keeps per-thread
/// free lists and does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    gateway::cli::main()
}
