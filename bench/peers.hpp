/* SPDX-License-Identifier: BSD-2-Clause */
// The structures the benchmark compares, behind one small adapter interface.
//
// Every adapter T provides:
//   T(size_t capacity_hint)          an empty table
//   struct Ctx { Ctx(T&); }          per-thread state (a cowtable context, a
//                                    libcds/URCU thread registration, ...)
//   int  mark(Ctx&, va, frame)       cowtable_mark() semantics: new entry at 2,
//                                    same frame +1, other frame -EEXIST
//   int  release(Ctx&, va, &frame)   NOT_COW / SHARED / LAST, never below zero,
//                                    the entry removed at zero
//   bool lookup(Ctx&, va, &frame, &refs)
//   int  mark_range(Ctx&, start, n, frames)  and
//   size_t release_range(Ctx&, start, end, fn): per page unless the structure
//                                    has a faster way (static bool ranged)
//   static const char *name, *note  (the note says how removal is handled)
// An adapter's results are checked by the workloads; bench/xarray/ also has a
// contract check of its own for the XArray wrapper.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

extern "C" {
#include <bsd/sys/cdefs.h>
#include <bsd/sys/tree.h>
#include <ck_rwlock.h>
#include <spinlock/fas.h> /* ck_spinlock.h as a whole does not compile as C++ */
#include <cowtable.h>
#include <urcu.h>
#include <urcu/rculfhash.h>
#include <Judy.h>
}
#include "xa_peer.h"

#include <cds/container/skip_list_map_hp.h>
#include <cds/container/skip_list_map_rcu.h>
#include <cds/gc/hp.h>
#include <cds/init.h>
#include <cds/urcu/general_buffered.h>
#include <oneapi/tbb/concurrent_map.h>

namespace peers
{

constexpr uintptr_t kPage = COWTABLE_PAGE_SIZE;
using last_fn = void (*)(uintptr_t, cowtable_frame_t, void *);

// Per-page range operations for structures without ordered bulk operations.
template <class T>
int mark_pages(T &t, typename T::Ctx &c, uintptr_t start, size_t n, const cowtable_frame_t *frames)
{
	for (size_t i = 0; i < n; i++) {
		int r = t.mark(c, start + i * kPage, frames[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

template <class T>
size_t release_pages(T &t, typename T::Ctx &c, uintptr_t start, uintptr_t end, last_fn fn,
                     void *arg)
{
	size_t n = 0;
	for (uintptr_t va = start; va < end; va += kPage) {
		cowtable_frame_t f;
		int r = t.release(c, va, &f);
		if (r == COWTABLE_NOT_COW)
			continue;
		n++;
		if (r == COWTABLE_LAST && fn)
			fn(va, f, arg);
	}
	return n;
}

// Mixed into every adapter without ordered bulk operations.
template <class T> struct PerPageRanges {
	template <class C> int mark_range(C &c, uintptr_t s, size_t n, const cowtable_frame_t *f)
	{
		return mark_pages(static_cast<T &>(*this), c, s, n, f);
	}
	template <class C> size_t release_range(C &c, uintptr_t s, uintptr_t e, last_fn fn, void *a)
	{
		return release_pages(static_cast<T &>(*this), c, s, e, fn, a);
	}
};

// Reference-count steps shared by the peers that keep an atomic count in
// the mapped value: increment only while not zero, decrement never below.
inline int share(std::atomic<uint32_t> &refs, cowtable_frame_t have, cowtable_frame_t want)
{
	uint32_t r = refs.load(std::memory_order_acquire);
	while (r != 0) {
		if (have != want)
			return COWTABLE_EEXIST;
		if (refs.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel))
			return int(r + 1);
	}
	return 0; // dead: the caller retries after the removal
}

inline int drop(std::atomic<uint32_t> &refs)
{
	uint32_t r = refs.load(std::memory_order_acquire);
	while (r != 0) {
		if (refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel))
			return r == 1 ? COWTABLE_LAST : COWTABLE_SHARED;
	}
	return COWTABLE_NOT_COW;
}

// ---------------------------------------------------------------- cowtable
struct Cowtable {
	static constexpr const char *name = "cowtable";
	static constexpr const char *note = "lock-free skip list, ck_epoch";
	static constexpr bool ranged = true;
	struct cowtable table;
	explicit Cowtable(size_t)
	{
		cowtable_init(&table, nullptr);
	}
	~Cowtable()
	{
		cowtable_fini(&table);
	}
	struct Ctx {
		struct cowtable_ctx *c;
		explicit Ctx(Cowtable &t) : c(cowtable_ctx_get(&t.table))
		{
		}
		~Ctx()
		{
			cowtable_ctx_put(c);
		}
	};
	int mark(Ctx &x, uintptr_t va, cowtable_frame_t f)
	{
		return cowtable_mark(x.c, va, f);
	}
	int release(Ctx &x, uintptr_t va, cowtable_frame_t *f)
	{
		return cowtable_release(x.c, va, f);
	}
	bool lookup(Ctx &x, uintptr_t va, cowtable_frame_t *f, uint32_t *r)
	{
		return cowtable_lookup(x.c, va, f, r);
	}
	int mark_range(Ctx &x, uintptr_t s, size_t n, const cowtable_frame_t *f)
	{
		return cowtable_mark_range(x.c, s, n, f, nullptr);
	}
	size_t release_range(Ctx &x, uintptr_t s, uintptr_t e, last_fn fn, void *arg)
	{
		return cowtable_release_range(x.c, s, e, fn, arg);
	}
};

// cowtable without its range operations: the same table, one call per page.
struct CowtablePerPage : Cowtable, PerPageRanges<CowtablePerPage> {
	using PerPageRanges<CowtablePerPage>::mark_range;
	using PerPageRanges<CowtablePerPage>::release_range;
	static constexpr const char *name = "cowtable-per-page";
	static constexpr const char *note = "cowtable, ranges done one page at a time";
	static constexpr bool ranged = false;
	using Cowtable::Cowtable;
};

// ------------------------------------------- the seed: RB tree, one lock
struct TreeNode {
	RB_ENTRY(TreeNode) link;
	uintptr_t va;
	cowtable_frame_t frame;
	uint32_t refs;
};
inline int tree_cmp(TreeNode *a, TreeNode *b)
{
	return a->va < b->va ? -1 : a->va > b->va;
}
RB_HEAD(cow_tree, TreeNode);
#define __unused __attribute__((__unused__)) /* libbsd leaves it undefined on Linux */
RB_GENERATE_STATIC(cow_tree, TreeNode, link, tree_cmp)
#undef __unused

// The seed's design (an ordered tree behind one global spinlock) with its
// bugs fixed so it does the same work: remove at zero, refuse another frame.
template <class Lock> struct LockedTree {
	cow_tree root = RB_INITIALIZER(&root);
	Lock lock;
	struct Ctx {
		explicit Ctx(LockedTree &)
		{
		}
	};
	explicit LockedTree(size_t)
	{
	}
	~LockedTree()
	{
		TreeNode *n, *next;
		for (n = RB_MIN(cow_tree, &root); n; n = next) {
			next = RB_NEXT(cow_tree, &root, n);
			RB_REMOVE(cow_tree, &root, n);
			free(n);
		}
	}
	TreeNode *find(uintptr_t va)
	{
		TreeNode key;
		key.va = va;
		return RB_FIND(cow_tree, &root, &key);
	}
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		lock.write_lock();
		TreeNode *n = find(va);
		int r;
		if (n == nullptr) {
			n = static_cast<TreeNode *>(malloc(sizeof(*n)));
			n->va = va;
			n->frame = f;
			n->refs = 2;
			RB_INSERT(cow_tree, &root, n);
			r = 2;
		} else if (n->frame != f) {
			r = COWTABLE_EEXIST;
		} else {
			r = int(++n->refs);
		}
		lock.write_unlock();
		return r;
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		lock.write_lock();
		TreeNode *n = find(va);
		int r = COWTABLE_NOT_COW;
		if (n != nullptr) {
			*f = n->frame;
			if (--n->refs == 0) {
				RB_REMOVE(cow_tree, &root, n);
				free(n);
				r = COWTABLE_LAST;
			} else {
				r = COWTABLE_SHARED;
			}
		}
		lock.write_unlock();
		return r;
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *refs)
	{
		lock.read_lock();
		TreeNode *n = find(va);
		if (n != nullptr) {
			*f = n->frame;
			*refs = n->refs;
		}
		lock.read_unlock();
		return n != nullptr;
	}
};

struct SpinLock {
	ck_spinlock_fas_t l = CK_SPINLOCK_FAS_INITIALIZER;
	void write_lock()
	{
		ck_spinlock_fas_lock(&l);
	}
	void write_unlock()
	{
		ck_spinlock_fas_unlock(&l);
	}
	void read_lock()
	{
		write_lock();
	}
	void read_unlock()
	{
		write_unlock();
	}
};

struct RwLock {
	ck_rwlock_t l = CK_RWLOCK_INITIALIZER;
	void write_lock()
	{
		ck_rwlock_write_lock(&l);
	}
	void write_unlock()
	{
		ck_rwlock_write_unlock(&l);
	}
	void read_lock()
	{
		ck_rwlock_read_lock(&l);
	}
	void read_unlock()
	{
		ck_rwlock_read_unlock(&l);
	}
};

struct SeedTree : LockedTree<SpinLock>, PerPageRanges<SeedTree> {
	static constexpr const char *name = "seed-tree";
	static constexpr const char *note = "RB tree + one spinlock (seed, bugs fixed)";
	static constexpr bool ranged = false;
	using LockedTree::LockedTree;
};

struct RwTree : LockedTree<RwLock>, PerPageRanges<RwTree> {
	static constexpr const char *name = "rwlock-tree";
	static constexpr const char *note = "RB tree + ck_rwlock";
	static constexpr bool ranged = false;
	using LockedTree::LockedTree;
};

// ------------------------------------------------------ libcds SkipListMap
struct CdsValue {
	cowtable_frame_t frame;
	std::atomic<uint32_t> refs;
	explicit CdsValue(cowtable_frame_t f = 0) : frame(f), refs(2)
	{
	}
	CdsValue(const CdsValue &o) : frame(o.frame), refs(o.refs.load())
	{
	}
};

// Shared by both garbage collectors: erase-if-zero on top of find/emplace/erase.
template <class Map> struct CdsOps {
	static int mark(Map &m, uintptr_t va, cowtable_frame_t f)
	{
		for (;;) {
			int r = 0;
			if (m.find(va, [&](std::pair<const uintptr_t, CdsValue> &v) {
				    r = share(v.second.refs, v.second.frame, f);
			    })) {
				if (r != 0)
					return r;
				continue; // dead: its last releaser is erasing it
			}
			if (m.emplace(va, f))
				return 2;
		}
	}
	static int release(Map &m, uintptr_t va, cowtable_frame_t *f)
	{
		int r = COWTABLE_NOT_COW;
		m.find(va, [&](std::pair<const uintptr_t, CdsValue> &v) {
			r = drop(v.second.refs);
			*f = v.second.frame;
		});
		if (r == COWTABLE_LAST)
			m.erase(va);
		return r;
	}
	static bool lookup(Map &m, uintptr_t va, cowtable_frame_t *f, uint32_t *refs)
	{
		bool live = false;
		m.find(va, [&](std::pair<const uintptr_t, CdsValue> &v) {
			*refs = v.second.refs.load(std::memory_order_acquire);
			*f = v.second.frame;
			live = *refs != 0;
		});
		return live;
	}
};

struct CdsInit {
	CdsInit()
	{
		cds::Initialize();
	}
};

inline thread_local int cds_attached;
struct CdsThread {
	CdsThread()
	{
		if (cds_attached++ == 0)
			cds::threading::Manager::attachThread();
	}
	~CdsThread()
	{
		if (--cds_attached == 0)
			cds::threading::Manager::detachThread();
	}
};

typedef cds::urcu::gc<cds::urcu::general_buffered<>> cds_rcu;

// The collector object each flavour needs besides cds::Initialize().
template <class GC> struct CdsCollector;
template <> struct CdsCollector<cds_rcu> {
	static constexpr const char *name = "libcds-skiplist-rcu";
	static constexpr const char *note = "libcds SkipListMap, URCU general_buffered";
	cds_rcu rcu;
};
template <> struct CdsCollector<cds::gc::HP> {
	static constexpr const char *name = "libcds-skiplist-hp";
	static constexpr const char *note = "libcds SkipListMap, hazard pointers";
	typedef cds::container::SkipListMap<cds::gc::HP, uintptr_t, CdsValue> Map;
	cds::gc::HP hp{Map::c_nHazardPtrCount + 4, 16};
};

template <class GC> struct CdsSkip : PerPageRanges<CdsSkip<GC>> {
	typedef cds::container::SkipListMap<GC, uintptr_t, CdsValue> Map;
	static constexpr const char *name = CdsCollector<GC>::name;
	static constexpr const char *note = CdsCollector<GC>::note;
	static constexpr bool ranged = false;
	CdsInit init;
	CdsCollector<GC> collector;
	Map map;
	explicit CdsSkip(size_t)
	{
	}
	struct Ctx : CdsThread {
		explicit Ctx(CdsSkip &)
		{
		}
	};
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		return CdsOps<Map>::mark(map, va, f);
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		return CdsOps<Map>::release(map, va, f);
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *r)
	{
		return CdsOps<Map>::lookup(map, va, f, r);
	}
};
typedef CdsSkip<cds_rcu> CdsSkipRcu;
typedef CdsSkip<cds::gc::HP> CdsSkipHp;

// ------------------------------------------------- oneTBB concurrent_map
// No concurrent erase: a dead entry stays as a tombstone (count 0) and a
// later mark revives it in place.  Tombstones are never freed: their memory
// is the price, and it shows in the bytes-per-page figure.
struct TbbValue {
	std::atomic<cowtable_frame_t> frame{0};
	std::atomic<uint32_t> refs{0};
	TbbValue() = default;
	TbbValue(const TbbValue &o) : frame(o.frame.load()), refs(o.refs.load())
	{
	}
};

struct TbbMap : PerPageRanges<TbbMap> {
	static constexpr const char *name = "tbb-concurrent_map";
	static constexpr const char *note =
	        "oneTBB concurrent_map, tombstones (no concurrent erase)";
	static constexpr bool ranged = false;
	static constexpr uint32_t kBusy = UINT32_MAX; // a tombstone being revived
	typedef tbb::concurrent_map<uintptr_t, TbbValue, std::less<uintptr_t>,
	                            std::allocator<std::pair<const uintptr_t, TbbValue>>>
	        Map;
	Map map;
	explicit TbbMap(size_t)
	{
	}
	struct Ctx {
		explicit Ctx(TbbMap &)
		{
		}
	};
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		auto it = map.find(va);
		if (it == map.end())
			it = map.emplace(va, TbbValue()).first;
		TbbValue &v = it->second;
		for (;;) {
			uint32_t r = v.refs.load(std::memory_order_acquire);
			if (r == kBusy)
				continue;
			if (r == 0) {
				if (v.refs.compare_exchange_weak(r, kBusy)) {
					v.frame.store(f, std::memory_order_relaxed);
					v.refs.store(2, std::memory_order_release);
					return 2;
				}
				continue;
			}
			if (v.frame.load(std::memory_order_relaxed) != f)
				return COWTABLE_EEXIST;
			if (v.refs.compare_exchange_weak(r, r + 1, std::memory_order_acq_rel))
				return int(r + 1);
		}
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		auto it = map.find(va);
		if (it == map.end())
			return COWTABLE_NOT_COW;
		TbbValue &v = it->second;
		uint32_t r = v.refs.load(std::memory_order_acquire);
		while (r != 0 && r != kBusy) {
			*f = v.frame.load(std::memory_order_relaxed);
			if (v.refs.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel))
				return r == 1 ? COWTABLE_LAST : COWTABLE_SHARED;
		}
		return COWTABLE_NOT_COW; // a tombstone (or one being revived: not ours)
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *refs)
	{
		auto it = map.find(va);
		if (it == map.end())
			return false;
		uint32_t r = it->second.refs.load(std::memory_order_acquire);
		if (r == 0 || r == kBusy)
			return false;
		*refs = r;
		*f = it->second.frame.load(std::memory_order_relaxed);
		return true;
	}
};

// ----------------------------------------------- liburcu cds_lfht (hash)
struct LfhtNode {
	cds_lfht_node node;
	uintptr_t va;
	cowtable_frame_t frame;
	std::atomic<uint32_t> refs;
	rcu_head rcu;
};

// Thread registrations nest: the thread that builds a table may also use it.
inline thread_local int urcu_registered;
inline void urcu_enter()
{
	if (urcu_registered++ == 0)
		rcu_register_thread();
}
inline void urcu_leave()
{
	if (--urcu_registered == 0)
		rcu_unregister_thread();
}

struct UrcuLfht : PerPageRanges<UrcuLfht> {
	static constexpr const char *name = "urcu-lfht";
	static constexpr const char *note = "liburcu cds_lfht, fixed buckets (unordered: ranges per page)";
	static constexpr bool ranged = false;
	cds_lfht *ht;
	// A fixed number of buckets, sized from the workload's hint (64Ki to
	// 16Mi), as a kernel sizes its hash tables at boot.  Not auto-resized:
	// liburcu 0.13's lazy resize can lose its "resize initiated" flag (the
	// worker may finish before the requester sets it, rculfhash.c
	// __cds_lfht_resize_lazy_launch), after which the table never resizes
	// again; under CPU contention a table emptied and refilled in a loop
	// then stayed small and range_1G ran for many minutes.
	explicit UrcuLfht(size_t hint)
	{
		urcu_enter();
		unsigned long init = 1ul << 16;
		while (init < hint && init < (1ul << 24))
			init <<= 1;
		ht = cds_lfht_new(init, init, init, 0, nullptr);
	}
	~UrcuLfht()
	{
		cds_lfht_iter it;
		cds_lfht_node *n;
		rcu_read_lock();
		cds_lfht_for_each(ht, &it, n)
		{
			if (cds_lfht_del(ht, n) == 0)
				free(caa_container_of(n, LfhtNode, node));
		}
		rcu_read_unlock();
		rcu_barrier();
		cds_lfht_destroy(ht, nullptr);
		urcu_leave();
	}
	struct Ctx {
		explicit Ctx(UrcuLfht &)
		{
			urcu_enter();
		}
		~Ctx()
		{
			urcu_leave();
		}
	};
	static unsigned long hash(uintptr_t va)
	{
		uint64_t x = va * 0x9e3779b97f4a7c15ull;
		return (unsigned long)(x ^ (x >> 29));
	}
	static int match(cds_lfht_node *n, const void *key)
	{
		return caa_container_of(n, LfhtNode, node)->va ==
		       *static_cast<const uintptr_t *>(key);
	}
	LfhtNode *find(uintptr_t va)
	{
		cds_lfht_iter it;
		cds_lfht_lookup(ht, hash(va), match, &va, &it);
		cds_lfht_node *n = cds_lfht_iter_get_node(&it);
		return n ? caa_container_of(n, LfhtNode, node) : nullptr;
	}
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		LfhtNode *fresh = nullptr;
		for (;;) {
			rcu_read_lock();
			LfhtNode *n = find(va);
			if (n != nullptr) {
				int r = share(n->refs, n->frame, f);
				rcu_read_unlock();
				if (r != 0) {
					free(fresh);
					return r;
				}
				continue; // dead: its last releaser is deleting it
			}
			if (fresh == nullptr) {
				fresh = static_cast<LfhtNode *>(malloc(sizeof(LfhtNode)));
				cds_lfht_node_init(&fresh->node);
				fresh->va = va;
				fresh->frame = f;
				new (&fresh->refs) std::atomic<uint32_t>(2);
			}
			cds_lfht_node *got =
			        cds_lfht_add_unique(ht, hash(va), match, &va, &fresh->node);
			rcu_read_unlock();
			if (got == &fresh->node)
				return 2;
		}
	}
	static void free_node(rcu_head *h)
	{
		free(caa_container_of(h, LfhtNode, rcu));
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		rcu_read_lock();
		LfhtNode *n = find(va);
		int r = COWTABLE_NOT_COW;
		if (n != nullptr) {
			r = drop(n->refs);
			*f = n->frame;
			if (r == COWTABLE_LAST && cds_lfht_del(ht, &n->node) == 0)
				call_rcu(&n->rcu, free_node);
		}
		rcu_read_unlock();
		return r;
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *refs)
	{
		rcu_read_lock();
		LfhtNode *n = find(va);
		bool live = false;
		if (n != nullptr) {
			*refs = n->refs.load(std::memory_order_acquire);
			*f = n->frame;
			live = *refs != 0;
		}
		rcu_read_unlock();
		return live;
	}
};

// -------------------------------------- the Linux kernel's own XArray
// lib/xarray.c of Linux 6.1 compiled in user space (bench/xarray/xa_peer.c):
// lookups under rcu_read_lock() with xa_load(), writers under xa_lock, ranges
// with xas_next()/xas_for_each() and one lock hold per 512 pages.
static_assert(int(XA_PEER_NOT_COW) == int(COWTABLE_NOT_COW) &&
                      int(XA_PEER_SHARED) == int(COWTABLE_SHARED) &&
                      int(XA_PEER_LAST) == int(COWTABLE_LAST),
              "release results");
static_assert(-EEXIST == COWTABLE_EEXIST && -ENOMEM == COWTABLE_ENOMEM &&
                      -EOVERFLOW == COWTABLE_EOVERFLOW,
              "mark errors");

struct LinuxXarray {
	static constexpr const char *name = "linux-xarray";
	static constexpr const char *note =
	        "Linux 6.1 lib/xarray.c: RCU xa_load, xa_lock writers, xas ranges";
	static constexpr bool ranged = true;
	xa_peer *xa;
	explicit LinuxXarray(size_t)
	{
		urcu_enter();
		xa = xa_peer_new();
	}
	~LinuxXarray()
	{
		xa_peer_free(xa);
		urcu_leave();
	}
	struct Ctx {
		explicit Ctx(LinuxXarray &)
		{
			urcu_enter();
		}
		~Ctx()
		{
			urcu_leave();
		}
	};
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		return xa_peer_mark(xa, va / kPage, f);
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		return xa_peer_release(xa, va / kPage, f);
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *r)
	{
		return xa_peer_lookup(xa, va / kPage, f, r);
	}
	int mark_range(Ctx &, uintptr_t s, size_t n, const cowtable_frame_t *f)
	{
		return xa_peer_mark_range(xa, s / kPage, n, f);
	}
	size_t release_range(Ctx &, uintptr_t s, uintptr_t e, last_fn fn, void *arg)
	{
		struct Last {
			last_fn fn;
			void *arg;
		} last{fn, arg};
		auto page = [](unsigned long index, uint64_t frame, void *a) {
			Last *l = static_cast<Last *>(a);
			l->fn(uintptr_t(index) * kPage, frame, l->arg);
		};
		if (e <= s)
			return 0;
		return xa_peer_release_range(xa, s / kPage, (e - 1) / kPage, fn ? +page : nullptr,
		                             &last);
	}
};

// ------------------------------------------------- Judy: JudyL, one lock
// The fastest single-threaded sparse array in C, made concurrent the simple
// way: every operation under one ck_spinlock.  Index = page number; the value
// word packs frame and count (low bit set) when the frame fits in 32 bits,
// else points to a malloc'ed pair.  Ranges hold the lock per 512 pages and
// find the next tracked page with JudyLNext.
struct JudySpin {
	static constexpr const char *name = "judy-spinlock";
	static constexpr const char *note = "JudyL (libjudy 1.0.5) + one ck_spinlock_fas";
	static constexpr bool ranged = true;
	static constexpr size_t kBatch = 512;
	struct Wide {
		cowtable_frame_t frame;
		uint32_t refs;
	};
	Pvoid_t judy = nullptr;
	ck_spinlock_fas_t lock = CK_SPINLOCK_FAS_INITIALIZER;

	explicit JudySpin(size_t)
	{
	}
	~JudySpin()
	{
		Word_t index = 0;
		for (PWord_t v = PWord_t(JudyLFirst(judy, &index, PJE0)); v;
		     v = PWord_t(JudyLNext(judy, &index, PJE0)))
			if (!(*v & 1))
				free(reinterpret_cast<Wide *>(*v));
		JudyLFreeArray(&judy, PJE0);
	}
	struct Ctx {
		explicit Ctx(JudySpin &)
		{
		}
	};
	static Word_t pack(cowtable_frame_t f, uint32_t refs)
	{
		return Word_t(f) << 32 | Word_t(refs) << 1 | 1;
	}
	static void decode(Word_t v, cowtable_frame_t *f, uint32_t *refs)
	{
		if (v & 1) {
			*f = v >> 32;
			*refs = uint32_t(v >> 1) & COWTABLE_REFS_MAX;
		} else {
			*f = reinterpret_cast<Wide *>(v)->frame;
			*refs = reinterpret_cast<Wide *>(v)->refs;
		}
	}
	static void set_refs(Word_t *v, cowtable_frame_t f, uint32_t refs)
	{
		if (*v & 1)
			*v = pack(f, refs);
		else
			reinterpret_cast<Wide *>(*v)->refs = refs;
	}
	// Under the lock.
	int mark_locked(Word_t index, cowtable_frame_t f)
	{
		PWord_t v = PWord_t(JudyLIns(&judy, index, PJE0));
		if (v == PJERR)
			return COWTABLE_ENOMEM;
		if (*v == 0) { // a new slot
			if (f <= UINT32_MAX) {
				*v = pack(f, 2);
				return 2;
			}
			Wide *w = static_cast<Wide *>(malloc(sizeof(Wide)));
			if (w == nullptr) {
				JudyLDel(&judy, index, PJE0);
				return COWTABLE_ENOMEM;
			}
			*w = Wide{f, 2};
			*v = reinterpret_cast<Word_t>(w);
			return 2;
		}
		cowtable_frame_t have;
		uint32_t refs;
		decode(*v, &have, &refs);
		if (have != f)
			return COWTABLE_EEXIST;
		if (refs == COWTABLE_REFS_MAX)
			return COWTABLE_EOVERFLOW;
		set_refs(v, f, refs + 1);
		return int(refs + 1);
	}
	// Under the lock, for a slot that holds an entry.
	int release_locked(Word_t index, PWord_t v, cowtable_frame_t *f)
	{
		uint32_t refs;
		decode(*v, f, &refs);
		if (refs > 1) {
			set_refs(v, *f, refs - 1);
			return COWTABLE_SHARED;
		}
		if (!(*v & 1))
			free(reinterpret_cast<Wide *>(*v));
		JudyLDel(&judy, index, PJE0);
		return COWTABLE_LAST;
	}
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		ck_spinlock_fas_lock(&lock);
		int r = mark_locked(va / kPage, f);
		ck_spinlock_fas_unlock(&lock);
		return r;
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		ck_spinlock_fas_lock(&lock);
		PWord_t v = PWord_t(JudyLGet(judy, va / kPage, PJE0));
		int r = v ? release_locked(va / kPage, v, f) : COWTABLE_NOT_COW;
		ck_spinlock_fas_unlock(&lock);
		return r;
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *refs)
	{
		ck_spinlock_fas_lock(&lock);
		PWord_t v = PWord_t(JudyLGet(judy, va / kPage, PJE0));
		if (v)
			decode(*v, f, refs);
		ck_spinlock_fas_unlock(&lock);
		return v != nullptr;
	}
	int mark_range(Ctx &, uintptr_t s, size_t n, const cowtable_frame_t *f)
	{
		int r = 0;
		for (size_t i = 0; i < n && r >= 0;) {
			size_t end = std::min(n, i + kBatch);
			ck_spinlock_fas_lock(&lock);
			for (; i < end && r >= 0; i++)
				r = mark_locked(s / kPage + i, f[i]);
			ck_spinlock_fas_unlock(&lock);
		}
		return r < 0 ? r : 0;
	}
	size_t release_range(Ctx &, uintptr_t s, uintptr_t e, last_fn fn, void *arg)
	{
		if (e <= s)
			return 0;
		const Word_t last = (e - 1) / kPage;
		Word_t index = s / kPage;
		std::pair<Word_t, cowtable_frame_t> gone[kBatch];
		size_t released = 0;
		for (bool more = true; more;) {
			size_t seen = 0, ngone = 0;
			ck_spinlock_fas_lock(&lock);
			PWord_t v = PWord_t(JudyLFirst(judy, &index, PJE0));
			for (; v && index <= last; v = PWord_t(JudyLNext(judy, &index, PJE0))) {
				cowtable_frame_t f;
				if (release_locked(index, v, &f) == COWTABLE_LAST)
					gone[ngone++] = {index, f};
				if (++seen == kBatch)
					break;
			}
			ck_spinlock_fas_unlock(&lock);
			released += seen;
			more = seen == kBatch && index < last;
			index++;
			for (size_t i = 0; fn && i < ngone; i++)
				fn(uintptr_t(gone[i].first) * kPage, gone[i].second, arg);
		}
		return released;
	}
};

// ------------------------------------- the limit: a flat array per page
// What Linux's struct page does: one atomic count per physical page, found by
// index.  No search at all, so no dynamic structure can beat it.  It only
// covers the window it was sized for (pages beyond it are refused).
struct FlatArray : PerPageRanges<FlatArray> {
	static constexpr const char *name = "flat-array";
	static constexpr const char *note = "atomic count per page by index (the limit)";
	static constexpr bool ranged = true;
	static constexpr uintptr_t kBase = 0;
	std::vector<std::atomic<uint32_t>> refs;
	std::vector<std::atomic<cowtable_frame_t>> frames;
	explicit FlatArray(size_t pages) : refs(pages), frames(pages)
	{
	}
	struct Ctx {
		explicit Ctx(FlatArray &)
		{
		}
	};
	size_t idx(uintptr_t va) const
	{
		return (va - kBase) / kPage;
	}
	int mark(Ctx &, uintptr_t va, cowtable_frame_t f)
	{
		size_t i = idx(va);
		if (i >= refs.size())
			return COWTABLE_ENOMEM;
		uint32_t r = refs[i].load(std::memory_order_acquire);
		for (;;) {
			if (r == 0) {
				frames[i].store(f, std::memory_order_relaxed);
				if (refs[i].compare_exchange_weak(r, 2, std::memory_order_acq_rel))
					return 2;
				continue;
			}
			if (frames[i].load(std::memory_order_relaxed) != f)
				return COWTABLE_EEXIST;
			if (refs[i].compare_exchange_weak(r, r + 1, std::memory_order_acq_rel))
				return int(r + 1);
		}
	}
	int release(Ctx &, uintptr_t va, cowtable_frame_t *f)
	{
		size_t i = idx(va);
		if (i >= refs.size())
			return COWTABLE_NOT_COW;
		*f = frames[i].load(std::memory_order_relaxed);
		return drop(refs[i]);
	}
	bool lookup(Ctx &, uintptr_t va, cowtable_frame_t *f, uint32_t *r)
	{
		size_t i = idx(va);
		if (i >= refs.size())
			return false;
		*r = refs[i].load(std::memory_order_acquire);
		*f = frames[i].load(std::memory_order_relaxed);
		return *r != 0;
	}
};

} // namespace peers
