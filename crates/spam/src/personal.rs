//! What one user has said about a sender: their allow and block list, and
//! how often they have written to the sender (trusted correspondents, as
//! Xeams does it: every message sent earns the replies a credit).

use crate::Verdict;

/// Credit per message the user sent to the sender (Xeams' figure).
pub const CORRESPONDENT_CREDIT: i64 = -25;
/// At most this many messages count: four make a correspondent as trusted
/// as one can be, and one forged reply cannot ride on years of mail.
pub const CORRESPONDENT_CAP: u64 = 4;
/// Far beyond anything the other reasons add up to: the user's word wins.
pub const ALLOWED: i64 = -1000;
pub const BLOCKED: i64 = 1000;

/// What the store knows of a message's sender, for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// The allow (true) or block (false) entry matching the From address or
    /// the envelope sender, if any.
    pub listed: Option<bool>,
    /// Messages the user has sent to the From address.
    pub sent_to: u64,
}

/// Adds the user's reasons. `auth_results` is the pipeline's verdict on
/// the sender (None for mail that did not come over SMTP): a From that
/// DMARC or the local-sender check calls forged earns no trust, since
/// anyone can write any From; a block holds whatever the authentication.
pub fn check(standing: &Standing, auth_results: Option<&str>, verdict: &mut Verdict) {
    let forged = auth_results.is_some_and(|ar| ar.to_ascii_lowercase().contains("dmarc=fail"))
        || verdict
            .reasons
            .iter()
            .any(|r| r.name == "FORGED_LOCAL_SENDER");
    match standing.listed {
        Some(false) => verdict.add("BLOCKED_SENDER", BLOCKED),
        Some(true) if !forged => verdict.add("ALLOWED_SENDER", ALLOWED),
        _ => {
            if standing.sent_to > 0 && !forged {
                let n = standing.sent_to.min(CORRESPONDENT_CAP) as i64;
                verdict.add("TRUSTED_CORRESPONDENT", CORRESPONDENT_CREDIT * n);
            }
        }
    }
}

/// The allow/block entry that decides for a sender: an exact address
/// before a domain, a domain before its parents (`@mail.example.com`
/// before `@example.com`). `entries` are (pattern, allow), lower case.
pub fn listed<'a>(
    entries: impl IntoIterator<Item = (&'a str, bool)> + Clone,
    address: &str,
) -> Option<bool> {
    let address = address.to_lowercase();
    let (_, domain) = address.rsplit_once('@')?;
    let exact = entries
        .clone()
        .into_iter()
        .find(|(p, _)| *p == address)
        .map(|(_, allow)| allow);
    if exact.is_some() {
        return exact;
    }
    // example.com, then its parents: a.b.example.com -> b.example.com -> ...
    let mut d = domain;
    loop {
        let found = entries
            .clone()
            .into_iter()
            .find(|(p, _)| p.strip_prefix('@') == Some(d))
            .map(|(_, allow)| allow);
        if found.is_some() {
            return found;
        }
        match d.split_once('.') {
            Some((_, parent)) if parent.contains('.') => d = parent,
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(standing: Standing, ar: Option<&str>) -> Verdict {
        let mut v = Verdict::default();
        check(&standing, ar, &mut v);
        v
    }

    #[test]
    fn allowed_blocked_and_correspondents() {
        let allowed = reasons(
            Standing {
                listed: Some(true),
                sent_to: 3,
            },
            None,
        );
        assert_eq!(allowed.score, ALLOWED);
        assert_eq!(allowed.reasons[0].name, "ALLOWED_SENDER");
        let blocked = reasons(
            Standing {
                listed: Some(false),
                sent_to: 9,
            },
            Some("mx; dkim=pass; dmarc=pass"),
        );
        assert_eq!(blocked.score, BLOCKED);
        let once = reasons(
            Standing {
                listed: None,
                sent_to: 1,
            },
            Some("mx; spf=pass"),
        );
        assert_eq!(once.score, -25);
        let often = reasons(
            Standing {
                listed: None,
                sent_to: 40,
            },
            None,
        );
        assert_eq!(often.score, -100);
        assert_eq!(reasons(Standing::default(), None), Verdict::default());
    }

    #[test]
    fn a_forged_from_earns_no_trust_but_stays_blocked() {
        let forged = Some("mx; spf=fail; dmarc=fail header.from=bank.test");
        for standing in [
            Standing {
                listed: Some(true),
                sent_to: 0,
            },
            Standing {
                listed: None,
                sent_to: 4,
            },
        ] {
            assert_eq!(reasons(standing, forged).score, 0);
        }
        let mut v = Verdict::default();
        v.add("FORGED_LOCAL_SENDER", 50);
        check(
            &Standing {
                listed: Some(true),
                sent_to: 0,
            },
            Some("mx; spf=none"),
            &mut v,
        );
        assert_eq!(v.score, 50);
        let blocked = Standing {
            listed: Some(false),
            sent_to: 0,
        };
        assert_eq!(reasons(blocked, forged).score, BLOCKED);
    }

    #[test]
    fn which_entry_decides() {
        let list = [
            ("@example.com", false),
            ("friend@example.com", true),
            ("@news.example.com", true),
        ];
        let l = |a| listed(list.iter().map(|(p, b)| (*p, *b)), a);
        assert_eq!(l("Friend@Example.COM"), Some(true));
        assert_eq!(l("other@example.com"), Some(false));
        assert_eq!(l("x@news.example.com"), Some(true));
        assert_eq!(l("x@deep.news.example.com"), Some(true));
        assert_eq!(l("x@shop.example.com"), Some(false));
        assert_eq!(l("x@example.org"), None);
        assert_eq!(l("x@com"), None);
        assert_eq!(l("no-at-sign"), None);
        assert_eq!(l("x@notexample.com"), None);
    }
}
