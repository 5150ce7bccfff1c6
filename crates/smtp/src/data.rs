//! The DATA body (RFC 5321 4.1.1.4, 4.5.2), decoded without I/O: dot
//! stuffing removed, and the end found only at `<CRLF>.<CRLF>`.
//!
//! A bare LF or a bare CR is never a line end here (RFC 5321 2.3.8): a
//! server that ends DATA at `<LF>.<LF>` or the like lets a second message
//! hidden in the first be delivered as if it came on its own (SMTP
//! smuggling, CVE-2023-51764 and its kin). Such a message is read to its
//! real end and refused whole, as Postfix's `smtpd_forbid_bare_newline`
//! and Exim's fixes do. [`check_bdat`] holds BDAT content to the same
//! rules, so that nothing stored can smuggle when it is relayed onwards.

/// Why a message read in full is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A LF without a CR before it, or a CR without a LF after it.
    BareLineBreak,
    /// A NUL octet (not allowed in 8BITMIME text either, RFC 6152 2).
    Nul,
    /// A line longer than the limit.
    LineTooLong,
    /// More octets than the size limit.
    TooBig,
    /// The server holds as many messages in memory as it may
    /// ([`door::InFlight`]); the client should try again later.
    Busy,
}

impl Problem {
    /// The reply for a message refused for this problem.
    pub fn reply(self, max_size: usize, max_line: usize) -> String {
        match self {
            Problem::BareLineBreak => "550 5.6.11 Bare CR or LF in the message: every line must \
                 end with CRLF (RFC 5321 2.3.8); nothing was delivered."
                .to_string(),
            Problem::Nul => "550 5.6.0 NUL octets are not allowed in a message; \
                 nothing was delivered."
                .to_string(),
            Problem::LineTooLong => format!(
                "552 5.3.4 A line of the message is longer than {max_line} bytes; \
                 nothing was delivered."
            ),
            Problem::TooBig => {
                format!("552 5.3.4 Messages are limited to {max_size} bytes.")
            }
            Problem::Busy => BUSY.to_string(),
        }
    }
}

/// The reply to a message refused because too many are in flight at
/// once (RFC 5321 4.2.2 452, RFC 3463 4.3.1: the system's resources).
pub const BUSY: &str = "452 4.3.1 Too many messages are arriving at once; nothing was stored, \
                        try again in a few minutes.";

/// Decodes a DATA body fed in pieces of any size.
pub struct DotDecoder {
    state: State,
    max_size: usize,
    max_line: usize,
    line: usize,
    body: Vec<u8>,
    problem: Option<Problem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CRLF (DATA's own CRLF counts: an empty message is `.CRLF`).
    LineStart,
    /// A line that began with a dot.
    Dot,
    /// `.CR` at the start of a line: one LF more ends the message.
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, after a CR.
    Cr,
    Done,
}

impl DotDecoder {
    pub fn new(max_size: usize, max_line: usize) -> DotDecoder {
        DotDecoder {
            state: State::LineStart,
            max_size,
            max_line,
            line: 0,
            body: Vec::new(),
            problem: None,
        }
    }

    /// Takes what it can of `input`: the number of octets used, which is
    /// all of them unless the end of the message was among them.
    pub fn feed(&mut self, input: &[u8]) -> usize {
        for (i, &b) in input.iter().enumerate() {
            self.byte(b);
            if self.state == State::Done {
                return i + 1;
            }
        }
        input.len()
    }

    /// Octets of the message kept so far.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// Refuses the message for `problem` (unless another came first): the
    /// rest is read to its end and dropped.
    pub fn refuse(&mut self, problem: Problem) {
        self.flag(problem);
    }

    /// Whether `<CRLF>.<CRLF>` was seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The message (lines ending in CRLF), or why it is refused.
    pub fn finish(self) -> Result<Vec<u8>, Problem> {
        match self.problem {
            Some(p) => Err(p),
            None => Ok(self.body),
        }
    }

    fn byte(&mut self, b: u8) {
        self.state = match (self.state, b) {
            (State::Done, _) => State::Done,
            (State::LineStart, b'.') => State::Dot,
            (State::Dot, b'\r') => State::DotCr,
            (State::DotCr, b'\n') => State::Done,
            // `.CR` and then not LF: the dot was stuffing, the CR bare.
            (State::DotCr, b) => {
                self.flag(Problem::BareLineBreak);
                self.push(b'\r');
                self.text(b)
            }
            // A leading dot before other text was doubled (RFC 5321 4.5.2).
            (State::LineStart | State::Dot | State::Text, b) => self.text(b),
            (State::Cr, b'\n') => {
                self.push(b'\r');
                self.push(b'\n');
                self.line = 0;
                State::LineStart
            }
            (State::Cr, b) => {
                self.flag(Problem::BareLineBreak);
                self.push(b'\r');
                self.text(b)
            }
        };
    }

    /// One octet inside a line.
    fn text(&mut self, b: u8) -> State {
        match b {
            b'\r' => return State::Cr,
            // A bare LF: content, never a line start, so `<LF>.<LF>` and
            // `<LF>.<CRLF>` end nothing.
            b'\n' => self.flag(Problem::BareLineBreak),
            0 => self.flag(Problem::Nul),
            _ => {}
        }
        self.push(b);
        State::Text
    }

    fn push(&mut self, b: u8) {
        self.line += 1;
        if self.line > self.max_line + 2 {
            self.flag(Problem::LineTooLong);
        }
        if self.problem.is_some() {
            return;
        }
        if self.body.len() >= self.max_size {
            self.flag(Problem::TooBig);
            return;
        }
        self.body.push(b);
    }

    /// The first problem wins; what is read after it is dropped.
    fn flag(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
            self.body = Vec::new();
        }
    }
}

/// BDAT content (RFC 3030) carries no dot stuffing and ends by its count,
/// but without BINARYMIME it is still text: lines end in CRLF and hold no
/// NUL (RFC 3030 3, RFC 5321 2.3.8).
pub fn check_bdat(message: &[u8]) -> Result<(), Problem> {
    let mut problem = None;
    for i in memchr::memchr3_iter(b'\r', b'\n', 0, message) {
        let bare = match message[i] {
            b'\r' => message.get(i + 1) != Some(&b'\n'),
            b'\n' => i == 0 || message[i - 1] != b'\r',
            _ => {
                problem.get_or_insert(Problem::Nul);
                continue;
            }
        };
        if bare {
            return Err(Problem::BareLineBreak);
        }
    }
    problem.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` one octet at a time and in one piece: both give the
    /// same answer and the same unused rest.
    fn decode(input: &[u8]) -> (Result<Vec<u8>, Problem>, Vec<u8>) {
        let mut whole = DotDecoder::new(1 << 20, 1000);
        let used = whole.feed(input);
        let mut bytewise = DotDecoder::new(1 << 20, 1000);
        let mut used_bytewise = 0;
        for b in input {
            if bytewise.is_done() {
                break;
            }
            used_bytewise += bytewise.feed(std::slice::from_ref(b));
        }
        assert_eq!(used, used_bytewise);
        assert_eq!(whole.is_done(), bytewise.is_done());
        let rest = input[used..].to_vec();
        if !whole.is_done() {
            return (Err(Problem::TooBig), rest);
        }
        let (a, b) = (whole.finish(), bytewise.finish());
        assert_eq!(a, b);
        (a, rest)
    }

    #[test]
    fn plain_message_and_dot_stuffing() {
        let (body, rest) = decode(b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n");
        assert_eq!(body.unwrap(), b"Subject: x\r\n\r\n.leading dot\r\n");
        assert_eq!(rest, b"QUIT\r\n");
        assert_eq!(decode(b".\r\n").0.unwrap(), b"");
    }

    #[test]
    fn only_crlf_dot_crlf_ends_the_message() {
        for smuggled in [
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r\n.\n",
            b"\n.\r",
            b"\r.\r",
            b"\r.\r\n",
            b"\r\n.\r",
        ] {
            let mut input = b"Subject: a\r\n\r\nbody".to_vec();
            input.extend_from_slice(smuggled);
            input.extend_from_slice(b"MAIL FROM:<x@y>\r\nRCPT TO:<a@b>\r\nDATA\r\n");
            input.extend_from_slice(b"Subject: smuggled\r\n\r\nbad\r\n.\r\nQUIT\r\n");
            let (body, rest) = decode(&input);
            assert_eq!(body, Err(Problem::BareLineBreak), "{smuggled:?}");
            assert_eq!(rest, b"QUIT\r\n", "{smuggled:?}");
        }
    }

    #[test]
    fn nul_long_lines_and_size() {
        assert_eq!(decode(b"a\0b\r\n.\r\n").0, Err(Problem::Nul));
        let long = [vec![b'x'; 1003], b"\r\n.\r\n".to_vec()].concat();
        assert_eq!(decode(&long).0, Err(Problem::LineTooLong));
        let ok = [vec![b'x'; 1000], b"\r\n.\r\n".to_vec()].concat();
        assert!(decode(&ok).0.is_ok());
        let mut small = DotDecoder::new(10, 1000);
        small.feed(b"0123456789abc\r\n.\r\n");
        assert_eq!(small.finish(), Err(Problem::TooBig));
    }

    #[test]
    fn bdat_content_is_text() {
        assert_eq!(check_bdat(b"a\r\nb\r\n"), Ok(()));
        assert_eq!(check_bdat(b"a\nb\r\n"), Err(Problem::BareLineBreak));
        assert_eq!(check_bdat(b"\nb"), Err(Problem::BareLineBreak));
        assert_eq!(check_bdat(b"a\rb\r\n"), Err(Problem::BareLineBreak));
        assert_eq!(check_bdat(b"a\r"), Err(Problem::BareLineBreak));
        assert_eq!(check_bdat(b"a\0\r\n"), Err(Problem::Nul));
    }
}
