/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A counting allocator for the tests: every byte handed out must come back,
 * with the size it was asked for.  It can fail the Nth call or a random
 * fraction of calls, and it poisons freed memory so that a read after free
 * returns garbage a test will notice.  The kernel's torture uses it too, over
 * kmalloc(GFP_ATOMIC): the table's allocator must not sleep.
 */
#ifndef TEST_ALLOC_H
#define TEST_ALLOC_H

#ifdef __KERNEL__
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/types.h>
#define test_alloc_raw(size) kmalloc(size, GFP_ATOMIC)
#define test_free_raw(ptr)   kfree(ptr)
#else
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#define test_alloc_raw(size) malloc(size)
#define test_free_raw(ptr)   free(ptr)
#endif

#include "check.h"
#include "cowtable.h"

#define TEST_ALLOC_MAGIC  0xc0ffee11c0ffee11ull
#define TEST_ALLOC_POISON 0xdb

struct test_alloc {
	int64_t bytes;        /* outstanding bytes */
	int64_t blocks;       /* outstanding blocks */
	uint64_t calls;       /* alloc calls so far */
	uint64_t fail_at;     /* fail exactly this call (1-based); 0 never */
	uint64_t fail_one_in; /* fail about one call in this many; 0 never */
	uint64_t failures;    /* calls failed on purpose */
	int64_t peak;         /* highest outstanding bytes */
	uint64_t bad_frees;   /* frees with a wrong size or a bad header */
};

struct test_alloc_hdr {
	uint64_t magic;
	uint64_t size;
};

static inline void *test_alloc_fn(size_t size, void *arg)
{
	struct test_alloc *a = (struct test_alloc *)arg;
	uint64_t call = __atomic_add_fetch(&a->calls, 1, __ATOMIC_RELAXED);
	struct test_alloc_hdr *h;
	int64_t now, peak;

	if (call == __atomic_load_n(&a->fail_at, __ATOMIC_RELAXED) ||
	    (a->fail_one_in != 0 && (call * 0x9e3779b97f4a7c15ull >> 40) % a->fail_one_in == 0)) {
		__atomic_add_fetch(&a->failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	h = (struct test_alloc_hdr *)test_alloc_raw(sizeof(*h) + size);
	if (h == NULL)
		return NULL;
	h->magic = TEST_ALLOC_MAGIC;
	h->size = size;
	memset(h + 1, 0xa5, size); /* the library must initialise what it uses */
	now = __atomic_add_fetch(&a->bytes, (int64_t)size, __ATOMIC_RELAXED);
	__atomic_add_fetch(&a->blocks, 1, __ATOMIC_RELAXED);
	peak = __atomic_load_n(&a->peak, __ATOMIC_RELAXED);
	while (now > peak && !__atomic_compare_exchange_n(&a->peak, &peak, now, 0, __ATOMIC_RELAXED,
	                                                  __ATOMIC_RELAXED))
		;
	return h + 1;
}

static inline void test_free_fn(void *ptr, size_t size, void *arg)
{
	struct test_alloc *a = (struct test_alloc *)arg;
	struct test_alloc_hdr *h = (struct test_alloc_hdr *)ptr - 1;

	if (ptr == NULL || h->magic != TEST_ALLOC_MAGIC || h->size != size) {
		__atomic_add_fetch(&a->bad_frees, 1, __ATOMIC_RELAXED);
		return;
	}
	h->magic = 0;
	memset(ptr, TEST_ALLOC_POISON, size);
	__atomic_sub_fetch(&a->bytes, (int64_t)size, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&a->blocks, 1, __ATOMIC_RELAXED);
	test_free_raw(h);
}

static inline struct cowtable_allocator test_allocator(struct test_alloc *a)
{
	struct cowtable_allocator al = {test_alloc_fn, test_free_fn, a};

	memset(a, 0, sizeof(*a));
	return al;
}

/* After cowtable_fini(): nothing outstanding, nothing freed wrongly. */
static inline bool test_alloc_balanced(const struct test_alloc *a, const char *who)
{
	return CHECK(a->bytes == 0 && a->blocks == 0 && a->bad_frees == 0,
	             "%s: allocator balance %lld bytes in %lld blocks, %llu bad frees", who,
	             (long long)a->bytes, (long long)a->blocks, (unsigned long long)a->bad_frees);
}

/* splitmix64: seeded, reproducible random numbers for the tests. */
static inline uint64_t test_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif /* TEST_ALLOC_H */
