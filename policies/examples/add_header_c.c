// The add-header policy in C, to show the ABI is language-neutral:
//   clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -Wl,--export=... (see build.sh)
typedef int i32;

#define IMPORT(name) __attribute__((import_module("hook"), import_name(name)))
IMPORT("config_get") i32 config_get(const char *key, i32 key_len, char *buf, i32 cap);
IMPORT("set_header") i32 set_header(const char *name, i32 name_len, const char *value, i32 value_len);

static char name[128];
static char value[1024];

__attribute__((export_name("hook_abi_v1"))) void hook_abi_v1(void) {}

__attribute__((export_name("on_request"))) i32 on_request(void) {
    i32 n = config_get("name", 4, name, sizeof name);
    i32 v = config_get("value", 5, value, sizeof value);
    if (n >= 0 && n <= (i32)sizeof name && v >= 0 && v <= (i32)sizeof value) {
        set_header(name, n, value, v);
    }
    return 0; /* continue */
}
