// SPDX-License-Identifier: BSD-2-Clause
//! Rust closures called from C, and what happens when they panic.
//!
//! Unwinding out of an `extern "C"` function into C is undefined behaviour
//! with older compilers and an abort with newer ones; either way the C
//! library would be left in the middle of an operation.  So:
//! - the closures of `release_range` and `for_each` run under
//!   `catch_unwind` with the `std` feature: the panic is held while the C
//!   call finishes normally and is resumed once it has returned;
//! - allocator hooks, and every closure without `std`, run under
//!   [`AbortOnUnwind`]: a panic that would cross into C aborts instead.

use core::ffi::c_void;

use crate::{Entry, FrameNumber};

/// Aborts the process if dropped during unwinding: put one on the stack
/// before calling Rust code from C, `mem::forget` it afterwards.
pub(crate) struct AbortOnUnwind(pub(crate) &'static str);

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        // Only reached while unwinding: every normal path forgets the guard.
        #[cfg(feature = "std")]
        {
            std::eprintln!("{}: aborting", self.0);
            std::process::abort();
        }
        // Without std there is no abort: a panic while panicking is one
        // (the unwinder refuses to start a second unwind).  Kernels build
        // with panic = "abort", where this is never reached.
        #[cfg(not(feature = "std"))]
        panic!("{}: aborting", self.0);
    }
}

/// A closure called from C, and the first panic it raised (under `std`).
pub(crate) struct Callback<F> {
    f: F,
    #[cfg(feature = "std")]
    panic: Option<std::boxed::Box<dyn core::any::Any + Send + 'static>>,
}

impl<F> Callback<F> {
    pub(crate) fn new(f: F) -> Self {
        Callback {
            f,
            #[cfg(feature = "std")]
            panic: None,
        }
    }

    /// The pointer C passes back to the trampoline.
    pub(crate) fn arg(&mut self) -> *mut c_void {
        (self as *mut Self).cast()
    }

    /// Runs `call` on the closure; returns None if it panicked (the panic
    /// is kept for [`finish`](Self::finish)).
    #[cfg(feature = "std")]
    fn run<R>(&mut self, call: impl FnOnce(&mut F) -> R) -> Option<R> {
        let f = &mut self.f;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(f))) {
            Ok(r) => Some(r),
            Err(payload) => {
                // Keep the first panic; a later one is dropped.
                if self.panic.is_none() {
                    self.panic = Some(payload);
                }
                None
            }
        }
    }

    /// Runs `call` on the closure; a panic aborts.
    #[cfg(not(feature = "std"))]
    fn run<R>(&mut self, call: impl FnOnce(&mut F) -> R) -> Option<R> {
        let guard = AbortOnUnwind("cowtable: a closure unwound into the C library");
        let r = call(&mut self.f);
        core::mem::forget(guard);
        Some(r)
    }

    /// After the C call has returned: resumes the closure's panic, if any.
    pub(crate) fn finish(self) {
        #[cfg(feature = "std")]
        if let Some(payload) = self.panic {
            std::panic::resume_unwind(payload);
        }
    }
}

/// `cowtable_last_fn` for a `FnMut(usize, FrameNumber)`.
///
/// After a panic the closure is still called for every later LAST: the C
/// walk goes on to the end of the range and each frame it hands back must
/// reach the caller.
pub(crate) unsafe extern "C" fn last_trampoline<F: FnMut(usize, FrameNumber)>(
    vaddr: usize,
    frame: u64,
    arg: *mut c_void,
) {
    // SAFETY: `arg` is the `&mut Callback<F>` that Context::release_range
    // passed with this trampoline; it outlives the C call, and C calls the
    // trampoline on the calling thread, one call at a time.  A nested
    // release_range made from inside the closure has its own Callback.
    let cb = unsafe { &mut *(arg as *mut Callback<F>) };
    let _ = cb.run(|f| f(vaddr, FrameNumber(frame)));
}

/// `cowtable_visit_fn` for a `FnMut(Entry) -> bool` (true: go on).
///
/// A panic stops the walk, as returning false does.
pub(crate) unsafe extern "C" fn visit_trampoline<F: FnMut(Entry) -> bool>(
    vaddr: usize,
    frame: u64,
    refs: u32,
    arg: *mut c_void,
) -> bool {
    // SAFETY: as in last_trampoline, with Context::for_each_while.
    let cb = unsafe { &mut *(arg as *mut Callback<F>) };
    let entry = Entry {
        vaddr,
        frame: FrameNumber(frame),
        refs,
    };
    cb.run(|f| f(entry)).unwrap_or(false)
}
