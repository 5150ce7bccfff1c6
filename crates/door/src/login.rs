//! Logging in, the same at every door: the plaintext-login policy, SASL
//! PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) exchanges, and
//! the password check with its per-address throttle. A door only frames the
//! challenges in its own protocol (`+ ` in IMAP and POP3, `334 ` in SMTP, a
//! string in ManageSieve) through [`SaslWire`] and words the outcome.

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use store::{Account, MailStore};

use crate::LoginThrottle;

/// Whether a password may be sent in the clear on this connection: over
/// TLS, from a loopback client, or anywhere when the config says so
/// (contract `[auth] plaintext_anywhere`; RFC 9051 11.1, RFC 8314 3).
pub fn plaintext_allowed(tls: bool, peer: IpAddr, anywhere: bool) -> bool {
    tls || peer.is_loopback() || anywhere
}

/// The SASL mechanisms every door offers, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    pub const ALL: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }

    /// A mechanism by name, in any case (RFC 4422 3.1).
    pub fn parse(name: &[u8]) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// What a finished exchange yields: the name to log in as and its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// Why an exchange ended without credentials. The messages are the text
/// each door puts after its error marker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client answered a challenge with `*` (RFC 4422 3.5).
    #[error("Authentication cancelled.")]
    Cancelled,
    #[error("The response is not valid base64.")]
    NotBase64,
    /// Decoded, but not what the mechanism defines (PLAIN without its two
    /// NULs, an authorization identity for someone else, not UTF-8):
    /// counted as a failed login.
    #[error("Authentication failed.")]
    Malformed,
}

/// What the exchange wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (already base64, possibly empty) and feed the
    /// client's answer to [`Exchange::respond`].
    Challenge(&'static str),
    Done(Result<Credentials, SaslError>),
}

/// One SASL exchange, free of I/O: the door sends the challenges and
/// feeds back the responses.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    /// LOGIN's user name, once given.
    user: Option<String>,
}

/// LOGIN's challenges, as every client expects them: "Username:" and
/// "Password:".
const LOGIN_USER: &str = "VXNlcm5hbWU6";
const LOGIN_PASSWORD: &str = "UGFzc3dvcmQ6";

impl Exchange {
    /// Starts an exchange, with the initial response when the client sent
    /// one (base64, or `=` for an empty one: RFC 4959, RFC 5034, RFC 4954).
    pub fn start(mechanism: Mechanism, initial: Option<&[u8]>) -> (Exchange, Step) {
        let mut exchange = Exchange {
            mechanism,
            user: None,
        };
        let step = match (mechanism, initial) {
            (_, Some(response)) => exchange.respond(response),
            // PLAIN answers an empty challenge; LOGIN asks for the name.
            (Mechanism::Plain, None) => Step::Challenge(""),
            (Mechanism::Login, None) => Step::Challenge(LOGIN_USER),
        };
        (exchange, step)
    }

    /// Takes the client's answer to the last challenge (or the initial
    /// response): a line of base64, or `*` to cancel.
    pub fn respond(&mut self, line: &[u8]) -> Step {
        if line == b"*" {
            return Step::Done(Err(SaslError::Cancelled));
        }
        let Some(decoded) = decode(line) else {
            return Step::Done(Err(SaslError::NotBase64));
        };
        match self.mechanism {
            Mechanism::Plain => Step::Done(plain(&decoded)),
            Mechanism::Login => match self.user.take() {
                None => match String::from_utf8(decoded) {
                    Ok(user) => {
                        self.user = Some(user);
                        Step::Challenge(LOGIN_PASSWORD)
                    }
                    Err(_) => Step::Done(Err(SaslError::Malformed)),
                },
                Some(user) => Step::Done(
                    String::from_utf8(decoded)
                        .map(|password| Credentials { user, password })
                        .map_err(|_| SaslError::Malformed),
                ),
            },
        }
    }
}

/// `authzid NUL authcid NUL passwd` (RFC 4616 2); an authorization
/// identity other than the user's own is refused (no proxy logins).
fn plain(decoded: &[u8]) -> Result<Credentials, SaslError> {
    let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
    let [authz, user, password] = parts.as_slice() else {
        return Err(SaslError::Malformed);
    };
    if !authz.is_empty() && authz != user {
        return Err(SaslError::Malformed);
    }
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| SaslError::Malformed);
    Ok(Credentials {
        user: text(user)?,
        password: text(password)?,
    })
}

/// Base64 as clients send it: `=` alone is empty, surrounding blanks are
/// ignored.
fn decode(line: &[u8]) -> Option<Vec<u8>> {
    let line = line.trim_ascii();
    if line == b"=" {
        return Some(Vec::new());
    }
    B64.decode(line).ok()
}

/// How a door sends a SASL challenge and reads the answer, in its own
/// framing; an error when the client hangs up or says nothing in time.
pub trait SaslWire {
    fn challenge(
        &mut self,
        challenge: &str,
    ) -> impl std::future::Future<Output = std::io::Result<Vec<u8>>> + Send;
}

/// The answer to a challenge in the line-framed protocols (IMAP, POP3,
/// SMTP): one line, within `deadline`; a silent client is a timeout.
pub async fn answer_line<S>(
    io: &mut crate::lines::LineReader<S>,
    deadline: std::time::Duration,
) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + Unpin,
{
    let mut line = Vec::new();
    tokio::time::timeout(deadline, io.line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no SASL response"))?
        .map_err(std::io::Error::other)?;
    Ok(line)
}

/// Runs a whole exchange over a door's wire.
pub async fn exchange<W: SaslWire>(
    wire: &mut W,
    mechanism: Mechanism,
    initial: Option<&[u8]>,
) -> std::io::Result<Result<Credentials, SaslError>> {
    let (mut exchange, mut step) = Exchange::start(mechanism, initial);
    loop {
        match step {
            Step::Challenge(c) => {
                let answer = wire.challenge(c).await?;
                step = exchange.respond(&answer);
            }
            Step::Done(result) => return Ok(result),
        }
    }
}

/// Checks a password the way every door does: first the wait the throttle
/// puts on an account being guessed at (none from an address the owner
/// used before), then the store's Argon2id check, and after a failure the
/// throttle's delay for the client's address before the door may answer
/// (so a thousand guesses take a long time while the real user, from
/// elsewhere, logs in at once). Every failure is logged with the address,
/// in one form for every door (`login failed: door=imap user=... rip=...`,
/// for fail2ban).
pub async fn check_password(
    store: &dyn MailStore,
    throttle: &LoginThrottle,
    door: &str,
    peer: IpAddr,
    user: &str,
    password: &str,
) -> store::Result<Option<Account>> {
    let (wait, guard) = throttle.before_attempt(store, user, peer).await?;
    tokio::time::sleep(wait).await;
    let account = store.authenticate(user, password).await?;
    match &account {
        Some(a) => {
            if let Err(e) = throttle.succeeded(store, user, peer, &guard).await {
                // The login stands; the address is only not yet known.
                tracing::warn!(
                    "cannot note {peer} as a known address of {}: {e}",
                    a.address
                );
            }
            tracing::info!("login: door={door} user={} rip={peer}", a.address);
            if throttle.login_to_note(a.id.0, door)
                && let Err(e) = store.record_login(a.id, door).await
            {
                // The login stands; only the admin's last-login column lags.
                tracing::warn!("cannot note the login of {}: {e}", a.address);
            }
        }
        None => {
            let name: String = user
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(100)
                .collect();
            tracing::warn!("login failed: door={door} user={name} rip={peer}");
            let delay = throttle.failed_login(store, Some(user), peer).await?;
            tokio::time::sleep(delay).await;
        }
    }
    Ok(account)
}

/// Counts a failed login from `peer` that named no account (a malformed
/// exchange, a cancelled one) and waits out the throttle's delay. When the
/// store cannot count it, the longest delay is waited: a guesser gains
/// nothing from a store in trouble.
pub async fn failed(store: &dyn MailStore, throttle: &LoginThrottle, peer: IpAddr) {
    let delay = match throttle.failed_login(store, None, peer).await {
        Ok(delay) => delay,
        Err(e) => {
            tracing::warn!("cannot count a failed login from {peer}: {e}");
            LoginThrottle::MAX_DELAY
        }
    };
    tokio::time::sleep(delay).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> Vec<u8> {
        B64.encode(s).into_bytes()
    }

    fn creds(user: &str, password: &str) -> Step {
        Step::Done(Ok(Credentials {
            user: user.into(),
            password: password.into(),
        }))
    }

    #[test]
    fn plain_with_and_without_an_initial_response() {
        let (_, step) = Exchange::start(Mechanism::Plain, Some(&b64(b"\0alice\0pw")));
        assert_eq!(step, creds("alice", "pw"));
        let (mut ex, step) = Exchange::start(Mechanism::Plain, None);
        assert_eq!(step, Step::Challenge(""));
        assert_eq!(ex.respond(&b64(b"alice\0alice\0pw")), creds("alice", "pw"));
    }

    #[test]
    fn plain_refuses_what_rfc_4616_does_not_define() {
        for bad in [
            &b"alice\0pw"[..],
            b"bob\0alice\0pw",
            b"\0a\0b\0c",
            b"\0\xff\0pw",
        ] {
            let (_, step) = Exchange::start(Mechanism::Plain, Some(&b64(bad)));
            assert_eq!(step, Step::Done(Err(SaslError::Malformed)), "{bad:?}");
        }
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"=")); // empty
        assert_eq!(step, Step::Done(Err(SaslError::Malformed)));
        let (_, step) = Exchange::start(Mechanism::Plain, Some(b"not base64!"));
        assert_eq!(step, Step::Done(Err(SaslError::NotBase64)));
        let (mut ex, _) = Exchange::start(Mechanism::Plain, None);
        assert_eq!(ex.respond(b"*"), Step::Done(Err(SaslError::Cancelled)));
    }

    #[test]
    fn login_asks_for_name_then_password() {
        let (mut ex, step) = Exchange::start(Mechanism::Login, None);
        assert_eq!(step, Step::Challenge(LOGIN_USER));
        assert_eq!(ex.respond(&b64(b"alice")), Step::Challenge(LOGIN_PASSWORD));
        assert_eq!(ex.respond(&b64(b"pw")), creds("alice", "pw"));
        // The name as an initial response.
        let (mut ex, step) = Exchange::start(Mechanism::Login, Some(&b64(b"alice")));
        assert_eq!(step, Step::Challenge(LOGIN_PASSWORD));
        assert_eq!(ex.respond(b"*"), Step::Done(Err(SaslError::Cancelled)));
    }

    #[test]
    fn mechanisms_and_policy() {
        assert_eq!(Mechanism::parse(b"plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse(b"LOGIN"), Some(Mechanism::Login));
        assert_eq!(Mechanism::parse(b"CRAM-MD5"), None);
        let remote: IpAddr = "192.0.2.1".parse().unwrap();
        let local: IpAddr = "::1".parse().unwrap();
        assert!(!plaintext_allowed(false, remote, false));
        assert!(plaintext_allowed(true, remote, false));
        assert!(plaintext_allowed(false, local, false));
        assert!(plaintext_allowed(false, remote, true));
    }
}
