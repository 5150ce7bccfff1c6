//! The compose page: a new message, a reply, a forward, or a draft taken up
//! again; sent through the outgoing pipeline (the user's outgoing filter,
//! the Sent copy, the queue), or saved to Drafts where every IMAP client
//! sees it.

use askama::Template;
use axum::extract::{Multipart, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use serde::Deserialize;
use store::{FlagChange, FlagOp, Flags, InternalDate, MessageCache, NewMessage};

use crate::Web;
use crate::client::Client;
use crate::compose::{self, Draft, Upload};
use crate::pages::{
    Authed, Frame, Kind, PageError, PageResult, frame, message_of, owned_mailbox, special,
};
use crate::session::{self, Session};

/// Addresses offered for completion.
const PEOPLE: usize = 500;

/// What one form may carry in attachments, all together.
pub const MAX_UPLOAD: usize = 25 << 20;

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage<'a> {
    frame: Frame,
    draft: &'a Draft,
    /// Hidden fields carried to the POST: what is answered or forwarded,
    /// the draft this replaces.
    answers: &'a str,
    forward: &'a str,
    forward_attached: bool,
    draft_uid: u32,
    error: Option<&'a str>,
    saved: bool,
    /// The people the user has written to, for completion.
    people: Vec<String>,
}

/// `/compose?reply=MB:UID` and the like.
#[derive(Deserialize, Default)]
pub struct Start {
    reply: Option<String>,
    reply_all: Option<String>,
    forward: Option<String>,
    forward_attached: Option<String>,
    draft: Option<u32>,
    saved: Option<u8>,
}

pub async fn compose_page(
    State(web): State<Web>,
    Authed(s): Authed,
    Query(start): Query<Start>,
) -> PageResult {
    let me = s.account.address.clone();
    let (mut draft, mut answers, mut forward, mut attached) =
        (Draft::default(), String::new(), String::new(), false);
    if let Some(r) = start.reply.as_deref().or(start.reply_all.as_deref()) {
        let raw = original(&web, &s, r).await?;
        let m = mime::message::parse(&raw).ok_or(PageError::NotFound)?;
        draft = compose::reply(&m, start.reply_all.is_some(), &me);
        answers = r.to_string();
    } else if let Some(f) = start
        .forward
        .as_deref()
        .or(start.forward_attached.as_deref())
    {
        let raw = original(&web, &s, f).await?;
        let m = mime::message::parse(&raw).ok_or(PageError::NotFound)?;
        attached = start.forward_attached.is_some();
        draft = compose::forward(&m, &raw, attached);
        forward = f.to_string();
    } else if let Some(uid) = start.draft {
        let drafts = special(&web, &s, Kind::Drafts).await?;
        let (_, raw) = message_of(&web, &drafts, uid).await?;
        draft = taken_up(&raw);
    }
    render(
        &web,
        &s,
        &draft,
        Carry {
            answers: &answers,
            forward: &forward,
            forward_attached: attached,
            draft_uid: start.draft.unwrap_or(0),
        },
        None,
        start.saved.is_some(),
        StatusCode::OK,
    )
    .await
}

/// The hidden fields of the form.
struct Carry<'a> {
    answers: &'a str,
    forward: &'a str,
    forward_attached: bool,
    draft_uid: u32,
}

async fn render(
    web: &Web,
    s: &Session,
    draft: &Draft,
    carry: Carry<'_>,
    error: Option<&str>,
    saved: bool,
    status: StatusCode,
) -> PageResult {
    let page = ComposePage {
        frame: frame(web, s, None).await?,
        draft,
        answers: carry.answers,
        forward: carry.forward,
        forward_attached: carry.forward_attached,
        draft_uid: carry.draft_uid,
        error,
        saved,
        people: web.inner.store.correspondents(s.account.id, PEOPLE).await?,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

/// Send or save: the compose form's POST (multipart, for the files).
pub async fn compose_post(
    State(web): State<Web>,
    Authed(s): Authed,
    client: Client,
    mut form: Multipart,
) -> PageResult {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut draft = Draft::default();
    let mut total = 0usize;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|_| PageError::BadRequest("The form arrived incomplete. Try again."))?
    {
        let name = field.name().unwrap_or_default().to_string();
        if name == "attachment" {
            let file = field.file_name().unwrap_or_default().to_string();
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|_| PageError::BadRequest("An attachment arrived incomplete."))?;
            if file.is_empty() && bytes.is_empty() {
                continue; // the file picker, left empty
            }
            total += bytes.len();
            if total > MAX_UPLOAD {
                return Err(PageError::TooLarge);
            }
            draft.attachments.push(Upload {
                name: if file.is_empty() {
                    "attachment".into()
                } else {
                    file
                },
                content_type,
                bytes: bytes.to_vec(),
            });
        } else {
            let value = field
                .text()
                .await
                .map_err(|_| PageError::BadRequest("The form arrived incomplete. Try again."))?;
            fields.push((name, value));
        }
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    match fields.iter().find(|(n, _)| n == "csrf") {
        Some((_, t)) if session::same_token(t, &s.csrf) => {}
        _ => {
            return Err(PageError::Forbidden(
                "This form was not sent from your webmail page (its security token is missing or old). Reload the page and try again.",
            ));
        }
    }
    draft.to = get("to").to_string();
    draft.cc = get("cc").to_string();
    draft.bcc = get("bcc").to_string();
    draft.subject = get("subject").to_string();
    draft.body = get("body").to_string();
    draft.in_reply_to = get("in_reply_to").to_string();
    draft.references = get("references").to_string();
    let (answers, forward) = (get("answers").to_string(), get("forward").to_string());
    let forward_attached = get("forward_attached") == "1";
    let old_draft: u32 = get("draft_uid").parse().unwrap_or(0);
    // The draft this form replaces keeps its attachments (a forwarded
    // message among them), unless the user ticked one off; the new files
    // come after them.
    let mut kept = Vec::new();
    if old_draft > 0 {
        let drafts = special(&web, &s, Kind::Drafts).await?;
        if let Ok((_, raw)) = message_of(&web, &drafts, old_draft).await {
            let dropped: Vec<usize> = fields
                .iter()
                .filter(|(n, _)| n == "drop")
                .filter_map(|(_, v)| v.parse().ok())
                .collect();
            kept = taken_up(&raw)
                .attachments
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !dropped.contains(i))
                .map(|(_, a)| a)
                .collect();
        }
    }
    total += kept.iter().map(|a| a.bytes.len()).sum::<usize>();
    if total > MAX_UPLOAD {
        return Err(PageError::TooLarge);
    }
    kept.append(&mut draft.attachments);
    draft.attachments = kept;
    if forward_attached && !forward.is_empty() && old_draft == 0 {
        let raw = original(&web, &s, &forward).await?;
        if let Some(m) = mime::message::parse(&raw) {
            draft
                .attachments
                .extend(compose::forward(&m, &raw, true).attachments);
        }
    }
    let carry = Carry {
        answers: &answers,
        forward: &forward,
        forward_attached,
        draft_uid: old_draft,
    };
    let host = s
        .account
        .address
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "localhost".into());
    let done = if get("action") == "draft" {
        save(&web, &s, &draft, &host, old_draft).await
    } else {
        send(&web, &s, client, &draft, &host, &answers, old_draft).await
    };
    match done {
        Ok(response) => Ok(response),
        Err(Refusal::Page(e)) => Err(e),
        // The form again, as it was, with what to change.
        Err(Refusal::Form(status, why)) => {
            render(&web, &s, &draft, carry, Some(&why), false, status).await
        }
    }
}

/// Why a form was not sent or saved: something to tell the user on the
/// form, or a page error.
enum Refusal {
    Form(StatusCode, String),
    Page(PageError),
}

impl From<PageError> for Refusal {
    fn from(e: PageError) -> Refusal {
        Refusal::Page(e)
    }
}

impl From<store::Error> for Refusal {
    fn from(e: store::Error) -> Refusal {
        Refusal::Page(e.into())
    }
}

fn refused(status: StatusCode, why: impl Into<String>) -> Refusal {
    Refusal::Form(status, why.into())
}

async fn save(
    web: &Web,
    s: &Session,
    draft: &Draft,
    host: &str,
    old_draft: u32,
) -> Result<axum::response::Response, Refusal> {
    let raw = draft
        .build(&s.account.address, host)
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    let uid = save_draft(web, s, &raw, old_draft).await?;
    Ok(Redirect::to(&format!("/compose?draft={uid}&saved=1")).into_response())
}

async fn send(
    web: &Web,
    s: &Session,
    client: Client,
    draft: &Draft,
    host: &str,
    answers: &str,
    old_draft: u32,
) -> Result<axum::response::Response, Refusal> {
    let recipients = draft
        .recipients()
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    if let Err(over) = web.inner.hourly.take(s.account.id) {
        tracing::warn!("http: {} is at the hourly sending limit", s.account.address);
        return Err(refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "You have sent {} messages in the last hour, the most this server allows. Try again in {} minutes.",
                over.max,
                over.retry_in.as_secs().div_ceil(60)
            ),
        ));
    }
    let raw = draft
        .build(&s.account.address, host)
        .map_err(|e| refused(StatusCode::BAD_REQUEST, e))?;
    let sent = web
        .inner
        .pipeline
        .submit(pipeline::Submission {
            account: &s.account,
            mail_from: &s.account.address,
            recipients: &recipients,
            raw: &raw,
            origin: pipeline::Origin::Submission {
                helo: "webmail".into(),
                peer: client.ip,
                protocol: "HTTP",
            },
            sent_copy: web.inner.settings.sent_copy,
        })
        .await
        .map_err(|e| match e {
            pipeline::Error::Rejected(why) => refused(
                StatusCode::BAD_REQUEST,
                format!("Your filter refused this message: {why}"),
            ),
            e => {
                tracing::error!("http: sending for {} failed: {e}", s.account.address);
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The message could not be sent just now; it is not lost from this page. Try again in a moment.",
                )
            }
        })?;
    tracing::info!(
        "http: {} sent {} ({} recipients)",
        s.account.address,
        sent.qid,
        recipients.len()
    );
    let store = &web.inner.store;
    // What a mail client does after sending: the original is answered, and
    // the draft this was is gone.
    if let Some((mailbox, uid)) = parse_ref(answers)
        && let Ok(m) = owned_mailbox(web, s, mailbox).await
    {
        let answered = FlagChange {
            op: FlagOp::Add,
            flags: Flags::ANSWERED,
            keywords: Vec::new(),
        };
        store.store_flags(m.id, &[uid], &answered, None).await?;
    }
    if old_draft > 0 {
        let drafts = special(web, s, Kind::Drafts).await?;
        store.expunge(drafts.id, &[old_draft], false).await?;
    }
    let to = match sent.sent.first() {
        Some(d) => store.mailbox(s.account.id, &d.mailbox).await?,
        None => None,
    };
    let to = match to {
        Some(m) => m,
        None => special(web, s, Kind::Inbox).await?,
    };
    Ok(Redirect::to(&format!("/mail/{}", to.id)).into_response())
}

/// Stores `raw` in Drafts (flagged \Draft and \Seen, as clients do), in
/// place of the draft `old` when there was one; answers the new UID.
async fn save_draft(web: &Web, s: &Session, raw: &[u8], old: u32) -> Result<u32, PageError> {
    let store = &web.inner.store;
    let drafts = special(web, s, Kind::Drafts).await?;
    let analysis = mime::analyze(raw);
    let appended = store
        .append(
            drafts.id,
            NewMessage {
                raw,
                size: analysis.size,
                flags: Flags::DRAFT | Flags::SEEN,
                keywords: Vec::new(),
                internal_date: InternalDate::now(),
                cache: MessageCache::from(&analysis),
                spam: None,
            },
        )
        .await?;
    if old > 0 {
        store.expunge(drafts.id, &[old], false).await?;
    }
    Ok(appended.uid)
}

/// A stored draft back in the form (its text; attachments are not carried
/// back in this version).
fn taken_up(raw: &[u8]) -> Draft {
    let Some(m) = mime::message::parse(raw) else {
        return Draft::default();
    };
    let list = |a: Option<&mail_parser::Address<'_>>| {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    Draft {
        to: list(m.to()),
        cc: list(m.cc()),
        bcc: list(m.bcc()),
        subject: m.subject().unwrap_or_default().to_string(),
        body: m.body_text(0).unwrap_or_default().replace("\r\n", "\n"),
        in_reply_to: compose::header_ids(m.in_reply_to())
            .into_iter()
            .next()
            .unwrap_or_default(),
        references: compose::header_ids(m.references()).join(" "),
        attachments: m.attachments().map(Upload::of_part).collect(),
    }
}

/// The message `MB:UID` names, if it is the user's.
async fn original(web: &Web, s: &Session, r: &str) -> Result<Vec<u8>, PageError> {
    let (mailbox, uid) = parse_ref(r).ok_or(PageError::NotFound)?;
    let mailbox = owned_mailbox(web, s, mailbox).await?;
    Ok(message_of(web, &mailbox, uid).await?.1)
}

fn parse_ref(r: &str) -> Option<(i64, u32)> {
    let (m, u) = r.split_once(':')?;
    Some((m.parse().ok()?, u.parse().ok()?))
}
