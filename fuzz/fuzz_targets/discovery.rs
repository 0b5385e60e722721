//! `discovery`: see `jwks_sync::__fuzz::discovery` for the input layout and the oracle.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| jwks_sync::__fuzz::discovery(data));
