//! ENVELOPE, BODYSTRUCTURE, BODY and RFC822.SIZE of every message we store
//! match what the reference Dovecot answers for the same message. The
//! answers were recorded by `tests/fixtures/dovecot/record.py` (its first
//! line says with which Dovecot and how); messages go in through the real
//! binary (`import` for the generated mbox, `deliver` for the MIME corpus)
//! and the views come from what the binary cached in the store.

mod common;

use common::{Satchel, fixtures, gen_mbox};
use mime::Value;
use store::prelude::*;

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

/// The one fixture nested deeper than our limit, where we differ on purpose.
const DEEPER_THAN_OUR_LIMIT: &str = "mime/multipart-nested-120.eml";

/// How many lists open at the start of a BODYSTRUCTURE.
fn nesting(v: &Value) -> usize {
    match v.as_list().and_then(|l| l.first()) {
        Some(first @ Value::List(_)) => 1 + nesting(first),
        _ => 1,
    }
}

fn show(v: &Value) -> String {
    String::from_utf8_lossy(&v.to_imap()).into_owned()
}

/// Imports the generated mbox and the MIME corpus through the binary;
/// returns the INBOX messages with their fixture source names.
async fn stored_corpus(
    s: &Satchel,
) -> Vec<(String, store::MessageMeta, Vec<u8>, store::MessageCache)> {
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
    // Imported, not delivered: the views are compared for the bytes as
    // Dovecot got them, without the trace fields a delivery adds. Written
    // in order, so Maildir's (date, name) order is this one.
    let maildir = s.dir.path().join("mime-maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    for (i, eml) in emls.iter().enumerate() {
        std::fs::copy(eml, maildir.join("new").join(format!("{i:04}.eml"))).unwrap();
    }
    s.ok(
        &[
            "import",
            RCPT,
            "--mailbox",
            "INBOX",
            maildir.to_str().unwrap(),
        ],
        b"",
    );

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
    let uids: Vec<u32> = messages.iter().map(|m| m.uid).collect();
    let views = store.views(inbox.id, &uids).await.unwrap();
    let mut out = Vec::new();
    for ((msg, source), (uid, view)) in messages.into_iter().zip(sources).zip(views) {
        assert_eq!(uid, msg.uid);
        let raw = store.read_blob(&msg.blob).await.unwrap();
        out.push((source, msg, raw, view));
    }
    out
}

#[tokio::test]
async fn views_match_dovecot_for_every_fixture_message() {
    let expected = expected();
    let s = Satchel::new();
    let corpus = stored_corpus(&s).await;
    assert_eq!(
        expected.len(),
        corpus.len(),
        "fixture and corpus differ; re-record"
    );

    let mut failures = Vec::new();
    for ((source, msg, _, view), exp) in corpus.iter().zip(&expected) {
        assert_eq!(source, &exp.source);
        let envelope = Value::parse(view.envelope.as_deref().unwrap()).unwrap();
        let bodystructure = Value::parse(view.bodystructure.as_deref().unwrap()).unwrap();
        let body = mime::imap::body_from_bodystructure(&bodystructure);
        if msg.size != exp.size {
            failures.push(format!(
                "{source}: RFC822.SIZE {} != dovecot {}",
                msg.size, exp.size
            ));
        }
        if source == DEEPER_THAN_OUR_LIMIT {
            // Dovecot opens 99 levels, we open mime::part::MAX_DEPTH (see
            // there why); below it the structure must be Dovecot's.
            assert_eq!(
                nesting(&bodystructure),
                mime::part::MAX_DEPTH + 1,
                "{source}"
            );
            assert_eq!(envelope, exp.envelope, "{source}");
            continue;
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

/// Every section Dovecot was asked for (`items` in the fixture's first
/// line) comes out byte for byte the same from the stored message.
#[tokio::test]
async fn sections_match_dovecot() {
    let text = std::fs::read_to_string(fixtures().join("dovecot/sections.jsonl")).unwrap();
    let s = Satchel::new();
    let corpus = stored_corpus(&s).await;
    let mut failures = Vec::new();
    let mut compared = 0;
    for line in text.lines() {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(source) = j.get("source").and_then(|v| v.as_str()) else {
            continue;
        };
        let (_, _, raw, _) = corpus.iter().find(|(name, ..)| name == source).unwrap();
        let served = mime::served(raw);
        let root = mime::Part::parse(&served);
        for (key, want) in j.as_object().unwrap() {
            if key == "source" {
                continue;
            }
            // Keys are as Dovecot echoes them: BODY[spec] or BODY[spec]<origin>.
            let inner = key.strip_prefix("BODY[").unwrap();
            let (spec, after) = inner.rsplit_once(']').unwrap();
            let section = imap_proto::parse_section(spec.as_bytes())
                .unwrap_or_else(|e| panic!("cannot parse {key}: {e}"));
            let mut got = section.extract(&served, &root);
            if let Some(origin) = after.strip_prefix('<') {
                // The request was <0.10>; Dovecot echoes only the origin.
                let origin: u64 = origin.trim_end_matches('>').parse().unwrap();
                got = mime::section::partial(&got, origin, Some(10)).to_vec();
            }
            let got = mime::without_nul(&got).into_owned();
            let want = want.as_str().map(latin1).unwrap_or_default();
            compared += 1;
            if got != want {
                failures.push(format!(
                    "{source} {key}:\n  ours:    {:?}\n  dovecot: {:?}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                ));
            }
        }
    }
    assert!(compared > 400, "only {compared} sections compared");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
