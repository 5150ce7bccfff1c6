//! Dates for the date and currentdate tests (RFC 5260): a moment and the
//! zone it is seen in, and the parts a script compares.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

/// A moment (seconds since 1970 UTC) as seen in a zone (minutes east).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct When {
    pub unix: i64,
    pub zone: i32,
}

/// The date of a field value (RFC 5322 date-time; for Received, the part
/// after its last ";").
pub(crate) fn parse(field: &str, value: &str) -> Option<When> {
    let text = if field == "received" {
        value.rsplit_once(';')?.1
    } else {
        value
    };
    let bytes = format!("{}\r\n", text.trim());
    match MessageStream::new(bytes.as_bytes()).parse_date() {
        HeaderValue::DateTime(d) => {
            let zone =
                (d.tz_hour as i32 * 60 + d.tz_minute as i32) * if d.tz_before_gmt { -1 } else { 1 };
            Some(When {
                unix: d.to_timestamp(),
                zone,
            })
        }
        _ => None,
    }
}

/// One date part (RFC 5260 4.2) of `w` in its zone.
pub(crate) fn part(w: When, name: &str) -> Option<String> {
    let local = w.unix + w.zone as i64 * 60;
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sign = if w.zone < 0 { '-' } else { '+' };
    let (zh, zm) = (w.zone.abs() / 60, w.zone.abs() % 60);
    Some(match name {
        "year" => format!("{y:04}"),
        "month" => format!("{m:02}"),
        "day" => format!("{d:02}"),
        "date" => format!("{y:04}-{m:02}-{d:02}"),
        // Modified Julian Day: days since 1858-11-17.
        "julian" => (days + 40_587).to_string(),
        "hour" => format!("{hh:02}"),
        "minute" => format!("{mm:02}"),
        "second" => format!("{ss:02}"),
        "time" => format!("{hh:02}:{mm:02}:{ss:02}"),
        "iso8601" => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{sign}{zh:02}:{zm:02}"),
        "std11" => {
            const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!(
                "{}, {d:02} {} {y:04} {hh:02}:{mm:02}:{ss:02} {sign}{zh:02}{zm:02}",
                DAYS[weekday(days) as usize],
                MONTHS[(m - 1) as usize]
            )
        }
        "zone" => format!("{sign}{zh:02}{zm:02}"),
        "weekday" => weekday(days).to_string(),
        _ => return None,
    })
}

/// 0 for Sunday; 1970-01-01 was a Thursday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// Year, month, day of a day count since 1970-01-01 (proleptic
/// Gregorian; Howard Hinnant's days_from_civil, inverted).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_date() {
        let w = parse("date", "Sat, 20 Aug 2005 14:30:00 -0800").unwrap();
        assert_eq!(w.zone, -480);
        let p = |n| part(w, n).unwrap();
        assert_eq!(p("date"), "2005-08-20");
        assert_eq!(p("time"), "14:30:00");
        assert_eq!(p("zone"), "-0800");
        assert_eq!(p("weekday"), "6");
        assert_eq!(p("iso8601"), "2005-08-20T14:30:00-08:00");
        assert_eq!(p("std11"), "Sat, 20 Aug 2005 14:30:00 -0800");
        assert_eq!(p("julian"), "53602");
        // The same moment in UTC is the next day.
        let utc = When { zone: 0, ..w };
        assert_eq!(part(utc, "date").unwrap(), "2005-08-20");
        assert_eq!(part(utc, "hour").unwrap(), "22");
        let east = When { zone: 9 * 60, ..w };
        assert_eq!(part(east, "date").unwrap(), "2005-08-21");
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(-1), (1969, 12, 31));
        assert_eq!(civil(11_016), (2000, 2, 29));
        let r = parse("received", "from x by y; Tue, 02 Jan 2024 10:00:00 +0000").unwrap();
        assert_eq!(part(r, "year").unwrap(), "2024");
        assert_eq!(parse("date", "yesterday"), None);
        assert_eq!(part(w, "fortnight"), None);
    }
}
