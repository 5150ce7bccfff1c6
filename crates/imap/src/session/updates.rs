//! Telling a session about other sessions' changes: the untagged updates
//! after a command (RFC 9051 7.5.1) and IDLE (RFC 2177).

use super::*;

impl Session {
    /// Catches up with other sessions' changes to the selected mailbox and
    /// tells the client what it may be told now.
    pub(super) async fn send_updates(&mut self, expunges_allowed: bool) -> Result<(), Error> {
        let Some(feed) = self.feed.as_mut() else {
            return Ok(());
        };
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        // Only look again when something changed in this mailbox that the
        // view has not taken in (its own changes it has).
        // What the catch-up must cover: the newest notice, or everything
        // (None) after a rename, a deletion or missed notices.
        let mut changed = false;
        let mut covering = Some(0);
        // Other mailboxes' changes, for NOTIFY to tell once the command
        // is done.
        let mut others = Vec::new();
        let mut lagged = false;
        loop {
            match feed.try_recv() {
                Ok(c) if view.is_news(&c) => {
                    changed = true;
                    covering = covering.zip(View::covering(&c)).map(|(a, b)| a.max(b));
                    if c.modseq == 0 {
                        others.push(c);
                    }
                }
                Ok(c) => others.push(c),
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    changed = true;
                    covering = None;
                    lagged = true;
                }
                Err(_) => break,
            }
        }
        if let Some(watch) = self.notify.as_mut() {
            watch.pending.extend(others);
            watch.missed |= lagged;
        }
        let Some(view) = self.selected.as_ref() else {
            return Ok(());
        };
        let pending = !view.pending_expunge.is_empty();
        if !(changed || pending && expunges_allowed) {
            return Ok(());
        }
        if !changed {
            // Only announcing expunges already taken in: any fresh look.
            covering = None;
        }
        self.catch_up(expunges_allowed, covering).await
    }

    pub(super) async fn catch_up(
        &mut self,
        expunges_allowed: bool,
        covering: Option<u64>,
    ) -> Result<(), Error> {
        let store = self.server.store.clone();
        let rev2 = self.rev2();
        let condstore = self.condstore();
        let qresync = self.qresync();
        let Some(view) = self.selected.as_mut() else {
            return Ok(());
        };
        let updates = match view.catch_up(store.as_ref(), covering).await {
            Ok(u) => u,
            Err(store::Error::NoMailbox(_)) => {
                self.line("* BYE [NONEXISTENT] The selected mailbox was deleted.");
                self.logout = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        // Searches kept up to date: the new messages and those whose flags
        // changed searched again, the expunged ones dropped.
        let mut touched = updates.flags.clone();
        let new_from = view.messages.len().saturating_sub(updates.new_messages);
        touched.extend(view.messages[new_from..].iter().map(|m| m.uid));
        let gone: Vec<u32> = view.pending_expunge.iter().copied().collect();
        let diffs = self.live_diffs(&touched, &gone).await;
        let Some(view) = self.selected.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        // REMOVEFROM numbers messages as the client knows them: before the
        // expunges below.
        context::removals(&mut out, &diffs, view);
        if let Some(flags) = view.take_flags_due() {
            out.extend_from_slice(flags.as_bytes());
        }
        if expunges_allowed {
            qresync::expunge_lines(&mut out, &view.take_expunges(), qresync);
        } else if qresync
            && !updates.flags.is_empty()
            && let Some(before) = view.modseq_before_pending
        {
            // RFC 7162 errata 1810: the MODSEQs of the FETCHes below are
            // past expunges not told yet; a client that stopped here must
            // resync from before them.
            out.extend_from_slice(
                format!(
                    "* OK [HIGHESTMODSEQ {}] Expunges pending.\r\n",
                    before.max(1)
                )
                .as_bytes(),
            );
        }
        if updates.new_messages > 0 {
            out.extend_from_slice(format!("* {} EXISTS\r\n", view.exists()).as_bytes());
            if !rev2 && updates.new_messages > 0 {
                out.extend_from_slice(format!("* {} RECENT\r\n", view.recent.len()).as_bytes());
            }
        }
        context::additions(&mut out, &diffs, view);
        for uid in updates.flags {
            // Looked up after the expunges above, so the number is current.
            if let Some(i) = view.index_of(uid) {
                let m = &view.messages[i];
                out.extend_from_slice(format!("* {} FETCH (UID {} FLAGS ", i + 1, uid).as_bytes());
                response::flag_list(
                    &mut out,
                    fetch::flags(m, !rev2 && view.recent.contains(&uid)),
                );
                if condstore {
                    out.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
                }
                out.extend_from_slice(b")\r\n");
            }
        }
        self.out.extend_from_slice(&out);
        Ok(())
    }

    pub(super) async fn idle(&mut self, tag: &str) -> Result<(), Error> {
        self.line("+ idling");
        self.send_updates(true).await?;
        self.flush().await?;
        let started = Instant::now();
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + IDLE_KEEPALIVE, IDLE_KEEPALIVE);
        let mut line = Vec::new();
        let mut feed = self.feed.take();
        let mut stop = self.stop.clone();
        let result = loop {
            if self.logout {
                break Ok(true);
            }
            tokio::select! {
                // LineReader::line keeps a half-read line across the
                // cancellations select! does, so a split DONE is not lost.
                r = self.io.as_mut().ok_or("no stream")?.line(&mut line) => {
                    break match r {
                        Ok(()) if line.eq_ignore_ascii_case(b"DONE") => Ok(true),
                        Ok(()) => Ok(false),
                        Err(e) => Err(Error::from(e)),
                    };
                }
                change = async {
                    match feed.as_mut() {
                        Some(f) => f.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    // Some(what the catch-up must cover) when it is news.
                    let relevant = match change {
                        Ok(c) if self.selected.as_ref().is_some_and(|v| v.is_news(&c)) => {
                            Some(View::covering(&c))
                        }
                        // NOTIFY tells of other mailboxes in IDLE too.
                        Ok(c) if self.notify.is_some() => {
                            self.notify_change(c).await?;
                            self.flush().await?;
                            None
                        }
                        Ok(_) => None,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            self.overflowed();
                            Some(None)
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            feed = None;
                            None
                        }
                    };
                    if let Some(covering) = relevant {
                        self.catch_up(true, covering).await?;
                        self.flush().await?;
                    }
                }
                _ = keepalive.tick() => {
                    if started.elapsed() >= AUTH_TIMEOUT {
                        self.line("* BYE Autologout; idle for too long.");
                        self.flush().await?;
                        self.logout = true;
                        break Ok(true);
                    }
                    self.line("* OK Still here");
                    self.flush().await?;
                }
                why = stop.stopped() => {
                    self.line(super::bye(why));
                    self.logout = true;
                    break Ok(true);
                }
            }
        };
        self.feed = feed;
        match result {
            Ok(true) if !self.logout => self.line(&format!("{tag} OK IDLE terminated.")),
            Ok(true) => {}
            Ok(false) => self.line(&format!("{tag} BAD Expected DONE.")),
            Err(e) => return Err(e),
        }
        Ok(())
    }
}
