//! `satchel import` and `satchel export` over the real binary.

mod common;

use std::path::Path;
use std::process::Command;
use store::prelude::*;

use common::{Satchel, gen_mbox};
use store::Flags;

const RCPT: &str = "carol@example.test";

/// SHA-256 of each message of an mbox as Python's `mailbox` module reads
/// it: an independent reader of the same format.
fn python_mbox_digests(path: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import hashlib, mailbox, sys\n\
             box = mailbox.mbox(sys.argv[1], create=False)\n\
             for key in box.keys():\n    print(hashlib.sha256(box.get_bytes(key)).hexdigest())",
        )
        .arg(path)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn mbox_import_then_export_gives_the_same_messages_byte_for_byte() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let original = s.dir.path().join("gen.mbox");
    gen_mbox(&original, 100);
    let out = s.ok(
        &[
            "import",
            RCPT,
            "--mailbox",
            "Archive/2024",
            original.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.trim(), "imported 100 messages into Archive/2024");

    let exported = s.dir.path().join("out.mbox");
    let out = s.ok(
        &[
            "export",
            RCPT,
            "--mailbox",
            "Archive/2024",
            "--format",
            "mbox",
            exported.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.trim(), "exported 100 messages from Archive/2024");
    let before = python_mbox_digests(&original);
    assert_eq!(before.len(), 100);
    assert_eq!(before, python_mbox_digests(&exported));

    // Maildir out, back in, and out as mbox again: still the same messages.
    let maildir = s.dir.path().join("Maildir");
    s.ok(
        &[
            "export",
            RCPT,
            "--mailbox",
            "Archive/2024",
            "--format",
            "maildir",
            maildir.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(std::fs::read_dir(maildir.join("cur")).unwrap().count(), 100);
    s.ok(
        &[
            "import",
            RCPT,
            "--mailbox",
            "Again",
            maildir.to_str().unwrap(),
        ],
        b"",
    );
    let again = s.dir.path().join("again.mbox");
    s.ok(
        &[
            "export",
            RCPT,
            "--mailbox",
            "Again",
            "--format",
            "mbox",
            again.to_str().unwrap(),
        ],
        b"",
    );
    let mut a = python_mbox_digests(&again);
    let mut b = before.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[tokio::test]
async fn flags_and_internal_dates_survive_both_formats() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let mbox = s.dir.path().join("flags.mbox");
    std::fs::write(
        &mbox,
        "From alice@example.org Tue Jan  2 10:00:00 2024\n\
         Subject: seen and answered\nStatus: RO\nX-Status: A\n\nHello\n>From quoted.\n>>From twice.\n\n\
         From bob@example.org Wed Mar 13 23:59:59 2024\n\
         Subject: flagged draft\nX-Status: FT\nX-Keywords: $Label1 Work\n\nbody\n\n\
         From carol@example.org Thu Feb 29 00:00:01 2024\n\
         Subject: nothing\n\nplain\n",
    )
    .unwrap();
    s.ok(
        &["import", RCPT, "--mailbox", "Flags", mbox.to_str().unwrap()],
        b"",
    );

    let store = s.store().await;
    let acc = store.account(RCPT).await.unwrap().unwrap();
    let check = |msgs: &[store::MessageMeta]| {
        let got: Vec<(Flags, i64)> = msgs
            .iter()
            .map(|m| (m.flags, m.internal_date.unix))
            .collect();
        assert_eq!(
            got,
            vec![
                (Flags::SEEN | Flags::ANSWERED, 1704189600),
                (Flags::FLAGGED | Flags::DRAFT, 1710374399),
                (Flags::empty(), 1709164801),
            ]
        );
    };
    let flags_box = store.mailbox(acc.id, "Flags").await.unwrap().unwrap();
    let msgs = store.messages(flags_box.id).await.unwrap();
    check(&msgs);
    assert_eq!(
        msgs[1].keywords,
        vec!["$Label1".to_string(), "Work".to_string()]
    );
    // mboxrd unquoting: the stored body has the line as it was before quoting.
    let first = store.read_blob(&msgs[0].blob).await.unwrap();
    assert!(
        first.ends_with(b"\nHello\nFrom quoted.\n>From twice.\n"),
        "{:?}",
        String::from_utf8_lossy(&first)
    );

    // Maildir: flags in the names, dates as mtimes, and back in again.
    let maildir = s.dir.path().join("md");
    s.ok(
        &[
            "export",
            RCPT,
            "--mailbox",
            "Flags",
            "--format",
            "maildir",
            maildir.to_str().unwrap(),
        ],
        b"",
    );
    let mut names: Vec<String> = std::fs::read_dir(maildir.join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.iter().any(|n| n.ends_with(":2,RS")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(":2,DFab")), "{names:?}");
    assert_eq!(
        std::fs::read_to_string(maildir.join("dovecot-keywords")).unwrap(),
        "0 $Label1\n1 Work\n"
    );
    assert!(
        std::fs::read_dir(maildir.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(names.iter().any(|n| n.ends_with(":2,")), "{names:?}");
    s.ok(
        &[
            "import",
            RCPT,
            "--mailbox",
            "FromMaildir",
            maildir.to_str().unwrap(),
        ],
        b"",
    );
    let back = store.mailbox(acc.id, "FromMaildir").await.unwrap().unwrap();
    let back_msgs = store.messages(back.id).await.unwrap();
    let mut sorted = back_msgs.clone();
    sorted.sort_by_key(|m| m.internal_date.unix);
    let mut expected_order = msgs.clone();
    expected_order.sort_by_key(|m| m.internal_date.unix);
    for (a, b) in sorted.iter().zip(&expected_order) {
        assert_eq!(
            (a.flags, a.internal_date.unix, &a.blob, &a.keywords),
            (b.flags, b.internal_date.unix, &b.blob, &b.keywords)
        );
    }

    // mbox out: the From_ lines carry the dates, Status headers the flags.
    let out = s.dir.path().join("flags-out.mbox");
    s.ok(
        &[
            "export",
            RCPT,
            "--mailbox",
            "Flags",
            "--format",
            "mbox",
            out.to_str().unwrap(),
        ],
        b"",
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("From MAILER-DAEMON Tue Jan  2 10:00:00 2024\n"),
        "{text}"
    );
    assert!(text.contains("\nHello\n>From quoted.\n>>From twice.\n"));
    assert!(text.contains("From MAILER-DAEMON Thu Feb 29 00:00:01 2024\n"));
    assert!(text.contains("\nX-Keywords: $Label1 Work\n"));
}

#[test]
fn clear_errors_for_wrong_paths_and_accounts() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let not_mbox = s.dir.path().join("notes.txt");
    std::fs::write(&not_mbox, "just some text\n").unwrap();
    let notes = not_mbox.to_str().unwrap();
    let import = |who: &str, mailbox: &str, path: &str, needle: &str| {
        s.fails(&["import", who, "--mailbox", mailbox, path], b"", needle);
    };
    import(RCPT, "X", notes, "is not an mbox file");
    import(
        RCPT,
        "X",
        "/nonexistent/path",
        "cannot read /nonexistent/path",
    );
    import(
        "nobody@example.test",
        "X",
        notes,
        "no account nobody@example.test",
    );
    let mbox = s.dir.path().join("one.mbox");
    std::fs::write(&mbox, "From x Thu Jan  4 10:00:00 2024\nSubject: x\n\nx\n").unwrap();
    import(
        RCPT,
        "bad//name",
        mbox.to_str().unwrap(),
        "invalid mailbox name",
    );

    let export = |mailbox: &str, path: &str, needle: &str| {
        s.fails(
            &[
                "export",
                RCPT,
                "--mailbox",
                mailbox,
                "--format",
                "mbox",
                path,
            ],
            b"",
            needle,
        );
    };
    export("INBOX", notes, "exists already");
    assert_eq!(
        std::fs::read_to_string(&not_mbox).unwrap(),
        "just some text\n"
    );
    export("Nope", "/tmp/x.mbox", "has no mailbox \"Nope\"");
}
