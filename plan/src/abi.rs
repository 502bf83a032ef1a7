//! The policy hook ABI v1 as data (see `policies/ABI.md`): what the compiler
//! checks modules against and what the gateway links. All values are `i32`.

/// Host functions of import module [`HOST_MODULE`]: `(name, params, results)`.
pub const HOST_FUNCTIONS: [(&str, usize, usize); 11] = [
    ("request_field", 3, 1),
    ("request_header", 4, 1),
    ("request_headers", 2, 1),
    ("config", 2, 1),
    ("config_get", 4, 1),
    ("cluster_index", 2, 1),
    ("set_header", 4, 1),
    ("remove_header", 2, 1),
    ("respond", 3, 1),
    ("respond_header", 4, 1),
    ("log", 3, 0),
];

pub const HOST_MODULE: &str = "hook";
/// Export that marks ABI v1: `func () -> ()`.
pub const VERSION_EXPORT: &str = "hook_abi_v1";
/// Called per request: `func () -> i32`.
pub const ON_REQUEST: &str = "on_request";
/// Optional, once per instance: `func () -> i32`.
pub const INIT: &str = "hook_init";
pub const MEMORY: &str = "memory";

/// Decision codes returned by `on_request`.
pub const CONTINUE: i32 = 0;
pub const RESPOND: i32 = 1;
/// `ROUTE_BASE + i` routes to the policy's `clusters[i]`.
pub const ROUTE_BASE: i32 = 2;

/// Request fields for `request_field`.
pub const FIELD_METHOD: i32 = 0;
pub const FIELD_SCHEME: i32 = 1;
pub const FIELD_AUTHORITY: i32 = 2;
pub const FIELD_PATH: i32 = 3;
pub const FIELD_QUERY: i32 = 4;
pub const FIELD_CLIENT_IP: i32 = 5;
