//! The gateway: serves a routing plan over HTTP/1.1.
//!
//! Start at [`server::run`]; a connection's life is in [`conn`], one exchange's
//! phases in [`proxy`]. The plan and its lookups come from the `plan` crate.

pub mod accesslog;
pub mod admin;
pub mod body;
pub mod conn;
pub mod demo;
pub mod echo;
pub mod error;
pub mod exchange;
pub mod explain;
pub mod io;
pub mod json;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod policy;
pub mod process;
pub mod proxy;
pub mod server;
pub mod stats;
pub mod upstream;
pub mod worker;
