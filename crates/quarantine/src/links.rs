//! Release links: `r1.ACCOUNT.MAILBOX.UIDVALIDITY.UID.EXPIRES` and its
//! HMAC-SHA256 under a key the store keeps (made on first use, shared by
//! every process on the store), both base64url. Nothing in a link can be
//! changed without the key; a used one is recorded by its tag until it
//! would have expired anyway.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use store::{AccountId, MailStore, MailboxId};

/// The store's name for the key.
const KEY_NAME: &str = "junk-report-links";
const VERSION: &str = "r1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("this link is not one this server made, or it was changed on the way")]
    Tampered,
    #[error(
        "this link has expired: release links work for 14 days; open Junk in the webmail instead"
    )]
    Expired,
}

/// Makes and checks release links.
pub struct Links {
    key: hmac::Key,
}

/// What a valid link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseLink {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub uidvalidity: u32,
    pub uid: u32,
    /// Unix time.
    pub expires: i64,
    /// The link's identity for single use (its tag).
    pub id: String,
}

impl Links {
    /// The server's key from the store, made the first time.
    pub async fn open(store: &dyn MailStore) -> Result<Links, store::Error> {
        let mut fresh = vec![0u8; 32];
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| store::Error::Corrupt("the system's random generator failed".into()))?;
        let key = store.secret(KEY_NAME, fresh).await?;
        Ok(Links::with_key(&key))
    }

    pub fn with_key(key: &[u8]) -> Links {
        Links {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// A link for one message, valid until `expires`.
    pub fn make(
        &self,
        account: AccountId,
        mailbox: MailboxId,
        uidvalidity: u32,
        uid: u32,
        expires: i64,
    ) -> String {
        let payload = format!(
            "{VERSION}.{}.{}.{uidvalidity}.{uid}.{expires}",
            account.0, mailbox.0
        );
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{}.{}", B64.encode(payload), B64.encode(tag.as_ref()))
    }

    /// What `token` names, if this server made it and it has not expired.
    pub fn check(&self, token: &str, now: i64) -> Result<ReleaseLink, LinkError> {
        let (payload, tag) = token.trim().split_once('.').ok_or(LinkError::Tampered)?;
        let payload = B64.decode(payload).map_err(|_| LinkError::Tampered)?;
        let tag_bytes = B64.decode(tag).map_err(|_| LinkError::Tampered)?;
        hmac::verify(&self.key, &payload, &tag_bytes).map_err(|_| LinkError::Tampered)?;
        let payload = String::from_utf8(payload).map_err(|_| LinkError::Tampered)?;
        let fields: Vec<&str> = payload.split('.').collect();
        let [version, account, mailbox, uidvalidity, uid, expires] = fields[..] else {
            return Err(LinkError::Tampered);
        };
        if version != VERSION {
            return Err(LinkError::Tampered);
        }
        let bad = |_| LinkError::Tampered;
        let link = ReleaseLink {
            account: AccountId(account.parse().map_err(bad)?),
            mailbox: MailboxId(mailbox.parse().map_err(bad)?),
            uidvalidity: uidvalidity.parse().map_err(bad)?,
            uid: uid.parse().map_err(bad)?,
            expires: expires.parse().map_err(bad)?,
            id: tag.to_string(),
        };
        if link.expires < now {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_checks_until_it_expires_and_not_when_changed() {
        let links = Links::with_key(b"k1");
        let t = links.make(AccountId(3), MailboxId(7), 99, 42, 1_000);
        let got = links.check(&t, 999).unwrap();
        assert_eq!(
            (got.account, got.mailbox, got.uidvalidity, got.uid),
            (AccountId(3), MailboxId(7), 99, 42)
        );
        assert_eq!(links.check(&t, 1_001), Err(LinkError::Expired));
        // Another key, another UID, a cut or a garbled token: refused.
        assert_eq!(
            Links::with_key(b"k2").check(&t, 0),
            Err(LinkError::Tampered)
        );
        let (p, tag) = t.split_once('.').unwrap();
        let other = B64.encode(
            String::from_utf8(B64.decode(p).unwrap())
                .unwrap()
                .replace(".42.", ".43."),
        );
        assert_eq!(
            links.check(&format!("{other}.{tag}"), 0),
            Err(LinkError::Tampered)
        );
        for bad in ["", ".", "abc", &t[..t.len() - 2], "r1.3.7.99.42.1000"] {
            assert_eq!(links.check(bad, 0), Err(LinkError::Tampered), "{bad}");
        }
    }
}
