"""The fault suite, sending part: `satchel serve` killed with SIGKILL at a
random moment while clients submit mail and the queue delivers it to a
remote MX. After each restart every message whose 250 a client saw is in
Sent exactly once and reaches the MX at least once (twice only inside the
at-least-once window: between the far end's 250 and the queue's note of
it, so at most one message per open connection), and `satchel check`
finds nothing. The seed of each round is printed
on failure."""
import email
import random
import signal
import smtplib
import tempfile
import threading
import time

from conftest import PASSWORD, figure
from sink import Sink
from test_submission import ALICE, BOB, mail, mailbox_subjects, mx_table, start_sending, wait_for

CLIENTS = 4


def load(s, user, tag, acknowledged, stop):
    """Submits until `stop`; notes each message whose 250 it saw."""
    n = 0
    while not stop.is_set():
        try:
            c = smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=10)
            c.ehlo("client.example.test")
            c.login(user, PASSWORD)
            while not stop.is_set():
                n += 1
                subject = f"{tag}-{n}"
                c.sendmail(user, ["dave@remote.test"], mail(subject, sender=user,
                                                           message_id=f"<{subject}@client.example.test>"))
                acknowledged.append((user, subject))
        except (OSError, smtplib.SMTPException):
            time.sleep(0.05)  # the server is gone; try again until told to stop


def test_sigkill_during_submission_and_delivery_loses_nothing_acknowledged():
    for round_ in range(2):
        seed = random.randrange(1 << 30)
        rng = random.Random(seed)
        sink = Sink()
        with tempfile.TemporaryDirectory() as tmp:
            s = start_sending(tmp, sink.port, mx_table({"remote.test": [(10, "mx.remote.test", "127.0.0.1")]}))
            try:
                acknowledged, stop = [], threading.Event()
                threads = [threading.Thread(target=load, args=(s, [ALICE, BOB][i % 2], f"r{round_}c{i}",
                                                               acknowledged, stop))
                           for i in range(CLIENTS)]
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(1.0, 3.0))
                # Connections that can hold a message in the window: those
                # of the server that is about to die, not of its successor.
                connections = sink.max_open
                s.proc.send_signal(signal.SIGKILL)
                s.proc.wait()
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                acked = list(acknowledged)
                assert len(acked) >= 5, f"seed {seed}: only {len(acked)} acknowledged before the kill"
                s.start()
                subjects = {subject for _, subject in acked}
                at_sink = lambda: [email.message_from_bytes(m[2])["Subject"] for m in sink.received()]
                wait_for(lambda: subjects <= set(at_sink()), timeout=60,
                         what=f"every acknowledged message at the MX (seed {seed})")
                wait_for(lambda: s.cli("queue", "list").stdout == b"", timeout=60,
                         what=f"an empty queue (seed {seed})")
                arrived = at_sink()
                doubled = [x for x in set(arrived) if arrived.count(x) > 1]
                # Each connection carries one message at a time: at most the
                # one in flight on each at the kill arrives twice.
                assert len(doubled) <= connections, \
                    f"seed {seed}: delivered twice: {doubled}, {connections} connections at most"
                for user in (ALICE, BOB):
                    sent = mailbox_subjects(s, user, "Sent")
                    mine = {subject for u, subject in acked if u == user}
                    assert mine <= set(sent), f"seed {seed}: Sent copies lost: {sorted(mine - set(sent))[:5]}"
                    assert len(sent) == len(set(sent)), f"seed {seed}: a Sent copy is there twice"
                out = s.cli("check", check=False)
                assert out.returncode == 0 and b": no problems" in out.stdout, \
                    f"seed {seed}: {out.stdout.decode()}{out.stderr.decode()}"
                figure(f"submission fault round {round_} (seed {seed}): {len(acked)} acknowledged, "
                       f"all at the MX and in Sent once, {len(doubled)} sent twice "
                       f"(at most {connections} allowed)")
            finally:
                s.stop()
                sink.close()
