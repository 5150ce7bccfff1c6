//! The admin pages: accounts and the outbound queue. Only an account with
//! the admin role reaches them (checked against the store on every
//! request, so a role taken away ends at once); anyone else logged in gets
//! 403, anyone not logged in the login page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use store::{AccountOverview, Pop3Delete, Queued};

use crate::Web;
use crate::pages::{Authed, Frame, PageError, PageResult, check_csrf, frame};
use crate::session::Session;

/// Shortest password an admin may set.
const MIN_PASSWORD: usize = 8;

/// A request from a logged-in admin.
pub(crate) struct Admin(pub(crate) Session);

impl FromRequestParts<Web> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Admin, Response> {
        let Authed(s) = Authed::from_request_parts(parts, web).await?;
        match web.inner.store.account(&s.account.address).await {
            Ok(Some(a)) if a.is_admin => Ok(Admin(s)),
            Ok(_) => Err((
                StatusCode::FORBIDDEN,
                "This page is for the server's admins. An admin can give your account the role \
                 (satchel user admin ADDRESS).",
            )
                .into_response()),
            Err(e) => Err(PageError::Store(e).into_response()),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_accounts.html")]
struct AccountsPage<'a> {
    frame: Frame,
    me: &'a str,
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<String>,
}

/// One account as the list shows it.
struct Row {
    address: String,
    admin: bool,
    messages: u64,
    size: String,
    /// The newest login and its door, or "never".
    last_login: String,
    pop3: &'static str,
    /// The quota as the form shows it: "500M" and "1000", or empty.
    quota_storage: String,
    quota_messages: String,
}

impl Row {
    fn of(o: AccountOverview) -> Row {
        let last_login = o
            .logins
            .iter()
            .max_by_key(|(_, at)| *at)
            .map(|(door, at)| format!("{} ({door})", when(*at)))
            .unwrap_or_else(|| "never".into());
        Row {
            admin: o.account.is_admin,
            messages: o.messages,
            size: human_size(o.bytes),
            last_login,
            pop3: o
                .account
                .pop3_delete
                .map(Pop3Delete::as_str)
                .unwrap_or("default"),
            quota_storage: storage_text(o.account.quota_bytes),
            quota_messages: if o.account.quota_messages > 0 {
                o.account.quota_messages.to_string()
            } else {
                String::new()
            },
            address: o.account.address,
        }
    }
}

/// `?done=WHAT&who=WHOM`: what a form just did, for the notice the page
/// shows after its redirect.
#[derive(Deserialize, Default)]
pub struct Notice {
    pub(crate) done: Option<String>,
    pub(crate) who: Option<String>,
}

pub async fn accounts(
    State(web): State<Web>,
    Admin(s): Admin,
    Query(q): Query<Notice>,
) -> PageResult {
    let who = q.who.unwrap_or_default();
    let notice = match q.done.as_deref() {
        Some("added") => Some(format!("{who} was added, with the default mailboxes.")),
        Some("removed") => Some(format!("{who} was removed, with all its mail.")),
        Some("password") => Some(format!("{who} has a new password.")),
        Some("role") => Some(format!("{who}'s role is changed.")),
        Some("pop3") => Some(format!("{who}'s POP3 setting is saved.")),
        Some("quota") => Some(format!("{who}'s quota is saved.")),
        _ => None,
    };
    render_accounts(&web, &s, notice, None, StatusCode::OK).await
}

async fn render_accounts(
    web: &Web,
    s: &Session,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> PageResult {
    let rows = web
        .inner
        .store
        .account_overview()
        .await?
        .into_iter()
        .map(Row::of)
        .collect();
    let page = AccountsPage {
        frame: frame(web, s, None).await?,
        me: &s.account.address,
        rows,
        notice,
        error,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

/// `POST /admin/accounts`: `op` is `add`, `password`, `admin` or `pop3`.
pub async fn change(
    State(web): State<Web>,
    Admin(s): Admin,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let address = get("address").trim().to_lowercase();
    let store = &web.inner.store;
    let refuse = |why: String| render_accounts(&web, &s, None, Some(why), StatusCode::BAD_REQUEST);
    let done = match get("op") {
        "add" => {
            if let Some(why) =
                store::names::outside_local_domains(&address, &web.inner.settings.local_domains)
            {
                return refuse(why).await;
            }
            if get("password").chars().count() < MIN_PASSWORD {
                return refuse("The password is too short: use at least 8 characters.".into())
                    .await;
            }
            match store
                .create_account(&address, get("password"), get("admin") == "1")
                .await
            {
                Ok(_) => "added",
                Err(e) => return refuse(account_error(e)?).await,
            }
        }
        "password" => {
            if get("password").chars().count() < MIN_PASSWORD {
                return refuse("The password is too short: use at least 8 characters.".into())
                    .await;
            }
            if let Err(e) = store.set_password(&address, get("password")).await {
                return refuse(account_error(e)?).await;
            }
            // Whoever was logged in with the old one is not any more.
            if let Ok(Some(a)) = store.account(&address).await {
                web.inner.sessions.end_others(a.id, None).await?;
            }
            "password"
        }
        "admin" => {
            let on = get("on") == "1";
            if !on && address == s.account.address {
                return refuse(
                    "You cannot take your own admin role: another admin can, or satchel user admin ADDRESS --off."
                        .into(),
                )
                .await;
            }
            if let Err(e) = store.set_admin(&address, on).await {
                return refuse(account_error(e)?).await;
            }
            "role"
        }
        "pop3" => {
            let mode = match get("mode") {
                "default" => None,
                m => match Pop3Delete::parse(m) {
                    Some(m) => Some(m),
                    None => return refuse(format!("{m:?} is not a POP3 delete mode.")).await,
                },
            };
            if let Err(e) = store.set_pop3_delete(&address, mode).await {
                return refuse(account_error(e)?).await;
            }
            "pop3"
        }
        "quota" => {
            let storage = get("storage").trim();
            let bytes = if storage.is_empty() {
                0
            } else {
                match store::names::parse_size(storage) {
                    Some(b) => b,
                    None => {
                        return refuse(format!(
                            "{storage:?} is not a size: write it like 500M, 2G or 100K (empty: no limit)."
                        ))
                        .await;
                    }
                }
            };
            let messages = match get("messages").trim() {
                "" => 0,
                n => match n.parse::<u64>() {
                    Ok(n) => n,
                    Err(_) => {
                        return refuse(format!(
                            "{n:?} is not a number of messages (empty: no limit)."
                        ))
                        .await;
                    }
                },
            };
            if let Err(e) = store.set_quota(&address, bytes, messages).await {
                return refuse(account_error(e)?).await;
            }
            "quota"
        }
        _ => {
            return Err(PageError::BadRequest(
                "That is not something this page can do.",
            ));
        }
    };
    Ok(Redirect::to(&format!(
        "/admin/accounts?done={done}&who={}",
        query_value(&address)
    ))
    .into_response())
}

#[derive(Template)]
#[template(path = "admin_remove.html")]
struct RemovePage<'a> {
    frame: Frame,
    row: Row,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct Who {
    address: String,
}

/// The confirmation before an account goes: it names the account and
/// what it holds, and wants the address typed again.
pub async fn confirm_remove(
    State(web): State<Web>,
    Admin(s): Admin,
    Query(who): Query<Who>,
) -> PageResult {
    remove_page(&web, &s, &who.address, None, StatusCode::OK).await
}

async fn remove_page(
    web: &Web,
    s: &Session,
    address: &str,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let address = address.trim().to_lowercase();
    // This one account, not the whole list's usage scan; an alias names
    // its account in the store, but here only the address itself counts.
    let store = &web.inner.store;
    let account = match store.account(&address).await? {
        Some(a) if a.address == address => a,
        _ => return Err(PageError::NotFound),
    };
    let usage = store.usage(account.id).await?;
    let row = Row::of(AccountOverview {
        account,
        messages: usage.messages,
        bytes: usage.bytes,
        logins: Vec::new(),
    });
    let page = RemovePage {
        frame: frame(web, s, None).await?,
        row,
        error,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

pub async fn remove(
    State(web): State<Web>,
    Admin(s): Admin,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let address = get("address").trim().to_lowercase();
    if address == s.account.address {
        return remove_page(
            &web,
            &s,
            &address,
            Some("You cannot remove your own account while logged in to it."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    if get("confirm").trim().to_lowercase() != address {
        return remove_page(
            &web,
            &s,
            &address,
            Some("Type the account's address to confirm; nothing was removed."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let store = &web.inner.store;
    let id = store.account(&address).await?.map(|a| a.id);
    store.remove_account(&address).await?;
    if let Some(id) = id {
        // The store ends them with the account; this says so for a store
        // that kept them elsewhere.
        web.inner.sessions.end_others(id, None).await?;
    }
    Ok(Redirect::to(&format!(
        "/admin/accounts?done=removed&who={}",
        query_value(&address)
    ))
    .into_response())
}

#[derive(Template)]
#[template(path = "admin_queue.html")]
struct QueuePage {
    frame: Frame,
    messages: Vec<QueueRow>,
    notice: Option<String>,
}

struct QueueRow {
    qid: String,
    sender: String,
    size: String,
    queued: String,
    recipients: Vec<RecipientRow>,
}

struct RecipientRow {
    address: String,
    state: &'static str,
    attempts: u32,
    next: String,
    answer: String,
}

impl QueueRow {
    fn of(m: Queued) -> QueueRow {
        QueueRow {
            qid: m.qid,
            sender: if m.sender.is_empty() {
                "<>".into()
            } else {
                m.sender
            },
            size: human_size(m.size),
            queued: when(m.created),
            recipients: m
                .recipients
                .into_iter()
                .map(|r| RecipientRow {
                    address: r.address,
                    state: r.state.as_str(),
                    attempts: r.attempts,
                    next: when(r.next_try),
                    answer: r.last_answer.unwrap_or_else(|| "-".into()),
                })
                .collect(),
        }
    }
}

/// The outbound queue: the rows `satchel queue list` prints.
pub async fn queue(State(web): State<Web>, Admin(s): Admin, Query(q): Query<Notice>) -> PageResult {
    let who = q.who.unwrap_or_default();
    let notice = match q.done.as_deref() {
        Some("retry") => Some(format!("{who} will be tried within a second.")),
        Some("remove") => Some(format!("{who} was removed from the queue, unsent.")),
        _ => None,
    };
    let page = QueuePage {
        frame: frame(&web, &s, None).await?,
        messages: web
            .inner
            .store
            .queue()
            .await?
            .into_iter()
            .map(QueueRow::of)
            .collect(),
        notice,
    }
    .render()?;
    Ok(Html(page).into_response())
}

/// `POST /admin/queue`: `op` `retry` or `remove` of the message `id`, as
/// `satchel queue retry|remove` do.
pub async fn queue_change(
    State(web): State<Web>,
    Admin(s): Admin,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let id = get("id");
    let store = &web.inner.store;
    let found = match get("op") {
        "retry" => store.retry_now(id).await?,
        "remove" => store.dequeue(id).await?,
        _ => {
            return Err(PageError::BadRequest(
                "That is not something this page can do.",
            ));
        }
    };
    if !found {
        return Err(PageError::NotFound);
    }
    Ok(Redirect::to(&format!(
        "/admin/queue?done={}&who={}",
        get("op"),
        query_value(id)
    ))
    .into_response())
}

/// What the store said about an account change, for the admin; a store
/// failure stays a page error.
fn account_error(e: store::Error) -> Result<String, PageError> {
    match e {
        store::Error::Db(_) | store::Error::Io { .. } | store::Error::Password(_) => {
            Err(PageError::Store(e))
        }
        other => Ok(format!("{other}.")),
    }
}

/// A value for a query string: percent-encoded but for what is safe.
pub(crate) fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A storage quota as the form shows it (`500M`), empty for none.
fn storage_text(bytes: i64) -> String {
    let b = bytes.max(0) as u64;
    match b {
        0 => String::new(),
        _ if b.is_multiple_of(1 << 30) => format!("{}G", b >> 30),
        _ if b.is_multiple_of(1 << 20) => format!("{}M", b >> 20),
        _ if b.is_multiple_of(1 << 10) => format!("{}K", b >> 10),
        _ => b.to_string(),
    }
}

pub(crate) fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
            t.format(&f).ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_query_values() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KB");
        assert_eq!(human_size(5 << 30), "5.0 GB");
        assert_eq!(query_value("a b&c@x.test"), "a%20b%26c@x.test");
    }
}
