//! Where the pipeline files mail by a user's Sieve script: incoming mail
//! after the spam verdict, and the copy of mail the user sends (the
//! outgoing entry the submission door and the webmail call).

use std::sync::Arc;

use pipeline::Pipeline;
use store::{Flags, MailStore, SqliteStore};

const SCRIPT: &str = r#"require ["fileinto", "mailbox", "environment"];
if environment :is "phase" "outgoing" {
    # What I send to the client ACME is filed with their mail, not in Sent.
    if address :domain :is ["to", "cc"] "acme.example" {
        fileinto :create "Clients/ACME";
    }
} elsif address :domain :is "from" "acme.example" {
    fileinto :create "Clients/ACME";
}
"#;

fn mail(from: &str, to: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{subject}@example.test>\r\n\r\nHello.\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn outgoing_mail_is_filed_by_the_users_script() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let alice = store
        .create_account("alice@example.test", "pw", false)
        .await
        .unwrap();
    store
        .put_sieve_script(alice.id, "main", SCRIPT)
        .await
        .unwrap();
    store
        .activate_sieve_script(alice.id, Some("main"))
        .await
        .unwrap();
    let p = Pipeline::new(
        store.clone(),
        "mail.example.test",
        &["example.test".to_string()],
    );

    let to_acme = mail("alice@example.test", "Bob <bob@acme.example>", "proposal");
    let done = p
        .outgoing(&alice, &to_acme, &["bob@acme.example".to_string()])
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].mailbox.as_str(), done[0].uid), ("Clients/ACME", 1));
    let other = mail("alice@example.test", "carol@other.example", "lunch");
    let done = p
        .outgoing(&alice, &other, &["carol@other.example".to_string()])
        .await
        .unwrap();
    assert_eq!(done[0].mailbox, "Sent");

    let sent = store.mailbox(alice.id, "Sent").await.unwrap().unwrap();
    let clients = store
        .mailbox(alice.id, "Clients/ACME")
        .await
        .unwrap()
        .unwrap();
    let in_sent = store.messages(sent.id).await.unwrap();
    let in_clients = store.messages(clients.id).await.unwrap();
    assert_eq!((in_sent.len(), in_clients.len()), (1, 1));
    // Sent mail is read mail, wherever it is filed.
    assert!(in_sent[0].flags.contains(Flags::SEEN) && in_clients[0].flags.contains(Flags::SEEN));
    assert_eq!(store.read_blob(&in_clients[0].blob).await.unwrap(), to_acme);
    // Whom she wrote to is remembered (trusted correspondents).
    assert_eq!(
        store.sent_to(alice.id, "bob@acme.example").await.unwrap(),
        1
    );

    // Incoming mail runs the same script in the "during" phase: the
    // reply from ACME joins the thread, other mail stays in INBOX.
    let accounts = vec![("alice@example.test".to_string(), alice.clone())];
    let reply = mail("bob@acme.example", "alice@example.test", "re-proposal");
    let done = p
        .deliver(&reply, &accounts, &local("bob@acme.example"))
        .await
        .unwrap();
    assert_eq!(done[0].mailbox, "Clients/ACME");
    let news = mail("news@paper.example", "alice@example.test", "news");
    let done = p
        .deliver(&news, &accounts, &local("news@paper.example"))
        .await
        .unwrap();
    assert_eq!(done[0].mailbox, "INBOX");
    let incoming = store.messages(clients.id).await.unwrap();
    assert!(
        !incoming[1].flags.contains(Flags::SEEN),
        "incoming mail is unread"
    );

    // A script written for incoming mail never drops or forwards what
    // the user sends: the copy stays in Sent.
    store
        .put_sieve_script(alice.id, "main", "discard;")
        .await
        .unwrap();
    let done = p
        .outgoing(&alice, &other, &["carol@other.example".to_string()])
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].mailbox, "Sent");
}

/// The trace of mail handed over on this machine, as `satchel deliver` makes.
fn local(sender: &str) -> pipeline::Trace {
    pipeline::Trace {
        mail_from: sender.to_string(),
        origin: pipeline::Origin::Local,
    }
}
