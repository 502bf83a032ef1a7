//! What the gateway tells about itself: the record of each exchange, the
//! counters and `/metrics`, the JSON access log, and its own log (`tracing`).

pub mod accesslog;
pub mod exchange;
pub mod json;
pub mod log_output;
pub mod logging;
pub mod metrics;
pub mod per_worker;
pub mod process;
pub mod stats;
pub mod upstream_log;
