// SPDX-License-Identifier: BSD-2-Clause
//! The table: owns the C library's `struct cowtable` and the allocator.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ops::{Deref, Range};
use core::ptr::{self, NonNull};

use crate::allocator::{alloc_hook, free_hook};
use crate::context::ctx_or_nomem;
#[cfg(feature = "alloc")]
use crate::Global;
use crate::{ffi, Allocator, Context, Entry, Error, FrameNumber, RangeError, Release, MIN_ALIGN};

/// The block a table lives in, allocated through its own allocator.
///
/// `struct cowtable` must not move after `cowtable_init` (contexts point
/// into it), and the C library keeps a pointer to the allocator (its hook's
/// `arg`); a `CowTable` moves freely, so both live here, behind a pointer.
struct Inner<A: Allocator> {
    /// Written by the C library through shared references: UnsafeCell.
    raw: UnsafeCell<ffi::cowtable>,
    alloc: A,
    #[cfg(feature = "std")]
    cache: crate::cache::Registry,
}

impl<A: Allocator> Inner<A> {
    /// The allocator guarantees MIN_ALIGN and no more.
    const ALIGN_OK: () = assert!(
        mem::align_of::<Inner<A>>() <= MIN_ALIGN,
        "cowtable: an Allocator type aligned above MIN_ALIGN cannot be stored in its table"
    );
}

/// A table of copy-on-write shared pages: virtual page address to (frame,
/// number of sharers).
///
/// The seed's API ([`new`](Self::new), [`mark_cow`](Self::mark_cow),
/// [`release`](Self::release), [`is_cow`](Self::is_cow), `Default`,
/// `Send + Sync`) and the rest of the library's: [`try_mark`](Self::try_mark),
/// [`try_release`](Self::try_release), [`lookup`](Self::lookup), ranges,
/// [`count`](Self::count), and explicit per-CPU [`Context`]s.
///
/// Every method takes `&self` and may run on any number of threads at
/// once.  Each finds a context for its call (see the crate documentation:
/// a per-thread cache with `std`, a parked context per call without); a
/// [`Context`] skips that step.
///
/// # Memory
///
/// Everything comes from the [`Allocator`] `A`: the block holding the C
/// `struct cowtable` and `A` itself (it must not move, so it cannot live in
/// the `CowTable` value), the entries (42.7 bytes per tracked page on
/// average), the contexts and the skip list's head.  Dropping the table
/// gives every byte back.  Frames of pages still tracked are not handed to
/// anyone then: release them first (e.g. [`release_range`](Self::release_range)
/// over the whole address space) if they must be freed.  With `std`, the
/// per-thread cache's bookkeeping (a few words per thread and table) comes
/// from the global allocator.
#[cfg(feature = "alloc")]
pub struct CowTable<A: Allocator = Global> {
    inner: NonNull<Inner<A>>,
    _owns: PhantomData<Inner<A>>,
}

/// A table of copy-on-write shared pages: virtual page address to (frame,
/// number of sharers).  See the crate documentation; made with
/// [`CowTable::with_allocator`] when the `alloc` feature is off.
#[cfg(not(feature = "alloc"))]
pub struct CowTable<A: Allocator> {
    inner: NonNull<Inner<A>>,
    _owns: PhantomData<Inner<A>>,
}

// SAFETY: every operation of the C library is safe from any number of
// threads at once, each through its own context, and contexts are handed
// out one thread at a time (a thread cache, a parked context, or a
// Context, which is !Sync).  The allocator is called from every thread that
// uses the table, possibly at once, and is dropped with it: A: Send + Sync.
unsafe impl<A: Allocator + Send + Sync> Send for CowTable<A> {}
// SAFETY: as for Send.
unsafe impl<A: Allocator + Send + Sync> Sync for CowTable<A> {}

#[cfg(feature = "alloc")]
impl CowTable<Global> {
    /// An empty table on the global allocator: the seed's `new`.
    ///
    /// Unlike the seed's `BTreeMap::new`, this allocates (the table's
    /// control block and the skip list's head, about 600 bytes); on failure
    /// it calls [`handle_alloc_error`](alloc::alloc::handle_alloc_error), as
    /// the seed's first insertion would have.
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(table) => table,
            Err(_) => alloc::alloc::handle_alloc_error(core::alloc::Layout::new::<Inner<Global>>()),
        }
    }

    /// An empty table on the global allocator.
    ///
    /// # Errors
    ///
    /// [`Error::NoMemory`] if the global allocator failed.
    pub fn try_new() -> Result<Self, Error> {
        Self::try_with_allocator(Global)
    }
}

#[cfg(feature = "alloc")]
impl Default for CowTable<Global> {
    fn default() -> Self {
        Self::new()
    }
}

/// A context for one call of a `CowTable` method: the thread's cached one
/// (not put back), or a parked one taken for this call (put back on drop).
struct CallCtx<'t, A: Allocator> {
    cx: ManuallyDrop<Context<'t, A>>,
    parked: bool,
    /// Never leaves the thread: the cached context is the thread's.
    _local: PhantomData<*const ()>,
}

impl<'t, A: Allocator> Deref for CallCtx<'t, A> {
    type Target = Context<'t, A>;

    fn deref(&self) -> &Context<'t, A> {
        &self.cx
    }
}

impl<A: Allocator> Drop for CallCtx<'_, A> {
    fn drop(&mut self) {
        if self.parked {
            // SAFETY: dropped once, here; Context's drop puts the context
            // this call took.
            unsafe { ManuallyDrop::drop(&mut self.cx) }
        }
    }
}

impl<A: Allocator> CowTable<A> {
    /// An empty table whose memory comes from `alloc`.
    ///
    /// # Panics
    ///
    /// If the allocator fails; see [`try_with_allocator`](Self::try_with_allocator).
    #[track_caller]
    pub fn with_allocator(alloc: A) -> Self {
        match Self::try_with_allocator(alloc) {
            Ok(table) => table,
            Err(e) => panic!("cowtable: cannot make a table: {e}"),
        }
    }

    /// An empty table whose memory comes from `alloc`: the block holding the
    /// C table and `alloc` itself, then the skip list's head.
    ///
    /// # Errors
    ///
    /// [`Error::NoMemory`] if the allocator failed; whatever it handed out
    /// has been given back, and `alloc` dropped.
    pub fn try_with_allocator(alloc: A) -> Result<Self, Error> {
        #[allow(clippy::let_unit_value)]
        let () = Inner::<A>::ALIGN_OK;
        let size = mem::size_of::<Inner<A>>();
        let p = alloc.alloc(size).cast::<Inner<A>>();
        if p.is_null() {
            return Err(Error::NoMemory);
        }
        debug_assert_eq!(p as usize % mem::align_of::<Inner<A>>(), 0);
        // SAFETY: `p` is a fresh block of `size` bytes aligned to MIN_ALIGN
        // (Allocator's contract), enough for Inner<A> (ALIGN_OK).
        unsafe {
            p.write(Inner {
                raw: UnsafeCell::new(ffi::cowtable::ZEROED),
                alloc,
                #[cfg(feature = "std")]
                cache: crate::cache::Registry::new(),
            })
        };
        let hook = ffi::cowtable_allocator {
            alloc: Some(alloc_hook::<A>),
            free: Some(free_hook::<A>),
            // SAFETY: `p` is valid (written above); no reference is made.
            arg: unsafe { ptr::addr_of!((*p).alloc) } as *mut c_void,
        };
        // SAFETY: `raw` is ours alone until this returns, and stays at this
        // address until cowtable_fini (Inner never moves).  The hook is
        // copied by the library; its `arg` points to `alloc`, which lives
        // as long as the table.
        let rc = unsafe { ffi::cowtable_init((*p).raw.get(), &hook) };
        if rc != 0 {
            // SAFETY: the library left nothing to undo (its contract); the
            // block is ours and is freed once, with the size it had.
            unsafe { Self::free_inner(p) };
            return Err(Error::expect(rc, "cowtable_init"));
        }
        Ok(CowTable {
            // SAFETY: checked non-null above.
            inner: unsafe { NonNull::new_unchecked(p) },
            _owns: PhantomData,
        })
    }

    /// Drops the block's Rust fields and gives the block back to its
    /// allocator, which is then dropped.
    ///
    /// # Safety
    ///
    /// `p` came from `try_with_allocator`, its C table is finished (or was
    /// never initialised), and nothing uses it afterwards.
    unsafe fn free_inner(p: *mut Inner<A>) {
        // SAFETY: the caller's guarantee: every field is initialised and
        // ours; `alloc` is moved out before its block is freed.
        unsafe {
            #[cfg(feature = "std")]
            ptr::drop_in_place(ptr::addr_of_mut!((*p).cache));
            let alloc = ptr::read(ptr::addr_of!((*p).alloc));
            alloc.free(p.cast(), mem::size_of::<Inner<A>>());
        }
    }

    fn inner(&self) -> &Inner<A> {
        // SAFETY: `inner` is valid until drop.
        unsafe { self.inner.as_ref() }
    }

    /// The C table, for calls through [`ffi`].  It stays owned by this
    /// `CowTable`: never call `cowtable_init` or `cowtable_fini` on it.
    pub fn as_raw(&self) -> *mut ffi::cowtable {
        self.inner().raw.get()
    }

    /// The allocator the table's memory comes from.
    pub fn allocator(&self) -> &A {
        &self.inner().alloc
    }

    /// Takes a context for the calling thread: one put back by an earlier
    /// user, or a new one (which may allocate).
    ///
    /// Contexts stay with the table until it is dropped (their epoch record
    /// cannot be freed before), so take one per CPU or thread and keep it,
    /// rather than one per operation.
    ///
    /// # Errors
    ///
    /// [`Error::NoMemory`] if a new context was needed and the allocator
    /// failed.
    pub fn context(&self) -> Result<Context<'_, A>, Error> {
        // SAFETY: the table is live (borrowed for the context's lifetime).
        let raw = ctx_or_nomem(unsafe { ffi::cowtable_ctx_get(self.as_raw()) })?;
        // SAFETY: cowtable_ctx_get hands the context to the caller alone.
        Ok(unsafe { Context::from_raw(raw, self) })
    }

    /// A context for one call.
    fn call_ctx(&self) -> Result<CallCtx<'_, A>, Error> {
        #[cfg(feature = "std")]
        {
            // SAFETY: the table is live and borrowed while the context is
            // used (CallCtx borrows `self`).
            if let Some(r) = unsafe { crate::cache::thread_ctx(&self.inner().cache, self.as_raw()) } {
                let raw = r?;
                return Ok(CallCtx {
                    // SAFETY: the calling thread's own context of this
                    // table; on this thread it is used again only from
                    // inside the closures of a call on it, which the
                    // contract allows.  Not put back here: the cache owns it.
                    cx: ManuallyDrop::new(unsafe { Context::from_raw(raw, self) }),
                    parked: false,
                    _local: PhantomData,
                });
            }
        }
        // No thread-local storage (no std, or the thread is exiting): a
        // parked context for this call.
        let cx = self.context()?;
        Ok(CallCtx {
            cx: ManuallyDrop::new(cx),
            parked: true,
            _local: PhantomData,
        })
    }

    /// A context for one call of a method that cannot report an error.
    #[track_caller]
    fn cx(&self) -> CallCtx<'_, A> {
        match self.call_ctx() {
            Ok(cx) => cx,
            Err(e) => panic!("cowtable: no context for this call: {e}"),
        }
    }

    /// The page at `vaddr` gains one sharer (a fork): the seed's method.
    ///
    /// An untracked page gets an entry with two references (parent and
    /// child); a page tracked with the same frame gets one more reference.
    /// Takes `&self` (the seed took `&mut self`; callers are unchanged).
    /// `frame` is a [`FrameNumber`] or anything that converts into one.
    ///
    /// # Panics
    ///
    /// On every error, each of which changes nothing: [`Error::Invalid`]
    /// (`vaddr` not page aligned, frame above [`FRAME_MAX`](crate::FRAME_MAX)),
    /// [`Error::Exists`] (tracked with another frame), [`Error::Overflow`]
    /// (count at [`REFS_MAX`](crate::REFS_MAX)), [`Error::NoMemory`] (for the
    /// entry, or for the calling thread's first context).  The seed's
    /// signature cannot report them, and ignoring one would be unsound for
    /// a kernel: the caller is about to map the page read-only in two
    /// address spaces believing it tracked, so a later write fault would
    /// find it untracked (or with another frame) and write to the frame in
    /// place, under the other address space.  The seed aborted on
    /// allocation failure too (`BTreeMap::insert`).  Use
    /// [`try_mark`](Self::try_mark) to handle errors.
    #[track_caller]
    pub fn mark_cow<F: Into<FrameNumber>>(&self, vaddr: usize, frame: F) {
        let frame = frame.into();
        if let Err(e) = self.try_mark(vaddr, frame) {
            panic!("cowtable: mark_cow({vaddr:#x}, {}) failed: {e}", frame.as_u64());
        }
    }

    /// The page at `vaddr` gains one sharer; returns its new count (2 for a
    /// new entry, never 1).  See [`Context::try_mark`].
    ///
    /// # Errors
    ///
    /// As [`Context::try_mark`]; also [`Error::NoMemory`] when the calling
    /// thread needs a context and none can be allocated.
    pub fn try_mark(&self, vaddr: usize, frame: FrameNumber) -> Result<u32, Error> {
        self.call_ctx()?.try_mark(vaddr, frame)
    }

    /// The page at `vaddr` loses one sharer: the seed's method.  True if
    /// this call dropped the last reference: the entry is gone and the
    /// caller owns the frame (free it, or reuse it in place).
    ///
    /// False for a page still shared, and for one not tracked (including
    /// an unaligned `vaddr`).  Exactly one release per entry lifetime
    /// returns true; the count never goes below zero.
    /// [`try_release`](Self::try_release) also gives the frame.
    ///
    /// # Panics
    ///
    /// If the calling thread needs a context and none can be allocated:
    /// returning false would hide a reference.
    #[must_use = "true hands the frame over to the caller: free it or reuse it"]
    #[track_caller]
    pub fn release(&self, vaddr: usize) -> bool {
        self.cx().release(vaddr)
    }

    /// The page at `vaddr` loses one sharer.  See [`Context::try_release`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if `vaddr` is not page aligned;
    /// [`Error::NoMemory`] when the calling thread needs a context and none
    /// can be allocated.  Neither changes anything.
    pub fn try_release(&self, vaddr: usize) -> Result<Release, Error> {
        self.call_ctx()?.try_release(vaddr)
    }

    /// Whether the page at `vaddr` is tracked: the seed's method.  False
    /// for an unaligned address.
    ///
    /// # Panics
    ///
    /// If the calling thread needs a context and none can be allocated:
    /// false would let a write fault reuse a shared frame.
    #[track_caller]
    pub fn is_cow(&self, vaddr: usize) -> bool {
        self.cx().is_cow(vaddr)
    }

    /// The frame and reference count of the page at `vaddr`.  See
    /// [`Context::lookup`].
    ///
    /// # Panics
    ///
    /// As [`is_cow`](Self::is_cow).
    #[track_caller]
    pub fn lookup(&self, vaddr: usize) -> Option<Entry> {
        self.cx().lookup(vaddr)
    }

    /// Marks `frames.len()` pages from `start`.  See
    /// [`Context::mark_range`].
    ///
    /// # Errors
    ///
    /// As [`Context::mark_range`]; also [`Error::NoMemory`] with nothing
    /// marked when the calling thread needs a context and none can be
    /// allocated.
    pub fn mark_range(&self, start: usize, frames: &[FrameNumber]) -> Result<(), RangeError> {
        match self.call_ctx() {
            Ok(cx) => cx.mark_range(start, frames),
            Err(error) => Err(RangeError { error, marked: 0 }),
        }
    }

    /// Releases every page tracked in `range`, calling `last` with each
    /// frame handed back.  See [`Context::release_range`].
    ///
    /// # Panics
    ///
    /// As [`is_cow`](Self::is_cow); and see [`Context::release_range`] for
    /// a panic in `last`.
    #[track_caller]
    pub fn release_range<F: FnMut(usize, FrameNumber)>(&self, range: Range<usize>, last: F) -> usize {
        self.cx().release_range(range, last)
    }

    /// Visits every page tracked in `range`.  See [`Context::for_each`].
    ///
    /// # Panics
    ///
    /// As [`is_cow`](Self::is_cow); a panic in `visit` is resumed.
    #[track_caller]
    pub fn for_each<F: FnMut(Entry)>(&self, range: Range<usize>, visit: F) -> usize {
        self.cx().for_each(range, visit)
    }

    /// Visits pages tracked in `range` until `visit` returns false.  See
    /// [`Context::for_each_while`].
    ///
    /// # Panics
    ///
    /// As [`for_each`](Self::for_each).
    #[track_caller]
    pub fn for_each_while<F: FnMut(Entry) -> bool>(&self, range: Range<usize>, visit: F) -> usize {
        self.cx().for_each_while(range, visit)
    }

    /// The number of tracked pages: exact when no operation runs at the same
    /// time, otherwise a value the count had or was passing through.
    pub fn count(&self) -> usize {
        // SAFETY: the table is live; cowtable_count may run concurrently
        // with every operation.
        unsafe { ffi::cowtable_count(self.as_raw()) }
    }

    /// Whether no page is tracked (as exact as [`count`](Self::count)).
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }
}

impl<A: Allocator> Drop for CowTable<A> {
    fn drop(&mut self) {
        let p = self.inner.as_ptr();
        // SAFETY: we own the table: no borrow of it is left, so no Context
        // is out and no operation runs on any thread (a borrow that ended
        // on another thread happened before this drop).
        unsafe {
            #[cfg(feature = "std")]
            (*p).cache.revoke_all();
            // Every context is now put back, as cowtable_fini requires.
            ffi::cowtable_fini((*p).raw.get());
            Self::free_inner(p);
        }
    }
}

impl<A: Allocator> fmt::Debug for CowTable<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CowTable").field("count", &self.count()).finish_non_exhaustive()
    }
}
