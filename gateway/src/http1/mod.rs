//! HTTP/1.1 on both sides, owned by the gateway. Client side: request heads
//! parsed with `httparse` under our limits, request bodies decoded and
//! streamed, responses encoded; owning it is what lets every refusal (400, 408,
//! 431) carry `x-gateway-error` and produce an access-log line, and lets
//! `CL + TE` be refused instead of silently resolved. Upstream side: the
//! forwarded head encoded from the request, the response head parsed straight
//! into the client's head, bodies copied between the two sockets' buffers: no
//! task, channel or header map per request.

pub mod body;
pub mod chunked;
pub mod head;
pub mod io;
pub mod upstream;
pub mod write;
