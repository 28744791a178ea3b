/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario barrier: cowtable_barrier() frees a leaf while a reader may be
 * inside a section that reached it (docs/verification.md).  The reader's
 * record already holds the epoch of an earlier section, so a scan that
 * reads its new "active" but its old epoch lets the epoch advance past a
 * section that has not recorded its own yet: one ck_epoch_synchronize()
 * (two advances) is then not a grace period for a leaf that the section
 * loaded before it read the epoch.  The barrier frees only by rule G: it
 * polls before it seals, and synchronizes and polls again until the rule
 * lets the batch go (docs/verification.md, finding 7, on what keeps the
 * leaf).  POLLER adds a third context that polls.
 *
 *   main    mark P and release it: P at 1; the reader's context looks P up
 *   writer  release P: LAST, kills and retires the leaf; cowtable_barrier():
 *           the leaf is freed when it returns
 *   reader  look up P: absent, or the frame with 1
 *   poller  (POLLER > 0) reclaim x POLLER on a context of its own
 */
#include "harness.h"

#define P GM_PAGE(1, 0)
#define F 7
#ifndef POLLER
#define POLLER 0 /* polls of a third context (0: no third thread) */
#endif

static void *writer(void *arg)
{
	cowtable_frame_t f = 0;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_LAST && f == F);
	cowtable_barrier(gm_ctx[0]);
	/* Everything the context retired is freed. */
	/* The leaf and its index node, which died with it, are freed. */
	assert(gm_ctx[0]->nsealed == 0 && gm_ctx[0]->open.n == 0 && gm_frees[gm_self()] == 2);
	return NULL;
}

static void *reader(void *arg)
{
	cowtable_frame_t f;
	uint32_t refs;

	(void)arg;
	if (cowtable_lookup(gm_ctx[1], P, &f, &refs))
		assert(f == F && refs == 1);
	return NULL;
}

static void *poller(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < POLLER; i++)
		cowtable_reclaim(gm_ctx[2]);
	return NULL;
}

int main(void)
{
	pthread_t a, b, c;
	cowtable_frame_t f;
	uint32_t refs;

	gm_init(POLLER > 0 ? 3 : 2);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_SHARED);
	/* An earlier section of the reader's context: its record says epoch 1. */
	assert(cowtable_lookup(gm_ctx[1], P, &f, &refs) && f == F && refs == 1);
	pthread_create(&a, NULL, writer, NULL);
	pthread_create(&b, NULL, reader, NULL);
	if (POLLER > 0)
		pthread_create(&c, NULL, poller, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	if (POLLER > 0)
		pthread_join(c, NULL);
	assert(gm_slot(P) == 0);
	gm_check_final();
	return 0;
}
