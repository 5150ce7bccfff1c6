//! `satchel user ...` over the real binary.

mod common;

use common::Satchel;
use store::SpecialUse;
use store::prelude::*;

#[tokio::test]
async fn user_add_creates_the_six_default_mailboxes() {
    let s = Satchel::new();
    s.add_user("Alice@Example.Test");
    let store = s.store().await;
    let account = store.account("alice@example.test").await.unwrap().unwrap();
    let mut boxes: Vec<(String, Option<SpecialUse>)> = store
        .list_mailboxes(account.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.special_use))
        .collect();
    boxes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        boxes,
        vec![
            ("Drafts".to_string(), Some(SpecialUse::Drafts)),
            ("INBOX".to_string(), None),
            ("Junk".to_string(), Some(SpecialUse::Junk)),
            ("Possible Junk".to_string(), None),
            ("Sent".to_string(), Some(SpecialUse::Sent)),
            ("Trash".to_string(), Some(SpecialUse::Trash)),
        ]
    );
    // Every mailbox has its own UIDVALIDITY and a non-zero HIGHESTMODSEQ.
    let mailboxes = store.list_mailboxes(account.id).await.unwrap();
    let mut validities: Vec<u32> = mailboxes.iter().map(|m| m.uidvalidity).collect();
    validities.sort();
    validities.dedup();
    assert_eq!(validities.len(), 6);
    assert!(
        mailboxes
            .iter()
            .all(|m| m.highestmodseq > 0 && m.uidnext == 1)
    );
}

#[test]
fn adding_an_address_twice_fails_with_status_1() {
    let s = Satchel::new();
    s.add_user("bob@example.test");
    s.fails(
        &["user", "add", "BOB@example.test", "--password-stdin"],
        b"x\n",
        "bob@example.test already exists",
    );
}

#[test]
fn list_passwd_remove() {
    let s = Satchel::new();
    s.add_user("b@example.test");
    s.add_user("a@example.test");
    assert_eq!(
        s.ok(&["user", "list"], b""),
        "a@example.test\nb@example.test\n"
    );
    s.ok(
        &["user", "passwd", "a@example.test", "--password-stdin"],
        b"new one\n",
    );
    let uid = s.deliver("b@example.test", b"Subject: x\r\n\r\nbye\r\n");
    assert_eq!(uid, 1);
    s.ok(&["user", "remove", "b@example.test"], b"");
    assert_eq!(s.ok(&["user", "list"], b""), "a@example.test\n");
    // The removed account's only blob is gone from disk too.
    let blobs = walk_files(&s.data().join("blobs"));
    assert!(
        blobs
            .iter()
            .all(|p| p.starts_with(s.data().join("blobs/tmp"))),
        "blobs left behind: {blobs:?}"
    );
    s.fails(
        &["user", "remove", "b@example.test"],
        b"",
        "no account b@example.test",
    );
}

#[tokio::test]
async fn passwords_are_argon2id_and_checked() {
    let s = Satchel::new();
    s.add_user("c@example.test");
    s.ok(
        &["user", "passwd", "c@example.test", "--password-stdin"],
        b"correct horse\r\n",
    );
    let store = s.store().await;
    assert!(
        store
            .authenticate("c@example.test", "correct horse")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .authenticate("C@EXAMPLE.TEST", "correct horse")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .authenticate("c@example.test", "secret")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .authenticate("nobody@example.test", "x")
            .await
            .unwrap()
            .is_none()
    );
    let hash = std::process::Command::new("sqlite3")
        .arg(s.data().join("index.sqlite"))
        .arg("SELECT password_hash FROM accounts")
        .output()
        .expect("sqlite3");
    assert!(String::from_utf8_lossy(&hash.stdout).starts_with("$argon2id$"));
}

#[test]
fn bad_addresses_and_empty_passwords_are_refused() {
    let s = Satchel::new();
    for bad in ["no-at-sign", "a b@example.test", "x@", "x@exa mple.test"] {
        s.fails(
            &["user", "add", bad, "--password-stdin"],
            b"pw\n",
            "invalid address",
        );
    }
    s.fails(
        &["user", "add", "ok@example.test", "--password-stdin"],
        b"\n",
        "password on standard input is empty",
    );
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
