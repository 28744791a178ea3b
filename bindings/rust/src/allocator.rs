// SPDX-License-Identifier: BSD-2-Clause
//! Where a table gets its memory: the C library's `struct cowtable_allocator`.

use core::ffi::c_void;

/// The alignment every block from an [`Allocator`] must have, in bytes.
///
/// The library stores 64-bit words and pointers in what it allocates (and
/// aligns its contexts itself), so eight bytes are enough: what `malloc`,
/// `kmalloc` and most slab allocators give.
///
/// A table keeps its allocator inside a block from that allocator, so an
/// allocator type aligned above `MIN_ALIGN` is refused at compile time:
///
/// ```compile_fail
/// #[repr(align(64))]
/// struct PerCpuPool;
///
/// // SAFETY: never hands out a block.
/// unsafe impl cowtable::Allocator for PerCpuPool {
///     fn alloc(&self, _size: usize) -> *mut u8 {
///         core::ptr::null_mut()
///     }
///     unsafe fn free(&self, _ptr: *mut u8, _size: usize) {}
/// }
///
/// let _ = cowtable::CowTable::try_with_allocator(PerCpuPool);
/// ```
pub const MIN_ALIGN: usize = 8;

/// A memory source for a table: the `struct cowtable_allocator` hook.
///
/// In a `no_std` kernel there is no `malloc`; the table takes every byte it
/// needs from here: its own control block, its leaves (one per block of 64
/// pages that has a tracked page, 536 + 8h bytes for a tower of height h),
/// its contexts, and the skip list's head.  A table gives back every byte it
/// took, with the size it asked for, by the time it is dropped.
///
/// `alloc` and `free` are called from inside table operations, on the
/// calling thread, possibly inside an epoch section, and from several
/// threads at once when the table is shared (a `CowTable<A>` is `Sync` only
/// if `A` is).  In a kernel they must not sleep (`GFP_ATOMIC`, or a per-CPU
/// pool).
///
/// # Safety
///
/// An implementation must guarantee that:
/// - `alloc(size)` returns either null or a block of at least `size` bytes,
///   aligned to [`MIN_ALIGN`], that nothing else uses until it is passed to
///   `free`;
/// - `free(ptr, size)` accepts every block that `alloc` returned, with the
///   size it was asked for;
/// - neither unwinds (a panic must abort, or be impossible) and neither
///   calls into a table or context that uses this allocator: they run in the
///   middle of the library's operations.
pub unsafe trait Allocator {
    /// A block of `size` bytes (never 0), aligned to [`MIN_ALIGN`]; null if
    /// there is no memory, which makes the operation that asked fail with
    /// [`Error::NoMemory`](crate::Error::NoMemory) and change nothing.
    fn alloc(&self, size: usize) -> *mut u8;

    /// Gives back a block.
    ///
    /// # Safety
    ///
    /// `ptr` came from `self.alloc(size)` with this `size`, and is not used
    /// afterwards.
    unsafe fn free(&self, ptr: *mut u8, size: usize);
}

// SAFETY: forwards to `A`, which upholds the trait's contract.
unsafe impl<A: Allocator + ?Sized> Allocator for &A {
    fn alloc(&self, size: usize) -> *mut u8 {
        (**self).alloc(size)
    }

    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        // SAFETY: the caller's guarantee is the one `A::free` needs.
        unsafe { (**self).free(ptr, size) }
    }
}

/// The global allocator (`#[global_allocator]`, or the system's under
/// `std`): what [`CowTable::new`](crate::CowTable::new) uses, as the seed's
/// `BTreeMap` did.  Available with the `alloc` feature.
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Global;

#[cfg(feature = "alloc")]
// SAFETY: blocks come from the global allocator with the layout
// (size, MIN_ALIGN) and go back with the same layout; neither call unwinds
// (an allocation failure returns null).
unsafe impl Allocator for Global {
    fn alloc(&self, size: usize) -> *mut u8 {
        match core::alloc::Layout::from_size_align(size, MIN_ALIGN) {
            // SAFETY: the layout has a non-zero size.
            Ok(layout) if size != 0 => unsafe { alloc::alloc::alloc(layout) },
            _ => core::ptr::null_mut(),
        }
    }

    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        // SAFETY: `ptr` came from `alloc(size)`, so this layout is valid and
        // is the one it was allocated with.
        unsafe {
            let layout = core::alloc::Layout::from_size_align_unchecked(size, MIN_ALIGN);
            alloc::alloc::dealloc(ptr, layout)
        }
    }
}

/// The hook the C library calls: `arg` is the `&A` the table owns.
pub(crate) unsafe extern "C" fn alloc_hook<A: Allocator>(size: usize, arg: *mut c_void) -> *mut c_void {
    let guard = crate::callback::AbortOnUnwind("cowtable: an Allocator::alloc unwound");
    // SAFETY: `arg` points to the allocator inside the table's control block,
    // which lives (and does not move) until after cowtable_fini().
    let a = unsafe { &*(arg as *const A) };
    let p = a.alloc(size);
    core::mem::forget(guard);
    p.cast()
}

/// The hook the C library calls to give a block back.
pub(crate) unsafe extern "C" fn free_hook<A: Allocator>(ptr: *mut c_void, size: usize, arg: *mut c_void) {
    let guard = crate::callback::AbortOnUnwind("cowtable: an Allocator::free unwound");
    // SAFETY: as in alloc_hook.
    let a = unsafe { &*(arg as *const A) };
    // SAFETY: the library frees only what it allocated through alloc_hook,
    // with the same size (cowtable.h: "free receives the same size that
    // alloc was asked for").
    unsafe { a.free(ptr.cast(), size) };
    core::mem::forget(guard);
}
