//! [`Interp`]: a borrowed interpreter, command registration, results and errors.

use std::any::Any;
use std::cell::Cell;
use std::ffi::{c_int, CString};
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::rc::Rc;

use tcl_sys::{ClientData, Tcl_Interp, Tcl_Obj};

use super::api::{self, Api};
use super::Obj;

const TCL_OK: c_int = tcl_sys::TCL_OK as c_int;
const TCL_ERROR: c_int = tcl_sys::TCL_ERROR as c_int;
const TCL_EVAL_GLOBAL: c_int = tcl_sys::TCL_EVAL_GLOBAL as c_int;
const TCL_GLOBAL_ONLY: c_int = tcl_sys::TCL_GLOBAL_ONLY as c_int;

/// A Tcl error on its way to or from a script: the message, the `-errorcode` list, and
/// the `-errorinfo` to leave (when `None`, Tcl writes its own, with the command's
/// source text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TclError {
    pub message: String,
    pub errorcode: Vec<String>,
    pub errorinfo: Option<String>,
}

impl TclError {
    pub fn new(message: impl Into<String>, errorcode: &[&str]) -> TclError {
        TclError {
            message: message.into(),
            errorcode: errorcode.iter().map(|s| s.to_string()).collect(),
            errorinfo: None,
        }
    }
}

/// What a panic carried: its message, when it has one.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// An interpreter lent to us for the duration of one call from Tcl (`'a`).
pub struct Interp<'a> {
    raw: NonNull<Tcl_Interp>,
    api: &'static Api,
    _call: PhantomData<&'a Tcl_Interp>,
}

impl Interp<'_> {
    pub fn new_string(&self, s: &str) -> Obj {
        Obj::new_string(self.api, s)
    }

    pub fn new_int(&self, i: i64) -> Obj {
        Obj::new_int(self.api, i)
    }

    pub fn new_list(&self, items: &[Obj]) -> Obj {
        Obj::new_list(self.api, items)
    }

    /// The elements of `list`, or Tcl's own error for a malformed list.
    pub fn list_elements(&self, list: &Obj) -> Result<Vec<Obj>, TclError> {
        let mut objc: c_int = 0;
        let mut objv: *mut *mut Tcl_Obj = std::ptr::null_mut();
        // SAFETY: list is live; with a null interp Tcl leaves our result alone. On success
        // objv points at objc elements owned by the list, which we reference before returning.
        let rc = unsafe { (self.api.list_elements)(std::ptr::null_mut(), list.as_ptr(), &mut objc, &mut objv) };
        if rc != TCL_OK {
            return Err(TclError::new(
                format!("expected a Tcl list but got \"{}\"", list.text()),
                &["TCL", "VALUE", "LIST"],
            ));
        }
        // SAFETY: as above; the elements stay alive while `list` is unchanged.
        Ok(unsafe { objs_from_raw(self.api, objc, objv) })
    }

    /// Evaluates the command whose words are `words` at global level
    /// (`TCL_EVAL_GLOBAL`, so caller-supplied command prefixes resolve as in a script's
    /// top level) and returns its result.
    pub fn eval_global(&self, words: &[Obj]) -> Result<Obj, TclError> {
        let ptrs: Vec<*mut Tcl_Obj> = words.iter().map(Obj::as_ptr).collect();
        let objc = c_int::try_from(ptrs.len()).unwrap_or(c_int::MAX);
        // SAFETY: the interpreter is live for 'a and ptrs holds objc live objects.
        let rc = unsafe { (self.api.eval_objv)(self.raw.as_ptr(), objc, ptrs.as_ptr(), TCL_EVAL_GLOBAL) };
        self.take_result(rc)
    }

    /// Evaluates a script at global level.
    pub fn eval_script(&self, script: &str) -> Result<Obj, TclError> {
        let len = c_int::try_from(script.len()).unwrap_or(c_int::MAX);
        // SAFETY: the interpreter is live and script is valid for len bytes.
        let rc = unsafe { (self.api.eval_ex)(self.raw.as_ptr(), script.as_ptr().cast(), len, TCL_EVAL_GLOBAL) };
        self.take_result(rc)
    }

    /// Turns the interpreter's result after an evaluation into ours, and clears it.
    fn take_result(&self, rc: c_int) -> Result<Obj, TclError> {
        // SAFETY: the interpreter is live; Tcl_GetObjResult never returns null.
        let result = unsafe { Obj::from_raw(self.api, (self.api.get_result)(self.raw.as_ptr())) };
        let outcome = match (rc, result) {
            (TCL_OK, Some(obj)) => Ok(obj),
            (TCL_OK, None) => Ok(self.new_string("")),
            (_, result) => Err(TclError {
                message: result.map(|r| r.text()).unwrap_or_default(),
                errorcode: self.error_code(),
                errorinfo: None,
            }),
        };
        // SAFETY: the interpreter is live.
        unsafe { (self.api.reset_result)(self.raw.as_ptr()) };
        outcome
    }

    /// The value of the variable `name` (global, or qualified like `::ns::var`), or `None`
    /// when there is no such scalar.
    pub fn variable(&self, name: &str) -> Option<Obj> {
        let name = c_string(name).ok()?;
        // SAFETY: the interpreter is live and the name is NUL-terminated; without
        // TCL_LEAVE_ERR_MSG a missing variable leaves the interpreter's result alone.
        let raw = unsafe { (self.api.get_var2)(self.raw.as_ptr(), name.as_ptr(), std::ptr::null(), TCL_GLOBAL_ONLY) };
        // SAFETY: Tcl_GetVar2Ex returns null or a live value.
        unsafe { Obj::from_raw(self.api, raw) }
    }

    /// The global `errorCode` after an error, as a list of words.
    fn error_code(&self) -> Vec<String> {
        match self.variable("errorCode") {
            Some(code) => match self.list_elements(&code) {
                Ok(words) => words.iter().map(Obj::text).collect(),
                Err(_) => vec![code.text()],
            },
            None => vec!["NONE".to_string()],
        }
    }

    /// Runs `f` (which evaluates a caller-supplied script) so that the interpreter's
    /// result, `errorInfo` and `errorCode` are as before afterwards, and the interpreter
    /// stays allocated even if the script deletes it (as tcltls's callbacks do).
    pub fn with_saved_state<T>(&self, f: impl FnOnce() -> T) -> T {
        self.preserved(|| {
            // SAFETY: the interpreter is live (and preserved); the state is restored
            // exactly once, by the guard, even if `f` panics.
            let state = unsafe { (self.api.save_state)(self.raw.as_ptr(), TCL_OK) };
            let _restore = SavedState { interp: self, state };
            f()
        })
    }

    /// A handle that lets another thread wake this interpreter's thread and have it run
    /// `handler` there.
    pub fn waker(&self, handler: fn()) -> super::Waker {
        super::Waker::for_current_thread(self.api, handler)
    }

    /// A handle that outlives this call and can lend the interpreter again later, from an
    /// event handler on this thread, for as long as the interpreter exists.
    pub fn handle(&self) -> InterpHandle {
        let alive = Rc::new(Cell::new(true));
        let token = Rc::into_raw(Rc::clone(&alive)).cast_mut();
        // SAFETY: the interpreter is live. Tcl calls interp_gone(token) once if the
        // interpreter is deleted first; otherwise InterpHandle::drop unregisters it and
        // frees the token.
        unsafe { (self.api.call_when_deleted)(self.raw.as_ptr(), Some(interp_gone), token.cast()) };
        InterpHandle { raw: self.raw, api: self.api, alive, token }
    }

    /// Evaluates a callback script's words at global level from the event loop, as Tcl
    /// does for `after` and `fileevent` scripts: an error goes to the interpreter's
    /// background error handler (`interp bgerror`), and the interpreter's result and
    /// error state are as before afterwards.
    pub fn eval_callback(&self, words: &[Obj]) {
        self.with_saved_state(|| {
            let ptrs: Vec<*mut Tcl_Obj> = words.iter().map(Obj::as_ptr).collect();
            let objc = c_int::try_from(ptrs.len()).unwrap_or(c_int::MAX);
            // SAFETY: the interpreter is live (and preserved), ptrs holds objc live objects;
            // Tcl_BackgroundException reads the error state the evaluation left.
            unsafe {
                let rc = (self.api.eval_objv)(self.raw.as_ptr(), objc, ptrs.as_ptr(), TCL_EVAL_GLOBAL);
                if rc != TCL_OK {
                    (self.api.background_exception)(self.raw.as_ptr(), rc);
                }
            }
        })
    }

    /// Services one Tcl event (timers, file events, window events, idle callbacks, and
    /// [`super::Waker::wake`]), waiting for one if none is pending: `vwait`'s loop step.
    pub fn do_one_event(&self) {
        // SAFETY: called on the interpreter's thread, like any Tcl_DoOneEvent.
        unsafe { (self.api.do_one_event)(tcl_sys::TCL_ALL_EVENTS) };
    }

    /// Runs `f` with the interpreter's memory kept valid even if a script run meanwhile
    /// (an event handler) deletes it.
    pub fn preserved<T>(&self, f: impl FnOnce() -> T) -> T {
        // SAFETY: the interpreter is live; the guard releases it exactly once, even if
        // `f` panics.
        unsafe { (self.api.preserve)(self.raw.as_ptr().cast()) };
        let _release = Preserved { interp: self };
        f()
    }

    /// Declares that this interpreter now has package `name` at `version`.
    pub fn provide(&self, name: &str, version: &str) -> Result<(), TclError> {
        let (name, version) = (c_string(name)?, c_string(version)?);
        // SAFETY: the interpreter is live; the strings are NUL-terminated and Tcl copies them.
        let rc =
            unsafe { (self.api.pkg_provide)(self.raw.as_ptr(), name.as_ptr(), version.as_ptr(), std::ptr::null()) };
        self.take_result(rc).map(drop)
    }

    /// Creates the command `name`, implemented by `f`. `f` gets the command's words, its
    /// name as invoked first; its `Ok` value becomes the result, its `Err` a Tcl error, and
    /// a panic inside it becomes the error `on_panic` makes of the panic's message instead
    /// of unwinding into Tcl.
    ///
    /// `on_delete` runs when the command is deleted (renaming does not delete it), at once
    /// even while a call of it is running, for instance servicing events when a handler
    /// deletes it; `f` itself (and what it holds) lives until that call has returned.
    pub fn create_command<F, D>(
        &self,
        name: &str,
        f: F,
        on_delete: D,
        on_panic: fn(String) -> TclError,
    ) -> Result<(), TclError>
    where
        F: Fn(&Interp<'_>, &[Obj]) -> Result<Obj, TclError> + 'static,
        D: FnOnce() + 'static,
    {
        let name = c_string(name)?;
        let command = Command { api: self.api, f, on_delete: Cell::new(Some(on_delete)), on_panic };
        let data = Rc::into_raw(Rc::new(command));
        // SAFETY: the interpreter is live. Tcl keeps `data` (one strong reference) until
        // the command is deleted and then calls free_command::<F, D>, which releases it
        // exactly once.
        unsafe {
            (self.api.create_command)(
                self.raw.as_ptr(),
                name.as_ptr(),
                Some(call_command::<F, D>),
                data.cast_mut().cast(),
                Some(free_command::<F, D>),
            );
        }
        Ok(())
    }

    /// Sets the interpreter's result (the command's value).
    fn set_result(&self, obj: &Obj) {
        // SAFETY: the interpreter and obj are live; Tcl takes its own reference.
        unsafe { (self.api.set_result)(self.raw.as_ptr(), obj.as_ptr()) };
    }

    /// Leaves `err` in the interpreter as the pending error: result, `-errorcode`, and
    /// `-errorinfo` when it has one (which stops Tcl from appending the command's source
    /// text).
    fn set_error(&self, err: &TclError) {
        let code = self.new_list(&err.errorcode.iter().map(|w| self.new_string(w)).collect::<Vec<_>>());
        match &err.errorinfo {
            Some(info) => {
                let options = self.new_list(&[
                    self.new_string("-code"),
                    self.new_string("error"),
                    self.new_string("-errorcode"),
                    code,
                    self.new_string("-errorinfo"),
                    self.new_string(info),
                ]);
                // SAFETY: the interpreter and the options dict are live; Tcl copies what it needs.
                unsafe { (self.api.set_return_options)(self.raw.as_ptr(), options.as_ptr()) };
            }
            // SAFETY: the interpreter and the list are live; Tcl takes its own reference.
            None => unsafe { (self.api.set_error_code)(self.raw.as_ptr(), code.as_ptr()) },
        }
        self.set_result(&self.new_string(&err.message));
    }
}

/// An interpreter kept for later calls from this thread's event handlers (not `Send`).
/// It knows when the interpreter is deleted and then lends it no more.
pub struct InterpHandle {
    raw: NonNull<Tcl_Interp>,
    api: &'static Api,
    /// Cleared by `interp_gone` when Tcl deletes the interpreter.
    alive: Rc<Cell<bool>>,
    /// The reference to `alive` registered with Tcl_CallWhenDeleted.
    token: *mut Cell<bool>,
}

impl InterpHandle {
    /// Runs `f` with the interpreter, kept allocated meanwhile even if `f` deletes it;
    /// `None` once the interpreter is deleted or being deleted.
    pub fn with<T>(&self, f: impl FnOnce(&Interp<'_>) -> T) -> Option<T> {
        if !self.alive.get() {
            return None;
        }
        // SAFETY: `alive` says Tcl has not yet torn the interpreter down, so it is allocated.
        if unsafe { (self.api.interp_deleted)(self.raw.as_ptr()) } != 0 {
            return None;
        }
        let interp = Interp { raw: self.raw, api: self.api, _call: PhantomData };
        Some(interp.preserved(|| f(&interp)))
    }
}

impl Drop for InterpHandle {
    fn drop(&mut self) {
        if self.alive.get() {
            // SAFETY: the interpreter still exists (interp_gone has not run), so the
            // registration can be withdrawn; the token is then ours to free, once.
            unsafe {
                (self.api.dont_call_when_deleted)(self.raw.as_ptr(), Some(interp_gone), self.token.cast());
                drop(Rc::from_raw(self.token.cast_const()));
            }
        }
    }
}

/// Tcl_CallWhenDeleted's callback: marks the handle's interpreter as gone.
unsafe extern "C" fn interp_gone(data: ClientData, _interp: *mut Tcl_Interp) {
    // SAFETY: `data` is the token made by Interp::handle from Rc::into_raw, registered
    // once; Tcl calls this at most once and the handle then no longer frees it.
    let alive = unsafe { Rc::from_raw(data.cast::<Cell<bool>>().cast_const()) };
    alive.set(false);
}

/// Releases a `Tcl_Preserve` when dropped.
struct Preserved<'a, 'i> {
    interp: &'a Interp<'i>,
}

impl Drop for Preserved<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: pairs the Tcl_Preserve made when this guard was created.
        unsafe { (self.interp.api.release)(self.interp.raw.as_ptr().cast()) };
    }
}

/// Restores a saved interpreter state when dropped.
struct SavedState<'a, 'i> {
    interp: &'a Interp<'i>,
    state: tcl_sys::Tcl_InterpState,
}

impl Drop for SavedState<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: `state` came from Tcl_SaveInterpState on this interpreter and is
        // consumed exactly once, here.
        unsafe { (self.interp.api.restore_state)(self.interp.raw.as_ptr(), self.state) };
    }
}

/// What a registered command carries as its clientData, in an `Rc`: Tcl holds one
/// reference until the command is deleted, and each call one more until it returns.
struct Command<F, D> {
    api: &'static Api,
    f: F,
    /// Taken and run when the command is deleted.
    on_delete: Cell<Option<D>>,
    on_panic: fn(String) -> TclError,
}

/// The C entry point of every command created by [`Interp::create_command`].
unsafe extern "C" fn call_command<F, D>(
    data: ClientData,
    interp: *mut Tcl_Interp,
    objc: c_int,
    objv: *const *mut Tcl_Obj,
) -> c_int
where
    F: Fn(&Interp<'_>, &[Obj]) -> Result<Obj, TclError> + 'static,
    D: FnOnce() + 'static,
{
    let data = data.cast::<Command<F, D>>().cast_const();
    // SAFETY: `data` came from Rc::into_raw in create_command with this very trampoline,
    // and Tcl's reference is alive while Tcl calls the command. The call takes its own
    // reference: Tcl runs the deleteProc as soon as the command is deleted, even while
    // this call is still running (a handler it services deletes the command), and `f`
    // must outlive the call.
    let command = unsafe {
        Rc::increment_strong_count(data);
        Rc::from_raw(data)
    };
    let Some(raw) = NonNull::new(interp) else { return TCL_ERROR };
    let interp = Interp { raw, api: command.api, _call: PhantomData };
    // SAFETY: Tcl passes objc live words; objv[0] is the command name.
    let words = unsafe { objs_from_raw(command.api, objc, objv.cast_mut()) };
    let outcome = catch_unwind(AssertUnwindSafe(|| (command.f)(&interp, &words)))
        .unwrap_or_else(|panic| Err((command.on_panic)(panic_message(panic.as_ref()))));
    match outcome {
        Ok(value) => {
            interp.set_result(&value);
            TCL_OK
        }
        Err(err) => {
            interp.set_error(&err);
            TCL_ERROR
        }
    }
}

/// The deleteProc of every command created by [`Interp::create_command`]: runs the
/// command's `on_delete` and releases Tcl's reference (a running call keeps its own).
unsafe extern "C" fn free_command<F, D>(data: ClientData)
where
    D: FnOnce(),
{
    // SAFETY: Tcl calls this once per command; `data` came from Rc::into_raw in
    // create_command, and this releases the reference Tcl held.
    let command = unsafe { Rc::from_raw(data.cast::<Command<F, D>>().cast_const()) };
    if let Some(on_delete) = command.on_delete.take() {
        // A panic must not unwind into Tcl; there is nobody to report it to.
        let _ = catch_unwind(AssertUnwindSafe(on_delete));
    }
}

/// References to `objc` values at `objv`.
///
/// # Safety
/// `objv` must point to `objc` live values (or be null with objc 0).
unsafe fn objs_from_raw(api: &'static Api, objc: c_int, objv: *mut *mut Tcl_Obj) -> Vec<Obj> {
    let n = usize::try_from(objc).unwrap_or(0);
    if objv.is_null() || n == 0 {
        return Vec::new();
    }
    // SAFETY: caller's contract.
    let ptrs = unsafe { std::slice::from_raw_parts(objv, n) };
    // SAFETY: each pointer is a live value (caller's contract).
    ptrs.iter().filter_map(|&p| unsafe { Obj::from_raw(api, p) }).collect()
}

fn c_string(s: &str) -> Result<CString, TclError> {
    CString::new(s).map_err(|_| TclError::new(format!("name contains NUL: {s:?}"), &["TCL", "VALUE", "NUL"]))
}

/// The body of an extension's `*_Init`: initialises the stubs, then runs `init` with the
/// interpreter, turning its error (or a panic, through `on_panic`) into a Tcl error.
/// Returns the Tcl status.
pub fn init_extension(
    interp: *mut Tcl_Interp,
    on_panic: fn(String) -> TclError,
    init: impl FnOnce(&Interp<'_>) -> Result<(), TclError>,
) -> c_int {
    let Some(raw) = NonNull::new(interp) else { return TCL_ERROR };
    // SAFETY: Tcl's `load` hands us a live interpreter.
    let api = match unsafe { api::init(interp) } {
        Ok(api) => api,
        // Without the stubs table nothing can be reported beyond the status code; Tcl's
        // Tcl_InitStubs has already left its own message in the interpreter.
        Err(_) => return TCL_ERROR,
    };
    let interp = Interp { raw, api, _call: PhantomData };
    let outcome =
        catch_unwind(AssertUnwindSafe(|| init(&interp))).unwrap_or_else(|p| Err(on_panic(panic_message(p.as_ref()))));
    match outcome {
        Ok(()) => TCL_OK,
        Err(err) => {
            interp.set_error(&err);
            TCL_ERROR
        }
    }
}
