//! `satchel check [--repair]` over the real binary: a whole store passes;
//! a default mailbox gone is made again; a counter behind the index and an
//! orphan body file are found and repaired; a damaged body is found and
//! left, and the messages of a removed one are removed (their bytes are
//! gone either way).

mod common;

use common::Satchel;

const MESSAGE: &[u8] = b"From: x@remote.test\r\nSubject: kept\r\n\r\nbody\r\n";

#[test]
fn a_whole_store_has_no_problems() {
    let s = Satchel::new();
    s.add_user("a@example.test");
    s.deliver("a@example.test", MESSAGE);
    let out = s.ok(&["check"], b"");
    assert!(
        out.ends_with("checked 6 mailboxes, 1 messages, 1 body files: no problems\n"),
        "{out}"
    );
}

#[test]
fn counters_and_orphans_are_repaired_and_damage_is_reported() {
    let s = Satchel::new();
    s.add_user("a@example.test");
    s.deliver("a@example.test", MESSAGE);
    let data = s.data();
    let db = edit_index(
        &data,
        "UPDATE mailboxes SET uidnext = 1 WHERE name = 'INBOX'",
    );
    assert!(db, "the test could not edit the index");
    // A body file no row names, old enough not to be a delivery in flight.
    let orphan = data.join("blobs").join("ab").join("cdef00");
    std::fs::write(&orphan, b"left behind").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let err = s.fails(&["check"], b"", "2 problems left");
    assert!(err.contains("listed above"), "{err}");
    let out = s.run(&["check"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("problem: a@example.test \"INBOX\": UIDNEXT is 1 but UID 1 is taken"),
        "{text}"
    );
    assert!(
        text.contains("problem: the body file abcdef00 belongs to no message"),
        "{text}"
    );

    let out = s.ok(&["check", "--repair"], b"");
    assert!(out.contains("2 problems, all repaired"), "{out}");
    assert!(
        data.join("lost+found").join("abcdef00").exists(),
        "kept aside, not deleted"
    );
    assert!(s.ok(&["check"], b"").ends_with(": no problems\n"));
    // The next delivery takes UID 2, not a reused 1.
    assert_eq!(s.deliver("a@example.test", MESSAGE), 2);

    // A damaged body cannot be repaired: it is reported and left.
    let blob = std::fs::read_dir(data.join("blobs"))
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().len() == 2)
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.path())
        .next()
        .expect("a body file");
    std::fs::write(&blob, b"garbage").unwrap();
    s.fails(&["check", "--repair"], b"", "1 problem left");
    let out = s.run(&["check"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("is damaged") && text.contains("restore it from a backup"),
        "{text}"
    );

    // A body file removed: found and named; --repair removes the
    // messages that named it (their bytes are gone already, and every
    // FETCH of them would fail) and lists them in lost+found.
    std::fs::remove_file(&blob).unwrap();
    let out = s.run(&["check"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("is missing; restore it from a backup"),
        "{text}"
    );
    let out = s.ok(&["check", "--repair"], b"");
    assert!(out.contains("1 problem, all repaired"), "{out}");
    let listed =
        std::fs::read_to_string(data.join("lost+found").join("missing-bodies.txt")).unwrap();
    // One line per message that named it: the two deliveries share a body
    // file only when they arrived within the same second.
    assert!(
        (1..=2).contains(&listed.lines().count())
            && listed.lines().all(|l| {
                l.starts_with("a@example.test \"INBOX\" UID ")
                    && l.ends_with("was missing; the message was removed")
            }),
        "{listed}"
    );
    assert!(s.ok(&["check"], b"").ends_with(": no problems\n"));
    // The next delivery still takes a new UID.
    assert_eq!(s.deliver("a@example.test", MESSAGE), 3);
}

#[test]
fn a_missing_default_mailbox_is_made_again() {
    let s = Satchel::new();
    s.add_user("a@example.test");
    let data = s.data();
    assert!(edit_index(
        &data,
        "DELETE FROM mailboxes WHERE name = 'Junk'"
    ));
    let out = s.run(&["check"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "problem: a@example.test has no mailbox \"Junk\", one of the defaults mail is filed into"
        ),
        "{text}"
    );
    let out = s.ok(&["check", "--repair"], b"");
    assert!(
        out.contains("(made, empty)") && out.contains("1 problem, all repaired"),
        "{out}"
    );
    assert!(s.ok(&["check"], b"").ends_with(": no problems\n"));
}

/// Edits the index with the sqlite3 tool, as an admin could.
fn edit_index(data: &std::path::Path, sql: &str) -> bool {
    std::process::Command::new("sqlite3")
        .arg(data.join("index.sqlite"))
        .arg(sql)
        .status()
        .is_ok_and(|s| s.success())
}
