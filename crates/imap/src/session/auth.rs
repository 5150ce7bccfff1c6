//! Logging in (RFC 9051 6.2): STARTTLS, LOGIN and AUTHENTICATE, all
//! through the door kit's policy, SASL exchange and password check.

use super::*;

impl Session {
    /// Plaintext logins are allowed over TLS, from loopback, or everywhere
    /// when the config says so.
    pub(super) fn login_allowed(&self) -> bool {
        login::plaintext_allowed(
            self.tls,
            self.peer.ip(),
            self.server.settings.plaintext_anywhere,
        )
    }

    pub(super) async fn starttls(&mut self, tag: &str) -> Result<(), Error> {
        let Some(config) = self
            .server
            .tls
            .clone()
            .filter(|_| !self.tls && self.account.is_none())
        else {
            self.line(&format!("{tag} BAD STARTTLS is not available now."));
            return Ok(());
        };
        self.line(&format!("{tag} OK Begin TLS negotiation now."));
        self.flush().await?;
        // Anything the client pipelined after STARTTLS is dropped (it came
        // in plain text); the handshake starts on a clean stream.
        let io = self.io.take().ok_or("no stream")?;
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, io.into_inner().into_tls(config))
            .await
            .map_err(|_| "TLS handshake timed out")??;
        self.io = Some(LineReader::with_deadline(
            stream,
            MAX_LINE,
            self.server.settings.deadlines.line,
        ));
        self.tls = true;
        Ok(())
    }

    /// COMPRESS DEFLATE (RFC 4978 3): the OK goes out uncompressed, then
    /// both directions are deflated for the rest of the connection.
    pub(super) async fn compress(&mut self, tag: &str, mechanism: &str) -> Result<(), Error> {
        if mechanism != "DEFLATE" {
            self.line(&format!("{tag} BAD Only COMPRESS DEFLATE is offered."));
            return Ok(());
        }
        if self.io()?.get_mut().is_compressed() {
            self.line(&format!(
                "{tag} NO [COMPRESSIONACTIVE] DEFLATE is on already."
            ));
            return Ok(());
        }
        self.line(&format!("{tag} OK DEFLATE active"));
        self.flush().await?;
        let io = self.io.take().ok_or("no stream")?;
        if io.pending() > 0 {
            // RFC 4978 3: nothing may follow COMPRESS before its answer;
            // bytes that did cannot be read either way.
            tracing::debug!("imap: {}: data pipelined after COMPRESS dropped", self.peer);
        }
        self.io = Some(LineReader::with_deadline(
            io.into_inner().into_deflate(),
            MAX_LINE,
            self.server.settings.deadlines.line,
        ));
        Ok(())
    }

    pub(super) async fn login(&mut self, user: &[u8], password: &[u8]) -> Result<Done, Error> {
        if self.account.is_some() {
            return Ok(bad("Already logged in."));
        }
        if !self.login_allowed() {
            return Ok(no_code(
                "PRIVACYREQUIRED",
                "Plain-text login needs TLS: use STARTTLS or the IMAPS port.",
            ));
        }
        self.check_password(user, password).await
    }

    pub(super) async fn check_password(
        &mut self,
        user: &[u8],
        password: &[u8],
    ) -> Result<Done, Error> {
        let (Ok(user), Ok(password)) = (std::str::from_utf8(user), std::str::from_utf8(password))
        else {
            return Ok(self.login_failed().await);
        };
        let server = self.server.clone();
        let checked = login::check_password(
            &*server.store,
            &server.throttle,
            "imap",
            self.peer.ip(),
            user,
            password,
        )
        .await?;
        match checked {
            // RFC 2221 4.1: the account lives on another server now; the
            // right password only learns where.
            Some(account) if account.referral.is_some() => Ok(no_code(
                format!("REFERRAL {}", account.referral.unwrap_or_default()),
                "This account has moved to another server; log in there.",
            )),
            Some(account) => {
                let Some(slot) = self.server.limits.login(&account.address) else {
                    return Ok(no_code(
                        "LIMIT",
                        "Too many sessions for this account; close some first.",
                    ));
                };
                self._user_slot = Some(slot);
                self.stop
                    .logged_in(&self.server.settings.sessions, account.id);
                self.account = Some(account);
                let caps = self.capabilities();
                Ok(ok_code(format!("CAPABILITY {caps}"), "Logged in."))
            }
            None => Ok(no_code("AUTHENTICATIONFAILED", "Authentication failed.")),
        }
    }

    pub(super) async fn login_failed(&mut self) -> Done {
        login::failed(&*self.server.store, &self.server.throttle, self.peer.ip()).await;
        no_code("AUTHENTICATIONFAILED", "Authentication failed.")
    }

    pub(super) async fn authenticate(
        &mut self,
        mechanism: &str,
        initial: Option<Vec<u8>>,
    ) -> Result<Done, Error> {
        if self.account.is_some() {
            return Ok(bad("Already logged in."));
        }
        if !self.login_allowed() {
            return Ok(no_code(
                "PRIVACYREQUIRED",
                "Authentication needs TLS: use STARTTLS or the IMAPS port.",
            ));
        }
        let Some(mechanism) = Mechanism::parse(mechanism.as_bytes()) else {
            return Ok(no(format!(
                "Unsupported mechanism {mechanism}; use PLAIN or LOGIN."
            )));
        };
        match login::exchange(self, mechanism, initial.as_deref()).await? {
            Ok(c) => {
                self.check_password(c.user.as_bytes(), c.password.as_bytes())
                    .await
            }
            Err(SaslError::Malformed) => Ok(self.login_failed().await),
            // RFC 9051 6.2.2: a cancelled or undecodable exchange is BAD.
            Err(e) => Ok(bad(e.to_string())),
        }
    }
}

/// SASL challenges as RFC 9051 6.2.2 frames them: `+ base64`, answered by
/// one line.
impl SaslWire for Session {
    async fn challenge(&mut self, challenge: &str) -> std::io::Result<Vec<u8>> {
        self.line(&format!("+ {challenge}"));
        write_out(
            &mut self.io,
            &mut self.out,
            self.server.settings.deadlines.write,
        )
        .await
        .map_err(std::io::Error::other)?;
        let io = self
            .io
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no stream"))?;
        door::login::answer_line(io, PREAUTH_TIMEOUT).await
    }
}
