//! `GET /junk/release?t=TOKEN`: the junk report's release link. No login:
//! the signed, single-use token is the permission (see the quarantine
//! crate); the page says what happened in words a person can act on.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use quarantine::{LinkError, ReleaseError};
use serde::Deserialize;

use crate::Web;
use crate::pages::PageResult;

#[derive(Template)]
#[template(path = "release.html")]
struct ReleasePage<'a> {
    title: &'a str,
    released: Option<quarantine::Released>,
    why: Option<String>,
}

#[derive(Deserialize)]
pub struct Token {
    #[serde(default)]
    t: String,
}

pub async fn release(State(web): State<Web>, Query(q): Query<Token>) -> PageResult {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let inner = &web.inner;
    let (status, title, released, why) =
        match quarantine::release(inner.store.as_ref(), &inner.links, &q.t, now).await {
            Ok(r) => (StatusCode::OK, "Released to your INBOX", Some(r), None),
            Err(ReleaseError::Store(e)) => return Err(e.into()),
            Err(e) => {
                let status = match e {
                    ReleaseError::Link(LinkError::Tampered) => StatusCode::BAD_REQUEST,
                    ReleaseError::Link(LinkError::Expired) | ReleaseError::Used => StatusCode::GONE,
                    _ => StatusCode::NOT_FOUND,
                };
                let mut why = e.to_string();
                if let Some(first) = why.get(..1) {
                    why = first.to_uppercase() + &why[1..];
                }
                (
                    status,
                    "Nothing was released",
                    None,
                    Some(format!("{why}.")),
                )
            }
        };
    let page = ReleasePage {
        title,
        released,
        why,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}
