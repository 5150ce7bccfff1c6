//! DKIM keys in the store: made once per domain however many ask at once,
//! rotated into a new pair that signs while the old stays listed.

use std::sync::Arc;

use pipeline::dkim::{self, Signer};
use store::{MailStore, SqliteStore};

#[tokio::test]
async fn concurrent_first_uses_make_one_pair() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let (a, b) = tokio::join!(
        dkim::domain_keys(store.as_ref(), "Example.TEST"),
        dkim::domain_keys(store.as_ref(), "example.test"),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a, b, "both callers see the same pair");
    assert_eq!(store.dkim_keys("example.test").await.unwrap().len(), 2);
    assert!(
        a.iter()
            .all(|k| k.domain == "example.test" && k.retired.is_none())
    );
}

#[tokio::test]
async fn rotation_retires_the_old_pair_and_signs_with_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MailStore> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    let first = dkim::domain_keys(store.as_ref(), "example.test")
        .await
        .unwrap();
    let all = dkim::rotate(store.as_ref(), "example.test").await.unwrap();
    assert_eq!(all.len(), 4);
    let signing: Vec<_> = all.iter().filter(|k| k.retired.is_none()).collect();
    assert_eq!(signing.len(), 2);
    assert!(
        signing
            .iter()
            .all(|k| !first.iter().any(|f| f.selector == k.selector))
    );
    // A fresh signer (no cache) signs with the new selectors only.
    let raw = b"From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n";
    let fields = Signer::new(store.clone())
        .sign("example.test", raw)
        .await
        .unwrap();
    assert_eq!(fields.matches("DKIM-Signature:").count(), 2);
    for key in &signing {
        assert!(fields.contains(&format!("s={};", key.selector)), "{fields}");
    }
    for key in &first {
        assert!(
            !fields.contains(&format!("s={};", key.selector)),
            "{fields}"
        );
    }
}
