// SPDX-License-Identifier: BSD-2-Clause
//! The allocator hook: every byte a table takes comes from its allocator
//! and goes back to it, including on every failure path.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{frame_of, Counting, PAGE};
use cowtable::{CowTable, Error, FrameNumber, Release};

#[test]
fn every_byte_back_after_drop() {
    let a = Counting::new();
    let table = CowTable::with_allocator(a.clone());
    let control = a.bytes();
    assert!(control > 256, "the C table's block comes from the hook: {control} bytes");

    let frames: Vec<FrameNumber> = (0..10_000).map(frame_of).collect();
    table.mark_range(0, &frames).unwrap();
    // One leaf of 536 + 8h bytes per block of 64 pages: 8.5 bytes a page.
    assert!(a.bytes() - control >= 10_000 * 8, "leaves come from the hook");
    let (c1, c2) = (table.context().unwrap(), table.context().unwrap());
    assert_eq!(c1.release_range(0..5_000 * PAGE, |_, _| {}), 5_000);
    assert_eq!(c2.release_range(0..2_500 * PAGE, |_, _| {}), 2_500);
    assert!(!table.release(9_999 * PAGE));
    drop((c1, c2));
    // Pages still tracked, entries retired and waiting, cached entries,
    // three contexts: all of it goes back.
    assert!(table.count() > 0);
    drop(table);
    a.assert_all_returned();
}

#[test]
fn a_borrowed_allocator_works_too() {
    let a = Counting::new();
    {
        let table = CowTable::with_allocator(&a);
        table.mark_cow(PAGE, frame_of(1));
        assert!(std::ptr::eq(*table.allocator(), &a));
        assert!(a.blocks() > 0);
    }
    a.assert_all_returned();
}

/// Make the first, second, ... allocation of table creation fail: each
/// failure gives back what was taken, and creation then succeeds.
#[test]
fn creation_fails_cleanly_at_every_allocation() {
    let mut failures = 0;
    for n in 1.. {
        let a = Counting::new();
        a.fail_in(n);
        match CowTable::try_with_allocator(a.clone()) {
            Err(e) => {
                assert_eq!(e, Error::NoMemory);
                a.assert_all_returned();
                failures += 1;
            }
            Ok(table) => {
                drop(table);
                a.assert_all_returned();
                break;
            }
        }
        assert!(n < 100, "table creation never stops allocating");
    }
    // The control block and the skip list's head (the block index grows later).
    assert_eq!(failures, 2);

    let a = Counting::new();
    a.fail_all(true);
    let r = catch_unwind(AssertUnwindSafe(|| CowTable::with_allocator(a.clone())));
    assert!(r.is_err(), "with_allocator panics when the allocator fails");
    a.assert_all_returned();
}

/// Fail the nth allocation of a workload, for every n it reaches: each
/// failed call reports NoMemory and changes nothing, the table stays
/// consistent, and every byte comes back.
#[test]
fn operations_fail_cleanly_at_every_allocation() {
    let frames: Vec<FrameNumber> = (0..300).map(frame_of).collect();
    let mut reached = false;
    for n in 1..400 {
        let a = Counting::new();
        let table = CowTable::with_allocator(a.clone());
        a.fail_in(n);
        let mut failed = false;
        let mut tracked = match table.mark_range(0, &frames) {
            Ok(()) => 300,
            Err(e) => {
                assert_eq!(e.error, Error::NoMemory);
                failed = true;
                e.marked
            }
        };
        assert_eq!(table.count(), tracked);
        for i in 0..300 {
            assert_eq!(table.is_cow(i * PAGE), i < tracked, "page {i}, {tracked} marked");
        }
        match table.try_mark(400 * PAGE, frame_of(400)) {
            Ok(2) => tracked += 1,
            Err(Error::NoMemory) => failed = true,
            r => panic!("{r:?}"),
        }
        assert_eq!(table.count(), tracked);
        let mut lasts = 0;
        table.release_range(0..usize::MAX, |_, _| {});
        table.release_range(0..usize::MAX, |_, _| lasts += 1);
        assert_eq!(lasts, tracked);
        assert!(table.is_empty());
        drop(table);
        a.assert_all_returned();
        if !failed {
            reached = true;
            break;
        }
    }
    assert!(reached, "the workload never ran without a failure");
}

#[test]
fn failed_context_allocation_changes_nothing() {
    let (table, a) = common::table();
    let first = table.context().unwrap(); // held: the next one is new
    a.fail_all(true);
    assert_eq!(table.context().err(), Some(Error::NoMemory));
    a.fail_all(false);
    first.mark_cow(PAGE, frame_of(1));
    assert_eq!(first.try_release(PAGE), Ok(Release::Shared(frame_of(1))));
    drop(first);
    drop(table);
    a.assert_all_returned();
}
