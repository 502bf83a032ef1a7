//! The one place where failures become HTTP statuses and `x-gateway-error` kinds
//! (SPEC §7).

use http::StatusCode;

/// Why the gateway answered a request itself (or why an exchange ended badly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NoRoute,
    BadRequest,
    BadPath,
    HeadersTooLarge,
    RequestTimeout,
    BodyTooLarge,
    ConnectTimeout,
    UpstreamTimeout,
    ConnectFailed,
    UpstreamReset,
    BadResponse,
    PolicyError,
    /// The client went away before the response was complete (log only).
    ClientClosed,
    /// Writing the response to the client timed out (log only).
    WriteTimeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::NoRoute,
        ErrorKind::BadRequest,
        ErrorKind::BadPath,
        ErrorKind::HeadersTooLarge,
        ErrorKind::RequestTimeout,
        ErrorKind::BodyTooLarge,
        ErrorKind::ConnectTimeout,
        ErrorKind::UpstreamTimeout,
        ErrorKind::ConnectFailed,
        ErrorKind::UpstreamReset,
        ErrorKind::BadResponse,
        ErrorKind::PolicyError,
        ErrorKind::ClientClosed,
        ErrorKind::WriteTimeout,
    ];

    /// The `x-gateway-error` value and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::BadPath => "bad_path",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::UpstreamReset => "upstream_reset",
            ErrorKind::BadResponse => "bad_response",
            ErrorKind::PolicyError => "policy_error",
            ErrorKind::ClientClosed => "client_closed",
            ErrorKind::WriteTimeout => "write_timeout",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NoRoute => StatusCode::NOT_FOUND,
            ErrorKind::BadRequest | ErrorKind::BadPath => StatusCode::BAD_REQUEST,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::ConnectTimeout | ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::ConnectFailed | ErrorKind::UpstreamReset | ErrorKind::BadResponse => StatusCode::BAD_GATEWAY,
            ErrorKind::PolicyError => StatusCode::SERVICE_UNAVAILABLE,
            // Never sent: the client is gone or not reading. 499 is what NGINX logs.
            ErrorKind::ClientClosed | ErrorKind::WriteTimeout => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    /// The short plain-text body of the error response.
    pub fn body(self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no route for this host and path\n",
            ErrorKind::BadRequest => "bad request\n",
            ErrorKind::BadPath => "bad path: encoded slash, backslash or NUL\n",
            ErrorKind::HeadersTooLarge => "request header section too large\n",
            ErrorKind::RequestTimeout => "request timeout\n",
            ErrorKind::BodyTooLarge => "request body too large\n",
            ErrorKind::ConnectTimeout => "upstream connect timeout\n",
            ErrorKind::UpstreamTimeout => "upstream response timeout\n",
            ErrorKind::ConnectFailed => "upstream connection failed\n",
            ErrorKind::UpstreamReset => "upstream connection reset\n",
            ErrorKind::BadResponse => "bad upstream response\n",
            ErrorKind::PolicyError => "policy error\n",
            ErrorKind::ClientClosed | ErrorKind::WriteTimeout => "",
        }
    }

    /// Whether the client connection must close after this error response:
    /// after a framing or timeout error the byte stream can no longer be trusted.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorKind::BadRequest
                | ErrorKind::HeadersTooLarge
                | ErrorKind::RequestTimeout
                | ErrorKind::BodyTooLarge
                | ErrorKind::ClientClosed
                | ErrorKind::WriteTimeout
        )
    }

    /// Failures on the upstream side (counted per cluster).
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectTimeout
                | ErrorKind::UpstreamTimeout
                | ErrorKind::ConnectFailed
                | ErrorKind::UpstreamReset
                | ErrorKind::BadResponse
        )
    }

    /// Index into per-kind counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}
