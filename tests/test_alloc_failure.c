// SPDX-License-Identifier: BSD-2-Clause
/*
 * Allocation failure at every allocation point.  One scenario (init, two
 * contexts, a few hundred marks, shares, releases and reclaims on pages
 * spread so that most blocks hold one or two of them, so leaves are born
 * and die all the time) is run again
 * and again, failing the 1st, 2nd, 3rd... allocation, until a run completes
 * with no failure left to inject.  Each failed operation must return its
 * error and change nothing (checked against a model of every key); the same
 * operation is then retried and must succeed.  Every run ends with the
 * allocator balanced.
 */
#include <stdio.h>

#include "check.h"
#include "cowtable.h"
#include "test_alloc.h"

#define KEYS 300
#define PAGE COWTABLE_PAGE_SIZE

/* Key k's page: 37 pages apart, so a 64-page block holds one or two keys. */
static uintptr_t va(int k)
{
	return (uintptr_t)k * 37 * PAGE;
}

static uint32_t model[KEYS];

/* What a failure says: which run (the allocation it failed) and which key. */
#define AT "failing allocation %llu, key %d: "

/* Every key as the model says, and the count. */
static int state_matches(struct cowtable *t, struct cowtable_ctx *ctx)
{
	size_t tracked = 0;
	uint32_t refs;
	int k;

	for (k = 0; k < KEYS; k++) {
		refs = 0;
		if (cowtable_lookup(ctx, va(k), NULL, &refs) != (model[k] != 0) || refs != model[k])
			return 0;
		tracked += model[k] != 0;
	}
	return cowtable_count(t) == tracked;
}

/* Runs the scenario once; returns 0 on a violation. */
static int scenario(struct test_alloc *a, uint64_t at)
{
	struct cowtable_allocator al = test_allocator(a);
	struct cowtable t;
	struct cowtable_ctx *c[2];
	uint64_t rng = 7;
	int i, k, r, ret;

	a->fail_at = at;
	for (k = 0; k < KEYS; k++)
		model[k] = 0;
	while ((ret = cowtable_init(&t, &al)) != 0) {
		if (!CHECK(ret == COWTABLE_ENOMEM && a->bytes == 0, AT "init returned %d",
		           (unsigned long long)at, -1, ret))
			return 0;
	}
	for (i = 0; i < 2; i++) {
		while ((c[i] = cowtable_ctx_get(&t)) == NULL) {
			if (!CHECK(a->failures != 0, AT "ctx_get returned NULL with memory",
			           (unsigned long long)at, -1))
				return 0;
		}
	}
	for (i = 0; i < 3 * KEYS; i++) {
		struct cowtable_ctx *ctx = c[i & 1];
		uint64_t x = test_rand(&rng);

		k = (int)(x % KEYS);
		if ((x >> 20) % 3 != 0) {
			for (;;) {
				uint64_t before = a->failures;

				ret = cowtable_mark(ctx, va(k), 9);
				if (ret != COWTABLE_ENOMEM)
					break;
				if (!CHECK(a->failures != before, AT "ENOMEM with memory",
				           (unsigned long long)at, k) ||
				    !CHECK(state_matches(&t, ctx), AT "ENOMEM changed the table",
				           (unsigned long long)at, k))
					return 0;
			}
			if (!CHECK(ret == (int)(model[k] == 0 ? 2 : model[k] + 1),
			           AT "mark returned %d, model has %u", (unsigned long long)at, k,
			           ret, model[k]))
				return 0;
			model[k] = (uint32_t)ret;
		} else {
			r = cowtable_release(ctx, va(k), NULL);
			if (!CHECK(r == (model[k] == 0   ? COWTABLE_NOT_COW
			                 : model[k] == 1 ? COWTABLE_LAST
			                                 : COWTABLE_SHARED),
			           AT "release returned %d, model has %u", (unsigned long long)at,
			           k, r, model[k]))
				return 0;
			if (model[k] != 0)
				model[k]--;
		}
		if (i % 50 == 0)
			cowtable_reclaim(ctx); /* cached leaves get reused, new ones allocated */
	}
	if (!CHECK(state_matches(&t, c[0]), AT "final state", (unsigned long long)at, -1))
		return 0;
	cowtable_ctx_put(c[0]);
	cowtable_ctx_put(c[1]);
	cowtable_fini(&t);
	return test_alloc_balanced(a, "alloc_failure");
}

int main(void)
{
	struct test_alloc a;
	uint64_t at, points = 0;

	for (at = 1;; at++) {
		scenario(&a, at);
		if (a.failures == 0)
			break; /* the run got past its last allocation */
		points++;
	}
	printf("allocation points failed in turn: %llu (%llu allocations in a clean run)\n",
	       (unsigned long long)points, (unsigned long long)a.calls);
	CHECK(points >= KEYS / 2, "only %llu allocation points reached",
	      (unsigned long long)points);
	return check_exit("alloc_failure");
}
