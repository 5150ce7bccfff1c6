//! Web sessions: a random token in a cookie, and a CSRF token per session
//! that every state-changing form carries (the cookie alone would let
//! another site's form act for the user).

use std::sync::Arc;
use std::time::Duration;

use ring::rand::{SecureRandom, SystemRandom};
use store::{Account, MailStore, NewWebSession};

/// The cookie that names a session.
pub const COOKIE: &str = "satchel_session";
/// The cookie the login form's token is checked against (double submit:
/// a login form another site posts has no way to know it).
pub const LOGIN_COOKIE: &str = "satchel_login";
/// Sessions one account keeps at most; past it the least recently used
/// end (a script logging in over and over cannot fill the store).
const MAX_PER_ACCOUNT: usize = 50;

/// A logged-in user's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub account: Account,
}

/// A session as the settings page lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// An id for ending it that is not its token (the page must not show
    /// the secret of another browser's session).
    pub id: String,
    pub from: String,
    pub agent: String,
    pub started_ago: Duration,
    pub seen_ago: Duration,
    pub this_one: bool,
}

/// The open sessions, kept in the store: a restart logs nobody out, and
/// with many nodes on one PostgreSQL a session works on each of them.
/// The store knows a session by the SHA-256 of its token, so a copy of
/// the database opens none.
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn MailStore>,
    /// How long a session may go unused before it ends.
    idle: Duration,
}

impl Sessions {
    pub fn new(store: Arc<dyn MailStore>, idle: Duration) -> Sessions {
        Sessions { store, idle }
    }

    /// A new session for `account`, logged in from `from` with the browser
    /// `agent`; `None` when no random token can be made. Sessions idle
    /// past their time are swept on the way (logins are throttled, so the
    /// sweep's cost is bounded by them).
    pub async fn open(
        &self,
        account: Account,
        from: &str,
        agent: &str,
    ) -> store::Result<Option<Session>> {
        let (Some(token), Some(csrf)) = (random_token(), random_token()) else {
            return Ok(None);
        };
        let agent: String = agent
            .chars()
            .filter(|c| !c.is_control())
            .take(160)
            .collect();
        self.store.prune_web_sessions(self.idle).await?;
        self.store
            .open_web_session(
                &NewWebSession {
                    key: &key(&token),
                    account: account.id,
                    csrf: &csrf,
                    client: from,
                    agent: &agent,
                },
                MAX_PER_ACCOUNT,
            )
            .await?;
        Ok(Some(Session {
            token,
            csrf,
            account,
        }))
    }

    /// The session of `token`, unless it was idle too long, with its
    /// account as the store has it now.
    pub async fn get(&self, token: &str) -> store::Result<Option<Session>> {
        let found = self.store.web_session(&key(token), self.idle).await?;
        Ok(found.map(|s| Session {
            token: token.to_string(),
            csrf: s.csrf,
            account: s.account,
        }))
    }

    /// Ends a session (logout).
    pub async fn end(&self, token: &str) -> store::Result<()> {
        self.store.end_web_session(&key(token)).await.map(|_| ())
    }

    /// The account's sessions, the most recently used first; `mine` is
    /// the asking one's token.
    pub async fn of_account(
        &self,
        account: store::AccountId,
        mine: &str,
    ) -> store::Result<Vec<Listed>> {
        let mine = key(mine);
        let now = store::unix_millis();
        let ago = |at: i64| Duration::from_millis(now.saturating_sub(at).max(0) as u64);
        Ok(self
            .store
            .web_sessions_of(account)
            .await?
            .into_iter()
            .map(|s| Listed {
                id: listed_id(&s.key),
                this_one: s.key == mine,
                from: s.client,
                agent: s.agent,
                started_ago: ago(s.started),
                seen_ago: ago(s.last_seen),
            })
            .collect())
    }

    /// Ends the account's session listed as `id`; false when there is none.
    pub async fn end_listed(&self, account: store::AccountId, id: &str) -> store::Result<bool> {
        let sessions = self.store.web_sessions_of(account).await?;
        match sessions.iter().find(|s| same_token(&listed_id(&s.key), id)) {
            Some(s) => self.store.end_web_session(&s.key).await,
            None => Ok(false),
        }
    }

    /// Ends every session of the account but the one of token `keep` (a
    /// password change), or all of them; how many ended.
    pub async fn end_others(
        &self,
        account: store::AccountId,
        keep: Option<&str>,
    ) -> store::Result<usize> {
        let keep = keep.map(key);
        self.store.end_web_sessions(account, keep.as_deref()).await
    }
}

/// What the store knows a session by: the SHA-256 of its token, hex.
fn key(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// A session's public name: the start of its key.
fn listed_id(key: &str) -> String {
    key.chars().take(24).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 256 random bits, hex; `None` when the system's generator fails (no
/// request can cause that, and no token is better than a guessable one).
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = "a=1; satchel_session=abc; satchel_session_x=no";
        assert_eq!(cookie(h, COOKIE), Some("abc"));
        assert_eq!(cookie(h, "satchel"), None);
        assert_eq!(cookie("", COOKIE), None);
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
    }
}
