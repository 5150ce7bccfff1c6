//! `satchel deliver` over the real binary: receipts, UIDs, crash safety.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;
use store::prelude::*;

use common::{Satchel, receipt_uid};

const RCPT: &str = "alice@example.test";

#[test]
fn a_thousand_deliveries_get_a_thousand_increasing_uids() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let mut last = 0;
    for i in 0..1000 {
        let uid = s.deliver(RCPT, format!("Subject: {i}\r\n\r\nbody {i}\r\n").as_bytes());
        assert!(uid > last, "UID {uid} after {last}");
        last = uid;
    }
    assert_eq!(last, 1000);
}

#[test]
fn two_parallel_delivery_loops_never_share_a_uid() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let loops: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    (0..150)
                        .map(|i| {
                            s.deliver(RCPT, format!("Subject: {t}/{i}\r\n\r\nx\r\n").as_bytes())
                        })
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for uids in &loops {
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "each loop sees its UIDs increase"
        );
    }
    let all: HashSet<u32> = loops.iter().flatten().copied().collect();
    assert_eq!(all.len(), 300, "a UID was handed out twice");
    assert_eq!(all.iter().max(), Some(&300));
}

#[tokio::test]
async fn several_recipients_share_one_blob() {
    let s = Satchel::new();
    s.add_user("a@example.test");
    s.add_user("b@example.test");
    let out = s.ok(
        &[
            "deliver",
            "--from",
            "x@remote.test",
            "--to",
            "a@example.test",
            "--to",
            "b+lists@example.test",
        ],
        b"Subject: both\r\n\r\nhi\r\n",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(receipt_uid(lines[0], "a@example.test"), 1);
    assert_eq!(receipt_uid(lines[1], "b+lists@example.test"), 1);
    let store = s.store().await;
    let mut blobs = Vec::new();
    for who in ["a@example.test", "b@example.test"] {
        let acc = store.account(who).await.unwrap().unwrap();
        let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().unwrap();
        blobs.push(store.messages(inbox.id).await.unwrap()[0].blob.clone());
    }
    assert_eq!(blobs[0], blobs[1]);
}

#[tokio::test]
async fn each_recipients_verdict_is_kept_in_the_index() {
    let s = Satchel::new();
    s.add_user("a@example.test");
    s.add_user("b@example.test");
    s.ok(&["spam", "block", "b@example.test", "@remote.test"], b"");
    let out = s.ok(
        &[
            "deliver",
            "--from",
            "x@remote.test",
            "--to",
            "a@example.test",
            "--to",
            "b@example.test",
        ],
        b"From: X <x@remote.test>\r\nSubject: \r\n\r\nhi\r\n",
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["a@example.test INBOX 1", "b@example.test Junk 1"]
    );
    let store = s.store().await;
    let mut notes = Vec::new();
    let mut blobs = Vec::new();
    for (who, mailbox) in [("a@example.test", "INBOX"), ("b@example.test", "Junk")] {
        let acc = store.account(who).await.unwrap().unwrap();
        let m = store.mailbox(acc.id, mailbox).await.unwrap().unwrap();
        blobs.push(store.messages(m.id).await.unwrap()[0].blob.clone());
        notes.push(store.spam_note(m.id, 1).await.unwrap().unwrap());
    }
    let reasons = "MISSING_DATE(10) MISSING_MESSAGE_ID(10) EMPTY_SUBJECT(5)";
    assert_eq!((notes[0].score, notes[0].reasons.as_str()), (25, reasons));
    assert_eq!(notes[1].score, 1025);
    assert_eq!(notes[1].reasons, format!("{reasons} BLOCKED_SENDER(1000)"));
    // Each copy carries its own verdict's fields after the shared trace
    // (no "for": two recipients), so the two are different blobs.
    assert_ne!(blobs[0], blobs[1]);
    let mut copies = Vec::new();
    for blob in &blobs {
        copies.push(String::from_utf8(store.read_blob(blob).await.unwrap()).unwrap());
    }
    for copy in &copies {
        assert!(
            copy.starts_with("Return-Path: <x@remote.test>\r\nReceived: by "),
            "{copy}"
        );
        assert!(!copy.contains("\tfor <"), "{copy}");
        assert!(copy.ends_with("From: X <x@remote.test>\r\nSubject: \r\n\r\nhi\r\n"));
    }
    assert!(!copies[0].contains("BLOCKED_SENDER") && copies[1].contains("BLOCKED_SENDER"));
}

#[test]
fn an_unknown_recipient_delivers_nothing() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let out = s.run(
        &[
            "deliver",
            "--from",
            "x@remote.test",
            "--to",
            RCPT,
            "--to",
            "nobody@example.test",
        ],
        b"Subject: x\r\n\r\ny\r\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody@example.test"));
    assert!(out.stdout.is_empty());
    // The next delivery still gets UID 1: nothing was stored.
    assert_eq!(s.deliver(RCPT, b"Subject: x\r\n\r\ny\r\n"), 1);
}

/// `deliver` killed with SIGKILL at random moments: every message whose
/// receipt was printed is there afterwards, byte for byte.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_never_loses_an_acknowledged_message() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let mut rng = Lcg(std::process::id() as u64 ^ 0x5eed);
    let mut acknowledged: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut killed_before_receipt = 0;
    // The kill lands within a window as long as about two whole deliveries
    // take on this machine now (a loaded CI box starts a debug binary much
    // slower than an idle one), and the window doubles while no delivery
    // has finished, so both outcomes happen however slow the machine is.
    let started = std::time::Instant::now();
    s.deliver(RCPT, b"Subject: calibrate\r\n\r\nx\r\n");
    let mut window_us = (started.elapsed().as_micros() as u64 * 2).max(10_000);
    for i in 0..150 {
        if i % 20 == 19 && acknowledged.is_empty() {
            window_us *= 2;
        }
        // Sizes from a few bytes to ~300 KB, so kills land in blob writes too.
        let size = 20 + (rng.next() % 300_000) as usize * (i % 3) / 2;
        let mut msg = format!("Subject: crash {i}\r\n\r\n").into_bytes();
        msg.extend((0..size).map(|j| b'a' + ((i * 7 + j) % 26) as u8));
        msg.extend_from_slice(b"\r\n");

        let mut child = s
            .command(&["deliver", "--from", "x@remote.test", "--to", RCPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = msg.clone();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&feed);
        });
        std::thread::sleep(Duration::from_micros(rng.next() % window_us));
        let _ = child.kill(); // SIGKILL
        let out = child.wait_with_output().unwrap();
        let _ = writer.join();
        let stdout = String::from_utf8_lossy(&out.stdout);
        match stdout.lines().next() {
            Some(line) => {
                let uid = receipt_uid(line, RCPT);
                assert!(
                    acknowledged.insert(uid, msg).is_none(),
                    "UID {uid} acknowledged twice"
                );
            }
            None => killed_before_receipt += 1,
        }
    }
    // Both outcomes must have happened, or the test did not test anything.
    assert!(
        !acknowledged.is_empty(),
        "no delivery finished before the kill"
    );
    assert!(
        killed_before_receipt > 0,
        "no delivery was killed in flight"
    );

    // The store still works after all that, and holds every acknowledged message.
    let after = s.deliver(RCPT, b"Subject: after\r\n\r\nstill working\r\n");
    assert!(acknowledged.keys().all(|&uid| uid < after));
    let store = s.store().await;
    let acc = store.account(RCPT).await.unwrap().unwrap();
    let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().unwrap();
    let stored: BTreeMap<u32, store::MessageMeta> = store
        .messages(inbox.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.uid, m))
        .collect();
    for (uid, sent) in &acknowledged {
        let meta = stored
            .get(uid)
            .unwrap_or_else(|| panic!("acknowledged UID {uid} is missing"));
        let bytes = store.read_blob(&meta.blob).await.unwrap();
        // As sent, after the trace fields the delivery put in front.
        assert!(bytes.ends_with(sent), "UID {uid} came back different");
    }
    eprintln!(
        "{} acknowledged, {killed_before_receipt} killed before the receipt",
        acknowledged.len()
    );
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// `deliver` takes the same path as SMTP: the envelope sender becomes
/// `Return-Path:`, a `Received:` says who handed it over and for whom, and
/// the spam verdict's fields follow (RFC 5321 4.4).
#[tokio::test]
async fn deliver_adds_return_path_and_received() {
    let s = Satchel::new();
    s.add_user(RCPT);
    let message = b"From: Bob <bob@remote.test>\r\nSubject: hi\r\n\r\nhello\r\n";
    let out = s.ok(
        &["deliver", "--from", "bounces@remote.test", "--to", RCPT],
        message,
    );
    assert_eq!(receipt_uid(&out, RCPT), 1);
    let store = s.store().await;
    let acc = store.account(RCPT).await.unwrap().unwrap();
    let inbox = store.mailbox(acc.id, "INBOX").await.unwrap().unwrap();
    let meta = &store.messages(inbox.id).await.unwrap()[0];
    let raw = String::from_utf8(store.read_blob(&meta.blob).await.unwrap()).unwrap();
    let mut lines = raw.split("\r\n");
    assert_eq!(lines.next(), Some("Return-Path: <bounces@remote.test>"));
    let received = lines.next().unwrap();
    assert!(
        received.starts_with("Received: by ") && received.ends_with("with local"),
        "{raw}"
    );
    let for_line = lines.next().unwrap();
    assert!(for_line.starts_with(&format!("\tfor <{RCPT}>; ")), "{raw}");
    assert!(raw.contains("\r\nX-Spam-Score: "), "{raw}");
    assert!(raw.ends_with(std::str::from_utf8(message).unwrap()));
}
