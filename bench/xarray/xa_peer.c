/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The linux-xarray peer: a COW frame table on the Linux kernel's XArray
 * (lib/xarray.c of Debian's linux-source-6.1, compiled as the kernel's
 * tools/testing/radix-tree harness compiles it: its shim headers, liburcu for
 * RCU, a pthread mutex for xa_lock and malloc behind kmem_cache).  Written as
 * kernel code would be: lookups under rcu_read_lock() with xa_load(); marks
 * and releases under xa_lock with the xas_* API and the xas_nomem() retry
 * loop; ranges walked with xas_next()/xas_for_each() under one lock hold per
 * batch, as copy_page_range() and zap_pte_range() hold one page-table lock
 * per batch of entries.
 *
 * An entry is indexed by page number.  It packs the frame and the count into
 * a value entry (xa_mk_value) when the frame fits in 32 bits, which covers
 * every frame of a machine with up to 16 TiB of 4 KiB pages; a wider frame
 * gets a small struct, freed after a grace period.  A count that drops to
 * zero erases the entry.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <linux/radix-tree.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "xa_peer.h"

/* Harness and lib/radix-tree.c symbols that no header declares. */
extern struct kmem_cache *radix_tree_node_cachep;
void kmem_cache_set_non_kernel(struct kmem_cache *cachep, unsigned int val);

struct xa_peer {
	struct xarray xa;
};

/* A page whose frame does not fit in a value entry. */
struct wide_page {
	uint64_t frame;
	uint32_t refs; /* written under xa_lock, read under RCU */
	struct rcu_head rcu;
};

#define REFS_BITS 31
#define FRAME_PACKED_MAX 0xffffffffull

static void *pack(uint64_t frame, uint32_t refs)
{
	return xa_mk_value((unsigned long)(frame << REFS_BITS | refs));
}

/* The frame and count of an entry; false for no entry. */
static bool decode(void *entry, uint64_t *frame, uint32_t *refs)
{
	if (xa_is_value(entry)) {
		unsigned long v = xa_to_value(entry);

		*frame = v >> REFS_BITS;
		*refs = (uint32_t)(v & XA_PEER_REFS_MAX);
		return true;
	}
	if (entry) {
		struct wide_page *w = entry;

		*frame = w->frame;
		*refs = READ_ONCE(w->refs);
		return true;
	}
	return false;
}

static void free_wide(struct rcu_head *head)
{
	free(container_of(head, struct wide_page, rcu));
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_slab(void)
{
	radix_tree_init();
	/*
	 * The harness refuses every allocation without __GFP_DIRECT_RECLAIM
	 * (it tests the xas_nomem() path); in a kernel, GFP_NOWAIT under the
	 * lock normally succeeds.  Let it, as a kernel would.
	 */
	kmem_cache_set_non_kernel(radix_tree_node_cachep, ~0u);
}

struct xa_peer *xa_peer_new(void)
{
	struct xa_peer *t = malloc(sizeof(*t));

	pthread_once(&init_once, init_slab);
	if (t)
		xa_init(&t->xa);
	return t;
}

void xa_peer_free(struct xa_peer *t)
{
	XA_STATE(xas, &t->xa, 0);
	void *entry;

	xas_lock(&xas);
	xas_for_each(&xas, entry, ULONG_MAX)
	{
		if (!xa_is_value(entry))
			call_rcu(&((struct wide_page *)entry)->rcu, free_wide);
	}
	xas_unlock(&xas);
	xa_destroy(&t->xa);
	rcu_barrier();
	free(t);
}

bool xa_peer_lookup(struct xa_peer *t, unsigned long index, uint64_t *frame, uint32_t *refs)
{
	bool live;

	rcu_read_lock();
	live = decode(xa_load(&t->xa, index), frame, refs);
	rcu_read_unlock();
	return live;
}

/*
 * Under xa_lock, at the index of @xas whose entry is @entry: one more sharer.
 * Returns the new count or a negative errno (-ENOMEM from xas_store() means
 * the caller drops the lock, calls xas_nomem() and tries again).
 */
static int mark_locked(struct xa_state *xas, void *entry, uint64_t frame)
{
	uint64_t have;
	uint32_t refs;

	if (!decode(entry, &have, &refs)) {
		struct wide_page *w = NULL;

		if (frame > FRAME_PACKED_MAX) {
			w = malloc(sizeof(*w)); /* kmalloc(GFP_NOWAIT) in a kernel */
			if (!w)
				return -ENOMEM;
			w->frame = frame;
			w->refs = 2;
		}
		xas_store(xas, w ? (void *)w : pack(frame, 2));
		if (xas_error(xas)) {
			free(w);
			return xas_error(xas);
		}
		return 2;
	}
	if (have != frame)
		return -EEXIST;
	if (refs == XA_PEER_REFS_MAX)
		return -EOVERFLOW;
	if (xa_is_value(entry))
		xas_store(xas, pack(frame, refs + 1)); /* same slot: no allocation */
	else
		WRITE_ONCE(((struct wide_page *)entry)->refs, refs + 1);
	return (int)refs + 1;
}

/*
 * Under xa_lock: one sharer fewer for the entry at @xas.  At zero the entry
 * is erased; a wide one is handed back in *dead, to be freed after a grace
 * period once the lock is dropped.
 */
static int release_locked(struct xa_state *xas, void *entry, uint64_t *frame,
                          struct wide_page **dead)
{
	uint32_t refs;

	if (!decode(entry, frame, &refs))
		return XA_PEER_NOT_COW;
	if (refs == 1) {
		xas_store(xas, NULL);
		if (!xa_is_value(entry))
			*dead = entry;
		return XA_PEER_LAST;
	}
	if (xa_is_value(entry))
		xas_store(xas, pack(*frame, refs - 1));
	else
		WRITE_ONCE(((struct wide_page *)entry)->refs, refs - 1);
	return XA_PEER_SHARED;
}

int xa_peer_mark(struct xa_peer *t, unsigned long index, uint64_t frame)
{
	XA_STATE(xas, &t->xa, index);
	int ret;

	do {
		xas_lock(&xas);
		ret = mark_locked(&xas, xas_load(&xas), frame);
		xas_unlock(&xas);
	} while (ret == -ENOMEM && xas_nomem(&xas, GFP_KERNEL));
	xas_nomem(&xas, GFP_KERNEL); /* frees a node allocated but not used */
	return ret;
}

int xa_peer_release(struct xa_peer *t, unsigned long index, uint64_t *frame)
{
	XA_STATE(xas, &t->xa, index);
	struct wide_page *dead = NULL;
	int ret;

	xas_lock(&xas);
	ret = release_locked(&xas, xas_load(&xas), frame, &dead);
	xas_unlock(&xas);
	if (dead)
		call_rcu(&dead->rcu, free_wide);
	return ret;
}

int xa_peer_mark_range(struct xa_peer *t, unsigned long first, size_t n, const uint64_t *frames)
{
	XA_STATE(xas, &t->xa, first);
	size_t done = 0;
	int ret = 0;

	while (done < n) {
		size_t end = done + XA_PEER_BATCH < n ? done + XA_PEER_BATCH : n;
		void *entry;

		xas_set(&xas, first + done);
		xas_lock(&xas);
		for (entry = xas_load(&xas);; entry = xas_next(&xas)) {
			ret = mark_locked(&xas, entry, frames[done]);
			if (ret < 0 || ++done == end)
				break;
		}
		xas_unlock(&xas);
		if (ret == -ENOMEM && xas_nomem(&xas, GFP_KERNEL))
			continue; /* memory now in hand: go on from the page that failed */
		if (ret < 0)
			break;
	}
	xas_nomem(&xas, GFP_KERNEL);
	return ret < 0 ? ret : 0;
}

size_t xa_peer_release_range(struct xa_peer *t, unsigned long first, unsigned long last,
                             xa_peer_last_fn *fn, void *arg)
{
	XA_STATE(xas, &t->xa, first);
	struct {
		unsigned long index;
		uint64_t frame;
		struct wide_page *dead;
	} gone[XA_PEER_BATCH];
	size_t released = 0;

	for (;;) {
		size_t seen = 0, ngone = 0;
		unsigned long index = 0;
		void *entry;

		xas_lock(&xas);
		xas_for_each(&xas, entry, last)
		{
			struct wide_page *dead = NULL;
			uint64_t frame;

			index = xas.xa_index;
			if (release_locked(&xas, entry, &frame, &dead) == XA_PEER_LAST) {
				gone[ngone].index = index;
				gone[ngone].frame = frame;
				gone[ngone++].dead = dead;
			}
			if (++seen == XA_PEER_BATCH)
				break;
		}
		xas_unlock(&xas);
		released += seen;
		for (size_t i = 0; i < ngone; i++) {
			if (gone[i].dead)
				call_rcu(&gone[i].dead->rcu, free_wide);
			if (fn)
				fn(gone[i].index, gone[i].frame, arg);
		}
		if (seen < XA_PEER_BATCH || index == last)
			return released;
		/* A fresh walk from the next index, the lock dropped in between. */
		xas_set(&xas, index + 1);
	}
}
