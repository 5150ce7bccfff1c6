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

/// Quoted-printable: `=XX` escapes and soft line breaks (`=` at a line's
/// end); a malformed escape is kept as it is.
pub fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        match (input.get(i + 1), input.get(i + 2)) {
            (Some(b'\r'), Some(b'\n')) => i += 3,
            (Some(b'\n'), _) => i += 2,
            (Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(hex(h).unwrap_or(0) << 4 | hex(l).unwrap_or(0));
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
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
        let msg = b"Content-Transfer-Encoding: BASE64\r\n\r\nAAEC\r\n";
        let root = Part::parse(msg);
        assert_eq!(part_content(msg, &root), Some(vec![0, 1, 2]));
        let odd = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n";
        assert_eq!(part_content(odd, &Part::parse(odd)), None);
    }
}
