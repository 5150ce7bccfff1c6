//! One SMTP command line, read without I/O (RFC 5321 4.1): smtp-proto's
//! parser, with the checks it lacks, and every refusal as the reply the
//! door sends.

use smtp_proto::{Error as ParseError, Request};

/// The request on `line` (without its CRLF), or the reply refusing it.
pub fn parse(line: &[u8]) -> Result<Request<String>, String> {
    if size_overflows(line) {
        // smtp-proto wraps a SIZE past usize around to a small number.
        return Err("501 5.5.4 Invalid parameter SIZE: not a size this server can read.".into());
    }
    let mut with_crlf = line.to_vec();
    with_crlf.extend_from_slice(b"\r\n");
    let request = Request::parse(&mut with_crlf.iter()).map_err(|e| match e {
        ParseError::UnknownCommand => "500 5.5.1 Unknown command.".to_string(),
        ParseError::InvalidSenderAddress => "501 5.1.7 Invalid sender address.".to_string(),
        ParseError::InvalidRecipientAddress => "501 5.1.3 Invalid recipient address.".to_string(),
        ParseError::SyntaxError { syntax } => format!("501 5.5.4 Syntax: {syntax}"),
        ParseError::InvalidParameter { param } => format!("501 5.5.4 Invalid parameter {param}."),
        ParseError::UnsupportedParameter { param } => {
            let p: String = param
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(40)
                .collect();
            format!("555 5.5.4 Unsupported parameter {p}.")
        }
        _ => "500 5.5.2 Syntax error.".to_string(),
    })?;
    Ok(request.into_owned())
}

/// Whether a MAIL command's `SIZE=` is a number of more digits than a u64
/// holds (RFC 1870 6: `size-value ::= 1*20DIGIT`, and anything past
/// u64::MAX is no size at all).
fn size_overflows(line: &[u8]) -> bool {
    // Every command passes here: only MAIL lines are looked at closely.
    if !line
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"MAIL "))
    {
        return false;
    }
    line.windows(6)
        .enumerate()
        .filter(|(_, w)| w.eq_ignore_ascii_case(b" SIZE="))
        .any(|(i, _)| {
            let digits = &line[i + 6..];
            let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&digits[..n])
                .ok()
                .is_some_and(|d| !d.is_empty() && d.parse::<u64>().is_err())
        })
}

/// `RCPT TO:<Postmaster>`, any case, with or without parameters.
pub(crate) fn is_bare_postmaster(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line).to_ascii_lowercase();
    text.split_once(':')
        .is_some_and(|(_, path)| path.trim_start().starts_with("<postmaster>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_past_u64_are_caught() {
        assert!(size_overflows(b"MAIL FROM:<> SIZE=99999999999999999999999"));
        assert!(size_overflows(
            b"mail from:<a@b> body=8bitmime size=18446744073709551616"
        ));
        assert!(!size_overflows(b"MAIL FROM:<> SIZE=18446744073709551615"));
        assert!(!size_overflows(b"MAIL FROM:<> SIZE=1000"));
        assert!(!size_overflows(
            b"RCPT TO:<x@y> SIZE=99999999999999999999999"
        ));
    }

    #[test]
    fn errors_are_replies() {
        assert!(parse(b"EHLO client.example").is_ok());
        assert_eq!(parse(b"FROB").unwrap_err(), "500 5.5.1 Unknown command.");
        let e = parse(b"MAIL FROM:<> SIZE=99999999999999999999999").unwrap_err();
        assert!(e.starts_with("501 5.5.4 Invalid parameter SIZE"), "{e}");
        let e = parse(b"MAIL FROM:<> X-\x01\xffHIDDEN=1").unwrap_err();
        assert!(e.starts_with("555 5.5.4") && !e.contains('\x01'), "{e}");
    }
}
