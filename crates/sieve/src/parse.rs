//! Sieve's generic grammar (RFC 5228 8.2): commands with arguments, tests
//! and blocks. What each command means is checked later, by `compile`.

use crate::lex::Token;
use crate::{Error, Position};

/// Deepest nesting of blocks and tests a script may use.
pub const MAX_NESTING: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: String,
    pub arguments: Vec<Argument>,
    pub tests: Vec<Test>,
    pub block: Option<Vec<Command>>,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    pub name: String,
    pub arguments: Vec<Argument>,
    pub tests: Vec<Test>,
    pub position: Position,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Argument {
    /// A string or a list of strings; `single` when it was written as one
    /// string and not as a list.
    Strings {
        values: Vec<String>,
        single: bool,
        position: Position,
    },
    Number(u64, Position),
    Tag(String, Position),
}

impl Argument {
    pub fn position(&self) -> Position {
        match self {
            Argument::Strings { position, .. }
            | Argument::Number(_, position)
            | Argument::Tag(_, position) => *position,
        }
    }
}

/// Parses a token stream into commands.
pub fn commands(tokens: &[(Token, Position)]) -> Result<Vec<Command>, Error> {
    let mut p = Parser { t: tokens, i: 0 };
    let out = p.commands(0)?;
    if let Some((t, at)) = p.t.get(p.i) {
        return Err(Error::at(*at, format!("unexpected {}", t.describe())));
    }
    Ok(out)
}

struct Parser<'a> {
    t: &'a [(Token, Position)],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.t.get(self.i).map(|(t, _)| t)
    }

    /// Where the next token is, or just after the last one.
    fn here(&self) -> Position {
        self.t
            .get(self.i)
            .or_else(|| self.t.last())
            .map(|(_, p)| *p)
            .unwrap_or(Position { line: 1, column: 1 })
    }

    fn unexpected(&self, wanted: &str) -> Error {
        match self.t.get(self.i) {
            Some((t, at)) => Error::at(*at, format!("expected {wanted}, found {}", t.describe())),
            None => Error::at(
                self.here(),
                format!("expected {wanted}, but the script ends"),
            ),
        }
    }

    fn commands(&mut self, depth: usize) -> Result<Vec<Command>, Error> {
        let mut out = Vec::new();
        while let Some(Token::Identifier(_)) = self.peek() {
            out.push(self.command(depth)?);
        }
        Ok(out)
    }

    fn command(&mut self, depth: usize) -> Result<Command, Error> {
        let (name, position) = match self.t.get(self.i) {
            Some((Token::Identifier(n), at)) => (n.clone(), *at),
            _ => return Err(self.unexpected("a command")),
        };
        self.i += 1;
        let (arguments, tests) = self.arguments(depth)?;
        let block = match self.peek() {
            Some(Token::Semicolon) => {
                self.i += 1;
                None
            }
            Some(Token::LeftBrace) => {
                if depth >= MAX_NESTING {
                    return Err(Error::at(self.here(), "blocks are nested too deeply"));
                }
                self.i += 1;
                let inner = self.commands(depth + 1)?;
                match self.peek() {
                    Some(Token::RightBrace) => self.i += 1,
                    _ => return Err(self.unexpected("a command or \"}\"")),
                }
                Some(inner)
            }
            _ => return Err(self.unexpected(&format!("\";\" after the command \"{name}\""))),
        };
        Ok(Command {
            name,
            arguments,
            tests,
            block,
            position,
        })
    }

    /// Arguments, then an optional test or parenthesised test list.
    fn arguments(&mut self, depth: usize) -> Result<(Vec<Argument>, Vec<Test>), Error> {
        let mut arguments = Vec::new();
        loop {
            let at = self.here();
            match self.peek() {
                Some(Token::Tag(t)) => {
                    arguments.push(Argument::Tag(t.clone(), at));
                    self.i += 1;
                }
                Some(Token::Number(n)) => {
                    arguments.push(Argument::Number(*n, at));
                    self.i += 1;
                }
                Some(Token::String(s)) => {
                    arguments.push(Argument::Strings {
                        values: vec![s.clone()],
                        single: true,
                        position: at,
                    });
                    self.i += 1;
                }
                Some(Token::LeftBracket) => {
                    self.i += 1;
                    arguments.push(Argument::Strings {
                        values: self.string_list()?,
                        single: false,
                        position: at,
                    });
                }
                _ => break,
            }
        }
        let tests = match self.peek() {
            Some(Token::Identifier(_)) => vec![self.test(depth + 1)?],
            Some(Token::LeftParen) => {
                self.i += 1;
                let mut tests = vec![self.test(depth + 1)?];
                loop {
                    match self.peek() {
                        Some(Token::Comma) => {
                            self.i += 1;
                            tests.push(self.test(depth + 1)?);
                        }
                        Some(Token::RightParen) => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(self.unexpected("\",\" or \")\" in the test list")),
                    }
                }
                tests
            }
            _ => Vec::new(),
        };
        Ok((arguments, tests))
    }

    fn string_list(&mut self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(Token::String(s)) => {
                    out.push(s.clone());
                    self.i += 1;
                }
                _ => return Err(self.unexpected("a string in the list")),
            }
            match self.peek() {
                Some(Token::Comma) => self.i += 1,
                Some(Token::RightBracket) => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => return Err(self.unexpected("\",\" or \"]\" in the string list")),
            }
        }
    }

    fn test(&mut self, depth: usize) -> Result<Test, Error> {
        if depth >= MAX_NESTING {
            return Err(Error::at(self.here(), "tests are nested too deeply"));
        }
        let (name, position) = match self.t.get(self.i) {
            Some((Token::Identifier(n), at)) => (n.clone(), *at),
            _ => return Err(self.unexpected("a test")),
        };
        self.i += 1;
        let (arguments, tests) = self.arguments(depth)?;
        Ok(Test {
            name,
            arguments,
            tests,
            position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lex;

    fn parse(s: &str) -> Result<Vec<Command>, Error> {
        commands(&lex::tokens(s)?)
    }

    #[test]
    fn the_shape_of_a_script() {
        let script = "if anyof (header :contains \"from\" \"boss\", size :over 1M) {\n  fileinto \"Work\";\n} else { keep; }";
        let c = parse(script).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "if");
        assert_eq!(c[0].tests[0].name, "anyof");
        assert_eq!(c[0].tests[0].tests.len(), 2);
        assert_eq!(
            c[0].tests[0].tests[1].arguments[1],
            Argument::Number(
                1 << 20,
                Position {
                    line: 1,
                    column: 54
                }
            )
        );
        assert_eq!(
            c[0].block.as_ref().unwrap()[0].position,
            Position { line: 2, column: 3 }
        );
        assert_eq!(c[1].name, "else");
    }

    #[test]
    fn errors_name_what_was_expected_and_where() {
        let e = parse("keep").unwrap_err();
        assert!(
            e.message.contains("\";\" after the command \"keep\""),
            "{e}"
        );
        let e = parse("keep;\n\"x\";").unwrap_err();
        assert_eq!((e.position.line, e.position.column), (2, 1));
        assert!(e.message.contains("unexpected a string"), "{e}");
        let e = parse("if true { keep;").unwrap_err();
        assert!(e.message.contains("\"}\""), "{e}");
        let e = parse("if anyof (true; false) { }").unwrap_err();
        assert!(e.message.contains("\",\" or \")\""), "{e}");
        let e = parse("x [\"a\" \"b\"];").unwrap_err();
        assert!(e.message.contains("\",\" or \"]\""), "{e}");
        let e = parse("x [];").unwrap_err();
        assert!(e.message.contains("a string in the list"), "{e}");
        let e = parse("}").unwrap_err();
        assert!(e.message.contains("unexpected \"}\""), "{e}");
        let deep = "if true {".repeat(100) + &"}".repeat(100);
        assert!(parse(&deep).unwrap_err().message.contains("too deeply"));
        let deep = "if ".to_string() + &"not ".repeat(100) + "true {}";
        assert!(parse(&deep).unwrap_err().message.contains("too deeply"));
    }
}
