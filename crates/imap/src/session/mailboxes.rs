//! Commands on mailboxes (RFC 9051 6.3): SELECT/EXAMINE, CREATE, DELETE,
//! RENAME, SUBSCRIBE, LIST, STATUS and APPEND.

use super::*;

impl Session {
    /// A mailbox name from the wire: modified UTF-7, or UTF-8 once the
    /// client enabled IMAP4rev2 or UTF8=ACCEPT.
    pub(super) fn mailbox_name(&self, arg: &MailboxArg) -> Result<String, Done> {
        let name = if self.utf8_names() {
            String::from_utf8(arg.0.clone()).ok()
        } else {
            std::str::from_utf8(&arg.0).ok().and_then(utf7::decode)
        };
        // A well-formed command with a name no mailbox can have: NO, as
        // Dovecot answers (RFC 9051 6.3.4: "can't create mailbox with that
        // name"), not BAD, which would say the command itself is broken.
        let name = name.ok_or_else(|| {
            no(if self.utf8_names() {
                "The mailbox name is not UTF-8."
            } else {
                "The mailbox name is not valid modified UTF-7."
            })
        })?;
        store::names::normalize_mailbox_name(name.trim_end_matches(store::DELIMITER))
            .map_err(store_failure)
    }

    /// The logged-in account (commands that use it run only after
    /// LOGIN; before, an id no account has).
    pub(super) fn account_id(&self) -> store::AccountId {
        self.account.as_ref().map_or(store::AccountId(0), |a| a.id)
    }

    pub(super) async fn find_mailbox(&self, arg: &MailboxArg) -> Result<Mailbox, Done> {
        let name = self.mailbox_name(arg)?;
        match self.server.store.mailbox(self.account_id(), &name).await {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(no_code("NONEXISTENT", format!("No mailbox {name}."))),
            Err(e) => Err(store_failure(e)),
        }
    }

    pub(super) async fn select(
        &mut self,
        arg: &MailboxArg,
        read_only: bool,
        qresync: Option<&Qresync>,
    ) -> Result<Done, Error> {
        self.end_live();
        if self.selected.take().is_some() {
            // RFC 9051 7.1: the previous mailbox is closed first.
            self.line("* OK [CLOSED] Previous mailbox closed.");
        }
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(done) => return Ok(done),
        };
        if self.feed.is_none() {
            self.feed = Some(self.server.store.subscribe());
        }
        // Drained before the view is read: a change after this point is
        // either in the view or still waiting on the feed, never lost.
        if let Some(feed) = self.feed.as_mut() {
            while feed.try_recv().is_ok() {}
        }
        let store = self.server.store.clone();
        let view = match View::open(store.as_ref(), mailbox, read_only).await {
            Ok(v) => v,
            Err(e) => return Ok(store_failure(e)),
        };
        let flags = view.flags_lines();
        let mut lines = vec![
            format!("* {} EXISTS", view.exists()),
            flags.trim_end().to_string(),
            format!(
                "* OK [UIDVALIDITY {}] UIDs valid.",
                view.mailbox.uidvalidity
            ),
            format!(
                "* OK [UIDNEXT {}] Predicted next UID.",
                view.mailbox.uidnext
            ),
            // RFC 8474 4.1.
            format!(
                "* OK [MAILBOXID ({})] Ok",
                crate::objectid::mailbox_id(&view.mailbox)
            ),
        ];
        // RFC 7162 3.1.2.1, once CONDSTORE is on (SELECT (CONDSTORE)
        // turned it on before this), as the reference Dovecot answers.
        if self.condstore() {
            lines.push(format!(
                "* OK [HIGHESTMODSEQ {}] Highest.",
                view.mailbox.highestmodseq.max(1)
            ));
        }
        if !self.rev2() {
            lines.insert(1, format!("* {} RECENT", view.recent.len()));
            if let Some(i) = view
                .messages
                .iter()
                .position(|m| !m.flags.contains(Flags::SEEN))
            {
                lines.push(format!("* OK [UNSEEN {}] First unseen.", i + 1));
            }
        }
        for l in lines {
            self.line(&l);
        }
        let code = if read_only { "READ-ONLY" } else { "READ-WRITE" };
        let what = if read_only { "EXAMINE" } else { "SELECT" };
        if self.rev2() {
            // RFC 9051 6.3.2: the mailbox's LIST response, with its name.
            let mut line = b"* LIST () \"/\" ".to_vec();
            response::mailbox(&mut line, &view.mailbox.name, true);
            line.extend_from_slice(b"\r\n");
            self.out.extend_from_slice(&line);
        }
        self.selected = Some(view);
        self.saved = None;
        if let Some(q) = qresync
            && let Err(e) = self.resync_lines(q).await
        {
            return Ok(store_failure(e));
        }
        Ok(ok_code(code, format!("{what} completed.")))
    }

    pub(super) async fn create(&mut self, arg: &MailboxArg, special_use: &[String]) -> Done {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(d) => return d,
        };
        let use_attr = match special_use {
            [] => None,
            [one] => match SpecialUse::parse(one) {
                Some(u) => Some(u),
                None => {
                    return no_code(
                        "USEATTR",
                        format!("{one} is not a special use Satchel knows."),
                    );
                }
            },
            _ => return no_code("USEATTR", "One special use per mailbox."),
        };
        match self
            .server
            .store
            .create_mailbox(self.account_id(), &name, use_attr)
            .await
        {
            // RFC 8474 4.1: the new mailbox's ID.
            Ok(m) => ok_code(
                format!("MAILBOXID ({})", crate::objectid::mailbox_id(&m)),
                "CREATE completed.",
            ),
            Err(e) => store_failure(e),
        }
    }

    pub(super) async fn delete(&mut self, arg: &MailboxArg) -> Done {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(d) => return d,
        };
        match self
            .server
            .store
            .delete_mailbox(self.account_id(), &name)
            .await
        {
            Ok(()) => ok("DELETE completed."),
            Err(e) => store_failure(e),
        }
    }

    pub(super) async fn rename(&mut self, from: &MailboxArg, to: &MailboxArg) -> Done {
        let (from, to) = match (self.mailbox_name(from), self.mailbox_name(to)) {
            (Ok(f), Ok(t)) => (f, t),
            (Err(d), _) | (_, Err(d)) => return d,
        };
        match self
            .server
            .store
            .rename_mailbox(self.account_id(), &from, &to)
            .await
        {
            Ok(()) => ok("RENAME completed."),
            Err(e) => store_failure(e),
        }
    }

    pub(super) async fn subscribe(&mut self, arg: &MailboxArg, on: bool) -> Done {
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(d) => return d,
        };
        match self
            .server
            .store
            .set_subscribed(self.account_id(), &name, on)
            .await
        {
            Ok(()) => ok(if on {
                "SUBSCRIBE completed."
            } else {
                "UNSUBSCRIBE completed."
            }),
            Err(e) => store_failure(e),
        }
    }

    /// The account's mailboxes and subscribed names, as LIST and NOTIFY
    /// start from them.
    pub(super) async fn mailboxes_and_subscriptions(
        &self,
    ) -> Result<(Vec<Mailbox>, Vec<String>), Done> {
        let store = self.server.store.clone();
        let account = self.account_id();
        match (
            store.list_mailboxes(account).await,
            store.subscriptions(account).await,
        ) {
            (Ok(m), Ok(s)) => Ok((m, s)),
            (Err(e), _) | (_, Err(e)) => Err(store_failure(e)),
        }
    }

    pub(super) async fn list(&mut self, cmd: &ListCommand) -> Done {
        let store = self.server.store.clone();
        let account = self.account_id();
        let (mailboxes, subscriptions) = match self.mailboxes_and_subscriptions().await {
            Ok(both) => both,
            Err(done) => return done,
        };
        let kind = match cmd.kind {
            ListKind::List => "LIST",
            ListKind::Lsub => "LSUB",
            ListKind::Xlist => "XLIST",
        };
        // RFC 5258 3.1: known selection options; RECURSIVEMATCH only with another.
        for option in &cmd.selection {
            if !matches!(
                option.as_str(),
                "SUBSCRIBED" | "REMOTE" | "RECURSIVEMATCH" | "SPECIAL-USE"
            ) {
                return bad(format!("Unknown LIST selection option {option}."));
            }
        }
        let recursive = cmd.selection.iter().any(|s| s == "RECURSIVEMATCH");
        if recursive
            && !cmd
                .selection
                .iter()
                .any(|s| s != "RECURSIVEMATCH" && s != "REMOTE")
        {
            return bad("RECURSIVEMATCH needs another selection option.");
        }
        // RFC 5258 3.2: an unknown return option is refused too.
        if let Some(ListReturn::Other(option)) =
            cmd.ret.iter().find(|r| matches!(r, ListReturn::Other(_)))
        {
            return bad(format!("Unknown LIST return option {option}."));
        }
        // These checks come before any answer that takes a shortcut (no
        // name can match, the delimiter query), so no malformed command
        // gets through.
        let decode = |arg: &MailboxArg| -> Option<String> {
            if self.utf8_names() {
                String::from_utf8(arg.0.clone()).ok()
            } else {
                std::str::from_utf8(&arg.0).ok().and_then(utf7::decode)
            }
        };
        // A reference or pattern no mailbox name can match (not valid
        // modified UTF-7) is still a valid LIST: it matches nothing.
        let Some(reference) = decode(&cmd.reference) else {
            return ok(format!(
                "{kind} completed: the reference matches no mailbox name."
            ));
        };
        let mut patterns = Vec::new();
        for p in &cmd.patterns {
            if let Some(p) = decode(p) {
                patterns.push(format!("{reference}{p}"));
            }
        }
        if patterns.is_empty() {
            return ok(format!(
                "{kind} completed: the pattern matches no mailbox name."
            ));
        }
        if cmd.kind != ListKind::Lsub && patterns.iter().all(|p| p.is_empty()) {
            // RFC 9051 6.3.9: an empty pattern asks for the delimiter.
            self.line(&format!("* {kind} (\\Noselect) \"/\" \"\""));
            return ok(format!("{kind} completed."));
        }
        let only_subscribed =
            cmd.kind == ListKind::Lsub || cmd.selection.iter().any(|s| s == "SUBSCRIBED");
        let only_special = cmd.selection.iter().any(|s| s == "SPECIAL-USE");
        let show_subscribed = only_subscribed || cmd.ret.contains(&ListReturn::Subscribed);
        let status_items: Option<&Vec<StatusItem>> = cmd.ret.iter().find_map(|r| match r {
            ListReturn::Status(items) => Some(items),
            _ => None,
        });
        let mut lines = Vec::new();
        for e in list::entries(&mailboxes, &subscriptions) {
            if !patterns.iter().any(|p| list::matches(p, &e.name)) {
                continue;
            }
            // A subscribed child that no pattern lists itself.
            let hides_subscribed_child = || {
                let prefix = format!("{}/", e.name);
                subscriptions.iter().any(|n| {
                    n.starts_with(&prefix) && !patterns.iter().any(|p| list::matches(p, n))
                })
            };
            // RECURSIVEMATCH: the parent is listed with CHILDINFO saying
            // so, as Dovecot does (RFC 5258 4, example 9).
            let child_subscribed = recursive && only_subscribed && hides_subscribed_child();
            // RFC 3501 6.3.9: LSUB with % lists the unsubscribed parent,
            // flagged \Noselect.
            let lsub_parent =
                cmd.kind == ListKind::Lsub && !e.subscribed && hides_subscribed_child();
            if only_subscribed && !e.subscribed && !child_subscribed && !lsub_parent {
                continue;
            }
            if only_special && e.special_use.is_none() {
                continue;
            }
            if !e.exists && !e.has_children && !only_subscribed {
                continue;
            }
            let mut attrs: Vec<&str> = Vec::new();
            if lsub_parent {
                attrs.push("\\Noselect");
            } else if !e.exists {
                attrs.push(if only_subscribed && !e.has_children {
                    "\\NonExistent"
                } else {
                    "\\Noselect"
                });
            }
            if cmd.kind != ListKind::Lsub {
                attrs.push(if e.has_children {
                    "\\HasChildren"
                } else {
                    "\\HasNoChildren"
                });
            }
            if show_subscribed && e.subscribed && cmd.kind != ListKind::Lsub {
                attrs.push("\\Subscribed");
            }
            if let Some(u) = e.special_use {
                attrs.push(u);
            }
            if cmd.kind == ListKind::Xlist && e.name == "INBOX" {
                attrs.push("\\Inbox");
            }
            let mut line = format!("* {kind} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            response::mailbox(&mut line, &e.name, self.utf8_names());
            if child_subscribed {
                line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            lines.push((line, e.exists.then_some(e.name)));
        }
        for (line, name) in lines {
            self.out.extend_from_slice(&line);
            self.out.extend_from_slice(b"\r\n");
            if let (Some(items), Some(name)) = (status_items, name)
                && let Ok(Some(m)) = store.mailbox(account, &name).await
                && let Err(e) = self.write_status(&m, items).await
            {
                return store_failure(e);
            }
        }
        ok(format!("{kind} completed."))
    }

    pub(super) async fn status(&mut self, arg: &MailboxArg, items: &[StatusItem]) -> Done {
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        match self.write_status(&mailbox, items).await {
            Ok(()) => ok("STATUS completed."),
            Err(e) => store_failure(e),
        }
    }

    pub(super) async fn write_status(
        &mut self,
        m: &Mailbox,
        items: &[StatusItem],
    ) -> store::Result<()> {
        let s = self.server.store.status(m.id).await?;
        self.status_line(m, &s, items);
        Ok(())
    }

    /// `* STATUS` of `m` from its counts `s`, read already.
    pub(super) fn status_line(
        &mut self,
        m: &Mailbox,
        s: &store::MailboxStatus,
        items: &[StatusItem],
    ) {
        let parts: Vec<String> = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => format!("MESSAGES {}", s.messages),
                StatusItem::Recent => format!("RECENT {}", s.recent),
                StatusItem::UidNext => format!("UIDNEXT {}", m.uidnext),
                StatusItem::UidValidity => format!("UIDVALIDITY {}", m.uidvalidity),
                StatusItem::Unseen => format!("UNSEEN {}", s.unseen),
                StatusItem::Deleted => format!("DELETED {}", s.deleted),
                StatusItem::Size => format!("SIZE {}", s.size),
                StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", m.highestmodseq.max(1)),
                StatusItem::AppendLimit => format!("APPENDLIMIT {MAX_MESSAGE_SIZE}"),
                // In the STORAGE resource's unit, 1024 octets, rounded up.
                StatusItem::DeletedStorage => {
                    format!("DELETED-STORAGE {}", s.deleted_size.div_ceil(1024))
                }
                StatusItem::MailboxId => format!("MAILBOXID ({})", crate::objectid::mailbox_id(m)),
            })
            .collect();
        let mut line = b"* STATUS ".to_vec();
        response::mailbox(&mut line, &m.name, self.utf8_names());
        line.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.out.extend_from_slice(&line);
    }

    pub(super) async fn append(&mut self, arg: &MailboxArg, messages: Vec<AppendMessage>) -> Done {
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) if d.code.as_deref() == Some("NONEXISTENT") => {
                return no_code("TRYCREATE", "No such mailbox; create it first.");
            }
            Err(d) => return d,
        };
        let messages = match self.catenated(messages).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let mut parsed = Vec::with_capacity(messages.len());
        for m in &messages {
            // RFC 6855 4: the UTF8 form only once UTF8=ACCEPT is on.
            if m.utf8 && !self.utf8_accept() {
                return bad("ENABLE UTF8=ACCEPT before APPEND with UTF8.");
            }
            if m.data.is_empty() {
                return no("An empty message cannot be stored.");
            }
            if m.data.contains(&0) && !m.binary {
                return no(
                    "A message with NUL bytes must be sent as a literal8 (RFC 3516 BINARY).",
                );
            }
            let (flags, keywords) = match split_flags(&m.flags) {
                Ok(f) => f,
                Err(d) => return d,
            };
            let date = m
                .date
                .map(|d| InternalDate {
                    unix: d.unix,
                    tz_minutes: d.tz_minutes,
                })
                .unwrap_or_else(InternalDate::now);
            parsed.push((mime::analyze(&m.data), flags, keywords, date));
        }
        let rule = self
            .account
            .as_ref()
            .and_then(|a| a.sent_copy)
            .unwrap_or(self.server.settings.sent_copy);
        let sent = mailbox.special_use == Some(SpecialUse::Sent)
            && rule == store::SentCopy::UnlessAppended;
        if sent
            && let [only] = messages.as_slice()
            && let Some(uid) = self.already_sent(&only.data, mailbox.id).await
        {
            return ok_code(
                format!("APPENDUID {} {uid}", mailbox.uidvalidity),
                "APPEND completed: the server had filed this message in Sent already.",
            );
        }
        let batch: Vec<NewMessage> = messages
            .iter()
            .zip(&parsed)
            .map(|(m, (a, flags, keywords, date))| NewMessage {
                raw: &m.data,
                size: a.size,
                flags: *flags,
                keywords: keywords.clone(),
                internal_date: *date,
                cache: store::MessageCache::from(a),
                spam: None,
            })
            .collect();
        // Into the mailbox this session has selected read-write: its \Recent
        // claim goes in the APPEND's own transaction.
        let claiming = self
            .selected
            .as_ref()
            .is_some_and(|v| v.mailbox.id == mailbox.id && !v.read_only);
        let added: Vec<(Flags, Vec<String>)> = batch
            .iter()
            .map(|m| (m.flags, m.keywords.clone()))
            .collect();
        let appended = if claiming {
            self.server
                .store
                .append_claiming(mailbox.id, batch)
                .await
                .map(|(done, claimed)| (done, Some(claimed)))
        } else {
            self.server
                .store
                .append_batch(mailbox.id, batch)
                .await
                .map(|done| (done, None))
        };
        let appended = appended.map(|(done, claimed)| {
            self.take_own_append(mailbox.id, &done, added, claimed);
            done
        });
        match appended {
            Ok(done) => {
                if mailbox.special_use == Some(SpecialUse::Sent) {
                    self.note_correspondents(&messages).await;
                }
                if sent {
                    self.note_sent(&messages, &done, mailbox.id).await;
                }
                let uids: Vec<u32> = done.iter().map(|d| d.uid).collect();
                let validity = done.first().map_or(mailbox.uidvalidity, |d| d.uidvalidity);
                ok_code(
                    format!("APPENDUID {validity} {}", uid_set(&uids)),
                    "APPEND completed.",
                )
            }
            Err(e) => store_failure(e),
        }
    }

    /// Shows this session's own APPEND into its selected mailbox without
    /// reading it back when nothing else changed there meanwhile (then the
    /// EXISTS goes out now); otherwise the next catch-up reads it, with the
    /// \Recent claim the APPEND made.
    fn take_own_append(
        &mut self,
        mailbox: store::MailboxId,
        done: &[store::Appended],
        added: Vec<(Flags, Vec<String>)>,
        claimed: Option<std::ops::Range<u32>>,
    ) {
        let rev2 = self.rev2();
        let Some(view) = self.selected.as_mut().filter(|v| v.mailbox.id == mailbox) else {
            return;
        };
        let entries = done
            .iter()
            .zip(added)
            .map(|(d, (flags, keywords))| Entry {
                uid: d.uid,
                modseq: d.modseq,
                flags,
                keywords: keywords.into_boxed_slice(),
            })
            .collect();
        if !view.took_own_append(entries, claimed.clone()) {
            view.claimed = claimed;
            return;
        }
        let mut lines = view.take_flags_due().unwrap_or_default();
        lines.push_str(&format!("* {} EXISTS\r\n", view.exists()));
        if !rev2 {
            lines.push_str(&format!("* {} RECENT\r\n", view.recent.len()));
        }
        self.out.extend_from_slice(lines.as_bytes());
    }

    /// The UID of the copy of this message (by Message-ID) the server
    /// filed into this Sent mailbox lately, when a client APPENDs it too.
    async fn already_sent(&self, data: &[u8], mailbox: store::MailboxId) -> Option<u32> {
        let account = self.account.as_ref()?;
        let id = mime::fields::value(data, "Message-ID")?;
        let since = store::unix_now() - store::SENT_WINDOW_SECS;
        match self.server.store.sent_copy(account.id, &id, since).await {
            Ok(Some((m, uid))) if m == mailbox => Some(uid),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cannot look up a Sent copy: {e}");
                None
            }
        }
    }

    /// Notes APPENDed Sent copies by Message-ID, so that the submission
    /// door files no second copy of a message the client sends after.
    async fn note_sent(
        &self,
        messages: &[AppendMessage],
        done: &[store::Appended],
        mailbox: store::MailboxId,
    ) {
        let Some(account) = &self.account else { return };
        for (m, d) in messages.iter().zip(done) {
            let Some(id) = mime::fields::value(&m.data, "Message-ID") else {
                continue;
            };
            if let Err(e) = self
                .server
                .store
                .note_sent(account.id, &id, mailbox, d.uid)
                .await
            {
                tracing::warn!("cannot note a Sent copy: {e}");
            }
        }
    }

    /// A client that files what it sent into Sent (most do, when they
    /// send through another server) tells us whom the user writes to:
    /// their replies are trusted correspondents' mail.
    pub(super) async fn note_correspondents(&self, messages: &[AppendMessage]) {
        let Some(account) = &self.account else { return };
        for m in messages {
            // Spammers put the user's own address in From: never trust it.
            let mut to = mime::address::recipients(&m.data);
            to.retain(|a| !a.eq_ignore_ascii_case(&account.address));
            if let Err(e) = self
                .server
                .store
                .record_correspondents(account.id, &to)
                .await
            {
                tracing::warn!("cannot note {}'s correspondents: {e}", account.address);
            }
        }
    }
}
