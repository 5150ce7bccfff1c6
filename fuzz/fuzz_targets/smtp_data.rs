//! The DATA decoder, the part of the MX door that SMTP smuggling attacks.
//! Whatever the bytes and however they are split into reads, the decoder
//! ends at the same place with the same message (a split must never make
//! `<LF>.<LF>` or the like look like the end); a message it accepts holds
//! no bare CR or LF and no NUL; and what our relay sends for an accepted
//! message (dot-stuffed, ending in `CRLF.CRLF`) decodes back to the same
//! message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp::data::DotDecoder;

const MAX_SIZE: usize = 64 * 1024;
const MAX_LINE: usize = 1000;

/// Feeds `input` in pieces of the given sizes (cycled); what was consumed,
/// and the outcome if the end was found.
fn decode(input: &[u8], pieces: &[usize]) -> (usize, Option<Result<Vec<u8>, smtp::data::Problem>>) {
    let mut d = DotDecoder::new(MAX_SIZE, MAX_LINE);
    let mut at = 0;
    let mut i = 0;
    while at < input.len() && !d.is_done() {
        let size = pieces[i % pieces.len()];
        let piece = &input[at..input.len().min(at.saturating_add(size))];
        let used = d.feed(piece);
        // All of a piece is taken, unless the message ended inside it.
        assert!(used == piece.len() || (d.is_done() && used < piece.len()));
        at += used;
        i += 1;
    }
    let done = d.is_done();
    (at, done.then(|| d.finish()))
}

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the read sizes; the rest is what the client sent.
    let (split, input) = data.split_at(data.len().min(4));
    let mut pieces: Vec<usize> = split.iter().map(|&b| usize::from(b % 17) + 1).collect();
    if pieces.is_empty() {
        pieces.push(usize::MAX);
    }
    let whole = decode(input, &[usize::MAX]);
    let pieced = decode(input, &pieces);
    assert_eq!(
        whole, pieced,
        "the outcome depended on how the bytes were split"
    );
    if let (_, Some(Ok(message))) = &whole {
        assert!(!message.contains(&0));
        for (i, &b) in message.iter().enumerate() {
            if b == b'\n' {
                assert!(i > 0 && message[i - 1] == b'\r', "bare LF accepted");
            }
            if b == b'\r' {
                assert_eq!(message.get(i + 1), Some(&b'\n'), "bare CR accepted");
            }
        }
        // (An empty message is refused by the door before it is stored,
        // so it is never relayed.)
        if message.is_empty() {
            return;
        }
        let sent = relay::client::dot_stuffed(message);
        let again = decode(&sent, &[usize::MAX]);
        assert_eq!(again.0, sent.len());
        assert_eq!(
            again.1,
            Some(Ok(message.clone())),
            "relayed form decodes differently"
        );
    }
});
