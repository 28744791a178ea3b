// SPDX-License-Identifier: BSD-2-Clause
//! The raw declarations of `include/cowtable.h`.
//!
//! Everything here is unsafe to use; [`CowTable`](crate::CowTable) and
//! [`Context`](crate::Context) are the safe interface.  The header is the
//! contract: each function's context, concurrency rules, return codes and
//! memory ordering are documented there.  `int` is `i32`, `size_t` and
//! `uintptr_t` are `usize`, `bool` is `bool`.
#![allow(non_camel_case_types)]

use core::ffi::c_void;
use core::fmt;
use core::marker::{PhantomData, PhantomPinned};

/// `cowtable_frame_t`.
pub type cowtable_frame_t = u64;

/// `COWTABLE_PRIVATE_WORDS`: the size of `struct cowtable` in `u64` words.
pub const COWTABLE_PRIVATE_WORDS: usize = 32;

/// `COWTABLE_ENOMEM`.
pub const COWTABLE_ENOMEM: i32 = -12;
/// `COWTABLE_EEXIST`.
pub const COWTABLE_EEXIST: i32 = -17;
/// `COWTABLE_EINVAL`.
pub const COWTABLE_EINVAL: i32 = -22;
/// `COWTABLE_EOVERFLOW`.
pub const COWTABLE_EOVERFLOW: i32 = -75;

/// `COWTABLE_NOT_COW`.
pub const COWTABLE_NOT_COW: i32 = 0;
/// `COWTABLE_SHARED`.
pub const COWTABLE_SHARED: i32 = 1;
/// `COWTABLE_LAST`.
pub const COWTABLE_LAST: i32 = 2;

/// `struct cowtable_allocator`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct cowtable_allocator {
    /// May return NULL.
    pub alloc: Option<unsafe extern "C" fn(size: usize, arg: *mut c_void) -> *mut c_void>,
    /// Receives the size that `alloc` was asked for.
    pub free: Option<unsafe extern "C" fn(ptr: *mut c_void, size: usize, arg: *mut c_void)>,
    /// Passed to both.
    pub arg: *mut c_void,
}

/// The private words of `struct cowtable`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union cowtable_private {
    /// `uint64_t words[COWTABLE_PRIVATE_WORDS]`.
    pub words: [u64; COWTABLE_PRIVATE_WORDS],
    /// `void *align`.
    pub align: *mut c_void,
}

impl fmt::Debug for cowtable_private {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cowtable_private { .. }")
    }
}

/// `struct cowtable`: embeddable, and it must not move after
/// `cowtable_init()` (contexts point into it).
#[repr(C)]
#[derive(Debug)]
pub struct cowtable {
    /// Private to the library.
    pub private_: cowtable_private,
}

impl cowtable {
    /// All zero, as the table is before `cowtable_init()`.
    pub const ZEROED: cowtable = cowtable {
        private_: cowtable_private {
            words: [0; COWTABLE_PRIVATE_WORDS],
        },
    };
}

/// `struct cowtable_ctx`: opaque, owned by its table.
#[repr(C)]
#[derive(Debug)]
pub struct cowtable_ctx {
    _opaque: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `cowtable_last_fn`.
pub type cowtable_last_fn = unsafe extern "C" fn(vaddr: usize, frame: cowtable_frame_t, arg: *mut c_void);

/// `cowtable_visit_fn`.
pub type cowtable_visit_fn =
    unsafe extern "C" fn(vaddr: usize, frame: cowtable_frame_t, refs: u32, arg: *mut c_void) -> bool;

extern "C" {
    /// Makes `table` an empty table; 0 or a negative error.
    pub fn cowtable_init(table: *mut cowtable, allocator: *const cowtable_allocator) -> i32;
    /// Frees everything of `table`; no context may be in use.
    pub fn cowtable_fini(table: *mut cowtable);
    /// Takes a context for the calling thread; NULL if the allocator failed.
    pub fn cowtable_ctx_get(table: *mut cowtable) -> *mut cowtable_ctx;
    /// Gives a context back to its table.
    pub fn cowtable_ctx_put(ctx: *mut cowtable_ctx);
    /// The page gains one sharer; the new count, or a negative error.
    pub fn cowtable_mark(ctx: *mut cowtable_ctx, vaddr: usize, frame: cowtable_frame_t) -> i32;
    /// The page loses one sharer: NOT_COW, SHARED, LAST or EINVAL.
    pub fn cowtable_release(ctx: *mut cowtable_ctx, vaddr: usize, frame: *mut cowtable_frame_t) -> i32;
    /// Whether the page is tracked.
    pub fn cowtable_is_cow(ctx: *mut cowtable_ctx, vaddr: usize) -> bool;
    /// The frame and count of a tracked page.
    pub fn cowtable_lookup(
        ctx: *mut cowtable_ctx,
        vaddr: usize,
        frame: *mut cowtable_frame_t,
        refs: *mut u32,
    ) -> bool;
    /// The number of tracked pages.
    pub fn cowtable_count(table: *const cowtable) -> usize;
    /// Frees what the context retired, as far as grace periods allow.
    pub fn cowtable_reclaim(ctx: *mut cowtable_ctx);
    /// Waits until every batch the context retired is three epoch advances
    /// old (or no section runs), then frees them all.
    pub fn cowtable_barrier(ctx: *mut cowtable_ctx);
    /// `cowtable_mark` for `npages` consecutive pages.
    pub fn cowtable_mark_range(
        ctx: *mut cowtable_ctx,
        start: usize,
        npages: usize,
        frames: *const cowtable_frame_t,
        marked: *mut usize,
    ) -> i32;
    /// `cowtable_release` for every tracked page in `[start, end)`.
    pub fn cowtable_release_range(
        ctx: *mut cowtable_ctx,
        start: usize,
        end: usize,
        last: Option<cowtable_last_fn>,
        arg: *mut c_void,
    ) -> usize;
    /// Visits the tracked pages in `[start, end)`.
    pub fn cowtable_foreach(
        ctx: *mut cowtable_ctx,
        start: usize,
        end: usize,
        visit: Option<cowtable_visit_fn>,
        arg: *mut c_void,
    ) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{align_of, size_of};

    #[test]
    fn struct_cowtable_has_the_header_layout() {
        assert_eq!(size_of::<cowtable>(), COWTABLE_PRIVATE_WORDS * 8);
        assert_eq!(align_of::<cowtable>(), align_of::<u64>().max(align_of::<*mut c_void>()));
        assert_eq!(size_of::<cowtable_allocator>(), 3 * size_of::<usize>());
    }
}
