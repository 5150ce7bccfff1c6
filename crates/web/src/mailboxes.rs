//! The mailboxes page: create, rename and delete the account's mailboxes
//! (levels separated by `/`), with the store's own rules (INBOX and the
//! mailboxes mail is filed into stay) said in plain words.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use serde::Deserialize;

use crate::Web;
use crate::pages::{Authed, Frame, Kind, PageError, PageResult, check_csrf, frame};
use crate::session::Session;

#[derive(Template)]
#[template(path = "mailboxes.html")]
struct MailboxesPage<'a> {
    frame: Frame,
    rows: Vec<Row>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

struct Row {
    name: String,
    messages: u32,
    /// INBOX and the default mailboxes: no rename or delete offered.
    fixed: bool,
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn page(State(web): State<Web>, Authed(s): Authed, Query(q): Query<Done>) -> PageResult {
    let notice = match q.done.as_deref() {
        Some("create") => Some("The mailbox is created."),
        Some("rename") => Some("The mailbox is renamed."),
        Some("delete") => Some("The mailbox and its messages are deleted."),
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
    let mut boxes = store.list_mailboxes(s.account.id).await?;
    boxes.sort_by_key(|m| m.name.to_lowercase());
    let mut rows = Vec::with_capacity(boxes.len());
    for m in boxes {
        let status = store.status(m.id).await?;
        rows.push(Row {
            fixed: Kind::of(&m) != Kind::Other,
            messages: status.messages,
            name: m.name,
        });
    }
    let page = MailboxesPage {
        frame: frame(web, s, None).await?,
        rows,
        notice,
        error,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

pub async fn change(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("").trim();
    let store = &web.inner.store;
    let (done, result) = match get("action") {
        "create" => (
            "create",
            store
                .create_mailbox(s.account.id, get("name"), None)
                .await
                .map(|_| ()),
        ),
        "rename" => (
            "rename",
            store
                .rename_mailbox(s.account.id, get("name"), get("to"))
                .await,
        ),
        "delete" if get("confirm") != "1" => {
            let e = format!(
                "Tick the box to confirm deleting {} and its messages.",
                get("name")
            );
            return render(&web, &s, None, Some(&e), StatusCode::BAD_REQUEST).await;
        }
        "delete" => (
            "delete",
            store.delete_mailbox(s.account.id, get("name")).await,
        ),
        _ => {
            return Err(PageError::BadRequest(
                "That is not something this page can do.",
            ));
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/mailboxes?done={done}")).into_response()),
        Err(e) if user_error(&e) => {
            let text = capitalised(&e.to_string());
            render(&web, &s, None, Some(&text), StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Refusals the user can act on (as opposed to the store failing).
fn user_error(e: &store::Error) -> bool {
    use store::Error::*;
    matches!(
        e,
        MailboxExists(_)
            | NoMailbox(_)
            | InvalidMailboxName(..)
            | InboxUndeletable
            | DefaultMailbox(_)
            | RenameIntoItself
    )
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}
