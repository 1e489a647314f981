//! Waking an interpreter's thread from another thread, so it can keep servicing Tcl
//! events while a send runs elsewhere and still notice when the send needs it.

use std::ffi::c_int;

use tcl_sys::{Tcl_Event, Tcl_ThreadId};

use super::api::Api;

/// Wakes the thread it was made on: queues a no-op event there, which makes that
/// thread's `Tcl_DoOneEvent` return. Can be copied to and used from any thread.
#[derive(Clone, Copy)]
pub struct Waker {
    api: &'static Api,
    thread: Tcl_ThreadId,
}

// SAFETY: a Tcl_ThreadId is an opaque identifier that Tcl provides precisely so other
// threads can address Tcl_ThreadQueueEvent/Tcl_ThreadAlert to that thread; the API
// table is immutable function pointers.
unsafe impl Send for Waker {}
// SAFETY: as above; waking takes no &mut state.
unsafe impl Sync for Waker {}

impl Waker {
    pub(super) fn for_current_thread(api: &'static Api) -> Waker {
        // SAFETY: plain query of the calling thread's id.
        let thread = unsafe { (api.current_thread)() };
        Waker { api, thread }
    }

    /// Makes the thread's pending or next `Tcl_DoOneEvent` return.
    pub fn wake(&self) {
        let size = std::ffi::c_uint::try_from(std::mem::size_of::<Tcl_Event>()).unwrap_or(std::ffi::c_uint::MAX);
        // SAFETY: Tcl_Alloc returns memory Tcl will free with Tcl_Free after the event's
        // proc returns 1 (it panics rather than return null). The event is fully
        // initialised before it is queued; queueing and alerting are documented as
        // callable from any thread for a valid thread id.
        unsafe {
            let event = (self.api.alloc)(size).cast::<Tcl_Event>();
            event.write(Tcl_Event { proc_: Some(wake_event), nextPtr: std::ptr::null_mut() });
            (self.api.thread_queue_event)(self.thread, event, tcl_sys::Tcl_QueuePosition_TCL_QUEUE_TAIL);
            (self.api.thread_alert)(self.thread);
        }
    }
}

/// The queued event does nothing: its only job is to end the wait. Returning 1 lets Tcl
/// remove and free it.
unsafe extern "C" fn wake_event(_event: *mut Tcl_Event, _flags: c_int) -> c_int {
    1
}
