"""SORT, THREAD and SEARCH give the same messages, in the same order and
the same threads, as the reference Dovecot did on the same mailbox
(fixtures/dovecot/sort_session.json, recorded by
fixtures/dovecot/record_sort.py from sort_script.py): every sort key and
REVERSE, both thread algorithms, sequence numbers and UIDs, charsets,
header, body and text searches, date ranges and MODSEQ. Only the
numbers are compared (MODSEQ values differ between servers)."""
import json
import pathlib
import sys

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "dovecot"
sys.path.insert(0, str(FIXTURES))
import sort_script  # noqa: E402

from conftest import PASSWORD  # noqa: E402

ALICE = "alice@example.test"


def test_sort_thread_and_search_answer_as_dovecot(satchel):
    recorded = json.loads((FIXTURES / "sort_session.json").read_text())
    commands = [c["command"] for c in recorded["commands"]]
    assert commands == sort_script.COMMANDS, "sort_session.json is stale: re-run record_sort.py"
    assert len(commands) >= 50
    c = sort_script.Client("127.0.0.1", satchel.ports["imap"], ALICE, PASSWORD)
    caps = c.cmd("CAPABILITY")[0]
    for cap in (
        "SORT", "SORT=DISPLAY", "ESORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT", "THREAD=REFS"
    ):
        assert f" {cap} " in caps or caps.strip().endswith(f" {cap}"), caps
    sort_script.load(c)
    c.cmd("SELECT INBOX")
    differ = []
    for rec in recorded["commands"]:
        got = sort_script.answer(c.cmd(rec["command"]))
        if got != rec["answer"]:
            differ.append(f"{rec['command']!r}\n  dovecot: {rec['answer']}\n  satchel: {got}")
    assert not differ, f"{len(differ)} of {len(commands)} differ:\n" + "\n".join(differ)
