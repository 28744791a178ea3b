// SPDX-License-Identifier: BSD-2-Clause
/*
 * Range operations against a reference model: random ranges of marks,
 * releases and walks mixed with single-page operations, every result
 * compared with the model; every error case; allocation failure in the
 * middle of a range (the reported count is exact, the rest unchanged); and
 * callbacks that call back into the table.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cowtable.h"
#include "test_alloc.h"

#define KEYS 2048
#define BASE ((uintptr_t)0x40000000)
#define PAGE COWTABLE_PAGE_SIZE

static uint32_t refs_of[KEYS];
static cowtable_frame_t frame_of[KEYS];
static uint64_t op;

static uintptr_t va(size_t k)
{
	return BASE + k * PAGE;
}

/* What release_range's callback saw. */
struct lasts {
	size_t n;
	uintptr_t prev;
	int out_of_order, foreign;
	struct cowtable_ctx *reenter; /* if set, the callback marks a far page on it */
};

static void on_last(uintptr_t vaddr, cowtable_frame_t frame, void *arg)
{
	struct lasts *l = arg;
	size_t k = (vaddr - BASE) / PAGE;

	if (l->n > 0 && vaddr <= l->prev)
		l->out_of_order++;
	if (k >= KEYS || frame != frame_of[k])
		l->foreign++;
	l->prev = vaddr;
	l->n++;
	if (l->reenter != NULL) {
		/* Callbacks run outside the section: calling back in is allowed. */
		if (cowtable_mark(l->reenter, 0x10000000, 1) != 2 ||
		    cowtable_release(l->reenter, 0x10000000, NULL) != COWTABLE_SHARED ||
		    cowtable_release(l->reenter, 0x10000000, NULL) != COWTABLE_LAST)
			l->foreign++;
	}
}

struct walk {
	size_t n, stop_after;
	uintptr_t prev;
	int bad;
};

static bool on_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg)
{
	struct walk *w = arg;
	size_t k = (vaddr - BASE) / PAGE;

	if ((w->n > 0 && vaddr <= w->prev) || k >= KEYS || refs != refs_of[k] ||
	    frame != frame_of[k])
		w->bad++;
	w->prev = vaddr;
	return ++w->n != w->stop_after;
}

static int check_all(struct cowtable *t, struct cowtable_ctx *ctx)
{
	size_t k, tracked = 0;
	cowtable_frame_t f;
	uint32_t r;

	for (k = 0; k < KEYS; k++) {
		r = 0;
		f = 0;
		if (!CHECK(cowtable_lookup(ctx, va(k), &f, &r) == (refs_of[k] != 0),
		           "op #%llu: key %zu", (unsigned long long)op, k))
			return 0;
		if (!CHECK(r == refs_of[k] && (r == 0 || f == frame_of[k]),
		           "op #%llu: key %zu refs %u/%u", (unsigned long long)op, k, r,
		           refs_of[k]))
			return 0;
		tracked += refs_of[k] != 0;
	}
	if (!CHECK(cowtable_count(t) == tracked, "op #%llu: count %zu, model %zu",
	           (unsigned long long)op, cowtable_count(t), tracked))
		return 0;
	return 1;
}

static int random_ops(uint64_t seed, uint64_t ops)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	cowtable_frame_t frames[300];
	struct cowtable t;
	struct cowtable_ctx *ctx, *other;
	uint64_t rng = seed;
	size_t k, n, i, marked, want, got;
	int r, want_r;

	if (!CHECK(cowtable_init(&t, &al) == 0, "op #%llu: init", (unsigned long long)op))
		return 0;
	ctx = cowtable_ctx_get(&t);
	other = cowtable_ctx_get(&t);
	if (!CHECK(ctx != NULL && other != NULL, "op #%llu: contexts", (unsigned long long)op))
		return 0;
	memset(refs_of, 0, sizeof(refs_of));
	for (op = 0; op < ops; op++) {
		uint64_t x = test_rand(&rng);

		k = (size_t)((x >> 8) % KEYS);
		n = 1 + (size_t)((x >> 24) % 300);
		if (k + n > KEYS)
			n = KEYS - k;
		switch (x & 7) {
		case 0:
		case 1: { /* mark_range: frames match the model unless told otherwise */
			bool clash = ((x >> 40) & 7) == 0;

			for (i = 0; i < n; i++)
				frames[i] = refs_of[k + i] ? frame_of[k + i] : (x >> 44) + k + i;
			if (clash)
				frames[n / 2] ^= 0x100000;
			want = n;
			want_r = 0;
			for (i = 0; i < n; i++) {
				if (refs_of[k + i] != 0 && frames[i] != frame_of[k + i]) {
					want = i;
					want_r = COWTABLE_EEXIST;
					break;
				}
			}
			r = cowtable_mark_range(ctx, va(k), n, frames, &marked);
			if (!CHECK(r == want_r && marked == want,
			           "op #%llu: mark_range %zu+%zu: %d marked %zu",
			           (unsigned long long)op, k, n, r, marked))
				return 0;
			for (i = 0; i < marked; i++) {
				if (refs_of[k + i] == 0)
					frame_of[k + i] = frames[i];
				refs_of[k + i] = refs_of[k + i] ? refs_of[k + i] + 1 : 2;
			}
			break;
		}
		case 2:
		case 3: { /* release_range over a window that may start and end mid-page */
			struct lasts l = {0};
			uintptr_t s = va(k) - ((x >> 40) & 1) * 100,
			          e = va(k + n) - ((x >> 41) & 1);
			size_t want_last = 0;

			want = 0;
			for (i = 0; i < n; i++) {
				size_t kk = k + i;

				if (va(kk) < s || va(kk) >= e || refs_of[kk] == 0)
					continue;
				want++;
				want_last += refs_of[kk] == 1;
			}
			l.reenter = ((x >> 42) & 3) == 0 ? other : NULL;
			got = cowtable_release_range(ctx, s, e, on_last, &l);
			if (!CHECK(got == want && l.n == want_last && !l.out_of_order && !l.foreign,
			           "op #%llu: release_range %zu+%zu: %zu/%zu released, %zu/%zu "
			           "last",
			           (unsigned long long)op, k, n, got, want, l.n, want_last))
				return 0;
			for (i = 0; i < n; i++)
				if (va(k + i) >= s && va(k + i) < e && refs_of[k + i] != 0)
					refs_of[k + i]--;
			break;
		}
		case 4: { /* foreach, sometimes stopped early */
			struct walk w = {0, 0, 0, 0};

			want = 0;
			for (i = 0; i < n; i++)
				want += refs_of[k + i] != 0;
			w.stop_after = ((x >> 40) & 1) && want > 1 ? want / 2 : 0;
			got = cowtable_foreach(ctx, va(k), va(k + n), on_visit, &w);
			if (!CHECK(!w.bad && got == (w.stop_after ? w.stop_after : want) &&
			                   got == w.n,
			           "op #%llu: foreach %zu+%zu: %zu visited of %zu",
			           (unsigned long long)op, k, n, got, want))
				return 0;
			break;
		}
		case 5: /* single-page mark */
			want_r = refs_of[k] == 0 ? 2 : (int)refs_of[k] + 1;
			if (refs_of[k] == 0)
				frame_of[k] = x >> 44;
			r = cowtable_mark(other, va(k), frame_of[k]);
			if (!CHECK(r == want_r, "op #%llu: mark %zu: %d, model %d",
			           (unsigned long long)op, k, r, want_r))
				return 0;
			refs_of[k] = (uint32_t)r;
			break;
		default: /* single-page release */
			want_r = refs_of[k] == 0   ? COWTABLE_NOT_COW
			         : refs_of[k] == 1 ? COWTABLE_LAST
			                           : COWTABLE_SHARED;
			r = cowtable_release(other, va(k), NULL);
			if (!CHECK(r == want_r, "op #%llu: release %zu: %d, model %d",
			           (unsigned long long)op, k, r, want_r))
				return 0;
			if (refs_of[k])
				refs_of[k]--;
			break;
		}
		if ((op & 255) == 0 && !check_all(&t, ctx))
			return 0;
	}
	if (!check_all(&t, ctx))
		return 0;
	/* exit(): drop everything, twice over, in one call per pass. */
	while (cowtable_count(&t) != 0) {
		struct lasts l = {0};

		cowtable_release_range(ctx, 0, UINTPTR_MAX, on_last, &l);
		if (!CHECK(!l.out_of_order, "op #%llu: full release out of order",
		           (unsigned long long)op))
			return 0;
	}
	cowtable_ctx_put(ctx);
	cowtable_ctx_put(other);
	cowtable_fini(&t);
	if (!test_alloc_balanced(&a, "range"))
		return 0;
	printf("ok: %" PRIu64 " random range and page operations, seed %" PRIu64 "\n", ops, seed);
	return 1;
}

static int errors_and_failures(void)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	cowtable_frame_t frames[136];
	struct cowtable t;
	struct cowtable_ctx *ctx;
	size_t i, marked = 77;
	struct walk w = {0, 0, 0, 0};

	op = 0;
	memset(refs_of, 0, sizeof(refs_of));
	for (i = 0; i < 100; i++)
		frames[i] = frame_of[i] = 1000 + i;
	if (!CHECK(cowtable_init(&t, &al) == 0, "op #%llu: init", (unsigned long long)op))
		return 0;
	ctx = cowtable_ctx_get(&t);
	if (!CHECK(ctx != NULL, "op #%llu: ctx", (unsigned long long)op))
		return 0;

	/* EINVAL, nothing done. */
	if (!CHECK(cowtable_mark_range(ctx, va(0) + 1, 4, frames, &marked) == COWTABLE_EINVAL &&
	                   marked == 0,
	           "op #%llu: unaligned", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark_range(ctx, va(0), 0, frames, &marked) == COWTABLE_EINVAL,
	           "op #%llu: npages 0", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark_range(ctx, va(0), 4, NULL, &marked) == COWTABLE_EINVAL,
	           "op #%llu: NULL frames", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark_range(NULL, va(0), 4, frames, &marked) == COWTABLE_EINVAL,
	           "op #%llu: NULL ctx", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark_range(ctx, UINTPTR_MAX - 2 * PAGE + 1, 3, frames, &marked) ==
	                   COWTABLE_EINVAL,
	           "op #%llu: wraps", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark_range(ctx, UINTPTR_MAX - 2 * PAGE + 1, 2, frames, NULL) == 0,
	           "op #%llu: the top two pages fit", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release_range(ctx, UINTPTR_MAX - 2 * PAGE + 1, UINTPTR_MAX, NULL,
	                                  NULL) == 2,
	           "op #%llu: release the top pages", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release_range(ctx, 0, UINTPTR_MAX, NULL, NULL) == 2,
	           "op #%llu: and again", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_count(&t) == 0 && a.calls > 0, "op #%llu: empty",
	           (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release_range(ctx, va(5), va(5), NULL, NULL) == 0,
	           "op #%llu: empty range", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release_range(ctx, va(5), va(1), NULL, NULL) == 0,
	           "op #%llu: reversed range", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_foreach(ctx, va(0), va(100), NULL, NULL) == 0, "op #%llu: NULL visitor",
	           (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_foreach(ctx, va(0), va(100), on_visit, &w) == 0 && w.n == 0,
	           "op #%llu: empty walk", (unsigned long long)op))
		return 0;

	cowtable_ctx_put(ctx);
	cowtable_fini(&t);
	if (!test_alloc_balanced(&a, "range errors"))
		return 0;

	/*
	 * Allocation failure in the middle, on a fresh table whose context has
	 * no cached leaf: pages 10..109 span blocks 0 and 1 (BASE is a block's
	 * first address); the second leaf cannot be allocated, so the 54 pages of
	 * block 0 are marked, the rest is unchanged.
	 */
	if (!CHECK(cowtable_init(&t, &al) == 0, "op #%llu: init", (unsigned long long)op))
		return 0;
	ctx = cowtable_ctx_get(&t);
	if (!CHECK(ctx != NULL, "op #%llu: ctx", (unsigned long long)op))
		return 0;
	for (i = 0; i < 136; i++)
		frames[i] = frame_of[i] = 1000 + i;
	/*
	 * A page of block 63, past the pages checked, builds the index's nodes
	 * for blocks 0 to 63 first, so that the second allocation of the range
	 * is the second leaf's.
	 */
	if (!CHECK(cowtable_mark(ctx, va(63 * 64), 7) == 2, "op #%llu: block 63",
	           (unsigned long long)op))
		return 0;
	a.fail_at = a.calls + 2;
	if (!CHECK(cowtable_mark_range(ctx, va(10), 100, frames + 10, &marked) == COWTABLE_ENOMEM,
	           "op #%llu: enomem", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release(ctx, va(63 * 64), NULL) == COWTABLE_SHARED &&
	                   cowtable_release(ctx, va(63 * 64), NULL) == COWTABLE_LAST,
	           "op #%llu: block 63 released", (unsigned long long)op))
		return 0;
	if (!CHECK(marked == 54, "op #%llu: marked %zu", (unsigned long long)op, marked))
		return 0;
	for (i = 0; i < 128; i++)
		refs_of[i] = i >= 10 && i < 64 ? 2 : 0;
	if (!check_all(&t, ctx))
		return 0;
	/* Retry: the 54 marked pages are shared in place, the rest is a new leaf. */
	if (!CHECK(cowtable_mark_range(ctx, va(10), 100, frames + 10, &marked) == 0 &&
	                   marked == 100,
	           "op #%llu: retry", (unsigned long long)op))
		return 0;
	for (i = 10; i < 110; i++)
		refs_of[i] = i < 64 ? 3 : 2;
	if (!check_all(&t, ctx))
		return 0;
	/*
	 * In place with an allocation failure after it: pages 60..69 are tracked
	 * (block 0 and 1 have live leaves), 60..129 reaches block 2, which has
	 * none and cannot get one: 60..127 are marked (68 pages).
	 */
	a.fail_at = a.calls + 1;
	if (!CHECK(cowtable_mark_range(ctx, va(60), 70, frames + 60, &marked) == COWTABLE_ENOMEM &&
	                   marked == 68,
	           "op #%llu: enomem after in-place pages: marked %zu", (unsigned long long)op,
	           marked))
		return 0;
	for (i = 60; i < 128; i++)
		refs_of[i]++;
	for (i = 64; i < 128; i++)
		if (i >= 110)
			refs_of[i] = 2;
	if (!check_all(&t, ctx))
		return 0;
	/* A clash in the middle of a live leaf: pages before it marked, the rest not. */
	frames[30] ^= 1;
	if (!CHECK(cowtable_mark_range(ctx, va(20), 20, frames + 20, &marked) == COWTABLE_EEXIST &&
	                   marked == 10,
	           "op #%llu: clash: marked %zu", (unsigned long long)op, marked))
		return 0;
	frames[30] ^= 1;
	for (i = 20; i < 30; i++)
		refs_of[i]++;
	if (!check_all(&t, ctx))
		return 0;
	/* Undo everything, by ranges that start and end inside blocks. */
	while (cowtable_count(&t) != 0)
		if (!CHECK(cowtable_release_range(ctx, va(3), va(77), NULL, NULL) +
		                           cowtable_release_range(ctx, va(77), va(128), NULL,
		                                                  NULL) >
		                   0,
		           "op #%llu: undo", (unsigned long long)op))
			return 0;
	for (i = 0; i < 128; i++)
		refs_of[i] = 0;
	if (!check_all(&t, ctx))
		return 0;
	cowtable_ctx_put(ctx);
	cowtable_fini(&t);
	if (!test_alloc_balanced(&a, "range failures"))
		return 0;
	printf("ok: range error cases and allocation failure mid-range\n");
	return 1;
}

/*
 * Frame numbers: COWTABLE_FRAME_MAX is stored and returned intact; one above
 * it is refused by mark, and by mark_range wherever it is in the range,
 * before anything is done.
 */
static int frame_limits(void)
{
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	cowtable_frame_t frames[70], f = 0;
	struct cowtable t;
	struct cowtable_ctx *ctx;
	size_t i, marked = 5;
	uint64_t calls;
	uint32_t r = 0;

	if (!CHECK(cowtable_init(&t, &al) == 0, "op #%llu: init", (unsigned long long)op))
		return 0;
	ctx = cowtable_ctx_get(&t);
	if (!CHECK(ctx != NULL, "op #%llu: ctx", (unsigned long long)op))
		return 0;
	for (i = 0; i < 70; i++)
		frames[i] = COWTABLE_FRAME_MAX - i;
	frames[69] = COWTABLE_FRAME_MAX + 1;
	calls = a.calls;
	if (!CHECK(cowtable_mark_range(ctx, va(0), 70, frames, &marked) == COWTABLE_EINVAL &&
	                   marked == 0 && cowtable_count(&t) == 0 && a.calls == calls,
	           "op #%llu: a frame above the limit at the end of a range: nothing done",
	           (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark(ctx, va(0), COWTABLE_FRAME_MAX + 1) == COWTABLE_EINVAL &&
	                   cowtable_mark(ctx, va(0), ~(cowtable_frame_t)0) == COWTABLE_EINVAL &&
	                   cowtable_count(&t) == 0,
	           "op #%llu: mark with a frame above the limit", (unsigned long long)op))
		return 0;
	frames[69] = 0;
	if (!CHECK(cowtable_mark_range(ctx, va(0), 70, frames, &marked) == 0 && marked == 70,
	           "op #%llu: frames up to the limit", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_lookup(ctx, va(0), &f, &r) && f == COWTABLE_FRAME_MAX && r == 2,
	           "op #%llu: FRAME_MAX intact: %llx", (unsigned long long)op,
	           (unsigned long long)f))
		return 0;
	if (!CHECK(cowtable_lookup(ctx, va(69), &f, &r) && f == 0 && r == 2, "op #%llu: frame 0",
	           (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark(ctx, va(0), COWTABLE_FRAME_MAX) == 3,
	           "op #%llu: share at FRAME_MAX", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_mark(ctx, va(0), COWTABLE_FRAME_MAX - 1) == COWTABLE_EEXIST,
	           "op #%llu: the frame next to it is another frame", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release(ctx, va(0), &f) == COWTABLE_SHARED && f == COWTABLE_FRAME_MAX,
	           "op #%llu: release returns FRAME_MAX", (unsigned long long)op))
		return 0;
	if (!CHECK(cowtable_release_range(ctx, 0, UINTPTR_MAX, NULL, NULL) == 70 &&
	                   cowtable_release_range(ctx, 0, UINTPTR_MAX, NULL, NULL) == 70 &&
	                   cowtable_count(&t) == 0,
	           "op #%llu: drain", (unsigned long long)op))
		return 0;
	cowtable_ctx_put(ctx);
	cowtable_fini(&t);
	if (!test_alloc_balanced(&a, "frame limits"))
		return 0;
	printf("ok: frame numbers at and above COWTABLE_FRAME_MAX\n");
	return 1;
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 20261126;
	uint64_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : 20000;
	int ok = 1;

	ok &= errors_and_failures();
	ok &= frame_limits();
	ok &= random_ops(seed, ops);
	return check_exit("range") || !ok;
}
