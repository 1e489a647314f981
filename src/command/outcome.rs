//! Turns results and errors of the lower layers into Tcl results and `-errorcode` lists.

use crate::client::{self, Delivery, Server};
use crate::message;
use crate::smtp::{Failure, FailureKind, Refusal, Step, TlsIssue};
use crate::tcl::{Interp, Obj, TclError};

/// The result of a send: a list of `{address code diagnostic}`, one per refused
/// recipient (an empty list, i.e. `""`, when every recipient was accepted).
pub fn refusals(interp: &Interp<'_>, refused: &[Refusal]) -> Obj {
    let items: Vec<Obj> = refused
        .iter()
        .map(|r| {
            interp.new_list(&[
                interp.new_string(&r.address),
                interp.new_int(i64::from(r.reply.code)),
                interp.new_string(r.reply.text()),
            ])
        })
        .collect();
    interp.new_list(&items)
}

/// Added once to the error when a certificate did not verify. tcllib verified nothing, so
/// a script that reached a server with a private CA's certificate first fails here.
const TRUST_HINT: &str = "; to trust a private CA, give -tlsoptions {-cafile ca.pem} or call tls::init -cafile ca.pem";

pub fn message_error(e: message::Error) -> TclError {
    let mut code = vec!["SMTP".to_string()];
    code.extend(e.code_words().iter().map(|w| w.to_string()));
    TclError { message: e.to_string(), errorcode: code }
}

pub fn send_error(e: client::Error) -> TclError {
    match e {
        client::Error::NoServer(failures) => {
            let each: Vec<String> = failures.iter().map(|(server, f)| format!("{server}: {f}")).collect();
            // A TLS refusal says so first (`SMTP TLS ...`): the server was usable, but not
            // securely; so does a missing extension (`SMTP EXTENSION 8BITMIME`): usable, but
            // not for this message. Other failures are `SMTP SERVERS <last failure>`.
            let mut code = vec!["SMTP".to_string()];
            match failures.last() {
                Some((
                    _,
                    last @ Failure { kind: FailureKind::TlsRefused { .. } | FailureKind::ExtensionMissing(_), .. },
                )) => code.extend(failure_code(last)),
                Some((_, last)) => {
                    code.push("SERVERS".into());
                    code.extend(failure_code(last));
                }
                None => code.push("SERVERS".into()),
            }
            let mut message = format!("no server accepted the message: {}", each.join("; "));
            let not_verified =
                |f: &Failure| matches!(f.kind, FailureKind::TlsRefused { issue: TlsIssue::NotVerified(_), .. });
            if failures.iter().any(|(_, f)| not_verified(f)) {
                message.push_str(TRUST_HINT);
            }
            TclError { message, errorcode: code }
        }
        client::Error::Transaction { server, failure } => transaction_error(&server, &failure),
        client::Error::Invalid(why) => TclError::new(why, &["SMTP", "INTERNAL", "INVALID"]),
        client::Error::Cancelled => cancelled(false),
    }
}

/// The error of a send stopped by `::smtp::cancel` (or by deleting its interpreter).
pub fn cancelled(end_of_data_sent: bool) -> TclError {
    let message = if end_of_data_sent {
        "send cancelled after the end of the message was sent (the message may or may not have been delivered)"
    } else {
        "send cancelled (the message was not delivered)"
    };
    TclError::new(message, &["SMTP", "CANCELLED"])
}

/// What a `-command` callback gets: `status ok refused {…}` or
/// `status error refused {} error message errorcode {…}`.
pub fn callback_dict(interp: &Interp<'_>, result: &Result<Delivery, TclError>) -> Obj {
    let mut pairs = Vec::with_capacity(8);
    match result {
        Ok(delivery) => {
            pairs.extend([interp.new_string("status"), interp.new_string("ok")]);
            pairs.extend([interp.new_string("refused"), refusals(interp, &delivery.refused)]);
        }
        Err(e) => {
            let code: Vec<Obj> = e.errorcode.iter().map(|w| interp.new_string(w)).collect();
            pairs.extend([interp.new_string("status"), interp.new_string("error")]);
            pairs.extend([interp.new_string("refused"), interp.new_list(&[])]);
            pairs.extend([interp.new_string("error"), interp.new_string(&e.message)]);
            pairs.extend([interp.new_string("errorcode"), interp.new_list(&code)]);
        }
    }
    interp.new_list(&pairs)
}

fn transaction_error(server: &Server, failure: &Failure) -> TclError {
    let mut message = format!("{server}: {failure}");
    let unknown = failure.step == Step::EndOfData && !matches!(failure.kind, FailureKind::Reply(_));
    if unknown {
        message.push_str(" (the message may or may not have been delivered)");
    }
    let mut code = vec!["SMTP".to_string()];
    code.extend(failure_code(failure));
    TclError { message, errorcode: code }
}

/// `REPLY 553 MAIL`, `TIMEOUT ENDOFDATA`, `CLOSED RCPT`, `IO CONNECT`, `PROTOCOL EHLO`,
/// `SIZE 2000 1000`, `TLS VERIFY`, `EXTENSION SMTPUTF8`: what happened first, so `SMTP REPLY 5*`
/// matches every refusal.
fn failure_code(f: &Failure) -> Vec<String> {
    let step = f.step.code_word().to_string();
    match &f.kind {
        FailureKind::Reply(r) => vec!["REPLY".into(), r.code.to_string(), step],
        FailureKind::Timeout(_) => vec!["TIMEOUT".into(), step],
        FailureKind::Closed => vec!["CLOSED".into(), step],
        FailureKind::Io(_) => vec!["IO".into(), step],
        FailureKind::Protocol(_) => vec!["PROTOCOL".into(), step],
        FailureKind::TooBig { size, limit } => vec!["SIZE".into(), size.to_string(), limit.to_string()],
        // The kind of TLS trouble names its step already.
        FailureKind::TlsRefused { issue, .. } => match issue {
            TlsIssue::Refused(reply) => vec!["TLS".into(), "REFUSED".into(), reply.code.to_string()],
            TlsIssue::NotOffered => vec!["TLS".into(), "NOTOFFERED".into()],
            TlsIssue::Handshake(_) => vec!["TLS".into(), "HANDSHAKE".into()],
            TlsIssue::NotVerified(_) => vec!["TLS".into(), "VERIFY".into()],
            TlsIssue::EncryptionRequired(_) => vec!["AUTH".into(), "ENCRYPTION".into()],
        },
        FailureKind::AuthFailed { reply, .. } => {
            vec!["AUTH".into(), "FAILED".into(), reply.as_ref().map_or("NONE".into(), |r| r.code.to_string())]
        }
        FailureKind::AuthUnsupported { .. } => vec!["AUTH".into(), "NOMECHANISM".into()],
        FailureKind::AuthServerNotVerified => vec!["AUTH".into(), "SERVER".into()],
        FailureKind::ExtensionMissing(extension) => vec!["EXTENSION".into(), extension.keyword().into()],
    }
}
