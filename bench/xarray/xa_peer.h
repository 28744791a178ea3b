/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The linux-xarray peer's interface: the Linux kernel's own lib/xarray.c,
 * compiled in user space with the shims of its tools/testing/radix-tree
 * harness, driven the way a kernel would drive it.  Plain C types only, so
 * that C++ can call it without the kernel headers (which are C only).
 *
 * Return codes are cowtable's: a count (2 for a new entry) or -EEXIST,
 * -EOVERFLOW, -ENOMEM from marks; XA_PEER_NOT_COW / _SHARED / _LAST from
 * releases.  Every thread that calls these must be registered with liburcu
 * (rcu_register_thread(), the default "memb" flavour).
 */
#ifndef XA_PEER_H
#define XA_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { XA_PEER_NOT_COW = 0, XA_PEER_SHARED = 1, XA_PEER_LAST = 2 };

/* Largest count, as cowtable's: INT32_MAX. */
#define XA_PEER_REFS_MAX 0x7fffffffu

struct xa_peer;
typedef void xa_peer_last_fn(unsigned long index, uint64_t frame, void *arg);

struct xa_peer *xa_peer_new(void);
/* Frees every entry and node, and waits for the grace periods pending. */
void xa_peer_free(struct xa_peer *t);

/* Lookup under rcu_read_lock() with xa_load(): never blocks. */
bool xa_peer_lookup(struct xa_peer *t, unsigned long index, uint64_t *frame, uint32_t *refs);
/* Marks and releases under xa_lock. */
int xa_peer_mark(struct xa_peer *t, unsigned long index, uint64_t frame);
int xa_peer_release(struct xa_peer *t, unsigned long index, uint64_t *frame);
/*
 * Ranges with the xas_* iteration API, one lock hold per batch of
 * XA_PEER_BATCH pages.  mark_range stops at the first error and returns it
 * (the pages before it stay marked), else 0.  release_range releases every
 * tracked page in [first, last] and returns how many it released; fn (if
 * not NULL) gets each page whose last reference went, after the lock is
 * dropped.
 */
#define XA_PEER_BATCH 512
int xa_peer_mark_range(struct xa_peer *t, unsigned long first, size_t n, const uint64_t *frames);
size_t xa_peer_release_range(struct xa_peer *t, unsigned long first, unsigned long last,
                             xa_peer_last_fn *fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
