//! `verify_token`: see `jwks_sync::__fuzz::verify_token` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwks_sync::__fuzz::verify_token(data));
