//! The message trace page: what the server did with each message in or
//! out, searched by address, Message-ID or subject and by how many days
//! back. What an admin opens when a user says "I never got it".

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use store::TraceEntry;

use crate::Web;
use crate::admin::{Admin, when};
use crate::pages::{Frame, PageResult, frame};

/// Entries one page shows.
const SHOWN: usize = 100;

#[derive(Deserialize, Default)]
pub struct Search {
    #[serde(default)]
    q: String,
    /// Days back; 7 when not given.
    #[serde(default)]
    days: Option<u32>,
}

#[derive(Template)]
#[template(path = "admin_trace.html")]
struct TracePage {
    frame: Frame,
    q: String,
    days: u32,
    entries: Vec<Shown>,
}

/// An entry with its times written out.
struct Shown {
    at: String,
    e: TraceEntry,
    answers: Vec<(String, store::TraceAnswer)>,
}

pub async fn page(State(web): State<Web>, Admin(s): Admin, Query(q): Query<Search>) -> PageResult {
    let days = q.days.unwrap_or(7).clamp(1, 3650);
    let since = store::unix_now() - i64::from(days) * 86_400;
    let entries = web
        .inner
        .store
        .search_trace(&q.q, since, SHOWN)
        .await?
        .into_iter()
        .map(|mut e| Shown {
            at: when(e.at),
            answers: std::mem::take(&mut e.answers)
                .into_iter()
                .map(|a| (when(a.at), a))
                .collect(),
            e,
        })
        .collect();
    let page = TracePage {
        frame: frame(&web, &s, None).await?,
        q: q.q,
        days,
        entries,
    }
    .render()?;
    Ok(Html(page).into_response())
}
