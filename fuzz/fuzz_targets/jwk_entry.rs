//! `jwk_entry`: see `jwks_sync::__fuzz::jwk_entry` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwks_sync::__fuzz::jwk_entry(data));
