//! The user's lists of senders, from a message page or the settings page:
//! the spam allow and block lists (the same the `satchel spam allow/block`
//! commands and the scorer use) and the senders whose remote images are
//! always shown. Each entry is an address or a whole `@domain`.

use std::collections::HashMap;

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect};
use store::ListedSender;

use crate::Web;
use crate::pages::{Authed, PageError, PageResult, check_csrf};

/// Where a sender stands with the user, for the message page.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// The sender's address, lower case.
    pub address: String,
    /// `Some(true)`: on the allow list (by address or domain); `Some(false)`:
    /// on the block list.
    pub listed: Option<bool>,
    /// The list entry that decides `listed` (the address or `@domain`).
    pub listed_as: String,
    /// Remote images always shown, and the entry that says so.
    pub images: Option<String>,
}

/// The entry of `patterns` that covers `address`: the address itself
/// first, then its domain.
pub fn covering<'a>(
    patterns: impl Iterator<Item = &'a str> + Clone,
    address: &str,
) -> Option<&'a str> {
    let domain = address.rsplit_once('@').map(|(_, d)| format!("@{d}"));
    patterns
        .clone()
        .find(|p| *p == address)
        .or_else(|| patterns.into_iter().find(|p| Some(*p) == domain.as_deref()))
}

/// How the user's lists see `address`.
pub async fn standing(
    web: &Web,
    account: store::AccountId,
    address: &str,
) -> store::Result<Standing> {
    let store = &web.inner.store;
    let lists: Vec<ListedSender> = store.spam_lists(account).await?;
    let images = store.image_senders(account).await?;
    let entry = covering(lists.iter().map(|l| l.pattern.as_str()), address);
    let listed = entry.and_then(|e| lists.iter().find(|l| l.pattern == e).map(|l| l.allow));
    Ok(Standing {
        address: address.to_string(),
        listed,
        listed_as: entry.unwrap_or_default().to_string(),
        images: covering(images.iter().map(String::as_str), address).map(str::to_string),
    })
}

/// `POST /senders`: `list` is `allow`, `block` or `images`; `op` is `add`
/// or `remove`; `pattern` an address or `@domain`. Back to `back` (a path
/// of this site), else to the settings page.
pub async fn change(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let pattern = get("pattern").trim();
    if pattern.is_empty() {
        return Err(PageError::BadRequest(
            "Give an address (bob@example.com) or a domain with its @ (@example.com).",
        ));
    }
    let add = match get("op") {
        "add" => true,
        "remove" => false,
        _ => {
            return Err(PageError::BadRequest(
                "Say whether to add or remove the sender.",
            ));
        }
    };
    let store = &web.inner.store;
    let id = s.account.id;
    let done = match get("list") {
        "allow" => store.set_spam_list(id, pattern, add.then_some(true)).await,
        "block" => store.set_spam_list(id, pattern, add.then_some(false)).await,
        "images" => store.set_image_sender(id, pattern, add).await,
        _ => return Err(PageError::BadRequest("There is no such list of senders.")),
    };
    match done {
        Err(store::Error::InvalidAddress(_, why)) => {
            return Err(PageError::BadRequestOwned(format!(
                "\"{pattern}\" cannot go on a list: {why}."
            )));
        }
        other => other?,
    }
    Ok(Redirect::to(back(get("back"))).into_response())
}

/// A path on this site to go back to; anything else (another site,
/// `//host`, a scheme) is the settings page.
fn back(asked: &str) -> &str {
    let local = asked.starts_with('/')
        && !asked.starts_with("//")
        && !asked.contains('\\')
        && !asked.chars().any(char::is_control);
    if local {
        asked
    } else {
        "/settings?done=senders"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_wins_over_its_domain() {
        let p = ["@shop.example", "news@shop.example"];
        assert_eq!(
            covering(p.iter().copied(), "news@shop.example"),
            Some("news@shop.example")
        );
        assert_eq!(
            covering(p.iter().copied(), "x@shop.example"),
            Some("@shop.example")
        );
        assert_eq!(covering(p.iter().copied(), "x@sub.shop.example"), None);
    }

    #[test]
    fn only_local_paths_are_gone_back_to() {
        assert_eq!(back("/mail/3/7"), "/mail/3/7");
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "",
            "mail",
        ] {
            assert_eq!(back(bad), "/settings?done=senders", "{bad}");
        }
    }
}
