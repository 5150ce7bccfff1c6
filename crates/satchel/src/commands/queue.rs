//! `satchel queue list|retry|remove`: the outbound queue, the same rows
//! the running server delivers from.

use anyhow::bail;
use clap::Subcommand;
use store::{MailStore, Queued};

#[derive(Subcommand)]
pub enum QueueCommand {
    /// One line per queued message: its ID, the sender, then each
    /// recipient's state, next try and last answer.
    List {
        /// One JSON object per message instead, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Makes every recipient of the message due now; a running server
    /// tries it within a second.
    Retry { id: String },
    /// Removes the message from the queue without sending it.
    Remove { id: String },
}

pub async fn run(cmd: QueueCommand, store: &dyn MailStore) -> anyhow::Result<()> {
    match cmd {
        QueueCommand::List { json } => {
            for message in store.queue().await? {
                super::say(&if json {
                    as_json(&message)
                } else {
                    as_line(&message)
                })?;
            }
            Ok(())
        }
        QueueCommand::Retry { id } => {
            if !store.retry_now(&id).await? {
                bail!("no queued message {id}; `satchel queue list` shows the queue");
            }
            super::say(&format!("{id} will be tried now"))
        }
        QueueCommand::Remove { id } => {
            if !store.dequeue(&id).await? {
                bail!("no queued message {id}; `satchel queue list` shows the queue");
            }
            super::say(&format!("{id} removed from the queue"))
        }
    }
}

/// `ID <sender> size=N rcpt=<a> state=queued attempts=2 next=TIME answer="..."; ...`
fn as_line(m: &Queued) -> String {
    let rcpts: Vec<String> = m
        .recipients
        .iter()
        .map(|r| {
            format!(
                "<{}> {} attempts={} next={} last={:?}",
                r.address,
                r.state.as_str(),
                r.attempts,
                when(r.next_try),
                r.last_answer.as_deref().unwrap_or("-"),
            )
        })
        .collect();
    format!(
        "{} <{}> size={} queued={} {}",
        m.qid,
        m.sender,
        m.size,
        when(m.created),
        rcpts.join("; ")
    )
}

fn as_json(m: &Queued) -> String {
    let rcpts: Vec<serde_json::Value> = m
        .recipients
        .iter()
        .map(|r| {
            serde_json::json!({
                "address": r.address,
                "state": r.state.as_str(),
                "attempts": r.attempts,
                "next_try": when(r.next_try),
                "last_answer": r.last_answer,
            })
        })
        .collect();
    serde_json::json!({
        "id": m.qid,
        "sender": m.sender,
        "size": m.size,
        "queued": when(m.created),
        "recipients": rcpts,
    })
    .to_string()
}

/// Unix seconds as RFC 3339 UTC.
fn when(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
