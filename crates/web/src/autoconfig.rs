//! Client autoconfiguration, so a user types an address and a password
//! and nothing else: Thunderbird's autoconfig file (at
//! `/.well-known/autoconfig/mail/config-v1.1.xml` and, for the
//! `autoconfig.DOMAIN` host, `/mail/config-v1.1.xml`), Outlook's
//! Autodiscover POST, and an Apple configuration profile from the settings
//! page. Each names the ports the doors are bound to and their TLS modes.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ring::rand::{SecureRandom, SystemRandom};

use crate::Web;
use crate::pages::{Authed, PageError, PageResult};

/// The mail doors as clients reach them: the server's name and each door's
/// port (none: the door is off).
#[derive(Debug, Clone, Default)]
pub struct MailPorts {
    pub hostname: String,
    pub imap: Option<u16>,
    pub imaps: Option<u16>,
    pub pop3: Option<u16>,
    pub pop3s: Option<u16>,
    pub submission: Option<u16>,
    pub submissions: Option<u16>,
}

/// One way in: protocol, port, and implicit TLS (`true`) or STARTTLS.
struct Way {
    kind: &'static str,
    port: u16,
    implicit: bool,
}

impl MailPorts {
    /// Implicit TLS first (RFC 8314 prefers it), then STARTTLS.
    fn incoming(&self) -> Vec<Way> {
        let mut out = Vec::new();
        for (kind, implicit, port) in [
            ("imap", true, self.imaps),
            ("imap", false, self.imap),
            ("pop3", true, self.pop3s),
            ("pop3", false, self.pop3),
        ] {
            if let Some(port) = port {
                out.push(Way {
                    kind,
                    port,
                    implicit,
                });
            }
        }
        out
    }

    fn outgoing(&self) -> Vec<Way> {
        let mut out = Vec::new();
        for (implicit, port) in [(true, self.submissions), (false, self.submission)] {
            if let Some(port) = port {
                out.push(Way {
                    kind: "smtp",
                    port,
                    implicit,
                });
            }
        }
        out
    }
}

/// The ports, once `serve` has bound every door; the address's domain, if
/// it is one of ours.
fn ready<'a>(web: &'a Web, address: &str) -> Result<&'a MailPorts, Response> {
    let ports = web.inner.mail_ports.get().ok_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is starting; try again in a moment.",
        )
            .into_response()
    })?;
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
    let domains = &web.inner.settings.local_domains;
    if !address.is_empty()
        && !domains.is_empty()
        && !domains.iter().any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Err((
            StatusCode::NOT_FOUND,
            "This server has no mail for that domain.",
        )
            .into_response());
    }
    Ok(ports)
}

/// Thunderbird's autoconfig file (its "config-v1.1" format).
pub async fn thunderbird(
    State(web): State<Web>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let address = q.get("emailaddress").map(String::as_str).unwrap_or("");
    let ports = match ready(&web, address) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .or_else(|| web.inner.settings.local_domains.first().cloned())
        .unwrap_or_else(|| ports.hostname.clone());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n  \
         <emailProvider id=\"{d}\">\n    <domain>{d}</domain>\n    <displayName>{d} mail</displayName>\n    \
         <displayShortName>{d}</displayShortName>\n",
        d = xml_escape(&domain)
    );
    let server = |tag: &str, w: &Way| {
        format!(
            "    <{tag} type=\"{}\">\n      <hostname>{}</hostname>\n      <port>{}</port>\n      \
             <socketType>{}</socketType>\n      <authentication>password-cleartext</authentication>\n      \
             <username>%EMAILADDRESS%</username>\n    </{tag}>\n",
            w.kind,
            xml_escape(&ports.hostname),
            w.port,
            if w.implicit { "SSL" } else { "STARTTLS" }
        )
    };
    for w in ports.incoming() {
        xml.push_str(&server("incomingServer", &w));
    }
    for w in ports.outgoing() {
        xml.push_str(&server("outgoingServer", &w));
    }
    xml.push_str("  </emailProvider>\n</clientConfig>\n");
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

/// Outlook's Autodiscover: a POST whose XML names the address; the answer
/// lists IMAP, POP3 and SMTP ("Encryption" SSL for implicit TLS, TLS for
/// STARTTLS).
pub async fn outlook(State(web): State<Web>, body: Bytes) -> Response {
    let request = String::from_utf8_lossy(&body);
    let address = between(&request, "<EMailAddress>", "</EMailAddress>")
        .unwrap_or("")
        .trim()
        .to_string();
    if address.is_empty() || address.len() > 320 {
        return (
            StatusCode::BAD_REQUEST,
            "Send the Autodiscover request with an <EMailAddress>.",
        )
            .into_response();
    }
    let ports = match ready(&web, &address) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut protocols = String::new();
    // Outlook takes the first of each type: implicit TLS comes first.
    for w in ports.incoming().into_iter().chain(ports.outgoing()) {
        protocols.push_str(&format!(
            "      <Protocol>\n        <Type>{}</Type>\n        <Server>{}</Server>\n        <Port>{}</Port>\n        \
             <LoginName>{}</LoginName>\n        <DomainRequired>off</DomainRequired>\n        <SPA>off</SPA>\n        \
             <SSL>on</SSL>\n        <Encryption>{}</Encryption>\n        <AuthRequired>on</AuthRequired>\n      </Protocol>\n",
            w.kind.to_uppercase(),
            xml_escape(&ports.hostname),
            w.port,
            xml_escape(&address),
            if w.implicit { "SSL" } else { "TLS" }
        ));
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n  \
         <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n    \
         <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n{protocols}    \
         </Account>\n  </Response>\n</Autodiscover>\n"
    );
    (
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

/// An Apple configuration profile for the logged-in user: Mail on iOS and
/// macOS sets the account up from it (the password is asked on install).
pub async fn mobileconfig(State(web): State<Web>, Authed(s): Authed) -> PageResult {
    let address = s.account.address.clone();
    let ports = ready(&web, "")
        .map_err(|_| PageError::BadRequest("The server is starting; try again in a moment."))?;
    let incoming = ports
        .incoming()
        .into_iter()
        .find(|w| w.kind == "imap")
        .ok_or(PageError::BadRequest(
            "This server has no IMAP door on for Apple Mail to use.",
        ))?;
    let outgoing = ports
        .outgoing()
        .into_iter()
        .next()
        .ok_or(PageError::BadRequest(
            "This server has no submission door on for Apple Mail to send with.",
        ))?;
    let (Some(a), Some(b)) = (uuid(), uuid()) else {
        return Err(PageError::NoRandom);
    };
    let host = xml_escape(&ports.hostname);
    let who = xml_escape(&address);
    let reverse: String = ports
        .hostname
        .split('.')
        .rev()
        .collect::<Vec<_>>()
        .join(".");
    let plist = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>PayloadContent</key>
  <array>
    <dict>
      <key>EmailAccountDescription</key><string>{who}</string>
      <key>EmailAccountName</key><string>{who}</string>
      <key>EmailAccountType</key><string>EmailTypeIMAP</string>
      <key>EmailAddress</key><string>{who}</string>
      <key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>IncomingMailServerHostName</key><string>{host}</string>
      <key>IncomingMailServerPortNumber</key><integer>{in_port}</integer>
      <key>IncomingMailServerUseSSL</key><true/>
      <key>IncomingMailServerUsername</key><string>{who}</string>
      <key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>
      <key>OutgoingMailServerHostName</key><string>{host}</string>
      <key>OutgoingMailServerPortNumber</key><integer>{out_port}</integer>
      <key>OutgoingMailServerUseSSL</key><true/>
      <key>OutgoingMailServerUsername</key><string>{who}</string>
      <key>OutgoingPasswordSameAsIncomingPassword</key><true/>
      <key>PayloadDisplayName</key><string>Mail for {who}</string>
      <key>PayloadIdentifier</key><string>{reverse}.satchel.mail.{b}</string>
      <key>PayloadType</key><string>com.apple.mail.managed</string>
      <key>PayloadUUID</key><string>{b}</string>
      <key>PayloadVersion</key><integer>1</integer>
    </dict>
  </array>
  <key>PayloadDisplayName</key><string>{who}</string>
  <key>PayloadIdentifier</key><string>{reverse}.satchel.{a}</string>
  <key>PayloadType</key><string>Configuration</string>
  <key>PayloadUUID</key><string>{a}</string>
  <key>PayloadVersion</key><integer>1</integer>
</dict>
</plist>
"#,
        // Apple's UseSSL means TLS either way: implicit on an implicit-TLS
        // port, STARTTLS on the others.
        in_port = incoming.port,
        out_port = outgoing.port,
    );
    let file = format!(
        "attachment; filename=\"{}.mobileconfig\"",
        address.replace(['"', '\\'], "_")
    );
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/x-apple-aspen-config".to_string(),
            ),
            (header::CONTENT_DISPOSITION, file),
        ],
        plist,
    )
        .into_response())
}

/// A random (version 4) UUID.
fn uuid() -> Option<String> {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).ok()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = s.find(open)? + open.len();
    let end = s[start..].find(close)? + start;
    Some(&s[start..end])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "A" | "B"), "{u}");
    }

    #[test]
    fn the_address_is_taken_from_the_request() {
        let body =
            "<Autodiscover><Request><EMailAddress>a@b.test</EMailAddress></Request></Autodiscover>";
        assert_eq!(
            between(body, "<EMailAddress>", "</EMailAddress>"),
            Some("a@b.test")
        );
        assert_eq!(between("<x>", "<EMailAddress>", "</EMailAddress>"), None);
    }
}
