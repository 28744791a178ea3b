// SPDX-License-Identifier: BSD-2-Clause
//! Copy-on-write shared frames, tracked by virtual page address.
//!
//! A [`CowTable`] maps a page-aligned virtual address to the physical frame
//! it shares and to the number of address spaces that share it.  `fork()`
//! marks each page (one more sharer), a write fault or an unmap releases it
//! (one sharer fewer), and the release that drops the last reference hands
//! the frame back so that it can be freed, or reused in place without a
//! copy.  Underneath is libcowtable, a lock-free skip list on Concurrency
//! Kit (`ck_pr`, `ck_epoch`): lookups never block and never write shared
//! memory, marks and releases never take a lock.
//!
//! # Switching from the seed's `CowTable`
//!
//! The seed's four methods, `Default`, `Send + Sync` and [`FrameNumber`]
//! are here with the same names and meanings, so its users switch by
//! changing one `use`.  Its unit test, unchanged but for the `use`:
//!
//! ```
//! use cowtable::{CowTable, FrameNumber};
//!
//! let mut table = CowTable::new();
//! let frame = FrameNumber::new(100);
//! table.mark_cow(0x1000, frame);
//!
//! assert!(table.is_cow(0x1000));
//! assert!(!table.is_cow(0x2000));
//!
//! // First release: ref goes from 2 -> 1, not last
//! assert!(!table.release(0x1000));
//! // Second release: ref goes from 1 -> 0, last ref
//! assert!(table.release(0x1000));
//! # assert!(!table.is_cow(0x1000));
//! # let _ = &mut table;
//! ```
//!
//! Three behaviours differ, each because the seed's was a bug: a release
//! at the last reference removes the entry (the seed left it, so the page
//! stayed "COW" forever and a third release wrapped the count); `mark_cow`
//! on a tracked page with the same frame adds a reference instead of
//! resetting the count to 2; and with another frame it changes nothing (the
//! seed replaced the frame, losing the old one).  `mark_cow` cannot report
//! an error, so it panics on one; see its documentation, and
//! [`try_mark`](CowTable::try_mark) for the fallible form.
//!
//! # Contexts
//!
//! Every operation of the C library runs on a context (`struct
//! cowtable_ctx`): the epoch record that protects its reads, a cache of free
//! entries and its retired entries.  A context is used by one thread at a
//! time; the table by any number of contexts at once.
//!
//! - [`Context`] is an explicit context, taken with [`CowTable::context`]
//!   and given back when dropped.  A kernel takes one per CPU at boot and
//!   uses it with preemption disabled; a hypervisor one per vCPU thread.
//!   It is `Send` (a context is not bound to a thread: moving it hands it
//!   over) but not `Sync` (two threads must never use it at once).  This is
//!   the fast path: no per-call overhead at all.
//! - [`CowTable`]'s own methods find a context for each call.  With the
//!   `std` feature, each thread keeps one per table in a thread-local cache
//!   (taken on the thread's first call, given back when the thread exits or
//!   the table is dropped): a thread-local lookup per call.  Without `std`
//!   there is no thread-local storage, so each call takes a parked context
//!   from the table (`cowtable_ctx_get`: a scan of the table's context list
//!   and one compare-and-swap) and parks it again (`cowtable_ctx_put`, which
//!   also polls reclamation): some tens of nanoseconds per call, growing
//!   with the number of contexts.  Contexts are never freed before the table, so
//!   the table holds as many as were ever in use at once.
//!
//! # Features
//!
//! - `std` (default): the per-thread context cache, panics in closures
//!   caught at the C boundary and resumed after it, `std::error::Error`.
//! - `alloc` (implied by `std`): `CowTable::new` and `Default`, backed by
//!   the global allocator (`Global`).  Without it, tables are made with
//!   [`CowTable::with_allocator`].
//!
//! With neither, the crate is `no_std` and needs nothing but `core`, the C
//! library and an [`Allocator`].
//!
//! # Panics in closures
//!
//! The closures given to [`release_range`](Context::release_range) and
//! [`for_each`](Context::for_each) are called from C.  With `std`, a panic
//! in one is caught, the C call finishes (a release walk goes on to the end
//! of its range and still hands every LAST frame to the closure; a
//! `for_each` walk stops), and the panic is then resumed.  Without `std` a
//! panic that would cross into C aborts: build kernels with
//! `panic = "abort"`.  An [`Allocator`] must never unwind.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, missing_debug_implementations)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod allocator;
#[cfg(feature = "std")]
mod cache;
mod callback;
mod context;
pub mod ffi;
mod table;

#[cfg(feature = "alloc")]
pub use allocator::Global;
pub use allocator::{Allocator, MIN_ALIGN};
pub use context::Context;
pub use table::CowTable;

use core::fmt;

/// Bytes in a page: every address given to a table is a multiple of it.
///
/// `COWTABLE_PAGE_SIZE` of a library built with the default
/// `COWTABLE_PAGE_SHIFT` of 12.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// The largest frame number a table accepts (`COWTABLE_FRAME_MAX`,
/// 2^40 - 1): a mark with a larger one fails with [`Error::Invalid`].
pub const FRAME_MAX: u64 = (1 << 40) - 1;

/// The largest reference count (`COWTABLE_REFS_MAX`, 2^24 - 1): a mark of a
/// page already shared this many times fails with [`Error::Overflow`].
pub const REFS_MAX: u32 = (1 << 24) - 1;

/// A physical frame number (a physical address divided by the page size).
///
/// The seed's type, with its `new` and `as_u64`.  A table accepts frame
/// numbers up to [`FRAME_MAX`]; `new` does not check, the table does.
///
/// A kernel that has a frame type of its own can pass it to
/// [`CowTable::mark_cow`] once it converts into this one:
///
/// ```
/// # mod mm { #[derive(Clone, Copy)] pub struct FrameNumber(pub u64); }
/// impl From<mm::FrameNumber> for cowtable::FrameNumber {
///     fn from(f: mm::FrameNumber) -> Self {
///         cowtable::FrameNumber::new(f.0)
///     }
/// }
/// # let table = cowtable::CowTable::new();
/// table.mark_cow(0x5000, mm::FrameNumber(7));
/// # assert!(table.is_cow(0x5000));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct FrameNumber(u64);

impl FrameNumber {
    /// The frame with this number.
    pub const fn new(number: u64) -> Self {
        FrameNumber(number)
    }

    /// Its number.
    pub const fn as_u64(&self) -> u64 {
        self.0
    }
}

impl From<u64> for FrameNumber {
    fn from(number: u64) -> Self {
        FrameNumber(number)
    }
}

impl From<FrameNumber> for u64 {
    fn from(frame: FrameNumber) -> u64 {
        frame.0
    }
}

/// Why an operation failed.  Every error changes nothing.
///
/// The discriminants are the C library's codes (negative Linux errno
/// values), so `error as i32` is what a kernel returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Error {
    /// `COWTABLE_ENOMEM` (-12): the allocator failed (a new entry or a new
    /// context was needed).
    NoMemory = ffi::COWTABLE_ENOMEM,
    /// `COWTABLE_EEXIST` (-17): the page is tracked with another frame.
    Exists = ffi::COWTABLE_EEXIST,
    /// `COWTABLE_EINVAL` (-22): the address is not page aligned, the frame
    /// is above [`FRAME_MAX`], or a range is empty or wraps.
    Invalid = ffi::COWTABLE_EINVAL,
    /// `COWTABLE_EOVERFLOW` (-75): the page's count is already
    /// [`REFS_MAX`].
    Overflow = ffi::COWTABLE_EOVERFLOW,
}

impl Error {
    /// The error a C return code stands for; None for a code that is not an
    /// error.
    pub const fn from_code(code: i32) -> Option<Error> {
        match code {
            ffi::COWTABLE_ENOMEM => Some(Error::NoMemory),
            ffi::COWTABLE_EEXIST => Some(Error::Exists),
            ffi::COWTABLE_EINVAL => Some(Error::Invalid),
            ffi::COWTABLE_EOVERFLOW => Some(Error::Overflow),
            _ => None,
        }
    }

    /// The C library's code: a negative errno value.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// For a code that the contract says a call cannot return.
    #[cold]
    #[track_caller]
    pub(crate) fn expect(code: i32, call: &str) -> Error {
        match Error::from_code(code) {
            Some(e) => e,
            None => panic!("cowtable: {call} returned {code}, which its contract rules out"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::NoMemory => "out of memory",
            Error::Exists => "page already tracked with another frame",
            Error::Invalid => "invalid argument",
            Error::Overflow => "reference count at its maximum",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

/// What a release did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Release {
    /// The page is not tracked; nothing changed.
    NotCow,
    /// One reference dropped, at least one remains: the frame is still
    /// shared (copy it for a write fault).
    Shared(FrameNumber),
    /// This call dropped the last reference and the entry is gone: the
    /// caller owns the frame (free it, or reuse it in place).
    Last(FrameNumber),
}

impl Release {
    /// True for [`Release::Last`]: what the seed's `release` returned.
    pub const fn is_last(&self) -> bool {
        matches!(self, Release::Last(_))
    }

    /// The entry's frame, unless [`Release::NotCow`].
    pub const fn frame(&self) -> Option<FrameNumber> {
        match *self {
            Release::NotCow => None,
            Release::Shared(f) | Release::Last(f) => Some(f),
        }
    }
}

/// A tracked page, as [`Context::lookup`] and [`Context::for_each`] see it:
/// copies, true together at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The page's virtual address.
    pub vaddr: usize,
    /// The frame it shares.
    pub frame: FrameNumber,
    /// How many address spaces share it (at least 1).
    pub refs: u32,
}

/// A [`mark_range`](Context::mark_range) that stopped at an error.
///
/// Pages before the failing one stay marked (undo them with
/// [`release_range`](Context::release_range) over the first `marked`
/// pages); the failing page and those after it are unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RangeError {
    /// What went wrong with page number `marked`.
    pub error: Error,
    /// How many pages, from the start, were marked.
    pub marked: usize,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} after marking {} pages", self.error, self.marked)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RangeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_the_c_library_codes() {
        for (e, code) in [
            (Error::NoMemory, -12),
            (Error::Exists, -17),
            (Error::Invalid, -22),
            (Error::Overflow, -75),
        ] {
            assert_eq!(e.code(), code);
            assert_eq!(e as i32, code);
            assert_eq!(Error::from_code(code), Some(e));
        }
        for code in [0, 1, 2, -1, -11, i32::MIN] {
            assert_eq!(Error::from_code(code), None);
        }
    }

    #[test]
    fn limits_are_the_new_contract() {
        assert_eq!(FRAME_MAX, 0xff_ffff_ffff);
        assert_eq!(REFS_MAX, 0xff_ffff);
        assert_eq!(PAGE_SIZE, 4096);
    }

    #[test]
    fn frame_number_round_trips() {
        let f = FrameNumber::new(FRAME_MAX);
        assert_eq!(f.as_u64(), FRAME_MAX);
        assert_eq!(u64::from(f), FRAME_MAX);
        assert_eq!(FrameNumber::from(7u64), FrameNumber::new(7));
        assert_eq!(core::mem::size_of::<FrameNumber>(), 8);
    }

    #[test]
    fn release_accessors() {
        let f = FrameNumber::new(3);
        assert!(Release::Last(f).is_last());
        assert!(!Release::Shared(f).is_last());
        assert!(!Release::NotCow.is_last());
        assert_eq!(Release::Shared(f).frame(), Some(f));
        assert_eq!(Release::Last(f).frame(), Some(f));
        assert_eq!(Release::NotCow.frame(), None);
    }
}
