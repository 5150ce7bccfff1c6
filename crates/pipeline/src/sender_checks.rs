//! Sender authentication of incoming mail (SPF RFC 7208, DKIM RFC 6376,
//! DMARC RFC 7489) by mail-auth, written as an `Authentication-Results:`
//! field (RFC 8601).
//!
//! DNS goes through the server's [`Dns`] (a static table in tests).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{AuthenticatedMessage, AuthenticationResults};

use crate::Dns;

/// Checks messages and writes their `Authentication-Results:` field.
pub struct SenderChecks {
    dns: Arc<Dns>,
}

/// The facts about an SMTP transaction the checks need.
pub struct SenderFacts<'a> {
    pub peer: IpAddr,
    pub helo: &'a str,
    pub mail_from: &'a str,
    pub hostname: &'a str,
}

impl SenderChecks {
    /// Checks with answers from `dns`.
    pub fn new(dns: Arc<Dns>) -> SenderChecks {
        SenderChecks { dns }
    }

    /// The resolver the checks ask (the relay routes mail with it too).
    pub fn dns(&self) -> &Arc<Dns> {
        &self.dns
    }

    /// The `Authentication-Results:` field (with its CRLF) for a message.
    pub async fn check(&self, raw: &[u8], facts: &SenderFacts<'_>) -> String {
        let c = self.dns.caches();
        let resolver = self.dns.authenticator();
        let mut results = AuthenticationResults::new(facts.hostname);
        let spf_params = if facts.mail_from.is_empty() {
            SpfParameters::verify_ehlo(facts.peer, facts.helo, facts.hostname)
        } else {
            SpfParameters::verify_mail_from(facts.peer, facts.helo, facts.hostname, facts.mail_from)
        };
        let spf = resolver.verify_spf(c.with(spf_params)).await;
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            results =
                results.with_spf_mailfrom_result(&spf, facts.peer, facts.mail_from, facts.helo);
            return format!("Authentication-Results: {results}\r\n");
        };
        let dkim = resolver.verify_dkim(c.with(&message)).await;
        let mail_from_domain = facts
            .mail_from
            .rsplit_once('@')
            .map_or(facts.helo, |(_, d)| d);
        let dmarc = resolver
            .verify_dmarc(c.with(DmarcParameters::new(
                &message,
                &dkim,
                mail_from_domain,
                &spf,
            )))
            .await;
        results = results
            .with_dkim_results(&dkim, message.from())
            .with_spf_mailfrom_result(&spf, facts.peer, facts.mail_from, facts.helo);
        // Without a From domain there is nothing DMARC could align with
        // (RFC 7489 6.6.1), and `header.from=` with no value is not valid
        // RFC 8601 syntax: say nothing; the spam rules judge the missing From.
        if !message.from().is_empty() {
            results = results.with_dmarc_result(&dmarc);
        }
        let mut field = format!("Authentication-Results: {results}\r\n");
        if dkim.is_empty() {
            // RFC 8601 2.7.1: say that the message was not signed.
            let after_host = "Authentication-Results: ".len() + facts.hostname.len();
            field.insert_str(after_host, ";\r\n\tdkim=none");
        }
        field
    }
}

impl SenderChecks {
    /// On how many of the DNS blocklists `zones` the client address `peer`
    /// is listed. A blocklist that does not answer (or answers with one of
    /// the 127.255.255.x error codes Spamhaus gives refused resolvers) does
    /// not list it: a blocklist outage must not junk the world's mail.
    pub async fn dnsbl(&self, peer: IpAddr, zones: &[String]) -> usize {
        let mut listed = 0;
        for zone in zones {
            let name = format!("{}.{zone}", reversed(peer));
            let lookup = self
                .dns
                .authenticator()
                .ipv4_lookup(name.as_str(), Some(&self.dns.caches().ipv4));
            match tokio::time::timeout(DNSBL_TIMEOUT, lookup).await {
                Ok(Ok(set)) if set.rrset.iter().any(|ip| is_listing(*ip)) => listed += 1,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!("dnsbl {name}: {e}"),
                Err(_) => tracing::info!("dnsbl {zone} did not answer within {DNSBL_TIMEOUT:?}"),
            }
        }
        listed
    }
}

/// How long one blocklist may take before the message goes on without it.
const DNSBL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A blocklist's "listed" answer: 127.0.0.2 and up; 127.255.255.x are
/// error codes (RFC 5782 2.1 keeps 127.0.0.0/8 for answers).
fn is_listing(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    a == 127 && !(b == 255 && c == 255) && (b, c, d) >= (0, 0, 2)
}

/// The address as a DNSBL query name (RFC 5782 2.1, 2.4): IPv4 octets in
/// reverse, IPv6 nibbles in reverse.
fn reversed(peer: IpAddr) -> String {
    match peer {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut nibbles = Vec::with_capacity(32);
            for byte in v6.octets().iter().rev() {
                nibbles.push(format!("{:x}", byte & 0xf));
                nibbles.push(format!("{:x}", byte >> 4));
            }
            nibbles.join(".")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dnsbl_query_names_and_answers() {
        assert_eq!(reversed("192.0.2.99".parse().unwrap()), "99.2.0.192");
        assert_eq!(
            reversed("2001:db8:1:2:3:4:567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"
        );
        assert!(is_listing(Ipv4Addr::new(127, 0, 0, 2)));
        assert!(is_listing(Ipv4Addr::new(127, 0, 1, 4)));
        assert!(!is_listing(Ipv4Addr::new(127, 0, 0, 1)));
        assert!(!is_listing(Ipv4Addr::new(127, 255, 255, 254)));
        assert!(!is_listing(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[tokio::test]
    async fn dnsbl_from_the_table() {
        let auth = SenderChecks::new(Arc::new(
            crate::Dns::with_table(
                "A 2.2.0.192.bl.example.test 127.0.0.2\nA 2.2.0.192.other.test 127.0.0.4\n\
             A 2.2.0.192.refused.test 127.255.255.254\n",
            )
            .unwrap(),
        ));
        let zones = |z: &[&str]| z.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let peer: IpAddr = "192.0.2.2".parse().unwrap();
        let all = zones(&[
            "bl.example.test",
            "other.test",
            "refused.test",
            "silent.test",
        ]);
        assert_eq!(auth.dnsbl(peer, &all).await, 2);
        assert_eq!(auth.dnsbl("192.0.2.3".parse().unwrap(), &all).await, 0);
    }
}
