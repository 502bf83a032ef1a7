//! The routing plan: the validated, serialized seam between compile time and run time.
//!
//! The compiler builds a [`Plan`] from `gateway.yaml`; the gateway loads it (from an
//! artifact or straight from the compiler) into a [`Router`], whose lookups run on
//! borrowed requests and allocate nothing. This crate knows nothing of YAML, tokio,
//! hyper or wasmtime.

#![forbid(unsafe_code)]

pub mod abi;
mod artifact;
#[cfg(feature = "build")]
pub mod build;
pub mod dfa;
mod hash;
mod host;
mod model;
mod normalize;
mod path;
mod pattern;
#[cfg(feature = "reference")]
pub mod reference;
mod request;
mod route;
mod router;
mod trace;
mod wrr;

pub use artifact::{ArtifactError, Decoded, FORMAT_VERSION, decode, encode, sha256_hex};
pub use host::{HostTrie, host_without_port, host_without_port_bytes};
pub use model::{
    AccessLog, CertificateFiles, Cluster, HealthCheck, HostNode, Http2, Limits, LogDestination, LogField, NONE,
    OnError, Outlier, PathNode, Plan, Policy, PolicyLimits, PoolSettings, RegexDfa, RegexSet, Retry, Table, Timeouts,
    TlsListener, TlsVersion, Upstream, UpstreamProtocol, UpstreamTls,
};
pub use normalize::{Dot, PathError, is_dot_segment, match_segment, normalize_path};
pub use path::{PathWalk, PrefixTree, match_segments};
pub use pattern::{HostPattern, parse_host_pattern, split_prefix};
pub use request::{Failed, OwnedRequest, RequestView};
pub use route::{
    Action, Backend, Condition, HeaderFilter, PathMatch, PathReplace, Redirect, Rewrite, Route, ValueMatch,
    replace_prefix,
};
pub use router::{Match, Router, RouterError, Tier};
pub use trace::{Candidate, TierTrace, Trace};
pub use wrr::{MAX_TABLE_LEN, WrrPicker, smooth_wrr_sequence};
