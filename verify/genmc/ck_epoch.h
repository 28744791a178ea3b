/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A model of Concurrency Kit's ck_epoch for GenMC, standing in for
 * <ck_epoch.h> (this directory comes first on the include path).  GenMC
 * cannot see ck_pr's inline assembly, so the model restates, with __atomic
 * builtins, what ck_epoch (0.7.1, Debian's libck) does on a weakly ordered
 * CPU (its non-TSO paths, as compiled for arm64, POWER and RISC-V), for the
 * functions cowtable calls: init, register, begin, end, value, poll and
 * synchronize.
 * Each ck_pr access is a relaxed access of the same size; each ck_pr fence
 * is the C11 fence that gives at least its order:
 *
 *   ck_pr_fence_memory       __atomic_thread_fence(__ATOMIC_SEQ_CST)
 *   ck_pr_fence_release      __atomic_thread_fence(__ATOMIC_RELEASE)
 *   ck_pr_fence_load         __atomic_thread_fence(__ATOMIC_ACQUIRE)
 *   ck_pr_fence_atomic_load  __atomic_thread_fence(__ATOMIC_ACQUIRE)
 *   ck_pr_cas_uint_value     relaxed CAS (ldxr/stxr, no barrier, on arm64)
 *
 * The guarantee cowtable relies on (docs/design.md, "Why e + 2 is safe";
 * docs/verification.md) is ck_epoch's rule for advancing the global epoch:
 * ck_epoch_poll() moves it from x to x + 1 only after a full fence and a
 * scan that found every active record with record->epoch == x, and a
 * section publishes "active" before a full fence and only then reads the
 * global epoch.  The model keeps exactly that, and nothing of ck_epoch's
 * callback buckets, which cowtable does not use (ck_epoch_poll then
 * returns false when it finds a record behind, true otherwise).  Like ck,
 * it does not order a section's own loads after its load of the global
 * epoch; docs/verification.md ("Findings") shows what that costs.
 *
 * Knobs that break the model on purpose, for the broken variants that the
 * model checker must reject:
 *   CT_BROKEN_EPOCH_END_RELAXED    ck_epoch_end() without its release fence
 *   CT_BROKEN_EPOCH_BEGIN_NO_FENCE ck_epoch_begin() without its full fence
 */
#ifndef CK_EPOCH_H
#define CK_EPOCH_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ck_epoch_section {
	unsigned int bucket;
} ck_epoch_section_t;

typedef struct ck_epoch_record {
	struct ck_epoch *global;
	struct ck_epoch_record *next; /* ck_epoch's records stack, push only */
	unsigned int epoch;           /* the global epoch the current section observed */
	unsigned int active;          /* nesting depth of sections */
	void *ct;
} ck_epoch_record_t;

typedef struct ck_epoch {
	unsigned int epoch;
	struct ck_epoch_record *records;
} ck_epoch_t;

static inline void ck_epoch_init(ck_epoch_t *global)
{
	__atomic_store_n(&global->records, NULL, __ATOMIC_RELAXED);
	__atomic_store_n(&global->epoch, 1, __ATOMIC_RELEASE); /* ck: epoch 1, store fence */
}

static inline void ck_epoch_register(ck_epoch_t *global, ck_epoch_record_t *record, void *ct)
{
	ck_epoch_record_t *head;

	record->global = global;
	record->ct = ct;
	__atomic_store_n(&record->active, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&record->epoch, 0, __ATOMIC_RELAXED);
	/* ck_pr_fence_store, then ck_stack_push_upmc: a release push. */
	head = __atomic_load_n(&global->records, __ATOMIC_RELAXED);
	do
		record->next = head;
	while (!__atomic_compare_exchange_n(&global->records, &head, record, false,
	                                    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

static inline void ck_epoch_begin(ck_epoch_record_t *record, ck_epoch_section_t *section)
{
	struct ck_epoch *epoch = record->global;
	unsigned int active = __atomic_load_n(&record->active, __ATOMIC_RELAXED);

	(void)section;
	if (active == 0) {
		unsigned int g_epoch;

		/* The store of active is ordered before the load of the epoch. */
		__atomic_store_n(&record->active, 1, __ATOMIC_RELAXED);
#ifndef CT_BROKEN_EPOCH_BEGIN_NO_FENCE
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
		g_epoch = __atomic_load_n(&epoch->epoch, __ATOMIC_RELAXED);
		__atomic_store_n(&record->epoch, g_epoch, __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&record->active, active + 1, __ATOMIC_RELAXED);
	}
}

static inline bool ck_epoch_end(ck_epoch_record_t *record, ck_epoch_section_t *section)
{
	unsigned int active = __atomic_load_n(&record->active, __ATOMIC_RELAXED) - 1;

	(void)section;
#ifndef CT_BROKEN_EPOCH_END_RELAXED
	__atomic_thread_fence(__ATOMIC_RELEASE);
#endif
	__atomic_store_n(&record->active, active, __ATOMIC_RELAXED);
	return active == 0;
}

static inline unsigned int ck_epoch_value(const ck_epoch_t *ep)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE); /* ck_pr_fence_load */
	return __atomic_load_n(&ep->epoch, __ATOMIC_RELAXED);
}

/*
 * ck_epoch_scan(): the first record from @cr on (from the first if NULL)
 * that is active in an epoch other than @epoch; *@af tells whether a record
 * was seen active (a scan that resumes at @cr counts it as active).
 */
static inline ck_epoch_record_t *ck_epoch_model_scan(struct ck_epoch *global, ck_epoch_record_t *cr,
                                                     unsigned int epoch, bool *af)
{
	unsigned int a;

	if (cr == NULL) {
		cr = __atomic_load_n(&global->records, __ATOMIC_ACQUIRE);
		*af = false;
	} else {
		*af = true;
	}
	for (; cr != NULL; cr = cr->next) {
		a = __atomic_load_n(&cr->active, __ATOMIC_RELAXED);
		*af = *af || a != 0;
		if (a != 0 && __atomic_load_n(&cr->epoch, __ATOMIC_RELAXED) != epoch)
			return cr;
	}
	return NULL;
}

/*
 * ck_epoch_poll_deferred() without callbacks: the first record that is
 * active in another epoch stops it (false); with no record active it is a
 * grace period (true, no advance); otherwise every active record observed
 * the epoch, which it tries to advance by one (true).
 */
static inline bool ck_epoch_poll(ck_epoch_record_t *record)
{
	struct ck_epoch *global = record->global;
	unsigned int epoch;
	bool active;

	epoch = __atomic_load_n(&global->epoch, __ATOMIC_RELAXED);
	/* Serialize epoch snapshots with respect to global epoch. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (ck_epoch_model_scan(global, NULL, epoch, &active) != NULL)
		return false;
	if (!active) {
		__atomic_store_n(&record->epoch, epoch, __ATOMIC_RELAXED);
		return true;
	}
	(void)__atomic_compare_exchange_n(&global->epoch, &epoch, epoch + 1, false,
	                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED);
	return true;
}

/*
 * ck_epoch_synchronize_wait() without a wait callback: advance the epoch
 * twice, each time after every active record has observed the current one,
 * or stop at the first scan that finds no record active.  The scan loop
 * spins without side effects while a record lags behind.
 */
static inline void ck_epoch_synchronize(ck_epoch_record_t *record)
{
	struct ck_epoch *global = record->global;
	ck_epoch_record_t *cr;
	unsigned int delta, epoch, goal, i, e_d;
	bool active, r;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	delta = epoch = __atomic_load_n(&global->epoch, __ATOMIC_RELAXED);
	goal = epoch + 3;
	for (i = 0, cr = NULL; i < 2; cr = NULL, i++) {
		while ((cr = ck_epoch_model_scan(global, cr, delta, &active)) != NULL) {
			e_d = __atomic_load_n(&global->epoch, __ATOMIC_RELAXED);
			if (e_d == delta) {
				/*
				 * ck stalls and scans again from cr.  The
				 * rounds that find cr lagging and the epoch
				 * unchanged do nothing: spin, reading only,
				 * until one would not, so that GenMC turns
				 * the spin into an assumption.  The scan from
				 * cr then reads what ended the spin, or later.
				 */
				while (__atomic_load_n(&cr->active, __ATOMIC_RELAXED) != 0 &&
				       __atomic_load_n(&cr->epoch, __ATOMIC_RELAXED) != delta &&
				       __atomic_load_n(&global->epoch, __ATOMIC_RELAXED) == delta)
					;
				continue;
			}
			delta = e_d;
			if ((goal > epoch) & (delta >= goal))
				goto leave;
			cr = NULL;
		}
		if (!active)
			break;
		r = __atomic_compare_exchange_n(&global->epoch, &delta, delta + 1, false,
		                                __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE); /* ck_pr_fence_atomic_load */
		delta = delta + r;
	}
leave:
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#endif /* CK_EPOCH_H */
