//! The transfer decoders (RFC 2045 6.7 quoted-printable, 6.8 base64), on
//! any bytes: never a panic, never more output than input, and base64
//! written by another encoder (76-character lines) decodes to what it
//! encoded.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mime::decode::{base64, quoted_printable};

fuzz_target!(|data: &[u8]| {
    assert!(base64(data).len() <= data.len());
    assert!(quoted_printable(data).len() <= data.len());
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    let mut wrapped = Vec::new();
    for line in encoded.as_bytes().chunks(76) {
        wrapped.extend_from_slice(line);
        wrapped.extend_from_slice(b"\r\n");
    }
    assert_eq!(base64(&wrapped), data);
});
