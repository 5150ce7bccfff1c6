//! NOTIFY (RFC 5465): one connection watches the selected mailbox and any
//! others, and is told of changes as they happen, between commands and
//! not only in IDLE. The selected mailbox's changes come as the usual
//! EXISTS, EXPUNGE and FETCH; another mailbox's as STATUS (MESSAGES,
//! UIDNEXT, UNSEEN, and HIGHESTMODSEQ under CONDSTORE); names and
//! subscriptions as LIST.

use std::collections::{BTreeSet, HashMap};

use imap_proto::{
    FetchAttr, NotifyEvent, NotifyFilter, NotifySet, SeqNum, SequenceSet, StatusItem,
};
use store::{Change, MailboxId};

use super::*;

/// What a session watches, and what it last told.
pub(super) struct Watch {
    /// The SELECTED or SELECTED-DELAYED group, when given.
    selected: Option<Selected>,
    /// The groups for other mailboxes.
    others: Vec<(Filter, Events)>,
    /// What the last STATUS of each watched mailbox said.
    told: HashMap<MailboxId, Told>,
    /// The account's mailbox names as the client last heard them.
    names: HashMap<MailboxId, String>,
    subscribed: BTreeSet<String>,
    /// Changes heard while a command ran (another mailbox's), told once
    /// the session waits again.
    pub(super) pending: Vec<Change>,
    /// Changes were lost to a lagging feed meanwhile: NOTIFICATIONOVERFLOW
    /// is due.
    pub(super) missed: bool,
}

struct Selected {
    /// Expunges wait for a command that may tell them (RFC 5465 6.1).
    delayed: bool,
    /// What MessageNew asked to be fetched of each new message.
    fetch: Vec<FetchAttr>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Events {
    /// MessageNew and MessageExpunge (only ever together).
    messages: bool,
    flags: bool,
    names: bool,
    subscriptions: bool,
}

enum Filter {
    Inboxes,
    Personal,
    Subscribed,
    Subtree(Vec<String>),
    Mailboxes(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Told {
    messages: u32,
    uidnext: u32,
    unseen: u32,
    modseq: u64,
}

/// The events NOTIFY watches here, named when one is refused.
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange";

impl Session {
    /// NOTIFY SET or NONE.
    pub(super) async fn notify(&mut self, set: Option<NotifySet>) -> Done {
        let Some(set) = set else {
            self.notify = None;
            return ok("NOTIFY completed; nothing is watched now.");
        };
        let mut watch = Watch {
            selected: None,
            others: Vec::new(),
            told: HashMap::new(),
            names: HashMap::new(),
            subscribed: BTreeSet::new(),
            pending: Vec::new(),
            missed: false,
        };
        for group in &set.groups {
            let mut events = Events::default();
            let (mut new, mut expunge) = (false, false);
            let mut fetch = Vec::new();
            for e in &group.events {
                match e {
                    NotifyEvent::MessageNew(atts) => {
                        new = true;
                        fetch = atts.clone();
                    }
                    NotifyEvent::MessageExpunge => expunge = true,
                    NotifyEvent::FlagChange => events.flags = true,
                    NotifyEvent::MailboxName => events.names = true,
                    NotifyEvent::SubscriptionChange => events.subscriptions = true,
                    NotifyEvent::Other(name) => {
                        return no_code(
                            format!("BADEVENT ({name})"),
                            format!("This server tells of {SUPPORTED} only."),
                        );
                    }
                }
            }
            // RFC 5465 5.2 and 5.3: the two come together. (FlagChange
            // alone is taken, as Dovecot takes it.)
            if new != expunge {
                return bad("MessageNew and MessageExpunge must be asked for together.");
            }
            events.messages = new;
            let selected = matches!(
                group.filter,
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed
            );
            if !fetch.is_empty() && !selected {
                return bad("MessageNew with FETCH items is for the selected mailbox only.");
            }
            let names = |list: &[MailboxArg]| -> Result<Vec<String>, Done> {
                list.iter().map(|m| self.mailbox_name(m)).collect()
            };
            let filter = match &group.filter {
                NotifyFilter::Selected | NotifyFilter::SelectedDelayed => {
                    if watch.selected.is_some() {
                        return bad("Only one SELECTED or SELECTED-DELAYED group may be given.");
                    }
                    if events.messages {
                        watch.selected = Some(Selected {
                            delayed: group.filter == NotifyFilter::SelectedDelayed,
                            fetch,
                        });
                    }
                    continue;
                }
                NotifyFilter::Inboxes => Filter::Inboxes,
                NotifyFilter::Personal => Filter::Personal,
                NotifyFilter::Subscribed => Filter::Subscribed,
                NotifyFilter::Subtree(list) => match names(list) {
                    Ok(n) => Filter::Subtree(n),
                    Err(done) => return done,
                },
                NotifyFilter::Mailboxes(list) => match names(list) {
                    Ok(n) => Filter::Mailboxes(n),
                    Err(done) => return done,
                },
            };
            watch.others.push((filter, events));
        }
        let store = self.server.store.clone();
        let (mailboxes, subscriptions) = match self.mailboxes_and_subscriptions().await {
            Ok(both) => both,
            Err(done) => return done,
        };
        watch.subscribed = subscriptions.into_iter().collect();
        watch.names = mailboxes.iter().map(|m| (m.id, m.name.clone())).collect();
        if self.feed.is_none() {
            self.feed = Some(store.subscribe());
        }
        // What each watched mailbox says now: told at once with STATUS,
        // and the baseline later changes are judged against.
        let selected_id = self.selected.as_ref().map(|v| v.mailbox.id);
        let items = self.notify_items();
        for m in &mailboxes {
            if watch.counts_of(m.id, &m.name, selected_id).is_none() {
                continue;
            }
            let status = match store.status(m.id).await {
                Ok(s) => s,
                Err(e) => return store_failure(e),
            };
            watch.told.insert(m.id, Told::of(m, &status));
            if set.status {
                self.status_line(m, &status, &items);
            }
        }
        self.notify = Some(watch);
        ok("NOTIFY completed.")
    }

    /// Waits until the client sends something, telling it of changes
    /// meanwhile: NOTIFY's wait between commands.
    pub(super) async fn wait_notifying(&mut self) -> Result<(), Error> {
        let (pending, missed) = self
            .notify
            .as_mut()
            .map(|w| (std::mem::take(&mut w.pending), w.missed))
            .unwrap_or_default();
        if missed {
            self.overflowed();
            self.catch_up(false, None).await?;
        }
        for change in pending {
            self.notify_change(change).await?;
        }
        self.flush().await?;
        while self.notify.is_some() {
            let mut feed = self.feed.take();
            let heard = tokio::select! {
                // Cancel-safe: nothing is taken from the stream here.
                _ = self.io.as_mut().ok_or("no stream")?.fill() => None,
                change = async {
                    match feed.as_mut() {
                        Some(f) => f.recv().await,
                        None => std::future::pending().await,
                    }
                } => Some(change),
            };
            self.feed = feed;
            match heard {
                None => return Ok(()),
                Some(Ok(change)) => self.notify_change(change).await?,
                Some(Err(broadcast::error::RecvError::Lagged(_))) => {
                    self.overflowed();
                    self.catch_up(false, None).await?;
                }
                Some(Err(broadcast::error::RecvError::Closed)) => self.feed = None,
            }
            self.flush().await?;
        }
        Ok(())
    }

    /// One change heard while NOTIFY is on.
    pub(super) async fn notify_change(&mut self, change: Change) -> Result<(), Error> {
        // A removal is the session's end, which its stop signal brings.
        if change.account_id != self.account_id() || change.removes_account() {
            return Ok(());
        }
        let Some(watch) = self.notify.as_ref() else {
            return Ok(());
        };
        let selected_id = self.selected.as_ref().map(|v| v.mailbox.id);
        if Some(change.mailbox_id) == selected_id {
            if let Some(sel) = &watch.selected {
                let (fetch, expunges) = (sel.fetch.clone(), !sel.delayed);
                self.tell_selected(&change, expunges, &fetch).await?;
            }
            if change.modseq != 0 {
                return Ok(());
            }
        }
        let Some(watch) = self.notify.as_ref() else {
            return Ok(());
        };
        let known = watch.names.contains_key(&change.mailbox_id);
        if change.mailbox_id == MailboxId(0) {
            self.tell_subscriptions().await
        } else if change.modseq == 0 || !known {
            self.tell_names().await
        } else {
            self.tell_status(change.mailbox_id).await
        }
    }

    /// The selected mailbox's change, told as after a command; with the
    /// FETCH items MessageNew asked for each new message.
    async fn tell_selected(
        &mut self,
        change: &Change,
        expunges: bool,
        fetch: &[FetchAttr],
    ) -> Result<(), Error> {
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        if !view.is_news(change) {
            return Ok(());
        }
        let last_uid = view.messages.last().map_or(0, |m| m.uid);
        self.catch_up(expunges, View::covering(change)).await?;
        let newest = self
            .selected
            .as_ref()
            .and_then(|v| v.messages.last())
            .map_or(0, |m| m.uid);
        if !fetch.is_empty() && newest > last_uid {
            let set =
                SequenceSet::Ranges(vec![(SeqNum::Value(last_uid + 1), SeqNum::Value(newest))]);
            self.fetch(true, &set, fetch, None).await?;
        }
        Ok(())
    }

    /// STATUS of another mailbox whose messages changed, when a group
    /// watches it and what changed is what the group asked for.
    async fn tell_status(&mut self, mailbox: MailboxId) -> Result<(), Error> {
        let Some(watch) = self.notify.as_ref() else {
            return Ok(());
        };
        let Some(name) = watch.names.get(&mailbox) else {
            return Ok(());
        };
        let selected_id = self.selected.as_ref().map(|v| v.mailbox.id);
        let Some(events) = watch.counts_of(mailbox, name, selected_id) else {
            return Ok(());
        };
        let store = self.server.store.clone();
        let (Some(m), status) = (
            store.mailbox_by_id(mailbox).await?,
            store.status(mailbox).await?,
        ) else {
            return Ok(());
        };
        let now = Told::of(&m, &status);
        let Some(watch) = self.notify.as_mut() else {
            return Ok(());
        };
        let before = watch.told.insert(mailbox, now);
        let tell = match before {
            None => true,
            Some(b) => {
                let messages = (b.messages, b.uidnext) != (now.messages, now.uidnext);
                let flags = (b.unseen, b.modseq) != (now.unseen, now.modseq);
                (events.messages && messages) || (events.flags && flags)
            }
        };
        if tell {
            let items = self.notify_items();
            self.status_line(&m, &status, &items);
        }
        Ok(())
    }

    /// The account's mailboxes changed (created, deleted, renamed): LIST
    /// for each change a group with MailboxName watches (RFC 5465 5.4).
    async fn tell_names(&mut self) -> Result<(), Error> {
        let store = self.server.store.clone();
        let mailboxes = store.list_mailboxes(self.account_id()).await?;
        let utf8 = self.utf8_names();
        let Some(watch) = self.notify.as_mut() else {
            return Ok(());
        };
        let now: HashMap<MailboxId, String> =
            mailboxes.iter().map(|m| (m.id, m.name.clone())).collect();
        let mut out = Vec::new();
        let list = |out: &mut Vec<u8>, attrs: &str, name: &str, old: Option<&str>| {
            out.extend_from_slice(format!("* LIST ({attrs}) \"/\" ").as_bytes());
            response::mailbox(out, name, utf8);
            if let Some(old) = old {
                out.extend_from_slice(b" (\"OLDNAME\" (");
                response::mailbox(out, old, utf8);
                out.extend_from_slice(b"))");
            }
            out.extend_from_slice(b"\r\n");
        };
        for (id, old) in &watch.names {
            match now.get(id) {
                None if watch.events_for(old).names => list(&mut out, "\\NonExistent", old, None),
                Some(new) if new != old && watch.events_for(new).names => {
                    list(&mut out, "", new, Some(old))
                }
                _ => {}
            }
        }
        for m in &mailboxes {
            if !watch.names.contains_key(&m.id) && watch.events_for(&m.name).names {
                list(&mut out, "", &m.name, None);
            }
        }
        watch.told.retain(|id, _| now.contains_key(id));
        watch.names = now;
        self.out.extend_from_slice(&out);
        Ok(())
    }

    /// Subscriptions changed: LIST with or without \Subscribed for each
    /// name a group with SubscriptionChange watches (RFC 5465 5.5).
    async fn tell_subscriptions(&mut self) -> Result<(), Error> {
        let store = self.server.store.clone();
        let now: BTreeSet<String> = store
            .subscriptions(self.account_id())
            .await?
            .into_iter()
            .collect();
        let utf8 = self.utf8_names();
        let Some(watch) = self.notify.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let changed = now
            .difference(&watch.subscribed)
            .map(|n| (n, "\\Subscribed"))
            .chain(watch.subscribed.difference(&now).map(|n| (n, "")));
        for (name, attrs) in changed {
            if watch.events_for(name).subscriptions {
                out.extend_from_slice(format!("* LIST ({attrs}) \"/\" ").as_bytes());
                response::mailbox(&mut out, name, utf8);
                out.extend_from_slice(b"\r\n");
            }
        }
        watch.subscribed = now;
        self.out.extend_from_slice(&out);
        Ok(())
    }

    /// Changes were missed (the feed overflowed): NOTIFICATIONOVERFLOW,
    /// and nothing is watched until the client asks again (RFC 5465 5.8).
    /// The caller brings the selected mailbox up to date.
    pub(super) fn overflowed(&mut self) {
        if self.notify.take().is_some() {
            self.line("* OK [NOTIFICATIONOVERFLOW] Too many changes at once; NOTIFY SET again.");
        }
    }

    /// What a NOTIFY STATUS says (RFC 5465 5.2).
    fn notify_items(&self) -> Vec<StatusItem> {
        let mut items = vec![
            StatusItem::Messages,
            StatusItem::UidNext,
            StatusItem::Unseen,
        ];
        if self.condstore() {
            items.push(StatusItem::HighestModSeq);
        }
        items
    }
}

impl Told {
    fn of(m: &store::Mailbox, s: &store::MailboxStatus) -> Told {
        Told {
            messages: s.messages,
            uidnext: m.uidnext,
            unseen: s.unseen,
            modseq: m.highestmodseq,
        }
    }
}

impl Watch {
    /// The events told as STATUS for mailbox `id` called `name`: `None`
    /// when no group watches its messages or flags, or when it is the
    /// selected mailbox and a SELECTED group tells of it instead.
    fn counts_of(&self, id: MailboxId, name: &str, selected: Option<MailboxId>) -> Option<Events> {
        let events = self.events_for(name);
        let watched = events.messages || events.flags;
        let own_group = Some(id) == selected && self.selected.is_some();
        (watched && !own_group).then_some(events)
    }

    /// What the groups watching `name` watch, together.
    fn events_for(&self, name: &str) -> Events {
        let mut all = Events::default();
        for (filter, e) in &self.others {
            let hit = match filter {
                Filter::Inboxes => name == "INBOX",
                Filter::Personal => true,
                Filter::Subscribed => self.subscribed.contains(name),
                Filter::Subtree(roots) => roots.iter().any(|r| {
                    name == r
                        || name
                            .strip_prefix(r.as_str())
                            .is_some_and(|s| s.starts_with('/'))
                }),
                Filter::Mailboxes(list) => list.iter().any(|n| n == name),
            };
            if hit {
                all.messages |= e.messages;
                all.flags |= e.flags;
                all.names |= e.names;
                all.subscriptions |= e.subscriptions;
            }
        }
        all
    }
}
