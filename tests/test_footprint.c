/*
 * Bytes per tracked page: what the allocator holds for n entries, divided by
 * n.  A figure to report (the goal is 48 bytes or less), not an assertion;
 * the test fails only if the count is wrong or memory does not come back.
 */
#include <stdio.h>

#include "cowtable.h"
#include "test_alloc.h"

static int measure(size_t n)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	struct cowtable t;
	struct cowtable_ctx *ctx;
	int64_t base;
	size_t i;
	int ok = 1;

	if (cowtable_init(&t, &al) != 0 || (ctx = cowtable_ctx_get(&t)) == NULL)
		return 0;
	base = a.bytes; /* the head and the context: fixed costs */
	for (i = 0; i < n && ok; i++)
		ok = cowtable_mark(ctx, (uintptr_t)i * 7 * COWTABLE_PAGE_SIZE, i) == 2;
	if (ok && cowtable_count(&t) != n)
		ok = 0;
	printf("%8zu pages: %6.2f bytes per page (fixed %lld bytes for head and context)\n", n,
	       (double)(a.bytes - base) / (double)n, (long long)base);
	cowtable_ctx_put(ctx);
	cowtable_fini(&t);
	return ok && test_alloc_balanced(&a, "footprint");
}

int main(void)
{
	int passed = 0, failed = 0;

	measure(1000) ? passed++ : failed++;
	measure(65536) ? passed++ : failed++;
	measure(1000000) ? passed++ : failed++;
	printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
