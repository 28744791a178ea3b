// SPDX-License-Identifier: BSD-2-Clause
/*
 * Concurrent marks and releases on a few hot keys, so that entries die and
 * are born again all the time, with lookups running through them.
 *
 * Checked after a final drain, per key: LAST results == successful releases
 * - successful marks (each entry lifetime is one mark that creates it at 2,
 * m further marks and m + 2 releases, one of them LAST).  Also: a mark never
 * returns 1 or an error, a lookup never sees a count of 0 or a wrong frame,
 * the table ends empty and the allocator balanced.
 *
 * Usage: test_concurrent [threads] [ops per thread] [keys]
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_PRINT_LIMIT 20 /* threads keep going after a failure */
#include "check.h"
#include "cowtable.h"
#include "test_alloc.h"

#define MAX_KEYS 64
#define PAGE     COWTABLE_PAGE_SIZE

struct tally {
	int64_t marks, releases, lasts;
};

struct worker {
	pthread_t tid;
	struct cowtable *table;
	uint64_t seed, ops;
	unsigned int keys;
	struct tally t[MAX_KEYS];
};

static pthread_barrier_t start;

static cowtable_frame_t frame_of(unsigned int k)
{
	return 0x1000 + k;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	struct cowtable_ctx *ctx = cowtable_ctx_get(w->table);
	uint64_t rng = w->seed, i, x;
	cowtable_frame_t f;
	uint32_t refs;
	unsigned int k;
	int r;

	if (!CHECK(ctx != NULL, "no context"))
		return NULL;
	pthread_barrier_wait(&start);
	for (i = 0; i < w->ops; i++) {
		x = test_rand(&rng);
		k = (unsigned int)((x >> 16) % w->keys);
		switch (x & 7) {
		case 0:
			f = 0;
			refs = 0;
			CHECK(!cowtable_lookup(ctx, (uintptr_t)k * PAGE, &f, &refs) ||
			              (refs != 0 && f == frame_of(k)),
			      "lookup of key %u saw a dead or foreign entry: frame %llu refs %u", k,
			      (unsigned long long)f, refs);
			break;
		case 1:
		case 2:
		case 3:
			r = cowtable_mark(ctx, (uintptr_t)k * PAGE, frame_of(k));
			if (CHECK(r >= 2, "mark of key %u returned %d", k, r))
				w->t[k].marks++;
			break;
		default:
			f = 0;
			r = cowtable_release(ctx, (uintptr_t)k * PAGE, &f);
			if (r == COWTABLE_SHARED || r == COWTABLE_LAST) {
				w->t[k].releases++;
				w->t[k].lasts += r == COWTABLE_LAST;
				CHECK(f == frame_of(k),
				      "release of key %u returned a foreign frame %llu", k,
				      (unsigned long long)f);
			} else {
				CHECK(r == COWTABLE_NOT_COW, "release of key %u returned %d", k, r);
			}
			break;
		}
		if ((x & 0xfff00000) == 0)
			sched_yield(); /* now and then, be preempted mid-stream */
	}
	cowtable_ctx_put(ctx);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int threads = argc > 1 ? (unsigned int)atoi(argv[1]) : 4;
	uint64_t ops = argc > 2 ? strtoull(argv[2], NULL, 0) : 400000;
	unsigned int keys = argc > 3 ? (unsigned int)atoi(argv[3]) : 8;
	struct test_alloc a;
	struct cowtable_allocator al = test_allocator(&a);
	struct cowtable table;
	struct cowtable_ctx *ctx;
	struct worker *w;
	struct tally sum;
	unsigned int i, k;
	int64_t lives = 0, left;
	int r;

	if (threads < 1 || keys < 1 || keys > MAX_KEYS)
		return 2;
	w = calloc(threads, sizeof(*w));
	if (w == NULL || cowtable_init(&table, &al) != 0)
		return 2;
	pthread_barrier_init(&start, NULL, threads);
	for (i = 0; i < threads; i++) {
		w[i].table = &table;
		w[i].seed = 0x5eed0000 + i;
		w[i].ops = ops;
		w[i].keys = keys;
		pthread_create(&w[i].tid, NULL, work, &w[i]);
	}
	for (i = 0; i < threads; i++)
		pthread_join(w[i].tid, NULL);

	/* Drain: release every key until it is gone. */
	ctx = cowtable_ctx_get(&table);
	for (k = 0; k < keys && ctx != NULL; k++) {
		sum.marks = sum.releases = sum.lasts = 0;
		for (i = 0; i < threads; i++) {
			sum.marks += w[i].t[k].marks;
			sum.releases += w[i].t[k].releases;
			sum.lasts += w[i].t[k].lasts;
		}
		/* No key can need more releases than twice its successful marks. */
		for (left = 2 * (sum.marks + 1);
		     left > 0 &&
		     (r = cowtable_release(ctx, (uintptr_t)k * PAGE, NULL)) != COWTABLE_NOT_COW;
		     left--) {
			sum.releases++;
			sum.lasts += r == COWTABLE_LAST;
		}
		CHECK(left != 0, "key %u still tracked after %lld releases", k,
		      (long long)(2 * (sum.marks + 1)));
		lives += sum.lasts;
		CHECK(sum.lasts == sum.releases - sum.marks,
		      "key %u: %lld LAST results, but %lld releases - %lld marks", k,
		      (long long)sum.lasts, (long long)sum.releases, (long long)sum.marks);
	}
	CHECK(cowtable_count(&table) == 0, "%zu entries left after the drain",
	      cowtable_count(&table));
	cowtable_ctx_put(ctx);
	cowtable_fini(&table);
	test_alloc_balanced(&a, "concurrent");
	printf("%u threads x %" PRIu64 " ops on %u keys: %lld entry lifetimes\n", threads, ops,
	       keys, (long long)lives);
	free(w);
	return check_exit("concurrent");
}
