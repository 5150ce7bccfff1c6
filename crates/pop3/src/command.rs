//! One POP3 command line, read without I/O (RFC 1939 3: a keyword in any
//! case, then arguments separated by spaces). Numbers are read here; which
//! state allows which command, and what a number names, is the session's.

/// A command, with what its arguments came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capa,
    Quit,
    Noop,
    Utf8,
    Stls,
    Apop,
    Stat,
    Rset,
    User(String),
    Pass(String),
    /// AUTH with no mechanism lists them (RFC 5034 4 leaves that to
    /// servers; clients probing for SASL send it).
    Auth {
        mechanism: Option<String>,
        initial: Option<String>,
    },
    /// Without an argument: every message. A message number is `None`
    /// when the argument is not one (RFC 1939 5: numbers start at 1).
    List(Option<Number>),
    Uidl(Option<Number>),
    Retr(Number),
    Dele(Number),
    /// TOP msg n (RFC 1939 7): `None` lines when not a number.
    Top(Number, Option<usize>),
    Empty,
    /// An unknown keyword, cut to what may be echoed back.
    Unknown(String),
}

/// A message number as given: `None` when it is not a number from 1 up.
pub type Number = Option<usize>;

impl Command {
    /// The command's keyword, as the state checks name it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Capa => "CAPA",
            Command::Quit => "QUIT",
            Command::Noop => "NOOP",
            Command::Utf8 => "UTF8",
            Command::Stls => "STLS",
            Command::Apop => "APOP",
            Command::Stat => "STAT",
            Command::Rset => "RSET",
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Auth { .. } => "AUTH",
            Command::List(_) => "LIST",
            Command::Uidl(_) => "UIDL",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Top(..) => "TOP",
            Command::Empty => "",
            Command::Unknown(_) => "?",
        }
    }

    /// Whether the command belongs to the TRANSACTION state (RFC 1939 5),
    /// or to AUTHORIZATION (4); CAPA, QUIT and unknown ones to both.
    pub fn state(&self) -> State {
        match self {
            Command::Noop
            | Command::Stat
            | Command::Rset
            | Command::List(_)
            | Command::Uidl(_)
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Top(..) => State::Transaction,
            Command::Utf8
            | Command::Stls
            | Command::Apop
            | Command::User(_)
            | Command::Pass(_)
            | Command::Auth { .. } => State::Authorization,
            Command::Capa | Command::Quit | Command::Empty | Command::Unknown(_) => State::Any,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Authorization,
    Transaction,
    Any,
}

/// Reads a command line (without its CRLF). A password may hold any
/// byte a client sends; invalid UTF-8 is replaced, as it was always read.
pub fn parse(line: &[u8]) -> Command {
    let text = String::from_utf8_lossy(line);
    let (name, arg) = text.split_once(' ').unwrap_or((&text, ""));
    let name = name.to_ascii_uppercase();
    let number = |s: &str| s.trim().parse::<usize>().ok().filter(|&n| n > 0);
    let optional = |s: &str| (!s.trim().is_empty()).then(|| number(s));
    match name.as_str() {
        "" => Command::Empty,
        "CAPA" => Command::Capa,
        "QUIT" => Command::Quit,
        "NOOP" => Command::Noop,
        "UTF8" => Command::Utf8,
        "STLS" => Command::Stls,
        "APOP" => Command::Apop,
        "STAT" => Command::Stat,
        "RSET" => Command::Rset,
        "USER" => Command::User(arg.to_string()),
        "PASS" => Command::Pass(arg.to_string()),
        "AUTH" => {
            let mut parts = arg.split_whitespace();
            Command::Auth {
                mechanism: parts.next().map(str::to_string),
                initial: parts.next().map(str::to_string),
            }
        }
        "LIST" => Command::List(optional(arg)),
        "UIDL" => Command::Uidl(optional(arg)),
        "RETR" => Command::Retr(number(arg)),
        "DELE" => Command::Dele(number(arg)),
        "TOP" => {
            let mut words = arg.split_whitespace();
            let n = words.next().and_then(number);
            let lines = words.next().and_then(|l| l.parse::<usize>().ok());
            Command::Top(n, lines)
        }
        _ => Command::Unknown(
            name.chars()
                .take(20)
                .filter(|c| c.is_ascii_graphic())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_in_any_case_and_their_arguments() {
        assert_eq!(parse(b"stat"), Command::Stat);
        assert_eq!(parse(b"Retr 3"), Command::Retr(Some(3)));
        assert_eq!(parse(b"RETR 0"), Command::Retr(None));
        assert_eq!(parse(b"RETR x"), Command::Retr(None));
        assert_eq!(parse(b"LIST"), Command::List(None));
        assert_eq!(parse(b"LIST 2"), Command::List(Some(Some(2))));
        assert_eq!(parse(b"UIDL -1"), Command::Uidl(Some(None)));
        assert_eq!(parse(b"TOP 1 0"), Command::Top(Some(1), Some(0)));
        assert_eq!(parse(b"TOP 1"), Command::Top(Some(1), None));
        assert_eq!(
            parse(b"PASS two words "),
            Command::Pass("two words ".into())
        );
        assert_eq!(
            parse(b"AUTH PLAIN AGFAYg=="),
            Command::Auth {
                mechanism: Some("PLAIN".into()),
                initial: Some("AGFAYg==".into())
            }
        );
        assert_eq!(parse(b""), Command::Empty);
        assert_eq!(
            parse(b"X\x01\xffY-VERY-LONG-UNKNOWN-COMMAND"),
            Command::Unknown("XY-VERY-LONG-UNKNO".into())
        );
        assert_eq!(parse(b"RETR 99999999999999999999999"), Command::Retr(None));
    }
}
