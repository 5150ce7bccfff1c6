//! The examples of RFC 5228 and of each extension's RFC, run on messages
//! built for them.

use sieve::{Action, Context, Location, Message, Outcome, Script};

/// 2007-07-01T12:00:00Z, a Sunday.
const NOW: i64 = 1_183_291_200;

fn ctx<'a>(mailboxes: &'a dyn Fn(&str) -> bool, env: &'a [(&'a str, &'a str)]) -> Context<'a> {
    Context {
        envelope_from: "sender@example.org",
        envelope_to: "me+mta-filters@example.com",
        mailbox_exists: mailboxes,
        spam: None,
        environment: env,
        now: NOW,
        zone: 0,
        include: &included,
    }
}

/// The scripts `include` finds in these tests (RFC 6609's examples).
fn included(location: Location, name: &str) -> Option<Result<Script, String>> {
    let text = match (location, name) {
        (Location::Personal, "always_allow") => {
            "require [\"include\"];\nif address :is \"from\" \"boss@example.com\" { keep; stop; }\n"
        }
        (Location::Global, "spam_tests") => {
            "require [\"include\", \"fileinto\"];\nif header :contains \"subject\" \"viagra\" { fileinto \"spam\"; }\n"
        }
        (Location::Personal, "subject_tests") => {
            "require [\"variables\", \"include\", \"fileinto\"];\nglobal [\"test\", \"test_mailbox\"];\n\
             if header :contains \"Subject\" \"${test}\" { fileinto \"${test_mailbox}\"; }\n\
             set \"local\" \"invisible outside\";\n"
        }
        (Location::Personal, "loop") => "require \"include\"; include \"loop\";",
        (Location::Personal, "broken") => "if frob {}",
        (Location::Personal, "early") => "require \"include\"; return; discard;",
        (Location::Personal, "deep") => {
            let deep = "require \"include\";".to_string()
                + &"if true {".repeat(60)
                + "include \"deep\";"
                + &"}".repeat(60);
            return Some(Script::compile(&deep).map_err(|e| e.to_string()));
        }
        _ => return None,
    };
    Some(Script::compile(text).map_err(|e| e.to_string()))
}

fn run_with(script: &str, raw: &str, spam: Option<(i64, i64)>) -> Outcome {
    let s = Script::compile(script).unwrap_or_else(|e| panic!("{e}\n{script}"));
    let exists = |m: &str| m == "INBOX" || m == "Lists/dev";
    let env = [
        ("phase", "during"),
        ("domain", "example.com"),
        ("name", "Satchel"),
    ];
    let mut c = ctx(&exists, &env);
    c.spam = spam;
    s.run(&Message::new(raw.as_bytes()), &c)
}

fn run(script: &str, raw: &str) -> Vec<Action> {
    let out = run_with(script, raw, None);
    assert_eq!(out.error, None);
    out.actions
}

fn keep() -> Action {
    Action::Keep { flags: vec![] }
}

fn into(mailbox: &str) -> Action {
    Action::FileInto {
        mailbox: mailbox.into(),
        flags: vec![],
        create: false,
    }
}

fn msg(headers: &str, body: &str) -> String {
    format!("{headers}\r\n\r\n{body}")
}

const RFC5228_9_1: &str = r#"
# Example Sieve Filter
# Declare any optional features or extension used by the script
require ["fileinto"];

# Handle messages from known mailing lists
# Move messages from IETF filter discussion list to filter mailbox
if header :is "Sender" "owner-ietf-mta-filters@imc.org"
        {
        fileinto "filter";  # move to "filter" mailbox
        }
#
# Keep all messages to or from people in my company
#
elsif address :DOMAIN :is ["From", "To"] "example.com"
        {
        keep;               # keep in "In" mailbox
        }

#
# Try and catch unsolicited email.  If a message is not to me,
# or it contains a subject known to be spam, file it away.
#
elsif anyof (NOT address :all :contains
               ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject"
               ["*make*money*fast*", "*university*dipl*mas*"])
        {
        fileinto "spam";   # move to "spam" mailbox
        }
else
        {
        # Move all other (non-company) mail to "personal"
        # mailbox.
        fileinto "personal";
        }
"#;

#[test]
fn rfc5228_example() {
    let list = msg(
        "Sender: owner-ietf-mta-filters@imc.org\r\nFrom: a@imc.org\r\nTo: me@example.com",
        "",
    );
    assert_eq!(run(RFC5228_9_1, &list), vec![into("filter")]);
    let colleague = msg("From: Boss <boss@EXAMPLE.com>\r\nTo: me@example.com", "");
    assert_eq!(run(RFC5228_9_1, &colleague), vec![keep()]);
    let not_to_me = msg("From: x@other.test\r\nTo: someone@else.test", "");
    assert_eq!(run(RFC5228_9_1, &not_to_me), vec![into("spam")]);
    let money = msg(
        "From: x@other.test\r\nTo: me@example.com.au\r\nSubject: MAKE lots of MONEY real FAST",
        "",
    );
    assert_eq!(run(RFC5228_9_1, &money), vec![into("spam")]);
    let friend = msg(
        "From: x@other.test\r\nCc: me@example.com\r\nSubject: dinner",
        "",
    );
    assert_eq!(run(RFC5228_9_1, &friend), vec![into("personal")]);
}

#[test]
fn rfc5228_core_commands() {
    let m = msg("From: a@b.test\r\nSubject: hi", "body");
    // No actions: the implicit keep.
    assert_eq!(run("", &m), vec![keep()]);
    assert_eq!(run("discard;", &m), vec![Action::Discard]);
    assert_eq!(
        run("if size :over 10 { discard; }", &m),
        vec![Action::Discard]
    );
    assert_eq!(run("if size :under 10 { discard; }", &m), vec![keep()]);
    // stop ends the script; keep then fileinto both happen once each.
    assert_eq!(
        run(
            "require \"fileinto\"; keep; fileinto \"A\"; keep; fileinto \"A\"; stop; discard;",
            &m
        ),
        vec![keep(), into("A")]
    );
    assert_eq!(
        run(
            "if exists [\"from\", \"subject\"] { redirect \"x@y.test\"; }",
            &m
        ),
        vec![Action::Redirect {
            address: "x@y.test".into()
        }]
    );
    assert_eq!(
        run("if exists [\"from\", \"date\"] { discard; }", &m),
        vec![keep()]
    );
    assert_eq!(
        run(
            "if not true { discard; } elsif false { discard; } else { keep; }",
            &m
        ),
        vec![keep()]
    );
    assert_eq!(run("if allof (true, false) { discard; }", &m), vec![keep()]);
    assert_eq!(
        run("if header :contains \"subject\" \"\" { discard; }", &m),
        vec![Action::Discard]
    );
    assert_eq!(
        run(
            "if header :comparator \"i;octet\" :is \"subject\" \"HI\" { discard; }",
            &m
        ),
        vec![keep()]
    );
}

#[test]
fn rfc5229_variables() {
    let m = msg(
        "Subject: [acme-users] [fwd] version 1.2 is out\r\nList-ID: Acme <acme-users@lists.example.org>",
        "",
    );
    let script = r#"require ["variables", "fileinto"];
        if header :matches "List-ID" "*<*@*" {
            fileinto "INBOX.lists.${2}"; stop;
        }"#;
    assert_eq!(run(script, &m), vec![into("INBOX.lists.acme-users")]);
    let script = r#"require ["variables", "fileinto"];
        # Imagine the header
        # Subject: [acme-users] [fwd] version 1.2 is out
        if header :matches "Subject" "[*] *" {
            # ${1} will hold "acme-users",
            # ${2} will hold "[fwd] version 1.2 is out"
            fileinto "INBOX.lists.${1}"; stop;
        }"#;
    assert_eq!(run(script, &m), vec![into("INBOX.lists.acme-users")]);
    // RFC 5229 4.1's modifiers, checked with the string test.
    let script = r#"require ["variables", "fileinto"];
        set "a" "juMBlEd lETteRS";
        set :length "len" "${a}";
        set :lower "lower" "${a}";
        set :upperfirst "uf" "${a}";
        set :upperfirst :lower "ufl" "${a}";
        set :quotewildcard "qw" "Rock*";
        if allof (string :is "${len}" "15", string :is "${lower}" "jumbled letters",
                  string :comparator "i;octet" :is "${uf}" "JuMBlEd lETteRS",
                  string :comparator "i;octet" :is "${ufl}" "Jumbled letters",
                  string :comparator "i;octet" :is "${qw}" "Rock\\*",
                  string :is "${unknown}" "") {
            fileinto "ok";
        }"#;
    assert_eq!(run(script, &m), vec![into("ok")]);
}

#[test]
fn rfc5232_imap4flags() {
    let script = r#"require ["fileinto", "imap4flags", "variables"];
        if size :over 10 {
            addflag "MyFlags" "Big";
            if header :is "From" "boss@company.example.com" {
                addflag "MyFlags" "\\Flagged";
            }
            fileinto :flags "${MyFlags}" "Big messages";
        }
        if header :is "From" "grandma@example.net" {
            addflag "MyFlags" ["\\Answered", "$MDNSent"];
            fileinto :flags "${MyFlags}" "Grandma";
        }
        if header :is "From" "boss@company.example.com" {
            addflag "\\Flagged";
            removeflag "\\Flagged";
            setflag ["\\Seen", "\\Flagged important"];
            if hasflag :contains "import" { addflag "$Work"; }
        }"#;
    let boss = msg("From: boss@company.example.com", "a long enough body");
    let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        run(script, &boss),
        vec![
            Action::FileInto {
                mailbox: "Big messages".into(),
                flags: flags(&["Big", "\\Flagged"]),
                create: false
            },
            // fileinto without :copy cancelled the implicit keep.
        ]
    );
    let script_keep = r#"require ["imap4flags", "relational", "comparator-i;ascii-numeric"];
        setflag "\\Seen"; addflag ["$Work \\Seen", "$work"];
        if hasflag :count "eq" :comparator "i;ascii-numeric" "2" { keep; }"#;
    assert_eq!(
        run(script_keep, &boss),
        vec![Action::Keep {
            flags: flags(&["\\Seen", "$Work"])
        }]
    );
    // The implicit keep carries the internal flags.
    assert_eq!(
        run("require \"imap4flags\"; addflag \"\\\\Flagged\";", &boss),
        vec![Action::Keep {
            flags: flags(&["\\Flagged"])
        }]
    );
}

#[test]
fn rfc5231_relational() {
    let m = msg(
        "To: a@x.test, b@x.test\r\nCc: c@x.test\r\nX-Priority: 2",
        "",
    );
    let script = r#"require ["relational", "comparator-i;ascii-numeric", "fileinto"];
        if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] { fileinto "many"; }
        if header :value "lt" :comparator "i;ascii-numeric" "x-priority" "3" { fileinto "urgent"; }
        if header :count "eq" :comparator "i;ascii-numeric" "x-missing" "0" { fileinto "none"; }"#;
    assert_eq!(
        run(script, &m),
        vec![into("many"), into("urgent"), into("none")]
    );
}

#[test]
fn rfc5233_subaddress_and_envelope() {
    let m = msg("To: ken+sieve@example.org\r\nFrom: a@b.test", "");
    let script = r#"require ["envelope", "subaddress", "fileinto"];
        if envelope :user "to" "me" { fileinto "user"; }
        if envelope :detail "to" "mta-filters" { fileinto "inbox.ietf-mta-filters"; }
        if address :user "to" "ken" { fileinto "ken"; }
        if address :detail "to" "sieve" { fileinto "sieve"; }
        if address :detail "from" "" { fileinto "never: no + at all"; }
        if envelope :domain "from" "example.org" { fileinto "org"; }"#;
    assert_eq!(
        run(script, &m),
        vec![
            into("user"),
            into("inbox.ietf-mta-filters"),
            into("ken"),
            into("sieve"),
            into("org")
        ]
    );
}

#[test]
fn rfc3894_copy() {
    let m = msg("From: a@b.test", "");
    assert_eq!(
        run(
            "require \"copy\"; redirect :copy \"sysadmin@example.com\";",
            &m
        ),
        vec![
            Action::Redirect {
                address: "sysadmin@example.com".into()
            },
            keep()
        ]
    );
    assert_eq!(
        run(
            "require [\"copy\", \"fileinto\"]; fileinto :copy \"Archive\";",
            &m
        ),
        vec![into("Archive"), keep()]
    );
}

#[test]
fn rfc5173_body() {
    let m = msg(
        "From: a@b.test\r\nContent-Type: multipart/mixed; boundary=b",
        "--b\r\nContent-Type: text/plain\r\n\r\nPlease MAKE MONEY FAST\r\n--b\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nc2VjcmV0\r\n--b--\r\n",
    );
    assert_eq!(
        run(
            "require \"body\"; if body :text :contains \"make money fast\" { discard; }",
            &m
        ),
        vec![Action::Discard]
    );
    assert_eq!(
        run(
            "require \"body\"; if body :raw :contains \"c2VjcmV0\" { discard; }",
            &m
        ),
        vec![Action::Discard]
    );
    assert_eq!(
        run(
            "require \"body\"; if body :text :contains \"secret\" { discard; }",
            &m
        ),
        vec![keep()]
    );
    assert_eq!(
        run(
            "require \"body\"; if body :content \"application\" :contains \"secret\" { discard; }",
            &m
        ),
        vec![Action::Discard]
    );
}

#[test]
fn rfc5235_spamtest() {
    let m = msg("From: a@b.test", "");
    let script = r#"require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
        if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "INBOX.unclassified"; }
        elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3" { fileinto "INBOX.spam-trap"; }"#;
    let spam = |s| run_with(script, &m, s).actions;
    assert_eq!(spam(None), vec![into("INBOX.unclassified")]);
    assert_eq!(spam(Some((120, 100))), vec![into("INBOX.spam-trap")]);
    assert_eq!(spam(Some((-40, 100))), vec![keep()]);
    let plus = r#"require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];
        if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { fileinto "spam"; }"#;
    assert_eq!(
        run_with(plus, &m, Some((60, 100))).actions,
        vec![into("spam")]
    );
    assert_eq!(run_with(plus, &m, Some((40, 100))).actions, vec![keep()]);
}

#[test]
fn rfc5490_mailbox_and_rfc5183_environment() {
    let m = msg("From: a@b.test", "");
    let script = r#"require ["mailbox", "fileinto", "environment"];
        if mailboxexists "Lists/dev" { fileinto :create "Lists/new"; }
        if mailboxexists ["Lists/dev", "Nope"] { discard; }
        if environment :is "phase" "during" { fileinto "during"; }
        if environment :contains "name" "satchel" { fileinto "named"; }
        if environment "no-such-item" "" { discard; }"#;
    assert_eq!(
        run(script, &m),
        vec![
            Action::FileInto {
                mailbox: "Lists/new".into(),
                flags: vec![],
                create: true
            },
            into("during"),
            into("named")
        ]
    );
}

#[test]
fn rfc5429_reject_and_encoded_characters() {
    let m = msg("From: a@b.test", "");
    let script = "require [\"reject\", \"encoded-character\"];\nreject text:\nNo thanks ${hex:40} ${unicode:263a}.\n.\n;";
    assert_eq!(
        run(script, &m),
        vec![Action::Reject {
            reason: "No thanks @ \u{263a}.\r\n".into(),
            extended: false
        }]
    );
    assert_eq!(
        run("require \"ereject\"; ereject \"no\";", &m),
        vec![Action::Reject {
            reason: "no".into(),
            extended: true
        }]
    );
    // Reject with a filing is an error at run time: the message is kept.
    let out = run_with(
        "require [\"reject\", \"fileinto\"]; fileinto \"A\"; reject \"no\";",
        &m,
        None,
    );
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("reject"));
}

#[test]
fn limits_at_run_time_keep_the_message() {
    let m = msg("From: a@b.test", "");
    let many = (0..10)
        .map(|i| format!("redirect \"r{i}@x.test\";"))
        .collect::<String>();
    let out = run_with(&many, &m, None);
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("redirects"));
    let many = "require \"fileinto\";".to_string()
        + &(0..100)
            .map(|i| format!("fileinto \"m{i}\";"))
            .collect::<String>();
    let out = run_with(&many, &m, None);
    assert!(out.error.unwrap().contains("actions"));
}

#[test]
fn rfc5260_date_and_index() {
    let boss = |date: &str| {
        msg(
            &format!(
                "Received: from b by c; Sat, 30 Jun 2007 10:00:00 +0000\r\n\
                 Received: from a by b; Mon, 25 Jun 2007 10:00:00 +0000\r\n\
                 From: boss@example.com\r\nDate: {date}"
            ),
            "",
        )
    };
    let office = r#"require ["date", "relational", "fileinto"];
        if allof(header :is "from" "boss@example.com",
                 date :value "ge" :originalzone "date" "hour" "09",
                 date :value "lt" :originalzone "date" "hour" "17")
        { fileinto "urgent"; }"#;
    // 10:00 in the writer's zone is office hours, whatever it is in UTC.
    assert_eq!(
        run(office, &boss("Mon, 25 Jun 2007 10:00:00 -0800")),
        vec![into("urgent")]
    );
    assert_eq!(
        run(office, &boss("Mon, 25 Jun 2007 20:00:00 -0800")),
        vec![keep()]
    );
    // Without :originalzone, the server's zone (UTC here): 18:00.
    let utc = office.replace(":originalzone ", "");
    assert_eq!(
        run(&utc, &boss("Mon, 25 Jun 2007 10:00:00 -0800")),
        vec![keep()]
    );

    let weekend = r#"require ["date", "relational", "fileinto"];
        if anyof(date :is "received" "weekday" "0",
                 date :is "received" "weekday" "6")
        { fileinto "weekend"; }"#;
    // The first Received: Saturday the 30th.
    assert_eq!(run(weekend, &boss("x")), vec![into("weekend")]);

    let away = r#"require ["date", "relational", "fileinto"];
        if allof(currentdate :value "ge" "date" "2007-06-30",
                 currentdate :value "le" "date" "2007-07-07")
        { fileinto "while-away"; }"#;
    assert_eq!(run(away, &boss("x")), vec![into("while-away")]);

    let monthly = r#"require ["date", "variables", "fileinto"];
        if currentdate :matches "month" "*" { set "month" "${1}"; }
        if currentdate :matches "year"  "*" { set "year" "${1}"; }
        fileinto "${month}-${year}";"#;
    assert_eq!(run(monthly, &boss("x")), vec![into("07-2007")]);
    let zoned = r#"require ["date", "fileinto"];
        if currentdate :zone "-1300" :is "date" "2007-06-30" { fileinto "yesterday there"; }"#;
    assert_eq!(run(zoned, &boss("x")), vec![into("yesterday there")]);

    let indexed = r#"require ["date", "index", "relational", "fileinto"];
        if date :value "lt" :index 1 :last "received" "date" "2007-06-26" { fileinto "first hop early"; }
        if header :index 2 :contains "received" "from a" { fileinto "second"; }
        if header :index 3 :contains "received" "" { fileinto "no third"; }
        if date :is "date" "year" "2007" { fileinto "unparsable date never matches"; }"#;
    assert_eq!(
        run(indexed, &boss("not a date")),
        vec![into("first hop early"), into("second")]
    );
}

#[test]
fn rfc6609_include() {
    let main = r#"require ["include"];
        include :personal "always_allow";
        include :global "spam_tests";
        include :personal :optional "mailing_lists";"#;
    let boss = msg("From: boss@example.com\r\nSubject: viagra offer", "");
    assert_eq!(
        run(main, &boss),
        vec![keep()],
        "stop in an included script ends all"
    );
    let spam = msg("From: x@example.net\r\nSubject: viagra offer", "");
    assert_eq!(run(main, &spam), vec![into("spam")]);

    let globals = r#"require ["variables", "include", "fileinto"];
        global "test";
        global "test_mailbox";
        set "test" "$$";
        set "test_mailbox" "spam-${test}";
        include "subject_tests";
        set "test" "Make money";
        set "test_mailbox" "spam-${test}";
        include "subject_tests";
        if string :is "${local}" "" { fileinto "locals stay local"; }"#;
    let m = msg("From: x@example.net\r\nSubject: Make money fast", "");
    assert_eq!(
        run(globals, &m),
        vec![into("spam-Make money"), into("locals stay local")]
    );
    let m = msg("From: x@example.net\r\nSubject: $$$ now", "");
    assert_eq!(
        run(globals, &m),
        vec![into("spam-$$"), into("locals stay local")]
    );

    let once = r#"require ["include", "fileinto", "variables"];
        include :once "early"; include :once "early"; fileinto "after";"#;
    assert_eq!(
        run(once, &m),
        vec![into("after")],
        "return ends only the included script"
    );

    let m = msg("From: x@example.net", "");
    for (script, why) in [
        (
            "require \"include\"; include \"missing\";",
            "no script \"missing\"",
        ),
        ("require \"include\"; include \"loop\";", "nested more than"),
        (
            "require \"include\"; include \"broken\";",
            "does not compile",
        ),
    ] {
        let out = run_with(script, &m, None);
        assert_eq!(out.actions, vec![keep()]);
        assert!(
            out.error.as_deref().is_some_and(|e| e.contains(why)),
            "{script}: {:?}",
            out.error
        );
    }
    // return in the main script is stop.
    assert_eq!(
        run("require [\"include\"]; return; discard;", &m),
        vec![keep()]
    );
}

#[test]
fn a_server_script_runs_before_the_users() {
    let server = Script::compile(
        "require [\"fileinto\", \"imap4flags\"];\n\
         if header :contains \"subject\" \"[SPAM]\" { fileinto \"Junk\"; stop; }\n\
         addflag \"$Checked\";",
    )
    .unwrap();
    let user = Script::compile(
        "require \"fileinto\";\nif header :contains \"subject\" \"report\" { fileinto \"Reports\"; }",
    )
    .unwrap();
    let exists = |_: &str| true;
    let c = ctx(&exists, &[]);
    let run = |subject: &str| {
        let raw = msg(&format!("Subject: {subject}"), "");
        Script::run_all(&[&server, &user], &Message::new(raw.as_bytes()), &c).actions
    };
    assert_eq!(run("[SPAM] report"), vec![into("Junk")]);
    assert_eq!(
        run("weekly report"),
        vec![Action::FileInto {
            mailbox: "Reports".into(),
            flags: vec!["$Checked".into()],
            create: false
        }]
    );
    assert_eq!(
        run("hello"),
        vec![Action::Keep {
            flags: vec!["$Checked".into()]
        }]
    );
    // A user's script that fails cannot undo what the server's decided.
    let quarantine = Script::compile("require \"fileinto\"; fileinto \"Quarantine\";").unwrap();
    let failing = Script::compile(
        "redirect \"a@x.test\"; redirect \"b@x.test\"; redirect \"c@x.test\"; \
         redirect \"d@x.test\"; redirect \"e@x.test\";",
    )
    .unwrap();
    let raw = msg("Subject: x", "");
    let out = Script::run_all(&[&quarantine, &failing], &Message::new(raw.as_bytes()), &c);
    assert!(out.error.is_some());
    assert_eq!(out.actions, vec![into("Quarantine"), keep()]);
}

#[test]
fn deep_nesting_runs_within_a_worker_threads_stack() {
    // Tokio's workers have 2 MiB stacks; the deepest script allowed must
    // run in one, in a debug build too.
    let depth = 60;
    let script = "if true {".repeat(depth) + "discard;" + &"}".repeat(depth);
    let raw = msg("Subject: x", "");
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || run(&script, &raw))
        .unwrap();
    assert_eq!(handle.join().unwrap(), vec![Action::Discard]);
    // Deep blocks in scripts that include themselves: stopped by the
    // limits, never by the stack.
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            run_with(
                "require \"include\"; include \"deep\";",
                &msg("Subject: x", ""),
                None,
            )
        })
        .unwrap();
    let out = handle.join().unwrap();
    assert_eq!(out.actions, vec![keep()]);
    assert!(out.error.unwrap().contains("nested"));
}

fn vacation_to(actions: &[Action]) -> Option<(String, u64, String)> {
    actions.iter().find_map(|a| match a {
        Action::Vacation {
            to, days, reason, ..
        } => Some((to.clone(), *days, reason.clone())),
        _ => None,
    })
}

#[test]
fn rfc5230_vacation() {
    let script = r#"require "vacation";
        if header :contains "subject" "cyrus" {
            vacation "I'm out -- send mail to cyrus-bugs";
        } else {
            vacation "I'm out -- call me at +1 304 555 0123";
        }"#;
    // The context's recipient is me+mta-filters@example.com, the sender
    // sender@example.org.
    let to_me = |extra: &str| {
        msg(
            &format!("From: sender@example.org\r\nTo: me@example.com\r\n{extra}Subject: cyrus"),
            "",
        )
    };
    let actions = run(script, &to_me(""));
    assert_eq!(
        vacation_to(&actions),
        Some((
            "sender@example.org".into(),
            7,
            "I'm out -- send mail to cyrus-bugs".into()
        ))
    );
    // The message is kept as well: vacation does not cancel the keep.
    assert!(actions.contains(&keep()));
    // No reply to lists, robots and bulk mail, nor to mail not addressed to me.
    for extra in [
        "List-Id: <x.example.org>\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "Precedence: bulk\r\n",
    ] {
        assert_eq!(vacation_to(&run(script, &to_me(extra))), None, "{extra}");
    }
    let bcc = msg(
        "From: sender@example.org\r\nTo: all@example.com\r\nSubject: x",
        "",
    );
    assert_eq!(vacation_to(&run(script, &bcc)), None);
    assert!(vacation_to(&run(script, &to_me("Auto-Submitted: no\r\n"))).is_some());

    let addresses = r#"require ["vacation"];
        vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
          "I'm away until October 19.  If it's an emergency, call 911, I guess." ;"#;
    let to_alias = msg(
        "From: sender@example.org\r\nCc: TJS@example.edu\r\nSubject: hi",
        "",
    );
    assert_eq!(
        vacation_to(&run(addresses, &to_alias)).map(|v| v.1),
        Some(23)
    );

    let options = r#"require ["vacation", "variables"];
        if header :matches "subject" "*" { set "s" "${1}"; }
        vacation :days 400 :subject "Away: ${s}" :from "hemingway@example.com" :handle "away"
          :mime text:
Content-Type: text/plain; charset=utf-8

Back soon.
.
;"#;
    let actions = run(options, &to_me(""));
    match actions
        .iter()
        .find(|a| matches!(a, Action::Vacation { .. }))
    {
        Some(Action::Vacation {
            days,
            subject,
            from,
            mime,
            handle,
            reason,
            ..
        }) => {
            assert_eq!(*days, 30, ":days is capped");
            assert_eq!(subject.as_deref(), Some("Away: cyrus"));
            assert_eq!(from.as_deref(), Some("hemingway@example.com"));
            assert!(*mime && handle == "away" && reason.starts_with("Content-Type: text/plain"));
        }
        other => panic!("{other:?}"),
    }
    // Twice in one run is an error (and the message is kept).
    let twice = run_with(
        "require \"vacation\"; vacation \"a\"; vacation \"b\";",
        &to_me(""),
        None,
    );
    assert!(twice.error.unwrap().contains("once"));
    // With reject, an error too (RFC 5230 4.7).
    let both = run_with(
        "require [\"vacation\", \"reject\"]; vacation \"a\"; reject \"no\";",
        &to_me(""),
        None,
    );
    assert!(both.error.is_some());
}
