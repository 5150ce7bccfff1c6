//! The capability list and ENABLE (RFC 5161), both from one table: an
//! extension added later (CONDSTORE, QRESYNC, UTF8=ACCEPT, NOTIFY) is a row
//! here, an [`Extension`] if a client must ENABLE it, and its own file.

use super::*;

/// When a capability is listed (RFC 9051 7.2.2: the list may change with
/// the state and the connection).
#[derive(Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    /// Before login, when TLS is off and a certificate is there.
    StartTls,
    /// Before login, when a password may be sent on this connection.
    LoginAllowed,
    /// Before login, when it may not (RFC 9051 6.2.3).
    LoginDisabled,
}

struct Capability {
    name: &'static str,
    when: When,
    /// What ENABLE of this name turns on, if anything.
    enables: Option<Extension>,
}

const fn cap(name: &'static str) -> Capability {
    Capability {
        name,
        when: When::Always,
        enables: None,
    }
}

/// Everything the door advertises, in the order it is listed.
const CAPABILITIES: &[Capability] = &[
    cap("IMAP4rev1"),
    Capability {
        enables: Some(Extension::Imap4rev2),
        ..cap("IMAP4rev2")
    },
    Capability {
        when: When::StartTls,
        ..cap("STARTTLS")
    },
    Capability {
        when: When::LoginAllowed,
        ..cap("AUTH=PLAIN")
    },
    Capability {
        when: When::LoginAllowed,
        ..cap("AUTH=LOGIN")
    },
    Capability {
        when: When::LoginDisabled,
        ..cap("LOGINDISABLED")
    },
    cap("SASL-IR"),
    // RFC 2221: a moved account's login is referred (`satchel user referral`).
    cap("LOGIN-REFERRALS"),
    cap("LITERAL+"),
    cap("ID"),
    cap("ENABLE"),
    cap("IDLE"),
    cap("NAMESPACE"),
    cap("UNSELECT"),
    cap("UIDPLUS"),
    cap("MOVE"),
    cap("CHILDREN"),
    cap("SPECIAL-USE"),
    cap("CREATE-SPECIAL-USE"),
    cap("LIST-EXTENDED"),
    cap("LIST-STATUS"),
    cap("ESEARCH"),
    cap("I18NLEVEL=1"),
    cap("CONTEXT=SEARCH"),
    cap("CONTEXT=SORT"),
    cap("NOTIFY"),
    cap("WITHIN"),
    cap("OBJECTID"),
    cap("SAVEDATE"),
    cap("PREVIEW"),
    // The drafts before RFC 8970, as Dovecot still offers them.
    cap("PREVIEW=FUZZY"),
    cap("SNIPPET=FUZZY"),
    cap("STATUS=SIZE"),
    cap("SORT"),
    cap("SORT=DISPLAY"),
    cap("ESORT"),
    cap("THREAD=ORDEREDSUBJECT"),
    cap("THREAD=REFERENCES"),
    cap("THREAD=REFS"),
    cap("SEARCHRES"),
    cap("MULTIAPPEND"),
    cap("CATENATE"),
    cap("URL-PARTIAL"),
    cap("BINARY"),
    cap("COMPRESS=DEFLATE"),
    Capability {
        enables: Some(Extension::Condstore),
        ..cap("CONDSTORE")
    },
    Capability {
        enables: Some(Extension::Qresync),
        ..cap("QRESYNC")
    },
    Capability {
        enables: Some(Extension::Utf8Accept),
        ..cap("UTF8=ACCEPT")
    },
    cap("QUOTA"),
    cap("QUOTA=RES-STORAGE"),
    cap("QUOTA=RES-MESSAGE"),
];

/// What a client can turn on with ENABLE; each changes how the session
/// answers from then on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Extension {
    /// RFC 9051: ESEARCH answers, UTF-8 mailbox names, no \Recent.
    Imap4rev2,
    /// RFC 7162 3.1: MODSEQ in every FETCH of flags from then on; turned on
    /// by ENABLE or by the first command that uses a MODSEQ.
    Condstore,
    /// RFC 7162 3.2: SELECT (QRESYNC ...), UID FETCH (VANISHED), and
    /// VANISHED instead of EXPUNGE; implies CONDSTORE.
    Qresync,
    /// RFC 6855: mailbox names in UTF-8 (as IMAP4rev2 has them) and
    /// APPEND ... UTF8 (~{n}).
    Utf8Accept,
}

/// The extensions a session has enabled.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct Enabled(u32);

impl Enabled {
    pub(super) fn has(self, e: Extension) -> bool {
        self.0 & (1 << e as u32) != 0
    }

    pub(super) fn insert(&mut self, e: Extension) -> bool {
        let new = !self.has(e);
        self.0 |= 1 << e as u32;
        new
    }
}

impl Session {
    pub(super) fn capabilities(&self) -> String {
        let before_login = self.account.is_none();
        let listed = |when: When| match when {
            When::Always => true,
            When::StartTls => before_login && !self.tls && self.server.tls.is_some(),
            When::LoginAllowed => before_login && self.login_allowed(),
            When::LoginDisabled => before_login && !self.login_allowed(),
        };
        let mut caps: Vec<String> = CAPABILITIES
            .iter()
            .filter(|c| listed(c.when))
            .map(|c| c.name.to_string())
            .collect();
        caps.push(format!("APPENDLIMIT={MAX_MESSAGE_SIZE}"));
        caps.join(" ")
    }

    /// Whether the client enabled IMAP4rev2 (the most asked question).
    pub(super) fn rev2(&self) -> bool {
        self.enabled.has(Extension::Imap4rev2)
    }

    /// Whether FETCH responses carry MODSEQ (RFC 7162 3.1).
    pub(super) fn condstore(&self) -> bool {
        self.enabled.has(Extension::Condstore)
    }

    /// Whether mailbox names travel as UTF-8 (IMAP4rev2, or UTF8=ACCEPT of
    /// RFC 6855 3), not modified UTF-7.
    pub(super) fn utf8_names(&self) -> bool {
        self.rev2() || self.enabled.has(Extension::Utf8Accept)
    }

    /// Whether APPEND may carry UTF8 (~{n}) (RFC 6855 4).
    pub(super) fn utf8_accept(&self) -> bool {
        self.enabled.has(Extension::Utf8Accept)
    }

    /// Whether expunges are told as VANISHED (RFC 7162 3.2.10).
    pub(super) fn qresync(&self) -> bool {
        self.enabled.has(Extension::Qresync)
    }

    /// ENABLE (RFC 5161 3.1): names it does not know, or that need no
    /// enabling, are ignored; ENABLED lists only what this command turned on.
    /// QRESYNC turns CONDSTORE on too (RFC 7162 3.2.3).
    pub(super) fn enable(&mut self, names: &[String]) -> Done {
        let mut turned_on = Vec::new();
        for name in names {
            let row = CAPABILITIES
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(name));
            if let Some(Capability {
                name,
                enables: Some(e),
                ..
            }) = row
                && self.enabled.insert(*e)
            {
                turned_on.push(*name);
                if *e == Extension::Qresync {
                    self.enabled.insert(Extension::Condstore);
                }
            }
        }
        self.line(format!("* ENABLED {}", turned_on.join(" ")).trim_end());
        ok("ENABLE completed.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_is_a_set() {
        let mut e = Enabled::default();
        assert!(!e.has(Extension::Imap4rev2));
        assert!(e.insert(Extension::Imap4rev2));
        assert!(!e.insert(Extension::Imap4rev2), "only once");
        assert!(e.has(Extension::Imap4rev2));
    }

    #[test]
    fn every_listed_name_is_unique() {
        for (i, c) in CAPABILITIES.iter().enumerate() {
            assert!(
                CAPABILITIES[i + 1..].iter().all(|d| d.name != c.name),
                "{} twice",
                c.name
            );
        }
    }
}
