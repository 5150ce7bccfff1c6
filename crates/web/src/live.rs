//! Live pages: server-sent events from the store's change feed, so a list
//! open in a browser shows what IMAP, POP3, SMTP or another tab changed
//! without a reload. An event only says which mailbox changed; the page
//! fetches what it shows again (the feed carries no mail).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::Web;
use crate::pages::Authed;

/// How often an idle stream is checked against its session (a logout or an
/// expiry ends it) and sends a comment through proxies that drop idle
/// connections.
const TICK: Duration = Duration::from_secs(20);

pub async fn events(
    State(web): State<Web>,
    Authed(s): Authed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let feed = web.inner.store.subscribe();
    let state = (web, s, feed);
    let stream = futures_util::stream::unfold(state, |(web, s, mut feed)| async move {
        loop {
            let next = tokio::time::timeout(TICK, feed.recv()).await;
            match next {
                Ok(Ok(change)) if change.account_id == s.account.id => {
                    let event = Event::default()
                        .event("change")
                        .data(change.mailbox_id.to_string());
                    return Some((Ok(event), (web, s, feed)));
                }
                Ok(Ok(_)) => continue,
                // Missed some: the page cannot tell which mailboxes, so
                // all of them.
                Ok(Err(RecvError::Lagged(_))) => {
                    let event = Event::default().event("change").data("*");
                    return Some((Ok(event), (web, s, feed)));
                }
                Ok(Err(RecvError::Closed)) => return None,
                Err(_) => {
                    // A store that cannot answer now ends no session.
                    let ended = matches!(web.inner.sessions.get(&s.token).await, Ok(None));
                    if ended {
                        return None;
                    }
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(TICK))
}
