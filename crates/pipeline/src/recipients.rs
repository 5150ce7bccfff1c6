//! Stage 1, recipients: an address, an alias or `local+detail@domain` to
//! a local account, or to "unknown user" or "not local" (design.md, the
//! pipeline).

use store::Account;

use crate::{Error, Pipeline};

/// What a recipient address is to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A local account (directly, by alias or with a +detail).
    Local(Account),
    /// A local domain, but nobody by that name.
    Unknown,
    /// Not a domain this server receives for.
    NotLocal,
}

impl Pipeline {
    /// Resolves a recipient: the address or an alias, or with a `+detail`
    /// in the local part, the address without it, or the domain's
    /// catch-all.
    pub async fn recipient(&self, address: &str) -> Result<Recipient, Error> {
        if let Some(account) = self.store.account(address).await? {
            return Ok(Recipient::Local(account));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            // `<Postmaster>` with no domain (RFC 5321 4.1.1.3).
            if address.eq_ignore_ascii_case("postmaster") {
                return self.postmaster().await;
            }
            return Ok(Recipient::Unknown);
        };
        if let Some((base, _detail)) = local.split_once('+')
            && let Some(account) = self.store.account(&format!("{base}@{domain}")).await?
        {
            return Ok(Recipient::Local(account));
        }
        let domain = domain.to_ascii_lowercase();
        if !self.is_local_domain(&domain).await? {
            return Ok(Recipient::NotLocal);
        }
        // postmaster@ every local domain, unless an alias says otherwise
        // (RFC 5321 4.5.1), before a catch-all that belongs to someone else.
        if local.eq_ignore_ascii_case("postmaster") {
            return self.postmaster().await;
        }
        if let Some(account) = self.store.catch_all(&domain).await? {
            return Ok(Recipient::Local(account));
        }
        Ok(Recipient::Unknown)
    }

    /// The account postmaster@ mail goes to: the config's `postmaster`, or
    /// else the oldest account with the admin role.
    pub async fn postmaster(&self) -> Result<Recipient, Error> {
        if let Some(address) = &self.postmaster
            && let Some(account) = self.store.account(address).await?
        {
            return Ok(Recipient::Local(account));
        }
        let admin = self
            .store
            .list_accounts()
            .await?
            .into_iter()
            .filter(|a| a.is_admin)
            .min_by_key(|a| a.id);
        Ok(admin.map_or(Recipient::Unknown, Recipient::Local))
    }

    /// A domain of the config, or of an account or alias in the store.
    pub(crate) async fn is_local_domain(&self, domain: &str) -> Result<bool, Error> {
        Ok(self.domains.iter().any(|d| d == domain) || self.store.has_domain(domain).await?)
    }
}
