//! DNS for the whole server, through mail-auth's resolver (hickory): the
//! sender checks' TXT lookups, the DNS blocklists, and the relay's MX and
//! address lookups. Answers may come from a static table instead (the
//! `SATCHEL_DNS_STATIC` file), so tests and closed networks get the same
//! answers every time and never wait on a network. The table's lines:
//! `TXT name value`, `A name ipv4`, `AAAA name ipv6`, `MX name preference
//! host`, `NX name` (no such TXT record). With a table, a TXT, MX or AAAA
//! name not in it does not exist, and there is no DNS server for anything
//! else.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{
    DnsError, DnssecStatus, MX, MessageAuthenticator, Parameters, RecordSet, ResolverCache, Txt,
};

/// The server's resolver, with the static table as its cache.
pub struct Dns {
    resolver: MessageAuthenticator,
    table: Caches,
}

/// Why a name could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The name does not exist (a permanent answer).
    #[error("{0} does not exist in DNS")]
    NoSuchName(String),
    /// DNS did not answer, or answered with an error: try later.
    #[error("DNS lookup of {0} failed: {1}")]
    Failed(String, String),
}

impl Dns {
    /// The system's resolver, or the static table named by
    /// `SATCHEL_DNS_STATIC` when that is set.
    pub fn from_env() -> Result<Dns, String> {
        match std::env::var("SATCHEL_DNS_STATIC") {
            Ok(path) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {path}: {e}"))?;
                Dns::with_table(&text)
            }
            Err(_) => {
                let resolver = MessageAuthenticator::new_system_conf().map_err(|e| {
                    format!("cannot set up DNS from the system's configuration: {e}")
                })?;
                Ok(Dns {
                    resolver,
                    table: Caches::default(),
                })
            }
        }
    }

    /// Answers from `table` only (see the module documentation).
    pub fn with_table(table: &str) -> Result<Dns, String> {
        let resolver = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .map_err(|e| format!("cannot set up the resolver: {e}"))?;
        let mut caches = Caches::default();
        caches.txt.1 = Some(nx());
        // A name the table does not give an MX or an AAAA has none.
        caches.mx.1 = Some(RecordSet {
            rrset: Arc::from(Vec::new().into_boxed_slice()),
            dnssec_status: DnssecStatus::Indeterminate,
        });
        caches.ipv6.1 = Some(RecordSet {
            rrset: Arc::from(Vec::new().into_boxed_slice()),
            dnssec_status: DnssecStatus::Indeterminate,
        });
        let mut mx: HashMap<String, Vec<(u16, String)>> = HashMap::new();
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
                "AAAA" => {
                    let ip: Ipv6Addr = value.parse().map_err(|_| bad("not an IPv6 address"))?;
                    let set = RecordSet {
                        rrset: Arc::from(vec![ip].into_boxed_slice()),
                        dnssec_status: DnssecStatus::Indeterminate,
                    };
                    caches.ipv6.insert(name.into(), set, forever);
                }
                "MX" => {
                    // `MX name preference host`, one line per exchange.
                    let (pref, host) = value
                        .split_once(' ')
                        .ok_or_else(|| bad("expected MX name preference host"))?;
                    let preference: u16 = pref.parse().map_err(|_| bad("not a preference"))?;
                    mx.entry(name)
                        .or_default()
                        .push((preference, fqdn(host.trim())));
                }
                _ => return Err(bad("expected TXT, A, AAAA, MX or NX")),
            }
        }
        for (name, mut exchanges) in mx {
            exchanges.sort();
            let records: Vec<MX> = exchanges
                .into_iter()
                .map(|(preference, host)| MX {
                    preference,
                    exchanges: vec![host.into_boxed_str()].into_boxed_slice(),
                })
                .collect();
            let set = RecordSet {
                rrset: Arc::from(records.into_boxed_slice()),
                dnssec_status: DnssecStatus::Indeterminate,
            };
            caches.mx.insert(name.into(), set, forever);
        }
        Ok(Dns {
            resolver,
            table: caches,
        })
    }
}

impl Dns {
    pub(crate) fn authenticator(&self) -> &MessageAuthenticator {
        &self.resolver
    }

    pub(crate) fn caches(&self) -> &Caches {
        &self.table
    }

    /// The domain's mail exchangers in preference order (RFC 5321 5.1);
    /// empty when it has none (the caller then uses the domain itself).
    pub async fn mx(&self, domain: &str) -> Result<Vec<(u16, String)>, LookupError> {
        let name = fqdn(domain);
        match self
            .resolver
            .mx_lookup(name.as_str(), Some(&self.table.mx))
            .await
        {
            Ok(set) => Ok(set
                .rrset
                .iter()
                .flat_map(|mx| {
                    mx.exchanges
                        .iter()
                        .map(move |host| (mx.preference, host.trim_end_matches('.').to_string()))
                })
                .collect()),
            Err(e) if is_no_records(&e) => Ok(Vec::new()),
            Err(e) if is_nxdomain(&e) => Err(LookupError::NoSuchName(domain.to_string())),
            Err(e) => Err(LookupError::Failed(domain.to_string(), e.to_string())),
        }
    }

    /// The host's addresses, IPv6 first (RFC 5321 5.2 leaves the order
    /// to us; a host with only one family is common either way).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, LookupError> {
        let name = fqdn(host);
        let v6 = self
            .resolver
            .ipv6_lookup(name.as_str(), Some(&self.table.ipv6))
            .await;
        let v4 = self
            .resolver
            .ipv4_lookup(name.as_str(), Some(&self.table.ipv4))
            .await;
        let mut out: Vec<IpAddr> = Vec::new();
        if let Ok(set) = &v6 {
            out.extend(set.rrset.iter().map(|ip| IpAddr::V6(*ip)));
        }
        if let Ok(set) = &v4 {
            out.extend(set.rrset.iter().map(|ip| IpAddr::V4(*ip)));
        }
        if !out.is_empty() {
            return Ok(out);
        }
        match (v4, v6) {
            (Err(e), _) if is_nxdomain(&e) => Err(LookupError::NoSuchName(host.to_string())),
            (Err(e), _) if !is_no_records(&e) => {
                Err(LookupError::Failed(host.to_string(), e.to_string()))
            }
            _ => Err(LookupError::NoSuchName(host.to_string())),
        }
    }
}

/// Which of a domain's mail records DNS has now (for the admin's domain
/// page): each TXT record exists and parses as its kind; the MX hosts.
#[derive(Debug, Clone)]
pub struct Published {
    /// The MX hosts, or why they could not be read.
    pub mx: Result<Vec<String>, String>,
    pub spf: bool,
    pub dmarc: bool,
    /// Per DKIM selector asked about.
    pub dkim: Vec<(String, bool)>,
}

impl Dns {
    /// What DNS says of `domain`'s MX, SPF, DMARC and these DKIM selectors.
    pub async fn published(&self, domain: &str, selectors: &[String]) -> Published {
        let mx = match self.mx(domain).await {
            Ok(hosts) => Ok(hosts.into_iter().map(|(_, h)| h).collect()),
            Err(e) => Err(e.to_string()),
        };
        let spf = self
            .resolver
            .txt_lookup::<Spf>(fqdn(domain).as_str(), Some(&self.table.txt))
            .await
            .is_ok();
        let dmarc = self
            .resolver
            .txt_lookup::<Dmarc>(
                format!("_dmarc.{}", fqdn(domain)).as_str(),
                Some(&self.table.txt),
            )
            .await
            .is_ok();
        let mut dkim = Vec::new();
        for selector in selectors {
            let name = format!("{selector}._domainkey.{}", fqdn(domain));
            let found = self
                .resolver
                .txt_lookup::<DomainKey>(name.as_str(), Some(&self.table.txt))
                .await
                .is_ok();
            dkim.push((selector.clone(), found));
        }
        Published {
            mx,
            spf,
            dmarc,
            dkim,
        }
    }
}

fn is_nxdomain(e: &mail_auth::Error) -> bool {
    matches!(
        e,
        mail_auth::Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain))
    )
}

fn is_no_records(e: &mail_auth::Error) -> bool {
    matches!(e, mail_auth::Error::Dns(DnsError::RecordNotFound(code)) if *code != ResponseCode::NXDomain)
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
pub(crate) struct Table<K, V>(Mutex<HashMap<K, V>>, Option<V>);

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
pub(crate) struct Caches {
    pub(crate) txt: Table<Box<str>, Txt>,
    pub(crate) mx: Table<Box<str>, RecordSet<MX>>,
    pub(crate) ptr: Table<IpAddr, RecordSet<Box<str>>>,
    pub(crate) ipv4: Table<Box<str>, RecordSet<Ipv4Addr>>,
    pub(crate) ipv6: Table<Box<str>, RecordSet<Ipv6Addr>>,
}

pub(crate) type TableParameters<'a, P> = Parameters<
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
    pub(crate) fn with<P>(&self, params: P) -> TableParameters<'_, P> {
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
