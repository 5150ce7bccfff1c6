//! THREAD (RFC 5256 3): ORDEREDSUBJECT and REFERENCES, on the keys the
//! store keeps for each message, and the parenthesised answer.

use std::fmt::Write;

use rustc_hash::FxHashMap;

use store::SortEntry;

use crate::sort::sent;

/// A message to thread: its index in the view (sequence number - 1) and
/// its keys.
pub struct Msg<'a> {
    pub index: usize,
    pub entry: &'a SortEntry,
}

/// A thread tree: a message (an index into the messages given) or a dummy
/// standing for a message that is not there, and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub msg: Option<usize>,
    pub children: Vec<Node>,
}

/// ORDEREDSUBJECT (RFC 5256 3): messages with one base subject form a
/// thread; the earliest is the parent of all the others.
pub fn ordered_subject(msgs: &[Msg]) -> Vec<Node> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    let key = |i: usize| {
        (
            &msgs[i].entry.keys.subject,
            sent(msgs[i].entry),
            msgs[i].index,
        )
    };
    order.sort_by(|&a, &b| key(a).cmp(&key(b)));
    let mut threads: Vec<Node> = Vec::new();
    let mut last_subject: Option<&String> = None;
    for i in order {
        let subject = &msgs[i].entry.keys.subject;
        let leaf = Node {
            msg: Some(i),
            children: Vec::new(),
        };
        match threads.last_mut() {
            Some(t) if last_subject == Some(subject) => t.children.push(leaf),
            _ => threads.push(leaf),
        }
        last_subject = Some(subject);
    }
    // Threads in the order of their first message's sent date.
    threads.sort_by_key(|t| t.msg.map(|i| (sent(msgs[i].entry), msgs[i].index)));
    threads
}

/// REFERENCES (RFC 5256 3, after Jamie Zawinski's algorithm): parents from
/// Message-ID and References (or In-Reply-To), dummies for messages not
/// there, then threads with one base subject gathered.
pub fn references(msgs: &[Msg]) -> Vec<Node> {
    let mut roots = linked(msgs);
    sort_siblings(&mut roots, msgs);
    // (5) Roots with one base subject gathered.
    let roots = gather_subjects(roots, msgs);
    // (6) Siblings sorted again, merged ones included.
    let mut roots = roots;
    sort_siblings(&mut roots, msgs);
    roots
}

/// Dovecot's REFS: the threads of REFERENCES before any gathering by
/// subject, each thread's replies by sent date as there, and the threads
/// by their newest message (sent date, then sequence), oldest first.
pub fn refs(msgs: &[Msg]) -> Vec<Node> {
    let mut roots = linked(msgs);
    sort_siblings(&mut roots, msgs);
    let mut keyed: Vec<((i64, usize), Node)> =
        roots.into_iter().map(|n| (newest(&n, msgs), n)).collect();
    keyed.sort_by_key(|(k, _)| *k);
    keyed.into_iter().map(|(_, n)| n).collect()
}

/// The newest message of a tree: its (sent date, index), walked without
/// recursion.
fn newest(root: &Node, msgs: &[Msg]) -> (i64, usize) {
    let mut best = (i64::MIN, 0);
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if let Some(i) = n.msg {
            best = best.max((sent(msgs[i].entry), msgs[i].index));
        }
        stack.extend(n.children.iter());
    }
    best
}

/// Steps 1 to 3 of REFERENCES: the containers linked by Message-ID and
/// References, and the root set with dummies pruned.
fn linked(msgs: &[Msg]) -> Vec<Node> {
    let mut t = Table {
        c: Vec::with_capacity(msgs.len() * 2),
        ids: FxHashMap::with_capacity_and_hasher(msgs.len() * 2, Default::default()),
    };
    let mut refs: Vec<usize> = Vec::new();
    // (1) Containers and their links, message by message.
    for (i, m) in msgs.iter().enumerate() {
        let keys = &m.entry.keys;
        let own = match keys.message_id.as_deref().and_then(|id| t.ids.get(id)) {
            // A container made by a reference, waiting for its message.
            Some(&c) if t.c[c].msg.is_none() => c,
            // No Message-ID, or one seen already: a unique one (1A).
            _ => {
                let c = t.new_container();
                if let Some(id) = &keys.message_id {
                    t.ids.entry(id).or_insert(c);
                }
                c
            }
        };
        t.c[own].msg = Some(i);
        // (1B) References linked in order, never changing a parent, never
        // making a loop.
        refs.clear();
        refs.extend(keys.references.iter().map(|r| t.container(r)));
        for pair in refs.windows(2) {
            let (parent, child) = (pair[0], pair[1]);
            if t.c[child].parent.is_none() && !t.would_loop(parent, child) {
                t.link(parent, child);
            }
        }
        // (1C) The last reference is the parent, replacing any other.
        t.unlink(own);
        if let Some(&last) = refs.last()
            && !t.would_loop(last, own)
        {
            t.link(last, own);
        }
    }
    // (2) The root set; (3) dummies pruned. (4), sorting, is the caller's.
    let mut scratch = Scratch::default();
    (0..t.c.len())
        .filter(|&c| t.c[c].parent.is_none())
        .filter_map(|c| t.tree(c, &mut scratch))
        .collect()
}

/// The answer's thread list: `(1 2 (3)(4))`, with `number` for each message.
pub fn write(out: &mut String, threads: &[Node], number: &dyn Fn(usize) -> u32) {
    for t in threads {
        out.push('(');
        write_node(out, t, number);
        out.push(')');
    }
}

fn write_node(out: &mut String, node: &Node, number: &dyn Fn(usize) -> u32) {
    if let Some(m) = node.msg {
        let _ = write!(out, "{}", number(m));
    }
    match node.children.as_slice() {
        [] => {}
        // One child continues the line (RFC 5256 4: `(3 6 ...)`).
        [only] if node.msg.is_some() => {
            out.push(' ');
            write_node(out, only, number);
        }
        children => {
            if node.msg.is_some() {
                out.push(' ');
            }
            for c in children {
                out.push('(');
                write_node(out, c, number);
                out.push(')');
            }
        }
    }
}

/// The containers of step 1, by index, and the message IDs (borrowed
/// from the keys: 100,000 messages make no string copies).
struct Table<'a> {
    c: Vec<Container>,
    ids: FxHashMap<&'a str, usize>,
}

/// What [`Table::tree`] builds in, kept from one root to the next.
#[derive(Default)]
struct Scratch {
    nodes: Vec<(Option<usize>, Option<usize>)>,
    queue: std::collections::VecDeque<(usize, Option<usize>, usize)>,
}

#[derive(Default)]
struct Container {
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

impl<'a> Table<'a> {
    fn new_container(&mut self) -> usize {
        self.c.push(Container::default());
        self.c.len() - 1
    }

    /// The container of a message ID, made (empty) if new.
    fn container(&mut self, id: &'a str) -> usize {
        if let Some(&c) = self.ids.get(id) {
            return c;
        }
        let c = self.new_container();
        self.ids.insert(id, c);
        c
    }

    /// Whether making `parent` the parent of `child` makes a loop: `child`
    /// is `parent` or one of its ancestors.
    fn would_loop(&self, parent: usize, child: usize) -> bool {
        let mut at = Some(parent);
        while let Some(c) = at {
            if c == child {
                return true;
            }
            at = self.c[c].parent;
        }
        false
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.c[child].parent = Some(parent);
        self.c[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.c[child].parent.take() {
            self.c[p].children.retain(|&c| c != child);
        }
    }

    /// The tree under a container (no loops: links never make one), built
    /// without recursion and pruned of dummies on the way (step 3: a
    /// dummy without children goes; one with children gives them to its
    /// own level, except at the root when it has more than one). Deeper
    /// than [`MAX_DEPTH`] messages, replies hang from the message at that
    /// depth: hostile mail (a References chain thousands long, thousands
    /// of replies each to the last) costs no more stack later than a
    /// short thread.
    fn tree(&self, root: usize, scratch: &mut Scratch) -> Option<Node> {
        // Most threads are one message: no building.
        if self.c[root].children.is_empty() {
            return self.c[root].msg.map(|m| Node {
                msg: Some(m),
                children: Vec::new(),
            });
        }
        // Breadth first: (message, the node it hangs from), parents first.
        let Scratch { nodes, queue } = scratch;
        nodes.clear();
        queue.clear();
        queue.push_back((root, None, 0));
        while let Some((c, parent, depth)) = queue.pop_front() {
            let msg = self.c[c].msg;
            nodes.push((msg, parent));
            let me = nodes.len() - 1;
            // A dummy's children take its place (it is spliced out), so
            // only messages count towards the depth.
            let (hang, next) = match msg {
                None => (me, depth),
                Some(_) if depth < MAX_DEPTH => (me, depth + 1),
                Some(_) => (parent.unwrap_or(me), depth),
            };
            for &k in &self.c[c].children {
                queue.push_back((k, Some(hang), next));
            }
        }
        // Children before parents: from the end, each node complete when
        // it is handed to its parent.
        let mut built: Vec<Option<Node>> = nodes
            .iter()
            .map(|(msg, _)| {
                Some(Node {
                    msg: *msg,
                    children: Vec::new(),
                })
            })
            .collect();
        for i in (1..nodes.len()).rev() {
            let (Some(node), Some(p)) = (built[i].take(), nodes[i].1) else {
                continue;
            };
            let Some(parent) = built[p].as_mut() else {
                continue;
            };
            match node.msg {
                Some(_) => parent.children.push(node),
                None => parent.children.extend(node.children.into_iter().rev()),
            }
        }
        for n in built.iter_mut().flatten() {
            n.children.reverse();
        }
        let top = built.first_mut().and_then(Option::take)?;
        match (top.msg, top.children.len()) {
            (None, 0) => None,
            (None, 1) => top.children.into_iter().next(),
            _ => Some(top),
        }
    }
}

/// How deep a thread tree goes; deeper replies are shown at this depth.
const MAX_DEPTH: usize = 200;

/// The date a node sorts by: its message's, or a dummy's first child's.
fn node_date(n: &Node, msgs: &[Msg]) -> (i64, usize) {
    match n.msg {
        Some(i) => (sent(msgs[i].entry), msgs[i].index),
        None => n
            .children
            .first()
            .map_or((i64::MAX, usize::MAX), |c| node_date(c, msgs)),
    }
}

/// Sorts every set of siblings by sent date, children first.
fn sort_siblings(nodes: &mut [Node], msgs: &[Msg]) {
    for n in nodes.iter_mut() {
        sort_siblings(&mut n.children, msgs);
    }
    nodes.sort_by_key(|n| node_date(n, msgs));
}

/// The base subject of a root (a dummy's: its first child's) and whether
/// it was a reply.
fn root_subject<'a>(n: &Node, msgs: &'a [Msg]) -> Option<(&'a str, bool)> {
    let m = match n.msg {
        Some(i) => i,
        None => n.children.first()?.msg?,
    };
    let k = &msgs[m].entry.keys;
    (!k.subject.is_empty()).then_some((k.subject.as_str(), k.reply))
}

/// Step 5: roots that share a base subject become one thread.
fn gather_subjects(roots: Vec<Node>, msgs: &[Msg]) -> Vec<Node> {
    // (5A) The subject table: the root each subject gathers under.
    let mut table: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, r) in roots.iter().enumerate() {
        let Some((subject, reply)) = root_subject(r, msgs) else {
            continue;
        };
        match table.get(subject) {
            None => {
                table.insert(subject, i);
            }
            Some(&old) => {
                let o = &roots[old];
                let old_reply = root_subject(o, msgs).is_some_and(|s| s.1);
                if (r.msg.is_none() && o.msg.is_some()) || (old_reply && !reply && r.msg.is_some())
                {
                    table.insert(subject, i);
                }
            }
        }
    }
    // (5B) Every other root with that subject merged into the table's.
    let mut slots: Vec<Option<Node>> = roots.into_iter().map(Some).collect();
    let mut keeper: FxHashMap<&str, usize> = table.clone();
    for i in 0..slots.len() {
        let Some((subject, reply)) = slots[i].as_ref().and_then(|r| root_subject(r, msgs)) else {
            continue;
        };
        let Some(&at) = keeper.get(subject) else {
            continue;
        };
        if at == i {
            continue;
        }
        let (Some(this), Some(kept)) = (slots[i].take(), slots[at].take()) else {
            continue;
        };
        let kept_reply = kept.msg.is_some() && root_subject(&kept, msgs).is_some_and(|s| s.1);
        let merged = match (kept.msg.is_none(), this.msg.is_none()) {
            // Both dummies: one dummy with all their children.
            (true, true) => {
                let mut k = kept;
                k.children.extend(this.children);
                k
            }
            // One dummy: the real message joins the dummy's children.
            (true, false) => {
                let mut k = kept;
                k.children.push(this);
                k
            }
            (false, true) => {
                let mut t = this;
                t.children.push(kept);
                t
            }
            // The table's is no reply and this one is: a child of it.
            (false, false) if !kept_reply && reply => {
                let mut k = kept;
                k.children.push(this);
                k
            }
            // Otherwise both become children of a new dummy.
            (false, false) => Node {
                msg: None,
                children: vec![kept, this],
            },
        };
        slots[at] = Some(merged);
        keeper.insert(subject, at);
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::SortKeys;

    fn e(uid: u32, date: i64, subject: &str, id: &str, refs: &[&str]) -> SortEntry {
        let (base, reply) = mime::sort::base_subject(subject);
        SortEntry {
            uid,
            internal_date: date,
            size: 1,
            keys: SortKeys {
                sent: Some(date),
                subject: mime::sort::casemap(&base),
                reply,
                message_id: (!id.is_empty()).then(|| id.to_string()),
                references: refs.iter().map(|r| r.to_string()).collect(),
                ..SortKeys::default()
            },
        }
    }

    fn answer(entries: &[SortEntry], f: fn(&[Msg]) -> Vec<Node>) -> String {
        let msgs: Vec<Msg> = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| Msg { index, entry })
            .collect();
        let mut out = String::new();
        write(&mut out, &f(&msgs), &|i| entries[i].uid);
        out
    }

    #[test]
    fn references_follow_parents_and_gather_subjects() {
        let entries = [
            e(1, 10, "Hello", "a", &[]),
            e(2, 20, "Re: Hello", "b", &["a"]),
            e(3, 30, "Re: Hello", "c", &["a"]),
            e(4, 40, "Re: Hello", "d", &["a", "b"]),
            // Its parent is not in the mailbox: a dummy, pruned.
            e(5, 50, "Other", "e", &["missing"]),
            // No references, same subject as 1: gathered under it.
            e(6, 60, "Re: Hello", "f", &[]),
            // Duplicate Message-ID: a thread of its own.
            e(7, 5, "Lunch", "a", &[]),
        ];
        assert_eq!(answer(&entries, references), "(7)(1 (2 4)(3)(6))(5)");
    }

    #[test]
    fn two_children_of_a_missing_parent_keep_a_dummy_root() {
        let entries = [e(1, 10, "X", "a", &["gone"]), e(2, 20, "Y", "b", &["gone"])];
        assert_eq!(answer(&entries, references), "((1)(2))");
    }

    #[test]
    fn references_never_loop() {
        // 1 names 2's ID as parent first; 2 naming 1 back would loop, so
        // 2 stays the root.
        let entries = [e(1, 10, "A", "a", &["b"]), e(2, 20, "B", "b", &["a"])];
        assert_eq!(answer(&entries, references), "(2 1)");
        let own = [e(1, 10, "A", "a", &["a"])];
        assert_eq!(answer(&own, references), "(1)");
    }

    #[test]
    fn ordered_subject_groups_by_base_subject() {
        let entries = [
            e(1, 30, "Re: Hello", "", &[]),
            e(2, 10, "Other", "", &[]),
            e(3, 20, "Hello", "", &[]),
            e(4, 40, "hello", "", &[]),
        ];
        assert_eq!(answer(&entries, ordered_subject), "(2)(3 (1)(4))");
    }

    #[test]
    fn long_chains_are_cut_at_the_depth_limit() {
        // 20,000 missing references: dummies all the way, pruned.
        let refs: Vec<String> = (0..20_000).map(|i| format!("r{i}")).collect();
        let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
        let entries = [e(1, 10, "X", "x", &refs)];
        assert_eq!(answer(&entries, references), "(1)");
        // 5,000 messages each answering the one before: a chain to the
        // depth limit, then the rest hang from its last message.
        let chain: Vec<SortEntry> = (0..5_000u32)
            .map(|i| {
                let id = format!("m{i}");
                let parent = format!("m{}", i.wrapping_sub(1));
                let refs: Vec<&str> = if i == 0 {
                    vec![]
                } else {
                    vec![parent.as_str()]
                };
                e(i + 1, i as i64, "Chain", &id, &refs)
            })
            .collect();
        let out = answer(&chain, references);
        let flat: String = (1..=MAX_DEPTH as u32).map(|u| format!("{u} ")).collect();
        assert!(
            out.starts_with(&format!("({}", flat.trim_end())),
            "{}",
            &out[..200]
        );
        assert!(out.contains(&format!(
            "{} ({})({})",
            MAX_DEPTH,
            MAX_DEPTH + 1,
            MAX_DEPTH + 2
        )));
        assert!(out.ends_with("(5000))"));
    }
}
