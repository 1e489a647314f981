//! `::smtp::open`, `::smtp::info` and `::smtp::close`: the sessions of one interpreter,
//! each a [`Pool`] of connections. A message sent with `-session` is an entry of the
//! interpreter's registry of sends like any other (same results, callbacks, `wait` and
//! `cancel`); only its worker is the session's.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::asked::Asked;
use super::error::Error;
use super::options::{self, value_error, ConnectionWords};
use super::results;
use super::sends::{Finished, Sends};
use crate::client::pool::{self, Job, Opening, Pool};
use crate::client::Message;
use crate::tcl::{Interp, Obj, TclError};

/// How session handles are spelled: `smtp::session1`, `smtp::session2`, …
const HANDLE_PREFIX: &str = "smtp::session";

/// The open sessions of one interpreter. Dropping it (the interpreter's end) closes
/// them: their queued sends are cancelled and each connection says QUIT.
#[derive(Default)]
pub struct Sessions {
    open: RefCell<BTreeMap<u64, Session>>,
    next_id: RefCell<u64>,
}

struct Session {
    pool: Pool,
    /// Its most connections: as many workers.
    connections: usize,
    debug: bool,
    asked: Asked,
    /// The registry's entries of the sends queued on it, to wait for or cancel at close.
    sends: Vec<u64>,
}

impl Sessions {
    /// `smtp::open ?option value ...?`: connects at once and returns the handle.
    pub fn open(&self, interp: &Interp<'_>, sends: &Sends, words: &[Obj], hostname: &str) -> Result<Obj, TclError> {
        options::check_pairs(interp, words)?;
        let mut connection = ConnectionWords::default();
        let mut pool_options = pool::Options { max_messages: 100, connections: 1, rate: None };
        for pair in words.chunks(2) {
            let [name, value] = pair else { continue };
            let name = name.text();
            match name.as_str() {
                "-maxmessages" => pool_options.max_messages = count(value, "-maxmessages", 0)?,
                "-connections" => pool_options.connections = count(value, "-connections", 1)?,
                "-ratelimit" => pool_options.rate = rate(value)?,
                "-server" if connection.take_as(interp, "-server", "-servers", value)? => {}
                "-port" if connection.take_as(interp, "-port", "-ports", value)? => {}
                _ if connection.take(interp, &name, value)? => {}
                _ => return Err(Error::UnknownOption(name).into()),
            }
        }
        connection.refuse(|name| {
            let message = format!("{name} is an option of each message, not of smtp::open");
            options::PER_MESSAGE.contains(&name).then(|| Error::Conflict { option: name.to_string(), message })
        })?;
        let connection = connection.finish(interp)?;
        let setup = super::setup(&connection, hostname)?;
        let asked = connection.asked();
        let (id, cancel, hooks) = sends.register(connection.debug, asked.clone(), None);
        let opening = Opening { hooks: Box::new(hooks.clone()), cancel, opened: hooks.reporter(|()| Finished::Open) };
        let base = || Box::new(sends.tracer(connection.debug)) as Box<dyn crate::client::Hooks + Send>;
        let spawn = |body: Box<dyn FnOnce() + Send>| sends.spawn("smtp-session", body);
        let pool = Pool::open(setup, pool_options, &spawn, &base, opening)
            .map_err(|e| Error::Internal { what: "THREAD", why: format!("cannot start a thread: {e}") })?;
        sends.wait(interp, id)?;
        let handle = {
            let mut next = self.next_id.borrow_mut();
            *next += 1;
            *next
        };
        let connections = pool_options.connections;
        let session = Session { pool, connections, debug: connection.debug, asked, sends: Vec::new() };
        self.open.borrow_mut().insert(handle, session);
        Ok(interp.new_string(&format!("{HANDLE_PREFIX}{handle}")))
    }

    /// Queues `message` on session `handle`: the send's handle with a `callback`, else
    /// (after waiting) the refused recipients. `progress` is the send's `-progress`.
    pub fn send(
        &self,
        interp: &Interp<'_>,
        sends: &Sends,
        handle: &str,
        message: Message,
        (callback, progress): (Option<Obj>, Option<Obj>),
    ) -> Result<Obj, TclError> {
        let asynchronous = callback.is_some();
        let id = {
            let mut open = self.open.borrow_mut();
            let session = open.get_mut(&lookup(handle)?).ok_or_else(|| unknown(handle))?;
            // Every worker waiting for a command that runs below this call: a synchronous
            // send would wait for a worker that never comes free.
            let asking: Vec<(u64, &str)> =
                session.sends.iter().filter_map(|id| sends.asking(*id).map(|command| (*id, command))).collect();
            match asking.first() {
                Some(&(first, command)) if !asynchronous && asking.len() >= session.connections => {
                    return Err(deadlock("a synchronous send", handle, first, command));
                }
                _ => {}
            }
            let asked = Asked { progress, ..session.asked.clone() };
            let (id, cancel, hooks) = sends.register(session.debug, asked, callback);
            session.sends.retain(|id| sends.is_live(*id));
            session.sends.push(id);
            let report = hooks.clone().reporter(Finished::Send);
            session.pool.submit(Job { message, cancel, hooks: Box::new(hooks), report });
            id
        };
        if asynchronous {
            return Ok(interp.new_string(&Sends::handle_name(id)));
        }
        let delivery = sends.wait_send(interp, id)?;
        Ok(results::refusals(interp, &delivery.refused))
    }

    /// `smtp::info handle`: a dict of the session's state.
    pub fn info(&self, interp: &Interp<'_>, handle: &str) -> Result<Obj, TclError> {
        let open = self.open.borrow();
        let session = open.get(&lookup(handle)?).ok_or_else(|| unknown(handle))?;
        let info = session.pool.info();
        let link = &info.link;
        let text = |s: &str| interp.new_string(s);
        let int = |n: u64| interp.new_int(i64::try_from(n).unwrap_or(i64::MAX));
        let tls = match &link.tls {
            Some((protocol, cipher, verified)) => interp.new_list(&[
                text("protocol"),
                text(protocol),
                text("cipher"),
                text(cipher),
                text("verified"),
                int(u64::from(*verified)),
            ]),
            None => text(""),
        };
        let capabilities: Vec<Obj> = link.capabilities.iter().map(|k| text(k)).collect();
        let pairs = [
            text("server"),
            text(link.server.as_ref().map_or("", |s| s.host.as_str())),
            text("port"),
            int(link.server.as_ref().map_or(0, |s| u64::from(s.port))),
            text("tls"),
            tls,
            text("auth"),
            text(link.auth.as_deref().unwrap_or("")),
            text("capabilities"),
            interp.new_list(&capabilities),
            text("size"),
            int(link.size_limit.unwrap_or(0)),
            text("sent"),
            int(info.sent),
            text("connections"),
            int(info.connections as u64),
            text("queued"),
            int(info.queued as u64),
        ];
        Ok(interp.new_list(&pairs))
    }

    /// `smtp::close handle ?-cancel bool?`: forgets the handle, waits for the queued
    /// sends (or cancels them), then closes every connection with QUIT.
    pub fn close(&self, interp: &Interp<'_>, sends: &Sends, handle: &str, cancel: bool) -> Result<(), TclError> {
        let id = lookup(handle)?;
        if let Some(session) = self.open.borrow().get(&id) {
            if let Some((send, command)) = session.sends.iter().find_map(|id| sends.asking(*id).map(|c| (*id, c))) {
                return Err(deadlock("smtp::close", handle, send, command));
            }
        }
        let session = self.open.borrow_mut().remove(&id).ok_or_else(|| unknown(handle))?;
        if cancel {
            // The queue first, so that no worker takes a message that is to be cancelled.
            session.pool.discard_queued();
            for &id in &session.sends {
                sends.cancel(interp, id);
            }
        }
        for &id in session.sends.iter().filter(|id| sends.is_live(**id)) {
            // Its result goes to its callback or its own waiter; this only waits.
            let _ = sends.wait(interp, id);
        }
        let (id, _, hooks) = sends.register(session.debug, Asked::default(), None);
        session.pool.close(hooks.reporter(|()| Finished::Close));
        sends.wait(interp, id)?;
        Ok(())
    }

    /// Closes every session without waiting (the interpreter is going away).
    pub fn drop_all(&self) {
        let open = std::mem::take(&mut *self.open.borrow_mut());
        drop(open);
    }
}

/// The id in a handle spelled as [`Sessions::open`] spells them.
fn lookup(handle: &str) -> Result<u64, TclError> {
    handle
        .strip_prefix(HANDLE_PREFIX)
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|id| format!("{HANDLE_PREFIX}{id}") == handle)
        .ok_or_else(|| unknown(handle))
}

/// The error of `call` on `session`, which would wait forever for `send`, itself waiting
/// for its `command`.
fn deadlock(call: &'static str, session: &str, send: u64, command: &'static str) -> TclError {
    Error::SessionDeadlock { call, session: session.to_string(), send: Sends::handle_name(send), command }.into()
}

fn unknown(handle: &str) -> TclError {
    Error::Session(handle.to_string()).into()
}

/// A whole number of at least `min`.
fn count(value: &Obj, option: &str, min: usize) -> Result<usize, TclError> {
    let text = value.text();
    match text.trim().parse::<usize>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(value_error(format!("{option} must be a whole number of at least {min}, not \"{text}\""), option)),
    }
}

/// `-ratelimit`: messages per second, 0 for no limit.
fn rate(value: &Obj) -> Result<Option<f64>, TclError> {
    let text = value.text();
    match text.trim().parse::<f64>() {
        Ok(0.0) => Ok(None),
        Ok(r) if r.is_finite() && r > 0.0 => Ok(Some(r)),
        _ => Err(value_error(
            format!("-ratelimit must be a number of messages per second (0: no limit), not \"{text}\""),
            "-ratelimit",
        )),
    }
}
