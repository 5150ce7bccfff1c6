//! Malformed mail never panics the parser and always gives valid IMAP:
//! the MIME corpus mutated at random, and hostile shapes at scale.

use mime::section::{Section, SectionText};
use mime::{Part, Value};

/// The sections FETCH asks for most, built directly (the parser that reads
/// them from the wire is imap-proto's and is tested there).
fn specs() -> Vec<Section> {
    let fields = |not, names: &[&str]| SectionText::HeaderFields {
        not,
        fields: names.iter().map(|n| n.as_bytes().to_vec()).collect(),
    };
    let s = |part: &[u32], text: Option<SectionText>| Section {
        part: part.to_vec(),
        text,
    };
    vec![
        s(&[], None),
        s(&[], Some(SectionText::Header)),
        s(&[], Some(SectionText::Text)),
        s(&[1], None),
        s(&[1], Some(SectionText::Mime)),
        s(&[2], None),
        s(&[1, 1], None),
        s(&[1, 2, 3], None),
        s(&[2], Some(SectionText::Header)),
        s(&[1], Some(SectionText::Text)),
        s(&[], Some(fields(false, &["From", "Subject"]))),
        s(&[1], Some(fields(true, &["To"]))),
        s(&[3, 1, 2], Some(SectionText::Mime)),
    ]
}

fn check(raw: &[u8]) {
    let a = mime::analyze(raw);
    let served = mime::served(raw);
    assert_eq!(a.size, served.len() as u64);
    for view in [&a.envelope, &a.bodystructure] {
        let v = Value::parse(view).expect("cached view parses back");
        // BODY can always be derived.
        let _ = mime::imap::body_from_bodystructure(&v);
    }
    let root = Part::parse(&served);
    for section in specs() {
        let bytes = section.extract(&served, &root);
        // At most a line break for an unterminated last field, and the empty line.
        assert!(bytes.len() <= served.len() + 4);
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mime");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn mutated_corpus_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pieces: &[&[u8]] = &[
        b"\n",
        b"\r\n",
        b"\r",
        b"\0",
        b"--",
        b"\n--b\n",
        b"\n--b--\n",
        b"(",
        b")",
        b"\"",
        b"\\",
        b";",
        b"=",
        b"*0*=",
        b"Content-Type: multipart/mixed; boundary=b\n",
        b"Content-Type: message/rfc822\n\n",
        b"\xff\xfe",
        b"=?utf-8?q?",
        b"<",
        b">",
        b":",
        b",",
    ];
    let corpus = corpus();
    assert!(corpus.len() >= 30, "the MIME corpus is missing");
    for original in &corpus {
        for _ in 0..300 {
            let mut m = original.clone();
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(m.len() + 1);
                match rng.below(4) {
                    0 => m.insert(at.min(m.len()), rng.next() as u8),
                    1 => {
                        let p = pieces[rng.below(pieces.len())];
                        m.splice(at.min(m.len())..at.min(m.len()), p.iter().copied());
                    }
                    2 => m.truncate(at),
                    _ => {
                        let end = (at + rng.below(64)).min(m.len());
                        m.drain(at.min(end)..end);
                    }
                }
            }
            check(&m);
        }
    }
}

#[test]
fn hostile_shapes_at_scale() {
    // Nesting far past the limit, both ways.
    check(&b"Content-Type: message/rfc822\n\n".repeat(100_000));
    let mut deep = Vec::new();
    for i in 0..10_000 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i:05}\"\n\n--b{i:05}\n")
                .as_bytes(),
        );
    }
    check(&deep);
    // Many parts, many fields, many addresses, one huge line.
    let mut many = b"Content-Type: multipart/mixed; boundary=x\n\n".to_vec();
    many.extend(b"--x\n\n".repeat(50_000));
    check(&many);
    check(&b"X-Field: value\n".repeat(200_000));
    check(&[&b"To: "[..], &b"a@b, ".repeat(200_000)[..], b"\n\nbody\n"].concat());
    check(&[&b"Subject: "[..], &vec![b'x'; 5_000_000][..], b"\n\n"].concat());
    check(
        &[
            &b"Content-Type: text/plain; "[..],
            &b"a*0*=x; ".repeat(20_000)[..],
            b"\n\n",
        ]
        .concat(),
    );
}

#[test]
fn deep_nesting_stops_at_the_limit() {
    let msg = b"Content-Type: message/rfc822\n\n".repeat(200);
    let a = mime::analyze(&msg);
    let bs = Value::parse(&a.bodystructure).unwrap();
    // Count the message/rfc822 levels until the opaque application/octet-stream.
    let mut depth = 0;
    let mut v = &bs;
    while let Some(items) = v.as_list() {
        if items.first().and_then(Value::as_bytes) == Some(b"application") {
            break;
        }
        depth += 1;
        v = &items[8];
    }
    assert_eq!(depth, mime::part::MAX_DEPTH);
}

/// Bare LFs become CRLF, CRLFs stay, and nothing else changes; a message
/// already in CRLF form is served without a copy.
#[test]
fn served_turns_every_bare_lf_into_crlf_and_nothing_else() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"\n", b"\r\n"),
        (b"\r\n", b"\r\n"),
        (b"a\nb\r\nc\n", b"a\r\nb\r\nc\r\n"),
        (b"\n\n\r\n\r", b"\r\n\r\n\r\n\r"),
        (b"\r\r\n\n", b"\r\r\n\r\n"),
        (b"no line break", b"no line break"),
    ];
    for (raw, want) in cases {
        assert_eq!(&*mime::served(raw), *want, "{raw:?}");
    }
    let crlf = b"Subject: x\r\n\r\nbody\r\n";
    assert!(matches!(mime::served(crlf), std::borrow::Cow::Borrowed(_)));
    // Against the byte-at-a-time definition, on random bytes rich in CR/LF.
    let mut rng = Rng(99);
    for _ in 0..2000 {
        let raw: Vec<u8> = (0..rng.below(64))
            .map(|_| [b'\r', b'\n', b'a'][rng.below(3)])
            .collect();
        let mut want = Vec::new();
        for (i, &b) in raw.iter().enumerate() {
            if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
                want.push(b'\r');
            }
            want.push(b);
        }
        assert_eq!(&*mime::served(&raw), &want[..], "{raw:?}");
    }
}
