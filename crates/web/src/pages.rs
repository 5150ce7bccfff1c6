//! The pages and their routes. Every handler that shows mail takes an
//! [`Authed`] session and finds the mailbox through the session's account,
//! so an id from another account is simply not found (404).

use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Form, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use store::{FlagChange, FlagOp, Flags, Mailbox, MailboxId, SpecialUse};

use crate::client::Client;
use crate::listing::{self, ListQuery};
use crate::message::{self, Shown, Summary};
use crate::session::{self, COOKIE, LOGIN_COOKIE, Session};
use crate::{Web, admin, filters, mailboxes, senders, settings, writing};

pub fn router(web: Web) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/mail") }))
        .route("/login", get(login_page).post(login))
        .route("/junk/release", get(crate::release::release))
        .route(
            "/.well-known/autoconfig/mail/config-v1.1.xml",
            get(crate::autoconfig::thunderbird),
        )
        .route("/mail/config-v1.1.xml", get(crate::autoconfig::thunderbird))
        .route(
            "/autodiscover/autodiscover.xml",
            post(crate::autoconfig::outlook),
        )
        .route(
            "/Autodiscover/Autodiscover.xml",
            post(crate::autoconfig::outlook),
        )
        .route(
            "/settings/mobileconfig",
            get(crate::autoconfig::mobileconfig),
        )
        .route("/logout", post(logout))
        .route("/mail", get(inbox))
        .route("/mail/{mailbox}", get(mailbox_page))
        .route("/mail/{mailbox}/{uid}", get(message_page))
        .route("/mail/{mailbox}/{uid}/html", get(message_html))
        .route("/mail/{mailbox}/{uid}/raw", get(message_raw))
        .route(
            "/mail/{mailbox}/{uid}/conversation",
            get(crate::conversation::page),
        )
        .route("/mail/{mailbox}/{uid}/attachment/{n}", get(attachment))
        .route("/mail/{mailbox}/act", post(act))
        .route("/mail/{mailbox}/empty", post(empty))
        .route(
            "/compose",
            get(writing::compose_page)
                .post(writing::compose_post)
                // The attachments, and the form around them.
                .layer(DefaultBodyLimit::max(writing::MAX_UPLOAD + (1 << 20))),
        )
        .route("/events", get(crate::live::events))
        .route("/filters", get(filters::filters_page).post(filters::save))
        .route("/filters/rule", post(filters::add_rule))
        .route("/mailboxes", get(mailboxes::page).post(mailboxes::change))
        .route("/settings", get(settings::page))
        .route("/senders", post(senders::change))
        .route(
            "/admin",
            get(|_: admin::Admin| async { Redirect::to("/admin/accounts") }),
        )
        .route("/admin/accounts", get(admin::accounts).post(admin::change))
        .route(
            "/admin/accounts/remove",
            get(admin::confirm_remove).post(admin::remove),
        )
        .route("/admin/queue", get(admin::queue).post(admin::queue_change))
        .route("/admin/server", get(crate::server::page))
        .route("/admin/trace", get(crate::trace::page))
        .route(
            "/admin/domains",
            get(crate::domains::page).post(crate::domains::change),
        )
        .route("/metrics", get(crate::server::metrics))
        .route("/settings/password", post(settings::password))
        .route("/settings/pop3", post(settings::pop3))
        .route("/settings/junk-report", post(settings::junk_report))
        .route("/settings/vacation", post(settings::vacation))
        .route("/settings/session", post(settings::end_session))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/sw.js", get(service_worker))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
}

/// The pages' policy: nothing but this server's own script, style sheet,
/// frames and requests; no inline script; forms only to here.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";
/// A mail's HTML frame: inline style only; no script, image, font, form or
/// request of any kind; sandboxed even when opened on its own.
const MAIL_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox";
/// The same, when the user asked for the message's remote images.
const MAIL_POLICY_IMAGES: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
     sandbox allow-popups allow-popups-to-escape-sandbox";

/// `?images=1`: the user asked for this message's remote images.
#[derive(Deserialize, Default)]
struct Images {
    #[serde(default)]
    images: Option<u8>,
}

const STYLESHEET: &str = include_str!("../static/app.css");
/// Live lists and keyboard shortcuts; every page works without it.
const SCRIPT: &str = include_str!("../static/app.js");
/// Offline reading (the service worker must be served from the root to
/// see the whole site).
const SERVICE_WORKER: &str = include_str!("../static/sw.js");

/// A request from a logged-in user; anyone else is sent to the login page.
pub(crate) struct Authed(pub(crate) Session);

impl FromRequestParts<Web> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Authed, Response> {
        let token = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| session::cookie(h, COOKIE));
        let found = match token {
            Some(t) => web.inner.sessions.get(t).await,
            None => Ok(None),
        };
        match found {
            Ok(Some(s)) => Ok(Authed(s)),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(PageError::Store(e).into_response()),
        }
    }
}

/// What a page answers when it cannot show what was asked.
pub(crate) enum PageError {
    NotFound,
    BadRequest(&'static str),
    BadRequestOwned(String),
    TooLarge,
    /// The system's random generator failed: no session can be made.
    NoRandom,
    Forbidden(&'static str),
    Store(store::Error),
    Template(askama::Error),
}

impl From<store::Error> for PageError {
    fn from(e: store::Error) -> PageError {
        PageError::Store(e)
    }
}

impl From<askama::Error> for PageError {
    fn from(e: askama::Error) -> PageError {
        PageError::Template(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "There is no such mailbox or message here. It may have been moved or deleted.",
            )
                .into_response(),
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, why).into_response(),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            PageError::BadRequestOwned(why) => (StatusCode::BAD_REQUEST, why).into_response(),
            PageError::NoRandom => {
                tracing::error!("http: the system's random generator failed; no login possible");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The server cannot log anyone in just now. Try again in a moment.",
                )
                    .into_response()
            }
            PageError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The attachments are too large: at most 25 MB per message.",
            )
                .into_response(),
            PageError::Store(store::Error::OverQuota(_, why)) => (
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "Your mailbox is full ({why}). Delete some mail and empty Trash, then try again."
                ),
            )
                .into_response(),
            PageError::Store(store::Error::NoSpace(what)) => {
                tracing::error!("http: the disk is full: {what}");
                (
                    StatusCode::INSUFFICIENT_STORAGE,
                    "The server's disk is full, so nothing was saved. Try again later.",
                )
                    .into_response()
            }
            PageError::Store(e) => {
                tracing::error!("http: the store failed a page: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server could not read your mail just now. Try again in a moment.",
                )
                    .into_response()
            }
            PageError::Template(e) => {
                tracing::error!("http: a page could not be rendered: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The server could not show this page.",
                )
                    .into_response()
            }
        }
    }
}

pub(crate) type PageResult = Result<Response, PageError>;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    address: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    address: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

async fn login_page(client: Client) -> PageResult {
    login_form(client, StatusCode::OK, "", None)
}

/// A cookie of ours: never readable by script, never sent by another
/// site's request, and only over TLS when the page came over TLS.
pub(crate) fn cookie(client: Client, name: &str, value: &str, path: &str, expired: bool) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={path}");
    if client.secure {
        c.push_str("; Secure");
    }
    if expired {
        c.push_str("; Max-Age=0");
    }
    c
}

/// The login form with a fresh token, in its cookie too.
fn login_form(
    client: Client,
    status: StatusCode,
    address: &str,
    error: Option<&str>,
) -> PageResult {
    let token = session::random_token().ok_or(PageError::NoRandom)?;
    let page = LoginPage {
        csrf: &token,
        address,
        error,
    }
    .render()?;
    let cookie = cookie(client, LOGIN_COOKIE, &token, "/login", false);
    Ok((status, [(header::SET_COOKIE, cookie)], Html(page)).into_response())
}

async fn login(
    State(web): State<Web>,
    client: Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let expected = cookie_of(&headers, LOGIN_COOKIE);
    if !expected.is_some_and(|t| !form.csrf.is_empty() && session::same_token(t, &form.csrf)) {
        return login_form(
            client,
            StatusCode::FORBIDDEN,
            &form.address,
            Some("The login form had expired. Enter your password again."),
        );
    }
    let inner = &web.inner;
    // No password over plain HTTP from elsewhere than this machine (or a
    // trusted proxy that took it over HTTPS), unless the admin allows it.
    if !door::login::plaintext_allowed(client.secure, client.ip, inner.settings.plaintext_anywhere)
    {
        return login_form(
            client,
            StatusCode::FORBIDDEN,
            &form.address,
            Some(
                "Passwords are not taken over plain HTTP from your network. Use the server's HTTPS address.",
            ),
        );
    }
    let account = door::login::check_password(
        inner.store.as_ref(),
        &inner.throttle,
        "http",
        client.ip,
        form.address.trim(),
        &form.password,
    )
    .await?;
    let Some(account) = account else {
        return login_form(
            client,
            StatusCode::UNAUTHORIZED,
            &form.address,
            Some("Wrong address or password."),
        );
    };
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let s = inner
        .sessions
        .open(account, &client.ip.to_string(), agent)
        .await?
        .ok_or(PageError::NoRandom)?;
    let session = cookie(client, COOKIE, &s.token, "/", false);
    let clear = cookie(client, LOGIN_COOKIE, "", "/login", true);
    let mut response = Redirect::to("/mail").into_response();
    let h = response.headers_mut();
    for c in [session, clear] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

async fn logout(
    State(web): State<Web>,
    client: Client,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    web.inner.sessions.end(&s.token).await?;
    let clear = cookie(client, COOKIE, "", "/", true);
    // The mail kept for offline reading goes with the session.
    Ok((
        [
            (header::SET_COOKIE, clear),
            (
                HeaderName::from_static("clear-site-data"),
                "\"cache\", \"storage\"".to_string(),
            ),
        ],
        Redirect::to("/login"),
    )
        .into_response())
}

/// A state-changing form must carry the session's token.
pub(crate) fn check_csrf(s: &Session, form: &HashMap<String, String>) -> Result<(), PageError> {
    match form.get("csrf") {
        Some(t) if session::same_token(t, &s.csrf) => Ok(()),
        _ => Err(PageError::Forbidden(
            "This form was not sent from your webmail page (its security token is missing or old). Reload the page and try again.",
        )),
    }
}

async fn inbox(State(web): State<Web>, Authed(s): Authed) -> PageResult {
    let inbox = web
        .inner
        .store
        .mailbox(s.account.id, "INBOX")
        .await?
        .ok_or(PageError::NotFound)?;
    Ok(Redirect::to(&format!("/mail/{}", inbox.id)).into_response())
}

/// A mailbox in the side list.
pub(crate) struct Folder {
    pub(crate) id: MailboxId,
    pub(crate) name: String,
    pub(crate) unread: u32,
    pub(crate) current: bool,
}

/// A message list row.
struct Row {
    uid: u32,
    /// When it arrived, for offline keeping.
    unix: i64,
    unread: bool,
    flagged: bool,
    date: String,
    summary: Summary,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage<'a> {
    frame: Frame,
    mailbox: &'a Mailbox,
    kind: Kind,
    rows: Vec<Row>,
    page: usize,
    pages: usize,
    total: usize,
    searching: bool,
    query: &'a ListQuery,
    /// The query string without the page, for the paging links.
    qs: &'a str,
}

async fn mailbox_page(
    State(web): State<Web>,
    Authed(s): Authed,
    Path(mailbox): Path<i64>,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let frame = frame(&web, &s, Some(mailbox.id)).await?;
    let size = web.inner.settings.page_size.max(1);
    let wanted = query.page.unwrap_or(1).max(1);
    let (mut shown, mut total) = listing::select(&web, &mailbox, &query, wanted, size).await?;
    let pages = total.div_ceil(size).max(1);
    let page = wanted.min(pages);
    if page != wanted {
        // Past the last page (mail went away meanwhile): show the last.
        (shown, total) = listing::select(&web, &mailbox, &query, page, size).await?;
    }
    let rows = shown
        .into_iter()
        .map(|(m, summary)| Row {
            // The date the sender wrote, as mail clients list it; the
            // arrival time when it has none.
            date: day_and_time(summary.unix.unwrap_or(m.internal_date.unix)),
            unix: m.internal_date.unix,
            uid: m.uid,
            unread: !m.flags.contains(Flags::SEEN),
            flagged: m.flags.contains(Flags::FLAGGED),
            summary,
        })
        .collect();
    let qs = query.without_page();
    let page = MailboxPage {
        frame,
        kind: Kind::of(&mailbox),
        mailbox: &mailbox,
        rows,
        page,
        pages,
        total,
        searching: query.searching(),
        query: &query,
        qs: &qs,
    }
    .render()?;
    Ok(Html(page).into_response())
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    frame: Frame,
    mailbox: &'a Mailbox,
    kind: Kind,
    uid: u32,
    flagged: bool,
    shown: Shown,
    spam: Option<store::SpamNote>,
    /// The user asked for remote images; or how many were left out.
    images: bool,
    blocked_images: usize,
    /// Where the sender stands on the user's lists.
    standing: Option<senders::Standing>,
}

async fn message_page(
    State(web): State<Web>,
    Authed(s): Authed,
    Path((mailbox, uid)): Path<(i64, u32)>,
    Query(asked): Query<Images>,
    headers: HeaderMap,
) -> PageResult {
    let store = &web.inner.store;
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let (meta, raw) = message_of(&web, &mailbox, uid).await?;
    // Opening a message reads it, as in every mail client; a copy fetched
    // ahead for offline reading does not.
    let prefetch = headers.contains_key("x-satchel-prefetch");
    if !meta.flags.contains(Flags::SEEN) && !prefetch {
        let seen = FlagChange {
            op: FlagOp::Add,
            flags: Flags::SEEN,
            keywords: Vec::new(),
        };
        store.store_flags(mailbox.id, &[uid], &seen, None).await?;
    }
    let frame = frame(&web, &s, Some(mailbox.id)).await?;
    let spam = store.spam_note(mailbox.id, uid).await?;
    let shown = message::shown(&raw);
    let standing = match &shown.sender {
        Some(address) => Some(senders::standing(&web, s.account.id, address).await?),
        None => None,
    };
    let images = asked.images == Some(1)
        || (shown.remote_images > 0 && standing.as_ref().is_some_and(|st| st.images.is_some()));
    let page = MessagePage {
        standing,
        frame,
        kind: Kind::of(&mailbox),
        mailbox: &mailbox,
        uid,
        flagged: meta.flags.contains(Flags::FLAGGED),
        blocked_images: if images { 0 } else { shown.remote_images },
        shown,
        spam,
        images,
    }
    .render()?;
    Ok(Html(page).into_response())
}

/// A mail's HTML, cleaned, for the sandboxed frame of its message page.
async fn message_html(
    State(web): State<Web>,
    Authed(s): Authed,
    Path((mailbox, uid)): Path<(i64, u32)>,
    Query(asked): Query<Images>,
) -> PageResult {
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let (_, raw) = message_of(&web, &mailbox, uid).await?;
    let images = asked.images == Some(1);
    let body = format!(
        "<!doctype html><meta charset=\"utf-8\"><body>{}</body>",
        message::safe_html(&raw, images).html
    );
    let policy = if images {
        MAIL_POLICY_IMAGES
    } else {
        MAIL_POLICY
    };
    Ok((
        [
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        Html(body),
    )
        .into_response())
}

/// The message exactly as stored, as text: "show source".
async fn message_raw(
    State(web): State<Web>,
    Authed(s): Authed,
    Path((mailbox, uid)): Path<(i64, u32)>,
) -> PageResult {
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let (_, raw) = message_of(&web, &mailbox, uid).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        String::from_utf8_lossy(&raw).into_owned(),
    )
        .into_response())
}

/// An attachment, always as a download (never shown on this origin,
/// where an HTML or SVG file could run script); safe raster images also
/// inline, for previews.
async fn attachment(
    State(web): State<Web>,
    Authed(s): Authed,
    Path((mailbox, uid, n)): Path<(i64, u32, usize)>,
) -> PageResult {
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let (_, raw) = message_of(&web, &mailbox, uid).await?;
    let file = message::attachment(&raw, n).ok_or(PageError::NotFound)?;
    let disposition = if file.content_type.starts_with("image/") {
        "inline"
    } else {
        "attachment"
    };
    let disposition = format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_name(&file.name),
        percent(&file.name)
    );
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
        ],
        file.bytes,
    )
        .into_response())
}

/// What a list or message page asks to do with some messages.
async fn act(
    State(web): State<Web>,
    Authed(s): Authed,
    Path(mailbox): Path<i64>,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    let form: HashMap<String, String> = fields.iter().cloned().collect();
    check_csrf(&s, &form)?;
    let store = &web.inner.store;
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let mut uids: Vec<u32> = fields
        .iter()
        .filter(|(k, _)| k == "uid")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    uids.sort_unstable();
    uids.dedup();
    // Flag changes stay on the message; "mark unread" leaves it (showing
    // it again would read it).
    let back_to_message = form.get("from").is_some_and(|f| f == "message")
        && uids.len() == 1
        && form.get("action").is_some_and(|a| a != "unread");
    let list = format!("/mail/{}", mailbox.id);
    if uids.is_empty() {
        return Ok(Redirect::to(&list).into_response());
    }
    let action = form.get("action").map(String::as_str).unwrap_or("");
    let flag = |op, flags| FlagChange {
        op,
        flags,
        keywords: Vec::new(),
    };
    let stays = match action {
        "read" => Some(flag(FlagOp::Add, Flags::SEEN)),
        "unread" => Some(flag(FlagOp::Remove, Flags::SEEN)),
        "flag" => Some(flag(FlagOp::Add, Flags::FLAGGED)),
        "unflag" => Some(flag(FlagOp::Remove, Flags::FLAGGED)),
        _ => None,
    };
    if let Some(change) = stays {
        store.store_flags(mailbox.id, &uids, &change, None).await?;
        if back_to_message {
            return Ok(Redirect::to(&format!("{list}/{}", uids[0])).into_response());
        }
        return Ok(Redirect::to(&list).into_response());
    }
    let target = match action {
        "junk" => special(&web, &s, Kind::Junk).await?,
        "notjunk" => special(&web, &s, Kind::Inbox).await?,
        "delete" if Kind::of(&mailbox) == Kind::Trash => {
            // Deleting in Trash is for good.
            store.expunge(mailbox.id, &uids, false).await?;
            return Ok(Redirect::to(&list).into_response());
        }
        "delete" => special(&web, &s, Kind::Trash).await?,
        "archive" => archive(&web, &s).await?,
        "move" => {
            let to = form
                .get("to")
                .and_then(|t| t.parse().ok())
                .ok_or(PageError::BadRequest("Choose the mailbox to move to."))?;
            owned_mailbox(&web, &s, to).await?
        }
        _ => {
            return Err(PageError::BadRequest(
                "That is not something this page can do.",
            ));
        }
    };
    if target.id != mailbox.id {
        // The store records the training a move into or out of Junk
        // teaches, the same as for an IMAP MOVE.
        store.move_messages(mailbox.id, &uids, target.id).await?;
    }
    Ok(Redirect::to(&list).into_response())
}

/// Empties Trash or Junk.
async fn empty(
    State(web): State<Web>,
    Authed(s): Authed,
    Path(mailbox): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let store = &web.inner.store;
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    if !matches!(Kind::of(&mailbox), Kind::Trash | Kind::Junk) {
        return Err(PageError::BadRequest("Only Trash and Junk can be emptied."));
    }
    let uids: Vec<u32> = store
        .messages(mailbox.id)
        .await?
        .iter()
        .map(|m| m.uid)
        .collect();
    if !uids.is_empty() {
        store.expunge(mailbox.id, &uids, false).await?;
    }
    Ok(Redirect::to(&format!("/mail/{}", mailbox.id)).into_response())
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        SCRIPT,
    )
        .into_response()
}

async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            // A new version is picked up at the next page load.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SERVICE_WORKER,
    )
        .into_response()
}

/// Headers every answer carries unless the handler set its own: the page
/// policy, no sniffing, no referrer (a link in a mail must not tell its
/// sender which message was open), and private mail never cached.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, PAGE_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// The mailbox `id` if it is the session's account's.
pub(crate) async fn owned_mailbox(web: &Web, s: &Session, id: i64) -> Result<Mailbox, PageError> {
    match web.inner.store.mailbox_by_id(MailboxId(id)).await? {
        Some(m) if m.account_id == s.account.id => Ok(m),
        _ => Err(PageError::NotFound),
    }
}

pub(crate) async fn message_of(
    web: &Web,
    mailbox: &Mailbox,
    uid: u32,
) -> Result<(store::MessageMeta, Vec<u8>), PageError> {
    let store = &web.inner.store;
    let meta = store
        .details(mailbox.id, &[uid])
        .await?
        .into_iter()
        .find(|m| m.uid == uid)
        .ok_or(PageError::NotFound)?;
    let raw = store.read_blob(&meta.blob).await?;
    Ok((meta, raw))
}

/// What every page around the content shows: the account, the token its
/// forms carry, the mailboxes (`current` highlighted).
pub(crate) struct Frame {
    pub(crate) account: String,
    /// Whether the header links to the admin pages (each of them checks
    /// the role again).
    pub(crate) admin: bool,
    pub(crate) csrf: String,
    pub(crate) folders: Vec<Folder>,
}

pub(crate) async fn frame(
    web: &Web,
    s: &Session,
    current: Option<MailboxId>,
) -> Result<Frame, PageError> {
    Ok(Frame {
        account: s.account.address.clone(),
        admin: s.account.is_admin,
        csrf: s.csrf.clone(),
        folders: folders(web, s, current).await?,
    })
}

/// The account's mailboxes with their unread counts: INBOX, the special
/// ones, then the rest by name.
async fn folders(
    web: &Web,
    s: &Session,
    current: Option<MailboxId>,
) -> Result<Vec<Folder>, PageError> {
    let store = &web.inner.store;
    let mut boxes = store.list_mailboxes(s.account.id).await?;
    boxes.sort_by_key(|m| (rank(m), m.name.to_lowercase()));
    let unseen: HashMap<MailboxId, u32> = store
        .unseen_counts(s.account.id)
        .await?
        .into_iter()
        .collect();
    Ok(boxes
        .into_iter()
        .map(|m| Folder {
            id: m.id,
            current: Some(m.id) == current,
            unread: unseen.get(&m.id).copied().unwrap_or(0),
            name: m.name,
        })
        .collect())
}

fn rank(m: &Mailbox) -> u8 {
    if m.name.eq_ignore_ascii_case("INBOX") {
        return 0;
    }
    match m.special_use {
        Some(SpecialUse::Drafts) => 1,
        Some(SpecialUse::Sent) => 2,
        Some(SpecialUse::Junk) => 4,
        Some(SpecialUse::Trash) => 5,
        Some(_) => 6,
        None if m.name == "Possible Junk" => 3,
        None => 7,
    }
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie(h, name))
}

/// `2026-12-06 21:05` (UTC) for a list row.
fn day_and_time(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// What a mailbox is to the pages: which actions it offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Inbox,
    Drafts,
    Sent,
    Junk,
    PossibleJunk,
    Trash,
    Other,
}

impl Kind {
    pub(crate) fn of(m: &Mailbox) -> Kind {
        if m.name.eq_ignore_ascii_case("INBOX") {
            Kind::Inbox
        } else if m.special_use == Some(SpecialUse::Junk) {
            Kind::Junk
        } else if m.special_use == Some(SpecialUse::Trash) {
            Kind::Trash
        } else if m.special_use == Some(SpecialUse::Drafts) {
            Kind::Drafts
        } else if m.special_use == Some(SpecialUse::Sent) {
            Kind::Sent
        } else if m.name == store::POSSIBLE_JUNK {
            Kind::PossibleJunk
        } else {
            Kind::Other
        }
    }

    /// Junk review: the mailboxes whose messages get "Not junk".
    fn is_junkish(self) -> bool {
        matches!(self, Kind::Junk | Kind::PossibleJunk)
    }
}

/// The account's INBOX, Junk or Trash.
/// Where "Archive" moves mail: the account's \Archive mailbox (RFC 6154),
/// else the one named Archive, made (with \Archive) the first time.
async fn archive(web: &Web, s: &Session) -> Result<Mailbox, PageError> {
    let store = &web.inner.store;
    let all = store.list_mailboxes(s.account.id).await?;
    let found = all
        .iter()
        .find(|m| m.special_use == Some(SpecialUse::Archive))
        .or_else(|| all.iter().find(|m| m.name == "Archive"));
    match found {
        Some(m) => Ok(m.clone()),
        None => Ok(store
            .create_mailbox(s.account.id, "Archive", Some(SpecialUse::Archive))
            .await?),
    }
}

pub(crate) async fn special(web: &Web, s: &Session, kind: Kind) -> Result<Mailbox, PageError> {
    web.inner
        .store
        .list_mailboxes(s.account.id)
        .await?
        .into_iter()
        .find(|m| Kind::of(m) == kind)
        .ok_or(PageError::NotFound)
}

/// A file name for the plain `filename=` parameter: printable ASCII only.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 8187 percent-encoding for `filename*`.
fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
