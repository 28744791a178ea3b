// SPDX-License-Identifier: BSD-2-Clause
//! Several threads on one table: conservation of references, contexts
//! handed from thread to thread, and tables dropped while threads that used
//! them are still alive or exiting.

mod common;

use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use common::{frame_of, Counting, Rng, PAGE};
use cowtable::{CowTable, Error, FrameNumber, Release};

const THREADS: usize = 4;
const PAGES: usize = 64;

/// What one thread did to each page.
#[derive(Clone)]
struct Tally {
    marks: Vec<u64>,
    releases: Vec<u64>,
    lasts: Vec<u64>,
}

impl Tally {
    fn new() -> Self {
        Tally { marks: vec![0; PAGES], releases: vec![0; PAGES], lasts: vec![0; PAGES] }
    }

    fn add(&mut self, other: &Tally) {
        for p in 0..PAGES {
            self.marks[p] += other.marks[p];
            self.releases[p] += other.releases[p];
            self.lasts[p] += other.lasts[p];
        }
    }

    fn release(&mut self, p: usize, r: Result<Release, Error>) {
        match r {
            Ok(Release::NotCow) => {}
            Ok(Release::Shared(f)) => {
                assert_eq!(f, frame_of(p));
                self.releases[p] += 1;
            }
            Ok(Release::Last(f)) => {
                assert_eq!(f, frame_of(p));
                self.releases[p] += 1;
                self.lasts[p] += 1;
            }
            Err(e) => panic!("release of page {p}: {e}"),
        }
    }
}

/// Per page: every entry lifetime starts with a mark that makes 2
/// references and ends with the release that takes the last, so the number
/// of LAST results equals releases minus marks, once the table is empty.
#[test]
fn references_are_conserved() {
    let (table, a) = common::table();
    let ops = if cfg!(debug_assertions) { 20_000 } else { 100_000 };
    let start = Barrier::new(THREADS);
    let mut total = Tally::new();
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let (table, start) = (&table, &start);
                s.spawn(move || {
                    let mut rng = Rng::new(id as u64 + 1);
                    let mut t = Tally::new();
                    // Odd threads use an explicit context, even ones the
                    // table's own methods (the per-thread context).
                    let cx = if id % 2 == 1 { Some(table.context().unwrap()) } else { None };
                    start.wait();
                    for _ in 0..ops {
                        let p = rng.below(PAGES as u64) as usize;
                        let v = p * PAGE;
                        match rng.below(20) {
                            0..=7 => {
                                let r = match &cx {
                                    Some(cx) => cx.try_mark(v, frame_of(p)),
                                    None => table.try_mark(v, frame_of(p)),
                                };
                                let n = r.unwrap_or_else(|e| panic!("mark of page {p}: {e}"));
                                assert!(n >= 2, "a mark never returns 1");
                                t.marks[p] += 1;
                            }
                            8..=15 => {
                                let r = match &cx {
                                    Some(cx) => cx.try_release(v),
                                    None => table.try_release(v),
                                };
                                t.release(p, r);
                            }
                            16 => {
                                // The seed's methods.
                                table.mark_cow(v, frame_of(p));
                                t.marks[p] += 1;
                                if table.release(v) {
                                    t.lasts[p] += 1;
                                }
                                t.releases[p] += 1; // a holder never gets NOT_COW
                            }
                            17 => {
                                let k = (rng.below(8) as usize + 1).min(PAGES - p);
                                let frames: Vec<FrameNumber> = (p..p + k).map(frame_of).collect();
                                let r = match &cx {
                                    Some(cx) => cx.mark_range(v, &frames),
                                    None => table.mark_range(v, &frames),
                                };
                                r.unwrap_or_else(|e| panic!("mark_range at page {p}: {e}"));
                                for q in p..p + k {
                                    t.marks[q] += 1;
                                }
                            }
                            _ => {
                                if let Some(e) = table.lookup(v) {
                                    assert_eq!(e.frame, frame_of(p));
                                    assert!(e.refs >= 1);
                                }
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        for h in handles {
            total.add(&h.join().unwrap());
        }
    });

    // Drain: every page down to NOT_COW.
    let mut drain = Tally::new();
    for p in 0..PAGES {
        loop {
            let r = table.try_release(p * PAGE);
            if r == Ok(Release::NotCow) {
                break;
            }
            drain.release(p, r);
        }
    }
    total.add(&drain);

    let mut lifetimes = 0;
    for p in 0..PAGES {
        assert!(total.marks[p] > 0, "page {p} never marked: the test exercised nothing");
        assert_eq!(
            total.lasts[p],
            total.releases[p] - total.marks[p],
            "page {p}: {} marks, {} releases, {} lasts",
            total.marks[p],
            total.releases[p],
            total.lasts[p]
        );
        lifetimes += total.lasts[p];
    }
    assert!(lifetimes > PAGES as u64, "entries were created and removed many times");
    assert_eq!(table.count(), 0);
    assert_eq!(table.for_each(0..usize::MAX, |e| panic!("left over: {e:?}")), 0);
    drop(table);
    a.assert_all_returned();
}

/// A thread that holds a reference never gets NOT_COW, and never LAST
/// while someone else holds one.
#[test]
fn holders_never_see_not_cow() {
    let (table, a) = common::table();
    for p in 0..PAGES {
        table.mark_cow(p * PAGE, frame_of(p)); // this thread holds 2
    }
    thread::scope(|s| {
        for id in 0..THREADS {
            let table = &table;
            s.spawn(move || {
                let mut rng = Rng::new(100 + id as u64);
                for _ in 0..20_000 {
                    let p = rng.below(PAGES as u64) as usize;
                    assert!(table.try_mark(p * PAGE, frame_of(p)).unwrap() >= 3);
                    assert_eq!(table.try_release(p * PAGE), Ok(Release::Shared(frame_of(p))));
                }
            });
        }
    });
    for p in 0..PAGES {
        assert_eq!(table.lookup(p * PAGE).map(|e| e.refs), Some(2));
        assert_eq!(table.try_release(p * PAGE), Ok(Release::Shared(frame_of(p))));
        assert_eq!(table.try_release(p * PAGE), Ok(Release::Last(frame_of(p))));
    }
    assert!(table.is_empty());
    drop(table);
    a.assert_all_returned();
}

/// Ranges against ranges and single releases: over the whole run, LAST
/// callbacks equal pages released minus pages marked.
#[test]
fn ranges_conserve_references() {
    let (table, a) = common::table();
    let frames: Vec<FrameNumber> = (0..PAGES).map(frame_of).collect();
    let totals = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let (table, frames) = (&table, &frames);
                s.spawn(move || {
                    let mut rng = Rng::new(200 + id as u64);
                    let (mut marked, mut released, mut lasts) = (0u64, 0u64, 0u64);
                    let cx = table.context().unwrap();
                    for _ in 0..2_000 {
                        let p = rng.below(PAGES as u64) as usize;
                        let k = rng.below((PAGES - p) as u64) as usize + 1;
                        match rng.below(3) {
                            0 => {
                                cx.mark_range(p * PAGE, &frames[p..p + k]).unwrap();
                                marked += k as u64;
                            }
                            1 => {
                                released += cx.release_range(p * PAGE..(p + k) * PAGE, |v, f| {
                                    assert_eq!(f, frame_of(v / PAGE));
                                    lasts += 1;
                                }) as u64;
                            }
                            _ => {
                                let r = table.try_release(p * PAGE).unwrap();
                                released += r.frame().is_some() as u64;
                                lasts += r.is_last() as u64;
                            }
                        }
                    }
                    (marked, released, lasts)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect::<Vec<_>>()
    });
    let (mut marked, mut released, mut lasts) = (0, 0, 0);
    for (m, r, l) in totals {
        marked += m;
        released += r;
        lasts += l;
    }
    loop {
        let n = table.release_range(0..usize::MAX, |_, _| lasts += 1) as u64;
        if n == 0 {
            break;
        }
        released += n;
    }
    assert!(marked > 0 && lasts > 0);
    assert_eq!(lasts, released - marked);
    assert!(table.is_empty());
    drop(table);
    a.assert_all_returned();
}

/// Threads that come and go reuse the contexts of those that left: with
/// `std` the thread's cached context goes back when it exits, without it
/// each call parks its context again.
#[test]
fn contexts_are_recycled_across_threads() {
    let (table, a) = common::table();
    let run = |table: &CowTable<Counting>| {
        thread::scope(|s| {
            // join() waits for the thread's thread-local destructors (the
            // end of the scope alone does not).
            s.spawn(|| {
                assert!(!table.is_cow(PAGE));
                assert_eq!(table.try_release(PAGE), Ok(Release::NotCow));
            })
            .join()
            .unwrap();
        })
    };
    run(&table);
    let blocks = a.blocks();
    for _ in 0..30 {
        run(&table);
    }
    assert_eq!(a.blocks(), blocks, "a context per thread was allocated and never reused");
    drop(table);
    a.assert_all_returned();
}

/// A table dropped while a thread that used it is alive: the table puts
/// that thread's context back itself, and the thread's stale entry is
/// harmless when it later uses another table and exits.
#[test]
fn table_dropped_while_a_user_thread_lives() {
    let a = Counting::new();
    let table = Arc::new(CowTable::with_allocator(a.clone()));
    let (used_tx, used_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let t = table.clone();
    let a2 = a.clone();
    let h = thread::spawn(move || {
        t.mark_cow(PAGE, frame_of(1));
        drop(t);
        used_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        // The first table is gone; a new one, used and dropped here.
        let t2 = CowTable::with_allocator(a2);
        t2.mark_cow(PAGE, frame_of(2));
        assert_eq!(t2.try_release(PAGE), Ok(Release::Shared(frame_of(2))));
        let t3 = CowTable::new_like(&t2);
        drop(t2);
        // Used after the thread's entry for t2 went stale.
        assert!(!t3.is_cow(PAGE));
        t3
    });
    used_rx.recv().unwrap();
    assert_eq!(Arc::strong_count(&table), 1);
    drop(table);
    a.assert_all_returned();
    go_tx.send(()).unwrap();
    let t3 = h.join().unwrap();
    // t3's context was cached by a thread that has exited: it came back.
    assert!(!t3.is_cow(2 * PAGE));
    drop(t3);
    a.assert_all_returned();
}

/// The last user of a table drops it while other users' threads exit at
/// the same moment: each context is put back once, by its thread or by the
/// table, and every byte comes back.
#[test]
fn drop_races_thread_exit() {
    let a = Counting::new();
    for round in 0..100 {
        let table = Arc::new(CowTable::with_allocator(a.clone()));
        let handles: Vec<_> = (0..THREADS)
            .map(|id| {
                let t = table.clone();
                thread::spawn(move || {
                    t.mark_cow((round * THREADS + id) * PAGE, frame_of(id));
                    drop(t); // maybe the last reference: the drop runs here
                })
            })
            .collect();
        drop(table);
        for h in handles {
            h.join().unwrap();
        }
        a.assert_all_returned();
    }
}

/// Helpers only the tests need.
trait NewLike {
    fn new_like(other: &Self) -> Self;
}

impl NewLike for CowTable<Counting> {
    fn new_like(other: &Self) -> Self {
        CowTable::with_allocator(other.allocator().clone())
    }
}
