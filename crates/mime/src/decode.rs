//! Content-Transfer-Encoding decoding (RFC 2045 6), for IMAP BINARY (RFC
//! 3516): what a part's bytes are once its transfer encoding is undone.

use crate::Part;

/// The decoded content of `part` (its body in `data`), or `None` when its
/// transfer encoding is not one Satchel knows (`[UNKNOWN-CTE]`).
pub fn part_content(data: &[u8], part: &Part) -> Option<Vec<u8>> {
    let body = data.get(part.body.clone()).unwrap_or_default();
    let encoding = part
        .header
        .get(data, "Content-Transfer-Encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "7bit" | "8bit" | "binary" => Some(body.to_vec()),
        "base64" => Some(base64(body)),
        "quoted-printable" => Some(quoted_printable(body)),
        _ => None,
    }
}

/// Base64, leniently: characters outside the alphabet are skipped and
/// decoding stops at the padding.
pub fn base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Quoted-printable (RFC 2045 6.7), line by line: whitespace at a line's
/// end is dropped (rule 3: transports may add it), a line ending in `=`
/// (after that whitespace) is a soft break and joins the next, and `=XX`
/// escapes are undone; a malformed escape is kept as it is.
pub fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while !rest.is_empty() {
        let (line, ending, next) = match memchr::memchr(b'\n', rest) {
            Some(i) if i > 0 && rest[i - 1] == b'\r' => {
                (&rest[..i - 1], &b"\r\n"[..], &rest[i + 1..])
            }
            Some(i) => (&rest[..i], &b"\n"[..], &rest[i + 1..]),
            None => (rest, &b""[..], &b""[..]),
        };
        let line = trim_end_blanks(line);
        match line.strip_suffix(b"=") {
            Some(joined) => unescape(joined, &mut out),
            None => {
                unescape(line, &mut out);
                out.extend_from_slice(ending);
            }
        }
        rest = next;
    }
    out
}

fn trim_end_blanks(line: &[u8]) -> &[u8] {
    let keep = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    &line[..keep]
}

/// `=XX` escapes of one line (no line ending in it).
fn unescape(line: &[u8], out: &mut Vec<u8>) {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < line.len() {
        match (
            line[i],
            line.get(i + 1).and_then(|&h| hex(h)),
            line.get(i + 2).and_then(|&l| hex(l)),
        ) {
            (b'=', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders() {
        assert_eq!(base64(b"SGVs\r\nbG8A/w=="), b"Hello\0\xff");
        assert_eq!(
            quoted_printable(b"Gr=C3=BC=\r\n=C3=9Fe =3D =ZZ"),
            "Grüße = =ZZ".as_bytes()
        );
        // RFC 2045 6.7: whitespace a transport added at line ends goes,
        // also after a soft break's `=`; LF-only lines decode too.
        assert_eq!(
            quoted_printable(b"one two  \r\nthree=  \r\n four\t\r\nfive=\nsix\n=4"),
            b"one two\r\nthree four\r\nfivesix\n=4"
        );
        assert_eq!(quoted_printable(b"end="), b"end");
        assert_eq!(quoted_printable(b"=3d=3D"), b"==");
        let msg = b"Content-Transfer-Encoding: BASE64\r\n\r\nAAEC\r\n";
        let root = Part::parse(msg);
        assert_eq!(part_content(msg, &root), Some(vec![0, 1, 2]));
        let odd = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
        assert_eq!(part_content(odd, &Part::parse(odd)), None);
    }
}
