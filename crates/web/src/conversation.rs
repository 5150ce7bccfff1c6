//! The conversation view: a message with the others of its thread
//! (RFC 5322 3.6.4: Message-ID, In-Reply-To, References), from its mailbox
//! and from Sent, oldest first. Without thread keys in the index (the IMAP
//! THREAD work will keep them at delivery), the newest [`SCAN`] messages of
//! each of the two mailboxes are looked at: a long-running thread older
//! than that shows only its recent part.

use std::collections::HashSet;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use store::{Mailbox, MessageMeta};

use crate::Web;
use crate::message::{self, Shown};
use crate::pages::{Authed, Frame, Kind, PageResult, frame, message_of, owned_mailbox, special};

/// Messages looked at per mailbox.
const SCAN: usize = 2000;
/// Bodies read per trip to the store.
const BATCH: usize = 200;

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage<'a> {
    frame: Frame,
    mailbox: &'a Mailbox,
    uid: u32,
    subject: String,
    messages: Vec<Entry>,
}

/// One message of the conversation.
struct Entry {
    /// Where it is, for its link.
    mailbox: i64,
    mailbox_name: String,
    uid: u32,
    unix: i64,
    shown: Shown,
    this_one: bool,
}

/// A message's place in threads: its own id and those it refers to.
struct Ids {
    own: Option<String>,
    refs: Vec<String>,
}

pub async fn page(
    State(web): State<Web>,
    Authed(s): Authed,
    Path((mailbox, uid)): Path<(i64, u32)>,
) -> PageResult {
    let mailbox = owned_mailbox(&web, &s, mailbox).await?;
    let (meta, raw) = message_of(&web, &mailbox, uid).await?;
    let start = ids(&raw);
    let mut wanted: HashSet<String> = start
        .own
        .iter()
        .cloned()
        .chain(start.refs.iter().cloned())
        .collect();
    // The message's own mailbox first (index 0), then Sent.
    let mut places = vec![mailbox.clone()];
    let sent = special(&web, &s, Kind::Sent).await?;
    if sent.id != mailbox.id {
        places.push(sent);
    }
    // Every candidate's ids, then grow the thread until nothing joins.
    // (index into `places`, the message, its ids)
    let mut candidates: Vec<(usize, MessageMeta, Ids)> = Vec::new();
    let store = &web.inner.store;
    for (at, place) in places.iter().enumerate() {
        let (recent, _) = store.newest(place.id, 0, SCAN).await?;
        for batch in recent.chunks(BATCH) {
            let blobs: Vec<_> = batch.iter().map(|m| m.blob.clone()).collect();
            for (m, body) in batch.iter().zip(store.read_blobs(&blobs).await?) {
                if let Ok(body) = body {
                    candidates.push((at, m.clone(), ids(&body)));
                }
            }
        }
    }
    let mut member = vec![false; candidates.len()];
    loop {
        let mut grew = false;
        for (i, (at, m, c)) in candidates.iter().enumerate() {
            if member[i] {
                continue;
            }
            let joins = (*at == 0 && m.uid == uid)
                || c.own.as_ref().is_some_and(|o| wanted.contains(o))
                || c.refs.iter().any(|r| wanted.contains(r));
            if joins {
                member[i] = true;
                grew = true;
                wanted.extend(c.own.iter().cloned());
                wanted.extend(c.refs.iter().cloned());
            }
        }
        if !grew {
            break;
        }
    }
    let mut entries = Vec::new();
    for (i, (at, m, _)) in candidates.into_iter().enumerate() {
        if !member[i] {
            continue;
        }
        let place = &places[at];
        let raw = store.read_blob(&m.blob).await?;
        entries.push(Entry {
            mailbox: place.id.0,
            mailbox_name: place.name.clone(),
            uid: m.uid,
            unix: m.internal_date.unix,
            this_one: at == 0 && m.uid == uid,
            shown: message::shown(&raw),
        });
    }
    if !entries.iter().any(|e| e.this_one) {
        // Older than the scan: at least the message itself.
        entries.push(Entry {
            mailbox: mailbox.id.0,
            mailbox_name: mailbox.name.clone(),
            uid,
            unix: meta.internal_date.unix,
            this_one: true,
            shown: message::shown(&raw),
        });
    }
    entries.sort_by_key(|e| (e.shown.summary.unix.unwrap_or(e.unix), e.unix));
    let subject = entries
        .iter()
        .find(|e| e.this_one)
        .map(|e| e.shown.summary.subject.clone())
        .unwrap_or_default();
    let page = ConversationPage {
        frame: frame(&web, &s, Some(mailbox.id)).await?,
        mailbox: &mailbox,
        uid,
        subject,
        messages: entries,
    }
    .render()?;
    Ok(Html(page).into_response())
}

fn ids(raw: &[u8]) -> Ids {
    let header = &raw[..mime::header_len(raw)];
    let Some(m) = mime::message::parse(header) else {
        return Ids {
            own: None,
            refs: Vec::new(),
        };
    };
    let bare = |s: String| s.trim_matches(['<', '>']).to_string();
    let mut refs: Vec<String> = crate::compose::header_ids(m.references())
        .into_iter()
        .map(bare)
        .collect();
    refs.extend(
        crate::compose::header_ids(m.in_reply_to())
            .into_iter()
            .map(bare),
    );
    Ids {
        own: m.message_id().map(str::to_string),
        refs,
    }
}
