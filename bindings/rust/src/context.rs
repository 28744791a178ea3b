// SPDX-License-Identifier: BSD-2-Clause
//! An explicit context: every operation, with no per-call overhead.

use core::fmt;
use core::ops::Range;
use core::ptr::NonNull;

use crate::callback::{last_trampoline, visit_trampoline, Callback};
use crate::{ffi, Allocator, CowTable, Entry, Error, FrameNumber, RangeError, Release};

/// A context of a table: what every operation runs on.
///
/// Taken with [`CowTable::context`] and given back to the table when
/// dropped (`cowtable_ctx_put`), to be reused by the next one taken.  The
/// borrow of the table keeps it alive, so it cannot be dropped while a
/// context is out.  A context that is leaked (`mem::forget`) stays checked
/// out, idle, until the table is dropped; `cowtable_fini` frees it with the
/// others.
///
/// # One thread at a time
///
/// A context holds an epoch record, a cache of free entries and a batch of
/// retired ones, all written without synchronization, so two threads must
/// never use one at once: `Context` is not `Sync`, and `&Context` cannot
/// cross threads.  It is `Send`: nothing in it belongs to a thread, and
/// moving it (which needs no borrow to be live, so no operation to be in
/// progress) hands it over with the happens-before edge that every move
/// between threads carries.  A kernel keeps one per CPU and uses it with
/// preemption disabled, or behind whatever guarantees one user at a time.
///
/// ```compile_fail
/// fn shared_between_threads<T: Sync>() {}
/// fn check<A: cowtable::Allocator>() {
///     shared_between_threads::<cowtable::Context<'static, A>>();
/// }
/// ```
///
/// # Re-entry
///
/// The closures of [`release_range`](Self::release_range) and
/// [`for_each`](Self::for_each) run outside the library's epoch section and
/// may call any method of this context (the contract allows it), or take
/// other contexts.  [`reclaim`](Self::reclaim) and
/// [`barrier`](Self::barrier) must run outside every call on the context, so
/// they take `&mut self`, which no closure can hold while a call is running.
pub struct Context<'t, A: Allocator> {
    raw: NonNull<ffi::cowtable_ctx>,
    table: &'t CowTable<A>,
}

// SAFETY: a context is not tied to a thread: the C contract asks only that
// one thread at a time use it, and moving a Context moves that right (no
// operation can be running: it would hold a borrow).  The move also moves
// `&CowTable<A>`, which needs CowTable<A>: Sync, i.e. A: Send + Sync.  No
// `Sync` impl: `raw` is written by every operation without locks.
unsafe impl<A: Allocator + Send + Sync> Send for Context<'_, A> {}

impl<'t, A: Allocator> Context<'t, A> {
    /// Wraps a context taken from `table` with `cowtable_ctx_get`.
    ///
    /// # Safety
    ///
    /// `raw` is a context of `table` that the caller owns: no other thread
    /// uses it while this one lives, another `Context` for it on this
    /// thread is used only from inside the closures of a call on this one
    /// (re-entry the contract allows), and it is given back (by dropping
    /// one such `Context`, or otherwise) once.
    pub(crate) unsafe fn from_raw(raw: NonNull<ffi::cowtable_ctx>, table: &'t CowTable<A>) -> Self {
        Context { raw, table }
    }

    /// The table this context belongs to.
    pub fn table(&self) -> &'t CowTable<A> {
        self.table
    }

    /// The C context, for calls through [`ffi`].  It stays owned by this
    /// `Context`: do not put it back, and use it on this thread only.
    pub fn as_raw(&self) -> *mut ffi::cowtable_ctx {
        self.raw.as_ptr()
    }

    /// The page at `vaddr` gains one sharer (a fork): the seed's `mark_cow`.
    ///
    /// An untracked page gets an entry with two references (parent and
    /// child); a page tracked with the same frame gets one more reference.
    ///
    /// # Panics
    ///
    /// On every error, each of which changes nothing:
    /// [`Error::Invalid`] (`vaddr` not page aligned, frame above
    /// [`FRAME_MAX`](crate::FRAME_MAX)), [`Error::Exists`] (tracked with
    /// another frame), [`Error::Overflow`] (count at
    /// [`REFS_MAX`](crate::REFS_MAX)), [`Error::NoMemory`].  The seed's
    /// signature has no way to report them, and going on would be unsound
    /// for the kernel: the caller is about to map the page read-only in two
    /// address spaces and believes it tracked, so a later write fault would
    /// find it untracked (or tracked with another frame) and write to the
    /// frame in place, under the other address space's feet.  The seed
    /// itself aborted on allocation failure (`BTreeMap::insert`).  Use
    /// [`try_mark`](Self::try_mark) to handle errors.
    #[track_caller]
    pub fn mark_cow<F: Into<FrameNumber>>(&self, vaddr: usize, frame: F) {
        let frame = frame.into();
        if let Err(e) = self.try_mark(vaddr, frame) {
            panic!("cowtable: mark_cow({vaddr:#x}, {}) failed: {e}", frame.as_u64());
        }
    }

    /// The page at `vaddr` gains one sharer; returns its new reference
    /// count (2 for a new entry, never 1).
    ///
    /// An entry whose last reference is being dropped at the same moment is
    /// never brought back: the mark then creates a fresh one.  A mark that
    /// returns happens before any release that observes its reference.
    ///
    /// # Errors
    ///
    /// Each changes nothing: [`Error::Invalid`] if `vaddr` is not page
    /// aligned or `frame` is above [`FRAME_MAX`](crate::FRAME_MAX);
    /// [`Error::Exists`] if the page is tracked with another frame;
    /// [`Error::Overflow`] if its count is already
    /// [`REFS_MAX`](crate::REFS_MAX); [`Error::NoMemory`] if a new entry was
    /// needed and the allocator failed.
    pub fn try_mark(&self, vaddr: usize, frame: FrameNumber) -> Result<u32, Error> {
        // SAFETY: `raw` is a live context of a live table (the borrow 't
        // keeps the table), used by this thread alone (Context is !Sync);
        // a call from inside one of our callbacks is allowed by the contract.
        let rc = unsafe { ffi::cowtable_mark(self.raw.as_ptr(), vaddr, frame.0) };
        if rc > 0 {
            Ok(rc as u32)
        } else {
            Err(Error::expect(rc, "cowtable_mark"))
        }
    }

    /// The page at `vaddr` loses one sharer: the seed's `release`.  True if
    /// this call dropped the last reference: the entry is gone and the
    /// caller owns the frame.
    ///
    /// False for a page still shared, and for one not tracked, including
    /// an unaligned `vaddr` (the seed's map had no such key either).
    /// [`try_release`](Self::try_release) tells these apart and gives the
    /// frame.
    #[must_use = "true hands the frame over to the caller: free it or reuse it"]
    pub fn release(&self, vaddr: usize) -> bool {
        matches!(self.try_release(vaddr), Ok(Release::Last(_)))
    }

    /// The page at `vaddr` loses one sharer.
    ///
    /// The count never goes below zero, and exactly one release per entry
    /// lifetime returns [`Release::Last`].  A thread that holds a reference
    /// never gets [`Release::NotCow`].  Ordering is `kref_put`'s: the
    /// caller's accesses to the frame happen before its decrement, and the
    /// caller that gets `Last` sees every other sharer's.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if `vaddr` is not page aligned (nothing changes).
    pub fn try_release(&self, vaddr: usize) -> Result<Release, Error> {
        let mut frame = 0u64;
        // SAFETY: as in try_mark; `frame` is a valid place for one frame.
        let rc = unsafe { ffi::cowtable_release(self.raw.as_ptr(), vaddr, &mut frame) };
        match rc {
            ffi::COWTABLE_NOT_COW => Ok(Release::NotCow),
            ffi::COWTABLE_SHARED => Ok(Release::Shared(FrameNumber(frame))),
            ffi::COWTABLE_LAST => Ok(Release::Last(FrameNumber(frame))),
            _ => Err(Error::expect(rc, "cowtable_release")),
        }
    }

    /// Whether the page at `vaddr` is tracked (at some moment during the
    /// call); false for an unaligned address.  Never blocks, never
    /// allocates, writes nothing but this context's epoch record.
    pub fn is_cow(&self, vaddr: usize) -> bool {
        // SAFETY: as in try_mark.
        unsafe { ffi::cowtable_is_cow(self.raw.as_ptr(), vaddr) }
    }

    /// The frame and reference count of the page at `vaddr`, true together
    /// at one moment during the call; None if it is not tracked (or
    /// `vaddr` is unaligned).
    pub fn lookup(&self, vaddr: usize) -> Option<Entry> {
        let mut frame = 0u64;
        let mut refs = 0u32;
        // SAFETY: as in try_mark; both outputs are valid places.
        let found = unsafe { ffi::cowtable_lookup(self.raw.as_ptr(), vaddr, &mut frame, &mut refs) };
        if found {
            Some(Entry {
                vaddr,
                frame: FrameNumber(frame),
                refs,
            })
        } else {
            None
        }
    }

    /// [`try_mark`](Self::try_mark) for `frames.len()` consecutive pages
    /// from `start`: page `i` is `start + i * PAGE_SIZE` and gets
    /// `frames[i]`.
    ///
    /// Pages are marked in ascending order, each as by `try_mark`, at O(1)
    /// amortized cost per page (each search starts where the previous one
    /// ended).  The walk leaves the library's epoch section every few
    /// 64-page blocks, so a long range holds back other contexts'
    /// reclamation for a bounded time.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`], with nothing done, if `start` is not page
    /// aligned, `frames` is empty, the range wraps past the top of the
    /// address space, or any frame is above [`FRAME_MAX`](crate::FRAME_MAX)
    /// (every frame is checked before anything is marked).  Otherwise the
    /// first error of `try_mark` ([`Error::Exists`], [`Error::Overflow`],
    /// [`Error::NoMemory`]), with the number of pages marked before it:
    /// those stay marked, the rest are unchanged.
    pub fn mark_range(&self, start: usize, frames: &[FrameNumber]) -> Result<(), RangeError> {
        let mut marked = 0usize;
        // SAFETY: as in try_mark.  FrameNumber is repr(transparent) over
        // u64, so `frames` is `frames.len()` cowtable_frame_t the library
        // reads during the call only; `marked` is a valid place.
        let rc = unsafe {
            ffi::cowtable_mark_range(
                self.raw.as_ptr(),
                start,
                frames.len(),
                frames.as_ptr().cast::<u64>(),
                &mut marked,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(RangeError {
                error: Error::expect(rc, "cowtable_mark_range"),
                marked,
            })
        }
    }

    /// Releases one reference of every page tracked in `range`, in
    /// ascending order, and calls `last(vaddr, frame)` for each page whose
    /// last reference it dropped: the caller owns that frame.  Returns the
    /// number of pages released (shared or last); 0 for an empty range.
    ///
    /// A page marked or released concurrently is handled as if the two
    /// calls ran in some order; a page first tracked after the walk passed
    /// its address is left alone.  `last` runs outside the library's epoch
    /// section, in ascending order, and may call this context's methods.
    ///
    /// If `last` panics (with `std`), the walk still goes to the end of the
    /// range, `last` is still called for each later last reference (no
    /// frame is lost), and the first panic is resumed afterwards.  Without
    /// `std` a panic in `last` aborts.
    pub fn release_range<F: FnMut(usize, FrameNumber)>(&self, range: Range<usize>, last: F) -> usize {
        let mut cb = Callback::new(last);
        // SAFETY: as in try_mark.  The trampoline is instantiated for F and
        // `cb.arg()` points to `cb`, which outlives the call; C calls it
        // only during the call, on this thread.
        let released = unsafe {
            ffi::cowtable_release_range(
                self.raw.as_ptr(),
                range.start,
                range.end,
                Some(last_trampoline::<F>),
                cb.arg(),
            )
        };
        cb.finish();
        released
    }

    /// Calls `visit` with each page tracked in `range`, in ascending
    /// order; returns how many it visited.
    ///
    /// Weakly consistent: every entry present for the whole call is
    /// visited once; entries created or removed during the call may or may
    /// not be.  `visit` gets copies and runs outside the library's epoch
    /// section: it may block or call this context's methods.
    pub fn for_each<F: FnMut(Entry)>(&self, range: Range<usize>, mut visit: F) -> usize {
        self.for_each_while(range, |e| {
            visit(e);
            true
        })
    }

    /// As [`for_each`](Self::for_each), stopping after the first call of
    /// `visit` that returns false (which is counted).
    ///
    /// A panic in `visit` (with `std`) stops the walk and is resumed once
    /// the C call has returned; without `std` it aborts.
    pub fn for_each_while<F: FnMut(Entry) -> bool>(&self, range: Range<usize>, visit: F) -> usize {
        let mut cb = Callback::new(visit);
        // SAFETY: as in release_range, with visit_trampoline.
        let visited = unsafe {
            ffi::cowtable_foreach(
                self.raw.as_ptr(),
                range.start,
                range.end,
                Some(visit_trampoline::<F>),
                cb.arg(),
            )
        };
        cb.finish();
        visited
    }

    /// The number of tracked pages in the table: [`CowTable::count`].
    pub fn count(&self) -> usize {
        self.table.count()
    }

    /// Whether no page is tracked: [`CowTable::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Frees what this context retired, as far as grace periods allow.
    ///
    /// Marks and releases do this on their own every 16 leaves they retire
    /// and every 64 calls while leaves are pending, so the backlog is freed
    /// by this context's later calls without it; a context that makes no
    /// more calls keeps it.  Call it where a kernel has idle time to keep
    /// the backlog short.  Never blocks.
    pub fn reclaim(&mut self) {
        // SAFETY: `&mut self`: no call on this context is running (no
        // closure of ours can hold `&mut`), as the contract requires.
        unsafe { ffi::cowtable_reclaim(self.raw.as_ptr()) }
    }

    /// Waits until no section that could still read a leaf this context
    /// retired runs (three epoch advances past each batch's seal), then
    /// frees everything it retired.
    ///
    /// Spins (never sleeps) while another context of the table is inside an
    /// operation.  Calling it from a closure that another context's range
    /// operation runs is allowed (those closures run outside the epoch
    /// section), but a thread that spins here while it holds another
    /// context inside an operation would wait for itself.
    pub fn barrier(&mut self) {
        // SAFETY: as in reclaim.
        unsafe { ffi::cowtable_barrier(self.raw.as_ptr()) }
    }
}

impl<A: Allocator> Drop for Context<'_, A> {
    fn drop(&mut self) {
        // SAFETY: this Context owns `raw` (from_raw's contract) and no call
        // on it is running (`&mut self`); it is put back once, here.
        unsafe { ffi::cowtable_ctx_put(self.raw.as_ptr()) }
    }
}

impl<A: Allocator> fmt::Debug for Context<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("raw", &self.raw).finish_non_exhaustive()
    }
}

/// Checks that `raw` is non-null: a context from `cowtable_ctx_get`.
pub(crate) fn ctx_or_nomem(raw: *mut ffi::cowtable_ctx) -> Result<NonNull<ffi::cowtable_ctx>, Error> {
    NonNull::new(raw).ok_or(Error::NoMemory)
}
