//! Stage 2, trace fields: `Return-Path:` and `Received:` in front of every
//! message delivered (RFC 5321 4.4).

use std::net::IpAddr;

use store::Account;

use crate::Pipeline;

/// Where a message came from, for its trace fields (RFC 5321 4.4): every
/// message the pipeline stores gets a `Return-Path:` and a `Received:`.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The envelope sender (MAIL FROM), empty for the null sender.
    pub mail_from: String,
    pub origin: Origin,
}

/// The door a message came in by.
#[derive(Debug, Clone)]
pub enum Origin {
    /// An SMTP client on the network.
    Smtp {
        /// What the client said in EHLO/HELO.
        helo: String,
        peer: IpAddr,
        /// "ESMTP", "ESMTPS" (over TLS), "SMTP"; RFC 3848.
        protocol: &'static str,
    },
    /// Handed over on this machine (`satchel deliver`, run by an MTA as
    /// its delivery agent): no peer to check SPF or DNSBLs against.
    Local,
    /// Sent by a user of this server who logged in (the submission doors):
    /// nothing to check about the sender.
    Submission {
        helo: String,
        peer: IpAddr,
        /// "ESMTPSA" or "ESMTPA" (RFC 3848).
        protocol: &'static str,
    },
    /// Made by the server itself: a bounce, a redirect, an auto-reply.
    Internal,
}

impl Pipeline {
    /// What a `Received:` says of where the message came from and who took
    /// it: `from HELO ([peer]) by HOST (Satchel) with PROTOCOL`.
    pub(crate) fn received_source(&self, origin: &Origin) -> String {
        match origin {
            Origin::Smtp {
                helo,
                peer,
                protocol,
            }
            | Origin::Submission {
                helo,
                peer,
                protocol,
            } => {
                let helo: String = helo
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(255)
                    .collect();
                format!(
                    "from {helo} ([{peer}])\r\n\tby {} (Satchel) with {protocol}",
                    self.hostname
                )
            }
            // As MTAs stamp mail picked up on their own machine: no "from".
            Origin::Local => format!(
                "by {} (Satchel, from satchel deliver) with local",
                self.hostname
            ),
            Origin::Internal => format!("by {} (Satchel) with local", self.hostname),
        }
    }

    /// `Return-Path:` and `Received:` (RFC 5321 4.4), the fields every
    /// stored message starts with.
    pub(crate) fn trace_fields(&self, t: &Trace, recipients: &[&Account]) -> String {
        let now = time::OffsetDateTime::now_utc();
        let date = now
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let sender: String = t.mail_from.chars().filter(|c| !c.is_control()).collect();
        let mut received = format!(
            "Return-Path: <{sender}>\r\nReceived: {}",
            self.received_source(&t.origin)
        );
        if let [only] = recipients {
            // RFC 5321 4.4: "for" only with one recipient, not to disclose others.
            received.push_str(&format!("\r\n\tfor <{}>", only.address));
        }
        received.push_str(&format!("; {date}\r\n"));
        received
    }
}
