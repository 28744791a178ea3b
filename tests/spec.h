/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The sequential specification of one page, as include/cowtable.h gives it:
 * untracked (refs 0), or tracked with a frame and a count of 1 to refs_max.
 * Everything else of the contract (addresses, ranges, EINVAL, ENOMEM) is
 * about which pages a call touches; what happens to each page is here, once,
 * for every test that needs it: the reference model (tests/model.h), the
 * model test and the linearizability checker (stress/lin.c, which the
 * kernel module compiles too: so no libc here).
 */
#ifndef COWTABLE_SPEC_H
#define COWTABLE_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "cowtable.h"

struct spec_page {
	cowtable_frame_t frame;
	uint32_t refs; /* 0: untracked */
};

/*
 * cowtable_mark() of the page with @frame: 2 for an untracked page (a new
 * entry) and n + 1 for a tracked one with that frame; EEXIST (another frame)
 * before EOVERFLOW (the count at @refs_max), the order the header lists
 * them in.  A mark never returns 1.  Errors change nothing.
 */
static inline int spec_mark(struct spec_page *p, cowtable_frame_t frame, uint32_t refs_max)
{
	if (p->refs == 0) {
		p->frame = frame;
		p->refs = 2;
		return 2;
	}
	if (p->frame != frame)
		return COWTABLE_EEXIST;
	if (p->refs >= refs_max)
		return COWTABLE_EOVERFLOW;
	return (int)++p->refs;
}

/*
 * cowtable_release(): NOT_COW for an untracked page (nothing changed,
 * @frame untouched); otherwise SHARED, or LAST when it drops the last
 * reference and the page becomes untracked, with *@frame set.
 */
static inline int spec_release(struct spec_page *p, cowtable_frame_t *frame)
{
	if (p->refs == 0)
		return COWTABLE_NOT_COW;
	if (frame != 0)
		*frame = p->frame;
	if (--p->refs > 0)
		return COWTABLE_SHARED;
	p->frame = 0;
	return COWTABLE_LAST;
}

/* cowtable_lookup(): whether tracked; frame and count when it is. */
static inline bool spec_lookup(const struct spec_page *p, cowtable_frame_t *frame, uint32_t *refs)
{
	if (p->refs == 0)
		return false;
	if (frame != 0)
		*frame = p->frame;
	if (refs != 0)
		*refs = p->refs;
	return true;
}

#endif /* COWTABLE_SPEC_H */
