//! What the doors need to know about a message, computed once at delivery.

use store::MessageCache;

/// A message's served size and its cached IMAP views.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// RFC822.SIZE: octets as served, every bare LF counted as CRLF.
    pub size: u64,
    pub cache: MessageCache,
}

pub fn analyze(raw: &[u8]) -> Analysis {
    Analysis {
        size: served_size(raw),
        cache: MessageCache::default(),
    }
}

/// Size of `raw` once every bare LF is sent as CRLF.
pub fn served_size(raw: &[u8]) -> u64 {
    let mut size = raw.len() as u64;
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            size += 1;
        }
        prev = b;
    }
    size
}
