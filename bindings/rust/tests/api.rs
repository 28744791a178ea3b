// SPDX-License-Identifier: BSD-2-Clause
//! Every method and every error code, through `CowTable`'s own methods and
//! through an explicit `Context` (each test below runs both ways).
//!
//! `Error::Overflow` needs a count at `REFS_MAX`, which only the new core
//! makes reachable in a test: see tests/new_core.rs.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{frame_of, Counting, PAGE};
use cowtable::{Context, CowTable, Entry, Error, FrameNumber, RangeError, Release};

/// Runs `$body` with `$t` a `&CowTable` and again with `$t` a `&Context`,
/// `$a` the table's counting allocator; then drops the table and checks
/// that the allocator got every byte back.
macro_rules! both {
    ($name:ident, |$t:ident, $a:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn table() {
                let (tab, $a) = common::table();
                {
                    let $t = &tab;
                    $body
                }
                drop(tab);
                $a.assert_all_returned();
            }

            #[test]
            fn context() {
                let (tab, $a) = common::table();
                {
                    let cx = tab.context().unwrap();
                    let $t = &cx;
                    $body
                }
                drop(tab);
                $a.assert_all_returned();
            }
        }
    };
}

fn f(n: u64) -> FrameNumber {
    FrameNumber::new(n)
}

both!(seed_sequence, |t, a| {
    t.mark_cow(0x1000, f(100));
    assert!(t.is_cow(0x1000));
    assert!(!t.is_cow(0x2000));
    assert!(!t.release(0x1000)); // 2 -> 1
    assert!(t.release(0x1000)); // 1 -> 0: last
    // The seed kept the entry and wrapped the count here.
    assert!(!t.is_cow(0x1000));
    assert!(!t.release(0x1000));
    assert!(a.calls() > 0, "the table's memory comes from its allocator");
});

both!(mark_cow_accepts_anything_into_a_frame, |t, a| {
    t.mark_cow(0x3000, 77u64);
    assert_eq!(t.lookup(0x3000).map(|e| e.frame), Some(f(77)));
    let _ = &a;
});

both!(mark_counts_references, |t, a| {
    let v = 7 * PAGE;
    assert_eq!(t.try_mark(v, f(9)), Ok(2));
    assert_eq!(t.try_mark(v, f(9)), Ok(3));
    t.mark_cow(v, f(9));
    assert_eq!(t.lookup(v), Some(Entry { vaddr: v, frame: f(9), refs: 4 }));
    assert_eq!(t.try_release(v), Ok(Release::Shared(f(9))));
    assert_eq!(t.try_release(v), Ok(Release::Shared(f(9))));
    assert_eq!(t.try_release(v), Ok(Release::Shared(f(9))));
    assert_eq!(t.try_release(v), Ok(Release::Last(f(9))));
    assert_eq!(t.try_release(v), Ok(Release::NotCow));
    assert_eq!(t.lookup(v), None);
    let _ = &a;
});

both!(mark_of_a_page_with_one_sharer_left_returns_two, |t, a| {
    assert_eq!(t.try_mark(PAGE, f(1)), Ok(2));
    assert_eq!(t.try_release(PAGE), Ok(Release::Shared(f(1))));
    assert_eq!(t.lookup(PAGE).map(|e| e.refs), Some(1));
    assert_eq!(t.try_mark(PAGE, f(1)), Ok(2));
    let _ = &a;
});

both!(mark_errors_change_nothing, |t, a| {
    // EINVAL: not page aligned.
    assert_eq!(t.try_mark(PAGE + 1, f(1)), Err(Error::Invalid));
    assert_eq!(t.try_mark(PAGE + 1, f(1)).unwrap_err().code(), -22);
    assert!(!t.is_cow(PAGE));
    assert_eq!(t.count(), 0);
    // EEXIST: tracked with another frame.
    assert_eq!(t.try_mark(PAGE, f(1)), Ok(2));
    assert_eq!(t.try_mark(PAGE, f(2)), Err(Error::Exists));
    assert_eq!(Error::Exists.code(), -17);
    assert_eq!(t.lookup(PAGE), Some(Entry { vaddr: PAGE, frame: f(1), refs: 2 }));
    assert_eq!(t.count(), 1);
    let _ = &a;
});

both!(mark_cow_panics_on_error_and_changes_nothing, |t, a| {
    let r = catch_unwind(AssertUnwindSafe(|| t.mark_cow(PAGE + 8, f(1))));
    assert!(r.is_err(), "an unaligned mark_cow must panic");
    assert_eq!(t.count(), 0);
    t.mark_cow(PAGE, f(1));
    let r = catch_unwind(AssertUnwindSafe(|| t.mark_cow(PAGE, f(2))));
    let msg = r.expect_err("a mark_cow with another frame must panic");
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("already tracked with another frame"), "{msg}");
    assert_eq!(t.lookup(PAGE), Some(Entry { vaddr: PAGE, frame: f(1), refs: 2 }));
    // The table is still usable: the call's context was not lost.
    assert!(!t.release(PAGE) && t.release(PAGE));
    let _ = &a;
});

both!(no_memory_changes_nothing, |t, a| {
    // The calling thread's context exists before the allocator fails.
    assert!(!t.is_cow(0));
    a.fail_all(true);
    assert_eq!(t.try_mark(PAGE, f(1)), Err(Error::NoMemory));
    assert_eq!(Error::NoMemory.code(), -12);
    assert!(!t.is_cow(PAGE));
    assert_eq!(
        t.mark_range(PAGE, &[f(1), f(2)]),
        Err(RangeError { error: Error::NoMemory, marked: 0 })
    );
    assert_eq!(t.count(), 0);
    let r = catch_unwind(AssertUnwindSafe(|| t.mark_cow(PAGE, f(1))));
    assert!(r.is_err(), "mark_cow must panic on ENOMEM");
    a.fail_all(false);
    assert_eq!(t.try_mark(PAGE, f(1)), Ok(2));
    assert!(a.0.failures.load(std::sync::atomic::Ordering::Relaxed) >= 3);
});

both!(release_errors, |t, a| {
    assert_eq!(t.try_release(PAGE), Ok(Release::NotCow));
    assert_eq!(t.try_release(PAGE + 1), Err(Error::Invalid));
    assert!(!t.release(PAGE + 1));
    t.mark_cow(PAGE, f(5));
    // An unaligned address inside a tracked page is not that page.
    assert_eq!(t.try_release(PAGE + 1), Err(Error::Invalid));
    assert_eq!(t.lookup(PAGE).map(|e| e.refs), Some(2));
    let _ = &a;
});

both!(lookup_and_is_cow, |t, a| {
    assert_eq!(t.lookup(PAGE), None);
    t.mark_cow(PAGE, f(cowtable::FRAME_MAX));
    assert_eq!(
        t.lookup(PAGE),
        Some(Entry { vaddr: PAGE, frame: f(cowtable::FRAME_MAX), refs: 2 })
    );
    assert!(t.is_cow(PAGE));
    assert!(!t.is_cow(PAGE + 4));
    assert_eq!(t.lookup(PAGE + 4), None);
    assert!(!t.is_cow(2 * PAGE));
    let _ = &a;
});

both!(mark_range_marks_every_page, |t, a| {
    // 300 pages: several of the library's 64-page blocks.
    let frames: Vec<FrameNumber> = (0..300).map(frame_of).collect();
    let start = 0x40_0000;
    assert_eq!(t.mark_range(start, &frames), Ok(()));
    assert_eq!(t.count(), 300);
    for (i, &fr) in frames.iter().enumerate() {
        assert_eq!(t.lookup(start + i * PAGE), Some(Entry { vaddr: start + i * PAGE, frame: fr, refs: 2 }));
    }
    assert!(!t.is_cow(start - PAGE));
    assert!(!t.is_cow(start + 300 * PAGE));
    assert_eq!(t.mark_range(start, &frames), Ok(()));
    assert_eq!(t.lookup(start + 299 * PAGE).map(|e| e.refs), Some(3));
    let _ = &a;
});

both!(mark_range_stops_at_the_first_error, |t, a| {
    let frames: Vec<FrameNumber> = (0..10).map(frame_of).collect();
    t.mark_cow(5 * PAGE, f(1)); // another frame than frames[5]
    assert_eq!(t.mark_range(0, &frames), Err(RangeError { error: Error::Exists, marked: 5 }));
    for (i, &fr) in frames.iter().enumerate().take(5) {
        assert_eq!(t.lookup(i * PAGE).map(|e| (e.frame, e.refs)), Some((fr, 2)));
    }
    assert_eq!(t.lookup(5 * PAGE).map(|e| (e.frame, e.refs)), Some((f(1), 2)));
    for i in 6..10 {
        assert!(!t.is_cow(i * PAGE));
    }
    assert_eq!(t.count(), 6);
    let _ = &a;
});

both!(mark_range_invalid_does_nothing, |t, a| {
    let frames = [f(1), f(2)];
    let invalid = Err(RangeError { error: Error::Invalid, marked: 0 });
    assert_eq!(t.mark_range(PAGE + 1, &frames), invalid);
    assert_eq!(t.mark_range(PAGE, &[]), invalid);
    // The second page would be past the top of the address space.
    let top = usize::MAX & !(PAGE - 1);
    assert_eq!(t.mark_range(top, &frames), invalid);
    assert_eq!(t.count(), 0);
    assert!(!t.is_cow(top));
    assert_eq!(t.mark_range(top, &frames[..1]), Ok(()));
    assert!(t.is_cow(top));
    let _ = &a;
});

both!(mark_range_no_memory_midway, |t, a| {
    assert!(!t.is_cow(0)); // the context exists, with no cached leaf
    // Pages 60..260 span blocks of 64 pages: 0 (4 pages), 1, 2, 3 and 4 (4
    // pages).  Each new block is one allocation, and the first also builds
    // the block index's one node (blocks 0 to 63): the fourth allocation,
    // block 2's leaf, fails.
    let frames: Vec<FrameNumber> = (60..260).map(frame_of).collect();
    a.fail_in(4);
    assert_eq!(
        t.mark_range(60 * PAGE, &frames),
        Err(RangeError { error: Error::NoMemory, marked: 68 })
    );
    assert_eq!(t.count(), 68);
    assert!(t.is_cow(127 * PAGE) && !t.is_cow(128 * PAGE) && !t.is_cow(259 * PAGE));
});

both!(release_range_hands_back_each_last_frame, |t, a| {
    let frames: Vec<FrameNumber> = (0..200).map(frame_of).collect();
    t.mark_range(0, &frames).unwrap();
    t.mark_range(10 * PAGE, &frames[10..20]).unwrap(); // pages 10..20: 3 refs
    // One reference of each page: 2 -> 1 (3 -> 2), no page reaches 0.
    assert_eq!(t.release_range(0..200 * PAGE, |_, _| panic!("no page reaches 0")), 200);
    assert_eq!(t.count(), 200);
    let mut lasts = Vec::new();
    assert_eq!(t.release_range(0..200 * PAGE, |v, fr| lasts.push((v, fr))), 200);
    let want: Vec<(usize, FrameNumber)> =
        (0..200).filter(|i| !(10..20).contains(i)).map(|i| (i * PAGE, frames[i])).collect();
    assert_eq!(lasts, want);
    assert_eq!(t.count(), 10);
    lasts.clear();
    assert_eq!(t.release_range(0..usize::MAX, |v, fr| lasts.push((v, fr))), 10);
    assert_eq!(lasts, (10..20).map(|i| (i * PAGE, frames[i])).collect::<Vec<_>>());
    assert_eq!(t.release_range(0..usize::MAX, |_, _| panic!("empty table")), 0);
    assert!(t.is_empty());
    let _ = &a;
});

both!(release_range_empty_ranges, |t, a| {
    t.mark_cow(PAGE, f(1));
    assert_eq!(t.release_range(PAGE..PAGE, |_, _| {}), 0);
    #[allow(clippy::reversed_empty_ranges)]
    let backwards = 2 * PAGE..PAGE;
    assert_eq!(t.release_range(backwards, |_, _| {}), 0);
    assert_eq!(t.release_range(2 * PAGE..9 * PAGE, |_, _| {}), 0);
    assert_eq!(t.lookup(PAGE).map(|e| e.refs), Some(2));
    let _ = &a;
});

both!(release_range_callback_may_call_the_table, |t, a| {
    let frames: Vec<FrameNumber> = (0..100).map(frame_of).collect();
    t.mark_range(0, &frames).unwrap();
    assert_eq!(t.release_range(0..100 * PAGE, |_, _| panic!("no page reaches 0")), 100);
    let mut seen = 0;
    let n = t.release_range(0..100 * PAGE, |v, fr| {
        // The entry is gone; mark the page again (the frame is reused in
        // place by a new sharer): the walk has passed it and leaves it.
        assert!(!t.is_cow(v));
        assert_eq!(t.try_mark(v, fr), Ok(2));
        seen += 1;
    });
    assert_eq!((n, seen), (100, 100));
    assert_eq!(t.count(), 100);
    assert_eq!(t.lookup(99 * PAGE).map(|e| e.refs), Some(2));
    let _ = &a;
});

both!(for_each_visits_in_address_order, |t, a| {
    let pages = [900usize, 3, 64, 65, 7000, 12];
    for (i, &p) in pages.iter().enumerate() {
        t.mark_cow(p * PAGE, frame_of(i));
    }
    t.mark_cow(64 * PAGE, frame_of(2)); // 3 refs
    let mut seen = Vec::new();
    assert_eq!(t.for_each(0..usize::MAX, |e| seen.push(e)), 6);
    let mut want: Vec<Entry> = pages
        .iter()
        .enumerate()
        .map(|(i, &p)| Entry { vaddr: p * PAGE, frame: frame_of(i), refs: if p == 64 { 3 } else { 2 } })
        .collect();
    want.sort_by_key(|e| e.vaddr);
    assert_eq!(seen, want);
    // A sub-range: [12, 900) pages.
    seen.clear();
    assert_eq!(t.for_each(12 * PAGE..900 * PAGE, |e| seen.push(e)), 3);
    assert_eq!(seen.iter().map(|e| e.vaddr / PAGE).collect::<Vec<_>>(), [12, 64, 65]);
    // Stopping: the visit that returns false is counted.
    let mut visits = 0;
    assert_eq!(
        t.for_each_while(0..usize::MAX, |_| {
            visits += 1;
            visits < 2
        }),
        2
    );
    assert_eq!(visits, 2);
    assert_eq!(t.for_each(PAGE..PAGE, |_| panic!("empty range")), 0);
    let _ = &a;
});

both!(for_each_callback_may_call_the_table, |t, a| {
    t.mark_range(0, &[f(1), f(2), f(3)]).unwrap();
    // Release each page from inside the walk, which got copies.
    let n = t.for_each(0..usize::MAX, |e| assert_eq!(t.try_release(e.vaddr), Ok(Release::Shared(e.frame))));
    assert_eq!(n, 3);
    assert_eq!(t.for_each(0..usize::MAX, |e| assert_eq!(e.refs, 1)), 3);
    let _ = &a;
});

both!(count_and_is_empty, |t, a| {
    assert_eq!(t.count(), 0);
    for i in 0..50 {
        t.mark_cow(i * PAGE, frame_of(i));
    }
    t.mark_cow(0, frame_of(0));
    assert_eq!(t.count(), 50);
    assert!(!t.release(0));
    assert_eq!(t.count(), 50);
    for i in 0..50 {
        while !t.release(i * PAGE) {}
    }
    assert_eq!(t.count(), 0);
    let _ = &a;
});

// --- Context alone ----------------------------------------------------------

#[test]
fn contexts_are_reused_after_drop() {
    let (table, a) = common::table();
    let cx = table.context().unwrap();
    assert!(std::ptr::eq(cx.table(), &table));
    cx.mark_cow(PAGE, f(1));
    let raw = cx.as_raw();
    drop(cx);
    let calls = a.calls();
    let cx = table.context().unwrap();
    assert_eq!(cx.as_raw(), raw, "the parked context is handed out again");
    assert_eq!(a.calls(), calls, "no allocation for a reused context");
    // Two at once are two contexts.
    let cx2 = table.context().unwrap();
    assert_ne!(cx2.as_raw(), cx.as_raw());
    assert!(cx2.is_cow(PAGE) && cx.is_cow(PAGE));
    drop((cx, cx2));
    drop(table);
    a.assert_all_returned();
}

#[test]
fn context_no_memory() {
    let (table, a) = common::table();
    a.fail_all(true);
    assert_eq!(table.context().err(), Some(Error::NoMemory));
    a.fail_all(false);
    drop(table.context().unwrap());
    drop(table);
    a.assert_all_returned();
}

#[test]
fn reclaim_and_barrier_free_retired_entries() {
    let (table, a) = common::table();
    let mut cx = table.context().unwrap();
    // 300 leaves of 64 pages: more than a context's cache keeps.
    let frames: Vec<FrameNumber> = (0..19_200).map(frame_of).collect();
    cx.mark_range(0, &frames).unwrap();
    let full = a.bytes();
    assert_eq!(cx.release_range(0..19_200 * PAGE, |_, _| {}), 19_200);
    let mut lasts = 0;
    assert_eq!(cx.release_range(0..19_200 * PAGE, |_, _| lasts += 1), 19_200);
    assert_eq!(lasts, 19_200);
    assert!(cx.is_empty());
    cx.reclaim();
    cx.barrier();
    // Past a grace period every emptied leaf is freed (at most 128 stay in
    // the context's cache for reuse).
    assert!(a.bytes() < full, "barrier freed nothing: {} >= {full}", a.bytes());
    cx.barrier(); // nothing left: a no-op
    drop(cx);
    drop(table);
    a.assert_all_returned();
}

#[test]
fn context_moves_to_another_thread() {
    let (table, a) = common::table();
    let cx: Context<'_, Counting> = table.context().unwrap();
    cx.mark_cow(PAGE, f(3));
    std::thread::scope(|s| {
        s.spawn(move || {
            assert!(!cx.release(PAGE));
            assert!(cx.release(PAGE));
        });
    });
    assert!(table.is_empty());
    drop(table);
    a.assert_all_returned();
}

#[test]
fn raw_handles_reach_the_c_library() {
    let (table, a) = common::table();
    let cx = table.context().unwrap();
    cx.mark_cow(PAGE, f(4));
    // SAFETY: both handles are live; the context is used on this thread
    // only, outside any other call on it.
    unsafe {
        assert_eq!(cowtable::ffi::cowtable_count(table.as_raw()), 1);
        assert!(cowtable::ffi::cowtable_is_cow(cx.as_raw(), PAGE));
        assert_eq!(cowtable::ffi::cowtable_mark(cx.as_raw(), PAGE, 4), 3);
    }
    assert_eq!(cx.lookup(PAGE).map(|e| e.refs), Some(3));
    assert!(format!("{cx:?}").starts_with("Context"));
    drop(cx);
    drop(table);
    a.assert_all_returned();
}

#[test]
fn send_and_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<CowTable<Counting>>();
    sync::<CowTable<Counting>>();
    send::<Context<'static, Counting>>();
    send::<Error>();
    sync::<Error>();
}

#[test]
fn errors_display() {
    assert_eq!(Error::Overflow.code(), -75);
    assert_eq!(Error::Invalid.to_string(), "invalid argument");
    let e = RangeError { error: Error::Exists, marked: 4 };
    assert_eq!(e.to_string(), "page already tracked with another frame after marking 4 pages");
}

// --- The seed's constructors (global allocator) -------------------------------

#[cfg(feature = "alloc")]
#[test]
fn seed_constructors() {
    // The seed's struct field type, unchanged.
    struct DemandPagingManager {
        cow_table: CowTable,
    }
    let mgr = DemandPagingManager { cow_table: CowTable::default() };
    mgr.cow_table.mark_cow(0x1000, FrameNumber::new(100));
    assert!(mgr.cow_table.is_cow(0x1000));
    let t = CowTable::new();
    assert!(t.is_empty() && !t.is_cow(0x1000));
    assert!(CowTable::try_new().is_ok());
    assert!(format!("{:?}", mgr.cow_table).contains("count: 1"));
}

// --- Panics in closures (std: caught at the C boundary, then resumed) --------

#[cfg(feature = "std")]
both!(release_range_panic_is_resumed_after_the_walk, |t, a| {
    let frames: Vec<FrameNumber> = (0..100).map(frame_of).collect();
    t.mark_range(0, &frames).unwrap();
    t.release_range(0..100 * PAGE, |_, _| {}); // one sharer left on each page
    let mut lasts = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        t.release_range(0..100 * PAGE, |v, fr| {
            lasts.push((v, fr));
            if lasts.len() == 10 {
                panic!("tenth");
            }
        })
    }));
    let payload = r.expect_err("the panic is resumed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"tenth"));
    // The walk went on and every frame still reached the closure.
    assert_eq!(lasts.len(), 100);
    assert!(t.is_empty());
    assert_eq!(t.try_mark(0, f(1)), Ok(2));
    let _ = &a;
});

#[cfg(feature = "std")]
both!(for_each_panic_stops_the_walk, |t, a| {
    t.mark_range(0, &(0..10).map(frame_of).collect::<Vec<_>>()).unwrap();
    let mut visits = 0;
    let r = catch_unwind(AssertUnwindSafe(|| {
        t.for_each(0..usize::MAX, |_| {
            visits += 1;
            if visits == 3 {
                panic!("third");
            }
        })
    }));
    assert!(r.is_err());
    assert_eq!(visits, 3);
    assert_eq!(t.for_each(0..usize::MAX, |_| {}), 10);
    let _ = &a;
});
