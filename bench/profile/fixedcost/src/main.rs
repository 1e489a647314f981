//! fixedcost PORT [N]: times the pieces of one `smtp::mail` send that do not involve
//! Tcl, each on its own, in 9 batches of N calls (default 300), against an SMTP server
//! (smtp-sink) on 127.0.0.1:PORT. Prints one line per piece: the fastest and the median
//! batch, in microseconds per call; "once" lines are what only the first call of a
//! process pays. bench/profile.sh runs it; see bench/PROFILE.md.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use tclsmtp::client::{self, Cancel, Hooks, Request, Server};
use tclsmtp::compose::{self, Mail, Mailbox, Stamp};
use tclsmtp::smtp::{Params, PolicyAnswer, Timeouts};
use tclsmtp::spool::Spool;
use tclsmtp::transport::{TlsConfig, TlsOptions};

struct NoHooks;

impl Hooks for NoHooks {
    fn trace(&mut self, _line: &str) {}
    fn tls_policy(&mut self, _code: u16, _diagnostic: &str) -> Option<PolicyAnswer> {
        None
    }
}

/// The 1 KiB body of bench/send.tcl.
fn body() -> String {
    let line = "abcdefghi".repeat(8) + "\n";
    let mut body = String::new();
    while body.len() < 1024 {
        body.push_str(&line);
    }
    body.truncate(1023);
    body.push('\n');
    body
}

fn mail(body: &str) -> Mail {
    Mail {
        from: Some(Mailbox::parse("sender@example.com", "-from").unwrap()),
        subject: Some("benchmark message".into()),
        text: Some(body.to_string()),
        ..Mail::default()
    }
}

fn message(body: &str) -> Spool {
    let date = chrono::Local::now().to_rfc2822();
    let mut boundary = || Ok("=_boundary".to_string());
    let segments =
        compose::build(mail(body), Stamp { date: &date, message_id: "<1.2.3.4@host>", boundary: &mut boundary })
            .unwrap();
    Spool::from_segments(segments).unwrap()
}

fn request(port: u16, message: Spool, tls: Option<Arc<TlsConfig>>) -> Request {
    let params = Params {
        client: "vm".into(),
        queue: false,
        starttls: tls.is_some(),
        auth: None,
        loopback: false,
        sender: "sender@example.com".into(),
        recipients: vec!["rcpt1@example.com".into()],
        at_least_one: false,
        message_size: message.size(),
        eight_bit: message.eight_bit(),
        timeouts: Timeouts::standard(Duration::from_secs(120)),
    };
    Request { servers: vec![Server { host: "127.0.0.1".into(), port }], params, tls, implicit_tls: false, message }
}

/// The dialogue smtp-source has, written by hand: greeting, EHLO, then MAIL, RCPT and DATA
/// pipelined, the message, QUIT (what `client::send` does, minus its engine).
fn raw_dialogue(port: u16, data: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    let mut buf = [0u8; 4096];
    let mut expect = |s: &mut TcpStream, lines: usize| {
        let mut got = 0;
        let mut seen = Vec::new();
        while got < lines {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "connection closed");
            seen.extend_from_slice(&buf[..n]);
            got = seen.windows(2).filter(|w| w == b"\r\n").count()
                - seen.split(|&b| b == b'\n').filter(|l| l.len() > 3 && l[3] == b'-').count();
        }
    };
    expect(&mut s, 1);
    s.write_all(b"EHLO vm\r\n").unwrap();
    expect(&mut s, 1);
    s.write_all(b"MAIL FROM:<sender@example.com>\r\nRCPT TO:<rcpt1@example.com>\r\nDATA\r\n").unwrap();
    expect(&mut s, 3);
    s.write_all(data).unwrap();
    s.write_all(b".\r\nQUIT\r\n").unwrap();
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|p| p.parse().ok()).expect("usage: fixedcost PORT [N]");
    let n: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(300);
    let body = body();

    // Once per process.
    println!("{:>9} {:>9}  microseconds per call (9 batches of {n})", "fastest", "median");
    let start = Instant::now();
    let _ = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    once("first call of the process: SslConnector::builder alone (OpenSSL init, system CAs)", start);
    let start = Instant::now();
    let tls = TlsConfig::shared(&TlsOptions::default()).unwrap();
    once("first call of the process: TlsConfig::shared (after the line above)", start);
    let start = Instant::now();
    let _ = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    once("SslConnector::builder again (what TlsConfig::shared caches)", start);
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
        "client::random_hex(8) (Message-ID randomness, OpenSSL RAND)",
        timed(n, || {
            std::hint::black_box(client::random_hex(8).unwrap());
        }),
    );
    report(
        "compose::build + Spool::from_segments (1 KiB text)",
        timed(n, || {
            std::hint::black_box(message(&body));
        }),
    );
    report(
        "TlsConfig::shared, cached",
        timed(n, || {
            std::hint::black_box(TlsConfig::shared(&TlsOptions::default()).unwrap());
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
                .unwrap();
            rx.recv().unwrap();
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
                to_worker.send(tx).unwrap();
                rx.recv().unwrap();
            }),
        );
        drop(to_worker);
        worker.join().unwrap();
    }

    let mut data = Vec::new();
    message(&body)
        .for_each_chunk(|c| {
            data.extend_from_slice(c);
            Ok::<(), ()>(())
        })
        .unwrap();
    report(
        "raw dialogue by hand on this thread (connect, EHLO, MAIL+RCPT+DATA pipelined, message, QUIT)",
        timed(n, || {
            raw_dialogue(port, &data);
        }),
    );

    let plain = Arc::new(request(port, message(&body), Some(tls.clone())));
    let cancel = Cancel::default();
    report(
        "client::send on this thread (the worker's whole job)",
        timed(n, || {
            client::send(&plain, &mut NoHooks, &cancel).unwrap();
        }),
    );
    report(
        "client::send on a new thread per send, result over a channel",
        timed(n, || {
            let (tx, rx) = mpsc::channel();
            let request = Arc::clone(&plain);
            std::thread::Builder::new()
                .name("smtp-send".into())
                .spawn(move || {
                    let _ = tx.send(client::send(&request, &mut NoHooks, &Cancel::default()));
                })
                .unwrap();
            rx.recv().unwrap().unwrap();
        }),
    );
}
