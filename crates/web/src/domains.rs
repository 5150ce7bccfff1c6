//! The admin's domains page: each local domain with the DNS records to
//! publish (MX, SPF, DKIM from the same keys `satchel dkim show` prints,
//! DMARC, the RFC 6186 SRV records and Thunderbird's autoconfig name),
//! whether the live DNS has them, and the domain's aliases and catch-all.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};

use crate::Web;
use crate::admin::{Admin, Notice, query_value};
use crate::pages::{Frame, PageError, PageResult, check_csrf, frame};
use crate::session::Session;

#[derive(Template)]
#[template(path = "admin_domains.html")]
struct DomainsPage {
    frame: Frame,
    domains: Vec<Domain>,
    accounts: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
    /// Whether the server could ask DNS at all.
    dns: bool,
}

struct Domain {
    name: String,
    records: Vec<Record>,
    /// (alias, account): `@domain` is the catch-all.
    aliases: Vec<(String, String)>,
}

/// One record to publish, and what DNS says of it.
struct Record {
    name: String,
    kind: &'static str,
    value: String,
    /// "published", "missing", "differs: ...", or "not checked".
    live: String,
}

pub async fn page(State(web): State<Web>, Admin(s): Admin, Query(q): Query<Notice>) -> PageResult {
    let who = q.who.unwrap_or_default();
    let notice = match q.done.as_deref() {
        Some("added") => Some(format!("{who} now delivers to its account.")),
        Some("removed") => Some(format!("{who} no longer delivers anywhere.")),
        _ => None,
    };
    render(&web, &s, notice, None, StatusCode::OK).await
}

async fn render(
    web: &Web,
    s: &Session,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let store = &web.inner.store;
    let accounts: Vec<String> = store
        .list_accounts()
        .await?
        .into_iter()
        .map(|a| a.address)
        .collect();
    let aliases = store.aliases().await?;
    let mut names: BTreeSet<String> = web
        .inner
        .settings
        .local_domains
        .iter()
        .map(|d| d.to_lowercase())
        .collect();
    for a in accounts
        .iter()
        .chain(aliases.iter().map(|(alias, _)| alias))
    {
        if let Some((_, d)) = a.rsplit_once('@') {
            names.insert(d.to_lowercase());
        }
    }
    let mut by_domain: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (alias, account) in aliases {
        let d = alias
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        by_domain.entry(d).or_default().push((alias, account));
    }
    let ports = web.inner.mail_ports.get().cloned().unwrap_or_default();
    let dns = web.inner.dns.get().cloned();
    let mut domains = Vec::new();
    for name in names {
        let records = records(web, &name, &ports, dns.as_deref()).await?;
        domains.push(Domain {
            aliases: by_domain.remove(&name).unwrap_or_default(),
            records,
            name,
        });
    }
    let page = DomainsPage {
        frame: frame(web, s, None).await?,
        domains,
        accounts,
        notice,
        error,
        dns: dns.is_some(),
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

async fn records(
    web: &Web,
    domain: &str,
    ports: &crate::MailPorts,
    dns: Option<&pipeline::Dns>,
) -> Result<Vec<Record>, PageError> {
    let host = if ports.hostname.is_empty() {
        "localhost"
    } else {
        ports.hostname.as_str()
    };
    // The same keys `satchel dkim show` prints (made on first use).
    let keys = pipeline::dkim::domain_keys(web.inner.store.as_ref(), domain)
        .await
        .map_err(|e| {
            PageError::BadRequestOwned(format!("The DKIM keys of {domain} could not be read: {e}"))
        })?;
    let dkim: Vec<pipeline::dkim::TxtRecord> =
        keys.iter().map(pipeline::dkim::txt_record).collect();
    let selectors: Vec<String> = keys.iter().map(|k| k.selector.clone()).collect();
    let live = match dns {
        Some(d) => Some(d.published(domain, &selectors).await),
        None => None,
    };
    let check = |ok: Option<bool>| match ok {
        Some(true) => "published".to_string(),
        Some(false) => "missing".to_string(),
        None => "not checked".to_string(),
    };
    let mut out = vec![Record {
        name: format!("{domain}."),
        kind: "MX",
        value: format!("10 {host}."),
        live: match live.as_ref().map(|l| &l.mx) {
            None => "not checked".into(),
            Some(Ok(hosts)) if hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) => {
                "published".into()
            }
            Some(Ok(hosts)) if hosts.is_empty() => "missing".into(),
            Some(Ok(hosts)) => format!("differs: DNS names {}", hosts.join(", ")),
            Some(Err(e)) => format!("missing: {e}"),
        },
    }];
    out.push(Record {
        name: format!("{domain}."),
        kind: "TXT",
        value: "\"v=spf1 mx -all\"".into(),
        live: check(live.as_ref().map(|l| l.spf)),
    });
    let found: HashMap<&str, bool> = live
        .as_ref()
        .map(|l| l.dkim.iter().map(|(s, f)| (s.as_str(), *f)).collect())
        .unwrap_or_default();
    for (key, record) in keys.iter().zip(&dkim) {
        out.push(Record {
            name: record.name.clone(),
            kind: "TXT",
            value: record
                .value
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect::<Vec<_>>()
                .join(" "),
            live: check(found.get(key.selector.as_str()).copied()),
        });
    }
    out.push(Record {
        name: format!("_dmarc.{domain}."),
        kind: "TXT",
        value: format!("\"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}\""),
        live: check(live.as_ref().map(|l| l.dmarc)),
    });
    // RFC 6186: where clients find each door; RFC 8314 prefers implicit TLS.
    for (service, port, priority) in [
        ("_submissions._tcp", ports.submissions, 0),
        ("_submission._tcp", ports.submission, 1),
        ("_imaps._tcp", ports.imaps, 0),
        ("_imap._tcp", ports.imap, 1),
        ("_pop3s._tcp", ports.pop3s, 10),
        ("_pop3._tcp", ports.pop3, 11),
    ] {
        let value = match port {
            Some(p) => format!("{priority} 1 {p} {host}."),
            // "Not offered here" (RFC 6186 3.4).
            None => "0 0 0 .".into(),
        };
        out.push(Record {
            name: format!("{service}.{domain}."),
            kind: "SRV",
            value,
            live: "not checked".into(),
        });
    }
    out.push(Record {
        name: format!("autoconfig.{domain}."),
        kind: "CNAME",
        value: format!("{host}."),
        live: "not checked".into(),
    });
    Ok(out)
}

/// `POST /admin/domains`: `op` `alias-add` (`alias`, `account`) or
/// `alias-remove` (`alias`); an alias `@domain` is the catch-all.
pub async fn change(
    State(web): State<Web>,
    Admin(s): Admin,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("").trim();
    let alias = get("alias").to_lowercase();
    let store = &web.inner.store;
    let (done, result) = match get("op") {
        "alias-add" => {
            // A catch-all (`@domain`) is checked as an address of its domain.
            let address = if alias.starts_with('@') {
                format!("catch-all{alias}")
            } else {
                alias.clone()
            };
            if let Some(why) =
                store::names::outside_local_domains(&address, &web.inner.settings.local_domains)
            {
                return render(&web, &s, None, Some(why), StatusCode::BAD_REQUEST).await;
            }
            ("added", store.add_alias(&alias, get("account")).await)
        }
        "alias-remove" => ("removed", store.remove_alias(&alias).await),
        _ => {
            return Err(PageError::BadRequest(
                "That is not something this page can do.",
            ));
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!(
            "/admin/domains?done={done}&who={}",
            query_value(&alias)
        ))
        .into_response()),
        Err(e @ (store::Error::Db(_) | store::Error::Io { .. })) => Err(PageError::Store(e)),
        Err(e) => {
            render(
                &web,
                &s,
                None,
                Some(format!("{e}.")),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}
