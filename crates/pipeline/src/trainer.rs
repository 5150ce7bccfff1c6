//! The background trainer: teaches the Bayes models what users' moves in
//! and out of Junk said. The store records those moves as training events
//! inside the move itself (whichever door made it); this task consumes
//! them, teaching the server's model and the user's own.

use std::sync::Arc;
use std::time::Duration;

use store::MailStore;

use crate::SERVER_MODEL;

/// How long the trainer waits between looks at the pending events.
const TRAINER_INTERVAL: Duration = Duration::from_secs(5);
/// Events taught in one pass.
const TRAINER_BATCH: usize = 100;

/// Runs for as long as the server does, teaching every pending event.
/// Errors are logged and the event left pending, to be tried again.
pub async fn run_trainer(store: Arc<dyn MailStore>) {
    let mut every = tokio::time::interval(TRAINER_INTERVAL);
    loop {
        every.tick().await;
        while let Ok(n) = teach_pending(&*store).await {
            if n < TRAINER_BATCH {
                break;
            }
        }
    }
}

/// One pass: teaches up to a batch of pending events and says how many it
/// finished (a full batch means more may wait). Each event is taught and removed in one transaction, so a crash
/// neither loses nor repeats one.
pub async fn teach_pending(store: &dyn MailStore) -> store::Result<usize> {
    let events = store
        .pending_training(TRAINER_BATCH)
        .await
        .inspect_err(|e| {
            tracing::warn!("spam trainer: cannot read the training events: {e}");
        })?;
    let mut finished = 0;
    for event in events {
        // The message may be gone already (expunged and collected): the
        // event is dropped untaught.
        let (tokens, subject) = match store.read_blob(&event.blob).await {
            Ok(raw) => (Some(spam::tokens::tokens(&raw)), subject_of(&raw)),
            Err(store::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                (None, String::new())
            }
            Err(e) => {
                tracing::warn!("spam trainer: cannot read a message to train on: {e}");
                continue;
            }
        };
        let scopes = [SERVER_MODEL, event.account.scope()];
        match store
            .finish_training(&event, &scopes, tokens.as_deref(), &subject)
            .await
        {
            Ok(()) => {
                finished += 1;
                if tokens.is_some() {
                    let kind = if event.spam { "spam" } else { "ham" };
                    tracing::info!(
                        "spam trainer: account {} taught a message as {kind}: {subject:?}",
                        event.account
                    );
                }
            }
            Err(e) => tracing::warn!("spam trainer: {e}"),
        }
    }
    Ok(finished)
}

/// A message's subject as the training log keeps it (empty without one).
fn subject_of(raw: &[u8]) -> String {
    mime::message::parse(raw)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}
