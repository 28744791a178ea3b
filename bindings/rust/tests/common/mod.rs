// SPDX-License-Identifier: BSD-2-Clause
//! What the tests share: a counting allocator and a small random generator.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use cowtable::{Allocator, CowTable, MIN_ALIGN};

/// Every block carries its size in a header, so a free with another size
/// is caught; freed memory is poisoned, new memory filled with garbage.
const HEADER: usize = 16;
const MAGIC: u64 = 0xc0ff_ee11_c0ff_ee11;

#[derive(Default, Debug)]
pub struct Stats {
    /// Bytes handed out and not given back.
    pub bytes: AtomicI64,
    /// Blocks handed out and not given back.
    pub blocks: AtomicI64,
    /// Calls of alloc.
    pub calls: AtomicU64,
    /// Fail exactly this call of alloc (1-based); 0: never.
    pub fail_at: AtomicU64,
    /// Fail every call while set.
    pub fail_all: AtomicBool,
    /// Calls failed on purpose.
    pub failures: AtomicU64,
    /// Frees with a wrong size or a bad header.
    pub bad_frees: AtomicU64,
    /// Calls with size 0 (the library never asks for 0 bytes).
    pub zero_sizes: AtomicU64,
}

/// A counting allocator; clones share their counters.
#[derive(Clone, Default, Debug)]
pub struct Counting(pub Arc<Stats>);

impl Counting {
    pub fn new() -> Self {
        Counting::default()
    }

    pub fn bytes(&self) -> i64 {
        self.0.bytes.load(Relaxed)
    }

    pub fn blocks(&self) -> i64 {
        self.0.blocks.load(Relaxed)
    }

    pub fn calls(&self) -> u64 {
        self.0.calls.load(Relaxed)
    }

    pub fn fail_all(&self, on: bool) {
        self.0.fail_all.store(on, Relaxed);
    }

    /// Fails the `n`th call from now (1: the next one).
    pub fn fail_in(&self, n: u64) {
        self.0.fail_at.store(self.calls() + n, Relaxed);
    }

    /// Every byte and block back, and every free was right.
    pub fn assert_all_returned(&self) {
        assert_eq!(self.bytes(), 0, "bytes still allocated");
        assert_eq!(self.blocks(), 0, "blocks still allocated");
        assert_eq!(self.0.bad_frees.load(Relaxed), 0, "frees with a wrong size");
        assert_eq!(self.0.zero_sizes.load(Relaxed), 0, "allocations of 0 bytes");
    }
}

// SAFETY: blocks come from the system allocator with a 16-byte header and
// 16-byte alignment (>= MIN_ALIGN) and go back with the same layout; the
// header is checked before any free; nothing here unwinds or calls into a
// table.
#[deny(unsafe_op_in_unsafe_fn)]
unsafe impl Allocator for Counting {
    fn alloc(&self, size: usize) -> *mut u8 {
        let s = &self.0;
        let call = s.calls.fetch_add(1, Relaxed) + 1;
        if size == 0 {
            s.zero_sizes.fetch_add(1, Relaxed);
            return std::ptr::null_mut();
        }
        if s.fail_all.load(Relaxed) || call == s.fail_at.load(Relaxed) {
            s.failures.fetch_add(1, Relaxed);
            return std::ptr::null_mut();
        }
        let layout = Layout::from_size_align(size + HEADER, 16).unwrap();
        // SAFETY: the layout's size is not zero.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            return p;
        }
        // SAFETY: the block has HEADER + size bytes, aligned to 16.
        unsafe {
            p.cast::<u64>().write(MAGIC);
            p.cast::<u64>().add(1).write(size as u64);
            std::ptr::write_bytes(p.add(HEADER), 0xa5, size);
        }
        s.bytes.fetch_add(size as i64, Relaxed);
        s.blocks.fetch_add(1, Relaxed);
        // SAFETY: inside the block, which has HEADER + size bytes.
        let user = unsafe { p.add(HEADER) };
        assert_eq!(user as usize % MIN_ALIGN, 0);
        user
    }

    unsafe fn free(&self, ptr: *mut u8, size: usize) {
        let s = &self.0;
        // SAFETY: `ptr` came from alloc, HEADER bytes into a block aligned
        // to 16 whose header holds two u64.
        let (base, magic, got) = unsafe {
            let base = ptr.sub(HEADER);
            (base, base.cast::<u64>().read(), base.cast::<u64>().add(1).read())
        };
        if magic != MAGIC || got != size as u64 {
            s.bad_frees.fetch_add(1, Relaxed);
            return; // leak it rather than free with a wrong layout
        }
        // SAFETY: poison, then give the block back with its layout.
        unsafe {
            std::ptr::write_bytes(base, 0xdb, HEADER + size);
            System.dealloc(base, Layout::from_size_align(size + HEADER, 16).unwrap());
        }
        s.bytes.fetch_sub(size as i64, Relaxed);
        s.blocks.fetch_sub(1, Relaxed);
    }
}

/// A table on a fresh counting allocator.
pub fn table() -> (CowTable<Counting>, Counting) {
    let a = Counting::new();
    (CowTable::with_allocator(a.clone()), a)
}

pub const PAGE: usize = cowtable::PAGE_SIZE;

/// A frame number for page `i` (so a test can tell frames apart).
pub fn frame_of(i: usize) -> cowtable::FrameNumber {
    cowtable::FrameNumber::new(0x1000 + i as u64 * 7)
}

/// xorshift64*: deterministic, no dependencies.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
