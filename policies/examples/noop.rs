//! Does nothing: the cost of a policy call itself (benchmarks).
#![no_std]

fn decide() -> hook_sdk::Decision {
    hook_sdk::Decision::Continue
}

hook_sdk::export!(decide);
