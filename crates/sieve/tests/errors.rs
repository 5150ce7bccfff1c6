//! Every way a script can fail to compile: the message says what is wrong
//! and the position points at it.

use sieve::Script;

/// (script, line, column, part of the message)
const CASES: &[(&str, u32, u32, &str)] = &[
    // Lexical.
    ("keep;\n\"open", 2, 1, "never closed"),
    ("/* open", 1, 1, "*/"),
    ("size :over 1X;", 1, 12, "K, M or G"),
    ("keep; @", 1, 7, "unexpected character"),
    ("reject text:\nno end\n", 1, 8, "never ended"),
    // Grammar.
    ("keep", 1, 1, "\";\" after the command \"keep\""),
    ("if true { keep;", 1, 15, "\"}\""),
    ("if anyof (true; false) {}", 1, 15, "\",\" or \")\""),
    (
        "if anyof (true false) {}",
        1,
        16,
        "true takes no test inside",
    ),
    ("fileinto [\"a\" \"b\"];", 1, 15, "\",\" or \"]\""),
    // Meaning.
    ("frobnicate;", 1, 1, "unknown command \"frobnicate\""),
    ("vacation \"x\";", 1, 1, "needs require \"vacation\""),
    ("notify \"x\";", 1, 1, "not supported by this server yet"),
    (
        "require \"vacation\"; vacation :from \"nobody\" \"x\";",
        1,
        21,
        ":from needs an address",
    ),
    (
        "require \"vacation\"; vacation :days \"7\" \"x\";",
        1,
        30,
        ":days must be followed by a number",
    ),
    ("if frob { keep; }", 1, 4, "unknown test \"frob\""),
    (
        "keep;\nrequire \"fileinto\";",
        2,
        1,
        "before every other command",
    ),
    (
        "require \"x-unknown\";",
        1,
        9,
        "unsupported extension \"x-unknown\"",
    ),
    ("require 5;", 1, 1, "require takes one string"),
    ("fileinto \"a\";", 1, 1, "needs require \"fileinto\""),
    (
        "require \"fileinto\";\nfileinto :copy \"a\";",
        2,
        10,
        "needs require \"copy\"",
    ),
    (
        "require \"fileinto\";\nfileinto :flags \"x\" \"a\";",
        2,
        10,
        "needs require \"imap4flags\"",
    ),
    (
        "require \"fileinto\";\nfileinto :create \"a\";",
        2,
        10,
        "needs require \"mailbox\"",
    ),
    (
        "require \"fileinto\";\nfileinto;",
        2,
        1,
        "takes 1 argument(s)",
    ),
    (
        "require \"fileinto\";\nfileinto [\"a\", \"b\"];",
        2,
        10,
        "must be a string",
    ),
    (
        "if header :frob \"a\" \"b\" {}",
        1,
        11,
        "header has no tag :frob",
    ),
    (
        "if header :is :is \"a\" \"b\" {}",
        1,
        15,
        ":is is given twice",
    ),
    (
        "if header :is :contains \"a\" \"b\" {}",
        1,
        4,
        "at most one match type",
    ),
    ("if header \"a\" :is \"b\" {}", 1, 15, "must come before"),
    (
        "if header :comparator \"i;frob\" \"a\" \"b\" {}",
        1,
        11,
        "unknown comparator",
    ),
    (
        "if header :comparator \"i;ascii-numeric\" \"a\" \"b\" {}",
        1,
        11,
        "comparator-i;ascii-numeric",
    ),
    (
        "if header :comparator {}",
        1,
        11,
        ":comparator must be followed by a string",
    ),
    (
        "if header :value \"gt\" \"a\" \"b\" {}",
        1,
        11,
        "needs require \"relational\"",
    ),
    (
        "require \"relational\"; if header :value \"big\" \"a\" \"b\" {}",
        1,
        33,
        "\"gt\"",
    ),
    (
        "if address :user \"to\" \"a\" {}",
        1,
        12,
        "needs require \"subaddress\"",
    ),
    (
        "if address :all :domain \"to\" \"a\" {}",
        1,
        4,
        "at most one address part",
    ),
    (
        "if envelope \"to\" \"a\" {}",
        1,
        4,
        "needs require \"envelope\"",
    ),
    ("if size 5 {}", 1, 4, "exactly one of :over and :under"),
    ("if size :over \"5\" {}", 1, 15, "needs a number"),
    (
        "if not (true, false) {}",
        1,
        4,
        "not takes exactly one test",
    ),
    ("if anyof {}", 1, 4, "needs a list of tests"),
    ("if true false {}", 1, 9, "true takes no test inside"),
    ("if true;", 1, 1, "if needs a block"),
    ("else { keep; }", 1, 1, "must follow an if"),
    ("if true {} else true {}", 1, 12, "else takes no test"),
    ("keep { }", 1, 1, "keep takes no block"),
    (
        "require \"fileinto\";\nfileinto \"a\"\nkeep;",
        3,
        1,
        "fileinto takes no test",
    ),
    ("stop true;", 1, 6, "stop takes no test"),
    ("redirect \"not-an-address\";", 1, 10, "needs an address"),
    ("set \"a\" \"b\";", 1, 1, "needs require \"variables\""),
    (
        "require \"variables\"; set \"1a\" \"b\";",
        1,
        26,
        "not a variable name",
    ),
    (
        "require \"variables\"; set :upper :lower \"a\" \"b\";",
        1,
        22,
        "both :upper and :lower",
    ),
    (
        "require \"imap4flags\"; setflag \"v\" \"\\\\Seen\";",
        1,
        23,
        "needs require \"variables\"",
    ),
    (
        "require \"spamtest\"; if spamtest :percent \"5\" {}",
        1,
        24,
        "needs require \"spamtestplus\"",
    ),
    (
        "require \"encoded-character\"; keep :flags \"${unicode:110000}\";",
        1,
        35,
        "needs require \"imap4flags\"",
    ),
    (
        "require [\"encoded-character\", \"fileinto\"]; fileinto \"${hex:ff}\";",
        1,
        53,
        "valid UTF-8",
    ),
    (
        "require [\"encoded-character\", \"fileinto\"]; fileinto \"${unicode:110000}\";",
        1,
        53,
        "not a character",
    ),
    (
        "if date \"date\" \"year\" \"2024\" {}",
        1,
        4,
        "needs require \"date\"",
    ),
    (
        "require \"date\"; if date \"date\" \"fortnight\" \"1\" {}",
        1,
        32,
        "unknown date part \"fortnight\"",
    ),
    (
        "require \"date\"; if date :zone \"CET\" \"date\" \"year\" \"1\" {}",
        1,
        25,
        "not a time zone",
    ),
    (
        "require \"date\"; if date :zone \"+0100\" :originalzone \"date\" \"year\" \"1\" {}",
        1,
        20,
        "not both",
    ),
    (
        "require \"date\"; if currentdate \"date\" \"year\" \"1\" {}",
        1,
        20,
        "takes 2 argument(s)",
    ),
    (
        "require \"date\"; if date :index 1 \"date\" \"year\" \"1\" {}",
        1,
        25,
        "needs require \"index\"",
    ),
    (
        "require \"index\"; if header :index 0 \"to\" \"a\" {}",
        1,
        28,
        ":index counts from 1",
    ),
    (
        "require \"index\"; if header :last \"to\" \"a\" {}",
        1,
        28,
        ":last needs :index",
    ),
    (
        "require \"index\"; if header :index \"2\" \"to\" \"a\" {}",
        1,
        28,
        ":index must be followed by a number",
    ),
    ("include \"a\";", 1, 1, "needs require \"include\""),
    (
        "require \"include\"; include :personal :global \"a\";",
        1,
        20,
        "not both",
    ),
    (
        "require \"include\"; include \"a/b\";",
        1,
        28,
        "not a script name",
    ),
    (
        "require \"include\"; global \"a\";",
        1,
        20,
        "needs require \"variables\"",
    ),
    ("return;", 1, 1, "needs require \"include\""),
];

#[test]
fn each_error_has_its_message_and_position() {
    let mut wrong = Vec::new();
    for &(script, line, column, needle) in CASES {
        let Err(e) = Script::compile(script) else {
            wrong.push(format!("{script:?} compiled"));
            continue;
        };
        // The text a user sees carries message and position.
        if !e.message.contains(needle)
            || !e
                .to_string()
                .starts_with(&format!("line {line}, column {column}: "))
        {
            wrong.push(format!(
                "{script:?}: got \"{e}\", wanted {line}:{column} {needle:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_size_limit_holds() {
    let big = "#".repeat(sieve::MAX_SCRIPT_SIZE + 1);
    assert!(
        Script::compile(&big)
            .unwrap_err()
            .message
            .contains("larger than")
    );
}

#[test]
fn requires_are_listed() {
    let s = Script::compile("require [\"fileinto\", \"spamtestplus\"]; keep;").unwrap();
    assert_eq!(s.requires(), ["fileinto", "spamtestplus", "spamtest"]);
}
