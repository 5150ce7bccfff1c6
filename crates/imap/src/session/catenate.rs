//! CATENATE (RFC 4469): an APPEND whose message is made of texts the
//! client sends and parts of messages already stored, named by IMAP URLs
//! (RFC 5092, with ;PARTIAL= of RFC 5550), so that a client forwarding an
//! attachment need not download and upload it again.

use super::*;
use crate::imapurl;

impl Session {
    /// APPEND's CATENATE messages made whole: each TEXT as sent, each
    /// URL's part read from the store. `NO [BADURL url]` when a URL names
    /// nothing this user can read, `NO [TOOBIG]` past the message limit.
    pub(super) async fn catenated(
        &self,
        messages: Vec<AppendMessage>,
    ) -> Result<Vec<AppendMessage>, Done> {
        let mut out = Vec::with_capacity(messages.len());
        for mut m in messages {
            if m.catenate.is_empty() {
                out.push(m);
                continue;
            }
            let mut data = Vec::new();
            for part in std::mem::take(&mut m.catenate) {
                let bytes = match part {
                    CatPart::Text(text) => text,
                    CatPart::Url(url) => self.url_bytes(&url).await.map_err(|why| {
                        // The code's text runs to "]": keep the URL's out.
                        no_code(format!("BADURL {}", url.replace(']', "%5D")), why)
                    })?,
                };
                data.extend_from_slice(&bytes);
                if data.len() as u64 > MAX_MESSAGE_SIZE {
                    return Err(no_code(
                        "TOOBIG",
                        format!("The message would be over {MAX_MESSAGE_SIZE} bytes."),
                    ));
                }
            }
            m.data = data;
            // Stored parts may hold what only a literal8 could carry.
            m.binary = true;
            out.push(m);
        }
        Ok(out)
    }

    /// The bytes a URL names, as FETCH BODY.PEEK[section]<partial> would
    /// answer them; the error says why there are none.
    async fn url_bytes(&self, url: &str) -> Result<Vec<u8>, String> {
        let u = imapurl::parse(url)?;
        let account = self.account.as_ref().ok_or("not logged in")?;
        if u.user
            .as_ref()
            .is_some_and(|user| !user.eq_ignore_ascii_case(&account.address))
        {
            return Err("The URL names another user's mailbox.".into());
        }
        let store = self.server.store.clone();
        let mailbox = store
            .mailbox(account.id, &u.mailbox)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("No mailbox {}.", u.mailbox))?;
        if u.uidvalidity.is_some_and(|v| v != mailbox.uidvalidity) {
            return Err(format!(
                "{}'s UIDVALIDITY is {} now.",
                u.mailbox, mailbox.uidvalidity
            ));
        }
        let meta = store
            .details(mailbox.id, &[u.uid])
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .next()
            .ok_or_else(|| format!("No message with UID {} in {}.", u.uid, u.mailbox))?;
        let raw = store
            .read_blob(&meta.blob)
            .await
            .map_err(|_| format!("Message {} was expunged meanwhile.", u.uid))?;
        let loaded = fetch::Loaded::new(raw);
        let bytes = match &u.section {
            None => loaded.served,
            Some(spec) => {
                let section = imap_proto::parse_section(spec.as_bytes())
                    .map_err(|e| format!("Bad section {spec:?}: {}", e.message))?;
                section.extract(&loaded.served, &loaded.root)
            }
        };
        Ok(match u.partial {
            None => bytes,
            Some((offset, length)) => {
                let from = (offset as usize).min(bytes.len());
                let to = length.map_or(bytes.len(), |l| {
                    from.saturating_add(l as usize).min(bytes.len())
                });
                bytes[from..to].to_vec()
            }
        })
    }
}
