//! [`Obj`]: an owned reference to a `Tcl_Obj`.

use std::ffi::c_int;
use std::ptr::NonNull;

use tcl_sys::Tcl_Obj;

use super::api::{Api, FILE};
use super::utf;

/// One reference to a Tcl value. `Clone` takes another reference and `Drop` releases
/// one, so Tcl frees the value exactly when the last holder (Tcl or Rust) lets go.
///
/// Not `Send`: Tcl values belong to the thread of their interpreter.
pub struct Obj {
    ptr: NonNull<Tcl_Obj>,
    api: &'static Api,
}

impl Obj {
    /// Takes a reference to `ptr`, or `None` for a null pointer.
    ///
    /// # Safety
    /// `ptr` must be null or point to a live `Tcl_Obj` of the current thread.
    pub(crate) unsafe fn from_raw(api: &'static Api, ptr: *mut Tcl_Obj) -> Option<Obj> {
        let ptr = NonNull::new(ptr)?;
        // SAFETY: ptr is a live Tcl_Obj (caller's contract); taking a reference is always allowed.
        unsafe { (api.incr_ref)(ptr.as_ptr(), FILE.as_ptr(), 0) };
        Some(Obj { ptr, api })
    }

    /// Wraps the fresh (refcount 0) value a Tcl constructor returned.
    fn fresh(api: &'static Api, ptr: *mut Tcl_Obj) -> Obj {
        // SAFETY: Tcl constructors return a live new object or panic inside Tcl (out of
        // memory aborts the process), never null.
        unsafe { Obj::from_raw(api, ptr) }.unwrap_or_else(|| std::process::abort())
    }

    pub(crate) fn as_ptr(&self) -> *mut Tcl_Obj {
        self.ptr.as_ptr()
    }

    /// A new string value.
    pub(crate) fn new_string(api: &'static Api, s: &str) -> Obj {
        let bytes = utf::to_tcl(s);
        let len = c_int::try_from(bytes.len()).unwrap_or(c_int::MAX);
        // SAFETY: bytes is valid for len bytes; Tcl copies them.
        Obj::fresh(api, unsafe { (api.new_string)(bytes.as_ptr().cast(), len) })
    }

    /// A new integer value.
    pub(crate) fn new_int(api: &'static Api, i: i64) -> Obj {
        // SAFETY: plain value constructor.
        Obj::fresh(api, unsafe { (api.new_wide_int)(i) })
    }

    /// A new list holding `items` (each gains a reference held by the list).
    pub(crate) fn new_list(api: &'static Api, items: &[Obj]) -> Obj {
        let ptrs: Vec<*mut Tcl_Obj> = items.iter().map(Obj::as_ptr).collect();
        let len = c_int::try_from(ptrs.len()).unwrap_or(c_int::MAX);
        // SAFETY: ptrs holds len live objects; Tcl_NewListObj takes its own references.
        Obj::fresh(api, unsafe { (api.new_list)(len, ptrs.as_ptr()) })
    }

    /// The value as text. Tcl's internal forms of NUL and of characters above U+FFFF are
    /// decoded (see [`utf`]).
    pub fn text(&self) -> String {
        let mut len: c_int = 0;
        // SAFETY: self is live; Tcl returns its string rep, valid until the object changes,
        // and we copy it before returning.
        let ptr = unsafe { (self.api.get_string)(self.as_ptr(), &mut len) };
        // SAFETY: Tcl guarantees ptr points at len bytes (plus a NUL) while self is unchanged.
        let bytes = unsafe { raw_slice(ptr.cast(), len) };
        utf::from_tcl(bytes).into_owned()
    }
}

impl Obj {
    /// The value as bytes, as Tcl's `binary` and binary channels see it: a byte array's
    /// bytes, or the low byte of each character of a string.
    pub fn bytes(&self) -> Vec<u8> {
        let mut len: c_int = 0;
        // SAFETY: self is live; Tcl returns its byte array rep (converting the value to
        // one), valid until the object changes, and we copy it before returning.
        let ptr = unsafe { (self.api.get_byte_array)(self.as_ptr(), &mut len) };
        // SAFETY: Tcl guarantees ptr points at len bytes while self is unchanged.
        unsafe { raw_slice(ptr.cast_const(), len) }.to_vec()
    }
}

/// A slice over `len` bytes at `ptr` (empty for null or non-positive lengths).
///
/// # Safety
/// When non-null, `ptr` must point to `len` readable bytes that outlive the slice's use.
unsafe fn raw_slice<'a>(ptr: *const u8, len: c_int) -> &'a [u8] {
    match usize::try_from(len) {
        Ok(n) if !ptr.is_null() && n > 0 => {
            // SAFETY: caller's contract.
            unsafe { std::slice::from_raw_parts(ptr, n) }
        }
        _ => &[],
    }
}

impl Clone for Obj {
    fn clone(&self) -> Obj {
        // SAFETY: self is live, so taking another reference is allowed.
        unsafe { (self.api.incr_ref)(self.as_ptr(), FILE.as_ptr(), 0) };
        Obj { ptr: self.ptr, api: self.api }
    }
}

impl Drop for Obj {
    fn drop(&mut self) {
        // SAFETY: we hold one reference, released exactly once here.
        unsafe { (self.api.decr_ref)(self.as_ptr(), FILE.as_ptr(), 0) };
    }
}

impl std::fmt::Debug for Obj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value: it may be a password.
        f.write_str("Obj(..)")
    }
}
