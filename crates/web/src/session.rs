//! Web sessions: a random token in a cookie, and a CSRF token per session
//! that every state-changing form carries (the cookie alone would let
//! another site's form act for the user).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use store::Account;

/// The cookie that names a session.
pub const COOKIE: &str = "satchel_session";
/// The cookie the login form's token is checked against (double submit:
/// a login form another site posts has no way to know it).
pub const LOGIN_COOKIE: &str = "satchel_login";
/// Sessions kept at most; past it the least recently used go first.
const MAX_SESSIONS: usize = 100_000;

/// A logged-in user's session.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
    pub account: Account,
}

struct Entry {
    session: Session,
    last_seen: Instant,
    started: Instant,
    /// Where the login came from, for the user's list of sessions.
    from: String,
    agent: String,
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

/// The open sessions of this server.
#[derive(Clone, Default)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Sessions {
    /// A new session for `account`, logged in from `from` with the browser
    /// `agent`; `None` when no random token can be made.
    pub fn open(&self, account: Account, from: &str, agent: &str) -> Option<Session> {
        let session = Session {
            token: random_token()?,
            csrf: random_token()?,
            account,
        };
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            session.token.clone(),
            Entry {
                session: session.clone(),
                last_seen: Instant::now(),
                started: Instant::now(),
                from: from.to_string(),
                agent: agent
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(160)
                    .collect(),
            },
        );
        Some(session)
    }

    /// The session of `token`, unless it was idle longer than `idle`.
    pub fn get(&self, token: &str, idle: Duration) -> Option<Session> {
        let mut map = self.lock();
        let entry = map.get_mut(token)?;
        if entry.last_seen.elapsed() > idle {
            map.remove(token);
            return None;
        }
        entry.last_seen = Instant::now();
        Some(entry.session.clone())
    }

    /// Ends a session (logout).
    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }

    /// The account's sessions, the most recently used first; `mine` is
    /// the asking one's token.
    pub fn of_account(&self, account: store::AccountId, mine: &str) -> Vec<Listed> {
        let map = self.lock();
        let mut out: Vec<Listed> = map
            .values()
            .filter(|e| e.session.account.id == account)
            .map(|e| Listed {
                id: listed_id(&e.session.token),
                from: e.from.clone(),
                agent: e.agent.clone(),
                started_ago: e.started.elapsed(),
                seen_ago: e.last_seen.elapsed(),
                this_one: e.session.token == mine,
            })
            .collect();
        out.sort_by_key(|l| l.seen_ago);
        out
    }

    /// Ends the account's session listed as `id`; false when there is none.
    pub fn end_listed(&self, account: store::AccountId, id: &str) -> bool {
        let mut map = self.lock();
        let token = map
            .iter()
            .find(|(t, e)| e.session.account.id == account && same_token(&listed_id(t), id))
            .map(|(t, _)| t.clone());
        token.is_some_and(|t| map.remove(&t).is_some())
    }

    /// Ends every session of the account but `keep` (a password change).
    pub fn end_others(&self, account: store::AccountId, keep: &str) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|t, e| e.session.account.id != account || t == keep);
        before - map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A session's public name: a hash of its token.
fn listed_id(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 256 random bits, hex; `None` when the system's generator fails (no
/// request can cause that, and no token is better than a guessable one).
pub fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
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
