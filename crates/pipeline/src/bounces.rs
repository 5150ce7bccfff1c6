//! Mail the server writes about other mail: DSNs (RFC 3464) for what the
//! queue gave up on and for recipients whose filter rejected a message
//! the others took (RFC 5429 2.1: refuse at the protocol level when all
//! refuse, else tell the sender), and the forwards a filter's `redirect`
//! makes to outside addresses (RFC 5228 4.2).

use crate::dsn;
use crate::{Error, Origin, Pipeline, Recipient, Trace};

/// Received fields past which a message is taken to be looping and is not
/// forwarded again (RFC 5321 6.3 asks for a limit; Postfix uses 50).
pub const MAX_HOPS: usize = 50;

impl Pipeline {
    /// Sends a DSN from the null sender to `to`: into their INBOX when they
    /// are local, else through the queue (DKIM-signed).
    pub async fn send_dsn(&self, to: &str, raw: &[u8]) -> Result<(), Error> {
        match self.recipient(to).await? {
            Recipient::Local(account) => {
                let trace = Trace {
                    mail_from: String::new(),
                    origin: Origin::Internal,
                };
                // Boxed: a delivery can bounce, and the bounce is a
                // delivery (of a null-sender message, which never bounces).
                Box::pin(self.deliver(raw, &[(to.to_string(), account)], &trace))
                    .await
                    .map(|_| ())
            }
            Recipient::NotLocal => {
                let qid = crate::queue_id();
                self.queue_remote(
                    store::NewQueued {
                        qid: &qid,
                        prefix: b"",
                        sender: "",
                        account: None,
                        raw,
                        recipients: &[to.to_string()],
                    },
                    None,
                )
                .await
            }
            Recipient::Unknown => {
                tracing::warn!("dsn: <{to}> no longer exists; the report is dropped");
                Ok(())
            }
        }
    }

    /// Tells the sender that these recipients' filters rejected the
    /// message (`(address, reason)`), unless the sender is null: never a
    /// bounce to a bounce.
    pub(crate) async fn bounce_rejections(
        &self,
        trace: &Trace,
        original: &[u8],
        rejections: &[(String, String)],
    ) {
        if trace.mail_from.is_empty() || rejections.is_empty() {
            return;
        }
        let answers: Vec<String> = rejections
            .iter()
            .map(|(_, reason)| format!("550 5.7.1 rejected by the recipient's filter: {reason}"))
            .collect();
        let failures: Vec<dsn::Failure> = rejections
            .iter()
            .zip(&answers)
            .map(|((recipient, _), answer)| dsn::Failure { recipient, answer })
            .collect();
        let raw = dsn::build(&dsn::Report {
            hostname: &self.hostname,
            to: &trace.mail_from,
            action: dsn::Action::Failed,
            arrived: store::unix_now(),
            failures: &failures,
            original,
        });
        if let Err(e) = self.send_dsn(&trace.mail_from, &raw).await {
            tracing::error!(
                "sieve: the rejection notice to <{}> failed: {e}",
                trace.mail_from
            );
        }
    }

    /// Queues the copies a filter redirected outside (`(account, address)`):
    /// the message as stored, from the redirecting account, so that SPF
    /// holds at the far end and failures come back to the user who set up
    /// the forward; from the null sender when the message had one (a bounce
    /// is never bounced). A message past [`MAX_HOPS`] is not forwarded.
    pub(crate) async fn forward(
        &self,
        trace: &Trace,
        message: &[u8],
        forwards: &[(store::Account, String)],
    ) -> Result<(), Error> {
        if forwards.is_empty() {
            return Ok(());
        }
        let hops = mime::fields::count(message, "Received");
        if hops > MAX_HOPS {
            tracing::warn!(
                "sieve: a message with {hops} Received fields looks like a loop; not redirected to {}",
                forwards
                    .iter()
                    .map(|(_, a)| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Ok(());
        }
        for (account, address) in forwards {
            let qid = crate::queue_id();
            let sender = if trace.mail_from.is_empty() {
                ""
            } else {
                account.address.as_str()
            };
            // Signed as the forwarding account's domain: never as
            // whatever the forwarded mail's From: claims.
            let domain = crate::outgoing::domain_of(&account.address);
            self.queue_remote(
                store::NewQueued {
                    qid: &qid,
                    prefix: b"",
                    sender,
                    account: Some(account.id),
                    raw: message,
                    recipients: std::slice::from_ref(address),
                },
                domain.as_deref(),
            )
            .await?;
            tracing::info!(
                "sieve: {} redirects to {address}: queued as {qid}",
                account.address
            );
        }
        Ok(())
    }
}
