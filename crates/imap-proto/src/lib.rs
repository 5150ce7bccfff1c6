//! The IMAP wire format (RFC 9051, RFC 3501 and the extensions Satchel
//! advertises): framing of lines and literals, the command parser and the
//! response writer. No I/O: the `imap` crate drives it.

pub mod frame;
pub mod parse;
pub mod response;
mod types;
pub mod utf7;

pub use parse::{ParseError, parse_command, parse_section};
pub use types::*;
