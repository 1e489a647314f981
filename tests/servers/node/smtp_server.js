#!/usr/bin/env node
// smtp_server.js -- nodemailer's smtp-server (an independent SMTP server library, in
// Node) accepting XOAUTH2 bearer tokens, for the tclsmtp tests (tests/oauth.test).
//
// Usage:
//     node smtp_server.js --port-file PORTFILE --dir DIR --cert CERT --key KEY
//         [--oauth USER:TOKEN ...] [--scope SCOPE]
//
// smtp-server is installed beside this file (node_modules, ignored by git) by
// ::ts::node_smtp in tests/support.tcl, from package.json and package-lock.json here.
//
// Listens on 127.0.0.1 with an OS-chosen port, writes the port number to PORTFILE
// (atomically), and runs until SIGTERM/SIGINT. Server name "node.test"; STARTTLS offered
// with CERT/KEY (PEM); AUTH is offered (and accepted) only after STARTTLS (before it:
// "538 Error: Must issue a STARTTLS command first"), and only XOAUTH2; MAIL before AUTH
// gets "530 Error: authentication Required".
//
// XOAUTH2 (smtp-server's own implementation): the client sends
// base64("user=USER^Aauth=Bearer TOKEN^A^A"), after an empty 334 or in the AUTH line. A
// TOKEN given for USER with --oauth (split at the first ":"; repeatable) gets "235
// Authentication successful". Any other gets the Google-style JSON error through
// smtp-server's onAuth callback(null, {data: ...}): "334 base64({"status":"401",
// "schemes":"bearer","scope":SCOPE})" (SCOPE default https://mail.node.test/), and the
// client's next line (its acknowledgement, normally empty) "535 Error: Username and
// Password not accepted".
//
// Every accepted message N (1, 2, ...) is stored as capture.py does (so ::ts::messages
// reads it): DIR/N.eml (the message bytes, dot-stuffing undone) and DIR/N.json
// {"mail_from", "rcpt_tos", "mail_options", "rcpt_options", "tls", "sni",
// "client_cert", "auth_user"} (the options are always empty lists, client_cert false).
// Every XOAUTH2 check is logged as one JSON line in DIR/auth.log: {"mech": "XOAUTH2",
// "user": USER, "outcome": "ok"|"refused"} (::ts::auth_log reads it).

'use strict';

const fs = require('fs');
const path = require('path');
const { SMTPServer } = require('smtp-server');

function usage(msg) {
    process.stderr.write('smtp_server.js: ' + msg + '\n');
    process.exit(2);
}

const opts = { oauth: {}, scope: 'https://mail.node.test/' };
const argv = process.argv.slice(2);
while (argv.length) {
    const opt = argv.shift();
    if (!argv.length) {
        usage(opt + ' needs a value');
    }
    const val = argv.shift();
    switch (opt) {
        case '--port-file':
            opts.portFile = val;
            break;
        case '--dir':
            opts.dir = val;
            break;
        case '--cert':
            opts.cert = val;
            break;
        case '--key':
            opts.key = val;
            break;
        case '--scope':
            opts.scope = val;
            break;
        case '--oauth': {
            const i = val.indexOf(':');
            if (i < 1) {
                usage('--oauth needs USER:TOKEN');
            }
            opts.oauth[val.slice(0, i)] = val.slice(i + 1);
            break;
        }
        default:
            usage('unknown option ' + opt);
    }
}
for (const k of ['portFile', 'dir', 'cert', 'key']) {
    if (!opts[k]) {
        usage('missing --' + k.replace(/[A-Z]/g, c => '-' + c.toLowerCase()));
    }
}

function writeAtomic(file, data) {
    const tmp = file + '.tmp.' + process.pid;
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
}

function authLog(entry) {
    fs.appendFileSync(path.join(opts.dir, 'auth.log'), JSON.stringify(entry) + '\n');
}

fs.mkdirSync(opts.dir, { recursive: true });
let count = 0;

const server = new SMTPServer({
    name: 'node.test',
    secure: false,
    key: fs.readFileSync(opts.key),
    cert: fs.readFileSync(opts.cert),
    authMethods: ['XOAUTH2'],
    authOptional: false,
    logger: false,
    onAuth(auth, session, callback) {
        const ok = auth.method === 'XOAUTH2' &&
            Object.prototype.hasOwnProperty.call(opts.oauth, auth.username) &&
            opts.oauth[auth.username] === auth.accessToken;
        authLog({ mech: auth.method, user: auth.username, outcome: ok ? 'ok' : 'refused' });
        if (ok) {
            return callback(null, { user: auth.username });
        }
        return callback(null, { data: { status: '401', schemes: 'bearer', scope: opts.scope } });
    },
    onData(stream, session, callback) {
        const chunks = [];
        stream.on('data', chunk => chunks.push(chunk));
        stream.on('end', () => {
            const n = ++count;
            const base = path.join(opts.dir, String(n));
            writeAtomic(base + '.eml', Buffer.concat(chunks));
            const env = session.envelope;
            writeAtomic(base + '.json', JSON.stringify({
                mail_from: env.mailFrom ? env.mailFrom.address : null,
                rcpt_tos: env.rcptTo.map(r => r.address),
                mail_options: [],
                rcpt_options: [],
                tls: !!session.secure,
                sni: session.servername || null,
                client_cert: false,
                auth_user: session.user || null
            }));
            callback(null, 'Message accepted');
        });
    }
});

server.on('error', err => {
    process.stderr.write('smtp_server.js: ' + err.message + '\n');
});

server.listen(0, '127.0.0.1', () => {
    writeAtomic(opts.portFile, server.server.address().port + '\n');
});

for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
        server.close(() => process.exit(0));
        setTimeout(() => process.exit(0), 1000).unref();
    });
}
