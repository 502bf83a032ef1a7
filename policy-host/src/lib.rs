//! The host side of wasm policies (SPEC §11, `policies/ABI.md`).
//!
//! - [`Policies`] (`engine.rs`): one wasmtime `Engine` per plan generation,
//!   its pooling allocator sized to the workers, each module checked against
//!   its plan digest, compiled and linked once into an `InstancePre`.
//! - [`EpochTicker`] (`epoch.rs`): the thread that advances the engine's epoch;
//!   it stops and is joined when the generation is dropped.
//! - [`WarmSet`] (`warm.rs`): one worker's warm instances, keyed by the plan
//!   generation's number, recycled after any failure or every
//!   [`CALLS_PER_INSTANCE`] calls.
//! - `limits.rs`: the per-call CPU-time limit (the thread's CPU clock, read on
//!   epoch ticks) and the memory limit.
//! - `host.rs`: the host functions, linked from the ABI table in `plan::abi`.
//!
//! A policy never crashes the gateway: a trap, an exhausted limit or a bad
//! return value is a [`Failure`], counted in [`PolicyStats`], and the
//! policy's `onError` decides what the request gets.

#![forbid(unsafe_code)]

mod engine;
mod epoch;
mod host;
mod limits;
mod state;
mod stats;
mod warm;

pub use engine::Policies;
pub use epoch::EpochTicker;
pub use host::linked_functions;
pub use state::{Decision, Prepared, RequestView};
pub use stats::{Failure, PolicyStats};
pub use warm::{CALLS_PER_INSTANCE, WarmSet};
