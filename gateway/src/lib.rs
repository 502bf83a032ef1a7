//! The gateway: serves a routing plan over HTTP/1.1.
//!
//! Start at [`server::run`]; a connection's life is in [`conn`], one
//! exchange's phases in [`proxy`], its one failure path in [`error::fail`].
//! The plan and its lookups come from the `plan` crate, HTTP/1.1 from
//! `http1`, wasm policies from `policy-host`.

#![forbid(unsafe_code)]

pub mod admin;
pub mod body;
pub mod cli;
pub mod conn;
pub mod error;
pub mod generation;
pub mod io;
pub mod load;
pub mod observe;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod session;
pub mod upstream;
pub mod worker;
