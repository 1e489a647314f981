//! The Tcl C functions this crate uses, taken once from the stubs table.
//!
//! The stubs table gives every function as an `Option`. Copying the ones we use into a
//! struct of plain function pointers at load time means a Tcl without one of them fails
//! `load` with a clear message, and no call site ever has to handle a missing slot.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

use tcl_sys::{
    ClientData, TclStubs, Tcl_Command, Tcl_Event, Tcl_Interp, Tcl_InterpState, Tcl_Obj, Tcl_ObjCmdProc,
    Tcl_QueuePosition, Tcl_ThreadId,
};

/// Function pointers from the stubs table, all present.
pub(crate) struct Api {
    pub incr_ref: unsafe extern "C" fn(*mut Tcl_Obj, *const c_char, c_int),
    pub decr_ref: unsafe extern "C" fn(*mut Tcl_Obj, *const c_char, c_int),
    pub new_string: unsafe extern "C" fn(*const c_char, c_int) -> *mut Tcl_Obj,
    pub new_list: unsafe extern "C" fn(c_int, *const *mut Tcl_Obj) -> *mut Tcl_Obj,
    pub new_wide_int: unsafe extern "C" fn(tcl_sys::Tcl_WideInt) -> *mut Tcl_Obj,
    pub get_string: unsafe extern "C" fn(*mut Tcl_Obj, *mut c_int) -> *mut c_char,
    pub get_byte_array: unsafe extern "C" fn(*mut Tcl_Obj, *mut c_int) -> *mut std::ffi::c_uchar,
    pub list_elements: unsafe extern "C" fn(*mut Tcl_Interp, *mut Tcl_Obj, *mut c_int, *mut *mut *mut Tcl_Obj) -> c_int,
    pub set_result: unsafe extern "C" fn(*mut Tcl_Interp, *mut Tcl_Obj),
    pub get_result: unsafe extern "C" fn(*mut Tcl_Interp) -> *mut Tcl_Obj,
    pub reset_result: unsafe extern "C" fn(*mut Tcl_Interp),
    pub set_error_code: unsafe extern "C" fn(*mut Tcl_Interp, *mut Tcl_Obj),
    pub get_var2: unsafe extern "C" fn(*mut Tcl_Interp, *const c_char, *const c_char, c_int) -> *mut Tcl_Obj,
    pub eval_objv: unsafe extern "C" fn(*mut Tcl_Interp, c_int, *const *mut Tcl_Obj, c_int) -> c_int,
    pub eval_ex: unsafe extern "C" fn(*mut Tcl_Interp, *const c_char, c_int, c_int) -> c_int,
    pub create_command: unsafe extern "C" fn(
        *mut Tcl_Interp,
        *const c_char,
        Tcl_ObjCmdProc,
        ClientData,
        tcl_sys::Tcl_CmdDeleteProc,
    ) -> Tcl_Command,
    pub pkg_provide: unsafe extern "C" fn(*mut Tcl_Interp, *const c_char, *const c_char, *const c_void) -> c_int,
    pub set_return_options: unsafe extern "C" fn(*mut Tcl_Interp, *mut Tcl_Obj) -> c_int,
    pub save_state: unsafe extern "C" fn(*mut Tcl_Interp, c_int) -> Tcl_InterpState,
    pub restore_state: unsafe extern "C" fn(*mut Tcl_Interp, Tcl_InterpState) -> c_int,
    pub current_thread: unsafe extern "C" fn() -> Tcl_ThreadId,
    pub thread_queue_event: unsafe extern "C" fn(Tcl_ThreadId, *mut Tcl_Event, Tcl_QueuePosition),
    pub thread_alert: unsafe extern "C" fn(Tcl_ThreadId),
    pub do_one_event: unsafe extern "C" fn(c_int) -> c_int,
    pub alloc: unsafe extern "C" fn(std::ffi::c_uint) -> *mut c_char,
    pub preserve: unsafe extern "C" fn(ClientData),
    pub release: unsafe extern "C" fn(ClientData),
    pub call_when_deleted: unsafe extern "C" fn(*mut Tcl_Interp, tcl_sys::Tcl_InterpDeleteProc, ClientData),
    pub dont_call_when_deleted: unsafe extern "C" fn(*mut Tcl_Interp, tcl_sys::Tcl_InterpDeleteProc, ClientData),
    pub interp_deleted: unsafe extern "C" fn(*mut Tcl_Interp) -> c_int,
    pub background_exception: unsafe extern "C" fn(*mut Tcl_Interp, c_int),
    pub finalize_thread: unsafe extern "C" fn(),
}

/// Set once, by the first successful `load`; never changed afterwards (the stubs table of
/// a process is fixed), so sharing it between interpreters and threads is sound.
static API: OnceLock<Api> = OnceLock::new();

/// Runs `Tcl_InitStubs` for `interp` and returns the function table.
///
/// # Safety
/// `interp` must be a live interpreter handed to us by Tcl's `load`.
pub(crate) unsafe fn init(interp: *mut Tcl_Interp) -> Result<&'static Api, String> {
    // SAFETY: interp is live (caller's contract); the version string is NUL-terminated.
    let version = unsafe { tcl_sys::Tcl_InitStubs(interp, c"8.6".as_ptr(), 0) };
    if version.is_null() {
        return Err("smtp needs Tcl 8.6 (Tcl_InitStubs failed)".into());
    }
    if let Some(api) = API.get() {
        return Ok(api);
    }
    // SAFETY: Tcl_InitStubs succeeded, so tclStubsPtr points at the process's stubs table,
    // which lives as long as the process.
    let stubs: &'static TclStubs = unsafe { &*tcl_sys::tclStubsPtr };
    let api = Api::from_stubs(stubs)?;
    Ok(API.get_or_init(|| api))
}

/// Takes a slot out of the stubs table or names the missing function.
macro_rules! slot {
    ($stubs:ident . $field:ident) => {
        $stubs.$field.ok_or_else(|| format!("this Tcl's stubs table lacks {}", stringify!($field)))?
    };
}

impl Api {
    fn from_stubs(s: &TclStubs) -> Result<Api, String> {
        Ok(Api {
            incr_ref: slot!(s.tcl_DbIncrRefCount),
            decr_ref: slot!(s.tcl_DbDecrRefCount),
            new_string: slot!(s.tcl_NewStringObj),
            new_list: slot!(s.tcl_NewListObj),
            new_wide_int: slot!(s.tcl_NewWideIntObj),
            get_string: slot!(s.tcl_GetStringFromObj),
            get_byte_array: slot!(s.tcl_GetByteArrayFromObj),
            list_elements: slot!(s.tcl_ListObjGetElements),
            set_result: slot!(s.tcl_SetObjResult),
            get_result: slot!(s.tcl_GetObjResult),
            reset_result: slot!(s.tcl_ResetResult),
            set_error_code: slot!(s.tcl_SetObjErrorCode),
            get_var2: slot!(s.tcl_GetVar2Ex),
            eval_objv: slot!(s.tcl_EvalObjv),
            eval_ex: slot!(s.tcl_EvalEx),
            create_command: slot!(s.tcl_CreateObjCommand),
            pkg_provide: slot!(s.tcl_PkgProvideEx),
            set_return_options: slot!(s.tcl_SetReturnOptions),
            save_state: slot!(s.tcl_SaveInterpState),
            restore_state: slot!(s.tcl_RestoreInterpState),
            current_thread: slot!(s.tcl_GetCurrentThread),
            thread_queue_event: slot!(s.tcl_ThreadQueueEvent),
            thread_alert: slot!(s.tcl_ThreadAlert),
            do_one_event: slot!(s.tcl_DoOneEvent),
            alloc: slot!(s.tcl_Alloc),
            preserve: slot!(s.tcl_Preserve),
            release: slot!(s.tcl_Release),
            call_when_deleted: slot!(s.tcl_CallWhenDeleted),
            dont_call_when_deleted: slot!(s.tcl_DontCallWhenDeleted),
            interp_deleted: slot!(s.tcl_InterpDeleted),
            background_exception: slot!(s.tcl_BackgroundException),
            finalize_thread: slot!(s.tcl_FinalizeThread),
        })
    }
}

/// The file name passed to the refcount functions (only used by Tcl's debug builds).
pub(crate) const FILE: &CStr = c"tclsmtp";
