//! `cache_headers`: see `jwks_sync::__fuzz::cache_headers` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwks_sync::__fuzz::cache_headers(data));
