//! The upstream side: targets parsed once per plan ([`Targets`]), the
//! process-wide health and picks of each upstream ([`health`]), and the
//! per-thread pools of upstream connections ([`Pool`] for HTTP/1.1,
//! [`h2::H2Pool`] for HTTP/2).

pub mod budget;
pub mod h2;
pub mod health;
mod pool;
mod target;

pub use health::{ClusterHealth, UpstreamState, now_ms};
pub use pool::{Pool, UpstreamConn};
pub use target::{Target, Targets, Upstreams, resolve};
