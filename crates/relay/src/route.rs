//! Where mail for a domain goes: the smarthost when the config names one,
//! else the domain's MX hosts in preference order (RFC 5321 5.1), the
//! domain itself when it has no MX, each host's every address.

use std::net::{IpAddr, SocketAddr};

use pipeline::{Dns, LookupError};

/// The SMTP port of mail exchangers (RFC 5321 4.5.4.2 says 25).
pub const MX_PORT: u16 = 25;

/// One server to try, and the name it is known by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub host: String,
    pub addr: SocketAddr,
}

/// Why there is no server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// Never: the domain takes no mail, or does not exist.
    Permanent(String),
    /// Not now: DNS did not answer.
    Temporary(String),
}

/// Hosts of the same preference in a random order (RFC 5321 5.1: "the
/// SMTP client SHOULD pick one at random"), so that load spreads over
/// them; the list is sorted by preference already.
fn shuffle_equal(exchanges: &mut [(u16, String)]) {
    use std::hash::{BuildHasher, Hasher};
    // Randomness enough for spreading load: std's per-process random keys.
    let state = std::collections::hash_map::RandomState::new();
    let random = |bound: usize| {
        let mut h = state.build_hasher();
        h.write_usize(bound);
        (h.finish() % bound as u64) as usize
    };
    let mut start = 0;
    while start < exchanges.len() {
        let pref = exchanges[start].0;
        let end = exchanges[start..]
            .iter()
            .position(|(p, _)| *p != pref)
            .map_or(exchanges.len(), |n| start + n);
        // Fisher-Yates within [start, end).
        for i in (start + 1..end).rev() {
            let j = start + random(i - start + 1);
            exchanges.swap(i, j);
        }
        start = end;
    }
}

/// The servers to try for `domain`, best first.
pub async fn hops(dns: &Dns, domain: &str, port: u16) -> Result<Vec<Hop>, NoRoute> {
    // An address literal (RFC 5321 4.1.3): that host, no DNS.
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ip: IpAddr = literal
            .strip_prefix("IPv6:")
            .unwrap_or(literal)
            .parse()
            .map_err(|_| NoRoute::Permanent(format!("{domain} is not an address literal")))?;
        return Ok(vec![Hop {
            host: literal.to_string(),
            addr: SocketAddr::new(ip, port),
        }]);
    }
    let exchanges = match dns.mx(domain).await {
        Ok(mx) => mx,
        Err(LookupError::NoSuchName(_)) => {
            return Err(NoRoute::Permanent(format!(
                "550 5.1.2 the domain {domain} does not exist"
            )));
        }
        Err(e) => return Err(NoRoute::Temporary(format!("451 4.4.3 {e}"))),
    };
    // RFC 7505: a single MX of "." says the domain takes no mail.
    if exchanges.len() == 1 && exchanges[0].1.trim_end_matches('.').is_empty() {
        return Err(NoRoute::Permanent(format!(
            "556 5.1.10 the domain {domain} accepts no mail (null MX)"
        )));
    }
    let hosts: Vec<String> = if exchanges.is_empty() {
        // RFC 5321 5.1: no MX, then the domain itself is the exchanger.
        vec![domain.to_string()]
    } else {
        let mut exchanges = exchanges;
        exchanges.sort_by_key(|(pref, _)| *pref);
        shuffle_equal(&mut exchanges);
        exchanges.into_iter().map(|(_, host)| host).collect()
    };
    let mut hops = Vec::new();
    let mut failure = None;
    for host in hosts {
        match dns.addresses(&host).await {
            Ok(ips) => hops.extend(ips.into_iter().map(|ip| Hop {
                host: host.clone(),
                addr: SocketAddr::new(ip, port),
            })),
            Err(LookupError::NoSuchName(_)) => {}
            Err(e) => failure = Some(e.to_string()),
        }
    }
    if !hops.is_empty() {
        return Ok(hops);
    }
    Err(match failure {
        Some(e) => NoRoute::Temporary(format!("451 4.4.3 {e}")),
        None => NoRoute::Permanent(format!(
            "550 5.4.4 no mail server of {domain} has an address"
        )),
    })
}

/// The smarthost's addresses (`host:port`, looked up by the system).
pub async fn smarthost(spec: &str) -> Result<Vec<Hop>, NoRoute> {
    let host = spec.rsplit_once(':').map_or(spec, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match tokio::net::lookup_host(spec).await {
        Ok(addrs) => {
            let hops: Vec<Hop> = addrs
                .map(|addr| Hop {
                    host: host.to_string(),
                    addr,
                })
                .collect();
            if hops.is_empty() {
                Err(NoRoute::Temporary(format!(
                    "451 4.4.3 the smarthost {spec} has no address"
                )))
            } else {
                Ok(hops)
            }
        }
        Err(e) => Err(NoRoute::Temporary(format!(
            "451 4.4.3 cannot look up the smarthost {spec}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(table: &str) -> Dns {
        Dns::with_table(table).unwrap()
    }

    #[tokio::test]
    async fn mx_in_preference_order_then_the_domain_itself() {
        let d = dns(
            "MX example.net 20 mx2.example.net\nMX example.net 10 mx1.example.net\n\
             A mx1.example.net 127.0.0.2\nA mx2.example.net 127.0.0.3\nA plain.net 127.0.0.4\n",
        );
        let h = hops(&d, "example.net", 2525).await.unwrap();
        let addrs: Vec<String> = h.iter().map(|h| h.addr.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.2:2525", "127.0.0.3:2525"]);
        assert_eq!(h[0].host, "mx1.example.net");
        let h = hops(&d, "plain.net", 25).await.unwrap();
        assert_eq!(h[0].addr.to_string(), "127.0.0.4:25");
        let lit = hops(&d, "[192.0.2.1]", 25).await.unwrap();
        assert_eq!(lit[0].addr.to_string(), "192.0.2.1:25");
    }

    #[tokio::test]
    async fn null_mx_is_permanent() {
        let d = dns("MX nomail.net 0 .\n");
        assert!(matches!(
            hops(&d, "nomail.net", 25).await,
            Err(NoRoute::Permanent(_))
        ));
    }

    #[test]
    fn equal_preferences_are_shuffled_and_kept_apart() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut mx: Vec<(u16, String)> = [(5, "a"), (10, "b"), (10, "c"), (10, "d"), (20, "e")]
                .iter()
                .map(|(p, h)| (*p, h.to_string()))
                .collect();
            shuffle_equal(&mut mx);
            let hosts: Vec<&str> = mx.iter().map(|(_, h)| h.as_str()).collect();
            assert_eq!(hosts[0], "a");
            assert_eq!(hosts[4], "e");
            seen.insert(hosts[1..4].concat());
        }
        // All six orders of b, c, d turn up.
        assert_eq!(seen.len(), 6, "{seen:?}");
    }
}
