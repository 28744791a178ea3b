/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario grace_poller: the grace scenario with a third context that only
 * polls, so that the epoch can advance between the writer's unlink and the
 * reader's section (docs/verification.md, "Findings").
 *
 *   main    mark P and release it: P at 1
 *   writer  release P: LAST, kills and retires the leaf; reclaim x WRITER_POLLS
 *   reader  look up P: absent, or the frame with 1
 *   poller  reclaim x POLLER_POLLS on a context of its own
 *
 * With the code as it is (CT_GRACE_EPOCHS 2) GenMC finds, under RC11 and
 * IMM, a reader that observes epoch e + 1 and still reads the leaf unlinked
 * before its batch was sealed at e: ck_epoch_begin() does not order the
 * section's loads after its load of the global epoch.  The poller advances
 * e to e + 1, the writer e + 1 to e + 2 (the reader is at e + 1), and frees
 * the leaf under the reader.  -DCT_GRACE_EPOCHS=3 waits one advance more;
 * GM_REACH_FREE asserts that the leaf is never freed, which GenMC must
 * refute, so that the check with 3 is not vacuous.
 */
#include "harness.h"

#define P GM_PAGE(1, 0)
#define F 7
#ifndef WRITER_POLLS
#define WRITER_POLLS 2
#endif
#ifndef POLLER_POLLS
#define POLLER_POLLS 1
#endif

static void *writer(void *arg)
{
	cowtable_frame_t f = 0;
	int i;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_LAST && f == F);
	for (i = 0; i < WRITER_POLLS; i++)
		cowtable_reclaim(gm_ctx[0]);
#ifdef GM_REACH_FREE
	assert(gm_frees[gm_self()] == 0);
#endif
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
	for (i = 0; i < POLLER_POLLS; i++)
		cowtable_reclaim(gm_ctx[2]);
	return NULL;
}

int main(void)
{
	pthread_t a, b, c;
	cowtable_frame_t f;

	gm_init(3);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_SHARED);
	pthread_create(&a, NULL, writer, NULL);
	pthread_create(&b, NULL, reader, NULL);
	pthread_create(&c, NULL, poller, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	pthread_join(c, NULL);
	assert(gm_slot(P) == 0);
	gm_check_final();
	return 0;
}
