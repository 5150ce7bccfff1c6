//! Modified UTF-7 mailbox names (RFC 3501 5.1.3), for clients that have not
//! enabled IMAP4rev2 or UTF8=ACCEPT.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Encodes a UTF-8 name for the wire.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    let flush = |out: &mut String, pending: &mut Vec<u16>| {
        if pending.is_empty() {
            return;
        }
        out.push('&');
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        for chunk in bytes.chunks(3) {
            let n = chunk.len();
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out.push('-');
        pending.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut out, &mut pending);
    out
}

/// Decodes a wire name; `None` when it is not valid modified UTF-7.
pub fn decode(wire: &str) -> Option<String> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(wire.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !(0x20..=0x7e).contains(&b) {
            return None;
        }
        if b != b'&' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let end = i + 1 + bytes[i + 1..].iter().position(|&c| c == b'-')?;
        let run = &bytes[i + 1..end];
        if run.is_empty() {
            out.push('&');
        } else {
            let mut bits: u32 = 0;
            let mut nbits = 0;
            let mut units: Vec<u16> = Vec::new();
            let mut octets: Vec<u8> = Vec::new();
            for &c in run {
                let v = B64.iter().position(|&x| x == c)? as u32;
                bits = (bits << 6) | v;
                nbits += 6;
                if nbits >= 8 {
                    nbits -= 8;
                    octets.push((bits >> nbits) as u8);
                    bits &= (1 << nbits) - 1;
                }
            }
            // Leftover bits must be zero padding, and whole UTF-16 units.
            if bits != 0 || !octets.len().is_multiple_of(2) {
                return None;
            }
            for pair in octets.chunks(2) {
                units.push(u16::from_be_bytes([pair[0], pair[1]]));
            }
            let s = String::from_utf16(&units).ok()?;
            // A run must not encode what could be written directly.
            if s.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&s);
        }
        i = end + 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (utf8, wire) in [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("日本語", "&ZeVnLIqe-"),
            ("A&B", "A&-B"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("emoji 🚀", "emoji &2D3egA-"),
        ] {
            assert_eq!(encode(utf8), wire);
            assert_eq!(decode(wire).as_deref(), Some(utf8));
        }
        for bad in ["&", "&Jjo", "&AGE-", "caf\u{e9}", "&Jjo!-"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
