//! QUOTA (RFC 9208): each account is one quota root, named "", covering
//! all its mailboxes, with STORAGE (in units of 1024 octets, 5.1) and
//! MESSAGE (5.2) resources when the account has those limits
//! (`satchel user quota`). The limits are the admin's to set: SETQUOTA is
//! refused and QUOTASET not advertised.

use super::*;

impl Session {
    /// The account's quota as a QUOTA response, or `None` without limits.
    async fn quota_line(&self) -> store::Result<Option<String>> {
        let u = self.server.store.usage(self.account_id()).await?;
        let mut resources = Vec::new();
        if u.quota_bytes > 0 {
            resources.push(format!(
                "STORAGE {} {}",
                u.bytes.div_ceil(1024),
                u.quota_bytes / 1024
            ));
        }
        if u.quota_messages > 0 {
            resources.push(format!("MESSAGE {} {}", u.messages, u.quota_messages));
        }
        Ok((!resources.is_empty()).then(|| format!("* QUOTA \"\" ({})", resources.join(" "))))
    }

    pub(super) async fn get_quota(&mut self, root: &[u8]) -> Done {
        if !root.is_empty() {
            return no_code("NONEXISTENT", "The only quota root is \"\".");
        }
        match self.quota_line().await {
            Ok(Some(line)) => {
                self.line(&line);
                ok("GETQUOTA completed.")
            }
            Ok(None) => no_code("NONEXISTENT", "This account has no quota."),
            Err(e) => store_failure(e),
        }
    }

    pub(super) async fn get_quota_root(&mut self, arg: &MailboxArg) -> Done {
        let mailbox = match self.find_mailbox(arg).await {
            Ok(m) => m,
            Err(d) => return d,
        };
        let quota = match self.quota_line().await {
            Ok(q) => q,
            Err(e) => return store_failure(e),
        };
        let mut line = b"* QUOTAROOT ".to_vec();
        response::mailbox(&mut line, &mailbox.name, self.utf8_names());
        // A mailbox under no limit has no quota root (RFC 9208 4.3.2).
        if quota.is_some() {
            line.extend_from_slice(b" \"\"");
        }
        line.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&line);
        if let Some(q) = quota {
            self.line(&q);
        }
        ok("GETQUOTAROOT completed.")
    }
}
