/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The library's atomic operations, all of them.
 *
 * Normally they are Concurrency Kit's ck_pr primitives with the ck_pr fences
 * that give each one the order named in its name.  ThreadSanitizer cannot see
 * ck_pr's inline assembly (it would report every lock-free handoff as a data
 * race), so a COWTABLE_ATOMIC_BUILTINS build maps the same operations to the
 * compiler's __atomic builtins with explicit memory orders.  The two mappings
 * must stay equivalent: each function states the order it promises.
 *
 * Words holding tagged pointers are uintptr_t; bit 0 is the freeze bit
 * (docs/design.md).  Slots, a page's word in its leaf, are uint64_t.
 */
#ifndef CT_ATOMIC_H
#define CT_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__)
#define CT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CT_TSAN 1
#endif
#endif

#if defined(CT_TSAN) && !defined(COWTABLE_ATOMIC_BUILTINS)
#define COWTABLE_ATOMIC_BUILTINS 1
#endif

#ifdef COWTABLE_ATOMIC_BUILTINS

/*
 * Broken controls for the model checker (verify/genmc, docs/verification.md):
 * each weakens one order of the mapping below, which the design needs, and
 * scripts/genmc.sh requires GenMC to reject the result.
 */
#ifdef CT_BROKEN_NEXT_LOAD_RELAXED /* loads of next words: relaxed */
#define CT_ORDER_NEXT_LOAD __ATOMIC_RELAXED
#else
#define CT_ORDER_NEXT_LOAD __ATOMIC_ACQUIRE
#endif
#ifdef CT_BROKEN_LINK_NO_RELEASE /* link and unlink CAS: acquire only */
#define CT_ORDER_WORD_CAS __ATOMIC_ACQUIRE
#else
#define CT_ORDER_WORD_CAS __ATOMIC_ACQ_REL
#endif
#ifdef CT_BROKEN_FREEZE_RELAXED /* the freeze OR: relaxed */
#define CT_ORDER_FREEZE __ATOMIC_RELAXED
#else
#define CT_ORDER_FREEZE __ATOMIC_RELEASE
#endif
#ifdef CT_BROKEN_STATE_NO_ACQUIRE /* state fetch-add: release only */
#define CT_ORDER_STATE_FAA __ATOMIC_RELEASE
#else
#define CT_ORDER_STATE_FAA __ATOMIC_ACQ_REL
#endif
#ifdef CT_BROKEN_DROP_NO_ACQUIRE /* holds drop: release only */
#define CT_ORDER_DROP __ATOMIC_RELEASE
#else
#define CT_ORDER_DROP __ATOMIC_ACQ_REL
#endif
#if defined(CT_BROKEN_SLOT_CAS_NO_RELEASE) /* slot CAS: acquire only */
#define CT_ORDER_SLOT_CAS      __ATOMIC_ACQUIRE
#define CT_ORDER_SLOT_CAS_FAIL __ATOMIC_ACQUIRE
#elif defined(CT_BROKEN_SLOT_CAS_NO_ACQUIRE) /* slot CAS: release only */
#define CT_ORDER_SLOT_CAS      __ATOMIC_RELEASE
#define CT_ORDER_SLOT_CAS_FAIL __ATOMIC_RELAXED
#else
#define CT_ORDER_SLOT_CAS      __ATOMIC_ACQ_REL
#define CT_ORDER_SLOT_CAS_FAIL __ATOMIC_ACQUIRE
#endif
#ifdef CT_BROKEN_INDEX_RELAXED /* publishing an index entry: relaxed */
#define CT_ORDER_WORD_PUBLISH __ATOMIC_RELAXED
#else
#define CT_ORDER_WORD_PUBLISH __ATOMIC_RELEASE
#endif
#ifdef CT_BROKEN_SLOT_LOAD_RELAXED /* slot loads: relaxed */
#define CT_ORDER_SLOT_LOAD __ATOMIC_RELAXED
#else
#define CT_ORDER_SLOT_LOAD __ATOMIC_ACQUIRE
#endif

/* Acquire load of a tagged pointer word. */
static inline uintptr_t ct_load_word(const uintptr_t *p)
{
	return __atomic_load_n(p, CT_ORDER_NEXT_LOAD);
}

/* Relaxed store of a word nobody else can see yet (a node being built). */
static inline void ct_init_word(uintptr_t *p, uintptr_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Release CAS of a word others read (an index entry or root); relaxed on failure. */
static inline bool ct_publish_word(uintptr_t *p, uintptr_t old, uintptr_t new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, false, CT_ORDER_WORD_PUBLISH,
	                                   __ATOMIC_RELAXED);
}

/* Acquire-release CAS of a word; acquire on failure. */
static inline bool ct_cas_word(uintptr_t *p, uintptr_t old, uintptr_t new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, false, CT_ORDER_WORD_CAS,
	                                   __ATOMIC_ACQUIRE);
}

/* Release OR into a word (sets the freeze bit). */
static inline void ct_or_word(uintptr_t *p, uintptr_t bits)
{
	(void)__atomic_fetch_or(p, bits, CT_ORDER_FREEZE);
}

static inline uint32_t ct_load_u32(const uint32_t *p) /* acquire */
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void ct_store_u32(uint32_t *p, uint32_t v) /* release */
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Acquire-release CAS; acquire on failure. */
static inline bool ct_cas_u32(uint32_t *p, uint32_t old, uint32_t new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, false, __ATOMIC_ACQ_REL,
	                                   __ATOMIC_ACQUIRE);
}

/* Acquire-release fetch-and-add; returns the old value. */
static inline uint32_t ct_faa_u32(uint32_t *p, uint32_t v)
{
	return __atomic_fetch_add(p, v, CT_ORDER_STATE_FAA);
}

/* Acquire-release fetch-and-subtract; returns the old value. */
static inline uint32_t ct_fsub_u32(uint32_t *p, uint32_t v)
{
	return __atomic_fetch_sub(p, v, CT_ORDER_DROP);
}

/* Relaxed store of a word nobody else can see yet (a leaf being built). */
static inline void ct_init_u32(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Acquire load of a slot. */
static inline uint64_t ct_load_slot(const uint64_t *p)
{
	return __atomic_load_n(p, CT_ORDER_SLOT_LOAD);
}

/* Relaxed store into a slot of a leaf nobody else can see yet. */
static inline void ct_init_slot(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/*
 * Acquire-release CAS of a slot; on failure *old becomes the value seen
 * (acquire), so the caller can decide again without another load.
 */
static inline bool ct_cas_slot(uint64_t *p, uint64_t *old, uint64_t new_)
{
	return __atomic_compare_exchange_n(p, old, new_, false, CT_ORDER_SLOT_CAS,
	                                   CT_ORDER_SLOT_CAS_FAIL);
}

/* Relaxed statistics counters: written by one context, read by anyone. */
static inline int64_t ct_load_stat(const int64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void ct_store_stat(int64_t *p, int64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Acquire load and release store of a pointer (the context list). */
static inline void *ct_load_ptr(void *const *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Relaxed 64-bit load and store (torture stamps). */
static inline uint64_t ct_load_u64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void ct_store_u64(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline int64_t ct_inc_stat(int64_t *p) /* relaxed fetch-and-add of 1 */
{
	return __atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
}

static inline bool ct_cas_ptr(void **p, void *old, void *new_)
{
	return __atomic_compare_exchange_n(p, &old, new_, false, __ATOMIC_ACQ_REL,
	                                   __ATOMIC_ACQUIRE);
}

#else /* ck_pr */

#include <ck_pr.h>

static inline uintptr_t ct_load_word(const uintptr_t *p)
{
	uintptr_t v = (uintptr_t)ck_pr_load_ptr(p);

	/* Loads of the node behind the pointer stay after the pointer load. */
	ck_pr_fence_acquire();
	return v;
}

static inline void ct_init_word(uintptr_t *p, uintptr_t v)
{
	ck_pr_store_ptr((void **)p, (void *)v);
}

static inline bool ct_publish_word(uintptr_t *p, uintptr_t old, uintptr_t new_)
{
	/* A node's or a leaf's fields are visible before the pointer to it. */
	ck_pr_fence_release();
	return ck_pr_cas_ptr(p, (void *)old, (void *)new_);
}

static inline bool ct_cas_word(uintptr_t *p, uintptr_t old, uintptr_t new_)
{
	bool ok;

	/* The node's initialising stores become visible before its link. */
	ck_pr_fence_atomic();
	ck_pr_fence_release();
	ok = ck_pr_cas_ptr(p, (void *)old, (void *)new_);
	ck_pr_fence_acquire();
	return ok;
}

/*
 * ck_pr_or_ptr's second argument is a uintptr_t in ck's own ports and a
 * void * in its compiler-builtins one (riscv64, CK_USE_CC_BUILTINS): the
 * 64-bit OR has one signature everywhere.
 */
_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "a word is 64 bits");

static inline void ct_or_word(uintptr_t *p, uintptr_t bits)
{
	ck_pr_fence_release();
	ck_pr_or_64((uint64_t *)p, (uint64_t)bits);
}

static inline uint32_t ct_load_u32(const uint32_t *p)
{
	uint32_t v = ck_pr_load_32(p);

	ck_pr_fence_acquire();
	return v;
}

static inline void ct_store_u32(uint32_t *p, uint32_t v)
{
	ck_pr_fence_release();
	ck_pr_store_32(p, v);
}

static inline bool ct_cas_u32(uint32_t *p, uint32_t old, uint32_t new_)
{
	bool ok;

	ck_pr_fence_atomic();
	ck_pr_fence_release();
	ok = ck_pr_cas_32(p, old, new_);
	ck_pr_fence_acquire();
	return ok;
}

static inline uint32_t ct_faa_u32(uint32_t *p, uint32_t v)
{
	uint32_t old;

	ck_pr_fence_atomic();
	ck_pr_fence_release();
	old = ck_pr_faa_32(p, v);
	ck_pr_fence_acquire();
	return old;
}

static inline uint32_t ct_fsub_u32(uint32_t *p, uint32_t v)
{
	return ct_faa_u32(p, (uint32_t)0 - v);
}

static inline void ct_init_u32(uint32_t *p, uint32_t v)
{
	ck_pr_store_32(p, v);
}

static inline uint64_t ct_load_slot(const uint64_t *p)
{
	uint64_t v = ck_pr_load_64(p);

	ck_pr_fence_acquire();
	return v;
}

static inline void ct_init_slot(uint64_t *p, uint64_t v)
{
	ck_pr_store_64(p, v);
}

static inline bool ct_cas_slot(uint64_t *p, uint64_t *old, uint64_t new_)
{
	bool ok;

	ck_pr_fence_atomic();
	ck_pr_fence_release();
	ok = ck_pr_cas_64_value(p, *old, new_, old);
	ck_pr_fence_acquire();
	return ok;
}

static inline int64_t ct_load_stat(const int64_t *p)
{
	return (int64_t)ck_pr_load_64((const uint64_t *)p);
}

static inline void ct_store_stat(int64_t *p, int64_t v)
{
	ck_pr_store_64((uint64_t *)p, (uint64_t)v);
}

static inline uint64_t ct_load_u64(const uint64_t *p)
{
	return ck_pr_load_64(p);
}

static inline void ct_store_u64(uint64_t *p, uint64_t v)
{
	ck_pr_store_64(p, v);
}

static inline int64_t ct_inc_stat(int64_t *p)
{
	return (int64_t)ck_pr_faa_64((uint64_t *)p, 1);
}

static inline void *ct_load_ptr(void *const *p)
{
	void *v = ck_pr_load_ptr(p);

	ck_pr_fence_acquire();
	return v;
}

static inline bool ct_cas_ptr(void **p, void *old, void *new_)
{
	bool ok;

	ck_pr_fence_atomic();
	ck_pr_fence_release();
	ok = ck_pr_cas_ptr(p, old, new_);
	ck_pr_fence_acquire();
	return ok;
}

#endif /* COWTABLE_ATOMIC_BUILTINS */

/* Full fence: orders earlier stores before later loads. */
static inline void ct_fence_full(void)
{
#if defined(CT_TSAN)
	/*
	 * ThreadSanitizer does not model fences (gcc refuses them): a seq_cst
	 * read-modify-write orders the same way.  Used once per sealed batch.
	 */
	static int ct_fence_word;

	(void)__atomic_fetch_add(&ct_fence_word, 0, __ATOMIC_SEQ_CST);
#elif defined(COWTABLE_ATOMIC_BUILTINS)
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#else
	ck_pr_fence_memory();
#endif
}

/* Spin-wait hint. */
static inline void ct_relax(void)
{
#ifdef COWTABLE_ATOMIC_BUILTINS
	/* Not for the model checker (CT_VERIFY_HOOKS), whose code generator has no pause. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(CT_VERIFY_HOOKS)
	__builtin_ia32_pause();
#endif
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#else
	ck_pr_stall();
#endif
}

/*
 * ThreadSanitizer does not see the grace period that ck_epoch computes inside
 * libck.  A context announces "my earlier reads of shared leaves are done" with
 * a release on its own epoch record when it leaves a section, and whoever
 * frees retired nodes acquires every record first.
 */
#ifdef CT_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define ct_tsan_acquire(addr) __tsan_acquire(addr)
#define ct_tsan_release(addr) __tsan_release(addr)
#else
#define ct_tsan_acquire(addr) ((void)(addr))
#define ct_tsan_release(addr) ((void)(addr))
#endif

#endif /* CT_ATOMIC_H */
