/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A reference model of cowtable's contract (include/cowtable.h): the same
 * operations on a plain sorted array, one call at a time, as the header
 * describes them.  Tests run an operation on the table and on the model and
 * compare the results, and from time to time the whole table.
 *
 * The model knows pages, frames and counts, nothing of leaves, epochs or
 * contexts: a context is only "given" (non-NULL) or not.  What it knows of
 * blocks is what the contract says: memory is needed only for a block of
 * MODEL_BLOCK_PAGES pages with no tracked page, and a range that fails for
 * want of memory fails at the first of its pages in such a block.
 *
 * A page is untracked, or tracked with a frame and a count of 1 to refs_max
 * (COWTABLE_REFS_MAX, or the limit of a variant built with a smaller
 * CT_REFS_MAX).  Any address is a key: page 0 and the top page of the
 * address space are ordinary pages.  Header only; every function is static
 * inline; the model aborts if malloc fails.
 *
 *   model_init(m, refs_max), model_fini(m)
 *   model_mark(), model_release(), model_lookup()        the single-page calls
 *   model_mark_range(), model_release_range(), model_foreach()
 *   model_count(), model_find()                           what it holds
 *   model_mark_needs_leaf(), model_range_enomem_ok()      where ENOMEM may occur
 *   model_compare()                                       the whole table against it
 */
#ifndef COWTABLE_MODEL_H
#define COWTABLE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cowtable.h"
#include "spec.h"

#define MODEL_PAGE        COWTABLE_PAGE_SIZE
#define MODEL_BLOCK_PAGES 64 /* the contract's "block of 64 pages" */
#define MODEL_BLOCK       (MODEL_BLOCK_PAGES * MODEL_PAGE)

/* A tracked page. */
struct model_page {
	uintptr_t vaddr;
	cowtable_frame_t frame;
	uint32_t refs; /* 1 .. refs_max */
};

struct model {
	struct model_page *page; /* every tracked page, ascending by address */
	size_t n, cap;
	uint32_t refs_max;
};

static inline void model_init(struct model *m, uint32_t refs_max)
{
	m->page = NULL;
	m->n = m->cap = 0;
	m->refs_max = refs_max;
}

static inline void model_fini(struct model *m)
{
	free(m->page);
	model_init(m, m->refs_max);
}

static inline bool model_aligned(uintptr_t vaddr)
{
	return (vaddr & (MODEL_PAGE - 1)) == 0;
}

/* The index of the first tracked page at or above @vaddr (m->n if none). */
static inline size_t model_lower_bound(const struct model *m, uintptr_t vaddr)
{
	size_t lo = 0, hi = m->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (m->page[mid].vaddr < vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The tracked page at @vaddr, or NULL. */
static inline struct model_page *model_find(const struct model *m, uintptr_t vaddr)
{
	size_t i = model_lower_bound(m, vaddr);

	return i < m->n && m->page[i].vaddr == vaddr ? &m->page[i] : NULL;
}

static inline size_t model_count(const struct model *m)
{
	return m->n;
}

/* Whether any page of @vaddr's block is tracked (then the block has a leaf). */
static inline bool model_block_tracked(const struct model *m, uintptr_t vaddr)
{
	uintptr_t block = vaddr & ~(MODEL_BLOCK - 1);
	size_t i = model_lower_bound(m, block);

	return i < m->n && m->page[i].vaddr - block < MODEL_BLOCK;
}

static inline void model_insert(struct model *m, uintptr_t vaddr, cowtable_frame_t frame,
                                uint32_t refs)
{
	size_t i = model_lower_bound(m, vaddr);

	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->page = (struct model_page *)realloc(m->page, m->cap * sizeof(*m->page));
		if (m->page == NULL)
			abort();
	}
	memmove(&m->page[i + 1], &m->page[i], (m->n - i) * sizeof(*m->page));
	m->page[i].vaddr = vaddr;
	m->page[i].frame = frame;
	m->page[i].refs = refs;
	m->n++;
}

static inline void model_remove(struct model *m, struct model_page *p)
{
	size_t i = (size_t)(p - m->page);

	memmove(&m->page[i], &m->page[i + 1], (m->n - i - 1) * sizeof(*m->page));
	m->n--;
}

/*
 * cowtable_mark(): the result, and the change made.  EINVAL comes first
 * (no context, an unaligned page, a frame above COWTABLE_FRAME_MAX); then
 * EEXIST (another frame) before EOVERFLOW (the count at its limit), the
 * order the header lists them in.  A new entry and a page with one sharer
 * left both become 2; a mark never returns 1.  Errors change nothing.
 */
static inline int model_mark(struct model *m, bool ctx, uintptr_t vaddr, cowtable_frame_t frame)
{
	struct model_page *p;
	struct spec_page s = {0, 0};
	int r;

	if (!ctx || !model_aligned(vaddr) || frame > COWTABLE_FRAME_MAX)
		return COWTABLE_EINVAL;
	p = model_find(m, vaddr);
	if (p != NULL) {
		s.frame = p->frame;
		s.refs = p->refs;
	}
	r = spec_mark(&s, frame, m->refs_max);
	if (p == NULL)
		model_insert(m, vaddr, s.frame, s.refs);
	else
		p->refs = s.refs;
	return r;
}

/*
 * Whether cowtable_mark(@vaddr, @frame) may call the allocator, and so may
 * fail with ENOMEM: it creates an entry in a block with no tracked page.
 */
static inline bool model_mark_needs_leaf(const struct model *m, bool ctx, uintptr_t vaddr,
                                         cowtable_frame_t frame)
{
	return ctx && model_aligned(vaddr) && frame <= COWTABLE_FRAME_MAX &&
	       !model_block_tracked(m, vaddr);
}

/*
 * cowtable_release(): SHARED or LAST with *@frame set, or NOT_COW / EINVAL
 * with *@frame untouched and nothing changed.  LAST removes the entry.
 */
static inline int model_release(struct model *m, bool ctx, uintptr_t vaddr, cowtable_frame_t *frame)
{
	struct model_page *p;
	struct spec_page s;
	int r;

	if (!ctx || !model_aligned(vaddr))
		return COWTABLE_EINVAL;
	p = model_find(m, vaddr);
	if (p == NULL)
		return COWTABLE_NOT_COW;
	s.frame = p->frame;
	s.refs = p->refs;
	r = spec_release(&s, frame);
	if (r == COWTABLE_LAST)
		model_remove(m, p);
	else
		p->refs = s.refs;
	return r;
}

/*
 * cowtable_lookup() (and cowtable_is_cow(), which is its result): false,
 * outputs untouched, for no context, an unaligned address or an untracked
 * page.
 */
static inline bool model_lookup(const struct model *m, bool ctx, uintptr_t vaddr,
                                cowtable_frame_t *frame, uint32_t *refs)
{
	const struct model_page *p;

	if (!ctx || !model_aligned(vaddr) || (p = model_find(m, vaddr)) == NULL)
		return false;
	if (frame != NULL)
		*frame = p->frame;
	if (refs != NULL)
		*refs = p->refs;
	return true;
}

/*
 * cowtable_mark_range()'s EINVAL: no context, an unaligned start, no pages,
 * no frames, a range that wraps past the top of the address space (its last
 * page must be a page), or any frame above COWTABLE_FRAME_MAX.
 */
static inline bool model_range_invalid(bool ctx, uintptr_t start, size_t npages,
                                       const cowtable_frame_t *frames)
{
	size_t i;

	if (!ctx || !model_aligned(start) || npages == 0 || frames == NULL ||
	    npages - 1 > (UINTPTR_MAX - start) / MODEL_PAGE)
		return true;
	for (i = 0; i < npages; i++)
		if (frames[i] > COWTABLE_FRAME_MAX)
			return true;
	return false;
}

/*
 * cowtable_mark_range(): each page marked as by model_mark(), ascending,
 * up to the first error, which is returned (0 if none) with *@marked the
 * number of pages marked before it.  EINVAL marks nothing.
 */
static inline int model_mark_range(struct model *m, bool ctx, uintptr_t start, size_t npages,
                                   const cowtable_frame_t *frames, size_t *marked)
{
	size_t i;
	int r;

	*marked = 0;
	if (model_range_invalid(ctx, start, npages, frames))
		return COWTABLE_EINVAL;
	for (i = 0; i < npages; i++) {
		r = model_mark(m, true, start + i * MODEL_PAGE, frames[i]);
		if (r < 0)
			return r;
		*marked = i + 1;
	}
	return 0;
}

/*
 * Whether cowtable_mark_range() may fail with ENOMEM at page @at, having
 * marked pages [0, @at): the call is valid, every page before @at would be
 * marked, and page @at is the first page of the range in a block with no
 * tracked page (the contract builds such a block's leaf privately with every
 * page of the range in it, so it fails, or not, as a whole).  The blocks of
 * earlier pages are other blocks, so the model's state before the call
 * decides.  Leaves the model unchanged.
 */
static inline bool model_range_enomem_ok(const struct model *m, uintptr_t start, size_t npages,
                                         const cowtable_frame_t *frames, size_t at)
{
	const struct model_page *p;
	uintptr_t vaddr = start + at * MODEL_PAGE;
	size_t i;

	if (model_range_invalid(true, start, npages, frames) || at >= npages)
		return false;
	if (at > 0 && (vaddr & (MODEL_BLOCK - 1)) != 0)
		return false;
	for (i = 0; i < at; i++) {
		p = model_find(m, start + i * MODEL_PAGE);
		if (p != NULL && (p->frame != frames[i] || p->refs >= m->refs_max))
			return false;
	}
	return !model_block_tracked(m, vaddr);
}

/* Called by model_release_range() for each LAST, ascending. */
typedef void model_last_fn(uintptr_t vaddr, cowtable_frame_t frame, void *arg);

/*
 * cowtable_release_range(): one reference of every tracked page whose
 * address is in [@start, @end) dropped; @last called for each page whose
 * last one it was, in ascending order.  Returns the pages released; 0 if
 * there is no context or @end <= @start.
 */
static inline size_t model_release_range(struct model *m, bool ctx, uintptr_t start, uintptr_t end,
                                         model_last_fn *last, void *arg)
{
	size_t i, keep, released = 0;

	if (!ctx || end <= start || m->n == 0)
		return 0;
	i = keep = model_lower_bound(m, start);
	for (; i < m->n && m->page[i].vaddr < end; i++) {
		released++;
		if (--m->page[i].refs == 0) {
			if (last != NULL)
				last(m->page[i].vaddr, m->page[i].frame, arg);
			continue;
		}
		m->page[keep++] = m->page[i];
	}
	memmove(&m->page[keep], &m->page[i], (m->n - i) * sizeof(*m->page));
	m->n -= i - keep;
	return released;
}

/* Called by model_foreach() for each tracked page; false stops the walk. */
typedef bool model_visit_fn(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs, void *arg);

/*
 * cowtable_foreach(): the tracked pages in [@start, @end), ascending.
 * Returns the pages visited, the one whose visit returned false included;
 * 0 if there is no context, no @visit or @end <= @start.
 */
static inline size_t model_foreach(const struct model *m, bool ctx, uintptr_t start, uintptr_t end,
                                   model_visit_fn *visit, void *arg)
{
	size_t i, visited = 0;

	if (!ctx || visit == NULL || end <= start)
		return 0;
	for (i = model_lower_bound(m, start); i < m->n && m->page[i].vaddr < end; i++) {
		visited++;
		if (!visit(m->page[i].vaddr, m->page[i].frame, m->page[i].refs, arg))
			break;
	}
	return visited;
}

/*
 * The whole table against the model, with nothing running: a foreach over
 * the address space visits exactly the model's pages, in order, with their
 * frames and counts; a lookup of each agrees, and so does is_cow; the pages
 * on either side of each are tracked only if the model says so; and the
 * count is the model's.  Returns true, or false with the first difference
 * described in @why.
 */
struct model_walk {
	const struct model *m;
	size_t i;
	char *why;
	size_t len;
};

static inline bool model_compare_visit(uintptr_t vaddr, cowtable_frame_t frame, uint32_t refs,
                                       void *arg)
{
	struct model_walk *w = (struct model_walk *)arg;
	const struct model_page *p = w->i < w->m->n ? &w->m->page[w->i] : NULL;

	if (p == NULL || p->vaddr != vaddr || p->frame != frame || p->refs != refs) {
		snprintf(w->why, w->len,
		         "foreach visit %zu: page %#jx frame %#jx refs %u; model: %s %#jx frame "
		         "%#jx refs %u",
		         w->i, (uintmax_t)vaddr, (uintmax_t)frame, refs, p ? "page" : "nothing",
		         (uintmax_t)(p ? p->vaddr : 0), (uintmax_t)(p ? p->frame : 0),
		         p ? p->refs : 0);
		return false;
	}
	w->i++;
	return true;
}

/* Whether @vaddr, a page next to page @i, is tracked: it is page i - 1 or i + 1 (wrapping). */
static inline bool model_neighbour_tracked(const struct model *m, size_t i, uintptr_t vaddr)
{
	return m->page[i > 0 ? i - 1 : m->n - 1].vaddr == vaddr ||
	       m->page[i + 1 < m->n ? i + 1 : 0].vaddr == vaddr;
}

static inline bool model_compare(const struct model *m, const struct cowtable *table,
                                 struct cowtable_ctx *ctx, char *why, size_t len)
{
	struct model_walk w = {m, 0, why, len};
	cowtable_frame_t f;
	uint32_t r;
	size_t i, visited;
	uintptr_t v, side[2];
	int s;

	why[0] = 0;
	visited = cowtable_foreach(ctx, 0, UINTPTR_MAX, model_compare_visit, &w);
	if (why[0] != 0)
		return false;
	if (visited != m->n || w.i != m->n) {
		snprintf(why, len, "foreach visited %zu pages, model has %zu", visited, m->n);
		return false;
	}
	for (i = 0; i < m->n; i++) {
		v = m->page[i].vaddr;
		f = 0;
		r = 0;
		if (!cowtable_lookup(ctx, v, &f, &r) || f != m->page[i].frame ||
		    r != m->page[i].refs || !cowtable_is_cow(ctx, v)) {
			snprintf(why, len,
			         "lookup %#jx: frame %#jx refs %u; model frame %#jx refs %u",
			         (uintmax_t)v, (uintmax_t)f, r, (uintmax_t)m->page[i].frame,
			         m->page[i].refs);
			return false;
		}
		side[0] = v - MODEL_PAGE; /* wraps at page 0 and the top: still a page */
		side[1] = v + MODEL_PAGE;
		for (s = 0; s < 2; s++) {
			f = 0x5a5a;
			r = 0x5a5a;
			if (!model_neighbour_tracked(m, i, side[s]) &&
			    (cowtable_lookup(ctx, side[s], &f, &r) ||
			     cowtable_is_cow(ctx, side[s]) || f != 0x5a5a || r != 0x5a5a)) {
				snprintf(why, len, "untracked page %#jx found (frame %#jx refs %u)",
				         (uintmax_t)side[s], (uintmax_t)f, r);
				return false;
			}
		}
	}
	if (cowtable_count(table) != m->n) {
		snprintf(why, len, "count %zu, model %zu", cowtable_count(table), m->n);
		return false;
	}
	return true;
}

#endif /* COWTABLE_MODEL_H */
