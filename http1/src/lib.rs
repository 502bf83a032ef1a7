//! HTTP/1.1 as the gateway speaks it, sans-IO: bytes in, decisions and bytes
//! out. No sockets, no runtime, no knowledge of routes or of the proxy's error
//! type; the gateway's I/O drives it and its `error.rs` maps what it refuses.
//!
//! - [`request`]: request heads (limits, framing, host, method rules).
//! - [`target`]: the request-target, parsed once.
//! - [`fields`]: a request's header fields as spans of its head, with edits.
//! - [`headers`]: the hop-by-hop list, `Connection` tokens, `Content-Length`,
//!   `Transfer-Encoding`, `Host` syntax.
//! - [`decoder`]: body framing on the read side (length, chunked, to EOF).
//! - [`encode`]: the forwarded request head and body framing on the write side.
//! - [`response`]: upstream response heads, re-encoded for the client.
//! - [`synth`]: responses the gateway writes itself.
//! - [`bridge`]: requests and responses crossing to another framing (HTTP/2).
//!
//! Framing is the gateway's own (SPEC §6): every forwarded message carries a
//! `Content-Length` or `Transfer-Encoding` written here from the length that
//! was validated, never one copied from the peer.

#![forbid(unsafe_code)]

pub mod bridge;
#[cfg(feature = "check")]
pub mod check;
pub mod decoder;
pub mod encode;
pub mod fields;
pub mod filter;
pub mod headers;
pub mod request;
pub mod response;
pub mod synth;
pub mod target;

pub use bridge::{Bridged, parse_bridged, render_response, request_fields, response_fields};
pub use decoder::{DecodeError, Decoder};
pub use encode::{ChunkSize, Forward, Framing, encode_request};
pub use fields::Fields;
pub use filter::Filter;
pub use headers::{Known, is_field_value, is_hop_by_hop, is_token};
pub use request::{BodyKind, HeadError, Parsed, Partial, RequestHead, parse, parse_into};
pub use response::{Answering, MAX_RESPONSE_HEAD, ParsedResponse, ResponseHead, parse_response};
pub use synth::{Synthesized, encode_prepared_head, encode_synthesized, has_body};
pub use target::{Form, RequestTarget, TargetError};
