/*
 * Range operations: fork (mark a run of pages), munmap and exit (release a
 * run), and ordered iteration.  They walk the skip list in key order so that
 * a sorted run costs O(1) amortized per page, and they work in batches of
 * CT_RANGE_BATCH pages per epoch section so that a long range never holds
 * back reclamation for everyone else.
 */
#include "ct_internal.h"

/* Pages handled per epoch section; also the size of the on-stack buffers (1.5 KiB at most). */
#define CT_RANGE_BATCH 64

/*
 * After a batch that stopped at @n (the first node not looked at, or NULL):
 * whether the walk goes on, and from which address.  A node with the key of
 * the last page handled is a newer entry for that page: it is skipped.
 */
static bool ct_resume(const struct ct_node *n, uintptr_t end, uintptr_t *from)
{
	if (n == NULL || n->key >= end)
		return false;
	if (n->key >= *from)
		*from = n->key;
	return true;
}

int cowtable_mark_range(struct cowtable_ctx *ctx, uintptr_t start, size_t npages,
                        const cowtable_frame_t *frames, size_t *marked)
{
	struct ct_cursor cur;
	size_t i = 0, stop;
	int ret = 0;

	if (marked != NULL)
		*marked = 0;
	if (ctx == NULL || (start & (COWTABLE_PAGE_SIZE - 1)) != 0 || npages == 0 ||
	    frames == NULL || npages - 1 > (UINTPTR_MAX - start) >> COWTABLE_PAGE_SHIFT)
		return COWTABLE_EINVAL;

	cur.spare = NULL;
	while (i < npages && ret >= 0) {
		stop = npages - i > CT_RANGE_BATCH ? i + CT_RANGE_BATCH : npages;
		cur.finger = 0; /* fingers do not outlive their section */
		ct_enter(ctx);
		for (; i < stop; i++) {
			ret = ct_mark_locked(ctx, &cur, start + i * COWTABLE_PAGE_SIZE, frames[i]);
			if (ret < 0)
				break;
		}
		ct_exit(ctx);
		ct_maybe_reclaim(ctx);
	}
	if (cur.spare != NULL)
		ct_node_free(ctx, cur.spare);
	if (marked != NULL)
		*marked = i;
	return ret < 0 ? ret : 0;
}

size_t cowtable_release_range(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                              cowtable_last_fn *last, void *arg)
{
	struct {
		uintptr_t vaddr;
		cowtable_frame_t frame;
	} lasts[CT_RANGE_BATCH];
	struct ct_cursor cur;
	struct ct_node *n;
	uintptr_t from = start, word;
	size_t released = 0;
	unsigned int seen, nlast, i;
	cowtable_frame_t frame;
	bool more = true;
	int r;

	if (ctx == NULL || end <= start)
		return 0;
	while (more) {
		seen = nlast = 0;
		cur.finger = 0;
		ct_enter(ctx);
		n = ct_seek(ctx, from);
		while (n != NULL && n->key < end && seen < CT_RANGE_BATCH) {
			word = ct_load_word(&n->next[0]);
			/* Keys only grow, but a page may have a dead node and a newer one. */
			if (n->key >= from && !(word & CT_MARK)) {
				seen++;
				r = ct_release_node(ctx, n, &frame, &cur);
				if (r != COWTABLE_NOT_COW) {
					released++;
					from = n->key + 1;
				}
				if (r == COWTABLE_LAST) {
					lasts[nlast].vaddr = n->key;
					lasts[nlast].frame = frame;
					nlast++;
				}
			}
			n = ct_ptr(word);
		}
		more = ct_resume(n, end, &from);
		ct_exit(ctx);
		/* Outside the section: the callback may block or call cowtable itself. */
		for (i = 0; i < nlast && last != NULL; i++)
			last(lasts[i].vaddr, lasts[i].frame, arg);
		ct_maybe_reclaim(ctx);
	}
	return released;
}

size_t cowtable_foreach(struct cowtable_ctx *ctx, uintptr_t start, uintptr_t end,
                        cowtable_visit_fn *visit, void *arg)
{
	struct {
		uintptr_t vaddr;
		cowtable_frame_t frame;
		uint32_t refs;
	} batch[CT_RANGE_BATCH];
	struct ct_node *n;
	uintptr_t from = start, word;
	size_t visited = 0;
	unsigned int nb, i;
	bool more = true;
	uint32_t refs;

	if (ctx == NULL || visit == NULL || end <= start)
		return 0;
	while (more) {
		nb = 0;
		ct_enter(ctx);
		n = ct_seek(ctx, from);
		while (n != NULL && n->key < end && nb < CT_RANGE_BATCH) {
			word = ct_load_word(&n->next[0]);
			refs = ct_load_u32(&n->refs);
			if (n->key >= from && !(word & CT_MARK) && refs != 0) {
				batch[nb].vaddr = n->key;
				batch[nb].frame = n->frame;
				batch[nb].refs = refs;
				nb++;
				from = n->key + 1;
			}
			n = ct_ptr(word);
		}
		more = ct_resume(n, end, &from);
		ct_exit(ctx);
		/* Outside the section, on copies: the visitor sees no node and may block. */
		for (i = 0; i < nb; i++) {
			visited++;
			if (!visit(batch[i].vaddr, batch[i].frame, batch[i].refs, arg))
				return visited;
		}
	}
	return visited;
}
