//! Builds the example policies (policies/build.sh) so the tests load the real
//! modules; their directory reaches the tests as `POLICIES_DIR`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("..");
    let policies = root.join("policies");
    for watched in ["build.sh", "sdk", "examples"] {
        println!("cargo:rerun-if-changed={}", policies.join(watched).display());
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("policies");
    let status = Command::new("sh")
        .arg(policies.join("build.sh"))
        .arg(&out)
        // Build scripts inherit cargo's RUSTC; the policies want a plain rustc.
        .env_remove("RUSTC_WRAPPER")
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!(
            "policies/build.sh failed ({other:?}): install the wasm32-unknown-unknown target \
             (`rustup target add wasm32-unknown-unknown`) and clang + lld, or run .ci/run"
        ),
    }
    println!("cargo:rustc-env=POLICIES_DIR={}", out.display());
}
