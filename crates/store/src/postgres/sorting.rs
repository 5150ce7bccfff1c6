//! The sort, thread and header-search keys (RFC 5256) on PostgreSQL: kept
//! beside each message row at delivery, read for SORT, THREAD and SEARCH.

use super::*;
use crate::SortKeys;

/// Keeps a message's sort keys beside its row.
pub(super) async fn put_keys(c: &impl GenericClient, id: i64, k: &SortKeys) -> Result<()> {
    // Message IDs cannot hold spaces (RFC 5322 3.6.4), so they join by one.
    let refs: Vec<&str> = k
        .references
        .iter()
        .map(String::as_str)
        .filter(|r| !r.contains(' '))
        .collect();
    let day = k
        .sent_day
        .map(|(y, m, d)| y * 10_000 + i64::from(m) * 100 + i64::from(d));
    exec(
        c,
        "INSERT INTO message_keys (id, sent, subject, reply, from_key, to_key, cc_key, \
         display_from, display_to, message_id, refs, sent_day, fields) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
        &[
            &id,
            &k.sent,
            &k.subject,
            &k.reply,
            &k.from,
            &k.to,
            &k.cc,
            &k.display_from,
            &k.display_to,
            &k.message_id,
            &refs.join(" "),
            &day,
            &k.fields,
        ],
    )
    .await?;
    Ok(())
}

/// A message's sort keys from the columns [`Messages::sort_keys`] reads,
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
