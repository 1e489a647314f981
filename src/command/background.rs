//! A send that keeps the Tcl event loop running: the dialogue runs on a worker thread
//! while the interpreter's thread services Tcl events (timers, file events, Tk), as
//! tcllib's `vwait` does, and answers the worker's `-tlspolicy` questions, since
//! everything that touches Tcl must happen on the interpreter's thread.
//!
//! Each call has its own channel and worker, so a send started from an event handler
//! during another send (a nested send) completes on its own; the outer one finishes
//! when control returns to it.

use std::io::Write;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread;

use super::hooks::PolicyCommand;
use crate::client::{self, Delivery, Hooks, Request};
use crate::smtp::PolicyAnswer;
use crate::tcl::{Interp, Obj, TclError, Waker};

/// What the worker tells the interpreter's thread.
enum FromWorker {
    /// Ask `-tlspolicy` and send its answer back.
    Policy {
        code: u16,
        diagnostic: String,
        answer: Sender<PolicyAnswer>,
    },
    Done(Result<Delivery, client::Error>),
}

/// The worker's side of [`Hooks`]: traces itself, forwards policy questions.
struct WorkerHooks {
    debug: bool,
    has_policy: bool,
    to_interp: Sender<FromWorker>,
    waker: Waker,
}

impl Hooks for WorkerHooks {
    fn trace(&mut self, line: &str) {
        if self.debug {
            // Not eprintln!, which panics when stderr is closed (a daemon); a lost trace
            // line must not fail the send.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    fn tls_policy(&mut self, code: u16, diagnostic: &str) -> Option<PolicyAnswer> {
        if !self.has_policy {
            return None;
        }
        let (answer, answered) = mpsc::channel();
        let question = FromWorker::Policy { code, diagnostic: diagnostic.to_string(), answer };
        let gone = PolicyAnswer::Secure { why: "the interpreter did not answer".into() };
        if self.to_interp.send(question).is_err() {
            return Some(gone);
        }
        self.waker.wake();
        Some(answered.recv().unwrap_or(gone))
    }
}

/// Sends `request` on a worker thread and services Tcl events until it is done.
pub fn send(interp: &Interp<'_>, request: Request, debug: bool, policy: Option<Obj>) -> Result<Delivery, TclError> {
    let (to_interp, from_worker) = mpsc::channel();
    let waker = interp.waker();
    let mut hooks = WorkerHooks { debug, has_policy: policy.is_some(), to_interp, waker };
    let worker = thread::Builder::new()
        .name("smtp-send".into())
        .spawn(move || {
            let result = client::send(&request, &mut hooks);
            // The interpreter's thread may have given up waiting only if it panicked.
            let _ = hooks.to_interp.send(FromWorker::Done(result));
            hooks.waker.wake();
        })
        .map_err(|e| {
            TclError::new(format!("cannot start a thread for the send: {e}"), &["SMTP", "INTERNAL", "THREAD"])
        })?;
    let policy = policy.map(|prefix| PolicyCommand::new(interp, prefix));
    let outcome = interp.preserved(|| serve_events(interp, &from_worker, policy.as_ref()));
    // The worker has sent its last message, or died (a panic: it reports no result).
    let _ = worker.join();
    match outcome {
        Some(result) => result.map_err(super::outcome::send_error),
        None => Err(TclError::new(
            "internal error in smtp (please report): the send thread ended without a result",
            &["SMTP", "INTERNAL", "THREAD"],
        )),
    }
}

/// Services Tcl events until the worker reports its result (`None` if it vanished).
fn serve_events(
    interp: &Interp<'_>,
    from_worker: &Receiver<FromWorker>,
    policy: Option<&PolicyCommand<'_, '_>>,
) -> Option<Result<Delivery, client::Error>> {
    loop {
        match from_worker.try_recv() {
            Ok(FromWorker::Done(result)) => return Some(result),
            Ok(FromWorker::Policy { code, diagnostic, answer }) => {
                let decision = match policy {
                    Some(policy) => policy.ask(code, &diagnostic),
                    None => PolicyAnswer::Secure { why: "no -tlspolicy".into() },
                };
                let _ = answer.send(decision);
            }
            // Nothing yet: run one Tcl event (the worker's wake-up is one of them).
            Err(TryRecvError::Empty) => interp.do_one_event(),
            Err(TryRecvError::Disconnected) => return None,
        }
    }
}
