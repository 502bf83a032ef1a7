//! The client side of one exchange, whatever carries it: an HTTP/1.1
//! connection ([`h1::H1`]) or one HTTP/2 stream ([`h2::H2Stream`]). The
//! phases (`proxy`) and the failure path (`error::fail`) are generic over
//! [`side::Client`] and never see the client's framing:
//!
//! - the request body arrives as data at the front of a buffer
//!   ([`side::Client::fill`], [`side::Client::body`], [`side::Client::consume_through`]),
//!   however the client framed it;
//! - every response head is first encoded by `http1` as an HTTP/1.1 head (the
//!   one place where hop-by-hop fields, filters and framing are decided), and
//!   [`side::Client::write`] sends it as the client's protocol wants it: those bytes
//!   on an HTTP/1.1 connection, a HEADERS frame built from them on HTTP/2.

pub mod h1;
pub mod h2;
pub mod side;
