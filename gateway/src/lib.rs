//! The gateway: serves a routing plan over HTTP/1.1 and HTTP/2.
//!
//! Start at [`server::run`]; a connection's life is in [`conn`] (HTTP/1.1)
//! or `h2conn` (HTTP/2), one exchange's phases in [`proxy`], generic over
//! the client side (`client`), its one failure path in [`error::fail`].
//! The plan and its lookups come from the `plan` crate, HTTP/1.1 from
//! `http1`, HTTP/2 from `h2`, wasm policies from `policy-host`.

#![forbid(unsafe_code)]

// The library API is what the binary, the tests and the benches use: the
// command line, starting a server in-process, loading a plan, and the access
// log's formatting. The rest is the request path's own business.
pub mod cli;
pub mod error;
pub mod load;
pub mod observe;
pub mod server;

mod admin;
mod body;
mod client;
mod conn;
mod generation;
mod h2conn;
mod h2heads;
mod io;
mod lifecycle;
mod proxy;
mod reload;
mod session;
mod stream;
mod timer;
mod tls;
mod upstream;
mod worker;
