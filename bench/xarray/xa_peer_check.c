/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Checks the linux-xarray peer against cowtable's contract on one thread,
 * for both kinds of entry (a frame packed in a value entry, and a frame too
 * wide for one): counts, -EEXIST, releases down to the erase, and ranges
 * across batches, gaps and node boundaries.  The benchmark's workloads check
 * it again under concurrency.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <urcu.h>

#include "xa_peer.h"

static int failures;

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                               \
			failures++;                                                   \
		}                                                                     \
	} while (0)

static void count_last(unsigned long index, uint64_t frame, void *arg)
{
	(void)index;
	(void)frame;
	++*(size_t *)arg;
}

static void single(struct xa_peer *t, unsigned long index, uint64_t frame)
{
	uint64_t f = 0;
	uint32_t refs = 0;

	CHECK(!xa_peer_lookup(t, index, &f, &refs));
	CHECK(xa_peer_release(t, index, &f) == XA_PEER_NOT_COW);
	CHECK(xa_peer_mark(t, index, frame) == 2);
	CHECK(xa_peer_mark(t, index, frame) == 3);
	CHECK(xa_peer_mark(t, index, frame + 1) == -EEXIST);
	CHECK(xa_peer_lookup(t, index, &f, &refs) && f == frame && refs == 3);
	CHECK(xa_peer_release(t, index, &f) == XA_PEER_SHARED && f == frame);
	CHECK(xa_peer_release(t, index, &f) == XA_PEER_SHARED && f == frame);
	CHECK(xa_peer_release(t, index, &f) == XA_PEER_LAST && f == frame);
	CHECK(!xa_peer_lookup(t, index, &f, &refs));
	CHECK(xa_peer_release(t, index, &f) == XA_PEER_NOT_COW);
}

static void ranges(struct xa_peer *t, uint64_t frame_base)
{
	enum { N = 3000, FIRST = 1000 };
	uint64_t *frames = malloc(N * sizeof(*frames));
	size_t lasts = 0;
	uint64_t f;
	uint32_t refs;

	for (size_t i = 0; i < N; i++)
		frames[i] = frame_base + i;
	CHECK(xa_peer_mark_range(t, FIRST, N, frames) == 0);
	for (size_t i = 0; i < N; i++)
		CHECK(xa_peer_lookup(t, FIRST + i, &f, &refs) && f == frames[i] && refs == 2);
	CHECK(!xa_peer_lookup(t, FIRST - 1, &f, &refs));
	CHECK(!xa_peer_lookup(t, FIRST + N, &f, &refs));

	/* A second fork of the same range meets another frame half way. */
	frames[N / 2]++;
	CHECK(xa_peer_mark_range(t, FIRST, N, frames) == -EEXIST);
	frames[N / 2]--;
	CHECK(xa_peer_lookup(t, FIRST, &f, &refs) && refs == 3);
	CHECK(xa_peer_lookup(t, FIRST + N / 2, &f, &refs) && refs == 2);

	/* Gaps: release every third page on its own, down to its erase. */
	for (size_t i = 0; i < N; i += 3) {
		while (xa_peer_release(t, FIRST + i, &f) != XA_PEER_LAST)
			;
	}
	/*
	 * 2000 pages are left: [0, 1500) with 3 sharers, [1500, 3000) with 2.
	 * The first release leaves every one shared, the second frees the
	 * upper half, the third the lower.
	 */
	CHECK(xa_peer_release_range(t, 0, FIRST + N - 1, count_last, &lasts) == 2000 && lasts == 0);
	CHECK(xa_peer_release_range(t, FIRST, ~0ul, count_last, &lasts) == 2000 && lasts == 1000);
	CHECK(xa_peer_release_range(t, 0, ~0ul, count_last, &lasts) == 1000 && lasts == 2000);
	CHECK(xa_peer_release_range(t, 0, ~0ul, NULL, NULL) == 0);
	for (size_t i = 0; i < N; i++)
		CHECK(!xa_peer_lookup(t, FIRST + i, &f, &refs));
	free(frames);
}

int main(void)
{
	struct xa_peer *t;

	rcu_register_thread();
	t = xa_peer_new();
	single(t, 0, 7);
	single(t, 12345, 0xffffffffull);
	single(t, 1ul << 40, 1ull << 40); /* too wide to pack */
	single(t, ~0ul, ~0ull);
	ranges(t, 100);
	ranges(t, (1ull << 32) - 1500); /* half packed, half wide */
	xa_peer_free(t);
	rcu_unregister_thread();
	printf("xa_peer_check: %s\n", failures ? "FAILED" : "ok");
	return failures != 0;
}
