//! Bad input at the CLI: config mistakes, empty and hostile messages.

mod common;

use common::Satchel;
use store::prelude::*;

const RCPT: &str = "dave@example.test";

#[test]
fn unknown_config_keys_name_the_key_and_the_file() {
    let s = Satchel::new();
    let path = s.dir.path().join("satchel.toml");
    for (text, key) in [
        (
            "hostname = \"mx.example.test\"\nmail_dir = \"/tmp\"\n",
            "mail_dir",
        ),
        (
            "[listen]\nimap = [\"127.0.0.1:1143\"]\nimap4 = [\"127.0.0.1:1144\"]\n",
            "imap4",
        ),
        ("[spam]\njunk = 100\nspam = 5\n", "spam"),
        ("[cache]\nsize = 1\n", "cache"),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = s.fails(
            &["--config", path.to_str().unwrap(), "user", "list"],
            b"",
            &format!("unknown field `{key}`"),
        );
        assert!(err.contains(path.to_str().unwrap()), "{err}");
    }
}

#[test]
fn bad_config_values_say_what_is_allowed() {
    let s = Satchel::new();
    let path = s.dir.path().join("satchel.toml");
    let config = path.to_str().unwrap();
    let with = |text: &str, needle: &str| {
        std::fs::write(&path, text).unwrap();
        s.fails(&["--config", config, "user", "list"], b"", needle)
    };
    let err = with("[pop3]\ndelete = \"shred\"\n", "delete = \"shred\"");
    assert!(
        err.contains("expunge") && err.contains("trash") && err.contains("hide"),
        "{err}"
    );
    with(
        "[listen]\nimap = [\"localhost:99999\"]\n",
        "imap = [\"localhost:99999\"]",
    );
    with("hostname =\n", ":1: hostname =");
    with(
        "[spam]\npossible_junk = 120\njunk = 100\n",
        "spam.possible_junk = 120",
    );
    s.fails(
        &["--config", "/nonexistent.toml", "user", "list"],
        b"",
        "cannot read config file /nonexistent.toml",
    );
}

#[test]
fn an_empty_message_is_refused_and_nothing_is_stored() {
    let s = Satchel::new();
    s.add_user(RCPT);
    s.fails(
        &["deliver", "--from", "x@remote.test", "--to", RCPT],
        b"",
        "the message on standard input is empty",
    );
    assert_eq!(s.deliver(RCPT, b"x"), 1, "the refused message took no UID");
}

#[test]
fn a_message_over_the_size_limit_is_refused() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let big = vec![b'a'; 50 * 1024 * 1024 + 1];
    s.fails(
        &["deliver", "--from", "x@remote.test", "--to", RCPT],
        &big,
        "larger than 52428800 bytes",
    );
    assert_eq!(s.deliver(RCPT, b"x"), 1, "the refused message took no UID");
}

/// Any non-empty byte sequence is stored exactly as given, and its cached
/// IMAP views are still valid IMAP.
#[tokio::test]
async fn any_bytes_are_stored_verbatim_after_the_trace() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut samples: Vec<Vec<u8>> = vec![
        b"x".to_vec(),
        b"\n".to_vec(),
        b"\r".to_vec(),
        b"\0".to_vec(),
        b"no header at all, no newline".to_vec(),
        b"Subject: bare CR\rin\r\rthe header\r\n\r\nbody\r".to_vec(),
        b"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\n--b\n--b--\n--b\n".to_vec(),
        [
            &b"Subject: \xff\xfe\x00 8-bit\n\n"[..],
            &[0u8, 0xff, 0x80, 0x0d, 0x0a, 0x0a][..],
        ]
        .concat(),
        "From: \"unterminated <a@b\nTo: ,,,;;;<<>>\n\n".into(),
        b"Content-Type: message/rfc822\n\n".repeat(500),
    ];
    for len in [1usize, 2, 3, 100, 4096, 2 * 1024 * 1024] {
        samples.push((0..len).map(|_| next() as u8).collect());
    }
    let mut uids = Vec::new();
    for sample in &samples {
        uids.push(s.deliver(RCPT, sample));
    }
    let store = s.store().await;
    let acc = store.account(RCPT).await.unwrap().unwrap();
    let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().unwrap();
    let msgs = store.messages(inbox.id).await.unwrap();
    assert_eq!(msgs.len(), samples.len());
    let views = store.views(inbox.id, &uids).await.unwrap();
    assert_eq!(views.len(), samples.len());
    for ((meta, sample), uid) in msgs.iter().zip(&samples).zip(&uids) {
        assert_eq!(meta.uid, *uid);
        // The bytes as given, after the fields every delivery puts in
        // front (Return-Path, Received, the spam verdict).
        let stored = store.read_blob(&meta.blob).await.unwrap();
        assert!(stored.ends_with(sample), "UID {uid} changed");
        let prefix = &stored[..stored.len() - sample.len()];
        assert!(
            prefix.starts_with(b"Return-Path: <sender@remote.test>\r\nReceived: by ")
                && prefix.ends_with(b"\r\n"),
            "UID {uid}: {:?}",
            String::from_utf8_lossy(prefix)
        );
        assert_eq!(meta.size, mime::served(&stored).len() as u64);
        let cache = &views.iter().find(|(u, _)| u == uid).unwrap().1;
        for view in [&cache.envelope, &cache.bodystructure] {
            let text = view.as_deref().expect("cached view");
            assert!(
                mime::Value::parse(text).is_some(),
                "UID {uid}: cached view is not valid IMAP"
            );
        }
    }
}

#[test]
fn usage_errors_are_one_line_too() {
    let s = Satchel::new();
    for (args, needle) in [
        (&["frobnicate"][..], "frobnicate"),
        (&["queue"][..], "queue needs one of: list, retry, remove"),
        (&["user"][..], "add, "),
        (&["user", "add", "x@example.test"][..], "--password-stdin"),
        (&["deliver", "--from", "a@b"][..], "--to"),
        (
            &[
                "export",
                "a@b",
                "--mailbox",
                "INBOX",
                "--format",
                "zip",
                "/tmp/x",
            ][..],
            "zip",
        ),
    ] {
        let out = s.run(args, b"");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("satchel: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
    let help = s.run(&["--help"], b"");
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("deliver"));
}

#[test]
fn a_closed_stdout_is_an_error_not_a_panic() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let mut c = s.command(&["deliver", "--from", "x@remote.test", "--to", RCPT]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take()); // the reader goes away before the receipt
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"Subject: x\r\n\r\nx\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write to standard output"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
