//! The change feed across nodes: every writing transaction NOTIFYs
//! [`CHANNEL`] (delivered at commit, never for a rollback), and each node
//! LISTENs on a connection of its own and relays other nodes' notices to
//! its subscribers.
//!
//! A notice only says "look": sessions read what changed from the
//! mailbox's MODSEQ. When the listening connection drops, notices sent
//! meanwhile are lost, so after every reconnect the node compares each
//! mailbox's HIGHESTMODSEQ, and the accounts, with what it last told, and
//! tells every difference: a session may look once too often, never miss
//! a change.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio_postgres::AsyncMessage;

use super::*;

/// How long the listener waits before connecting again after a failure.
const RECONNECT: Duration = Duration::from_secs(1);

impl Feed for PgStore {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    fn watch_other_processes(&self) {
        if self.listening.swap(true, Ordering::SeqCst) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move { store.listen().await });
    }
}

/// What the node last told of each mailbox and which accounts it knew.
#[derive(Default)]
struct Told {
    modseqs: HashMap<i64, (i64, i64)>,
    accounts: HashSet<i64>,
    /// False until the first look: nothing is told then, only learned.
    started: bool,
}

impl PgStore {
    /// Listens until the process ends, connecting again whenever the
    /// connection drops.
    async fn listen(&self) {
        let mut told = Told::default();
        loop {
            if let Err(e) = self.listen_once(&mut told).await {
                tracing::warn!("change feed: {e}; listening again in {RECONNECT:?}");
            }
            tokio::time::sleep(RECONNECT).await;
        }
    }

    async fn listen_once(&self, told: &mut Told) -> Result<()> {
        // Named, so that an operator (and a test) can tell it apart.
        let mut config = self.config.clone();
        config.application_name("satchel feed");
        let (client, mut connection) = config.connect(self.tls.clone()).await?;
        let (notices, mut heard) = tokio::sync::mpsc::unbounded_channel();
        // The connection's messages (the notices among them) come off its
        // stream, which must be polled for the client to work at all.
        let driver = tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if notices.send(n.payload().to_string()).is_err() {
                            return;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::warn!("change feed: the listening connection failed: {e}");
                        return;
                    }
                    None => return,
                }
            }
        });
        let listening = async {
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            // Listening now: whatever committed before is in the tables.
            self.catch_up(&client, told).await?;
            while let Some(payload) = heard.recv().await {
                if let Some(change) = self.heard(&payload) {
                    if change.modseq != Change::ACCOUNT_REMOVED && change.mailbox_id.0 != 0 {
                        let e = told.modseqs.entry(change.mailbox_id.0).or_default();
                        e.0 = change.account_id.0;
                        e.1 = e.1.max(change.modseq as i64);
                    }
                    let _ = self.feed.send(change);
                }
            }
            Ok::<_, Error>(())
        };
        let done = listening.await;
        driver.abort();
        done?;
        Err(Error::Db("the listening connection closed".into()))
    }

    /// Another node's notice as a change; `None` for this node's own (its
    /// subscribers were told at commit) and for anything unreadable.
    fn heard(&self, payload: &str) -> Option<Change> {
        let mut parts = payload.split(' ').map(str::parse::<u64>);
        let (Some(Ok(origin)), Some(Ok(account)), Some(Ok(mailbox)), Some(Ok(modseq))) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        (origin as i64 != self.origin).then_some(Change {
            account_id: AccountId(account as i64),
            mailbox_id: MailboxId(mailbox as i64),
            modseq,
        })
    }

    /// Tells every change since the last look: mailboxes whose
    /// HIGHESTMODSEQ moved, mailboxes gone and made (as a change at
    /// MODSEQ 0), and accounts removed.
    async fn catch_up(&self, c: &tokio_postgres::Client, told: &mut Told) -> Result<()> {
        let now: HashMap<i64, (i64, i64)> = c
            .query("SELECT id, account_id, highestmodseq FROM mailboxes", &[])
            .await?
            .iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect();
        let accounts: HashSet<i64> = c
            .query("SELECT id FROM accounts", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if told.started {
            let send = |account: i64, mailbox: i64, modseq: u64| {
                let _ = self.feed.send(Change {
                    account_id: AccountId(account),
                    mailbox_id: MailboxId(mailbox),
                    modseq,
                });
            };
            for (id, (account, modseq)) in &now {
                match told.modseqs.get(id) {
                    Some((_, old)) if old == modseq => {}
                    Some(_) => send(*account, *id, *modseq as u64),
                    // Made meanwhile (MODSEQ 0 says so), and perhaps
                    // written to since.
                    None => {
                        send(*account, *id, 0);
                        if *modseq > 1 {
                            send(*account, *id, *modseq as u64);
                        }
                    }
                }
            }
            for (id, (account, _)) in &told.modseqs {
                if !now.contains_key(id) {
                    send(*account, *id, 0);
                }
            }
            for account in told.accounts.difference(&accounts) {
                send(*account, 0, Change::ACCOUNT_REMOVED);
            }
        }
        told.modseqs = now;
        told.accounts = accounts;
        told.started = true;
        Ok(())
    }
}
