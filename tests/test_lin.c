// SPDX-License-Identifier: BSD-2-Clause
/*
 * The linearizability checker (stress/lin.c) on histories made by hand, each
 * with the verdict it must give: linearizable ones it must accept and
 * non-linearizable ones (a second creation of a live page, a stale lookup, a
 * LAST from a count of 2, two LASTs, release_range counts no choice can
 * give) it must reject, so a checker that accepted or rejected everything
 * fails here.  Then random histories, each compared with a brute-force
 * search over every order the stamps allow: linearizable ones (results
 * computed from a random sequential order, intervals drawn around it) and
 * corrupted copies of them.
 *
 * Usage: test_lin [seed] [random histories]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cowtable.h"
#include "lin.h"
#include "test_alloc.h"

static struct lin_checker *checker;
static const struct lin_spec spec = {.refs_max = 4, .enomem = false};

static struct lin_op op(enum lin_kind kind, uint64_t inv, uint64_t resp, uint64_t frame, int result,
                        uint32_t refs)
{
	struct lin_op o;

	memset(&o, 0, sizeof(o));
	o.kind = (uint8_t)kind;
	o.inv = inv;
	o.resp = resp;
	o.frame = frame;
	o.result = result;
	o.refs = refs;
	return o;
}

/* A page with @n operations, starting from @refs references of frame 7 (or none). */
static struct lin_page page(uint32_t refs, const struct lin_op *ops, unsigned int n)
{
	struct lin_page p;

	memset(&p, 0, sizeof(p));
	p.init.refs = refs;
	p.init.frame = refs != 0 ? 7 : 0;
	p.n = n;
	memcpy(p.ops, ops, n * sizeof(*ops));
	return p;
}

static int check1(uint32_t refs, const struct lin_op *ops, unsigned int n,
                  const struct lin_spec *sp)
{
	struct lin_page p = page(refs, ops, n);

	return lin_check(checker, sp, &p, 1, NULL, 0);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void hand_made(void)
{
	const struct lin_spec enomem = {.refs_max = 4, .enomem = true};
	/* Sequential: a life from creation to LAST, with EEXIST and a lookup. */
	const struct lin_op life[] = {
	        op(LIN_MARK, 1, 2, 7, 2, 0),
	        op(LIN_MARK, 3, 4, 7, 3, 0),
	        op(LIN_MARK, 5, 6, 8, COWTABLE_EEXIST, 0),
	        op(LIN_LOOKUP, 7, 8, 7, 1, 3),
	        op(LIN_RELEASE, 9, 10, 7, COWTABLE_SHARED, 0),
	        op(LIN_RELEASE, 11, 12, 7, COWTABLE_SHARED, 0),
	        op(LIN_RELEASE, 13, 14, 7, COWTABLE_LAST, 0),
	        op(LIN_IS_COW, 15, 16, 0, 0, 0),
	        op(LIN_RELEASE, 17, 18, 0, COWTABLE_NOT_COW, 0),
	};
	/* Overlapping: the mark that returned 2 went first although it began later. */
	const struct lin_op overlap[] = {
	        op(LIN_MARK, 1, 6, 7, 3, 0),
	        op(LIN_MARK, 2, 3, 7, 2, 0),
	        op(LIN_LOOKUP, 4, 5, 7, 1, 2),
	};
	/* Two creations one after the other: the second must have returned 3. */
	const struct lin_op recreate[] = {
	        op(LIN_MARK, 1, 2, 7, 2, 0),
	        op(LIN_MARK, 3, 4, 7, 2, 0),
	};
	/* A stale lookup: not found after a mark that completed before it began. */
	const struct lin_op stale[] = {
	        op(LIN_MARK, 1, 2, 7, 2, 0),
	        op(LIN_LOOKUP, 3, 4, 0, 0, 0),
	};
	/* The same lookup, overlapping the mark: fine. */
	const struct lin_op not_stale[] = {
	        op(LIN_MARK, 1, 4, 7, 2, 0),
	        op(LIN_LOOKUP, 2, 3, 0, 0, 0),
	};
	/* From 2 references: LAST alone is early; after a concurrent SHARED it is right. */
	const struct lin_op early_last[] = {
	        op(LIN_RELEASE, 1, 2, 7, COWTABLE_LAST, 0),
	};
	const struct lin_op last_after_shared[] = {
	        op(LIN_RELEASE, 1, 4, 7, COWTABLE_LAST, 0),
	        op(LIN_RELEASE, 2, 5, 7, COWTABLE_SHARED, 0),
	};
	const struct lin_op two_lasts[] = {
	        op(LIN_RELEASE, 1, 4, 7, COWTABLE_LAST, 0),
	        op(LIN_RELEASE, 2, 5, 7, COWTABLE_LAST, 0),
	};
	/* A mark at the limit must fail; one of mark_range's cannot succeed there. */
	const struct lin_op overflow[] = {
	        op(LIN_MARK, 1, 2, 7, COWTABLE_EOVERFLOW, 0),
	        op(LIN_LOOKUP, 3, 4, 7, 1, 4),
	};
	const struct lin_op range_over[] = {
	        op(LIN_MARK_OK, 1, 2, 7, 0, 0),
	};
	/* A release seeing a frame the page never had. */
	const struct lin_op foreign[] = {
	        op(LIN_RELEASE, 1, 2, 9, COWTABLE_SHARED, 0),
	};
	const struct lin_op enomem_ops[] = {
	        op(LIN_MARK, 1, 2, 7, COWTABLE_ENOMEM, 0),
	        op(LIN_IS_COW, 3, 4, 0, 0, 0),
	};
	/* Stamps alone decide: 1 returns before 3 begins, so a lookup at 3..4 sees it. */
	const struct lin_op order[] = {
	        op(LIN_RELEASE, 1, 2, 7, COWTABLE_LAST, 0),
	        op(LIN_MARK, 5, 8, 7, 2, 0),
	        op(LIN_LOOKUP, 3, 4, 7, 1, 1),
	};

	/*
	 * The search first reaches count 2 with the mark and the release done
	 * and fails (the lookup of 3 is left); the linearization passes count 2
	 * again with the lookup of 3 done too: the memo must tell them apart.
	 */
	const struct lin_op memo[] = {
	        op(LIN_MARK, 1, 10, 7, 3, 0),
	        op(LIN_RELEASE, 2, 11, 7, COWTABLE_SHARED, 0),
	        op(LIN_LOOKUP, 12, 13, 7, 1, 2),
	        op(LIN_LOOKUP, 3, 4, 7, 1, 3),
	};

	CHECK(check1(0, life, N(life), &spec) == LIN_OK, "a sequential life");
	CHECK(check1(0, overlap, N(overlap), &spec) == LIN_OK, "overlapping marks");
	CHECK(check1(0, recreate, N(recreate), &spec) == 0, "a live page created twice");
	CHECK(check1(0, stale, N(stale), &spec) == 0, "a stale lookup");
	CHECK(check1(0, not_stale, N(not_stale), &spec) == LIN_OK, "a lookup inside the mark");
	CHECK(check1(2, early_last, N(early_last), &spec) == 0, "LAST from 2 references");
	CHECK(check1(1, early_last, N(early_last), &spec) == LIN_OK, "LAST from 1 reference");
	CHECK(check1(2, last_after_shared, N(last_after_shared), &spec) == LIN_OK,
	      "LAST after a concurrent SHARED");
	CHECK(check1(2, two_lasts, N(two_lasts), &spec) == 0, "two LASTs");
	CHECK(check1(4, overflow, N(overflow), &spec) == LIN_OK, "EOVERFLOW at the limit");
	CHECK(check1(3, overflow, N(overflow), &spec) == 0, "EOVERFLOW below the limit");
	CHECK(check1(4, range_over, N(range_over), &spec) == 0, "a range mark beyond the limit");
	CHECK(check1(3, range_over, N(range_over), &spec) == LIN_OK, "a range mark to the limit");
	CHECK(check1(2, foreign, N(foreign), &spec) == 0, "a foreign frame");
	CHECK(check1(0, enomem_ops, N(enomem_ops), &spec) == 0, "ENOMEM without failures");
	CHECK(check1(0, enomem_ops, N(enomem_ops), &enomem) == LIN_OK, "ENOMEM with failures");
	CHECK(check1(1, enomem_ops, N(enomem_ops), &enomem) == 0, "ENOMEM on a tracked page");
	CHECK(check1(1, order, N(order), &spec) == 0, "a lookup after a LAST that returned");
	CHECK(check1(2, memo, N(memo), &spec) == LIN_OK,
	      "a state that failed with other operations done");

	/*
	 * release_range over pages A (2 references) and B (untracked), one call
	 * (group 0) overlapping nothing, then lookups: A at 1, B not found.  It
	 * released one page (A: SHARED); a count of 2 or 0 cannot be.
	 */
	{
		struct lin_op a[] = {op(LIN_RELEASE_SOME, 1, 2, 0, 0, 0),
		                     op(LIN_LOOKUP, 3, 4, 7, 1, 1)};
		struct lin_op b[] = {op(LIN_RELEASE_SOME, 1, 2, 0, 0, 0),
		                     op(LIN_LOOKUP, 3, 4, 0, 0, 0)};
		struct lin_page pages[2];
		uint32_t count;

		pages[0] = page(2, a, 2);
		pages[1] = page(0, b, 2);
		count = 1;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_OK,
		      "release_range releasing one of two pages");
		count = 2;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_BAD_COUNTS,
		      "release_range claiming two");
		count = 0;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_BAD_COUNTS,
		      "release_range claiming none");
		/* Page B marked by a concurrent mark: now B may be SHARED too. */
		pages[1].ops[1] = op(LIN_LOOKUP, 3, 4, 7, 1, 2);
		pages[1].ops[2] = op(LIN_MARK, 0, 2, 7, 2, 0);
		pages[1].n = 3;
		count = 2;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_BAD_COUNTS,
		      "B's lookup says 2: not released after the mark, so not counted");
		count = 1;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_OK,
		      "B untracked when the range passed it");
		pages[1].ops[1] = op(LIN_LOOKUP, 3, 4, 7, 1, 3);
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == 1,
		      "B's lookup says 3: no choice for B");
		pages[1].ops[1] = op(LIN_LOOKUP, 3, 4, 7, 1, 1);
		count = 2;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_OK,
		      "B marked then released by the range");
		count = 1;
		CHECK(lin_check(checker, &spec, pages, 2, &count, 1) == LIN_BAD_COUNTS,
		      "B released, but counted once");
	}
}

/*
 * Random histories.  Each operation is a page's share of a call: a
 * release_range call covers every page, with one interval and one group.
 */
#define R_THREADS 3
#define R_CALLS   3 /* per thread */
#define R_PAGES   2

struct rcall {
	unsigned int thread, kind; /* 0 mark, 1 release, 2 lookup, 3 is_cow, 4 mark_ok, 5 range */
	unsigned int page;         /* single-page calls */
	uint64_t frame;            /* mark's argument */
	uint64_t lp, inv, resp;
};

/* Brute force: every order of @p's operations the stamps allow, under @shared. */
static bool brute_page(const struct lin_page *p, uint32_t shared, uint32_t done,
                       struct lin_state st)
{
	struct lin_state next;
	unsigned int i, j;
	bool blocked;

	if (done == (1u << p->n) - 1)
		return true;
	for (i = 0; i < p->n; i++) {
		if (done >> i & 1)
			continue;
		/* i may go next unless a remaining operation returned before i began. */
		for (blocked = false, j = 0; j < p->n && !blocked; j++)
			blocked = !(done >> j & 1) && j != i && p->ops[j].resp < p->ops[i].inv;
		next = st;
		if (!blocked && lin_step(&spec, &p->ops[i], shared >> i & 1, &next) &&
		    brute_page(p, shared, done | 1u << i, next))
			return true;
	}
	return false;
}

/* Brute force over every SHARED/NOT_COW choice of every page at once. */
static bool brute(const struct lin_page *pages, unsigned int npages, const uint32_t *count,
                  unsigned int ngroups)
{
	unsigned int where[64][2], nsome = 0, p, i, g;
	uint32_t shared[R_PAGES], got[R_CALLS * R_THREADS];
	uint64_t choice;
	bool ok;

	for (p = 0; p < npages; p++)
		for (i = 0; i < pages[p].n; i++)
			if (pages[p].ops[i].kind == LIN_RELEASE_SOME) {
				where[nsome][0] = p;
				where[nsome++][1] = i;
			}
	for (choice = 0; choice < 1ull << nsome; choice++) {
		memset(shared, 0, sizeof(shared));
		memset(got, 0, sizeof(got));
		for (i = 0; i < nsome; i++) {
			if (!(choice >> i & 1))
				continue;
			shared[where[i][0]] |= 1u << where[i][1];
			got[pages[where[i][0]].ops[where[i][1]].group]++;
		}
		for (ok = true, g = 0; g < ngroups; g++)
			ok = ok && got[g] == count[g];
		for (p = 0; ok && p < npages; p++)
			ok = brute_page(&pages[p], shared[p], 0, pages[p].init);
		if (ok)
			return true;
	}
	return false;
}

static void random_histories(uint64_t seed, unsigned int histories)
{
	struct rcall calls[R_THREADS * R_CALLS], *c;
	struct lin_page pages[R_PAGES];
	struct lin_state st[R_PAGES];
	uint32_t count[R_THREADS * R_CALLS];
	unsigned int h, i, p, ncalls, ngroups, order[R_THREADS * R_CALLS], left[R_THREADS];
	unsigned int yes = 0, no = 0, bad_counts = 0, ranges;
	uint64_t rng = seed, x;
	int verdict;

	for (h = 0; h < histories; h++) {
		/* A sequential order: threads take turns at random, each R_CALLS calls. */
		for (i = 0; i < R_THREADS; i++)
			left[i] = 1 + (unsigned int)(test_rand(&rng) % R_CALLS);
		for (ncalls = 0, ranges = 0;;) {
			for (i = 0, p = 0; i < R_THREADS; i++)
				p += left[i];
			if (p == 0)
				break;
			x = test_rand(&rng) % p;
			for (i = 0; x >= left[i]; i++)
				x -= left[i];
			left[i]--;
			c = &calls[ncalls];
			c->thread = i;
			x = test_rand(&rng);
			c->kind = (unsigned int)(x % 6);
			if (c->kind == 5 && ranges++ >= LIN_MAX_SOME)
				c->kind = 1; /* no more release_range results than the checker takes
				              */
			c->page = (unsigned int)(x >> 8) % R_PAGES;
			c->frame = 7 + ((x >> 16) % 5 == 0);
			c->lp = 100 * (ncalls + 1);
			order[ncalls] = ncalls;
			ncalls++;
		}
		/*
		 * Intervals around the points, up to 3.5 calls wide either side, each
		 * thread's calls one after another (a call ends before its thread's
		 * next point, the next begins after it ends).
		 */
		for (i = 0; i < ncalls; i++) {
			uint64_t lo = 0, hi = calls[i].lp + 350;
			unsigned int j;

			for (j = 0; j < ncalls; j++) {
				if (calls[j].thread != calls[i].thread)
					continue;
				if (j < i)
					lo = calls[j].resp;
				if (j > i && hi > calls[j].lp)
					hi = calls[j].lp;
			}
			if (lo + 350 < calls[i].lp)
				lo = calls[i].lp - 350;
			calls[i].inv = lo + 1 + test_rand(&rng) % (calls[i].lp - lo - 1);
			calls[i].resp = calls[i].lp + 1 + test_rand(&rng) % (hi - calls[i].lp - 2);
		}
		/* Results: the specification applied in the order of the points. */
		x = test_rand(&rng);
		for (p = 0; p < R_PAGES; p++) {
			st[p].refs = (uint32_t)((x >> (8 * p)) % 4);
			st[p].frame = st[p].refs != 0 ? 7 : 0;
			memset(&pages[p], 0, sizeof(pages[p]));
			pages[p].init = st[p];
		}
		ngroups = 0;
		for (i = 0; i < ncalls; i++) {
			struct lin_op o;

			c = &calls[order[i]];
			memset(&o, 0, sizeof(o));
			o.inv = c->inv;
			o.resp = c->resp;
			o.thread = (uint16_t)c->thread;
			if (c->kind == 5) {
				count[ngroups] = 0;
				for (p = 0; p < R_PAGES; p++) {
					o.kind = LIN_RELEASE;
					o.frame = st[p].frame;
					if (st[p].refs == 1) {
						o.result = COWTABLE_LAST;
						st[p].refs = 0;
						st[p].frame = 0;
					} else {
						o.kind = LIN_RELEASE_SOME;
						o.group = (uint8_t)ngroups;
						count[ngroups] += st[p].refs >= 2;
						st[p].refs -= st[p].refs >= 2;
					}
					pages[p].ops[pages[p].n++] = o;
				}
				ngroups++;
				continue;
			}
			p = c->page;
			o.frame = c->frame;
			switch (c->kind) {
			case 0:
			case 4:
				o.kind = c->kind == 0 ? LIN_MARK : LIN_MARK_OK;
				o.result = st[p].refs == 0               ? 2
				           : st[p].frame != c->frame     ? COWTABLE_EEXIST
				           : st[p].refs >= spec.refs_max ? COWTABLE_EOVERFLOW
				                                         : (int)st[p].refs + 1;
				if (o.kind == LIN_MARK_OK && o.result < 0)
					o.kind = LIN_MARK; /* mark_range reports its error */
				if (o.result > 0) {
					st[p].frame = c->frame;
					st[p].refs = (uint32_t)o.result;
				}
				break;
			case 1:
				o.kind = LIN_RELEASE;
				o.frame = st[p].frame;
				o.result = st[p].refs == 0   ? COWTABLE_NOT_COW
				           : st[p].refs == 1 ? COWTABLE_LAST
				                             : COWTABLE_SHARED;
				st[p].refs -= st[p].refs != 0;
				if (st[p].refs == 0)
					st[p].frame = 0;
				break;
			default:
				o.kind = c->kind == 2 ? LIN_LOOKUP : LIN_IS_COW;
				o.result = st[p].refs != 0;
				o.frame = st[p].frame;
				o.refs = st[p].refs;
				break;
			}
			pages[p].ops[pages[p].n++] = o;
		}
		/* Half of them corrupted: one result changed. */
		x = test_rand(&rng);
		if (x & 1) {
			struct lin_op *o;

			p = (unsigned int)(x >> 1) % R_PAGES;
			if (pages[p].n == 0)
				continue;
			o = &pages[p].ops[(x >> 8) % pages[p].n];
			switch ((x >> 16) % 4) {
			case 0:
				o->result += (x >> 20 & 1) ? 1 : -1;
				break;
			case 1:
				o->refs++;
				break;
			case 2:
				o->frame ^= 1;
				break;
			default:
				if (ngroups > 0)
					count[(x >> 24) % ngroups] ^= 1;
				else
					o->result = !o->result;
				break;
			}
		}
		verdict = lin_check(checker, &spec, pages, R_PAGES, count, ngroups);
		if (!CHECK(verdict != LIN_TOO_HARD, "history %u too hard", h) ||
		    !CHECK((verdict == LIN_OK) == brute(pages, R_PAGES, count, ngroups),
		           "history %u (seed %llu): the checker says %d, brute force disagrees", h,
		           (unsigned long long)seed, verdict))
			return;
		yes += verdict == LIN_OK;
		no += verdict != LIN_OK;
		bad_counts += verdict == LIN_BAD_COUNTS;
	}
	printf("random histories: %u linearizable, %u not (%u by release_range counts alone), "
	       "every verdict the brute force's\n",
	       yes, no, bad_counts);
	CHECK(yes >= histories / 4 && no >= histories / 8 && bad_counts > 0,
	      "too few of each kind to mean much");
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 20261127;
	unsigned int histories = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 0) : 20000;

	checker = calloc(1, sizeof(*checker));
	if (!CHECK(checker != NULL, "memory"))
		return 1;
	hand_made();
	random_histories(seed, histories);
	free(checker);
	return check_exit("lin_checker");
}
