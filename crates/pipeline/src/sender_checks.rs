//! Sender authentication of incoming mail (SPF RFC 7208, DKIM RFC 6376,
//! DMARC RFC 7489) by mail-auth, written as an `Authentication-Results:`
//! field (RFC 8601).
//!
//! DNS goes through mail-auth's resolver; answers may come from a static
//! table instead (the `SATCHEL_DNS_STATIC` file), so tests and closed
//! networks get the same verdicts every time and never wait on a network.
//! The table's lines: `TXT name value`, `A name ipv4`, `NX name` (no such
//! record). With a table, a TXT name not in it does not exist (as if DNS
//! said NXDOMAIN), and there is no DNS server for anything else.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DnsError, DnssecStatus, MX, MessageAuthenticator,
    Parameters, RecordSet, ResolverCache, Txt,
};

/// Checks messages and writes their `Authentication-Results:` field.
pub struct SenderChecks {
    resolver: MessageAuthenticator,
    table: Caches,
}

/// The facts about an SMTP transaction the checks need.
pub struct SenderFacts<'a> {
    pub peer: IpAddr,
    pub helo: &'a str,
    pub mail_from: &'a str,
    pub hostname: &'a str,
}

impl SenderChecks {
    /// The system's resolver, or the static table named by
    /// `SATCHEL_DNS_STATIC` when that is set.
    pub fn from_env() -> Result<SenderChecks, String> {
        match std::env::var("SATCHEL_DNS_STATIC") {
            Ok(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                SenderChecks::with_table(&text)
            }
            Err(_) => {
                let resolver = MessageAuthenticator::new_system_conf().map_err(|e| {
                    format!("cannot set up DNS from the system's configuration: {e}")
                })?;
                Ok(SenderChecks {
                    resolver,
                    table: Caches::default(),
                })
            }
        }
    }

    /// Answers from `table` only (see the module documentation).
    pub fn with_table(table: &str) -> Result<SenderChecks, String> {
        let resolver = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .map_err(|e| format!("cannot set up the resolver: {e}"))?;
        let mut caches = Caches::default();
        caches.txt.1 = Some(nx());
        let forever = Instant::now() + std::time::Duration::from_secs(100 * 365 * 86400);
        for (n, line) in table.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut parts = line.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), fqdn(parts.next().unwrap_or("")));
            let value = parts.next().unwrap_or("").trim();
            let bad = |why: &str| format!("DNS table line {}: {why}: {line}", n + 1);
            match kind {
                "TXT" => {
                    let record = if name.starts_with("_dmarc.") {
                        Dmarc::parse(value.as_bytes()).map(Txt::from)
                    } else if name.contains("._domainkey.") {
                        DomainKey::parse(value.as_bytes()).map(Txt::from)
                    } else {
                        Spf::parse(value.as_bytes()).map(Txt::from)
                    };
                    caches.txt.insert(
                        name.into(),
                        record.map_err(|e| bad(&e.to_string()))?,
                        forever,
                    );
                }
                "NX" => caches.txt.insert(name.into(), nx(), forever),
                "A" => {
                    let ip: Ipv4Addr = value.parse().map_err(|_| bad("not an IPv4 address"))?;
                    let set = RecordSet {
                        rrset: Arc::from(vec![ip].into_boxed_slice()),
                        dnssec_status: DnssecStatus::Indeterminate,
                    };
                    caches.ipv4.insert(name.into(), set, forever);
                }
                _ => return Err(bad("expected TXT, A or NX")),
            }
        }
        Ok(SenderChecks {
            resolver,
            table: caches,
        })
    }

    /// The `Authentication-Results:` field (with its CRLF) for a message.
    pub async fn check(&self, raw: &[u8], facts: &SenderFacts<'_>) -> String {
        let c = &self.table;
        let mut results = AuthenticationResults::new(facts.hostname);
        let spf_params = if facts.mail_from.is_empty() {
            SpfParameters::verify_ehlo(facts.peer, facts.helo, facts.hostname)
        } else {
            SpfParameters::verify_mail_from(facts.peer, facts.helo, facts.hostname, facts.mail_from)
        };
        let spf = self.resolver.verify_spf(c.with(spf_params)).await;
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            results =
                results.with_spf_mailfrom_result(&spf, facts.peer, facts.mail_from, facts.helo);
            return format!("Authentication-Results: {results}\r\n");
        };
        let dkim = self.resolver.verify_dkim(c.with(&message)).await;
        let mail_from_domain = facts
            .mail_from
            .rsplit_once('@')
            .map_or(facts.helo, |(_, d)| d);
        let dmarc = self
            .resolver
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
                .resolver
                .ipv4_lookup(name.as_str(), Some(&self.table.ipv4));
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

/// "No such name", as DNS answers it.
fn nx() -> Txt {
    Txt::Error(mail_auth::Error::Dns(DnsError::RecordNotFound(
        ResponseCode::NXDomain,
    )))
}

fn fqdn(name: &str) -> String {
    let mut n = name.to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

/// A DNS answer cache that never forgets: the static table. `missing` is
/// the answer for names not in it (None: ask DNS).
struct Table<K, V>(Mutex<HashMap<K, V>>, Option<V>);

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table(Mutex::new(HashMap::new()), None)
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for Table<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned().or_else(|| self.1.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }

    fn insert(&self, key: K, value: V, _: Instant) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, value);
    }
}

#[derive(Default)]
struct Caches {
    txt: Table<Box<str>, Txt>,
    mx: Table<Box<str>, RecordSet<MX>>,
    ptr: Table<IpAddr, RecordSet<Box<str>>>,
    ipv4: Table<Box<str>, RecordSet<Ipv4Addr>>,
    ipv6: Table<Box<str>, RecordSet<Ipv6Addr>>,
}

type TableParameters<'a, P> = Parameters<
    'a,
    P,
    Table<Box<str>, Txt>,
    Table<Box<str>, RecordSet<MX>>,
    Table<Box<str>, RecordSet<Ipv4Addr>>,
    Table<Box<str>, RecordSet<Ipv6Addr>>,
    Table<IpAddr, RecordSet<Box<str>>>,
>;

impl Caches {
    /// mail-auth's parameters with the table as every cache.
    fn with<P>(&self, params: P) -> TableParameters<'_, P> {
        Parameters {
            params,
            cache_txt: Some(&self.txt),
            cache_mx: Some(&self.mx),
            cache_ptr: Some(&self.ptr),
            cache_ipv4: Some(&self.ipv4),
            cache_ipv6: Some(&self.ipv6),
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
        let auth = SenderChecks::with_table(
            "A 2.2.0.192.bl.example.test 127.0.0.2\nA 2.2.0.192.other.test 127.0.0.4\n\
             A 2.2.0.192.refused.test 127.255.255.254\n",
        )
        .unwrap();
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
