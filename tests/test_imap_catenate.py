"""CATENATE and URL-PARTIAL (RFC 4469, RFC 5092, RFC 5550; issue 18),
over a raw socket: an APPEND whose message is made of texts the client
sends and parts of a stored message named by IMAP URLs (relative or
absolute, with SECTION and PARTIAL), as a client forwarding an attachment
builds one; a URL that names nothing this user can read gets NO [BADURL]
and nothing is stored."""
import re

from test_imap_qresync import session
from test_imap_small_extensions import append, server  # noqa: F401 (a fixture)

ORIGINAL = (
    "From: Bob <bob@example.org>\r\nTo: alice@example.test\r\nSubject: Report\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
    "--XX\r\nContent-Type: text/plain\r\n\r\nHere it is.\r\n"
    "--XX\r\nContent-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n"
    "--XX--\r\n"
)


def literal(text):
    data = text.encode()
    return f"{{{len(data)}+}}\r\n".encode() + data


def fetch_literal(r, uid, item):
    r.n += 1
    tag = f"r{r.n}"
    r.send(f"{tag} UID FETCH {uid} ({item})")
    head = r.f.readline()
    size = int(re.search(rb"\{(\d+)\}\r\n$", head).group(1))
    data = r.f.read(size)
    while not r.f.readline().startswith(tag.encode()):
        pass
    return data


def test_catenate_builds_a_message_from_stored_parts(server):
    r = session(server, enable=False)
    untagged, _ = r.cmd("CAPABILITY")
    assert b" CATENATE" in untagged[0] and b" URL-PARTIAL" in untagged[0], untagged
    append(r, ORIGINAL)
    untagged, _ = r.cmd("SELECT INBOX")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", b"".join(untagged)).group(1))
    mime = fetch_literal(r, 1, "BODY.PEEK[2.MIME]")
    pdf = fetch_literal(r, 1, "BODY.PEEK[2]")
    head = ("From: Alice <alice@example.test>\r\nTo: carol@example.net\r\nSubject: Fwd: Report\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=YY\r\n\r\n"
            "--YY\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n--YY\r\n")
    tail = "\r\n--YY--\r\n"
    url = f"/INBOX;UIDVALIDITY={validity}/;UID=1/;SECTION=2"
    untagged, ok = r.cmd_parts([
        "APPEND Drafts (\\Draft) CATENATE (TEXT ", literal(head),
        f' URL "{url}.MIME" URL "{url}" TEXT ', literal(tail), ")",
    ])
    assert b" OK [APPENDUID " in ok, ok
    r.cmd("SELECT Drafts")
    made = fetch_literal(r, 1, "BODY.PEEK[]")
    assert made == head.encode() + mime + pdf + tail.encode()
    # The new message is a message: its second part is the PDF.
    assert fetch_literal(r, 1, "BODY.PEEK[2]") == pdf
    untagged, _ = r.cmd("UID FETCH 1 (FLAGS)")
    assert b"\\Draft" in untagged[0], untagged

    # An absolute URL (the user's @ escaped), PARTIAL, and MULTIAPPEND.
    absolute = (f"imap://alice%40example.test@mail.example.test/INBOX;UIDVALIDITY={validity}"
                f"/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT)")
    untagged, ok = r.cmd_parts([
        f'APPEND Drafts CATENATE (URL "{absolute}" TEXT ', literal("Body.\r\n"), ")",
        f' CATENATE (URL "/INBOX/;UID=1/;PARTIAL=0.4" TEXT ', literal(": x\r\n\r\ny\r\n"), ")",
    ])
    assert b" OK [APPENDUID " in ok, ok
    assert fetch_literal(r, 2, "BODY.PEEK[]") == b"Subject: Report\r\n\r\nBody.\r\n"
    assert fetch_literal(r, 3, "BODY.PEEK[]") == b"From: x\r\n\r\ny\r\n"


def test_a_bad_url_stores_nothing(server):
    r = session(server, enable=False)
    append(r, ORIGINAL)
    for url, why in [
        ("/INBOX;UIDVALIDITY=1/;UID=1", b"UIDVALIDITY"),
        ("/INBOX/;UID=99", b"No message with UID 99"),
        ("/Nowhere/;UID=1", b"No mailbox"),
        ("imap://bob%40example.test@host/INBOX/;UID=1", b"another user"),
        ("/INBOX/;UID=1/;URLAUTH=anonymous:internal:0123", b"URLAUTH"),
        ("INBOX/;UID=1", b"imap://"),
    ]:
        _, no = r.cmd_parts(["APPEND Drafts CATENATE (TEXT ", literal("x"), f' URL "{url}")'])
        assert no.startswith(f"r{r.n} NO [BADURL {url}]".encode()), no
        assert why in no, no
    untagged, _ = r.cmd("STATUS Drafts (MESSAGES)")
    assert b"(MESSAGES 0)" in untagged[0], untagged
    # A MULTIAPPEND with one bad URL stores none of its messages.
    _, no = r.cmd_parts([
        "APPEND Drafts CATENATE (TEXT ", literal("Subject: a\r\n\r\na\r\n"), ")",
        ' CATENATE (URL "/INBOX/;UID=7")',
    ])
    assert b" NO [BADURL " in no, no
    untagged, _ = r.cmd("STATUS Drafts (MESSAGES)")
    assert b"(MESSAGES 0)" in untagged[0], untagged
    _, bad = r.cmd_parts(["APPEND Drafts CATENATE (FILE ", literal("x"), ")"])
    assert b" BAD " in bad, bad
