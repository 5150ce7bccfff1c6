//! Mailbox file formats for import and export: mbox (mboxrd quoting, flags
//! in `Status:`/`X-Status:`, keywords in `X-Keywords:`) and Maildir (flags
//! in the `:2,` file name suffix, keywords as letters named in the
//! `dovecot-keywords` file).

use mime::header::Header;
use store::Flags;

/// One message read from an mbox or a Maildir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub raw: Vec<u8>,
    pub flags: Flags,
    pub keywords: Vec<String>,
    /// Seconds since the epoch, UTC; `None` when the source has no date.
    pub date: Option<i64>,
}

pub mod mbox {
    use std::io::BufRead;

    use super::*;

    /// Reads an mbox file one message at a time. A message starts after a
    /// `From ` line at the start of the file or after an empty line; the
    /// empty line before the next `From ` belongs to the separator. Quoted
    /// `>From ` lines lose one `>` (mboxrd). A message larger than the limit
    /// is skipped without being held in memory, and counted; so is any line
    /// longer than the limit.
    pub struct Reader<R> {
        input: R,
        limit: usize,
        line: Vec<u8>,
        line_too_long: bool,
        current: Option<(Option<i64>, Vec<u8>)>,
        oversized: bool,
        prev_blank: bool,
        /// Bytes consumed so far, for progress.
        pub position: u64,
        /// Messages skipped for being larger than the limit.
        pub skipped: usize,
    }

    impl<R: BufRead> Reader<R> {
        pub fn new(input: R, limit: usize) -> Reader<R> {
            Reader {
                input,
                limit,
                line: Vec::new(),
                line_too_long: false,
                current: None,
                oversized: false,
                prev_blank: true,
                position: 0,
                skipped: 0,
            }
        }

        /// Reads one line, keeping at most `limit + 2` bytes of it.
        /// Returns false at the end of the input.
        fn read_line(&mut self) -> std::io::Result<bool> {
            self.line.clear();
            self.line_too_long = false;
            let cap = self.limit + 2;
            let mut any = false;
            loop {
                let buf = self.input.fill_buf()?;
                if buf.is_empty() {
                    return Ok(any);
                }
                any = true;
                let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (buf.len(), false),
                };
                let room = cap.saturating_sub(self.line.len());
                self.line.extend_from_slice(&buf[..take.min(room)]);
                self.line_too_long |= take > room;
                self.input.consume(take);
                self.position += take as u64;
                if done {
                    return Ok(true);
                }
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

    impl<R: BufRead> Iterator for Reader<R> {
        type Item = std::io::Result<Item>;

        fn next(&mut self) -> Option<Self::Item> {
            loop {
                match self.read_line() {
                    Err(e) => return Some(Err(e)),
                    // End of file; a skipped last message yields nothing.
                    Ok(false) => return self.take_current().map(Ok),
                    Ok(true) => {}
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
                // +2: the separator line is still in `body` at this point.
                if self.line_too_long || body.len() + line.len() > self.limit + 2 {
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
        let (flags, keywords) = header_marks(&raw);
        Item {
            raw,
            flags,
            keywords,
            date,
        }
    }

    /// Writes one message: a `From ` line, the body with `From ` lines quoted,
    /// and the separating empty line. The `Status:`, `X-Status:` and
    /// `X-Keywords:` fields are rewritten only when they disagree with the
    /// message's flags and keywords.
    pub fn write(
        out: &mut Vec<u8>,
        sender: &str,
        date: i64,
        raw: &[u8],
        flags: Flags,
        keywords: &[String],
    ) {
        out.extend_from_slice(format!("From {sender} {}\n", asctime(date)).as_bytes());
        let fixed;
        let (had_flags, had_keywords) = header_marks(raw);
        let raw = if had_flags == visible(flags) && had_keywords == keywords {
            raw
        } else {
            fixed = with_marks(raw, flags, keywords);
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

    /// The flags mbox can keep: `Status: R` (seen), `X-Status: A F T D`.
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

    const X_STATUS: [(u8, Flags); 4] = [
        (b'A', Flags::ANSWERED),
        (b'F', Flags::FLAGGED),
        (b'T', Flags::DRAFT),
        (b'D', Flags::DELETED),
    ];
    const MARK_FIELDS: [&str; 3] = ["Status", "X-Status", "X-Keywords"];

    /// Flags and keywords from the header's `Status:`, `X-Status:` and
    /// `X-Keywords:` fields.
    pub fn header_marks(raw: &[u8]) -> (Flags, Vec<String>) {
        let header = Header::parse(raw, 0, raw.len());
        let mut flags = Flags::empty();
        if header.get(raw, "Status").is_some_and(|v| v.contains(&b'R')) {
            flags.insert(Flags::SEEN);
        }
        if let Some(v) = header.get(raw, "X-Status") {
            for (c, flag) in X_STATUS {
                if v.contains(&c) {
                    flags.insert(flag);
                }
            }
        }
        let keywords = header
            .get(raw, "X-Keywords")
            .map(|v| {
                String::from_utf8_lossy(&v)
                    .split([',', ' ', '\t'])
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        (flags, keywords)
    }

    /// The message with its mark fields replaced by ones that carry `flags`
    /// and `keywords`, put at the end of the header.
    fn with_marks(raw: &[u8], flags: Flags, keywords: &[String]) -> Vec<u8> {
        let header = Header::parse(raw, 0, raw.len());
        let end = header.range.end;
        let blank = [&b"\r\n"[..], b"\n"]
            .into_iter()
            .find(|b| {
                raw[..end].ends_with(b) && (end == b.len() || raw[..end - b.len()].ends_with(b"\n"))
            })
            .map_or(0, <[u8]>::len);
        let insert_at = end - blank;
        let eol: &[u8] = if raw[..end].windows(2).any(|w| w == b"\r\n") {
            b"\r\n"
        } else {
            b"\n"
        };
        let skipped: Vec<std::ops::Range<usize>> = header
            .fields
            .iter()
            .filter(|f| {
                MARK_FIELDS
                    .iter()
                    .any(|n| raw[f.name.clone()].eq_ignore_ascii_case(n.as_bytes()))
            })
            .map(|f| f.whole.clone())
            .collect();
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut pos = 0;
        for r in &skipped {
            out.extend_from_slice(&raw[pos..r.start]);
            pos = r.end;
        }
        out.extend_from_slice(&raw[pos..insert_at]);
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.extend_from_slice(eol);
        }
        let mut field = |name: &str, value: String| {
            out.extend_from_slice(format!("{name}: {value}").as_bytes());
            out.extend_from_slice(eol);
        };
        field(
            "Status",
            if flags.contains(Flags::SEEN) {
                "RO"
            } else {
                "O"
            }
            .into(),
        );
        let x: String = X_STATUS
            .iter()
            .filter(|(_, f)| flags.contains(*f))
            .map(|(c, _)| *c as char)
            .collect();
        if !x.is_empty() {
            field("X-Status", x);
        }
        if !keywords.is_empty() {
            field("X-Keywords", keywords.join(" "));
        }
        out.extend_from_slice(&raw[insert_at..]);
        out
    }

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

        fn read_all(file: &[u8], limit: usize) -> (Vec<Item>, usize) {
            let mut reader = Reader::new(file, limit);
            let items = reader.by_ref().map(|i| i.unwrap()).collect();
            (items, reader.skipped)
        }

        #[test]
        fn round_trip_keeps_bytes_and_quoting() {
            let msgs: [&[u8]; 3] = [
                b"Subject: a\n\nFrom here\n>From there\n",
                b"Subject: b\nStatus: RO\nX-Status: F\n\nbody without newline",
                b"Subject: c\r\n\r\nCRLF body\r\n\r\n",
            ];
            let mut file = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                let (flags, keywords) = header_marks(m);
                write(
                    &mut file,
                    "x@y",
                    1_700_000_000 + i as i64,
                    m,
                    flags,
                    &keywords,
                );
            }
            let (items, _) = read_all(&file, 1 << 20);
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
        fn oversized_messages_and_lines_are_skipped_and_counted() {
            let mut file = Vec::new();
            write(
                &mut file,
                "a",
                0,
                b"Subject: small\n\nok\n",
                Flags::empty(),
                &[],
            );
            let big = [b"Subject: big\n\n".as_slice(), &[b'x'; 5000], b"\n"].concat();
            write(&mut file, "a", 0, &big, Flags::empty(), &[]);
            write(
                &mut file,
                "a",
                0,
                b"Subject: small too\n\nok\n",
                Flags::empty(),
                &[],
            );
            let mut reader = Reader::new(&file[..], 1000);
            let items: Vec<Item> = reader.by_ref().map(|i| i.unwrap()).collect();
            assert_eq!(items.len(), 2);
            assert_eq!(reader.skipped, 1);
            assert!(items[1].raw.starts_with(b"Subject: small too"));
            assert_eq!(reader.position, file.len() as u64);
        }

        #[test]
        fn changed_marks_rewrite_their_fields_only() {
            let mut file = Vec::new();
            let keywords = vec!["$Label1".to_string(), "Work".to_string()];
            write(
                &mut file,
                "x",
                0,
                b"Subject: a\nStatus: O\nX-Keywords: Old\nTo: b\n\nbody\n",
                Flags::SEEN | Flags::ANSWERED,
                &keywords,
            );
            let (items, _) = read_all(&file, 1 << 20);
            assert_eq!(items[0].flags, Flags::SEEN | Flags::ANSWERED);
            assert_eq!(items[0].keywords, keywords);
            assert_eq!(
                items[0].raw,
                b"Subject: a\nTo: b\nStatus: RO\nX-Status: A\nX-Keywords: $Label1 Work\n\nbody\n"
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

    /// Keyword letters: `a` to `z` name the lines of `dovecot-keywords`.
    pub const MAX_KEYWORDS: usize = 26;

    /// Flags and keywords from a Maildir file name (`...:2,FSab`).
    pub fn marks_from_name(name: &str, keyword_names: &[String]) -> (Flags, Vec<String>) {
        let mut flags = Flags::empty();
        let mut keywords = Vec::new();
        if let Some((_, info)) = name.rsplit_once(":2,") {
            for c in info.chars() {
                if let Some((_, f)) = LETTERS.iter().find(|(l, _)| *l == c) {
                    flags.insert(*f);
                } else if c.is_ascii_lowercase()
                    && let Some(k) = keyword_names.get((c as u8 - b'a') as usize)
                    && !k.is_empty()
                {
                    keywords.push(k.clone());
                }
            }
        }
        (flags, keywords)
    }

    /// The `:2,` suffix for `flags` and `keywords` (letters of `keyword_names`).
    pub fn info_suffix(flags: Flags, keywords: &[String], keyword_names: &[String]) -> String {
        let mut s = String::from(":2,");
        for (c, f) in LETTERS {
            if flags.contains(f) {
                s.push(c);
            }
        }
        let mut letters: Vec<char> = keywords
            .iter()
            .filter_map(|k| keyword_names.iter().position(|n| n == k))
            .map(|i| (b'a' + i as u8) as char)
            .collect();
        letters.sort();
        s.extend(letters);
        s
    }

    /// `dovecot-keywords`: one `INDEX NAME` line per keyword.
    pub fn parse_keyword_file(text: &str) -> Vec<String> {
        let mut names = vec![String::new(); MAX_KEYWORDS];
        for line in text.lines() {
            if let Some((i, name)) = line.split_once(' ')
                && let Ok(i) = i.parse::<usize>()
                && i < MAX_KEYWORDS
            {
                names[i] = name.trim().to_string();
            }
        }
        names
    }

    pub fn keyword_file(names: &[String]) -> String {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{i} {n}\n"))
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_carry_flags_and_keywords() {
            let names = parse_keyword_file("0 $Label1\n1 Work\nbad line\n");
            let f = Flags::SEEN | Flags::FLAGGED | Flags::DRAFT;
            let kw = vec!["Work".to_string(), "$Label1".to_string()];
            let suffix = info_suffix(f, &kw, &names);
            assert_eq!(suffix, ":2,DFSab");
            let (flags, keywords) = marks_from_name(&format!("123.x.host{suffix}"), &names);
            assert_eq!(
                (flags, keywords),
                (f, vec!["$Label1".to_string(), "Work".to_string()])
            );
            assert_eq!(
                marks_from_name("123.x.host", &names),
                (Flags::empty(), vec![])
            );
            assert_eq!(keyword_file(&names[..2]), "0 $Label1\n1 Work\n");
        }
    }
}
