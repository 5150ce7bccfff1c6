//! Writing responses: strings, mailbox names, flags and dates in the forms
//! RFC 9051 section 7 requires.

use crate::utf7;

/// A string as `"quoted"` when it can be, else as a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() <= 1024 && s.iter().all(|b| (0x20..0x7f).contains(b));
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// `{n}\r\n` and the bytes.
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// A mailbox name: modified UTF-7 for IMAP4rev1 clients, UTF-8 once the
/// client has enabled IMAP4rev2 or UTF8=ACCEPT. `INBOX` goes out as an atom.
pub fn mailbox(out: &mut Vec<u8>, name: &str, utf8: bool) {
    if name == "INBOX" {
        out.extend_from_slice(b"INBOX");
        return;
    }
    let wire = if utf8 {
        name.to_string()
    } else {
        utf7::encode(name)
    };
    if utf8 && !wire.is_ascii() {
        // RFC 9051 allows UTF-8 in quoted strings.
        if !wire.contains(['"', '\\', '\r', '\n']) {
            out.push(b'"');
            out.extend_from_slice(wire.as_bytes());
            out.push(b'"');
            return;
        }
    }
    string(out, wire.as_bytes());
}

/// `(\Seen $Label)`.
pub fn flag_list<'a>(out: &mut Vec<u8>, flags: impl IntoIterator<Item = &'a str>) {
    out.push(b'(');
    for (i, f) in flags.into_iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_bytes());
    }
    out.push(b')');
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `"17-Jul-1996 02:44:25 -0700"` with the quotes (INTERNALDATE).
pub fn date_time(unix: i64, tz_minutes: i32) -> String {
    let local = unix + tz_minutes as i64 * 60;
    let days = local.div_euclid(86400);
    let secs = local.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let sign = if tz_minutes < 0 { '-' } else { '+' };
    let tz = tz_minutes.unsigned_abs();
    format!(
        "\"{d:02}-{}-{y:04} {:02}:{:02}:{:02} {sign}{:02}{:02}\"",
        MONTHS[(m - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        tz / 60,
        tz % 60
    )
}

/// (year, month, day) of days since 1970-01-01 (Howard Hinnant's
/// civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_date_time;

    #[test]
    fn dates_round_trip() {
        let dt = parse_date_time(b"17-Jul-1996 02:44:25 -0700").unwrap();
        assert_eq!(dt.unix, 837596665);
        assert_eq!(
            date_time(dt.unix, dt.tz_minutes),
            "\"17-Jul-1996 02:44:25 -0700\""
        );
        assert_eq!(date_time(0, 0), "\"01-Jan-1970 00:00:00 +0000\"");
        let leap = parse_date_time(b" 29-Feb-2024 23:59:59 +0130").unwrap();
        assert_eq!(
            date_time(leap.unix, leap.tz_minutes),
            "\"29-Feb-2024 23:59:59 +0130\""
        );
        assert!(parse_date_time(b"30-Feb-2024 00:00:00 +0000").is_none());
        assert!(parse_date_time(b"1-Jan-2024 24:00:00 +0000").is_none());
    }

    #[test]
    fn strings_and_names() {
        let mut out = Vec::new();
        string(&mut out, b"a \"b\"");
        out.push(b' ');
        string(&mut out, b"line\r\nbreak");
        assert_eq!(out, b"\"a \\\"b\\\"\" {11}\r\nline\r\nbreak");
        let mut out = Vec::new();
        mailbox(&mut out, "Entwürfe", false);
        out.push(b' ');
        mailbox(&mut out, "Entwürfe", true);
        out.push(b' ');
        mailbox(&mut out, "INBOX", false);
        assert_eq!(out, "\"Entw&APw-rfe\" \"Entwürfe\" INBOX".as_bytes());
    }
}
