//! `jwks_document`: see `jwks_sync::__fuzz::jwks_document` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwks_sync::__fuzz::jwks_document(data));
