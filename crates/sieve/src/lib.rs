//! Sieve (RFC 5228), the mail filtering language users and their clients
//! already know, with the extensions Satchel offers. Pure: a script is
//! compiled once ([`Script::compile`]), then run against a message and its
//! envelope ([`Script::run`]); running gives the actions to carry out and
//! never touches a mailbox, a network or a clock of its own.
//!
//! Written from the RFCs (sieve-rs is AGPL and was not read).

mod compile;
mod date;
mod lex;
mod matching;
mod message;
mod parse;
mod run;

pub use compile::{EXTENSIONS, Script};
pub use message::Message;
pub use run::{Action, Context, Location, MAX_INCLUDE_DEPTH, MAX_INCLUDES, Outcome};

/// A place in a script: line and column, both from 1 (columns count
/// characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// Why a script does not compile, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {}, column {}: {message}", position.line, position.column)]
pub struct Error {
    pub position: Position,
    pub message: String,
}

impl Error {
    pub(crate) fn at(position: Position, message: impl Into<String>) -> Error {
        Error {
            position,
            message: message.into(),
        }
    }
}

/// Largest script accepted, in bytes (ManageSieve's and `satchel filter
/// set`'s limit too).
pub const MAX_SCRIPT_SIZE: usize = 256 * 1024;
/// Most actions one run may take; a script past it fails (and the message
/// is kept, RFC 5228 2.10.6).
pub const MAX_ACTIONS: usize = 64;
/// Most redirects one run may make.
pub const MAX_REDIRECTS: usize = 4;
