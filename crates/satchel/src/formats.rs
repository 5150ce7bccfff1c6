//! Mailbox file formats for import and export: mbox (mboxrd quoting, flags in
//! `Status:`/`X-Status:`) and Maildir (flags in the `:2,` file name suffix).

use store::Flags;

/// One message read from an mbox or a Maildir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub raw: Vec<u8>,
    pub flags: Flags,
    /// Seconds since the epoch, UTC; `None` when the source has no date.
    pub date: Option<i64>,
}

pub mod mbox {
    use super::*;

    /// Reads an mbox file one message at a time. A message starts after a
    /// `From ` line at the start of the file or after an empty line; the
    /// empty line before the next `From ` belongs to the separator. Quoted
    /// `>From ` lines lose one `>` (mboxrd). A message larger than the limit
    /// is skipped without being held in memory, and counted.
    pub struct Reader<R> {
        input: R,
        limit: usize,
        line: Vec<u8>,
        current: Option<(Option<i64>, Vec<u8>)>,
        oversized: bool,
        prev_blank: bool,
        /// Bytes consumed so far, for progress.
        pub position: u64,
        /// Messages skipped for being larger than the limit.
        pub skipped: usize,
    }

    impl<R: std::io::BufRead> Reader<R> {
        pub fn new(input: R, limit: usize) -> Reader<R> {
            Reader {
                input,
                limit,
                line: Vec::new(),
                current: None,
                oversized: false,
                prev_blank: true,
                position: 0,
                skipped: 0,
            }
        }

        /// The message that just ended, unless it was skipped.
        fn take_current(&mut self) -> Option<Item> {
            let (date, body) = self.current.take()?;
            if std::mem::take(&mut self.oversized) {
                self.skipped += 1;
                return None;
            }
            Some(finish(body, date))
        }
    }

    impl<R: std::io::BufRead> Iterator for Reader<R> {
        type Item = std::io::Result<Item>;

        fn next(&mut self) -> Option<Self::Item> {
            loop {
                self.line.clear();
                match self.input.read_until(b'\n', &mut self.line) {
                    Err(e) => return Some(Err(e)),
                    Ok(0) => {
                        // End of file; a skipped last message yields nothing.
                        return self.take_current().map(Ok);
                    }
                    Ok(n) => self.position += n as u64,
                }
                let line = &self.line;
                if self.prev_blank && line.starts_with(b"From ") {
                    let date = parse_from_line_date(line);
                    self.prev_blank = false;
                    let done = self.take_current();
                    self.current = Some((date, Vec::new()));
                    match done {
                        Some(item) => return Some(Ok(item)),
                        None => continue,
                    }
                }
                self.prev_blank = line == b"\n" || line == b"\r\n";
                let Some((_, body)) = self.current.as_mut() else {
                    continue; // garbage before the first From line
                };
                if self.oversized {
                    continue;
                }
                let quoted = line.iter().take_while(|&&b| b == b'>').count();
                let line = if quoted > 0 && line[quoted..].starts_with(b"From ") {
                    &line[1..]
                } else {
                    &line[..]
                };
                if body.len() + line.len() > self.limit + 2 {
                    // +2: the separator line is still in `body` at this point.
                    self.oversized = true;
                    *body = Vec::new();
                    continue;
                }
                body.extend_from_slice(line);
            }
        }
    }

    fn finish(mut raw: Vec<u8>, date: Option<i64>) -> Item {
        // Drop the separator line before the next message (or end of file).
        if raw.ends_with(b"\r\n\r\n") {
            raw.truncate(raw.len() - 2);
        } else if raw.ends_with(b"\n\n") {
            raw.truncate(raw.len() - 1);
        }
        let flags = status_flags(&raw);
        Item { raw, flags, date }
    }

    /// Writes one message: a `From ` line, the body with `From ` lines quoted,
    /// and the separating empty line. The `Status:`/`X-Status:` headers are
    /// rewritten only when they disagree with `flags`.
    pub fn write(out: &mut Vec<u8>, sender: &str, date: i64, raw: &[u8], flags: Flags) {
        out.extend_from_slice(format!("From {sender} {}\n", asctime(date)).as_bytes());
        let fixed;
        let raw = if status_flags(raw) == visible(flags) {
            raw
        } else {
            fixed = with_status_headers(raw, flags);
            &fixed
        };
        let mut pos = 0;
        while pos < raw.len() {
            let end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| pos + i + 1)
                .unwrap_or(raw.len());
            let line = &raw[pos..end];
            let quoted = line.iter().take_while(|&&b| b == b'>').count();
            if line[quoted..].starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
            pos = end;
        }
        if !raw.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.push(b'\n');
    }

    /// Flags mbox keeps: `Status: R` (seen) and `X-Status: A F T D`.
    fn visible(flags: Flags) -> Flags {
        let mut v = Flags::empty();
        for f in [
            Flags::SEEN,
            Flags::ANSWERED,
            Flags::FLAGGED,
            Flags::DRAFT,
            Flags::DELETED,
        ] {
            if flags.contains(f) {
                v.insert(f);
            }
        }
        v
    }

    /// Reads flags from the header's `Status:` and `X-Status:` fields.
    pub fn status_flags(raw: &[u8]) -> Flags {
        let mut flags = Flags::empty();
        for (name, value) in header_fields(raw) {
            let letters = |f: &mut Flags, map: &[(u8, Flags)]| {
                for (c, flag) in map {
                    if value.contains(c) {
                        f.insert(*flag);
                    }
                }
            };
            if name.eq_ignore_ascii_case(b"Status") {
                letters(&mut flags, &[(b'R', Flags::SEEN)]);
            } else if name.eq_ignore_ascii_case(b"X-Status") {
                letters(
                    &mut flags,
                    &[
                        (b'A', Flags::ANSWERED),
                        (b'F', Flags::FLAGGED),
                        (b'T', Flags::DRAFT),
                        (b'D', Flags::DELETED),
                    ],
                );
            }
        }
        flags
    }

    /// The message with its `Status:`/`X-Status:` fields replaced by ones
    /// that carry `flags`, put at the end of the header.
    fn with_status_headers(raw: &[u8], flags: Flags) -> Vec<u8> {
        let header_end = header_len(raw);
        let eol: &[u8] = if raw[..header_end].windows(2).any(|w| w == b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        };
        let mut out = Vec::with_capacity(raw.len() + 40);
        let mut pos = 0;
        let mut skipping = false;
        while pos < header_end {
            let end = raw[pos..header_end]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| pos + i + 1)
                .unwrap_or(header_end);
            let line = &raw[pos..end];
            let continuation = matches!(line.first(), Some(b' ' | b'\t'));
            if !continuation {
                let name = line.split(|&b| b == b':').next().unwrap_or(b"");
                skipping =
                    name.eq_ignore_ascii_case(b"Status") || name.eq_ignore_ascii_case(b"X-Status");
            }
            let is_blank = line == b"\n" || line == b"\r\n";
            if is_blank {
                break;
            }
            if !skipping {
                out.extend_from_slice(line);
            }
            pos = end;
        }
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(eol);
        }
        let status = if flags.contains(Flags::SEEN) {
            "RO"
        } else {
            "O"
        };
        out.extend_from_slice(format!("Status: {status}").as_bytes());
        out.extend_from_slice(eol);
        let mut x = String::new();
        for (f, c) in [
            (Flags::ANSWERED, 'A'),
            (Flags::FLAGGED, 'F'),
            (Flags::DRAFT, 'T'),
            (Flags::DELETED, 'D'),
        ] {
            if flags.contains(f) {
                x.push(c);
            }
        }
        if !x.is_empty() {
            out.extend_from_slice(format!("X-Status: {x}").as_bytes());
            out.extend_from_slice(eol);
        }
        out.extend_from_slice(&raw[pos..]);
        out
    }

    /// `From ` line date: `From sender Thu Nov 26 12:55:56 2026` (asctime,
    /// UTC; a zone or extra fields after it are ignored).
    fn parse_from_line_date(line: &[u8]) -> Option<i64> {
        let line = std::str::from_utf8(line).ok()?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Find "Mon DD HH:MM:SS YYYY" anywhere after the sender.
        (2..fields.len().saturating_sub(3)).find_map(|i| {
            let month = MONTHS.iter().position(|m| *m == fields[i])? as u8 + 1;
            let day: u8 = fields[i + 1].parse().ok()?;
            let mut hms = fields[i + 2].split(':').map(|p| p.parse::<u8>());
            let (h, m) = (hms.next()?.ok()?, hms.next()?.ok()?);
            let s = hms.next().transpose().ok()?.unwrap_or(0);
            let year: i32 = fields[i + 3].parse().ok()?;
            let date =
                time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day)
                    .ok()?;
            let t = time::Time::from_hms(h, m, s).ok()?;
            Some(
                time::PrimitiveDateTime::new(date, t)
                    .assume_utc()
                    .unix_timestamp(),
            )
        })
    }

    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    fn asctime(unix: i64) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp(unix)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            DAYS[t.weekday().number_days_from_monday() as usize],
            MONTHS[t.month() as usize - 1],
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.year()
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip_keeps_bytes_and_quoting() {
            let msgs: [&[u8]; 3] = [
                b"Subject: a\n\nFrom here\n>From there\n",
                b"Subject: b\nStatus: RO\nX-Status: F\n\nbody without newline",
                b"Subject: c\r\n\r\nCRLF body\r\n\r\n",
            ];
            let mut file = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                write(
                    &mut file,
                    "x@y",
                    1_700_000_000 + i as i64,
                    m,
                    status_flags(m),
                );
            }
            let items: Vec<Item> = Reader::new(&file[..], 1 << 20)
                .map(|i| i.unwrap())
                .collect();
            assert_eq!(items.len(), 3);
            assert_eq!(items[0].raw, msgs[0]);
            assert_eq!(
                items[1].raw,
                b"Subject: b\nStatus: RO\nX-Status: F\n\nbody without newline\n"
            );
            assert_eq!(items[1].flags, Flags::SEEN | Flags::FLAGGED);
            assert_eq!(items[2].raw, msgs[2]);
            assert_eq!(items[1].date, Some(1_700_000_001));
        }

        #[test]
        fn oversized_messages_are_skipped_and_counted() {
            let mut file = Vec::new();
            write(&mut file, "a", 0, b"Subject: small\n\nok\n", Flags::empty());
            write(
                &mut file,
                "a",
                0,
                &[b"Subject: big\n\n".as_slice(), &[b'x'; 5000]].concat(),
                Flags::empty(),
            );
            write(
                &mut file,
                "a",
                0,
                b"Subject: small too\n\nok\n",
                Flags::empty(),
            );
            let mut reader = Reader::new(&file[..], 1000);
            let items: Vec<Item> = reader.by_ref().map(|i| i.unwrap()).collect();
            assert_eq!(items.len(), 2);
            assert_eq!(reader.skipped, 1);
            assert!(items[1].raw.starts_with(b"Subject: small too"));
            assert_eq!(reader.position, file.len() as u64);
        }

        #[test]
        fn changed_flags_rewrite_the_status_headers() {
            let mut file = Vec::new();
            write(
                &mut file,
                "x",
                0,
                b"Subject: a\nStatus: O\n\nbody\n",
                Flags::SEEN | Flags::ANSWERED,
            );
            let items: Vec<Item> = Reader::new(&file[..], 1 << 20)
                .map(|i| i.unwrap())
                .collect();
            assert_eq!(items[0].flags, Flags::SEEN | Flags::ANSWERED);
            assert_eq!(
                items[0].raw,
                b"Subject: a\nStatus: RO\nX-Status: A\n\nbody\n"
            );
        }
    }
}

pub mod maildir {
    use super::*;

    /// The `:2,` info letters of Maildir, in the ASCII order names use.
    const LETTERS: [(char, Flags); 5] = [
        ('D', Flags::DRAFT),
        ('F', Flags::FLAGGED),
        ('R', Flags::ANSWERED),
        ('S', Flags::SEEN),
        ('T', Flags::DELETED),
    ];

    /// Flags from a Maildir file name (`...:2,FS`).
    pub fn flags_from_name(name: &str) -> Flags {
        let mut flags = Flags::empty();
        if let Some((_, info)) = name.rsplit_once(":2,") {
            for (c, f) in LETTERS {
                if info.contains(c) {
                    flags.insert(f);
                }
            }
        }
        flags
    }

    /// The `:2,` suffix for `flags`.
    pub fn info_suffix(flags: Flags) -> String {
        let mut s = String::from(":2,");
        for (c, f) in LETTERS {
            if flags.contains(f) {
                s.push(c);
            }
        }
        s
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_carry_flags() {
            let f = Flags::SEEN | Flags::FLAGGED | Flags::DRAFT;
            assert_eq!(info_suffix(f), ":2,DFS");
            assert_eq!(flags_from_name(&format!("123.x.host{}", info_suffix(f))), f);
            assert_eq!(flags_from_name("123.x.host"), Flags::empty());
        }
    }
}

/// Length of the header including the empty line that ends it (all of
/// `raw` when there is no body).
pub fn header_len(raw: &[u8]) -> usize {
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(raw.len());
        let line = &raw[pos..end];
        pos = end;
        if line == b"\n" || line == b"\r\n" {
            return pos;
        }
    }
    raw.len()
}

/// The header fields as (name, unfolded value) byte slices.
pub fn header_fields(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
    let header = &raw[..header_len(raw)];
    let mut fields = Vec::new();
    for line in header.split(|&b| b == b'\n') {
        if matches!(line.first(), Some(b' ' | b'\t')) || line.is_empty() {
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            fields.push((&line[..colon], &line[colon + 1..]));
        }
    }
    fields
}
