// SPDX-License-Identifier: BSD-2-Clause
//! With `std`: each thread keeps one context per table it has used.
//!
//! A thread takes a context from a table on its first call and keeps it in
//! a thread-local list, keyed by the table's id (never reused, unlike an
//! address).  The context goes back to the table either when the thread
//! exits (the list's destructor puts it) or when the table is dropped first
//! (the table puts it on the thread's behalf).  Those two can race, so each
//! context has a [`Slot`] shared by the thread and the table, whose state
//! says who puts it:
//!
//! ```text
//! HELD --thread exits--> PUTTING --ctx_put done--> RETURNED
//!   \
//!    `--table dropped--> REVOKED   (the table put it; the thread's entry is stale)
//! ```
//!
//! The table's drop waits (spins) while a slot is PUTTING, so it calls
//! `cowtable_fini` only after every exiting thread's `cowtable_ctx_put` has
//! returned.  Between those two events the context is the thread's alone:
//! it is used only inside a method call, which borrows the table, so the
//! table cannot be dropped meanwhile.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};
use std::vec::Vec;

use crate::{ffi, Error};

const HELD: u8 = 0;
const PUTTING: u8 = 1;
const RETURNED: u8 = 2;
const REVOKED: u8 = 3;

/// One context held by one thread's cache.
struct Slot {
    state: AtomicU8,
    ctx: NonNull<ffi::cowtable_ctx>,
}

// SAFETY: `ctx` is only passed to C by whoever moves `state` out of HELD
// (exactly one party), and by its owning thread while HELD.
unsafe impl Send for Slot {}
// SAFETY: as for Send; `state` is atomic.
unsafe impl Sync for Slot {}

/// The table's side: every context that some thread's cache holds.
pub(crate) struct Registry {
    id: u64,
    slots: Mutex<Vec<Arc<Slot>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            slots: Mutex::new(Vec::new()),
        }
    }

    fn register(&self, slot: Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        // Contexts their threads gave back are the table's again.
        slots.retain(|s| s.state.load(Ordering::Acquire) != RETURNED);
        slots.push(slot);
    }

    /// Puts back every context a thread cache still holds, or waits for
    /// the thread that is putting it back.  Called by the table's drop,
    /// before `cowtable_fini`.
    ///
    /// # Safety
    ///
    /// `table` is the table this registry belongs to, and no operation on
    /// it is running on any thread (the caller owns it).
    pub(crate) unsafe fn revoke_all(&mut self) {
        let slots = core::mem::take(self.slots.get_mut().unwrap_or_else(PoisonError::into_inner));
        for slot in slots {
            loop {
                match slot
                    .state
                    .compare_exchange(HELD, REVOKED, Ordering::Acquire, Ordering::Acquire)
                {
                    Ok(_) => {
                        // SAFETY: the slot was HELD and is now REVOKED, so
                        // its thread will never touch the context again;
                        // its last use ended before the table's owner could
                        // drop it (that use borrowed the table).  The table
                        // is alive: cowtable_fini has not run.
                        unsafe { ffi::cowtable_ctx_put(slot.ctx.as_ptr()) };
                        break;
                    }
                    // Its thread is exiting and putting it back: a few
                    // hundred nanoseconds, never blocking.
                    Err(PUTTING) => std::thread::yield_now(),
                    // RETURNED (Acquire: that put happened before us) or
                    // already REVOKED.
                    Err(_) => break,
                }
            }
        }
    }
}

/// One thread's context for one table.
struct CacheEntry {
    id: u64,
    ctx: NonNull<ffi::cowtable_ctx>,
    slot: Arc<Slot>,
}

struct ThreadCache(Vec<CacheEntry>);

impl Drop for ThreadCache {
    fn drop(&mut self) {
        for e in self.0.drain(..) {
            if e.slot
                .state
                .compare_exchange(HELD, PUTTING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: HELD -> PUTTING: the table has not revoked the
                // context, and its drop waits for RETURNED before
                // cowtable_fini, so the table is alive; the context is this
                // thread's, and no call on it is running (the thread is
                // exiting).
                unsafe { ffi::cowtable_ctx_put(e.ctx.as_ptr()) };
                e.slot.state.store(RETURNED, Ordering::Release);
            }
        }
    }
}

std::thread_local! {
    static CACHE: RefCell<ThreadCache> = const { RefCell::new(ThreadCache(Vec::new())) };
}

/// The calling thread's context of `table`, whose registry is `reg`.
///
/// None if the thread's cache is gone (the thread is exiting: the caller
/// takes a context for the call alone); `Some(Err(NoMemory))` if the thread
/// had none and the table could not allocate one.
///
/// # Safety
///
/// `table` is the live table `reg` belongs to, and the caller borrows it
/// for as long as it uses the returned context.
pub(crate) unsafe fn thread_ctx(
    reg: &Registry,
    table: *mut ffi::cowtable,
) -> Option<Result<NonNull<ffi::cowtable_ctx>, Error>> {
    // No borrow of the cache is held past these closures, so a closure of
    // ours that calls back into a table (the contract allows it) finds the
    // cache free.
    let hit = CACHE.try_with(|c| c.borrow().0.iter().find(|e| e.id == reg.id).map(|e| e.ctx));
    match hit {
        Err(_) => return None,
        Ok(Some(ctx)) => return Some(Ok(ctx)),
        Ok(None) => {}
    }

    // SAFETY: `table` is live (the caller's guarantee).
    let ctx = match NonNull::new(unsafe { ffi::cowtable_ctx_get(table) }) {
        Some(ctx) => ctx,
        None => return Some(Err(Error::NoMemory)),
    };
    let slot = Arc::new(Slot {
        state: AtomicU8::new(HELD),
        ctx,
    });
    let entry = CacheEntry {
        id: reg.id,
        ctx,
        slot: slot.clone(),
    };
    let cached = CACHE.try_with(move |c| {
        let mut c = c.borrow_mut();
        // Entries of dropped tables.
        c.0.retain(|e| e.slot.state.load(Ordering::Relaxed) != REVOKED);
        c.0.push(entry);
    });
    if cached.is_err() {
        // SAFETY: the context was taken above and is in no cache.
        unsafe { ffi::cowtable_ctx_put(ctx.as_ptr()) };
        return None;
    }
    reg.register(slot);
    Some(Ok(ctx))
}
