//! ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE of every message we store
//! match what the reference Dovecot answers for the same message. The
//! answers were recorded by `tests/fixtures/dovecot/record.py` (its first
//! line says with which Dovecot and how); messages go in through the real
//! binary (`import` for the generated mbox, `deliver` for the MIME corpus)
//! and the views come from what the binary cached in the store.

mod common;

use common::{Satchel, fixtures, gen_mbox};
use mime::Value;
use store::MailStore;

const RCPT: &str = "views@example.test";

struct Expected {
    source: String,
    size: u64,
    envelope: Value,
    bodystructure: Value,
    body: Value,
}

/// The fixture's strings carry the response bytes as Latin-1 code points.
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| c as u32 as u8).collect()
}

fn expected() -> Vec<Expected> {
    let text = std::fs::read_to_string(fixtures().join("dovecot/fetch.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|j| j.get("source").is_some())
        .map(|j| {
            let item = |k: &str| {
                let raw = latin1(j[k].as_str().unwrap());
                Value::parse(&raw)
                    .unwrap_or_else(|| panic!("fixture {k} of {} unparsable", j["source"]))
            };
            Expected {
                source: j["source"].as_str().unwrap().to_string(),
                size: j["size"].as_u64().unwrap(),
                envelope: item("envelope"),
                bodystructure: item("bodystructure"),
                body: item("body"),
            }
        })
        .collect()
}

fn show(v: &Value) -> String {
    String::from_utf8_lossy(&v.to_imap()).into_owned()
}

#[tokio::test]
async fn views_match_dovecot_for_every_fixture_message() {
    let expected = expected();
    let s = Satchel::new();
    s.add_user(RCPT);
    let mbox = s.dir.path().join("gen.mbox");
    gen_mbox(&mbox, 100);
    s.ok(
        &["import", RCPT, "--mailbox", "INBOX", mbox.to_str().unwrap()],
        b"",
    );
    let mut emls: Vec<_> = std::fs::read_dir(fixtures().join("mime"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    emls.sort();
    for eml in &emls {
        s.deliver(RCPT, &std::fs::read(eml).unwrap());
    }

    let store = s.store().await;
    let account = store.account(RCPT).await.unwrap().unwrap();
    let inbox = store.mailbox(account.id, "INBOX").await.unwrap().unwrap();
    let messages = store.messages(inbox.id).await.unwrap();
    let sources: Vec<String> = (0..100)
        .map(|i| format!("gen_mbox:{i}"))
        .chain(
            emls.iter()
                .map(|p| format!("mime/{}", p.file_name().unwrap().to_string_lossy())),
        )
        .collect();
    assert_eq!(messages.len(), sources.len());
    assert_eq!(
        expected.len(),
        sources.len(),
        "fixture and corpus differ; re-record"
    );

    let mut failures = Vec::new();
    for ((msg, source), exp) in messages.iter().zip(&sources).zip(&expected) {
        assert_eq!(source, &exp.source);
        let envelope = Value::parse(msg.cache.envelope.as_deref().unwrap()).unwrap();
        let bodystructure = Value::parse(msg.cache.bodystructure.as_deref().unwrap()).unwrap();
        let body = mime::imap::body_from_bodystructure(&bodystructure);
        if msg.size != exp.size {
            failures.push(format!(
                "{source}: RFC822.SIZE {} != dovecot {}",
                msg.size, exp.size
            ));
        }
        for (what, ours, theirs) in [
            ("ENVELOPE", &envelope, &exp.envelope),
            ("BODYSTRUCTURE", &bodystructure, &exp.bodystructure),
            ("BODY", &body, &exp.body),
        ] {
            if ours != theirs {
                failures.push(format!(
                    "{source}: {what}\n  ours:    {}\n  dovecot: {}",
                    show(ours),
                    show(theirs)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
