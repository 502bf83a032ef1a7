#!/usr/bin/env sh
# Builds the guest SDK and the example policies to wasm32, stripped, with a
# 64 KiB stack. Usage: policies/build.sh [OUT_DIR]   (default: policies/build)
#
# Uses rustup's rustc when it has the wasm32-unknown-unknown target, else
# Debian's rustc (>= 1.63) with libstd-rust-dev-wasm32 and lld; the C example
# needs clang and wasm-ld (Debian: clang, lld).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/build"}
mkdir -p "$out"

target=wasm32-unknown-unknown
rustc_bin=""
linker_flag=""
if command -v rustc >/dev/null 2>&1 && [ -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
    rustc_bin=rustc
elif [ -x /usr/bin/rustc ] && [ -d "$(/usr/bin/rustc --print sysroot)/lib/rustlib/$target" ]; then
    rustc_bin=/usr/bin/rustc
    for ld in wasm-ld wasm-ld-16 wasm-ld-15 wasm-ld-14; do
        if command -v "$ld" >/dev/null 2>&1; then linker_flag="-C linker=$ld"; break; fi
    done
else
    echo "policies/build.sh: no rustc with the $target target." >&2
    echo "  rustup target add $target" >&2
    echo "  or: apt-get install rustc libstd-rust-dev-wasm32 lld" >&2
    exit 1
fi

flags="--edition 2021 --target $target -C opt-level=s -C panic=abort -C strip=symbols $linker_flag"
# shellcheck disable=SC2086
$rustc_bin $flags --crate-type rlib --crate-name hook_sdk -o "$out/libhook_sdk.rlib" "$here/sdk/src/lib.rs"
for example in canary deny tenant add_header noop; do
    # shellcheck disable=SC2086
    $rustc_bin $flags --crate-type cdylib --crate-name "$example" \
        --extern hook_sdk="$out/libhook_sdk.rlib" -L "$out" \
        -C link-arg=-zstack-size=65536 \
        -o "$out/$example.wasm" "$here/examples/$example.rs"
done

clang_bin=""
for c in clang clang-16 clang-15 clang-14; do
    if command -v "$c" >/dev/null 2>&1; then clang_bin=$c; break; fi
done
if [ -n "$clang_bin" ]; then
    "$clang_bin" --target=wasm32 -O2 -nostdlib -fno-builtin \
        -Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 \
        -o "$out/add_header_c.wasm" "$here/examples/add_header_c.c"
else
    echo "policies/build.sh: clang not found; skipped the C example (apt-get install clang lld)" >&2
fi

for m in "$out"/*.wasm; do
    printf '%-24s %6d bytes\n' "$(basename "$m")" "$(wc -c < "$m")"
done
