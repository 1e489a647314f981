//! A session's connections: worker threads that each keep a connection open and carry
//! queued messages over it in order. A worker reconnects when the server dropped its idle
//! connection, replaces the connection after `max_messages`, and pipelines the next
//! queued message after the end of the one before when the server allows. The pool sends
//! at most `rate` messages a second across its workers.
//!
//! A message whose connection ended before its final dot was written goes once more over
//! a new connection, if its own connection had carried a message before (a server that
//! timed out an idle connection); a message whose final dot was written is never sent
//! again, whatever happens.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::link::{Feed, Link, LinkInfo, Stop, Transfer};
use super::{Cancel, Delivery, Error, Hooks, Message, Setup};
use crate::smtp::{End, Failure, FailureKind, Outcome, PolicyAnswer, Session, Step};

/// How a pool behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Messages per connection before it is replaced; 0: no limit.
    pub max_messages: usize,
    /// Worker threads, each with at most one connection.
    pub connections: usize,
    /// At most this many messages a second across the pool.
    pub rate: Option<f64>,
}

/// Whom to tell how something ended, exactly once: dropped untold (a pool closed with
/// a job queued, a worker that panicked), it tells [`Error::Cancelled`] or
/// [`Error::Panic`].
pub struct Report<T>(Option<Tell<T>>);

type Tell<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

impl<T> Report<T> {
    pub fn new(f: impl FnOnce(Result<T, Error>) + Send + 'static) -> Report<T> {
        Report(Some(Box::new(f)))
    }

    pub fn tell(mut self, result: Result<T, Error>) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl<T> Drop for Report<T> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(if std::thread::panicking() {
                Error::Panic("the session's worker panicked".into())
            } else {
                Error::Cancelled
            }));
        }
    }
}

/// A message to send, and whom to tell how it went.
pub struct Job {
    pub message: Message,
    pub cancel: Cancel,
    pub hooks: Box<dyn Hooks + Send>,
    pub report: Report<Delivery>,
}

impl Job {
    fn report(self, result: Result<Delivery, Error>) {
        self.report.tell(result);
    }
}

/// The first connection of a pool: the hooks and cancel of the call that opens it, and
/// whom to tell whether it could be opened.
pub struct Opening {
    pub hooks: Box<dyn Hooks + Send>,
    pub cancel: Cancel,
    pub opened: Report<()>,
}

/// The pool's handle. Dropping it closes the pool without waiting (queued jobs are
/// cancelled; each connection says QUIT).
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    setup: Setup,
    options: Options,
    state: Mutex<State>,
    wake: Condvar,
    /// The next time a message may start under the rate limit.
    next_slot: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    closing: bool,
    /// Workers waiting for a job with a connection open.
    idle_connected: usize,
    /// Each worker's open connection.
    links: Vec<Option<LinkInfo>>,
    /// The server of the last connection opened: the next one tries it first.
    server: usize,
    /// Messages the servers accepted.
    sent: u64,
    /// Workers still running, and what to call when the last has ended.
    running: usize,
    on_closed: Option<Report<()>>,
}

/// What `smtp::info` shows of a pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    /// The first open connection's, if any.
    pub link: LinkInfo,
    pub connections: usize,
    pub sent: u64,
    pub queued: usize,
}

impl Pool {
    /// Starts the pool's workers; the first connects at once, with `opening`'s hooks and
    /// cancel, and reports through it whether it could (after a failure the pool has
    /// ended: drop it). `base` makes each worker's hooks for what it does between
    /// messages (the QUIT at the end). `spawn` runs a worker thread: the caller sets the
    /// thread up for its hooks and stops a panic from ending the process.
    pub fn open(
        setup: Setup,
        options: Options,
        spawn: &dyn Fn(Box<dyn FnOnce() + Send>) -> std::io::Result<()>,
        base: &dyn Fn() -> Box<dyn Hooks + Send>,
        opening: Opening,
    ) -> std::io::Result<Pool> {
        let connections = options.connections.max(1);
        let state = State { links: vec![None; connections], running: connections, ..State::default() };
        let shared = Arc::new(Shared {
            setup,
            options,
            state: Mutex::new(state),
            wake: Condvar::new(),
            next_slot: Mutex::new(None),
        });
        let mut opening = Some(opening);
        for id in 0..connections {
            let mut worker = Worker {
                shared: Arc::clone(&shared),
                id,
                base: Some(base()),
                link: None,
                used: 0,
                retry: VecDeque::new(),
            };
            let opening = opening.take();
            // A worker that cannot start is dropped (and counted out); later ones never were.
            if let Err(e) = spawn(Box::new(move || worker.run(opening))) {
                let mut state = shared.lock();
                state.running = state.running.saturating_sub(connections - id - 1);
                return Err(e);
            }
        }
        Ok(Pool { shared })
    }

    /// Queues a message; a worker sends it when its turn comes.
    pub fn submit(&self, job: Job) {
        let mut state = self.shared.lock();
        if state.closing {
            drop(state);
            return job.report(Err(Error::Cancelled));
        }
        state.queue.push_back(job);
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Drops the queued messages (each reports [`Error::Cancelled`]); those already on
    /// a connection go on.
    pub fn discard_queued(&self) {
        let queued: Vec<Job> = self.shared.lock().queue.drain(..).collect();
        drop(queued);
    }

    pub fn info(&self) -> Info {
        let state = self.shared.lock();
        let mut links = state.links.iter().flatten();
        Info {
            link: links.next().cloned().unwrap_or_default(),
            connections: state.links.iter().flatten().count(),
            sent: state.sent,
            queued: state.queue.len(),
        }
    }

    /// Ends the pool once the queued messages have gone: each connection says QUIT,
    /// and `closed` is called when the last worker has ended.
    pub fn close(&self, closed: Report<()>) {
        let mut state = self.shared.lock();
        state.closing = true;
        if state.running == 0 {
            drop(state);
            return closed.tell(Ok(()));
        }
        state.on_closed = Some(closed);
        drop(state);
        self.shared.wake.notify_all();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.discard_queued();
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data updated in single steps; a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next job for a worker (`connected`: with a connection open), or `None` once
    /// the pool closes and the queue is empty. A worker without a connection leaves
    /// a job to idle connected ones, so that connections open only when needed.
    fn take(&self, connected: bool) -> Option<Job> {
        let mut state = self.lock();
        loop {
            let for_others = if connected { 0 } else { state.idle_connected };
            if state.queue.len() > for_others {
                return state.queue.pop_front();
            }
            if state.closing && state.queue.is_empty() {
                return None;
            }
            state.idle_connected += usize::from(connected);
            state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.idle_connected -= usize::from(connected);
        }
    }

    /// A queued job, if one is waiting and the rate limit lets it start now.
    fn try_take(&self) -> Option<Job> {
        let mut state = self.lock();
        if state.queue.is_empty() || !self.slot(false) {
            return None;
        }
        state.queue.pop_front()
    }

    /// Takes a start under the rate limit: waits for it (`wait`), or only takes one
    /// that is free now.
    fn slot(&self, wait: bool) -> bool {
        let Some(rate) = self.options.rate.filter(|r| *r > 0.0) else { return true };
        let interval = Duration::from_secs_f64(1.0 / rate);
        let at = {
            let mut next = self.next_slot.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            if at > now && !wait {
                return false;
            }
            *next = Some(at + interval);
            at
        };
        if let Some(left) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
        true
    }
}

/// A job on its way, and whether it may go once more over a new connection.
struct Pending {
    job: Job,
    /// Its connection had carried a message before it: it may have been stale.
    reused: bool,
    retried: bool,
}

/// One worker thread and its connection.
struct Worker {
    shared: Arc<Shared>,
    id: usize,
    /// The hooks between messages; lent to each run of the connection.
    base: Option<Box<dyn Hooks + Send>>,
    link: Option<Link>,
    /// Messages submitted over the current connection.
    used: usize,
    /// Jobs to send again over a new connection.
    retry: VecDeque<Pending>,
}

impl Worker {
    /// Serves jobs until the pool closes; the first worker opens its connection first.
    fn run(&mut self, opening: Option<Opening>) {
        if let Some(opening) = opening {
            if !self.open(opening) {
                return;
            }
        }
        while let Some(pending) = self.next_job() {
            if pending.job.cancel.is_requested() {
                pending.job.report(Err(Error::Cancelled));
                continue;
            }
            if !pending.retried {
                self.shared.slot(true);
            }
            self.deliver(pending);
        }
        if let Some(mut link) = self.link.take() {
            link.quit();
            let shared = Arc::clone(&self.shared);
            let mut feed = Transactions::new(&shared, self.base.take());
            link.resume(&mut feed);
        }
    }

    /// Opens the pool's first connection; whether it could.
    fn open(&mut self, opening: Opening) -> bool {
        let shared = Arc::clone(&self.shared);
        let mut feed = Transactions::new(&shared, Some(opening.hooks));
        feed.own_cancel = Some(opening.cancel);
        let result = match Link::establish(&shared.setup, 0, &mut feed, &|_| Ok(())) {
            Ok((link, Stop::Idle)) => {
                self.connected(link);
                Ok(())
            }
            Ok((link, stop)) => {
                Err(Error::Transaction { server: shared.setup.server(link.index), failure: stop_failure(&stop) })
            }
            Err(e) => Err(e),
        };
        let opened = result.is_ok();
        opening.opened.tell(result);
        opened
    }

    fn next_job(&mut self) -> Option<Pending> {
        if let Some(pending) = self.retry.pop_front() {
            return Some(pending);
        }
        let job = self.shared.take(self.link.is_some())?;
        Some(Pending { job, reused: false, retried: false })
    }

    /// Sends `pending` and whatever gets pipelined after it.
    fn deliver(&mut self, mut pending: Pending) {
        if self.link.as_mut().is_some_and(|link| link.went_away(pending.job.hooks.as_mut())) {
            pending.job.hooks.trace("    ... the server ended the idle connection: reconnecting ...");
            self.forget_link();
        }
        let shared = Arc::clone(&self.shared);
        let mut feed = Transactions::new(&shared, self.base.take());
        feed.in_flight.push_back(pending);
        let stop = self.send_over_link(&mut feed);
        self.base = feed.base.take();
        if let Some(stop) = stop {
            self.lost(std::mem::take(&mut feed.in_flight), &stop);
        }
    }

    /// Connects if need be, then runs the feed's job (and those pipelined after it) over
    /// the connection; how the connection ended, if it did.
    fn send_over_link(&mut self, feed: &mut Transactions<'_>) -> Option<Stop> {
        if self.link.is_none() {
            let first = self.shared.lock().server;
            match Link::establish(&self.shared.setup, first, feed, &|_| Ok(())) {
                Ok((link, Stop::Idle)) => self.connected(link),
                Ok((_, stop)) => return Some(stop),
                Err(e) => {
                    for pending in feed.in_flight.drain(..) {
                        pending.job.report(Err(e.clone()));
                    }
                    return None;
                }
            }
        }
        let budget = self.budget();
        let link = self.link.as_mut()?;
        let pending = feed.in_flight.front_mut()?;
        pending.reused = self.used > 0;
        if let Err(e) = link.submit(pending.job.message.envelope.clone()) {
            if let Some(pending) = feed.in_flight.pop_front() {
                pending.job.report(Err(e));
            }
            return None;
        }
        self.used += 1;
        feed.budget = budget.map(|b| b.saturating_sub(1));
        if feed.budget == Some(0) {
            link.quit();
        }
        let stop = link.resume(feed);
        self.used += feed.pipelined;
        match stop {
            Stop::Idle => None,
            // Replaced after -maxmessages: a new connection takes the next message.
            Stop::Closed(End::Quit) if feed.in_flight.is_empty() => {
                self.forget_link();
                None
            }
            stop => Some(stop),
        }
    }

    /// How many more messages the connection may take.
    fn budget(&self) -> Option<usize> {
        let max = self.shared.options.max_messages;
        (max > 0).then(|| max.saturating_sub(self.used))
    }

    /// The connection has ended with `stop`: the jobs left unfinished go again over a new
    /// one when that is safe and they have not been retried, else fail.
    fn lost(&mut self, in_flight: VecDeque<Pending>, stop: &Stop) {
        let index = self.link.as_ref().map_or_else(|| self.shared.lock().server, |l| l.index);
        let server = self.shared.setup.server(index);
        self.forget_link();
        let cancelled = *stop == Stop::Cancelled;
        for (i, mut pending) in in_flight.into_iter().enumerate() {
            // The oldest was the one cancelled: the registry has its result.
            if cancelled && i == 0 {
                pending.job.report(Err(Error::Cancelled));
                continue;
            }
            // Nothing of these was written past MAIL and RCPT: a new connection may take
            // them, once, if theirs may have been stale (or a cancel ended it).
            let may_retry = matches!(stop, Stop::Closed(End::Lost(_)) | Stop::Cancelled);
            if may_retry && (pending.reused || cancelled) && !pending.retried {
                pending.retried = true;
                pending.job.hooks.trace("    ... the connection ended before the message was sent: reconnecting ...");
                self.retry.push_back(pending);
                continue;
            }
            pending.job.report(Err(Error::Transaction { server: server.clone(), failure: stop_failure(stop) }));
        }
    }

    fn connected(&mut self, link: Link) {
        let mut state = self.shared.lock();
        state.server = link.index;
        if let Some(slot) = state.links.get_mut(self.id) {
            *slot = Some(link.info());
        }
        drop(state);
        self.link = Some(link);
        self.used = 0;
    }

    fn forget_link(&mut self) {
        if let Some(link) = self.link.take() {
            link.drop_connection();
        }
        if let Some(slot) = self.shared.lock().links.get_mut(self.id) {
            *slot = None;
        }
        self.used = 0;
    }
}

/// A worker ends (normally once the pool closes): the last one tells the closer. One
/// that panicked closes the pool, whose queued jobs then fail rather than wait forever.
impl Drop for Worker {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(slot) = state.links.get_mut(self.id) {
            *slot = None;
        }
        let orphans: Vec<Job> = if std::thread::panicking() {
            state.closing = true;
            state.queue.drain(..).collect()
        } else {
            Vec::new()
        };
        state.running = state.running.saturating_sub(1);
        let closed = if state.running == 0 { state.on_closed.take() } else { None };
        drop(state);
        drop(orphans);
        if let Some(closed) = closed {
            closed.tell(Ok(()));
        }
    }
}

/// The jobs of one run of a connection, oldest first.
struct Transactions<'a> {
    shared: &'a Shared,
    in_flight: VecDeque<Pending>,
    /// The hooks and cancel when no job is in flight.
    base: Option<Box<dyn Hooks + Send>>,
    own_cancel: Option<Cancel>,
    /// How many more messages may be pipelined on this connection (`None`: no limit).
    budget: Option<usize>,
    pipelined: usize,
    silent: Silent,
}

impl<'a> Transactions<'a> {
    fn new(shared: &'a Shared, base: Option<Box<dyn Hooks + Send>>) -> Transactions<'a> {
        Transactions {
            shared,
            in_flight: VecDeque::new(),
            base,
            own_cancel: None,
            budget: None,
            pipelined: 0,
            silent: Silent,
        }
    }
}

impl Feed for Transactions<'_> {
    fn hooks(&mut self) -> &mut dyn Hooks {
        match (self.in_flight.front_mut(), self.base.as_mut()) {
            (Some(pending), _) => pending.job.hooks.as_mut(),
            (None, Some(base)) => base.as_mut(),
            (None, None) => &mut self.silent,
        }
    }

    fn cancel(&self) -> Option<&Cancel> {
        self.in_flight.front().map(|p| &p.job.cancel).or(self.own_cancel.as_ref())
    }

    fn transfer(&mut self) -> Option<Transfer<'_>> {
        let job = &mut self.in_flight.front_mut()?.job;
        Some(Transfer { message: &job.message.spool, hooks: job.hooks.as_mut(), cancel: &job.cancel })
    }

    fn finished(&mut self, outcome: Outcome) {
        let Some(pending) = self.in_flight.pop_front() else { return };
        let result = match outcome {
            Outcome::Delivered { refused } => {
                // Counted before the sender hears of it, so smtp::info never lags.
                self.shared.lock().sent += 1;
                Ok(Delivery { sent: true, refused })
            }
            Outcome::NotSent { refused } => Ok(Delivery { sent: false, refused }),
            Outcome::Failed(failure) | Outcome::Unusable(failure) => {
                let server = self.shared.setup.server(self.shared.lock().server);
                Err(Error::Transaction { server, failure })
            }
        };
        pending.job.report(result);
    }

    /// Pipelines the next queued message after this one's dot, when the connection may
    /// take one more and the rate limit lets it start now.
    fn before_dot(&mut self, session: &mut Session) {
        if self.budget.is_some_and(|b| b <= self.pipelined) {
            return;
        }
        let Some(job) = self.shared.try_take() else { return };
        if job.cancel.is_requested() {
            return job.report(Err(Error::Cancelled));
        }
        if let Err(e) = session.submit(job.message.envelope.clone()) {
            return job.report(Err(Error::Invalid(e.0)));
        }
        self.pipelined += 1;
        if self.budget.is_some_and(|b| b <= self.pipelined) {
            session.quit();
        }
        self.in_flight.push_back(Pending { job, reused: true, retried: false });
    }
}

/// The failure that ended a connection, as a send reports it.
fn stop_failure(stop: &Stop) -> Failure {
    match stop {
        Stop::Closed(End::Lost(f) | End::Failed(f) | End::Unusable(f)) => f.clone(),
        _ => Failure { step: Step::Quit, kind: FailureKind::Closed },
    }
}

/// Hooks that neither trace nor ask (a worker's hooks lent out for the moment).
struct Silent;

impl Hooks for Silent {
    fn trace(&mut self, _line: &str) {}

    fn tls_policy(&mut self, _code: u16, _diagnostic: &str) -> Option<PolicyAnswer> {
        None
    }

    fn oauth_token(&mut self, _username: &str) -> Result<crate::secret::Secret, String> {
        Err("no send is asking".into())
    }
}
