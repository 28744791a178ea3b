/*
 * Entries and their reference counts.  An entry is alive while its count is
 * non-zero; the release that moves it from 1 to 0 kills it, and nothing
 * moves a count away from 0, so a dead entry is never brought back.
 */
#include "ct_internal.h"

#ifdef CT_BROKEN_RELEASE_NO_ZERO_CHECK
/* Broken control, the seed's bug: a release decrements a dead count and wraps. */
#define CT_BROKEN_RELEASE_FROM_ZERO 1
#else
#define CT_BROKEN_RELEASE_FROM_ZERO 0
#endif

static bool ct_aligned(uintptr_t vaddr)
{
	return (vaddr & (COWTABLE_PAGE_SIZE - 1)) == 0;
}

/*
 * One more sharer for the live entry @n.  Returns the new count, an error,
 * or 0 if @n is dead (the caller helps unlink it and inserts afresh).
 */
static int ct_share(struct cowtable_ctx *ctx, struct ct_node *n, cowtable_frame_t frame)
{
	uint32_t refs = ct_load_u32(&n->refs);

	for (;;) {
#ifndef CT_BROKEN_INC_FROM_ZERO
		if (refs == 0)
			return 0;
#endif
		/* The frame never changes; the entry was alive when refs was read. */
		if (n->frame != frame)
			return COWTABLE_EEXIST;
		if (refs >= CT_REFS_MAX)
			return COWTABLE_EOVERFLOW;
#ifdef CT_BROKEN_MARK_OVERWRITE
		/* Broken control, the seed's bug: a mark resets a live entry. */
		ct_store_u32(&n->refs, 2);
		return 2;
#endif
		CT_DELAY(ctx);
		/*
		 * Linearization point of a mark that shares an existing entry.
		 * Fails when a concurrent mark or release changed the count;
		 * retry with the new value (which may now be 0).
		 */
		if (ct_cas_u32(&n->refs, refs, refs + 1))
			return (int)(refs + 1);
		refs = ct_load_u32(&n->refs);
	}
}

/*
 * cowtable_mark() inside an epoch section.  @cur carries the finger and a
 * spare node between the pages of a range; its preds/succs are left as the
 * last search found them, with the new node as the finger where it is linked.
 */
int ct_mark_locked(struct cowtable_ctx *ctx, struct ct_cursor *cur, uintptr_t vaddr,
                   cowtable_frame_t frame)
{
	struct ct_node *n = cur->spare;
	unsigned int height = n != NULL ? ct_node_height(n) : ct_random_height(ctx);
	unsigned int finger = cur->finger, filled, i;
	int ret;

	for (;;) {
		filled = ct_find(ctx, vaddr, cur->preds, cur->succs, height, finger);
		if (filled > cur->finger)
			cur->finger = filled;
		finger = 0;
		if (cur->succs[0] != NULL && cur->succs[0]->key == vaddr) {
			ret = ct_share(ctx, cur->succs[0], frame);
			if (ret != 0)
				break;
			/* Dead but still linked: mark it fully so the next search unlinks it. */
			ct_mark_tower(cur->succs[0]);
			continue;
		}
		if (n == NULL) {
			n = ct_node_alloc(ctx, height);
			if (n == NULL) {
				ret = COWTABLE_ENOMEM;
				break;
			}
		}
		n->key = vaddr;
		n->frame = frame;
		ct_store_u32(&n->refs, 2);
		/* A one-level node has nothing left to link once published. */
		ct_store_u32(&n->state,
		             (height << CT_HEIGHT_SHIFT) | (height == 1 ? CT_LINKED : 0));
		CT_DELAY(ctx);
		if (ct_link(ctx, n, cur->preds, cur->succs)) {
			ct_count_add(ctx, 1);
			/* The next, larger key starts from the new node where it is linked. */
			for (i = 0; i < height; i++)
				cur->preds[i] = n;
			n = NULL;
			ret = 2;
			break;
		}
	}
	cur->spare = n;
	return ret;
}

int cowtable_mark(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t frame)
{
	struct ct_cursor cur;
	int ret;

	if (ctx == NULL || !ct_aligned(vaddr))
		return COWTABLE_EINVAL;
	cur.finger = 0;
	cur.spare = NULL;
	ct_enter(ctx);
	ret = ct_mark_locked(ctx, &cur, vaddr, frame);
	ct_exit(ctx);
	if (cur.spare != NULL)
		ct_node_free(ctx, cur.spare); /* never published: no grace period needed */
	ct_maybe_reclaim(ctx);
	return ret;
}

/*
 * Drop one reference of @n, inside an epoch section.  Returns SHARED, LAST or
 * NOT_COW (the entry was already dead).  @cur, if given, is a finger for the
 * search that unlinks a dead node.
 */
int ct_release_node(struct cowtable_ctx *ctx, struct ct_node *n, cowtable_frame_t *frame,
                    struct ct_cursor *cur)
{
	uint32_t refs = ct_load_u32(&n->refs);
	unsigned int filled;

	while (refs != 0 || CT_BROKEN_RELEASE_FROM_ZERO) {
		/*
		 * Linearization point of a release.  Fails when a concurrent
		 * mark or release changed the count; retry with the new value.
		 * A count of 0 is never decremented: that entry is already gone.
		 */
		if (ct_cas_u32(&n->refs, refs, refs - 1)) {
			if (frame != NULL)
				*frame = n->frame;
			if (refs != 1)
				return COWTABLE_SHARED;
			CT_DELAY(ctx);
			ct_count_add(ctx, -1);
			filled = ct_unlink_dead(ctx, n, cur != NULL ? cur->preds : NULL,
			                        cur != NULL ? cur->finger : 0);
			if (cur != NULL && filled > cur->finger)
				cur->finger = filled;
			return COWTABLE_LAST;
		}
		refs = ct_load_u32(&n->refs);
	}
	return COWTABLE_NOT_COW;
}

int cowtable_release(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame)
{
	struct ct_node *n;
	int ret = COWTABLE_NOT_COW;

	if (ctx == NULL || !ct_aligned(vaddr))
		return COWTABLE_EINVAL;

	ct_enter(ctx);
	n = ct_search(ctx, vaddr);
	CT_DELAY(ctx);
	if (n != NULL)
		ret = ct_release_node(ctx, n, frame, NULL);
	ct_exit(ctx);
	ct_maybe_reclaim(ctx);
	return ret;
}

bool cowtable_lookup(struct cowtable_ctx *ctx, uintptr_t vaddr, cowtable_frame_t *frame,
                     uint32_t *refs)
{
	struct ct_node *n;
	uint32_t r = 0;

	if (ctx == NULL || !ct_aligned(vaddr))
		return false;

	ct_enter(ctx);
	n = ct_search(ctx, vaddr);
	CT_DELAY(ctx);
	if (n != NULL) {
		/* Linearization point of a lookup that finds the entry. */
		r = ct_load_u32(&n->refs);
		if (r != 0) {
			if (frame != NULL)
				*frame = n->frame;
			if (refs != NULL)
				*refs = r;
		}
	}
	ct_exit(ctx);
	return r != 0;
}

bool cowtable_is_cow(struct cowtable_ctx *ctx, uintptr_t vaddr)
{
	return cowtable_lookup(ctx, vaddr, NULL, NULL);
}
