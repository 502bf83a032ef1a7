//! The upstream side: targets parsed once per plan ([`Targets`]), and the
//! per-thread pool of upstream connections ([`Pool`]).

mod pool;
mod target;

pub use pool::{Pool, UpstreamConn, connect};
pub use target::{PoolIds, Target, Targets};
