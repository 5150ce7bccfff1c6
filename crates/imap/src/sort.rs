//! SORT's ordering (RFC 5256 3, RFC 5957), on the keys the store keeps
//! for each message: nothing here reads a message.

use rustc_hash::FxHashMap;

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
///
/// Each key is first turned into a number per item that orders the same
/// way (a text key into the rank of its value among the distinct ones,
/// which a mailbox has far fewer of than messages), so the sort itself
/// compares integers: 100,000 subjects sort in a few milliseconds instead
/// of tens.
pub fn sort(items: &mut [Item], criteria: &[SortCriterion]) {
    // Sequence order first; then one sort per key from the last to the
    // first, each keeping the order of the ones before among its ties.
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    for criterion in criteria.iter().rev() {
        let values = match text_key(criterion.key) {
            Some(field) => text_ranks(items, field),
            None => items
                .iter()
                .map(|i| number(criterion.key, i.entry))
                .collect(),
        };
        // (value, place so far): no two are equal, so the unstable sort
        // (the faster) keeps ties in their order as a stable one would.
        let mut rows: Vec<(u64, u32)> = order
            .iter()
            .enumerate()
            .map(|(place, &i)| {
                let v = values[i as usize];
                (if criterion.reverse { !v } else { v }, place as u32)
            })
            .collect();
        rows.sort_unstable();
        order = rows
            .iter()
            .map(|&(_, place)| order[place as usize])
            .collect();
    }
    let sorted: Vec<Item> = order
        .iter()
        .map(|&i| Item {
            index: items[i as usize].index,
            entry: items[i as usize].entry,
        })
        .collect();
    for (slot, item) in items.iter_mut().zip(sorted) {
        *slot = item;
    }
}

/// The sent date RFC 5256 2.2 sorts by: the Date field, else the
/// internal date.
pub fn sent(e: &SortEntry) -> i64 {
    e.keys.sent.unwrap_or(e.internal_date)
}

/// A numeric key as a number that orders the same way (i64 with its sign
/// bit flipped orders as u64).
fn number(key: SortKey, e: &SortEntry) -> u64 {
    let signed = |v: i64| (v as u64) ^ (1 << 63);
    match key {
        SortKey::Arrival => signed(e.internal_date),
        SortKey::Date => signed(sent(e)),
        SortKey::Size => e.size,
        _ => 0,
    }
}

/// The kept text a text key sorts by; `None` for the numeric keys.
fn text_key(key: SortKey) -> Option<fn(&SortEntry) -> &str> {
    Some(match key {
        SortKey::Subject => |e| &e.keys.subject,
        SortKey::From => |e| &e.keys.from,
        SortKey::To => |e| &e.keys.to,
        SortKey::Cc => |e| &e.keys.cc,
        SortKey::DisplayFrom => |e| &e.keys.display_from,
        SortKey::DisplayTo => |e| &e.keys.display_to,
        SortKey::Arrival | SortKey::Date | SortKey::Size => return None,
    })
}

/// Each item's rank among the distinct values of `field`, which sort as
/// byte strings (the keys are kept already case-mapped, RFC 5256 2.1):
/// one hash per item (Fx, not SipHash: the values are the mailbox's own),
/// and a sort of the distinct values only.
fn text_ranks(items: &[Item], field: fn(&SortEntry) -> &str) -> Vec<u64> {
    let mut slots: FxHashMap<&str, u32> = FxHashMap::default();
    let mut distinct: Vec<&str> = Vec::new();
    let slot_of: Vec<u32> = items
        .iter()
        .map(|item| {
            let v = field(item.entry);
            *slots.entry(v).or_insert_with(|| {
                distinct.push(v);
                distinct.len() as u32 - 1
            })
        })
        .collect();
    let mut by_value: Vec<u32> = (0..distinct.len() as u32).collect();
    by_value.sort_unstable_by_key(|&slot| distinct[slot as usize]);
    let mut rank = vec![0u64; distinct.len()];
    for (r, &slot) in by_value.iter().enumerate() {
        rank[slot as usize] = r as u64;
    }
    slot_of.iter().map(|&slot| rank[slot as usize]).collect()
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
