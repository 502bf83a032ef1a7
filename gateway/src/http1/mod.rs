//! The client side of HTTP/1.1, owned by the gateway: request heads parsed with
//! `httparse` under our limits, request bodies decoded and streamed, responses
//! encoded. Owning it is what lets every refusal (400, 408, 431) carry
//! `x-gateway-error` and produce an access-log line, and lets `CL + TE` be
//! refused instead of silently resolved.

pub mod body;
pub mod chunked;
pub mod head;
pub mod io;
pub mod write;
