// SPDX-License-Identifier: BSD-2-Clause
/*
 * Sequential semantics against a reference model.  Random operations on a
 * small key space (so entries are born, shared, refused and killed over and
 * over) and on a wide one (so towers grow tall), each result compared with a
 * plain array that implements the contract in the obvious way.  Seeded and
 * reproducible: the seed is printed and accepted back with --seed.
 *
 * Built against the normal library and against a variant whose counts
 * saturate at TEST_REFS_MAX, so the overflow rule is exercised too; and
 * against a deliberately broken variant, where it must report a failure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cowtable.h"
#include "spec.h"
#include "test_alloc.h"

#ifndef TEST_REFS_MAX
#define TEST_REFS_MAX COWTABLE_REFS_MAX
#endif

struct run {
	struct cowtable table;
	struct cowtable_ctx *ctx;
	struct spec_page *model;
	size_t keys;
	size_t tracked;
	uintptr_t base;
	size_t stride; /* pages between keys */
	uint64_t op;
	uint64_t seed;
};

/* Where a failure happened: the operation's number and the phase's seed. */
#define AT         "op #%llu (seed %llu): "
#define AT_ARGS(r) (unsigned long long)(r)->op, (unsigned long long)(r)->seed

static int model_mark(struct run *r, size_t k, cowtable_frame_t frame)
{
	struct spec_page *m = &r->model[k];
	uint32_t before = m->refs;
	int want = spec_mark(m, frame, TEST_REFS_MAX),
	    got = cowtable_mark(r->ctx, r->base + k * r->stride * COWTABLE_PAGE_SIZE, frame);

	r->tracked += before == 0;
	return CHECK(got == want, AT "mark of key %zu returned %d, model says %d", AT_ARGS(r), k,
	             got, want);
}

static int model_release(struct run *r, size_t k)
{
	struct spec_page *m = &r->model[k];
	cowtable_frame_t frame = 0xdead, want_frame = 0xdead;
	int want = spec_release(m, &want_frame),
	    got = cowtable_release(r->ctx, r->base + k * r->stride * COWTABLE_PAGE_SIZE, &frame);

	r->tracked -= want == COWTABLE_LAST;
	/* NOT_COW leaves the frame untouched: 0xdead on both sides. */
	return CHECK(got == want, AT "release of key %zu returned %d, model says %d", AT_ARGS(r), k,
	             got, want) &&
	       CHECK(frame == want_frame, AT "release of key %zu gave frame %llu, model %llu",
	             AT_ARGS(r), k, (unsigned long long)frame, (unsigned long long)want_frame);
}

static int model_lookup(struct run *r, size_t k)
{
	uintptr_t vaddr = r->base + k * r->stride * COWTABLE_PAGE_SIZE;
	cowtable_frame_t frame = 0, want_frame = 0;
	uint32_t refs = 0, want_refs = 0;
	bool want = spec_lookup(&r->model[k], &want_frame, &want_refs),
	     got = cowtable_lookup(r->ctx, vaddr, &frame, &refs);

	return CHECK(got == want, AT "lookup of key %zu returned %d, model %d", AT_ARGS(r), k, got,
	             want) &&
	       CHECK(cowtable_is_cow(r->ctx, vaddr) == got, AT "is_cow of key %zu disagrees",
	             AT_ARGS(r), k) &&
	       CHECK(frame == want_frame && refs == want_refs,
	             AT "lookup of key %zu: frame %llu refs %u, model frame %llu refs %u",
	             AT_ARGS(r), k, (unsigned long long)frame, refs, (unsigned long long)want_frame,
	             want_refs);
}

/* One random operation on key k. */
static int model_step(struct run *r, uint64_t *rng)
{
	uint64_t x = test_rand(rng);
	size_t k = (size_t)((x >> 8) % r->keys);
	/* Two candidate frames per key, so a mark may be refused with EEXIST. */
	cowtable_frame_t frame = ((cowtable_frame_t)k << 1) | ((x >> 4) & (x >> 5) & 1);

	r->op++;
	switch (x & 15) {
	case 0:
		/* Unaligned addresses are refused and change nothing. */
		return CHECK(cowtable_mark(r->ctx, r->base + k * r->stride * COWTABLE_PAGE_SIZE + 8,
		                           frame) == COWTABLE_EINVAL,
		             AT "unaligned mark of key %zu", AT_ARGS(r), k) &&
		       CHECK(cowtable_release(r->ctx,
		                              r->base + k * r->stride * COWTABLE_PAGE_SIZE + 1,
		                              NULL) == COWTABLE_EINVAL,
		             AT "unaligned release of key %zu", AT_ARGS(r), k);
	case 1:
	case 2:
	case 3:
		return model_lookup(r, k);
	case 4:
	case 5:
	case 6:
	case 7:
	case 8:
	case 9:
		return model_mark(r, k, frame);
	default:
		return model_release(r, k);
	}
}

static int run_phase(uint64_t seed, size_t keys, size_t stride, uint64_t ops, uintptr_t base)
{
	struct test_alloc alloc;
	struct cowtable_allocator al = test_allocator(&alloc);
	struct run r;
	uint64_t rng = seed, i;
	size_t k;
	int ok = 1;

	memset(&r, 0, sizeof(r));
	r.keys = keys;
	r.base = base;
	r.stride = stride;
	r.seed = seed;
	r.model = calloc(keys, sizeof(*r.model));
	if (!CHECK(r.model != NULL && cowtable_init(&r.table, &al) == 0 &&
	                   (r.ctx = cowtable_ctx_get(&r.table)) != NULL,
	           "set-up"))
		return 0;
	for (i = 0; i < ops && ok; i++) {
		ok = model_step(&r, &rng);
		if (ok && (i & 1023) == 0)
			ok = CHECK(cowtable_count(&r.table) == r.tracked, AT "count %zu, model %zu",
			           AT_ARGS(&r), cowtable_count(&r.table), r.tracked);
	}
	/* Every key once more, then drain: the table must end empty. */
	for (k = 0; k < keys && ok; k++)
		ok = model_lookup(&r, k);
	for (k = 0; k < keys && ok; k++)
		while (ok && r.model[k].refs != 0)
			ok = model_release(&r, k);
	if (ok)
		ok = CHECK(cowtable_count(&r.table) == 0, AT "count %zu after the drain",
		           AT_ARGS(&r), cowtable_count(&r.table));
	cowtable_ctx_put(r.ctx);
	cowtable_fini(&r.table);
	if (ok && !test_alloc_balanced(&alloc, "model"))
		ok = 0;
	free(r.model);
	printf("%s: %zu keys %zu pages apart from %#lx, %" PRIu64 " ops, seed %" PRIu64
	       ", peak %lld bytes\n",
	       ok ? "ok" : "FAILED", keys, stride, (unsigned long)base, ops, seed,
	       (long long)alloc.peak);
	return ok;
}

/*
 * The real limit: one page marked up to COWTABLE_REFS_MAX (2^24 - 1), then
 * refused, and its count intact on the way down.
 */
static int refs_max(void)
{
	struct cowtable table;
	struct cowtable_ctx *ctx;
	uintptr_t v = 0x123000;
	uint32_t refs = 0, i;
	int ok;

	if (!CHECK(cowtable_init(&table, NULL) == 0 && (ctx = cowtable_ctx_get(&table)) != NULL,
	           "set-up"))
		return 0;
	ok = cowtable_mark(ctx, v, 77) == 2;
	for (i = 3; i <= COWTABLE_REFS_MAX && ok; i++)
		ok = cowtable_mark(ctx, v, 77) == (int)i;
	ok = ok && cowtable_mark(ctx, v, 77) == COWTABLE_EOVERFLOW &&
	     cowtable_lookup(ctx, v, NULL, &refs) && refs == COWTABLE_REFS_MAX &&
	     cowtable_release(ctx, v, NULL) == COWTABLE_SHARED &&
	     cowtable_mark(ctx, v, 77) == (int)COWTABLE_REFS_MAX &&
	     cowtable_mark(ctx, v + COWTABLE_PAGE_SIZE, 77) == 2;
	for (i = COWTABLE_REFS_MAX; i > 1 && ok; i--)
		ok = cowtable_release(ctx, v, NULL) == COWTABLE_SHARED;
	ok = ok && cowtable_release(ctx, v, NULL) == COWTABLE_LAST;
	cowtable_ctx_put(ctx);
	cowtable_fini(&table);
	printf("%s: one page up to COWTABLE_REFS_MAX (%u) and down\n", ok ? "ok" : "FAILED",
	       (unsigned)COWTABLE_REFS_MAX);
	return CHECK(ok, "one page up to COWTABLE_REFS_MAX and down");
}

int main(int argc, char **argv)
{
	uint64_t seed = 20261126, ops = 1000000;
	int i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--seed") == 0)
			seed = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--ops") == 0)
			ops = strtoull(argv[i + 1], NULL, 0);
	}
	printf("model test: seed %" PRIu64 ", refs max %llu\n", seed,
	       (unsigned long long)TEST_REFS_MAX);
	/* Hot: 64 keys across a block edge, entries die and return constantly. */
	run_phase(seed, 64, 1, ops, 0x10000);
	/* Wide: 200000 keys, tall towers, long level-0 runs. */
	run_phase(seed + 1, 200000, 1, ops, (uintptr_t)0x7f0000000000ull);
	/* The top of the address space: keys near UINTPTR_MAX sort correctly. */
	run_phase(seed + 2, 4096, 1, ops / 4, UINTPTR_MAX - 4096 * COWTABLE_PAGE_SIZE + 1);
	/* Sparse from page 0: one or two keys a block, so leaves are born and die. */
	run_phase(seed + 3, 512, 37, ops / 4, 0);
	/* 63 pages apart: every slot index, first and last slots of blocks side by side. */
	run_phase(seed + 4, 1000, 63, ops / 4, 0x20000000);
	if (TEST_REFS_MAX == COWTABLE_REFS_MAX)
		refs_max();
	return check_exit("model");
}
