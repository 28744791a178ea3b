/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Scenario grace: a leaf is retired and freed while a reader may be inside
 * a section that reached it (docs/verification.md).  The writer kills the
 * leaf, retires it and calls cowtable_reclaim() three times: poll, seal,
 * poll, poll, which is enough to free it two epoch advances after its seal
 * when the reader lets the epoch advance.  A freed leaf is poisoned and
 * then freed (harness.h): the reader must never see the poison (RC11 also
 * reports any access racing with the free).
 *
 *   main    mark P and release it: P at 1
 *   writer  release P: LAST, kills and retires the leaf; reclaim x3
 *   reader  look up P: absent, or the frame with 1
 */
#include "harness.h"

#define P GM_PAGE(1, 0)
#define F 7

static void *writer(void *arg)
{
	cowtable_frame_t f = 0;
	int i;

	(void)arg;
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_LAST && f == F);
	for (i = 0; i < 3; i++)
		cowtable_reclaim(gm_ctx[0]);
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

int main(void)
{
	pthread_t a, b;
	cowtable_frame_t f;

	gm_init(2);
	assert(cowtable_mark(gm_ctx[0], P, F) == 2);
	assert(cowtable_release(gm_ctx[0], P, &f) == COWTABLE_SHARED);
	pthread_create(&a, NULL, writer, NULL);
	pthread_create(&b, NULL, reader, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	assert(gm_slot(P) == 0);
	gm_check_final();
	return 0;
}
