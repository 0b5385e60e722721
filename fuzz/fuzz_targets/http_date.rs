//! `http_date`: see `jwks_sync::__fuzz::http_date` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwks_sync::__fuzz::http_date(data));
