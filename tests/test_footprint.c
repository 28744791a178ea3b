// SPDX-License-Identifier: BSD-2-Clause
/*
 * Bytes per tracked page: what the allocator is asked for to track n pages,
 * one every `stride` pages, divided by n.  Figures to report (a dense block
 * of 64 pages costs one leaf: about 8.5 bytes a page; one page a block about
 * 550), not assertions: the test fails only if the count is wrong or memory
 * does not come back.
 */
#include <stdio.h>

#include "check.h"
#include "cowtable.h"
#include "test_alloc.h"

static int measure(size_t n, size_t stride)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	struct cowtable t;
	struct cowtable_ctx *ctx;
	int64_t base;
	size_t i;
	int ok = 1;

	if (!CHECK(cowtable_init(&t, &al) == 0 && (ctx = cowtable_ctx_get(&t)) != NULL, "set-up"))
		return 0;
	base = a.bytes; /* the head and the context: fixed costs */
	for (i = 0; i < n && ok; i++)
		ok = CHECK(cowtable_mark(ctx, (uintptr_t)i * stride * COWTABLE_PAGE_SIZE, i) == 2,
		           "mark of page %zu of %zu, one in %zu", i, n, stride);
	ok = ok && CHECK(cowtable_count(&t) == n, "count %zu of %zu pages", cowtable_count(&t), n);
	printf("%8zu pages, one in %2zu: %7.2f bytes per page (fixed %lld bytes for head and "
	       "context)\n",
	       n, stride, (double)(a.bytes - base) / (double)n, (long long)base);
	cowtable_ctx_put(ctx);
	cowtable_fini(&t);
	return ok && test_alloc_balanced(&a, "footprint");
}

int main(void)
{
	static const size_t strides[] = {1, 3, 7, 64};
	size_t i;

	for (i = 0; i < sizeof(strides) / sizeof(strides[0]); i++) {
		measure(1000, strides[i]);
		measure(1000000, strides[i]);
	}
	return check_exit("footprint");
}
