//! The limits of one call: CPU time (checked on epoch ticks) and memory.
//!
//! The time limit is the calling thread's **CPU** time, not wall time: under
//! load a worker is preempted, and a wall-clock limit failed healthy
//! policies. Calls shorter than one epoch tick never reach the check.

use std::time::Duration;

use wasmtime::{ResourceLimiter, StoreContextMut, UpdateDeadline};

use crate::state::HostState;
use crate::stats::Failure;

/// CPU time consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Called on every epoch tick while a call runs past one.
pub(crate) fn on_tick(mut ctx: StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    let state = ctx.data_mut();
    let now = thread_cpu_time();
    let start = *state.cpu_start.get_or_insert(now);
    if now.saturating_sub(start) >= state.def.timeout {
        state.failure = Some(Failure::Timeout);
        return Ok(UpdateDeadline::Interrupt);
    }
    Ok(UpdateDeadline::Continue(1))
}

impl ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.def.memory_bytes {
            self.failure = Some(Failure::Memory);
            return Err(wasmtime::Error::msg("policy memory limit reached"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }
}
