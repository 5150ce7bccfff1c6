//! The MIME parser on arbitrary bytes: no panic, the cached views are
//! always valid IMAP, and any section FETCH's own parser accepts (from the
//! input's first line) cuts without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = mime::analyze(data);
    for view in [a.envelope, a.bodystructure] {
        assert!(mime::Value::parse(&view).is_some());
    }
    let served = mime::served(data);
    let root = mime::Part::parse(&served);
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    for spec in [
        first_line,
        b"1.2.MIME",
        b"HEADER.FIELDS (From)",
        b"2.TEXT",
        b"1",
    ] {
        if let Ok(s) = imap_proto::parse_section(spec) {
            let _ = s.extract(&served, &root);
        }
    }
});
