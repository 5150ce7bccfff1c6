//! The outgoing leg: the stored copy of what a user sends (Sent, or where
//! their outgoing-phase script files it).

use store::Account;

use crate::filing::Filing;
use crate::storing::Form;
use crate::{Delivered, Error, Pipeline};

impl Pipeline {
    /// Files the copy of a message a user sent (through the submission
    /// door or the webmail): into Sent, \Seen, unless their Sieve script,
    /// run with `environment "phase"` = "outgoing", files it elsewhere.
    /// Its recipients become the user's trusted correspondents.
    pub async fn outgoing(
        &self,
        account: &Account,
        raw: &[u8],
        recipients: &[String],
    ) -> Result<Vec<Delivered>, Error> {
        let to: Vec<String> = recipients
            .iter()
            .map(|r| r.to_lowercase())
            .filter(|r| !r.eq_ignore_ascii_case(&account.address))
            .collect();
        self.store.record_correspondents(account.id, &to).await?;
        let facts = Filing {
            envelope_to: recipients.first().map_or("", String::as_str),
            envelope_from: &account.address,
            default: "Sent",
            flags: &["\\Seen"],
            spam: None,
            phase: "outgoing",
        };
        // Sent mail gets no auto-replies.
        let filed = self.filing(raw, account, &facts).await?;
        let placed = self
            .place(filed.copies.into_iter().map(|c| (c, 0)).collect())
            .await?;
        let analysis = mime::analyze(raw);
        self.store_placed(&placed, |_| Form {
            raw,
            analysis: &analysis,
            spam: None,
        })
        .await
    }
}
