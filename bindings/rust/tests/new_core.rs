// SPDX-License-Identifier: BSD-2-Clause
//! The two limits of the new C core:
//! - a frame above `COWTABLE_FRAME_MAX` (2^40 - 1) makes a mark, or a
//!   mark_range (every frame checked before anything is done), fail with
//!   `COWTABLE_EINVAL` and change nothing;
//! - `COWTABLE_REFS_MAX` is 2^24 - 1 (it was INT32_MAX), which also makes
//!   `COWTABLE_EOVERFLOW` reachable in a test.
//!
//! A library that predates them fails these tests.  build.rs sets
//! `cfg(cowtable_new_core)` when the repository's `include/cowtable.h`
//! defines `COWTABLE_FRAME_MAX`; until then they are ignored.
//! `COWTABLE_NEW_CORE=1 cargo test` runs them regardless.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{frame_of, PAGE};
use cowtable::{Entry, Error, FrameNumber, RangeError, Release, FRAME_MAX, REFS_MAX};

#[test]
#[cfg_attr(not(cowtable_new_core), ignore = "needs the new core: COWTABLE_FRAME_MAX")]
fn new_core_frame_above_max_is_invalid() {
    let (table, a) = common::table();
    let above = FrameNumber::new(FRAME_MAX + 1);
    assert_eq!(table.try_mark(PAGE, above), Err(Error::Invalid));
    assert_eq!(table.try_mark(PAGE, FrameNumber::new(u64::MAX)), Err(Error::Invalid));
    assert!(!table.is_cow(PAGE));
    assert_eq!(table.try_mark(PAGE, FrameNumber::new(FRAME_MAX)), Ok(2));
    // A tracked page: still EINVAL (not EEXIST), and the entry unchanged.
    assert_eq!(table.try_mark(PAGE, above), Err(Error::Invalid));
    assert_eq!(table.lookup(PAGE), Some(Entry { vaddr: PAGE, frame: FrameNumber::new(FRAME_MAX), refs: 2 }));
    let cx = table.context().unwrap();
    assert_eq!(cx.try_mark(2 * PAGE, above), Err(Error::Invalid));
    drop(cx);
    drop(table);
    a.assert_all_returned();
}

#[test]
#[cfg_attr(not(cowtable_new_core), ignore = "needs the new core: COWTABLE_FRAME_MAX")]
fn new_core_mark_range_checks_every_frame_first() {
    let (table, a) = common::table();
    let mut frames: Vec<FrameNumber> = (0..200).map(frame_of).collect();
    frames[150] = FrameNumber::new(FRAME_MAX + 1);
    let invalid = Err(RangeError { error: Error::Invalid, marked: 0 });
    assert_eq!(table.mark_range(0, &frames), invalid);
    assert_eq!(table.count(), 0);
    // Page 3 tracked with another frame: EEXIST would come first in page
    // order, but the frames are checked before anything is done.
    table.mark_cow(3 * PAGE, FrameNumber::new(1));
    assert_eq!(table.mark_range(0, &frames), invalid);
    assert_eq!(table.count(), 1);
    assert_eq!(table.lookup(3 * PAGE).map(|e| e.refs), Some(2));
    frames[150] = FrameNumber::new(FRAME_MAX);
    assert_eq!(table.mark_range(200 * PAGE, &frames), Ok(()));
    assert_eq!(table.lookup(350 * PAGE).map(|e| e.frame), Some(FrameNumber::new(FRAME_MAX)));
    drop(table);
    a.assert_all_returned();
}

#[test]
#[cfg_attr(not(cowtable_new_core), ignore = "needs the new core: COWTABLE_FRAME_MAX")]
fn new_core_mark_cow_panics_on_a_frame_above_max() {
    let (table, a) = common::table();
    let r = catch_unwind(AssertUnwindSafe(|| table.mark_cow(PAGE, FRAME_MAX + 1)));
    assert!(r.is_err());
    assert!(!table.is_cow(PAGE));
    drop(table);
    a.assert_all_returned();
}

#[test]
#[cfg_attr(not(cowtable_new_core), ignore = "needs the new core: COWTABLE_REFS_MAX = 2^24 - 1")]
fn new_core_count_stops_at_refs_max() {
    let (table, a) = common::table();
    let cx = table.context().unwrap();
    let f = frame_of(1);
    assert_eq!(cx.try_mark(PAGE, f), Ok(2));
    for want in 3..=REFS_MAX {
        // Stops at the first wrong count rather than running on.
        assert_eq!(cx.try_mark(PAGE, f), Ok(want));
    }
    assert_eq!(cx.try_mark(PAGE, f), Err(Error::Overflow));
    assert_eq!(Error::Overflow.code(), -75);
    assert_eq!(cx.lookup(PAGE).map(|e| e.refs), Some(REFS_MAX));
    assert_eq!(cx.mark_range(PAGE, &[f]), Err(RangeError { error: Error::Overflow, marked: 0 }));
    assert_eq!(table.try_mark(PAGE, f), Err(Error::Overflow));
    assert!(catch_unwind(AssertUnwindSafe(|| cx.mark_cow(PAGE, f))).is_err());
    assert_eq!(cx.try_release(PAGE), Ok(Release::Shared(f)));
    assert_eq!(cx.try_mark(PAGE, f), Ok(REFS_MAX));
    drop(cx);
    drop(table);
    a.assert_all_returned();
}
