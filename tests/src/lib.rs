//! Test support for the gateway's integration tests: real upstream servers on
//! `127.0.0.1:0`, the real `gateway` binary as a child process, and a small
//! blocking HTTP/1.1 client that can also send raw bytes.

// Test support: a failed expectation here is a failed test, so panicking is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod certs;
pub mod client;
pub mod gateway;
pub mod h2_upstream;
pub mod python;
pub mod scripted;
pub mod upstream;
pub mod websocket;

pub use client::{Client, Response, TlsInfo, TlsOptions, raw_exchange};
pub use gateway::{Gateway, gateway_bin, scratch_dir};
pub use h2_upstream::{H2Seen, H2Upstream};
pub use python::PythonServer;
pub use scripted::{Fail, Script, Scripted};
pub use upstream::{Behavior, Seen, Upstream};
