// SPDX-License-Identifier: BSD-2-Clause
/*
 * Every error code of the contract, and that each error changes nothing.
 * Linked against the variant whose counts saturate at TEST_REFS_MAX, so that
 * COWTABLE_EOVERFLOW is reached in a few calls.
 */
#include "check.h"
#include "cowtable.h"
#include "test_alloc.h"

#ifndef TEST_REFS_MAX
#error "build with -DTEST_REFS_MAX=n against the matching library variant"
#endif

#define PAGE COWTABLE_PAGE_SIZE

static bool has(struct cowtable_ctx *ctx, uintptr_t v, cowtable_frame_t frame, uint32_t refs)
{
	cowtable_frame_t f = 0;
	uint32_t r = 0;

	return cowtable_lookup(ctx, v, &f, &r) && f == frame && r == refs;
}

static void test_init_errors(void)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	struct cowtable_allocator no_free = {test_alloc_fn, NULL, &a};
	struct cowtable_allocator no_alloc = {NULL, test_free_fn, &a};
	struct cowtable t;

	CHECK(cowtable_init(NULL, &al) == COWTABLE_EINVAL);
	CHECK(cowtable_init(&t, &no_free) == COWTABLE_EINVAL);
	CHECK(cowtable_init(&t, &no_alloc) == COWTABLE_EINVAL);
	CHECK(a.calls == 0);
	a.fail_at = 1;
	CHECK(cowtable_init(&t, &al) == COWTABLE_ENOMEM);
	CHECK(a.bytes == 0 && a.failures == 1);
	/* The default allocator (hosted builds). */
	CHECK(cowtable_init(&t, NULL) == 0);
	cowtable_fini(&t);
}

static void test_op_errors(void)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	struct cowtable t;
	struct cowtable_ctx *ctx;
	cowtable_frame_t f;
	uint32_t refs = 77;
	uintptr_t v = 0x400000;
	int i;

	CHECK(cowtable_init(&t, &al) == 0);
	a.fail_at = a.calls + 1;
	CHECK(cowtable_ctx_get(&t) == NULL);
	ctx = cowtable_ctx_get(&t);
	CHECK(ctx != NULL);
	if (ctx == NULL)
		return;

	/* EINVAL: unaligned, NULL context; nothing changes. */
	CHECK(cowtable_mark(ctx, v + 1, 5) == COWTABLE_EINVAL);
	CHECK(cowtable_mark(ctx, v + PAGE / 2, 5) == COWTABLE_EINVAL);
	CHECK(cowtable_mark(NULL, v, 5) == COWTABLE_EINVAL);
	CHECK(cowtable_mark(ctx, v, COWTABLE_FRAME_MAX + 1) == COWTABLE_EINVAL);
	CHECK(cowtable_release(ctx, v + 8, NULL) == COWTABLE_EINVAL);
	CHECK(cowtable_release(NULL, v, NULL) == COWTABLE_EINVAL);
	CHECK(!cowtable_is_cow(ctx, v + 1) && !cowtable_is_cow(NULL, v));
	CHECK(cowtable_count(&t) == 0);

	/* NOT_COW: untracked, frame untouched, never below zero. */
	f = 123;
	CHECK(cowtable_release(ctx, v, &f) == COWTABLE_NOT_COW && f == 123);
	CHECK(!cowtable_lookup(ctx, v, &f, &refs) && f == 123 && refs == 77);

	/* ENOMEM on a new entry: nothing changes. */
	a.fail_at = a.calls + 1;
	CHECK(cowtable_mark(ctx, v, 5) == COWTABLE_ENOMEM);
	CHECK(!cowtable_is_cow(ctx, v) && cowtable_count(&t) == 0);

	/* A new entry starts at 2; a further fork adds one. */
	CHECK(cowtable_mark(ctx, v, 5) == 2);
	CHECK(has(ctx, v, 5, 2));
	a.fail_at = a.calls + 1; /* sharing an entry needs no memory */
	i = (int)a.failures;
	CHECK(cowtable_mark(ctx, v, 5) == 3);
	/* Nor does a new entry in a block that has a leaf already. */
	CHECK(cowtable_release(ctx, v + PAGE, &f) == COWTABLE_NOT_COW && f == 123);
	CHECK(cowtable_mark(ctx, v + PAGE, 7) == 2 && a.failures == (uint64_t)i);
	CHECK(cowtable_release(ctx, v + PAGE, NULL) == COWTABLE_SHARED);
	CHECK(cowtable_release(ctx, v + PAGE, NULL) == COWTABLE_LAST);
	a.fail_at = 0;

	/* EEXIST: another frame; nothing changes. */
	CHECK(cowtable_mark(ctx, v, 6) == COWTABLE_EEXIST);
	CHECK(has(ctx, v, 5, 3) && cowtable_count(&t) == 1);

	/* EOVERFLOW: the count saturates and stays. */
	for (i = 3; i < TEST_REFS_MAX; i++)
		CHECK(cowtable_mark(ctx, v, 5) == i + 1);
	CHECK(cowtable_mark(ctx, v, 5) == COWTABLE_EOVERFLOW);
	CHECK(cowtable_mark(ctx, v, 5) == COWTABLE_EOVERFLOW);
	CHECK(has(ctx, v, 5, TEST_REFS_MAX));

	/* Releases: SHARED down to the last, LAST hands the frame back, then NOT_COW. */
	for (i = TEST_REFS_MAX; i > 1; i--) {
		f = 0;
		CHECK(cowtable_release(ctx, v, &f) == COWTABLE_SHARED && f == 5);
	}
	CHECK(has(ctx, v, 5, 1));
	f = 0;
	CHECK(cowtable_release(ctx, v, &f) == COWTABLE_LAST && f == 5);
	CHECK(cowtable_release(ctx, v, NULL) == COWTABLE_NOT_COW);
	CHECK(!cowtable_is_cow(ctx, v) && cowtable_count(&t) == 0);

	/* A page whose entry died may be marked afresh, with any frame. */
	CHECK(cowtable_mark(ctx, v, 6) == 2);
	CHECK(cowtable_release(ctx, v, NULL) == COWTABLE_SHARED);
	CHECK(cowtable_mark(ctx, v, 6) == 2); /* count 1 -> 2: never 1 */
	CHECK(cowtable_release(ctx, v, NULL) == COWTABLE_SHARED);
	CHECK(cowtable_release(ctx, v, NULL) == COWTABLE_LAST);

	/* Address 0 and the highest page are ordinary keys. */
	CHECK(cowtable_mark(ctx, 0, 1) == 2);
	CHECK(cowtable_mark(ctx, UINTPTR_MAX & ~(PAGE - 1), 2) == 2);
	CHECK(has(ctx, 0, 1, 2) && has(ctx, UINTPTR_MAX & ~(PAGE - 1), 2, 2));
	CHECK(cowtable_count(&t) == 2);

	/* reclaim and barrier on a quiet table. */
	cowtable_reclaim(ctx);
	cowtable_barrier(ctx);
	CHECK(cowtable_count(&t) == 2);

	/* A context put back is handed out again rather than a new one. */
	cowtable_ctx_put(ctx);
	i = (int)a.calls;
	CHECK(cowtable_ctx_get(&t) == ctx && a.calls == (uint64_t)i);
	cowtable_ctx_put(ctx);

	/* fini frees live entries too. */
	cowtable_fini(&t);
	test_alloc_balanced(&a, "errors");
}

int main(void)
{
	test_init_errors();
	test_op_errors();
	return check_exit("errors");
}
