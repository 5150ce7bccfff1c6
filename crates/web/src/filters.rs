//! The filters page: the account's Sieve script in an editor that shows the
//! compiler's error at its line and column, and a simple rule form that
//! writes Sieve into it. The script is the one `satchel filter set` and
//! ManageSieve edit (named [`SCRIPT_NAME`] when the web creates it).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect};
use serde::Deserialize;

use crate::Web;
use crate::pages::{Authed, Frame, PageError, PageResult, check_csrf, frame};
use crate::session::Session;

/// The script's name when the account has none active yet.
pub const SCRIPT_NAME: &str = "satchel";

#[derive(Template)]
#[template(path = "filters.html")]
struct FiltersPage<'a> {
    frame: Frame,
    script: &'a str,
    error: Option<ScriptError>,
    saved: bool,
}

/// A compile error placed in the text.
struct ScriptError {
    line: u32,
    column: u32,
    message: String,
    /// The line itself, and a caret under the column.
    excerpt: String,
    caret: String,
}

#[derive(Deserialize)]
pub struct Shown {
    saved: Option<u8>,
}

pub async fn filters_page(
    State(web): State<Web>,
    Authed(s): Authed,
    Query(q): Query<Shown>,
) -> PageResult {
    let script = active_script(&web, s.account.id).await?;
    render(&web, &s, &script, None, q.saved.is_some(), StatusCode::OK).await
}

/// Saves the edited script if it compiles; otherwise shows it again with
/// the error.
pub async fn save(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let text = form.get("script").map(String::as_str).unwrap_or("");
    store_script(&web, &s, text).await
}

/// Adds a rule from the simple form to the script, then saves it the same
/// way (so the editor shows the Sieve it wrote).
pub async fn add_rule(
    State(web): State<Web>,
    Authed(s): Authed,
    Form(form): Form<HashMap<String, String>>,
) -> PageResult {
    check_csrf(&s, &form)?;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("").trim();
    let rule = Rule {
        outgoing: get("phase") == "outgoing",
        field: get("field"),
        header: get("header"),
        exact: get("match") == "is",
        value: get("value"),
        action: get("action"),
        target: get("target"),
    };
    let sieve = match rule.sieve() {
        Ok(s) => s,
        Err(e) => return Err(PageError::BadRequestOwned(e)),
    };
    let current = active_script(&web, s.account.id).await?;
    // `require` must come before any other command (RFC 5228 3.2): the
    // rule's goes first, its test at the end.
    let text = format!(
        "{}\n{}{}\n{}",
        sieve.require,
        current.trim_end(),
        if current.trim().is_empty() { "" } else { "\n" },
        sieve.body
    );
    store_script(&web, &s, &text).await
}

async fn store_script(web: &Web, s: &Session, text: &str) -> PageResult {
    if text.len() > sieve::MAX_SCRIPT_SIZE {
        return Err(PageError::BadRequestOwned(format!(
            "The script is too long: at most {} KB.",
            sieve::MAX_SCRIPT_SIZE / 1024
        )));
    }
    if let Err(e) = sieve::Script::compile(text) {
        let error = placed(text, &e);
        return render(web, s, text, Some(error), false, StatusCode::BAD_REQUEST).await;
    }
    put_script(web, s.account.id, text).await?;
    Ok(Redirect::to("/filters?saved=1").into_response())
}

/// The account's active script, or an empty one.
pub(crate) async fn active_script(
    web: &Web,
    account: store::AccountId,
) -> Result<String, PageError> {
    Ok(web
        .inner
        .store
        .active_sieve_script(account)
        .await?
        .map(|(_, text)| text)
        .unwrap_or_default())
}

/// Stores `text` (compiled by the caller) as the active script, under the
/// active script's name or [`SCRIPT_NAME`].
pub(crate) async fn put_script(
    web: &Web,
    account: store::AccountId,
    text: &str,
) -> Result<(), PageError> {
    let store = &web.inner.store;
    let name = store
        .active_sieve_script(account)
        .await?
        .map(|(name, _)| name)
        .unwrap_or_else(|| SCRIPT_NAME.to_string());
    store.put_sieve_script(account, &name, text).await?;
    store.activate_sieve_script(account, Some(&name)).await?;
    Ok(())
}

fn placed(text: &str, e: &sieve::Error) -> ScriptError {
    let line = e.position.line.max(1);
    let column = e.position.column.max(1);
    let excerpt = text
        .lines()
        .nth(line as usize - 1)
        .unwrap_or_default()
        .to_string();
    ScriptError {
        line,
        column,
        message: e.message.clone(),
        caret: format!("{}^", " ".repeat(column as usize - 1)),
        excerpt,
    }
}

async fn render(
    web: &Web,
    s: &Session,
    script: &str,
    error: Option<ScriptError>,
    saved: bool,
    status: StatusCode,
) -> PageResult {
    let page = FiltersPage {
        frame: frame(web, s, None).await?,
        script,
        error,
        saved,
    }
    .render()?;
    Ok((status, Html(page)).into_response())
}

/// A rule of the simple form.
struct Rule<'a> {
    outgoing: bool,
    /// "from", "to", "subject" or "header" (then `header` names it).
    field: &'a str,
    header: &'a str,
    exact: bool,
    value: &'a str,
    /// "fileinto", "copy", "flag", "redirect" or "discard".
    action: &'a str,
    /// The mailbox or the address, for those that take one.
    target: &'a str,
}

#[derive(Debug)]
struct RuleSieve {
    require: String,
    body: String,
}

impl Rule<'_> {
    fn sieve(&self) -> Result<RuleSieve, String> {
        let field = match self.field {
            "from" | "to" | "subject" => self.field.to_string(),
            "header" if is_field_name(self.header) => self.header.to_string(),
            "header" => return Err("Name the header field, like List-Id.".into()),
            _ => return Err("Choose what the rule looks at.".into()),
        };
        if self.value.is_empty() {
            return Err("Say what the field contains or is.".into());
        }
        let mut require = vec!["environment"];
        let action = match self.action {
            "fileinto" | "copy" if self.target.is_empty() => {
                return Err("Name the mailbox to file into.".into());
            }
            "fileinto" => {
                require.push("fileinto");
                format!("fileinto {};", quoted(self.target))
            }
            "copy" => {
                require.extend(["fileinto", "copy"]);
                format!("fileinto :copy {};", quoted(self.target))
            }
            "flag" => {
                require.push("imap4flags");
                "addflag \"\\\\Flagged\";".to_string()
            }
            "redirect"
                if !self.target.contains('@') || self.target.contains(char::is_whitespace) =>
            {
                return Err("Give the address to forward to.".into());
            }
            "redirect" => format!("redirect {};", quoted(self.target)),
            "discard" => "discard;".to_string(),
            _ => return Err("Choose what the rule does.".into()),
        };
        let test = if field == "from" || field == "to" {
            format!(
                "address :{} {} {}",
                if self.exact { "is" } else { "contains" },
                quoted(&field),
                quoted(self.value)
            )
        } else {
            format!(
                "header :{} {} {}",
                if self.exact { "is" } else { "contains" },
                quoted(&field),
                quoted(self.value)
            )
        };
        let phase = if self.outgoing { "outgoing" } else { "during" };
        let list = require
            .iter()
            .map(|r| quoted(r))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(RuleSieve {
            require: format!("require [{list}];"),
            body: format!(
                "# Added in the webmail\nif allof (environment :is \"phase\" \"{phase}\", {test}) {{\n  {action}\n}}\n"
            ),
        })
    }
}

/// A Sieve string (RFC 5228 2.4.2): backslash and quote escaped; no line
/// breaks, so a value cannot end the string and start a command.
pub(crate) fn quoted(s: &str) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
}

fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 76 && s.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule<'a>(field: &'a str, value: &'a str, action: &'a str, target: &'a str) -> Rule<'a> {
        Rule {
            outgoing: false,
            field,
            header: "List-Id",
            exact: false,
            value,
            action,
            target,
        }
    }

    #[test]
    fn every_rule_the_form_makes_compiles() {
        for (field, action, target) in [
            ("from", "fileinto", "Clients/ACME"),
            ("to", "copy", "Archive"),
            ("subject", "flag", ""),
            ("header", "redirect", "me@example.test"),
            ("subject", "discard", ""),
        ] {
            let r = rule(field, "acme \"quoted\" \\ value", action, target)
                .sieve()
                .unwrap();
            let text = format!("{}\n{}", r.require, r.body);
            sieve::Script::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        }
    }

    #[test]
    fn a_value_cannot_break_out_of_its_string() {
        let r = rule("subject", "x\"; discard; \"", "flag", "")
            .sieve()
            .unwrap();
        assert!(r.body.contains(r#""x\"; discard; \"""#), "{}", r.body);
        let r = rule("subject", "a\r\ndiscard;", "flag", "")
            .sieve()
            .unwrap();
        assert!(!r.body.contains("\ndiscard;"), "{}", r.body);
    }

    #[test]
    fn incomplete_rules_say_what_is_missing() {
        assert!(
            rule("from", "", "discard", "")
                .sieve()
                .unwrap_err()
                .contains("contains")
        );
        assert!(
            rule("from", "x", "fileinto", "")
                .sieve()
                .unwrap_err()
                .contains("mailbox")
        );
        assert!(
            rule("from", "x", "redirect", "nobody")
                .sieve()
                .unwrap_err()
                .contains("address")
        );
        assert!(rule("nothing", "x", "discard", "").sieve().is_err());
    }
}
