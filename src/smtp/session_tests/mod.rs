//! Dialogue tests for the session engine: each test scripts the server's side of a whole
//! connection, runs the engine against it with a tiny in-memory driver, and pins every
//! command sent and the outcome (tcllib smtp 1.5.1 §4.3–4.6, §5.1–5.6, §7, and the
//! deliberate deviations in `shared/design.md`).
//!
//! This module holds the scripted server, the driver and the helpers the tests share; the
//! tests themselves are grouped by behaviour in the submodules.

use std::time::Duration;

use super::*;
use crate::sasl::Mechanism;
use crate::secret::Secret;
use crate::smtp::session::InvalidParams;
use crate::smtp::ReplyError;

mod auth;
mod eight_bit;
mod greeting;
mod input;
mod onex_qued;
mod params;
mod pipelining;
mod reuse;
mod timeouts;
mod tls;
mod transaction;

// ---------------------------------------------------------------------------------------
// The scripted server and the driver
// ---------------------------------------------------------------------------------------

/// One event on the server's side, consumed in order by the driver.
#[derive(Debug, Clone)]
enum Scripted {
    /// A complete reply to the last command (or the greeting).
    Reply(Reply),
    /// No reply could be read: timeout, closed connection, socket error, garbage.
    ReadFails(FailureKind),
    /// Writing the last command, or the message, failed.
    WriteFails(FailureKind),
    /// How the TLS handshake the engine asked for went.
    Handshake(Shake),
    /// The policy's answer to the issue the engine asked about; the issue is checked.
    Policy(TlsIssue, PolicyAnswer),
    /// The bearer token the engine asked for (`-oauthcommand`), or why there is none.
    Token(Result<&'static str, &'static str>),
}

/// A scripted TLS handshake result.
#[derive(Debug, Clone)]
enum Shake {
    Verified,
    NotVerified(&'static str),
    Fails(&'static str),
}

/// A one-line reply.
fn r(code: u16, text: &str) -> Scripted {
    Scripted::Reply(Reply::new(code, text))
}

/// A multi-line reply.
fn multi(code: u16, lines: &[&str]) -> Scripted {
    Scripted::Reply(Reply::with_lines(code, lines.iter().map(|s| s.to_string()).collect()))
}

/// A 250 EHLO reply announcing `keywords` (after the usual greeting line).
fn ehlo(keywords: &[&str]) -> Scripted {
    let mut lines = vec!["mx.example.org greets client.example"];
    lines.extend_from_slice(keywords);
    multi(250, &lines)
}

fn greeting() -> Scripted {
    r(220, "mx.example.org ESMTP ready")
}

fn ok() -> Scripted {
    r(250, "OK")
}

fn go_ahead() -> Scripted {
    r(354, "End data with <CR><LF>.<CR><LF>")
}

fn queued() -> Scripted {
    r(250, "2.0.0 Ok: queued as 4F2A1")
}

fn bye() -> Scripted {
    r(221, "2.0.0 Bye")
}

fn read_fails(kind: FailureKind) -> Scripted {
    Scripted::ReadFails(kind)
}

fn write_fails(kind: FailureKind) -> Scripted {
    Scripted::WriteFails(kind)
}

fn reply(code: u16, text: &str) -> Reply {
    Reply::new(code, text)
}

fn refusal(address: &str, code: u16, text: &str) -> Refusal {
    Refusal { address: address.into(), reply: reply(code, text) }
}

fn failed(step: Step, kind: FailureKind) -> Conclusion {
    Conclusion::Failed(Failure { step, kind })
}

fn unusable(step: Step, kind: FailureKind) -> Conclusion {
    Conclusion::Unusable(Failure { step, kind })
}

fn delivered(refused: Vec<Refusal>) -> Conclusion {
    Conclusion::Delivered { refused }
}

fn not_sent(refused: Vec<Refusal>) -> Conclusion {
    Conclusion::NotSent { refused }
}

/// How a connection that carries one message ended, as `client::send` concludes it from
/// the message's outcome and the connection's end.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Conclusion {
    Delivered {
        refused: Vec<Refusal>,
    },
    NotSent {
        refused: Vec<Refusal>,
    },
    /// The transaction failed; the send fails.
    Failed(Failure),
    /// The server could not be used: the next one is tried.
    Unusable(Failure),
    RetryWithoutTls,
}

impl Conclusion {
    fn of(outcome: Option<Outcome>, end: End) -> Conclusion {
        match (outcome, end) {
            (Some(Outcome::Delivered { refused }), _) => Conclusion::Delivered { refused },
            (Some(Outcome::NotSent { refused }), _) => Conclusion::NotSent { refused },
            (Some(Outcome::Failed(f)), _) => Conclusion::Failed(f),
            (Some(Outcome::Unusable(f)), _) | (None, End::Unusable(f)) => Conclusion::Unusable(f),
            (None, End::Failed(f) | End::Lost(f)) => Conclusion::Failed(f),
            (None, End::RetryWithoutTls) => Conclusion::RetryWithoutTls,
            (None, End::Quit) => panic!("the connection quit before its message ended"),
        }
    }
}

/// What one test connection carries: the connection's parameters and its one message's
/// envelope, in one value so that tests can change either with `..params()`.
#[derive(Debug, Clone)]
struct Case {
    client: String,
    queue: bool,
    starttls: bool,
    auth: Option<AuthParams>,
    loopback: bool,
    sender: String,
    recipients: Vec<String>,
    at_least_one: bool,
    message_size: u64,
    eight_bit: bool,
    seven_bit: Result<SevenBit, String>,
    dsn: Option<Dsn>,
    timeouts: Timeouts,
}

impl Case {
    fn split(self) -> (Params, Envelope) {
        let params = Params {
            client: self.client,
            queue: self.queue,
            starttls: self.starttls,
            auth: self.auth,
            loopback: self.loopback,
            timeouts: self.timeouts,
        };
        let envelope = Envelope {
            sender: self.sender,
            recipients: self.recipients,
            at_least_one: self.at_least_one,
            message_size: self.message_size,
            eight_bit: self.eight_bit,
            seven_bit: self.seven_bit,
            dsn: self.dsn,
        };
        (params, envelope)
    }
}

/// A session that carries `case`'s message and then quits, as `client::send` makes it;
/// the error of `new` or `submit` if the case is invalid.
fn one_message_session(case: Case) -> Result<Session, InvalidParams> {
    let (params, envelope) = case.split();
    let mut session = Session::new(params)?;
    session.submit(envelope)?;
    session.quit();
    Ok(session)
}

/// What a dialogue looked like from the client's side.
#[derive(Debug)]
struct Transcript {
    /// Commands written, in their Display form, and "<message>" for the DATA section.
    sent: Vec<String>,
    /// The same grouped by write: each flight (a `Send` or a `SendMessage`) in one entry.
    flights: Vec<Vec<String>>,
    /// What the engine said it was waiting for (`step()`, `timeout()`) at each wait: before
    /// each reply is read, and while the message is written.
    waits: Vec<(Step, Duration)>,
    outcome: Conclusion,
}

/// Runs one connection against `script` and returns the whole transcript. Panics when the
/// engine waits for more events than scripted, ends with script entries left over, or
/// never ends.
fn drive(case: Case, script: &[Scripted]) -> Transcript {
    let mut session = one_message_session(case).expect("test params are valid");
    let mut finished = None;
    let mut events = script.iter();
    let mut sent: Vec<String> = Vec::new();
    let mut flights: Vec<Vec<String>> = Vec::new();
    let mut waits = Vec::new();

    // The driver reads the greeting first.
    let mut next = feed(&mut session, &mut events, &sent, &mut waits);
    // Every round consumes a script entry, so a longer dialogue means the engine is looping.
    let max_rounds = script.len() + 1;
    for _ in 0..max_rounds {
        next = match next {
            Next::Close(end) => {
                let unused: Vec<_> = events.collect();
                assert!(unused.is_empty(), "the engine closed with {end:?} but {unused:?} remain unused");
                assert_eq!(session.resume(), Next::Close(end.clone()), "the end is not sticky");
                let outcome = Conclusion::of(finished, end);
                return Transcript { sent, flights, waits, outcome };
            }
            Next::Finished(outcome) => {
                assert!(finished.is_none(), "a second transaction finished: {outcome:?}");
                finished = Some(outcome);
                session.resume()
            }
            Next::Idle => panic!("a session asked to quit waits for a transaction; sent {sent:?}"),
            Next::Send(commands) => {
                let first = commands.first().expect("a flight has a command");
                assert_eq!(session.step(), first.step(), "the engine waits for a step other than {first}'s");
                let flight: Vec<String> = commands.iter().map(Command::to_string).collect();
                sent.extend(flight.iter().cloned());
                flights.push(flight);
                feed(&mut session, &mut events, &sent, &mut waits)
            }
            Next::Receive => feed(&mut session, &mut events, &sent, &mut waits),
            Next::StartTls => {
                sent.push("<handshake>".into());
                shake(&mut session, &mut events)
            }
            Next::AskToken(username) => match events.next() {
                Some(Scripted::Token(answer)) => {
                    sent.push(format!("<token for {username}>"));
                    session.token_answer(answer.map(Secret::from_text).map_err(str::to_string))
                }
                other => panic!("the engine asks for a token but the script has {other:?}"),
            },
            Next::AskPolicy(issue) => match events.next() {
                Some(Scripted::Policy(expected, answer)) => {
                    assert_eq!(&issue, expected, "the policy is asked about another issue");
                    sent.push(format!("<policy {}>", issue.code()));
                    session.policy_answer(Some(answer.clone()))
                }
                other => panic!("the engine asks the policy about {issue:?} but the script has {other:?}"),
            },
            Next::SendMessage(form) => {
                assert_eq!(session.step(), Step::Message, "no reply is due while the message is written");
                waits.push((session.step(), session.timeout()));
                let after = session.finish_message(&[]).expect("nothing arrived");
                let mut flight = vec![message_written(form)];
                flight.extend(after.iter().map(Command::to_string));
                sent.extend(flight.iter().cloned());
                flights.push(flight);
                if let Some(Scripted::WriteFails(kind)) = events.as_slice().first() {
                    events.next();
                    session.handle_failure(kind.clone())
                } else {
                    session.message_sent();
                    assert_eq!(session.step(), Step::EndOfData, "the end-of-data reply is next");
                    feed(&mut session, &mut events, &sent, &mut waits)
                }
            }
        };
    }
    panic!("no outcome after {max_rounds} rounds: livelock? sent {sent:?}");
}

/// Gives the engine the next scripted handshake result.
fn shake(session: &mut Session, events: &mut std::slice::Iter<'_, Scripted>) -> Next {
    assert_eq!(session.step(), Step::TlsHandshake);
    match events.next() {
        Some(Scripted::Handshake(Shake::Verified)) => session.tls_established(),
        Some(Scripted::Handshake(Shake::NotVerified(why))) => {
            session.tls_failed(TlsIssue::NotVerified(why.to_string()))
        }
        Some(Scripted::Handshake(Shake::Fails(why))) => session.tls_failed(TlsIssue::Handshake(why.to_string())),
        other => panic!("the engine runs a handshake but the script has {other:?}"),
    }
}

/// Gives the engine the next scripted event for what it awaits.
fn feed(
    session: &mut Session,
    events: &mut std::slice::Iter<'_, Scripted>,
    sent: &[String],
    waits: &mut Vec<(Step, Duration)>,
) -> Next {
    let step = session.step();
    waits.push((step, session.timeout()));
    let Some(event) = events.next() else {
        panic!("the engine waits for the reply at {step:?} but the script is used up; sent {sent:?}");
    };
    match event {
        Scripted::Reply(reply) => session.handle_reply(reply.clone()),
        Scripted::ReadFails(kind) => session.handle_failure(kind.clone()),
        Scripted::WriteFails(kind) => {
            assert!(!sent.is_empty(), "a write failed before anything was written");
            session.handle_failure(kind.clone())
        }
        other => panic!("the engine waits for a reply at {step:?} but the script has {other:?}"),
    }
}

/// The commands sent and the outcome of one scripted connection.
fn run(params: Case, script: &[Scripted]) -> (Vec<String>, Conclusion) {
    let transcript = drive(params, script);
    (transcript.sent, transcript.outcome)
}

/// Distinct values, so a test can tell which field a wait used.
fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(1),
        greeting: Duration::from_secs(2),
        command: Duration::from_secs(3),
        mail: Duration::from_secs(4),
        rcpt: Duration::from_secs(5),
        end_of_data: Duration::from_secs(6),
        quit: Duration::from_secs(7),
        write: Duration::from_secs(8),
    }
}

/// From a@b to c@d and e@f, 350 bytes, no -queue, no -atleastone.
fn params() -> Case {
    Case {
        client: "client.example".into(),
        queue: false,
        starttls: false,
        auth: None,
        loopback: false,
        sender: "a@b".into(),
        recipients: vec!["c@d".into(), "e@f".into()],
        at_least_one: false,
        message_size: 350,
        eight_bit: false,
        seven_bit: Err("a test message".into()),
        dsn: None,
        timeouts: test_timeouts(),
    }
}

/// How the script records the message written, in its form.
fn message_written(form: Form) -> String {
    match form {
        Form::AsIs => "<message>".into(),
        Form::SevenBit => "<message converted>".into(),
    }
}

fn to(recipients: &[&str]) -> Case {
    Case { recipients: recipients.iter().map(|s| s.to_string()).collect(), ..params() }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

// ---------------------------------------------------------------------------------------
// Parameters, replies and scripts that several groups of tests use
// ---------------------------------------------------------------------------------------

/// A policy answer that refuses, with its reason.
fn secure(why: &str) -> PolicyAnswer {
    PolicyAnswer::Secure { why: why.into() }
}

/// The server's side of a one-recipient delivery from MAIL to QUIT, all accepted.
fn delivery_script() -> Vec<Scripted> {
    vec![ok(), ok(), go_ahead(), queued(), bye()]
}

/// The greeting as a `Reply`, for tests that call the session directly.
fn greeting_reply() -> Reply {
    reply(220, "mx.example.org ESMTP ready")
}

/// `params()` with the one recipient c@d.
fn params_one_rcpt() -> Case {
    Case { recipients: vec!["c@d".into()], ..params() }
}

/// `params_one_rcpt()` with -username alice -password s3cret; `loopback` says whether the
/// server is on loopback (where a password may go in clear).
fn auth_params(loopback: bool) -> Case {
    Case {
        auth: Some(AuthParams {
            username: "alice".into(),
            password: Secret::from_text("s3cret"),
            token: None,
            mechanisms: Vec::new(),
            host: "mx.example.org".into(),
            cnonce: "0123456789abcdef".into(),
        }),
        loopback,
        ..params_one_rcpt()
    }
}

// ---------------------------------------------------------------------------------------
// The driver's own guards
// ---------------------------------------------------------------------------------------

#[test]
#[should_panic(expected = "the script is used up")]
fn driver_fails_a_test_whose_script_is_too_short() {
    run(params(), &[greeting(), ehlo(&[])]);
}

#[test]
#[should_panic(expected = "remain unused")]
fn driver_fails_a_test_whose_script_has_entries_left_over() {
    run(params(), &[r(554, "go away"), ok()]);
}
