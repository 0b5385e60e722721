//! The `jwks` binary, run as a user would.
