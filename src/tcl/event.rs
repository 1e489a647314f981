//! Waking an interpreter's thread from another thread, so it can keep servicing Tcl
//! events while a send runs elsewhere and still notice when the send needs it.

use std::ffi::c_int;
use std::io::Write;
use std::panic::catch_unwind;

use tcl_sys::{Tcl_Event, Tcl_ThreadId};

use super::api::Api;

/// Wakes the thread it was made on: queues an event there that runs `handler` on that
/// thread (inside its `Tcl_DoOneEvent`, like any Tcl event). Can be copied to and used
/// from any thread.
#[derive(Clone, Copy)]
pub struct Waker {
    api: &'static Api,
    thread: Tcl_ThreadId,
    handler: fn(),
}

// SAFETY: a Tcl_ThreadId is an opaque identifier that Tcl provides precisely so other
// threads can address Tcl_ThreadQueueEvent/Tcl_ThreadAlert to that thread; the API
// table is immutable function pointers, and `handler` is a plain function.
unsafe impl Send for Waker {}
// SAFETY: as above; waking takes no &mut state.
unsafe impl Sync for Waker {}

/// The queued event: Tcl's header first (Tcl frees the whole block with Tcl_Free).
#[repr(C)]
struct WakeEvent {
    header: Tcl_Event,
    handler: fn(),
}

impl Waker {
    pub(super) fn for_current_thread(api: &'static Api, handler: fn()) -> Waker {
        // SAFETY: plain query of the calling thread's id.
        let thread = unsafe { (api.current_thread)() };
        Waker { api, thread, handler }
    }

    /// Makes the thread run the handler at its pending or next `Tcl_DoOneEvent`.
    pub fn wake(&self) {
        let size = std::ffi::c_uint::try_from(std::mem::size_of::<WakeEvent>()).unwrap_or(std::ffi::c_uint::MAX);
        // SAFETY: Tcl_Alloc returns memory Tcl will free with Tcl_Free after the event's
        // proc returns 1 (it panics rather than return null), suitably aligned for any
        // type. The event is fully initialised before it is queued; queueing and alerting
        // are documented as callable from any thread for a valid thread id.
        unsafe {
            let event = (self.api.alloc)(size).cast::<WakeEvent>();
            event.write(WakeEvent {
                header: Tcl_Event { proc_: Some(wake_event), nextPtr: std::ptr::null_mut() },
                handler: self.handler,
            });
            (self.api.thread_queue_event)(self.thread, event.cast(), tcl_sys::Tcl_QueuePosition_TCL_QUEUE_TAIL);
            (self.api.thread_alert)(self.thread);
        }
    }
}

/// What Tcl keeps for a thread that is not Tcl's own (a send's worker) once it has used a
/// [`Waker`]: queueing an event allocates with Tcl's allocator, which gives every thread
/// a memory cache of its own that only `Tcl_FinalizeThread` frees. Dropping this at the
/// end of such a thread frees it; without it every send leaked about 16 KiB.
pub struct ThreadRelease {
    api: &'static Api,
}

impl ThreadRelease {
    pub fn new(waker: &Waker) -> ThreadRelease {
        ThreadRelease { api: waker.api }
    }
}

impl Drop for ThreadRelease {
    fn drop(&mut self) {
        // SAFETY: Tcl_FinalizeThread only releases the calling thread's Tcl data (its
        // allocator cache moves to the shared pool; blocks still in use, such as a queued
        // event, stay valid). A later Tcl call from the thread would simply set it up again.
        unsafe { (self.api.finalize_thread)() };
    }
}

/// Runs the event's handler on the woken thread. Returning 1 lets Tcl remove and free
/// the event. A panic is stopped here: it must not unwind into Tcl.
unsafe extern "C" fn wake_event(event: *mut Tcl_Event, _flags: c_int) -> c_int {
    // SAFETY: Tcl hands back the event queued by `wake`, a WakeEvent.
    let handler = unsafe { (*event.cast::<WakeEvent>()).handler };
    if catch_unwind(handler).is_err() {
        let _ = writeln!(std::io::stderr(), "smtp: internal error in an event handler (please report)");
    }
    1
}
