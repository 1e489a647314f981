//! The sends of one interpreter, each running on a worker thread (its own, or one of a
//! session's) while the interpreter's thread services Tcl events (timers, file events,
//! Tk), as tcllib's `vwait` does; and its sessions ([`Sessions`]), whose opening and
//! closing are entries too. Everything that touches Tcl (callbacks, `-tlspolicy`,
//! `-oauthcommand`, `-progress`) happens on the interpreter's thread: workers post
//! messages to the registry and wake that thread, whose event handler ([`poll_thread`])
//! answers them.
//!
//! A synchronous send is an entry nobody but its own [`Sends::wait`] sees; an asynchronous
//! one (`-command`) has a handle for `::smtp::cancel` and `::smtp::wait`, and its callback
//! runs from the event loop. Each entry finishes once: by its worker's result or by a
//! cancel, whichever comes first. Deleting the last of the package's commands (with
//! the namespace or the interpreter, or one by one) cancels whatever is still running.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use super::asked::{self, Asked};
use super::error::Error;
use super::results;
use super::sessions::Sessions;
use crate::client::{self, pool, Cancel, Delivery, Hooks, Message, Setup};
use crate::secret::Secret;
use crate::smtp::PolicyAnswer;
use crate::tcl::{Interp, InterpHandle, Obj, TclError, ThreadRelease, Waker};

/// How handles are spelled: `smtp::send1`, `smtp::send2`, …
const HANDLE_PREFIX: &str = "smtp::send";

thread_local! {
    /// The registries of this thread's interpreters, for the wake-up event handler.
    static REGISTRIES: RefCell<Vec<Weak<Sends>>> = const { RefCell::new(Vec::new()) };
}

/// What a worker tells the interpreter's thread, tagged with its entry's id.
enum FromWorker {
    /// Ask `-tlspolicy` and send its answer back.
    Policy {
        code: u16,
        diagnostic: String,
        answer: Sender<PolicyAnswer>,
    },
    /// Ask `-oauthcommand` for a token and send it back.
    Token {
        username: String,
        answer: Sender<Result<Secret, String>>,
    },
    /// Tell `-progress` how far the message has gone.
    Progress {
        written: u64,
        total: u64,
    },
    Done(Result<Finished, client::Error>),
}

/// What an entry's worker did.
#[derive(Debug, Clone)]
pub enum Finished {
    /// A send: the server's answer.
    Send(Delivery),
    /// A session's first connection is open.
    Open,
    /// A session's connections are closed.
    Close,
}

/// One send in one interpreter.
struct Entry {
    cancel: Cancel,
    /// `-command`, until it has been called.
    callback: Option<Obj>,
    asked: Asked,
    result: Option<Result<Finished, TclError>>,
    /// `wait` calls in progress for this entry: it stays until they have the result.
    waiters: usize,
    /// Its `-tlspolicy` or `-oauthcommand` command (named) is running: the worker waits
    /// for the answer, and the answer for everything the command calls (all of it nested
    /// on this thread's stack), so a wait for this entry from there could never end.
    asking: Option<&'static str>,
}

impl Entry {
    /// Whether nothing needs the entry any more.
    fn is_spent(&self) -> bool {
        self.result.is_some() && self.callback.is_none() && self.waiters == 0
    }
}

/// The registry of one interpreter's sends.
pub struct Sends {
    interp: InterpHandle,
    entries: RefCell<BTreeMap<u64, Entry>>,
    next_id: RefCell<u64>,
    to_registry: Sender<(u64, FromWorker)>,
    from_workers: Receiver<(u64, FromWorker)>,
    waker: Waker,
    /// The package's commands that use this registry and are not deleted yet.
    commands: Cell<usize>,
    /// The interpreter's sessions, whose sends are entries here.
    pub sessions: Sessions,
}

impl Sends {
    /// A registry for `interp`, reachable from this thread's wake-up events.
    pub fn new(interp: &Interp<'_>) -> Rc<Sends> {
        let (to_registry, from_workers) = mpsc::channel();
        let sends = Rc::new(Sends {
            interp: interp.handle(),
            entries: RefCell::new(BTreeMap::new()),
            next_id: RefCell::new(0),
            to_registry,
            from_workers,
            waker: interp.waker(poll_thread),
            commands: Cell::new(0),
            sessions: Sessions::default(),
        });
        REGISTRIES.with(|r| {
            let mut registries = r.borrow_mut();
            registries.retain(|w| w.strong_count() > 0);
            registries.push(Rc::downgrade(&sends));
        });
        sends
    }

    /// Counts one more command using the registry; the returned closure is its deletion
    /// hook. When the last command is deleted nothing can wait for, cancel or report a
    /// send any more, so every running send is cancelled at once, and no callback or
    /// policy is called afterwards. A call still running then (a wait, a synchronous
    /// send, servicing the event that deleted the commands) gets `SMTP CANCELLED`.
    pub fn command_added(self: &Rc<Self>) -> impl FnOnce() + 'static {
        self.commands.set(self.commands.get() + 1);
        let sends = Rc::clone(self);
        move || {
            sends.commands.set(sends.commands.get().saturating_sub(1));
            if sends.commands.get() == 0 {
                sends.cancel_all();
            }
        }
    }

    fn cancel_all(&self) {
        let mut entries = self.entries.borrow_mut();
        for entry in entries.values_mut() {
            if entry.result.is_none() {
                entry.cancel.cancel();
                entry.result = Some(Err(Error::Cancelled { end_of_data_sent: entry.cancel.end_of_data_sent() }.into()));
            }
            entry.callback = None;
            entry.asked = Asked::default();
        }
        entries.retain(|_, e| !e.is_spent());
        drop(entries);
        self.sessions.drop_all();
    }

    /// A new entry, with what its worker needs: the cancel, and the hooks that trace,
    /// ask the entry's `-tlspolicy` and `-oauthcommand` and report the result.
    pub fn register(&self, debug: bool, asked: Asked, callback: Option<Obj>) -> (u64, Cancel, WorkerHooks) {
        let id = {
            let mut next = self.next_id.borrow_mut();
            *next += 1;
            *next
        };
        let cancel = Cancel::default();
        let hooks = WorkerHooks {
            id,
            debug,
            has_policy: asked.tlspolicy.is_some(),
            has_progress: asked.progress.is_some(),
            to_registry: self.to_registry.clone(),
            waker: self.waker,
        };
        let entry = Entry { cancel: cancel.clone(), callback, asked, result: None, waiters: 0, asking: None };
        self.entries.borrow_mut().insert(id, entry);
        (id, cancel, hooks)
    }

    /// Starts sending `message` over a connection of its own, on a worker thread, and
    /// returns its entry's id.
    pub fn start(
        &self,
        setup: Setup,
        message: Message,
        debug: bool,
        asked: Asked,
        callback: Option<Obj>,
    ) -> Result<u64, TclError> {
        let (id, cancel, mut hooks) = self.register(debug, asked, callback);
        let reporter = hooks.clone();
        let started = self.spawn(
            "smtp-send",
            Box::new(move || {
                // A panic here must still end the send, or its waiter would wait forever.
                let result = catch_unwind(AssertUnwindSafe(|| client::send(&setup, &message, &mut hooks, &cancel)))
                    .unwrap_or_else(|panic| Err(client::Error::Panic(crate::tcl::panic_message(panic.as_ref()))));
                reporter.report(result.map(Finished::Send));
            }),
        );
        if let Err(e) = started {
            self.entries.borrow_mut().remove(&id);
            return Err(
                Error::Internal { what: "THREAD", why: format!("cannot start a thread for the send: {e}") }.into()
            );
        }
        Ok(id)
    }

    /// Hooks for work that belongs to no entry (a session's QUIT): they trace, and answer
    /// a policy question with the defaults.
    pub fn tracer(&self, debug: bool) -> WorkerHooks {
        WorkerHooks {
            id: 0,
            debug,
            has_policy: false,
            has_progress: false,
            to_registry: self.to_registry.clone(),
            waker: self.waker,
        }
    }

    /// The command (`-tlspolicy`, `-oauthcommand`) of entry `id` that is running, its
    /// worker waiting for the answer.
    pub fn asking(&self, id: u64) -> Option<&'static str> {
        self.with_entry(id, |e| e.asking.filter(|_| e.result.is_none())).flatten()
    }

    /// Whether entry `id` is still kept (running, or its result not yet taken).
    pub fn is_live(&self, id: u64) -> bool {
        self.entries.borrow().contains_key(&id)
    }

    /// Runs `body` on a new thread that may wake this interpreter's thread; a panic in it
    /// is stopped there (whoever waits is told by the reports it drops).
    pub fn spawn(&self, name: &str, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        let waker = self.waker;
        thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                // Dropped last, even after a panic: no Tcl call follows it.
                let _release = ThreadRelease::new(&waker);
                let _ = catch_unwind(AssertUnwindSafe(body));
            })
            .map(drop)
    }

    /// The handle of entry `id`, as scripts see it.
    pub fn handle_name(id: u64) -> String {
        format!("{HANDLE_PREFIX}{id}")
    }

    /// The id of a live entry named by `handle`.
    pub fn lookup(&self, handle: &str) -> Result<u64, TclError> {
        // Only the spelling handle_name gives: "smtp::send01" or "smtp::send+1" name nothing.
        let id = handle
            .strip_prefix(HANDLE_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|id| Sends::handle_name(*id) == handle);
        match id {
            Some(id) if self.entries.borrow().contains_key(&id) => Ok(id),
            // Ids are never reused, so a smaller one names a send that has ended and was
            // forgotten: for an asynchronous one, once its callback was called (this call
            // may well come from inside that callback, which has the result already).
            Some(id) if id <= *self.next_id.borrow() => {
                Err(Error::Handle { handle: handle.into(), ended: true }.into())
            }
            _ => Err(Error::Handle { handle: handle.into(), ended: false }.into()),
        }
    }

    /// Services Tcl events until entry `id` has a result, and returns it. Its callback,
    /// if any, still runs (from the event loop).
    ///
    /// Fails at once when the entry's `-tlspolicy` command is running: that command is
    /// below this wait on the stack (whether it called it directly or through another
    /// send's policy or callback), so it cannot answer before the wait ends, and the
    /// send cannot end before it answers.
    pub fn wait(&self, interp: &Interp<'_>, id: u64) -> Result<Finished, TclError> {
        if let Some(command) = self.asking(id) {
            return Err(Error::Deadlock { handle: Sends::handle_name(id), command }.into());
        }
        self.with_entry(id, |e| e.waiters += 1);
        let result = interp.preserved(|| loop {
            self.poll(interp);
            match self.with_entry(id, |e| e.result.clone()) {
                Some(Some(result)) => break result,
                // Nothing yet: run one Tcl event (a worker's wake-up is one of them).
                Some(None) => interp.do_one_event(),
                // Cannot happen: an entry with a waiter is kept.
                None => {
                    break Err(Error::Internal {
                        what: "VANISHED",
                        why: "internal error in smtp: a send vanished".into(),
                    }
                    .into())
                }
            }
        });
        self.with_entry(id, |e| e.waiters -= 1);
        self.forget_if_spent(id);
        result
    }

    /// [`Sends::wait`] for a send's delivery.
    pub fn wait_send(&self, interp: &Interp<'_>, id: u64) -> Result<Delivery, TclError> {
        match self.wait(interp, id)? {
            Finished::Send(delivery) => Ok(delivery),
            other => {
                Err(Error::Internal { what: "ENTRY", why: format!("internal error in smtp: not a send: {other:?}") }
                    .into())
            }
        }
    }

    /// Stops entry `id` if it is still running: it ends at once with the error
    /// `SMTP CANCELLED`, and its callback is called from the event loop.
    pub fn cancel(&self, interp: &Interp<'_>, id: u64) {
        // A worker that has already finished has its result queued: that result stands.
        self.collect(interp);
        let cancelled = self.with_entry(id, |e| {
            if e.result.is_some() {
                return false;
            }
            e.cancel.cancel();
            e.result = Some(Err(Error::Cancelled { end_of_data_sent: e.cancel.end_of_data_sent() }.into()));
            true
        });
        if cancelled == Some(true) {
            self.waker.wake();
        }
    }

    /// Answers the workers' messages and calls the callbacks of finished entries.
    fn poll(&self, interp: &Interp<'_>) {
        self.collect(interp);
        self.run_callbacks(interp);
    }

    /// Answers the workers' policy questions and records their results.
    fn collect(&self, interp: &Interp<'_>) {
        while let Ok((id, message)) = self.from_workers.try_recv() {
            match message {
                FromWorker::Policy { code, diagnostic, answer } => {
                    let decision = match self.start_asking(id, "-tlspolicy", |a| &a.tlspolicy) {
                        Some(prefix) => asked::policy(interp, &prefix, code, &diagnostic),
                        None => PolicyAnswer::Secure { why: "the send was cancelled".into() },
                    };
                    self.with_entry(id, |e| e.asking = None);
                    let _ = answer.send(decision);
                }
                FromWorker::Progress { written, total } => {
                    let prefix = self.with_entry(id, |e| e.asked.progress.clone()).flatten();
                    let Some(Ok(mut words)) = prefix.map(|p| interp.list_elements(&p)) else { continue };
                    words.push(interp.new_string(&written.to_string()));
                    words.push(interp.new_string(&total.to_string()));
                    interp.eval_callback(&words);
                }
                FromWorker::Token { username, answer } => {
                    let token = match self.start_asking(id, "-oauthcommand", |a| &a.oauthcommand) {
                        Some(prefix) => asked::token(interp, &prefix, &username),
                        None => Err("the send was cancelled".into()),
                    };
                    self.with_entry(id, |e| e.asking = None);
                    let _ = answer.send(token);
                }
                FromWorker::Done(result) => {
                    self.with_entry(id, |e| {
                        // A cancel may have decided the result already.
                        if e.result.is_none() {
                            e.result = Some(result.map_err(|e| TclError::from(Error::from(e))));
                        }
                    });
                }
            }
        }
    }

    /// Calls each finished entry's callback once: `cmd handle dict`, at global level.
    fn run_callbacks(&self, interp: &Interp<'_>) {
        let ready: Vec<u64> = self
            .entries
            .borrow()
            .iter()
            .filter(|(_, e)| e.result.is_some() && e.callback.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ready {
            // Taken out first: the callback may re-enter (cancel, wait, a nested send).
            let Some((Some(callback), Some(result))) = self.with_entry(id, |e| (e.callback.take(), e.result.clone()))
            else {
                continue;
            };
            self.forget_if_spent(id);
            let Ok(mut words) = interp.list_elements(&callback) else { continue };
            let result = match result {
                Ok(Finished::Send(delivery)) => Ok(delivery),
                // Only sends have callbacks.
                Ok(Finished::Open | Finished::Close) => continue,
                Err(e) => Err(e),
            };
            words.push(interp.new_string(&Sends::handle_name(id)));
            words.push(results::callback_dict(interp, &result));
            interp.eval_callback(&words);
        }
    }

    /// Marks entry `id` as asking `command` and returns its prefix (`which` of its
    /// commands); `None` when the entry has ended or has no such command.
    fn start_asking(&self, id: u64, command: &'static str, which: impl Fn(&Asked) -> &Option<Obj>) -> Option<Obj> {
        self.with_entry(id, |e| {
            e.asking = Some(command);
            which(&e.asked).clone()
        })
        .flatten()
    }

    fn with_entry<T>(&self, id: u64, f: impl FnOnce(&mut Entry) -> T) -> Option<T> {
        self.entries.borrow_mut().get_mut(&id).map(f)
    }

    fn forget_if_spent(&self, id: u64) {
        let mut entries = self.entries.borrow_mut();
        if entries.get(&id).is_some_and(Entry::is_spent) {
            entries.remove(&id);
        }
    }
}

impl Drop for Sends {
    /// Sends still running when the registry goes stop: normally none, as deleting the
    /// last command cancelled them, but a call running then may have started one.
    fn drop(&mut self) {
        for entry in self.entries.get_mut().values().filter(|e| e.result.is_none()) {
            entry.cancel.cancel();
        }
    }
}

/// The wake-up event handler: serves every registry of this thread that has something
/// to do. Registries whose interpreter is deleted are skipped (and forgotten).
fn poll_thread() {
    let registries: Vec<Rc<Sends>> = REGISTRIES.with(|r| r.borrow().iter().filter_map(Weak::upgrade).collect());
    for sends in registries {
        sends.interp.with(|interp| sends.poll(interp));
    }
}

/// The worker's side of [`Hooks`]: traces itself, forwards policy questions, and
/// reports the result.
#[derive(Clone)]
pub struct WorkerHooks {
    id: u64,
    debug: bool,
    has_policy: bool,
    has_progress: bool,
    to_registry: Sender<(u64, FromWorker)>,
    waker: Waker,
}

impl WorkerHooks {
    /// Tells the entry how its work ended. The registry is gone if the interpreter was
    /// deleted: nobody to tell.
    pub fn report(&self, result: Result<Finished, client::Error>) {
        if self.to_registry.send((self.id, FromWorker::Done(result))).is_ok() {
            self.waker.wake();
        }
    }

    /// The report of a pool's job, open or close.
    pub fn reporter<T: 'static>(self, finished: impl FnOnce(T) -> Finished + Send + 'static) -> pool::Report<T> {
        pool::Report::new(move |result: Result<T, client::Error>| self.report(result.map(finished)))
    }
}

impl Hooks for WorkerHooks {
    fn trace(&mut self, line: &str) {
        if self.debug {
            // Not eprintln!, which panics when stderr is closed (a daemon); a lost trace
            // line must not fail the send.
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }

    fn progress(&mut self, written: u64, total: u64) {
        if self.has_progress && self.to_registry.send((self.id, FromWorker::Progress { written, total })).is_ok() {
            self.waker.wake();
        }
    }

    fn oauth_token(&mut self, username: &str) -> Result<Secret, String> {
        let (answer, answered) = mpsc::channel();
        let question = FromWorker::Token { username: username.to_string(), answer };
        let gone = || "the interpreter did not answer".to_string();
        if self.to_registry.send((self.id, question)).is_err() {
            return Err(gone());
        }
        self.waker.wake();
        answered.recv().unwrap_or_else(|_| Err(gone()))
    }

    fn tls_policy(&mut self, code: u16, diagnostic: &str) -> Option<PolicyAnswer> {
        if !self.has_policy {
            return None;
        }
        let (answer, answered) = mpsc::channel();
        let question = FromWorker::Policy { code, diagnostic: diagnostic.to_string(), answer };
        let gone = PolicyAnswer::Secure { why: "the interpreter did not answer".into() };
        if self.to_registry.send((self.id, question)).is_err() {
            return Some(gone);
        }
        self.waker.wake();
        Some(answered.recv().unwrap_or(gone))
    }
}
