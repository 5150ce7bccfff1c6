//! Who a request comes from: the client's address (logins are throttled by
//! it) and whether it reached us over TLS (cookies are then `Secure` and a
//! password may come from anywhere). Behind a proxy the admin trusts
//! (`[web] trusted_proxies`), the proxy's `X-Forwarded-For` and
//! `X-Forwarded-Proto` say both; from anyone else those fields are ignored,
//! so a client cannot claim another address to dodge the throttle.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::Web;

/// How a connection reached the door: set per connection by the accept
/// loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport {
    pub(crate) tls: bool,
}

/// The client behind a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    pub(crate) ip: IpAddr,
    /// Over TLS to us, or to a trusted proxy that said so.
    pub(crate) secure: bool,
}

impl FromRequestParts<Web> for Client {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Client, Response> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            // Only a router used without the door's accept loop lacks it.
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "no client address").into_response());
        };
        let tls = parts.extensions.get::<Transport>().is_some_and(|t| t.tls);
        let direct = Client {
            ip: peer.ip(),
            secure: tls,
        };
        if !web.inner.settings.trusted_proxies.contains(&peer.ip()) {
            return Ok(direct);
        }
        Ok(forwarded(&parts.headers, direct))
    }
}

/// What a trusted proxy says of its client: the last `X-Forwarded-For`
/// entry (the one the proxy itself added; earlier ones came from the
/// client and prove nothing) and `X-Forwarded-Proto`.
fn forwarded(headers: &HeaderMap, direct: Client) -> Client {
    let ip = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .unwrap_or(direct.ip);
    let secure = match headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        Some(proto) => proto.trim().eq_ignore_ascii_case("https"),
        None => direct.secure,
    };
    Client { ip, secure }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct() -> Client {
        Client {
            ip: IpAddr::from([127, 0, 0, 1]),
            secure: false,
        }
    }

    #[test]
    fn the_proxys_own_entry_is_the_last() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let c = forwarded(&h, direct());
        assert_eq!(c.ip, IpAddr::from([203, 0, 113, 7]));
        assert!(c.secure);
    }

    #[test]
    fn a_garbled_field_keeps_the_peer() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "not an address".parse().unwrap());
        h.insert("x-forwarded-proto", "http".parse().unwrap());
        let c = forwarded(&h, direct());
        assert_eq!(c.ip, direct().ip);
        assert!(!c.secure);
    }
}
