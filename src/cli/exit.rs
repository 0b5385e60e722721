//! Exit codes and the one-line error every command ends with on failure.

use std::fmt;

/// Success.
pub(crate) const OK: u8 = 0;
/// `verify`: the token was rejected.
pub(crate) const REJECTED: u8 = 1;
/// The key set could not be loaded.
pub(crate) const NO_KEYS: u8 = 2;
/// Bad arguments or settings (BSD `EX_USAGE`).
pub(crate) const USAGE: u8 = 64;
/// The tool itself failed (BSD `EX_SOFTWARE`).
pub(crate) const INTERNAL: u8 = 70;

/// A failed command: its exit code and one line for stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The process exit code.
    pub(crate) code: u8,
    /// What happened, one line, no trailing period.
    pub(crate) message: String,
}

impl Failure {
    /// Bad arguments or settings.
    pub(crate) fn usage(message: impl fmt::Display) -> Self {
        Self::new(USAGE, message)
    }

    /// The key set could not be loaded.
    pub(crate) fn no_keys(message: impl fmt::Display) -> Self {
        Self::new(NO_KEYS, message)
    }

    /// The tool's own failure.
    pub(crate) fn internal(message: impl fmt::Display) -> Self {
        Self::new(INTERNAL, message)
    }

    /// A failure with `code`; the message is flattened to one line, and
    /// library setting names in it become the flags that set them.
    pub(crate) fn new(code: u8, message: impl fmt::Display) -> Self {
        let message = super::flags::name_flags(&message.to_string());
        let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
        Self { code, message }
    }
}

/// What a command returns.
pub(crate) type Outcome = Result<(), Failure>;
