// Drives Satchel with imapflow (the IMAP client of Nodemailer and many web
// mail apps) and prints what it saw as JSON, for tests/test_imap_clients.py.
// Usage: node imapflow-check.mjs PORT USER PASS
import { ImapFlow } from 'imapflow';

const [port, user, pass] = process.argv.slice(2);
const client = new ImapFlow({
    host: '127.0.0.1',
    port: Number(port),
    secure: false,
    auth: { user, pass },
    tls: { rejectUnauthorized: false }, // the test server's certificate is self-signed
    logger: false
});

const out = {};
await client.connect();
out.secure = client.secureConnection;

out.mailboxes = (await client.list()).map(m => ({ path: m.path, specialUse: m.specialUse || null }));

let lock = await client.getMailboxLock('INBOX');
try {
    out.structures = 0;
    out.structureErrors = [];
    out.types = {};
    for await (const msg of client.fetch('1:*', { uid: true, bodyStructure: true, envelope: true })) {
        if (!msg.bodyStructure || !msg.bodyStructure.type) {
            out.structureErrors.push(msg.uid);
            continue;
        }
        out.structures++;
        out.types[msg.uid] = msg.bodyStructure.type;
        if (msg.envelope && msg.envelope.subject === 'Attachment for imapflow') {
            out.attachmentUid = msg.uid;
            out.attachmentPart = msg.bodyStructure.childNodes[1].part;
            out.attachmentType = msg.bodyStructure.childNodes[1].type;
        }
    }
    if (out.attachmentUid) {
        const one = await client.fetchOne(String(out.attachmentUid), {
            bodyParts: [{ key: out.attachmentPart, start: 0, maxLength: 8 }]
        }, { uid: true });
        const part = [...one.bodyParts.values()][0];
        out.partial = part.toString('latin1');
        const whole = await client.download(String(out.attachmentUid), out.attachmentPart, { uid: true });
        const chunks = [];
        for await (const c of whole.content) chunks.push(c);
        out.download = Buffer.concat(chunks).toString('latin1');
    }
    const appended = await client.append('INBOX', 'Subject: from imapflow\r\n\r\nhello\r\n', ['\\Seen']);
    out.appendedUid = appended.uid;
    const moved = await client.messageMove(String(appended.uid), 'Junk', { uid: true });
    out.moved = moved ? { destination: moved.destination, uidMap: [...moved.uidMap.entries()] } : null;
} finally {
    lock.release();
}
await client.logout();
console.log(JSON.stringify(out));
