//! The routing plan: the validated, serialized seam between compile time and run time.
//!
//! The compiler builds a [`Plan`] from `gateway.yaml`; the gateway loads it (from an
//! artifact or straight from the compiler) into a [`Router`], whose lookups run on
//! borrowed `&str` and allocate nothing. This crate knows nothing of YAML, tokio, hyper
//! or wasmtime.

#![forbid(unsafe_code)]

pub mod abi;
mod artifact;
mod builder;
mod hash;
mod host;
mod model;
mod normalize;
mod path;
#[cfg(feature = "reference")]
pub mod reference;
mod router;
mod wrr;

pub use artifact::{ArtifactError, Decoded, FORMAT_VERSION, decode, encode, sha256_hex};
pub use builder::{HostPattern, PlanBuilder, parse_host_pattern, split_prefix};
pub use host::{HostTrie, host_without_port, host_without_port_bytes};
pub use model::{
    AccessLog, Cluster, HostNode, Limits, LogDestination, LogField, NONE, OnError, PathNode, Plan, Policy,
    PolicyLimits, PoolSettings, Route, Timeouts, Upstream,
};
pub use normalize::{Dot, PathError, is_dot_segment, match_segment, normalize_path};
pub use path::PrefixTree;
pub use router::{Match, Router, RouterError, Tier};
pub use wrr::{MAX_TABLE_LEN, WrrPicker, smooth_wrr_sequence};
