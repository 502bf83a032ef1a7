//! The upstream side: targets parsed once per plan ([`Targets`]), the
//! process-wide health and picks of each upstream ([`health`]), and the
//! per-thread pool of upstream connections ([`Pool`]).

pub mod budget;
pub mod health;
mod pool;
mod target;

pub use health::{ClusterHealth, UpstreamState, now_ms};
pub use pool::{Pool, UpstreamConn, connect};
pub use target::{Target, Targets, Upstreams, resolve};
