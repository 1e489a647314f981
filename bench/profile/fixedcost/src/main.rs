//! fixedcost PORT [N]: times the pieces of one `smtp::mail` send that do not involve Tcl,
//! each on its own, in 9 batches of N calls (default 300), against an SMTP server
//! (smtp-sink) on 127.0.0.1:PORT. Prints one line per piece: the fastest and the median
//! batch, in microseconds per call; "once" lines are what only the first call of a
//! process pays. bench/profile.sh runs it; see bench/PROFILE.md.
//!
//! It does what the package does with the same libraries (chrono for the Date, OpenSSL
//! for randomness and the TLS context, std threads and sockets), without linking the
//! package: its modules are private. The dialogue is the one the package's engine has
//! with smtp-sink (4 round trips), written out by hand.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Instant;

/// The message of bench/send.tcl's 1 KiB rows as it goes on the wire: a header block
/// like smtp::mail's, the 1 KiB body in CRLF lines, the end-of-data dot.
fn message() -> Vec<u8> {
    let date = chrono::Local::now().to_rfc2822();
    let mut text = format!(
        "Date: {date}\r\nFrom: sender@example.com\r\nSubject: benchmark message\r\n\
         Message-ID: <1.2.3.0123456789abcdef@vm>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    );
    let line = "abcdefghi".repeat(8);
    let mut body = String::new();
    while body.len() < 1024 {
        body.push_str(&line);
        body.push_str("\r\n");
    }
    text.push_str(&body);
    text.push_str(".\r\n");
    text.into_bytes()
}

/// Reads until `lines` complete replies have arrived (a reply's last line is "ddd ...").
fn expect(stream: &mut TcpStream, lines: usize) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let replies =
            seen.split(|&b| b == b'\n').filter(|l: &&[u8]| l.len() >= 4 && l.ends_with(b"\r") && l[3] == b' ').count();
        if replies >= lines {
            return;
        }
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "the server closed the connection");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// One send as the package's engine has it with smtp-sink: connect, greeting, EHLO, then
/// MAIL, RCPT and DATA pipelined, the message, its dot and QUIT in one write, close.
fn dialogue(port: u16, message: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    expect(&mut s, 1);
    s.write_all(b"EHLO vm\r\n").expect("write");
    expect(&mut s, 1);
    s.write_all(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<rcpt1@example.com>\r\nDATA\r\n").expect("write");
    expect(&mut s, 3);
    let mut rest = message.to_vec();
    rest.extend_from_slice(b"QUIT\r\n");
    s.write_all(&rest).expect("write");
    expect(&mut s, 2);
}

/// Runs `f` in 9 batches of `n` and returns the fastest and the median batch's time per
/// call, in microseconds: on a shared machine the fastest batch is the cost of the work,
/// the median what neighbours make of it.
fn timed(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut batches: Vec<f64> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    (batches[0], batches[4])
}

fn report(label: &str, (best, median): (f64, f64)) {
    println!("{best:9.2} {median:9.2}  {label}");
}

fn once(label: &str, start: Instant) {
    let us = start.elapsed().as_secs_f64() * 1e6;
    println!("{us:9.0} {:>9}  {label}", "once");
}

fn tls_context() -> openssl::ssl::SslConnector {
    let mut builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).expect("TLS");
    builder.set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1_2)).expect("TLS 1.2");
    builder.build()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("usage: fixedcost PORT [N]");
    let n: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(300);

    println!("{:>9} {:>9}  microseconds per call (9 batches of {n})", "fastest", "median");
    let start = Instant::now();
    let _ = tls_context();
    once("first call of the process: the TLS context (SslConnector::builder: OpenSSL init, system CAs)", start);
    let start = Instant::now();
    let _ = tls_context();
    once("the TLS context again (what the package builds once a process, TlsConfig::shared)", start);
    let start = Instant::now();
    let _ = chrono::Local::now().to_rfc2822();
    once("first call of the process: chrono::Local::now (reads /etc/localtime)", start);

    report(
        "chrono::Local::now().to_rfc2822() (the Date)",
        timed(n, || {
            std::hint::black_box(chrono::Local::now().to_rfc2822());
        }),
    );
    report(
        "8 random bytes from OpenSSL, in hex (the Message-ID's randomness)",
        timed(n, || {
            let mut bytes = [0u8; 8];
            openssl::rand::rand_bytes(&mut bytes).expect("random");
            std::hint::black_box(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }),
    );
    report(
        "thread spawn + exit, result over a channel (empty send)",
        timed(n, || {
            let (tx, rx) = mpsc::channel();
            std::thread::Builder::new()
                .name("smtp-send".into())
                .spawn(move || {
                    let _ = tx.send(1u8);
                })
                .expect("spawn");
            rx.recv().expect("recv");
        }),
    );
    {
        // The same hand-over to a thread that already runs: what a kept worker would cost.
        let (to_worker, jobs) = mpsc::channel::<mpsc::Sender<u8>>();
        let worker = std::thread::spawn(move || {
            for answer in jobs {
                let _ = answer.send(1);
            }
        });
        report(
            "hand-over to a running thread and back (channel ping-pong)",
            timed(n, || {
                let (tx, rx) = mpsc::channel();
                to_worker.send(tx).expect("send");
                rx.recv().expect("recv");
            }),
        );
        drop(to_worker);
        worker.join().expect("join");
    }

    let message = message();
    report(
        "the dialogue on this thread (connect, greeting, EHLO, MAIL+RCPT+DATA, message+QUIT, close)",
        timed(n, || dialogue(port, &message)),
    );
    let shared = std::sync::Arc::new(message);
    report(
        "the same dialogue on a new thread per send, as smtp::mail has it (result over a channel)",
        timed(n, || {
            let (tx, rx) = mpsc::channel();
            let message = std::sync::Arc::clone(&shared);
            std::thread::Builder::new()
                .name("smtp-send".into())
                .spawn(move || {
                    dialogue(port, &message);
                    let _ = tx.send(());
                })
                .expect("spawn");
            rx.recv().expect("recv");
        }),
    );
}
