//! mail-parser's parsed message, cut to the depth every other walk of a
//! message stops at ([`MAX_DEPTH`]). mail-parser itself nests enclosed
//! message/rfc822 parts without limit, and such a tree is dropped, cloned
//! and walked recursively: a 500 KB message with 10,000 nested messages
//! overflows a thread's stack on the drop alone. Every user of mail-parser
//! in Satchel (search, spam, Sieve) parses through [`parse`].

use std::borrow::Cow;

use mail_parser::{Message, MessageParser, PartType};

use crate::part::MAX_DEPTH;

/// Parses `raw` and turns every message/rfc822 part as deep as
/// [`MAX_DEPTH`] or deeper (the message itself is depth 0, and each
/// multipart or message level adds one, as in [`crate::Part`]) into an
/// opaque binary part, as the IMAP views show it. No recursion: the cost is
/// one pass over the parts, whatever the nesting.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    let mut root = MessageParser::default().parse(raw)?;
    let mut graveyard = Vec::new();
    prune(&mut root, &mut graveyard);
    bury(graveyard);
    Some(root)
}

/// One message being walked: its part depths, and the next part to look at.
struct Frame<'x> {
    message: Message<'x>,
    depths: Vec<usize>,
    next: usize,
    /// Where in the parent this message goes back once walked.
    slot: usize,
}

fn prune<'x>(root: &mut Message<'x>, graveyard: &mut Vec<Message<'x>>) {
    let top = std::mem::take(root);
    let mut stack = vec![Frame {
        depths: part_depths(&top, 0),
        message: top,
        next: 0,
        slot: 0,
    }];
    while let Some(frame) = stack.last_mut() {
        let Some(i) = frame.next_message() else {
            // Done: put the message back into its parent (or the root).
            let Some(done) = stack.pop() else { break };
            match stack.last_mut() {
                Some(parent) => {
                    if let Some(part) = parent.message.parts.get_mut(done.slot) {
                        part.body = PartType::Message(done.message);
                    }
                }
                None => *root = done.message,
            }
            continue;
        };
        let depth = frame.depths[i];
        let part = &mut frame.message.parts[i];
        let PartType::Message(inner) = std::mem::take(&mut part.body) else {
            continue;
        };
        if depth >= MAX_DEPTH {
            // Past the limit the enclosed message stays unopened bytes.
            let bytes = frame
                .message
                .raw_message
                .get(part.offset_body as usize..part.offset_end as usize)
                .unwrap_or_default()
                .to_vec();
            part.body = PartType::Binary(Cow::Owned(bytes));
            graveyard.push(inner);
            continue;
        }
        let depths = part_depths(&inner, depth + 1);
        stack.push(Frame {
            message: inner,
            depths,
            next: 0,
            slot: i,
        });
    }
}

impl Frame<'_> {
    /// The next part that encloses a message, if any is left.
    fn next_message(&mut self) -> Option<usize> {
        while self.next < self.message.parts.len() {
            let i = self.next;
            self.next += 1;
            if matches!(self.message.parts[i].body, PartType::Message(_)) {
                return Some(i);
            }
        }
        None
    }
}

/// The depth of each part of `message`, whose root part is at `base`. A
/// part no multipart names (mail-parser lists them all) keeps `base`.
fn part_depths(message: &Message<'_>, base: usize) -> Vec<usize> {
    let mut depths = vec![base; message.parts.len()];
    let mut todo = vec![0usize];
    let mut seen = vec![false; message.parts.len()];
    while let Some(i) = todo.pop() {
        if i >= message.parts.len() || std::mem::replace(&mut seen[i], true) {
            continue;
        }
        if let PartType::Multipart(children) = &message.parts[i].body {
            for &c in children {
                let c = c as usize;
                if c < depths.len() && !seen[c] {
                    depths[c] = depths[i] + 1;
                    todo.push(c);
                }
            }
        }
    }
    depths
}

/// Drops messages one level at a time, so no drop recurses deeply.
fn bury(mut graveyard: Vec<Message<'_>>) {
    while let Some(mut message) = graveyard.pop() {
        for part in &mut message.parts {
            if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                graveyard.push(inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> Vec<u8> {
        let mut m = b"Subject: x\r\nContent-Type: message/rfc822\r\n\r\n".repeat(levels);
        m.extend_from_slice(b"Subject: inner\r\n\r\nneedle\r\n");
        m
    }

    fn depth(mut m: &Message<'_>) -> usize {
        let mut d = 0;
        while let Some(inner) = m.parts.iter().find_map(|p| match &p.body {
            PartType::Message(inner) => Some(inner),
            _ => None,
        }) {
            d += 1;
            m = inner;
        }
        d
    }

    #[test]
    fn shallow_messages_are_untouched() {
        let raw = nested(3);
        let m = parse(&raw).unwrap();
        assert_eq!(depth(&m), 3);
        let bounded = MessageParser::default().parse(&raw[..]).unwrap();
        assert_eq!(m, bounded);
    }

    #[test]
    fn deep_nesting_is_cut_at_the_limit_without_recursion() {
        // A thread stack as small as tokio's workers' (2 MiB) holds it.
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(|| {
                let raw = nested(20_000);
                let m = parse(&raw).unwrap();
                let d = depth(&m);
                drop(m);
                d
            })
            .unwrap();
        assert_eq!(handle.join().unwrap(), MAX_DEPTH);
    }

    #[test]
    fn multipart_levels_count_towards_the_depth() {
        let mut raw = Vec::new();
        for i in 0..MAX_DEPTH {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nx\r\n");
        let m = parse(&raw).unwrap();
        // The message/rfc822 part sits at MAX_DEPTH: left unopened.
        assert_eq!(depth(&m), 0);
        assert!(
            m.parts
                .iter()
                .any(|p| matches!(&p.body, PartType::Binary(b) if b.starts_with(b"Subject: in")))
        );
    }
}
