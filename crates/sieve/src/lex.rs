//! Sieve's lexical grammar (RFC 5228 2.2-2.4, 8.1): identifiers, tags,
//! numbers with K/M/G, quoted strings and `text:` multi-line strings,
//! comments, and the punctuation between them. Every token knows where it
//! started, so errors can say line and column.

use crate::{Error, Position};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Identifier(String),
    /// `:name`, without the colon, lower case.
    Tag(String),
    Number(u64),
    String(String),
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    LeftBrace,
    RightBrace,
    Comma,
    Semicolon,
}

impl Token {
    /// How the token is named in error messages.
    pub fn describe(&self) -> String {
        match self {
            Token::Identifier(i) => format!("identifier \"{i}\""),
            Token::Tag(t) => format!("tag \":{t}\""),
            Token::Number(n) => format!("number {n}"),
            Token::String(_) => "a string".to_string(),
            Token::LeftBracket => "\"[\"".to_string(),
            Token::RightBracket => "\"]\"".to_string(),
            Token::LeftParen => "\"(\"".to_string(),
            Token::RightParen => "\")\"".to_string(),
            Token::LeftBrace => "\"{\"".to_string(),
            Token::RightBrace => "\"}\"".to_string(),
            Token::Comma => "\",\"".to_string(),
            Token::Semicolon => "\";\"".to_string(),
        }
    }
}

/// Splits a script into tokens.
pub fn tokens(script: &str) -> Result<Vec<(Token, Position)>, Error> {
    Lexer {
        s: script.as_bytes(),
        text: script,
        i: 0,
        line: 1,
        line_start: 0,
        counted: std::cell::Cell::new((0, 0)),
    }
    .run()
}

struct Lexer<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    line: u32,
    line_start: usize,
    /// Characters counted up to byte `counted` of the current line, so
    /// that finding a column costs only the bytes since the last one.
    counted: std::cell::Cell<(usize, u32)>,
}

impl Lexer<'_> {
    fn run(mut self) -> Result<Vec<(Token, Position)>, Error> {
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            let at = self.position();
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' => self.newline(),
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                b'/' if self.s.get(self.i + 1) == Some(&b'*') => {
                    self.i += 2;
                    loop {
                        match self.peek() {
                            None => {
                                return Err(Error::at(
                                    at,
                                    "the comment \"/*\" is never closed with \"*/\"",
                                ));
                            }
                            Some(b'*') if self.s.get(self.i + 1) == Some(&b'/') => {
                                self.i += 2;
                                break;
                            }
                            Some(b'\n') => self.newline(),
                            Some(_) => self.i += 1,
                        }
                    }
                }
                b'"' => out.push((Token::String(self.quoted(at)?), at)),
                b'[' | b']' | b'(' | b')' | b'{' | b'}' | b',' | b';' => {
                    self.i += 1;
                    out.push((
                        match c {
                            b'[' => Token::LeftBracket,
                            b']' => Token::RightBracket,
                            b'(' => Token::LeftParen,
                            b')' => Token::RightParen,
                            b'{' => Token::LeftBrace,
                            b'}' => Token::RightBrace,
                            b',' => Token::Comma,
                            _ => Token::Semicolon,
                        },
                        at,
                    ));
                }
                b'0'..=b'9' => out.push((Token::Number(self.number(at)?), at)),
                b':' => {
                    self.i += 1;
                    let name = self.identifier();
                    if name.is_empty() {
                        return Err(Error::at(
                            at,
                            "\":\" must be followed by a tag name, as in \":contains\"",
                        ));
                    }
                    out.push((Token::Tag(name.to_ascii_lowercase()), at));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let name = self.identifier();
                    if name.eq_ignore_ascii_case("text") && self.peek() == Some(b':') {
                        self.i += 1;
                        out.push((Token::String(self.multiline(at)?), at));
                    } else {
                        out.push((Token::Identifier(name.to_ascii_lowercase()), at));
                    }
                }
                _ => {
                    let ch = self.text[self.i..].chars().next().unwrap_or('?');
                    return Err(Error::at(at, format!("unexpected character {ch:?}")));
                }
            }
        }
        Ok(out)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn position(&self) -> Position {
        let (mut at, mut chars) = self.counted.get();
        if at < self.line_start || at > self.i {
            (at, chars) = (self.line_start, 0);
        }
        chars += self.text[at..self.i].chars().count() as u32;
        self.counted.set((self.i, chars));
        Position {
            line: self.line,
            column: chars + 1,
        }
    }

    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
        self.line_start = self.i;
    }

    fn identifier(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        self.text[start..self.i].to_string()
    }

    /// A number with an optional K, M or G quantifier (RFC 5228 2.4.1).
    fn number(&mut self, at: Position) -> Result<u64, Error> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        let too_big = || Error::at(at, "the number is too large (the largest is 2^63 - 1)");
        let n: u64 = self.text[start..self.i].parse().map_err(|_| too_big())?;
        let shift = match self.peek().map(|c| c.to_ascii_uppercase()) {
            Some(b'K') => 10,
            Some(b'M') => 20,
            Some(b'G') => 30,
            _ => 0,
        };
        if shift > 0 {
            self.i += 1;
        }
        let n = n.checked_mul(1 << shift).ok_or_else(too_big)?;
        if n > i64::MAX as u64 {
            return Err(too_big());
        }
        if self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::at(
                at,
                "a number may only be followed by K, M or G, as in 100K",
            ));
        }
        Ok(n)
    }

    /// A quoted string: `\"` and `\\` are escapes; any other backslash is
    /// dropped before the character it precedes (RFC 5228 2.4.2).
    fn quoted(&mut self, at: Position) -> Result<String, Error> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(Error::at(at, "the string is never closed with '\"'")),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        None => {
                            return Err(Error::at(at, "the string is never closed with '\"'"));
                        }
                        Some(b'\n') => {
                            out.push(b'\n');
                            self.newline();
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                Some(b'\n') => {
                    out.push(b'\n');
                    self.newline();
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
        // Input is a &str and only ASCII bytes were dropped: still UTF-8.
        String::from_utf8(out).map_err(|_| Error::at(at, "the string is not valid UTF-8"))
    }

    /// `text:` up to a line holding a single "."; a leading ".." on a
    /// line stands for "." (RFC 5228 2.4.2).
    fn multiline(&mut self, at: Position) -> Result<String, Error> {
        // Rest of the `text:` line: white space and an optional comment.
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                b'\n' => break,
                _ => {
                    return Err(Error::at(
                        at,
                        "\"text:\" must end its line; the text starts on the next one",
                    ));
                }
            }
        }
        if self.peek().is_none() {
            return Err(Error::at(
                at,
                "\"text:\" is never ended by a line holding \".\"",
            ));
        }
        self.newline();
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.peek().is_some_and(|c| c != b'\n') {
                self.i += 1;
            }
            let line = self.text[start..self.i].trim_end_matches('\r');
            if line == "." {
                if self.peek().is_some() {
                    self.newline();
                }
                return Ok(out);
            }
            if self.peek().is_none() {
                return Err(Error::at(
                    at,
                    "\"text:\" is never ended by a line holding \".\"",
                ));
            }
            out.push_str(
                line.strip_prefix('.')
                    .filter(|l| l.starts_with('.'))
                    .unwrap_or(line),
            );
            out.push_str("\r\n");
            self.newline();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        tokens(s).unwrap().into_iter().map(|(t, _)| t).collect()
    }

    fn err(s: &str) -> (u32, u32, String) {
        let e = tokens(s).unwrap_err();
        (e.position.line, e.position.column, e.message)
    }

    #[test]
    fn every_kind_of_token() {
        assert_eq!(
            toks("IF Header :Is [\"a\\\"b\", \"c\\\\d\\e\"] 10K; # c\n/* x\n y */ { } ( ) 1G"),
            vec![
                Token::Identifier("if".into()),
                Token::Identifier("header".into()),
                Token::Tag("is".into()),
                Token::LeftBracket,
                Token::String("a\"b".into()),
                Token::Comma,
                Token::String("c\\de".into()),
                Token::RightBracket,
                Token::Number(10240),
                Token::Semicolon,
                Token::LeftBrace,
                Token::RightBrace,
                Token::LeftParen,
                Token::RightParen,
                Token::Number(1 << 30),
            ]
        );
    }

    #[test]
    fn multiline_strings() {
        let script = "reject text: # why\r\nNo.\r\n..dotted\r\n.\r\n;";
        assert_eq!(
            toks(script),
            vec![
                Token::Identifier("reject".into()),
                Token::String("No.\r\n.dotted\r\n".into()),
                Token::Semicolon
            ]
        );
        let (_, position) = &tokens(script).unwrap()[2];
        assert_eq!((position.line, position.column), (5, 1));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(err("keep;\n  \"open").0, 2);
        assert_eq!(err("keep;\n  \"open").1, 3);
        assert!(err("/* never").2.contains("*/"));
        assert_eq!(err("size :over 5X;").1, 12);
        assert!(
            err("size :over 99999999999999999999;")
                .2
                .contains("too large")
        );
        assert!(err("size :over 9999999999999G;").2.contains("too large"));
        assert!(err("keep; @").2.contains("'@'"));
        assert_eq!(err("x\ny\n  : z").0, 3);
        assert!(err("reject text: oops\n.\n").2.contains("end its line"));
        assert!(err("reject text:\nno end\n").2.contains("never ended"));
        assert_eq!(err("\"é\" \"").1, 5, "columns count characters");
    }
}
