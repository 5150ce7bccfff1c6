// imapflow with QRESYNC on (RFC 7162), as a phone app resyncing would use
// it: it opens INBOX and remembers UIDVALIDITY and HIGHESTMODSEQ; another
// client (without QRESYNC) flags one message and expunges another; the
// app comes back with a new connection, opens INBOX with what it
// remembered, and fetches only what changed since. Then, with INBOX open,
// the other client expunges one more. Prints what the app saw as JSON,
// for tests/test_imap_clients.py. Usage: node imapflow-qresync.mjs PORT USER PASS
import { ImapFlow } from 'imapflow';

const [port, user, pass] = process.argv.slice(2);
const connect = async qresync => {
    const client = new ImapFlow({
        host: '127.0.0.1',
        port: Number(port),
        secure: false,
        auth: { user, pass },
        tls: { rejectUnauthorized: false }, // the test server's certificate is self-signed
        qresync,
        logger: false
    });
    await client.connect();
    return client;
};

const out = {};
let app = await connect(true);
out.enabled = [...app.enabled];
let box = await app.mailboxOpen('INBOX');
const remembered = { uidValidity: box.uidValidity, highestModseq: box.highestModseq };
out.uids = [];
for await (const m of app.fetch('1:*', { uid: true, flags: true })) out.uids.push(m.uid);
await app.logout();

const other = await connect(false);
await other.mailboxOpen('INBOX');
const [first, second, third] = out.uids;
await other.messageFlagsAdd(String(second), ['\\Flagged'], { uid: true });
await other.messageDelete(String(third), { uid: true });
out.flagged = second;
out.deleted = third;

app = await connect(true);
const events = { vanished: [], vanishedEarlier: [], flags: [] };
app.on('expunge', e => (e.earlier ? events.vanishedEarlier : events.vanished).push(e.uid ?? null));
app.on('flags', e => events.flags.push({ uid: e.uid, flags: [...e.flags] }));
box = await app.mailboxOpen('INBOX', {
    uidValidity: remembered.uidValidity,
    changedSince: remembered.highestModseq
});
out.qresync = box.qresync === true;
out.atOpen = JSON.parse(JSON.stringify(events));
out.changed = [];
for await (const m of app.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: remembered.highestModseq })) {
    out.changed.push({ uid: m.uid, flags: [...m.flags], modseq: String(m.modseq) });
}
out.afterFetch = JSON.parse(JSON.stringify(events));

// Live: an expunge while the app has INBOX open arrives as VANISHED.
await other.messageDelete(String(first), { uid: true });
await app.noop();
out.live = events.vanished;
out.exists = app.mailbox.exists;
await other.logout();
await app.logout();
console.log(JSON.stringify(out));
