//! The parser against commands real clients send, and against broken ones.

use imap_proto::*;
use mime::section::{Section, SectionText};

fn ok(line: &str) -> CommandBody {
    match parse_command(line.as_bytes()) {
        Ok(c) => c.body,
        Err(e) => panic!("{line:?}: {e}"),
    }
}

fn bad(line: &[u8]) -> ParseError {
    parse_command(line).expect_err(&String::from_utf8_lossy(line))
}

fn mb(s: &str) -> MailboxArg {
    MailboxArg(s.as_bytes().to_vec())
}

#[test]
fn session_commands() {
    assert_eq!(ok("a1 CAPABILITY"), CommandBody::Capability);
    assert!(
        parse_command(b"a1 CAPABILITY\r\n").is_err(),
        "the session strips the CRLF"
    );
    let CommandBody::Append { messages, .. } = ok("a APPEND x {4}\r\nab\r\n") else {
        panic!()
    };
    assert_eq!(messages[0].data, b"ab\r\n", "a literal keeps its own CRLF");
    assert_eq!(ok("a1 noop"), CommandBody::Noop);
    assert_eq!(
        ok("a LOGIN \"joe\\\"s\" {4}\r\npa s"),
        CommandBody::Login {
            user: b"joe\"s".to_vec(),
            password: b"pa s".to_vec()
        }
    );
    assert_eq!(
        ok("a AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ="),
        CommandBody::Authenticate {
            mechanism: "PLAIN".into(),
            initial: Some(b"AGpvZQBzZWNyZXQ=".to_vec())
        }
    );
    assert_eq!(
        ok("a authenticate login"),
        CommandBody::Authenticate {
            mechanism: "LOGIN".into(),
            initial: None
        }
    );
    assert_eq!(
        ok("a ENABLE IMAP4rev2 utf8=accept"),
        CommandBody::Enable(vec!["IMAP4REV2".into(), "UTF8=ACCEPT".into()])
    );
    assert_eq!(
        ok("a ID (\"name\" \"Thunderbird\" \"version\" NIL)"),
        CommandBody::Id(vec![
            ("name".into(), Some("Thunderbird".into())),
            ("version".into(), None)
        ])
    );
    assert_eq!(ok("a ID NIL"), CommandBody::Id(vec![]));
}

#[test]
fn mailbox_commands() {
    assert_eq!(
        ok("a SELECT INBOX (CONDSTORE)"),
        CommandBody::Select {
            mailbox: mb("INBOX"),
            read_only: false,
            condstore: true,
            qresync: None,
        }
    );
    assert_eq!(
        ok("a EXAMINE \"Possible Junk\""),
        CommandBody::Select {
            mailbox: mb("Possible Junk"),
            read_only: true,
            condstore: false,
            qresync: None,
        }
    );
    assert_eq!(
        ok("a CREATE Archive (USE (\\Archive))"),
        CommandBody::Create {
            mailbox: mb("Archive"),
            special_use: vec!["\\Archive".into()]
        }
    );
    assert_eq!(
        ok("a RENAME a b"),
        CommandBody::Rename {
            from: mb("a"),
            to: mb("b")
        }
    );
    assert_eq!(
        ok("a STATUS Sent (MESSAGES UNSEEN UIDNEXT)"),
        CommandBody::Status {
            mailbox: mb("Sent"),
            items: vec![
                StatusItem::Messages,
                StatusItem::Unseen,
                StatusItem::UidNext
            ]
        }
    );
}

#[test]
fn list_forms() {
    let CommandBody::List(l) = ok("a LIST \"\" \"*\"") else {
        panic!()
    };
    assert_eq!(
        (l.kind, l.patterns, l.ret),
        (ListKind::List, vec![mb("*")], vec![])
    );
    let CommandBody::List(l) = ok("a LIST \"\" %") else {
        panic!()
    };
    assert_eq!(l.patterns, vec![mb("%")]);
    let CommandBody::List(l) = ok("a LIST (SUBSCRIBED) \"\" \"*\" RETURN (SPECIAL-USE)") else {
        panic!()
    };
    assert_eq!(
        (l.selection, l.ret),
        (vec!["SUBSCRIBED".to_string()], vec![ListReturn::SpecialUse])
    );
    let CommandBody::List(l) =
        ok("a LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UNSEEN))")
    else {
        panic!()
    };
    assert_eq!(
        l.ret,
        vec![
            ListReturn::SpecialUse,
            ListReturn::Status(vec![StatusItem::Messages, StatusItem::Unseen])
        ]
    );
    let CommandBody::List(l) = ok("a LIST \"\" (INBOX Sent/*)") else {
        panic!()
    };
    assert_eq!(l.patterns, vec![mb("INBOX"), mb("Sent/*")]);
    let CommandBody::List(l) = ok("a LSUB \"\" *") else {
        panic!()
    };
    assert_eq!(l.kind, ListKind::Lsub);
    let CommandBody::List(l) = ok("a XLIST \"\" *") else {
        panic!()
    };
    assert_eq!(l.kind, ListKind::Xlist);
}

#[test]
fn append_forms() {
    let CommandBody::Append { mailbox, messages } =
        ok("a APPEND Drafts (\\Seen \\Draft) \" 7-Feb-1994 21:52:25 -0800\" {5+}\r\nHello")
    else {
        panic!()
    };
    assert_eq!(mailbox, mb("Drafts"));
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].flags,
        vec!["\\Seen".to_string(), "\\Draft".to_string()]
    );
    assert_eq!(messages[0].date.unwrap().tz_minutes, -480);
    assert_eq!(messages[0].data, b"Hello");
    let CommandBody::Append { messages, .. } = ok("a APPEND x {1}\r\nA (\\Seen) ~{2}\r\nB\0")
    else {
        panic!()
    };
    assert_eq!(messages.len(), 2);
    assert!(messages[1].binary);
    assert_eq!(messages[1].data, b"B\0");
}

#[test]
fn search_forms() {
    let CommandBody::Search {
        uid,
        charset,
        ret,
        key,
    } = ok(
        "a UID SEARCH RETURN (MIN MAX COUNT) CHARSET UTF-8 OR FROM alice (UNSEEN SINCE 1-Feb-2024) NOT 1:* $",
    )
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(charset.as_deref(), Some("UTF-8"));
    assert_eq!(
        ret,
        Some(vec![
            SearchReturn::Min,
            SearchReturn::Max,
            SearchReturn::Count
        ])
    );
    let SearchKey::And(keys) = key else { panic!() };
    assert_eq!(keys.len(), 3);
    assert!(matches!(&keys[0], SearchKey::Or(..)));
    assert_eq!(keys[2], SearchKey::Sequence(SequenceSet::Saved));
    assert_eq!(
        ok("a SEARCH HEADER Message-ID \"<x@y>\""),
        CommandBody::Search {
            uid: false,
            charset: None,
            ret: None,
            key: SearchKey::Header("Message-ID".into(), b"<x@y>".to_vec())
        }
    );
    assert!(matches!(
        ok("a SEARCH SUBJECT {4}\r\nnäh"),
        CommandBody::Search { key: SearchKey::Header(f, v), .. } if f == "Subject" && v == "näh".as_bytes()
    ));
}

#[test]
fn fetch_forms() {
    let CommandBody::Fetch {
        uid, set, items, ..
    } = ok(
        "a UID FETCH 1:*,7 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To \"Subject\")] BODYSTRUCTURE)",
    )
    else {
        panic!()
    };
    assert!(uid);
    assert_eq!(
        set,
        SequenceSet::Ranges(vec![
            (SeqNum::Value(1), SeqNum::Last),
            (SeqNum::Value(7), SeqNum::Value(7))
        ])
    );
    assert_eq!(items.len(), 5);
    assert_eq!(
        items[3],
        FetchAttr::Section {
            section: Section {
                part: vec![],
                text: Some(SectionText::HeaderFields {
                    not: false,
                    fields: vec![b"From".to_vec(), b"To".to_vec(), b"Subject".to_vec()]
                })
            },
            partial: None,
            peek: true
        }
    );
    let CommandBody::Fetch { items, .. } = ok("a FETCH 2 BODY[1.2.MIME]<0.2048>") else {
        panic!()
    };
    assert_eq!(
        items,
        vec![FetchAttr::Section {
            section: Section {
                part: vec![1, 2],
                text: Some(SectionText::Mime)
            },
            partial: Some((0, 2048)),
            peek: false
        }]
    );
    let CommandBody::Fetch { items, .. } = ok("a FETCH 1 FULL") else {
        panic!()
    };
    assert_eq!(items.len(), 5);
    let CommandBody::Fetch { items, .. } =
        ok("a FETCH 1 (RFC822.PEEK RFC822.HEADER BINARY.PEEK[1]<0.10> BINARY.SIZE[2] BODY[])")
    else {
        panic!()
    };
    assert_eq!(items[3], FetchAttr::BinarySize(vec![2]));
    assert!(
        matches!(&items[4], FetchAttr::Section { section, peek: false, .. } if section.part.is_empty() && section.text.is_none())
    );
    let CommandBody::Fetch {
        items,
        changed_since,
        ..
    } = ok("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)")
    else {
        panic!()
    };
    assert_eq!(changed_since, Some(12345));
    assert!(items.contains(&FetchAttr::ModSeq));
    assert!(matches!(
        ok("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)"),
        CommandBody::Fetch {
            changed_since: Some(7),
            vanished: true,
            ..
        }
    ));
    // RFC 7162 3.2.6: VANISHED needs UID FETCH and CHANGEDSINCE.
    for line in [
        &b"a FETCH 1:* (FLAGS) (CHANGEDSINCE 7 VANISHED)"[..],
        b"a UID FETCH 1:* (FLAGS) (VANISHED)",
    ] {
        let e = bad(line);
        assert!(e.message.contains("VANISHED"), "{}", e.message);
    }
}

#[test]
fn qresync_select_parameters() {
    let CommandBody::Select {
        qresync: Some(q),
        condstore: false,
        ..
    } = ok("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
    else {
        panic!()
    };
    assert_eq!(q.uidvalidity, 67890007);
    assert_eq!(q.modseq, 20050715194045000);
    assert_eq!(
        q.known_uids,
        Some(SequenceSet::Ranges(vec![
            (SeqNum::Value(41), SeqNum::Value(41)),
            (SeqNum::Value(43), SeqNum::Value(211)),
            (SeqNum::Value(214), SeqNum::Value(541)),
        ]))
    );
    assert_eq!(q.seq_match, None);
    // RFC 7162 3.2.5's own example, with seq-match-data.
    let CommandBody::Select {
        qresync: Some(q), ..
    } = ok(
        "B EXAMINE INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
    )
    else {
        panic!()
    };
    let (seqs, uids) = q.seq_match.expect("seq-match-data");
    assert!(matches!(seqs, SequenceSet::Ranges(r) if r.len() == 4));
    assert!(matches!(uids, SequenceSet::Ranges(r) if r.len() == 13));
    // Only the first two are needed; seq-match-data may follow directly.
    let CommandBody::Select {
        qresync: Some(q), ..
    } = ok("a SELECT INBOX (QRESYNC (1 2 (1:2 5:6)) CONDSTORE)")
    else {
        panic!()
    };
    assert!(q.known_uids.is_none() && q.seq_match.is_some());
    for line in [
        &b"a SELECT INBOX (QRESYNC (1))"[..],
        b"a SELECT INBOX (QRESYNC (0 5))",
        b"a SELECT INBOX (QRESYNC (1 0))",
        b"a SELECT INBOX (QRESYNC (1 5 $))",
        b"a SELECT INBOX (QRESYNC)",
    ] {
        bad(line);
    }
}

#[test]
fn store_copy_move_expunge() {
    assert_eq!(
        ok("a STORE 2:4 +FLAGS.SILENT (\\Deleted $Junk)"),
        CommandBody::Store {
            uid: false,
            set: SequenceSet::Ranges(vec![(SeqNum::Value(2), SeqNum::Value(4))]),
            mode: StoreMode::Add,
            silent: true,
            flags: vec!["\\Deleted".into(), "$Junk".into()],
            unchanged_since: None,
        }
    );
    assert!(matches!(
        ok("a UID STORE 1 (UNCHANGEDSINCE 5) FLAGS \\Seen"),
        CommandBody::Store {
            unchanged_since: Some(5),
            mode: StoreMode::Replace,
            ..
        }
    ));
    assert!(matches!(
        ok("a UID MOVE 1:3 Junk"),
        CommandBody::Move { uid: true, .. }
    ));
    assert!(matches!(
        ok("a COPY $ Trash"),
        CommandBody::Copy {
            set: SequenceSet::Saved,
            ..
        }
    ));
    assert!(matches!(
        ok("a UID EXPUNGE 3:5"),
        CommandBody::Expunge { uids: Some(_) }
    ));
}

#[test]
fn errors_name_the_problem_and_keep_the_tag() {
    let e = bad(b"a1 FROB");
    assert_eq!(e.tag.as_deref(), Some("a1"));
    assert!(e.message.contains("unknown command FROB"));
    assert_eq!(bad(b"").tag, None);
    assert_eq!(bad(b"+ x").tag, None);
    for line in [
        &b"a LOGIN"[..],
        b"a LOGIN a b c",
        b"a SELECT",
        b"a FETCH 0 FLAGS",
        b"a FETCH 1 BODY[1.FOO]",
        b"a FETCH 1 BODY[]<0.0>",
        b"a FETCH 4294967296 FLAGS",
        b"a SEARCH FROM",
        b"a SEARCH BEFORE 30-Feb-2024",
        b"a APPEND INBOX",
        b"a APPEND INBOX {10}\r\nshort",
        b"a LOGIN \"unterminated",
        b"a LOGIN \"a\rb\" c",
        b"a STORE 1 FLAGZ (\\Seen)",
        b"a UID FROB 1",
        b"a ENABLE",
    ] {
        let e = bad(line);
        assert_eq!(
            e.tag.as_deref(),
            Some("a"),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(!e.message.is_empty());
    }
    // Nesting is bounded.
    let deep = format!("a SEARCH {}ALL{}", "(".repeat(200), ")".repeat(200));
    assert!(bad(deep.as_bytes()).message.contains("nest"));
    let nots = format!("a SEARCH {}ALL", "NOT ".repeat(1000));
    assert!(bad(nots.as_bytes()).message.contains("nest"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"a1 UIDFETCHSEARCHLIST()[]<>{}\"\\*%$:,.+-~0123456789 \r\nBODYPEEKHEADERFIELDS";
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 60) as usize;
        let mut line = b"t ".to_vec();
        let mut y = x;
        for _ in 0..len {
            y = y.wrapping_mul(6364136223846793005).wrapping_add(1);
            line.push(alphabet[(y >> 33) as usize % alphabet.len()]);
        }
        let _ = parse_command(&line);
    }
}

/// `parse_section` is FETCH's own section parser on a spec alone: what it
/// accepts and refuses is what `BODY[...]` accepts and refuses.
#[test]
fn section_specs() {
    let parsed = |spec: &str| parse_section(spec.as_bytes());
    assert_eq!(
        parsed("").unwrap(),
        Section {
            part: vec![],
            text: None
        }
    );
    assert_eq!(parsed("1.2").unwrap().part, vec![1, 2]);
    assert_eq!(parsed("1.2.mime").unwrap().text, Some(SectionText::Mime));
    assert_eq!(
        parsed("HEADER.FIELDS (From \"Subject\")").unwrap().text,
        Some(SectionText::HeaderFields {
            not: false,
            fields: vec![b"From".to_vec(), b"Subject".to_vec()]
        })
    );
    assert_eq!(
        parsed("3.HEADER.FIELDS.NOT (To)").unwrap(),
        Section {
            part: vec![3],
            text: Some(SectionText::HeaderFields {
                not: true,
                fields: vec![b"To".to_vec()]
            })
        }
    );
    for bad in [
        "0",
        "1..2",
        "MIME",
        "1.",
        "HEADER.FIELDS ()",
        "1.FOO",
        "x",
        "1]",
        "TEXT extra",
    ] {
        assert!(parsed(bad).is_err(), "{bad:?}");
        // The same spec inside a FETCH is refused the same way.
        assert!(
            parse_command(format!("a FETCH 1 BODY[{bad}]").as_bytes()).is_err(),
            "{bad:?} in FETCH"
        );
    }
    let deep = vec!["1"; 200].join(".");
    assert!(parsed(&deep).is_err(), "more part numbers than the limit");
}

#[test]
fn quota_and_compress_commands() {
    // RFC 9208 4.1 to 4.3.
    assert_eq!(ok("q GETQUOTA \"\""), CommandBody::GetQuota(Vec::new()));
    assert_eq!(
        ok("q GETQUOTAROOT INBOX"),
        CommandBody::GetQuotaRoot(mb("INBOX"))
    );
    assert_eq!(
        ok("q SETQUOTA \"\" (STORAGE 512 message 100)"),
        CommandBody::SetQuota {
            root: Vec::new(),
            limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 100)],
        }
    );
    assert_eq!(
        ok("q SETQUOTA \"\" ()"),
        CommandBody::SetQuota {
            root: Vec::new(),
            limits: vec![],
        }
    );
    bad(b"q SETQUOTA \"\" (STORAGE)");
    bad(b"q GETQUOTA");
    // RFC 4978 3.
    assert_eq!(
        ok("c COMPRESS DEFLATE"),
        CommandBody::Compress("DEFLATE".into())
    );
    assert_eq!(
        ok("c compress deflate"),
        CommandBody::Compress("DEFLATE".into())
    );
    bad(b"c COMPRESS");
}

#[test]
fn sort_and_thread() {
    let CommandBody::Sort {
        uid: true,
        ret: None,
        criteria,
        charset,
        key,
    } = ok("a UID SORT (REVERSE DATE subject DISPLAYFROM) UTF-8 SINCE 1-Feb-1994 FROM \"x\"")
    else {
        panic!()
    };
    assert_eq!(
        criteria,
        vec![
            SortCriterion {
                reverse: true,
                key: SortKey::Date
            },
            SortCriterion {
                reverse: false,
                key: SortKey::Subject
            },
            SortCriterion {
                reverse: false,
                key: SortKey::DisplayFrom
            },
        ]
    );
    assert_eq!(charset, "UTF-8");
    assert!(matches!(key, SearchKey::And(k) if k.len() == 2));
    // ESORT (RFC 5267): RETURN before the criteria.
    assert!(matches!(
        ok("a SORT RETURN (MIN COUNT) (SIZE) US-ASCII ALL"),
        CommandBody::Sort { ret: Some(r), .. } if r == vec![SearchReturn::Min, SearchReturn::Count]
    ));
    assert!(matches!(
        ok("a THREAD REFERENCES UTF-8 ALL"),
        CommandBody::Thread {
            uid: false,
            algorithm: ThreadAlgorithm::References,
            ..
        }
    ));
    assert!(matches!(
        ok("a UID THREAD orderedsubject us-ascii UNSEEN"),
        CommandBody::Thread {
            uid: true,
            algorithm: ThreadAlgorithm::OrderedSubject,
            ..
        }
    ));
    for (line, says) in [
        (&b"a SORT () UTF-8 ALL"[..], "empty"),
        (b"a SORT (WEIGHT) UTF-8 ALL", "unknown sort key WEIGHT"),
        (b"a SORT (DATE) ALL", "ends too early"),
        (b"a THREAD WHATEVER UTF-8 ALL", "unknown THREAD algorithm"),
        (b"a SORT (REVERSE) UTF-8 ALL", "expected a space"),
    ] {
        let e = bad(line);
        assert!(
            e.message.contains(says),
            "{}: {}",
            String::from_utf8_lossy(line),
            e.message
        );
    }
}

#[test]
fn within_and_deleted_storage() {
    assert!(matches!(
        ok("a SEARCH OLDER 3600 YOUNGER 86400"),
        CommandBody::Search { key: SearchKey::And(k), .. }
            if k == vec![SearchKey::Older(3600), SearchKey::Younger(86400)]
    ));
    assert!(bad(b"a SEARCH YOUNGER 0").message.contains("above 0"));
    assert!(matches!(
        ok("a STATUS INBOX (SIZE DELETED-STORAGE MAILBOXID)"),
        CommandBody::Status { items, .. }
            if items == vec![StatusItem::Size, StatusItem::DeletedStorage, StatusItem::MailboxId]
    ));
}

#[test]
fn object_ids() {
    assert!(matches!(
        ok("a UID FETCH 1:* (EMAILID THREADID)"),
        CommandBody::Fetch { items, .. } if items == vec![FetchAttr::EmailId, FetchAttr::ThreadId]
    ));
    assert!(matches!(
        ok("a SEARCH EMAILID M6d99ac3275bb4e THREADID T64b4_78a-7"),
        CommandBody::Search { key: SearchKey::And(k), .. }
            if k == vec![
                SearchKey::EmailId("M6d99ac3275bb4e".into()),
                SearchKey::ThreadId("T64b4_78a-7".into()),
            ]
    ));
    assert!(bad(b"a SEARCH EMAILID a.b").message.contains("object ID"));
}

#[test]
fn append_utf8() {
    let CommandBody::Append { messages, .. } = ok("a APPEND INBOX (\\Seen) UTF8 (~{5}\r\nHello)")
    else {
        panic!()
    };
    assert!(messages[0].utf8 && messages[0].binary);
    assert_eq!(messages[0].data, b"Hello");
    assert!(
        bad(b"a APPEND INBOX UTF8 ({5}\r\nHello)")
            .message
            .contains("literal8")
    );
}

#[test]
fn preview() {
    for line in ["a FETCH 1 (PREVIEW)", "a FETCH 1 (PREVIEW (LAZY) FLAGS)"] {
        let CommandBody::Fetch { items, .. } = ok(line) else {
            panic!()
        };
        assert_eq!(items[0], FetchAttr::Preview(PreviewForm::Preview), "{line}");
    }
    // The drafts before RFC 8970, as Dovecot answers them.
    for (line, form) in [
        ("a FETCH 1 (PREVIEW (FUZZY))", PreviewForm::Fuzzy),
        ("a FETCH 1 (PREVIEW (LAZY=FUZZY))", PreviewForm::Fuzzy),
        ("a FETCH 1 (SNIPPET (FUZZY))", PreviewForm::Snippet),
        ("a FETCH 1 (SNIPPET)", PreviewForm::Snippet),
    ] {
        let CommandBody::Fetch { items, .. } = ok(line) else {
            panic!()
        };
        assert_eq!(items[0], FetchAttr::Preview(form), "{line}");
    }
    bad(b"a FETCH 1 (PREVIEW (SOON))");
}

#[test]
fn savedate() {
    assert!(matches!(
        ok("a FETCH 1 (SAVEDATE)"),
        CommandBody::Fetch { items, .. } if items == vec![FetchAttr::SaveDate]
    ));
    let CommandBody::Search {
        key: SearchKey::And(k),
        ..
    } = ok(
        "a SEARCH SAVEDBEFORE 1-Feb-2024 SAVEDON 2-Feb-2024 SAVEDSINCE 3-Feb-2024 SAVEDATESUPPORTED",
    )
    else {
        panic!()
    };
    assert!(matches!(
        k.as_slice(),
        [
            SearchKey::SavedBefore(_),
            SearchKey::SavedOn(_),
            SearchKey::SavedSince(_),
            SearchKey::SaveDateSupported
        ]
    ));
}

#[test]
fn context_and_notify() {
    // RFC 5267: UPDATE, CONTEXT and PARTIAL (its range put in order).
    assert!(matches!(
        ok("a SEARCH RETURN (UPDATE CONTEXT PARTIAL 5:1) UNSEEN"),
        CommandBody::Search { ret: Some(r), .. }
            if r == vec![SearchReturn::Update, SearchReturn::Context, SearchReturn::Partial(1, 5)]
    ));
    bad(b"a SEARCH RETURN (PARTIAL -1:-5) ALL");
    bad(b"a SEARCH RETURN (PARTIAL 0:5) ALL");
    assert_eq!(
        ok("a CANCELUPDATE \"s1\" \"s2\""),
        CommandBody::CancelUpdate(vec!["s1".into(), "s2".into()])
    );
    bad(b"a CANCELUPDATE");
    // RFC 5465.
    assert_eq!(ok("a NOTIFY NONE"), CommandBody::Notify(None));
    let CommandBody::Notify(Some(set)) = ok(
        "a NOTIFY SET STATUS (selected (MessageNew (uid flags) MessageExpunge)) \
         (subtree (Lists \"Other Stuff\") (MailboxName)) (mailboxes Work NONE)",
    ) else {
        panic!()
    };
    assert!(set.status);
    assert_eq!(set.groups.len(), 3);
    assert_eq!(set.groups[0].filter, NotifyFilter::Selected);
    assert!(matches!(&set.groups[0].events[0], NotifyEvent::MessageNew(a) if a.len() == 2));
    assert_eq!(set.groups[0].events[1], NotifyEvent::MessageExpunge);
    assert_eq!(
        set.groups[1].filter,
        NotifyFilter::Subtree(vec![mb("Lists"), mb("Other Stuff")])
    );
    assert_eq!(set.groups[1].events, vec![NotifyEvent::MailboxName]);
    assert_eq!(
        set.groups[2].filter,
        NotifyFilter::Mailboxes(vec![mb("Work")])
    );
    assert!(set.groups[2].events.is_empty());
    assert_eq!(
        ok("a NOTIFY SET (personal (AnnotationChange))"),
        CommandBody::Notify(Some(NotifySet {
            status: false,
            groups: vec![NotifyGroup {
                filter: NotifyFilter::Personal,
                events: vec![NotifyEvent::Other("AnnotationChange".into())],
            }],
        }))
    );
    bad(b"a NOTIFY SET");
    bad(b"a NOTIFY SET (elsewhere (MessageNew MessageExpunge))");
    bad(b"a NOTIFY SOON");
}
