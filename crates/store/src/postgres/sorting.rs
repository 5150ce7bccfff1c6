//! The sort, thread and header-search keys (RFC 5256) on PostgreSQL: kept
//! beside each message row at delivery, read for SORT, THREAD and SEARCH.

use super::traces::without_nul;
use super::*;
use crate::SortKeys;

/// Keeps a message's sort keys beside its row.
pub(super) async fn put_keys(c: &impl GenericClient, id: i64, k: &SortKeys) -> Result<()> {
    put_many_keys(c, &[(id, k)]).await
}

/// Message IDs cannot hold spaces (RFC 5322 3.6.4), so they join by one.
fn joined_refs(k: &SortKeys) -> String {
    let refs: Vec<&str> = k
        .references
        .iter()
        .map(String::as_str)
        .filter(|r| !r.contains(' '))
        .collect();
    refs.join(" ")
}

/// A written day as the number `sent_day` keeps: YYYYMMDD.
fn day((y, m, d): (i64, u32, u32)) -> i64 {
    y * 10_000 + i64::from(m) * 100 + i64::from(d)
}

/// The read [`Messages::sort_keys`] makes: the columns `parts` asks for,
/// NULL in place of the others (a sort by date moves no header text), and
/// for a message without kept keys its row id and body.
pub(super) fn select_keys(parts: SortParts) -> String {
    let pick = |wanted: bool, column: &str| {
        if wanted {
            column.to_string()
        } else {
            "NULL::TEXT".to_string()
        }
    };
    let (text, threads) = (parts.text, parts.threads);
    format!(
        "SELECT m.uid, m.internal_date, m.size, k.sent, k.sent_day, k.reply, {}, {}, {}, {}, \
         {}, {}, {}, {}, {}, CASE WHEN k.id IS NULL THEN m.id END, m.blob \
         FROM messages m LEFT JOIN message_keys k ON k.id = m.id \
         WHERE m.mailbox_id = $1 ORDER BY m.uid",
        pick(text || threads, "k.subject"),
        pick(text, "k.from_key"),
        pick(text, "k.to_key"),
        pick(text, "k.cc_key"),
        pick(text, "k.display_from"),
        pick(text, "k.display_to"),
        pick(threads, "k.message_id"),
        pick(threads, "k.refs"),
        pick(parts.fields, "k.fields"),
    )
}

/// A message's sort keys from the columns of [`select_keys`],
/// with only the parts asked for filled.
pub(super) fn entry_from_row(r: &Row, parts: SortParts) -> Result<SortEntry> {
    let text =
        |i: usize| -> Result<String> { Ok(r.try_get::<_, Option<String>>(i)?.unwrap_or_default()) };
    let mut keys = SortKeys {
        sent: r.try_get(3)?,
        sent_day: r
            .try_get::<_, Option<i64>>(4)?
            .map(|n| (n / 10_000, (n / 100 % 100) as u32, (n % 100) as u32)),
        reply: r.try_get::<_, Option<bool>>(5)?.unwrap_or(false),
        ..SortKeys::default()
    };
    if parts.text || parts.threads {
        keys.subject = text(6)?;
    }
    if parts.text {
        keys.from = text(7)?;
        keys.to = text(8)?;
        keys.cc = text(9)?;
        keys.display_from = text(10)?;
        keys.display_to = text(11)?;
    }
    if parts.threads {
        keys.message_id = r.try_get(12)?;
        keys.references = text(13)?
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    if parts.fields {
        keys.fields = r.try_get(14)?;
    }
    Ok(SortEntry {
        uid: r.try_get::<_, i64>(0)? as u32,
        internal_date: r.try_get(1)?,
        size: r.try_get::<_, i64>(2)?.max(0) as u64,
        keys,
    })
}

/// Keys as [`entry_from_row`] gives them: only the parts asked for.
pub(super) fn only(keys: SortKeys, parts: SortParts) -> SortKeys {
    let mut kept = SortKeys {
        sent: keys.sent,
        sent_day: keys.sent_day,
        reply: keys.reply,
        ..SortKeys::default()
    };
    if parts.text || parts.threads {
        kept.subject = keys.subject.clone();
    }
    if parts.text {
        kept.from = keys.from;
        kept.to = keys.to;
        kept.cc = keys.cc;
        kept.display_from = keys.display_from;
        kept.display_to = keys.display_to;
    }
    if parts.threads {
        kept.message_id = keys.message_id;
        kept.references = keys.references;
    }
    if parts.fields {
        kept.fields = keys.fields;
    }
    kept
}

/// Keeps many messages' keys in one statement: (message row id, keys).
pub(super) async fn put_many_keys(c: &impl GenericClient, kept: &[(i64, &SortKeys)]) -> Result<()> {
    if kept.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = kept.iter().map(|(id, _)| *id).collect();
    // Header text may carry a NUL, which PostgreSQL's TEXT cannot hold.
    let text = |f: &dyn Fn(&SortKeys) -> &str| -> Vec<String> {
        kept.iter()
            .map(|(_, k)| without_nul(f(k)).into_owned())
            .collect()
    };
    let sent: Vec<Option<i64>> = kept.iter().map(|(_, k)| k.sent).collect();
    let subjects = text(&|k| &k.subject);
    let replies: Vec<bool> = kept.iter().map(|(_, k)| k.reply).collect();
    let from = text(&|k| &k.from);
    let to = text(&|k| &k.to);
    let cc = text(&|k| &k.cc);
    let display_from = text(&|k| &k.display_from);
    let display_to = text(&|k| &k.display_to);
    let message_ids: Vec<Option<String>> = kept
        .iter()
        .map(|(_, k)| k.message_id.as_deref().map(|m| without_nul(m).into_owned()))
        .collect();
    let refs: Vec<String> = kept
        .iter()
        .map(|(_, k)| without_nul(&joined_refs(k)).into_owned())
        .collect();
    let days: Vec<Option<i64>> = kept.iter().map(|(_, k)| k.sent_day.map(day)).collect();
    let fields: Vec<Option<String>> = kept
        .iter()
        .map(|(_, k)| k.fields.as_deref().map(|f| without_nul(f).into_owned()))
        .collect();
    exec(
        c,
        "INSERT INTO message_keys (id, sent, subject, reply, from_key, to_key, cc_key, \
         display_from, display_to, message_id, refs, sent_day, fields) \
         SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BOOLEAN[], $5::TEXT[], \
         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::BIGINT[], \
         $13::TEXT[]) ON CONFLICT DO NOTHING",
        &[
            &ids,
            &sent,
            &subjects,
            &replies,
            &from,
            &to,
            &cc,
            &display_from,
            &display_to,
            &message_ids,
            &refs,
            &days,
            &fields,
        ],
    )
    .await?;
    Ok(())
}
