//! OBJECTID (RFC 8474): IDs for mailboxes, messages and threads that stay
//! the same for life, made from what the store keeps (no table of their
//! own). A mailbox's from its row and UIDVALIDITY (a rename keeps both; a
//! mailbox made again gets a new UIDVALIDITY). A message's from its body's
//! SHA-256: a copy or move keeps it; byte-identical messages share it,
//! which RFC 8474 5.1 leaves to the server. A thread's from the Message-ID
//! it starts from (the first of References, else the message's own): every
//! reply that names that first message carries it.

use store::{BlobHash, Mailbox, SortKeys};

/// MAILBOXID (RFC 8474 4).
pub fn mailbox_id(m: &Mailbox) -> String {
    format!("F{}-{}", m.uidvalidity, m.id)
}

/// EMAILID (RFC 8474 5.1): 96 bits of the body's hash.
pub fn email_id(blob: &BlobHash) -> String {
    format!("M{}", blob.0.get(..24).unwrap_or(&blob.0))
}

/// THREADID (RFC 8474 5.2); a message that names no Message-ID at all is
/// a thread of its own, named after its body.
pub fn thread_id(keys: &SortKeys, blob: Option<&BlobHash>) -> Option<String> {
    let root = keys.references.first().or(keys.message_id.as_ref());
    match (root, blob) {
        (Some(id), _) => Some(format!("T{:016x}", fnv1a(id.as_bytes()))),
        (None, Some(b)) => Some(format!("T{}", b.0.get(..16).unwrap_or(&b.0))),
        (None, None) => None,
    }
}

/// FNV-1a, 64 bits: stable across builds and machines (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_object_ids_and_threads_follow_their_root() {
        let blob = BlobHash("ab".repeat(32));
        assert_eq!(email_id(&blob), format!("M{}", "ab".repeat(12)));
        let root = SortKeys {
            message_id: Some("a@b".into()),
            ..SortKeys::default()
        };
        let reply = SortKeys {
            message_id: Some("c@d".into()),
            references: vec!["a@b".into(), "x@y".into()],
            ..SortKeys::default()
        };
        assert_eq!(thread_id(&root, None), thread_id(&reply, None));
        assert_ne!(
            thread_id(&root, None),
            thread_id(&SortKeys::default(), Some(&blob))
        );
        assert_eq!(thread_id(&SortKeys::default(), None), None);
        for id in [email_id(&blob), thread_id(&root, None).unwrap_or_default()] {
            assert!(id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        // The published FNV-1a value: IDs survive an upgrade.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
