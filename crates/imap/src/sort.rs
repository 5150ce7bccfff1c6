//! SORT's ordering (RFC 5256 3, RFC 5957), on the keys the store keeps
//! for each message: nothing here reads a message.

use std::cmp::Ordering;

use imap_proto::{SortCriterion, SortKey};
use store::SortEntry;

/// A message to order: its index in the view (sequence number - 1) and
/// its keys.
pub struct Item<'a> {
    pub index: usize,
    pub entry: &'a SortEntry,
}

/// Orders `items` by `criteria`; messages equal under every key keep
/// sequence order, which REVERSE does not turn around (RFC 5256 3).
pub fn sort(items: &mut [Item], criteria: &[SortCriterion]) {
    items.sort_by(|a, b| {
        criteria
            .iter()
            .map(|c| {
                let o = compare(c.key, a.entry, b.entry);
                if c.reverse { o.reverse() } else { o }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
            .then(a.index.cmp(&b.index))
    });
}

/// The sent date RFC 5256 2.2 sorts by: the Date field, else the
/// internal date.
pub fn sent(e: &SortEntry) -> i64 {
    e.keys.sent.unwrap_or(e.internal_date)
}

fn compare(key: SortKey, a: &SortEntry, b: &SortEntry) -> Ordering {
    let (x, y) = (&a.keys, &b.keys);
    match key {
        SortKey::Arrival => a.internal_date.cmp(&b.internal_date),
        SortKey::Date => sent(a).cmp(&sent(b)),
        SortKey::Size => a.size.cmp(&b.size),
        SortKey::Subject => x.subject.cmp(&y.subject),
        SortKey::From => x.from.cmp(&y.from),
        SortKey::To => x.to.cmp(&y.to),
        SortKey::Cc => x.cc.cmp(&y.cc),
        SortKey::DisplayFrom => x.display_from.cmp(&y.display_from),
        SortKey::DisplayTo => x.display_to.cmp(&y.display_to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::SortKeys;

    fn entry(uid: u32, date: i64, size: u64, subject: &str) -> SortEntry {
        SortEntry {
            uid,
            internal_date: date,
            size,
            keys: SortKeys {
                subject: subject.into(),
                ..SortKeys::default()
            },
        }
    }

    #[test]
    fn keys_in_turn_then_sequence_order() {
        let e = [
            entry(1, 30, 5, "B"),
            entry(2, 10, 5, "A"),
            entry(3, 20, 7, "B"),
            entry(4, 10, 5, "A"),
        ];
        let order = |criteria: &[SortCriterion]| {
            let mut items: Vec<Item> = e
                .iter()
                .enumerate()
                .map(|(index, entry)| Item { index, entry })
                .collect();
            sort(&mut items, criteria);
            items.iter().map(|i| i.entry.uid).collect::<Vec<_>>()
        };
        let c = |reverse, key| SortCriterion { reverse, key };
        assert_eq!(order(&[c(false, SortKey::Arrival)]), vec![2, 4, 3, 1]);
        // REVERSE turns the key around, not the tie between 2 and 4.
        assert_eq!(order(&[c(true, SortKey::Arrival)]), vec![1, 3, 2, 4]);
        assert_eq!(
            order(&[c(false, SortKey::Subject), c(true, SortKey::Size)]),
            vec![2, 4, 3, 1]
        );
        // No Date field: DATE is the internal date.
        assert_eq!(order(&[c(false, SortKey::Date)]), vec![2, 4, 3, 1]);
    }
}
