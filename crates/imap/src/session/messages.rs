//! Commands on the selected mailbox's messages (RFC 9051 6.4): CLOSE,
//! EXPUNGE, SEARCH, FETCH, STORE, COPY and MOVE.

use super::*;

impl Session {
    pub(super) async fn close(&mut self, expunge: bool) -> Done {
        let Some(view) = self.selected.take() else {
            return bad("No mailbox selected.");
        };
        if expunge && !view.read_only {
            let deleted: Vec<u32> = view
                .messages
                .iter()
                .filter(|m| m.flags.contains(Flags::DELETED))
                .map(|m| m.uid)
                .collect();
            if !deleted.is_empty()
                && let Err(e) = self
                    .server
                    .store
                    .expunge(view.mailbox.id, &deleted, true)
                    .await
            {
                return store_failure(e);
            }
        }
        self.saved = None;
        self.end_live();
        ok(if expunge {
            "CLOSE completed."
        } else {
            "UNSELECT completed."
        })
    }

    pub(super) async fn expunge(&mut self, uids: Option<&SequenceSet>) -> Result<Done, Error> {
        let store = self.server.store.clone();
        let qresync = self.qresync();
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return Ok(bad("No mailbox selected."));
        };
        if view.read_only {
            return Ok(no_code(
                "READ-ONLY",
                "The mailbox is open read-only (EXAMINE).",
            ));
        }
        let within = match uids {
            Some(set) => match view.resolve(set, true, saved.as_deref()) {
                Ok(sel) => Some(sel),
                Err(e) => return Ok(bad(e)),
            },
            None => None,
        };
        let targets: Vec<u32> = view
            .messages
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                m.flags.contains(Flags::DELETED) && within.as_ref().is_none_or(|w| w.contains(*i))
            })
            .map(|(_, m)| m.uid)
            .collect();
        if targets.is_empty() {
            return Ok(ok("EXPUNGE completed."));
        }
        // The store checks \Deleted again: another session may have taken
        // it off since this view last heard.
        let gone = match store.expunge(view.mailbox.id, &targets, true).await {
            Ok(g) => g,
            Err(e) => return Ok(store_failure(e)),
        };
        view.took_own_change(gone.modseq);
        let diffs = self.live_diffs(&[], &gone.uids).await;
        let Some(view) = self.selected.as_mut() else {
            return Ok(ok("EXPUNGE completed."));
        };
        context::removals(&mut self.out, &diffs, view);
        qresync::expunge_lines(&mut self.out, &view.remove(&gone.uids), qresync);
        Ok(ok("EXPUNGE completed."))
    }

    pub(super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        charset: Option<&str>,
        ret: Option<&[SearchReturn]>,
        key: &SearchKey,
    ) -> Done {
        if let Some(c) = charset
            && !matches!(c, "UTF-8" | "US-ASCII")
        {
            return no_code(
                "BADCHARSET (UTF-8 US-ASCII)",
                format!("Charset {c} is not supported."),
            );
        }
        let store = self.server.store.clone();
        let Some(view) = self.selected.as_ref() else {
            return bad("No mailbox selected.");
        };
        let hits = match search::run(store.as_ref(), view, key, self.saved.as_deref()).await {
            Ok(h) => h,
            Err(e) => return no(e),
        };
        let number = |i: usize| {
            if uid {
                view.messages[i].uid
            } else {
                i as u32 + 1
            }
        };
        let numbers: Vec<u32> = hits.iter().map(|&i| number(i)).collect();
        let hit_uids: Vec<u32> = hits.iter().map(|&i| view.messages[i].uid).collect();
        // RFC 7162 3.1.5: a search by MODSEQ says the highest of its hits.
        let highest = uses_modseq(key)
            .then(|| hits.iter().map(|&i| view.messages[i].modseq).max())
            .flatten();
        let esearch = ret.is_some() || self.rev2();
        let options: Vec<SearchReturn> = match ret {
            Some([]) | None => vec![SearchReturn::All],
            Some(r) => r.to_vec(),
        };
        if options.contains(&SearchReturn::Save) {
            // RFC 5182 2.4: with MIN and/or MAX (and no ALL or COUNT), only
            // those are saved.
            let only_ends = !options
                .iter()
                .any(|o| matches!(o, SearchReturn::All | SearchReturn::Count))
                && options
                    .iter()
                    .any(|o| matches!(o, SearchReturn::Min | SearchReturn::Max));
            let saved: Vec<u32> = if only_ends {
                let mut ends = Vec::new();
                if options.contains(&SearchReturn::Min) {
                    ends.extend(hit_uids.first());
                }
                if options.contains(&SearchReturn::Max) {
                    ends.extend(hit_uids.last());
                }
                ends.dedup();
                ends
            } else {
                hit_uids.clone()
            };
            self.saved = Some(saved);
        }
        if !esearch {
            let list: Vec<String> = numbers.iter().map(u32::to_string).collect();
            let sep = if list.is_empty() { "" } else { " " };
            let modseq = highest
                .map(|m| format!(" (MODSEQ {m})"))
                .unwrap_or_default();
            self.line(&format!("* SEARCH{sep}{}{modseq}", list.join(" ")));
        } else if options != [SearchReturn::Save] {
            let mut line = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                line.push_str(" UID");
            }
            for o in &options {
                match o {
                    SearchReturn::Min if !numbers.is_empty() => {
                        line.push_str(&format!(" MIN {}", numbers.iter().min().unwrap_or(&0)))
                    }
                    SearchReturn::Max if !numbers.is_empty() => {
                        line.push_str(&format!(" MAX {}", numbers.iter().max().unwrap_or(&0)))
                    }
                    SearchReturn::All if !numbers.is_empty() => {
                        line.push_str(&format!(" ALL {}", uid_set(&numbers)))
                    }
                    SearchReturn::Count => line.push_str(&format!(" COUNT {}", numbers.len())),
                    SearchReturn::Partial(low, high) => partial(&mut line, &numbers, *low, *high),
                    _ => {}
                }
            }
            if let Some(m) = highest {
                line.push_str(&format!(" MODSEQ {m}"));
            }
            self.line(&line);
        }
        if options.contains(&SearchReturn::Update) {
            self.keep_live(tag, uid, key, &hit_uids, None);
        }
        ok("SEARCH completed.")
    }

    pub(super) async fn fetch(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        items: &[FetchAttr],
        changed_since: Option<u64>,
    ) -> Result<Done, Error> {
        let store = self.server.store.clone();
        let rev2 = self.rev2();
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return Ok(bad("No mailbox selected."));
        };
        let mut selection = match view.resolve(set, uid, saved.as_deref()) {
            Ok(s) => s,
            Err(e) => return Ok(bad(e)),
        };
        // RFC 7162 3.1.4.1: only what changed after the given MODSEQ.
        if let Some(since) = changed_since {
            selection = selection.filtered(|i| view.messages[i].modseq > since);
        }
        let needs = fetch::needs(items);
        // \Seen goes on before the data goes out (RFC 9051 6.4.5).
        let mut seen_now: HashSet<u32> = HashSet::new();
        if needs.sets_seen && !view.read_only {
            let unseen: Vec<u32> = selection
                .iter()
                .map(|i| &view.messages[i])
                .filter(|m| {
                    !m.flags.contains(Flags::SEEN) && !view.pending_expunge.contains(&m.uid)
                })
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let change = FlagChange {
                    op: FlagOp::Add,
                    flags: Flags::SEEN,
                    keywords: vec![],
                };
                let result = store
                    .store_flags(view.mailbox.id, &unseen, &change, None)
                    .await?;
                for u in &result.updated {
                    if let Some(i) = view.index_of(u.uid) {
                        view.messages[i].flags = u.flags;
                        view.messages[i].keywords = u.keywords.as_slice().into();
                        view.messages[i].modseq = u.modseq;
                        seen_now.insert(u.uid);
                    }
                }
                if let Some(u) = result.updated.first() {
                    view.took_own_change(u.modseq);
                }
            }
        }
        let views: HashMap<u32, store::MessageCache> = if needs.views {
            let uids: Vec<u32> = selection.iter().map(|i| view.messages[i].uid).collect();
            store
                .views(view.mailbox.id, &uids)
                .await?
                .into_iter()
                .collect()
        } else {
            HashMap::new()
        };
        let indexes: Vec<usize> = selection.iter().collect();
        let details: HashMap<u32, store::MessageMeta> = if needs.details {
            let uids: Vec<u32> = indexes.iter().map(|&i| view.messages[i].uid).collect();
            store
                .details(view.mailbox.id, &uids)
                .await?
                .into_iter()
                .map(|m| (m.uid, m))
                .collect()
        } else {
            HashMap::new()
        };
        // THREADID (RFC 8474): from the kept thread keys of the mailbox.
        let threads: HashMap<u32, String> = if needs.threads {
            let parts = store::SortParts {
                threads: true,
                ..Default::default()
            };
            let wanted: HashSet<u32> = indexes.iter().map(|&i| view.messages[i].uid).collect();
            store
                .sort_keys(view.mailbox.id, parts)
                .await?
                .iter()
                .filter(|e| wanted.contains(&e.uid))
                .filter_map(|e| {
                    let blob = details.get(&e.uid).map(|d| &d.blob);
                    crate::objectid::thread_id(&e.keys, blob).map(|t| (e.uid, t))
                })
                .collect()
        } else {
            HashMap::new()
        };
        let mut missing = false;
        let total = selection.len();
        // Bodies are read a batch ahead, in one trip to the disk threads;
        // `None` for a message whose entry is gone.
        let mut bodies: std::collections::VecDeque<Option<store::Result<Vec<u8>>>> =
            Default::default();
        for (n, &i) in indexes.iter().enumerate() {
            if needs.body && bodies.is_empty() {
                let batch = body_batch(&view.messages, &details, &indexes[n..]);
                let wanted: Vec<store::BlobHash> = batch.iter().flatten().cloned().collect();
                let mut read = store.read_blobs(&wanted).await?.into_iter();
                bodies = batch
                    .iter()
                    .map(|b| b.as_ref().and_then(|_| read.next()))
                    .collect();
            }
            let meta = view.messages[i].clone();
            let body = if needs.body { bodies.pop_front() } else { None };
            let cache = views.get(&meta.uid);
            let detail = details.get(&meta.uid);
            // A message another session expunged, whose entry is gone: UID
            // FETCH leaves it out (its EXPUNGE goes out before the tagged
            // OK); FETCH by number says some were expunged meanwhile.
            if (needs.views && cache.is_none()) || (needs.details && detail.is_none()) {
                missing |= !uid;
                continue;
            }
            let loaded = match body.flatten() {
                Some(Ok(raw)) if needs.header_only => Some(Loaded::header(raw)),
                Some(Ok(raw)) => Some(Loaded::new(raw)),
                Some(Err(e)) => {
                    if !view.pending_expunge.contains(&meta.uid) {
                        tracing::error!("imap: cannot read message {}: {e}", meta.uid);
                    }
                    missing = true;
                    continue;
                }
                None => None,
            };
            let message = fetch::Message {
                seq: i + 1,
                meta: &meta,
                details: detail,
                recent: !rev2 && view.recent.contains(&meta.uid),
                views: cache,
                body: loaded.as_ref(),
                thread: threads.get(&meta.uid).map(String::as_str),
            };
            let mut out = Vec::new();
            if let Err(e) =
                fetch::write(&mut out, &message, items, uid, seen_now.contains(&meta.uid))
            {
                return Ok(no(e));
            }
            self.out.extend_from_slice(&out);
            // Stream large answers instead of holding them all.
            if self.out.len() > 256 * 1024 || n + 1 == total {
                write_out(
                    &mut self.io,
                    &mut self.out,
                    self.server.settings.deadlines.write,
                )
                .await?;
            }
        }
        Ok(if missing {
            no_code(
                "EXPUNGEISSUED",
                "Some of the requested messages no longer exist: another session expunged them.",
            )
        } else {
            ok("FETCH completed.")
        })
    }

    pub(super) async fn store(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        mode: StoreMode,
        silent: bool,
        flags: &[String],
        unchanged_since: Option<u64>,
    ) -> Done {
        let store = self.server.store.clone();
        let rev2 = self.rev2();
        let condstore = self.condstore();
        let saved = self.saved.clone();
        let Some(view) = self.selected.as_mut() else {
            return bad("No mailbox selected.");
        };
        if view.read_only {
            return no_code("READ-ONLY", "The mailbox is open read-only (EXAMINE).");
        }
        let selection = match view.resolve(set, uid, saved.as_deref()) {
            Ok(s) => s,
            Err(e) => return bad(e),
        };
        let (system, keywords) = match split_flags(flags) {
            Ok(f) => f,
            Err(d) => return d,
        };
        let change = FlagChange {
            op: match mode {
                StoreMode::Add => FlagOp::Add,
                StoreMode::Remove => FlagOp::Remove,
                StoreMode::Replace => FlagOp::Replace,
            },
            flags: system,
            keywords,
        };
        let uids: Vec<u32> = selection
            .iter()
            .map(|i| view.messages[i].uid)
            .filter(|u| !view.pending_expunge.contains(u))
            .collect();
        let result = match store
            .store_flags(view.mailbox.id, &uids, &change, unchanged_since)
            .await
        {
            Ok(r) => r,
            Err(e) => return store_failure(e),
        };
        // What this session expected to see after its own change: a
        // .SILENT store still reports what another session changed too
        // (RFC 9051 6.4.6).
        let mut surprising: HashSet<u32> = HashSet::new();
        for u in &result.updated {
            if let Some(i) = view.index_of(u.uid) {
                let m = &mut view.messages[i];
                let expected = change.apply(m.flags, &m.keywords);
                if expected != (u.flags, u.keywords.clone()) {
                    surprising.insert(u.uid);
                }
                m.flags = u.flags;
                m.keywords = u.keywords.as_slice().into();
                m.modseq = u.modseq;
            }
            view.learn(&u.keywords);
        }
        if let Some(u) = result.updated.first() {
            view.took_own_change(u.modseq);
        }
        // A keyword this STORE made up is announced before any FETCH shows
        // it, .SILENT or not (RFC 9051 7.3.5).
        if let Some(flags) = view.take_flags_due() {
            self.out.extend_from_slice(flags.as_bytes());
        }
        let refused: HashSet<u32> = result.refused.iter().copied().collect();
        for u in &uids {
            if refused.contains(u) || (silent && !surprising.contains(u)) {
                continue;
            }
            if let Some(i) = view.index_of(*u) {
                let m = &view.messages[i];
                let mut line = format!("* {} FETCH (", i + 1).into_bytes();
                // RFC 7162 3.1: with CONDSTORE on, every such FETCH has UID.
                if uid || condstore {
                    line.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
                }
                line.extend_from_slice(b"FLAGS ");
                response::flag_list(
                    &mut line,
                    fetch::flags(m, !rev2 && view.recent.contains(&m.uid)),
                );
                if condstore {
                    line.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
                }
                line.extend_from_slice(b")\r\n");
                self.out.extend_from_slice(&line);
            }
        }
        let done = if result.refused.is_empty() {
            ok("STORE completed.")
        } else {
            let refused: Vec<u32> = if uid {
                result.refused.clone()
            } else {
                result
                    .refused
                    .iter()
                    .filter_map(|u| view.index_of(*u).map(|i| i as u32 + 1))
                    .collect()
            };
            ok_code(
                format!("MODIFIED {}", uid_set(&refused)),
                "Some messages changed meanwhile.",
            )
        };
        // Searches kept up to date hear of flags this STORE changed.
        let touched: Vec<u32> = result.updated.iter().map(|u| u.uid).collect();
        let diffs = self.live_diffs(&touched, &[]).await;
        if let Some(view) = self.selected.as_ref() {
            context::removals(&mut self.out, &diffs, view);
            context::additions(&mut self.out, &diffs, view);
        }
        done
    }

    pub(super) async fn copy(
        &mut self,
        uid: bool,
        set: &SequenceSet,
        arg: &MailboxArg,
        is_move: bool,
    ) -> Done {
        let target = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) if d.code.as_deref() == Some("NONEXISTENT") => {
                return no_code("TRYCREATE", "No such mailbox; create it first.");
            }
            Err(d) => return d,
        };
        let store = self.server.store.clone();
        let saved = self.saved.clone();
        let qresync = self.qresync();
        let Some(view) = self.selected.as_mut() else {
            return bad("No mailbox selected.");
        };
        if is_move && view.read_only {
            return no_code("READ-ONLY", "The mailbox is open read-only (EXAMINE).");
        }
        let indexes = match view.resolve(set, uid, saved.as_deref()) {
            Ok(i) => i,
            Err(e) => return bad(e),
        };
        let uids: Vec<u32> = indexes.iter().map(|i| view.messages[i].uid).collect();
        // The store records any spam training the copy or move implies,
        // in its own transaction.
        let result = if is_move {
            store.move_messages(view.mailbox.id, &uids, target.id).await
        } else {
            store.copy_messages(view.mailbox.id, &uids, target.id).await
        };
        let result = match result {
            Ok(r) => r,
            Err(e) => return store_failure(e),
        };
        let (src, dst): (Vec<u32>, Vec<u32>) = result.pairs.iter().copied().unzip();
        let code = if src.is_empty() {
            None
        } else {
            Some(format!(
                "COPYUID {} {} {}",
                result.uidvalidity,
                uid_set(&src),
                uid_set(&dst)
            ))
        };
        if is_move {
            if let Some(code) = &code {
                self.out
                    .extend_from_slice(format!("* OK [{code}] Moved.\r\n").as_bytes());
            }
            view.took_own_change(result.source_modseq);
            let diffs = self.live_diffs(&[], &src).await;
            if let Some(view) = self.selected.as_mut() {
                context::removals(&mut self.out, &diffs, view);
                qresync::expunge_lines(&mut self.out, &view.remove(&src), qresync);
            }
            return ok("MOVE completed.");
        }
        match code {
            Some(c) => ok_code(c, "COPY completed."),
            None => ok("COPY completed."),
        }
    }
}

/// Messages whose bodies FETCH reads in one go: up to 64, and no more
/// than 4 MiB together (always at least the next one).
const BODY_BATCH: usize = 64;
const BODY_BATCH_BYTES: u64 = 4 << 20;

/// The blobs of the next batch of `upcoming` (indexes into `messages`),
/// one per message: `None` where its entry is gone from the store.
fn body_batch(
    messages: &[Entry],
    details: &HashMap<u32, store::MessageMeta>,
    upcoming: &[usize],
) -> Vec<Option<store::BlobHash>> {
    let mut bytes = 0;
    let mut batch = Vec::new();
    for &i in upcoming.iter().take(BODY_BATCH) {
        let d = details.get(&messages[i].uid);
        bytes += d.map_or(0, |d| d.size);
        if !batch.is_empty() && bytes > BODY_BATCH_BYTES {
            break;
        }
        batch.push(d.map(|d| d.blob.clone()));
    }
    batch
}

/// ` PARTIAL (low:high numbers)`: the results at those 1-based positions
/// of `numbers` (in result order), or NIL when there are none (RFC 5267
/// 4.4).
pub(super) fn partial(line: &mut String, numbers: &[u32], low: u32, high: u32) {
    let from = (low as usize).saturating_sub(1).min(numbers.len());
    let to = (high as usize).min(numbers.len());
    let mut picked = numbers[from..to.max(from)].to_vec();
    picked.sort_unstable();
    let set = if picked.is_empty() {
        "NIL".to_string()
    } else {
        uid_set(&picked)
    };
    line.push_str(&format!(" PARTIAL ({low}:{high} {set})"));
}
