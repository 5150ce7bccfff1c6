//! The settings page: the password, the POP3 delete mode, a vacation reply
//! (written into the Sieve script as its vacation action, RFC 5230), the
//! lists of senders (changed through `/senders`), and the account's web
//! sessions, each of which the user can end.

use std::collections::HashMap;
use std::time::Duration;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use serde::Deserialize;
use store::Pop3Delete;

use crate::Web;
use crate::client::Client;
use crate::filters::{active_script, put_script, quoted};
use crate::pages::{Authed, Frame, PageError, PageResult, check_csrf, frame};
use crate::session::{Listed, Session};

/// Shortest password the page accepts.
const MIN_PASSWORD: usize = 8;
/// The lines the vacation block of the script sits between.
const VACATION_BEGIN: &str = "# webmail vacation begin";
const VACATION_END: &str = "# webmail vacation end";
const VACATION_REQUIRE: &str = "# webmail vacation";

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage<'a> {
    frame: Frame,
    pop3: &'a str,
    /// "on", "off" or "default".
    junk_report: &'static str,
    vacation: Option<Vacation>,
    sessions: Vec<Listed>,
    /// The spam allow and block lists, and the image senders.
    sender_lists: [SenderList; 3],
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

/// One list of senders as the page shows it.
struct SenderList {
    /// Its name in the form (`allow`, `block`, `images`).
    list: &'static str,
    title: &'static str,
    entries: Vec<String>,
}

/// A vacation reply as the form shows it.
struct Vacation {
    subject: String,
    text: String,
    days: u32,
}

#[derive(Deserialize)]
pub struct Notice {
    done: Option<String>,
}

pub async fn page(
    State(web): State<Web>,
    Authed(s): Authed,
    Query(q): Query<Notice>,
) -> PageResult {
    let notice = match q.done.as_deref() {
        Some("password") => Some("Your password is changed. Your other sessions were ended."),
        Some("pop3") => Some("The POP3 setting is saved."),
        Some("vacation") => Some("The vacation reply is saved."),
        Some("session") => Some("The session was ended."),
        Some("senders") => Some("The list of senders is saved."),
        Some("junk-report") => Some("The junk report setting is saved."),
        _ => None,
    };
    render(&web, &s, notice, None, StatusCode::OK).await
}

async fn render(
    web: &Web,
    s: &Session,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> PageResult {
    let store = &web.inner.store;
    let account = store
        .account(&s.account.address)
        .await?
        .ok_or(PageError::NotFound)?;
    let pop3 = account
        .pop3_delete
        .map(Pop3Delete::as_str)
        .unwrap_or("default");
    let script = active_script(web, s.account.id).await?;
    let (allowed, blocked): (Vec<_>, Vec<_>) = store
        .spam_lists(s.account.id)
        .await?
        .into_iter()
        .partition(|l| l.allow);
    let junk_report = match account.junk_report {
        Some(true) => "on",
        Some(false) => "off",
        None => "default",
    };
    let page = SettingsPage {
        junk_report,
        sender_lists: [
            SenderList {
                list: "allow",
                title: "Never junk",
                entries: allowed.into_iter().map(|l| l.pattern).collect(),
            },
            SenderList {
                list: "block",
                title: "Always junk",
                entries: blocked.into_iter().map(|l| l.pattern).collect(),
            },
            SenderList {
                list: "images",
                title: "Remote images always shown",
                entries: store.image_senders(s.account.id).await?,
            },
        ],
        frame: frame(web, s, None).await?,
        pop3,
        vacation: vacation_of(&script),
        sessions: web
            .inner
            .sessions
            .of_account(s.account.id, &s.token)
            .await?,
        notice,
        error,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

/// Changes the password: the current one first (checked and throttled like
/// a login), then the new one twice. The account's other sessions end.
pub async fn password(
    State(web): State<Web>,
    Authed(s): Authed,
    client: Client,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let (new, again) = (get("new"), get("again"));
    let refuse = |e: &'static str| render(&web, &s, None, Some(e), StatusCode::BAD_REQUEST);
    if new != again {
        return refuse("The two new passwords differ; type the same one twice.").await;
    }
    if new.chars().count() < MIN_PASSWORD {
        return refuse("The new password is too short: use at least 8 characters.").await;
    }
    let inner = &web.inner;
    let checked = door::login::check_password(
        inner.store.as_ref(),
        &inner.throttle,
        "http",
        client.ip,
        &s.account.address,
        get("current"),
    )
    .await?;
    if checked.is_none() {
        return refuse("The current password is not right; nothing was changed.").await;
    }
    inner.store.set_password(&s.account.address, new).await?;
    let ended = inner
        .sessions
        .end_others(s.account.id, Some(&s.token))
        .await?;
    tracing::info!(
        "http: {} changed their password; {ended} other web sessions ended",
        s.account.address
    );
    Ok(Redirect::to("/settings?done=password").into_response())
}

pub async fn pop3(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let mode = match form.get("mode").map(String::as_str) {
        Some("default") => None,
        Some(m) => Some(
            Pop3Delete::ALL
                .into_iter()
                .find(|d| d.as_str() == m)
                .ok_or(PageError::BadRequest("Choose one of the POP3 settings."))?,
        ),
        None => return Err(PageError::BadRequest("Choose one of the POP3 settings.")),
    };
    web.inner
        .store
        .set_pop3_delete(&s.account.address, mode)
        .await?;
    Ok(Redirect::to("/settings?done=pop3").into_response())
}

/// The junk report: on, off, or the default (on when the account reads
/// mail over POP3 only).
pub async fn junk_report(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let on = match form.get("mode").map(String::as_str) {
        Some("default") => None,
        Some("on") => Some(true),
        Some("off") => Some(false),
        _ => {
            return Err(PageError::BadRequest(
                "Choose one of the junk report settings.",
            ));
        }
    };
    web.inner
        .store
        .set_junk_report(&s.account.address, on)
        .await?;
    Ok(Redirect::to("/settings?done=junk-report").into_response())
}

/// Turns the vacation reply on (with its subject, text and days) or off,
/// in the Sieve script the filters page edits.
pub async fn vacation(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("").trim();
    let on = get("on") == "1";
    let days: u32 = get("days").parse().unwrap_or(7).clamp(1, 30);
    if on && get("text").is_empty() {
        return render(
            &web,
            &s,
            None,
            Some("Write the reply's text."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let script = active_script(&web, s.account.id).await?;
    let mut text = without_vacation(&script);
    if on {
        text = format!(
            "require [\"vacation\", \"environment\"]; {VACATION_REQUIRE}\n{}\n{VACATION_BEGIN}\n\
             if environment :is \"phase\" \"during\" {{\n  vacation :days {days} :subject {} {};\n}}\n{VACATION_END}\n",
            text.trim_end(),
            quoted(get("subject")),
            multiline(get("text")),
        );
    }
    if let Err(e) = sieve::Script::compile(&text) {
        // The rest of the script does not compile (it was saved by another
        // client): say so rather than break it further.
        tracing::warn!("http: {}: vacation not saved: {e}", s.account.address);
        return render(
            &web,
            &s,
            None,
            Some("Your filters have an error, so the vacation reply could not be added; fix them on the Filters page."),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    put_script(&web, s.account.id, &text).await?;
    Ok(Redirect::to("/settings?done=vacation").into_response())
}

pub async fn end_session(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let id = form.get("id").map(String::as_str).unwrap_or("");
    if !web.inner.sessions.end_listed(s.account.id, id).await? {
        return Err(PageError::NotFound);
    }
    Ok(Redirect::to("/settings?done=session").into_response())
}

/// The script without the page's own vacation lines.
fn without_vacation(script: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in script.lines() {
        let t = line.trim();
        if t == VACATION_BEGIN {
            inside = true;
        } else if t == VACATION_END {
            inside = false;
        } else if !inside && !t.ends_with(VACATION_REQUIRE) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The vacation reply the script holds, if the page wrote one.
fn vacation_of(script: &str) -> Option<Vacation> {
    let start = script.find(VACATION_BEGIN)?;
    let block = &script[start..script[start..].find(VACATION_END).map(|e| start + e)?];
    let days = block
        .split(":days ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let after = block.split(":subject ").nth(1)?;
    let (subject, used) = unquote(after)?;
    let rest = after[used..].trim_start();
    let text = if let Some(body) = rest.strip_prefix("text:") {
        let body = body.trim_start_matches([' ', '\t']).strip_prefix('\n')?;
        let end = body
            .find("\n.\n")
            .map(|i| i + 1)
            .or_else(|| body.strip_prefix(".\n").map(|_| 0))?;
        body[..end]
            .lines()
            .map(|l| {
                l.strip_prefix('.')
                    .filter(|_| l.starts_with(".."))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        unquote(rest)?.0
    };
    Some(Vacation {
        subject,
        text: text.trim_end().to_string(),
        days,
    })
}

/// The quoted string at the start of `s`, unescaped, and the bytes of `s`
/// it took.
fn unquote(s: &str) -> Option<(String, usize)> {
    let lead = s.len() - s.trim_start().len();
    let body = s[lead..].strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '"' => return Some((out, lead + 1 + i + 1)),
            c => out.push(c),
        }
    }
    None
}

/// A Sieve multi-line string (RFC 5228 2.4.2): lines starting with a dot
/// get a second one, and a lone dot ends it.
fn multiline(text: &str) -> String {
    let mut out = String::from("text:\n");
    for line in text.replace("\r\n", "\n").lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(".\n");
    out
}

/// "3 minutes", "2 hours", "just now" for the sessions list.
pub fn ago(d: &Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86399 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vacation_block_goes_in_compiles_reads_back_and_comes_out() {
        let base =
            "require [\"fileinto\"];\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n";
        let text = format!(
            "require [\"vacation\", \"environment\"]; {VACATION_REQUIRE}\n{}\n{VACATION_BEGIN}\n\
             if environment :is \"phase\" \"during\" {{\n  vacation :days 5 :subject {} {};\n}}\n{VACATION_END}\n",
            base.trim_end(),
            quoted("Away \"now\""),
            multiline("Back on Monday.\n.hidden dot line"),
        );
        sieve::Script::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let v = vacation_of(&text).unwrap();
        assert_eq!((v.days, v.subject.as_str()), (5, "Away \"now\""));
        assert_eq!(v.text, "Back on Monday.\n.hidden dot line");
        assert_eq!(without_vacation(&text), base);
        assert!(vacation_of(base).is_none());
    }
}
