// SPDX-License-Identifier: BSD-2-Clause
/*
 * The linearizability checker of lin.h: the per-page sequential
 * specification, a Wing-Gong search with Lowe's memo for each page, and the
 * choice of release_range's unreported results across pages.
 */
#include "lin.h"

#include "cowtable.h"
#include "spec.h"

bool lin_step(const struct lin_spec *spec, const struct lin_op *op, bool shared,
              struct lin_state *s)
{
	struct spec_page p = {s->frame, s->refs};
	cowtable_frame_t frame = op->frame;
	uint32_t refs = 0;
	int want;

	switch (op->kind) {
	case LIN_MARK:
	case LIN_MARK_OK:
		/* ENOMEM: the block had no live leaf, so the page was untracked. */
		if (s->refs == 0 && op->kind == LIN_MARK && op->result == COWTABLE_ENOMEM)
			return spec->enomem;
		want = spec_mark(&p, op->frame, spec->refs_max);
		/* A range's pages are marked with an unreported count: any success. */
		if (op->kind == LIN_MARK_OK ? want < 0 : op->result != want)
			return false;
		break;
	case LIN_RELEASE:
		want = spec_release(&p, &frame);
		if (op->result != want || frame != op->frame)
			return false;
		break;
	case LIN_RELEASE_SOME:
		/* Not a LAST (those are reported): SHARED from 2 or more, or NOT_COW. */
		if (!shared)
			return s->refs == 0;
		if (s->refs < 2)
			return false;
		s->refs--;
		return true;
	case LIN_LOOKUP:
		if (!spec_lookup(&p, &frame, &refs))
			return op->result == 0;
		return op->result != 0 && refs == op->refs && frame == op->frame;
	case LIN_IS_COW:
		return op->result == spec_lookup(&p, 0, 0);
	default:
		return false;
	}
	s->frame = p.frame;
	s->refs = p.refs;
	return true;
}

/* One page's search: its operations, the SHARED choices, the memo. */
struct lin_search {
	struct lin_checker *c;
	const struct lin_spec *spec;
	const struct lin_op *ops;
	uint32_t all;    /* a bit for every operation */
	uint32_t shared; /* LIN_RELEASE_SOME operations taken as SHARED */
	uint64_t visited;
	bool gave_up;
};

#define LIN_NODE_LIMIT 2000000u /* states one search may visit */
#define LIN_PROBES     8

static uint64_t lin_key(struct lin_state s)
{
	/* A frame has 40 bits and a count 24: one word, as in a slot. */
	return s.frame << 24 | s.refs;
}

static uint32_t lin_hash(uint32_t done, uint64_t key)
{
	uint64_t h = (key ^ ((uint64_t)done << 32 | done)) * 0x9e3779b97f4a7c15ull;

	return (uint32_t)(h >> 40);
}

/*
 * Lowe's memo: (done, state) pairs from which no linearization of the rest
 * exists.  A lossy cache (a full neighbourhood overwrites its first entry):
 * forgetting a pair only costs time.
 */
static bool lin_memo_seen(struct lin_search *s, uint32_t done, uint64_t key)
{
	uint32_t h = lin_hash(done, key), i;
	struct lin_memo_entry *e;

	for (i = 0; i < LIN_PROBES; i++) {
		e = &s->c->memo[(h + i) & (LIN_MEMO_SIZE - 1)];
		if (e->gen != s->c->gen)
			return false;
		if (e->done == done && e->state == key)
			return true;
	}
	return false;
}

static void lin_memo_add(struct lin_search *s, uint32_t done, uint64_t key)
{
	uint32_t h = lin_hash(done, key), i;
	struct lin_memo_entry *e = &s->c->memo[h & (LIN_MEMO_SIZE - 1)];

	for (i = 0; i < LIN_PROBES; i++) {
		if (s->c->memo[(h + i) & (LIN_MEMO_SIZE - 1)].gen != s->c->gen) {
			e = &s->c->memo[(h + i) & (LIN_MEMO_SIZE - 1)];
			break;
		}
	}
	e->gen = s->c->gen;
	e->done = done;
	e->state = key;
}

/*
 * Whether the operations not in @done can be linearized from @st.  An
 * operation may go next only if it was invoked before every other remaining
 * operation returned (Wing and Gong's minimal operations).
 */
static bool lin_search(struct lin_search *s, uint32_t done, struct lin_state st)
{
	uint32_t todo = s->all & ~done, m;
	uint64_t min_resp = UINT64_MAX, key = lin_key(st);
	struct lin_state next;
	unsigned int i;

	if (todo == 0)
		return true;
	s->c->nodes++;
	if (++s->visited > LIN_NODE_LIMIT) {
		/* Far beyond any history the torture records: say so rather than guess. */
		s->gave_up = true;
		return false;
	}
	if (lin_memo_seen(s, done, key))
		return false;
	for (m = todo; m != 0; m &= m - 1) {
		i = (unsigned int)__builtin_ctz(m);
		if (s->ops[i].resp < min_resp)
			min_resp = s->ops[i].resp;
	}
	for (m = todo; m != 0; m &= m - 1) {
		i = (unsigned int)__builtin_ctz(m);
		if (s->ops[i].inv > min_resp)
			continue;
		next = st;
		if (lin_step(s->spec, &s->ops[i], (s->shared >> i) & 1, &next) &&
		    lin_search(s, done | 1u << i, next))
			return true;
		if (s->gave_up)
			return false;
	}
	lin_memo_add(s, done, key);
	return false;
}

/* A fresh memo generation for each search; clear the memo when they wrap. */
static void lin_memo_reset(struct lin_checker *c)
{
	unsigned int i;

	if (++c->gen == 0) {
		for (i = 0; i < LIN_MEMO_SIZE; i++)
			c->memo[i].gen = 0;
		c->gen = 1;
	}
}

/* Per page: the SHARED/NOT_COW choices its history allows, a bit per choice. */
struct lin_choices {
	unsigned int nsome;
	unsigned int some[LIN_MAX_SOME]; /* indexes of its LIN_RELEASE_SOME operations */
	uint64_t feasible;               /* bit c: choice c (bit j of c: some[j] SHARED) works */
};

/* Pick a feasible choice for pages @p.. so that every group gets its count. */
static bool lin_combine(const struct lin_page *pages, const struct lin_choices *ch, unsigned int p,
                        unsigned int npages, uint32_t *left, unsigned int ngroups)
{
	uint64_t f;
	unsigned int c, j, g;
	bool ok;

	if (p == npages) {
		for (g = 0; g < ngroups; g++)
			if (left[g] != 0)
				return false;
		return true;
	}
	for (f = ch[p].feasible; f != 0; f &= f - 1) {
		c = (unsigned int)__builtin_ctzll(f);
		ok = true;
		for (j = 0; j < ch[p].nsome; j++) {
			if (!(c >> j & 1))
				continue;
			g = pages[p].ops[ch[p].some[j]].group;
			if (left[g] == 0)
				ok = false;
			left[g]--;
		}
		if (ok && lin_combine(pages, ch, p + 1, npages, left, ngroups))
			return true;
		for (j = 0; j < ch[p].nsome; j++)
			if (c >> j & 1)
				left[pages[p].ops[ch[p].some[j]].group]++;
	}
	return false;
}

int lin_check(struct lin_checker *c, const struct lin_spec *spec, const struct lin_page *pages,
              unsigned int npages, const uint32_t *group_shared, unsigned int ngroups)
{
	struct lin_choices ch[LIN_MAX_PAGES];
	uint32_t left[LIN_MAX_GROUPS];
	struct lin_search s;
	unsigned int p, i, choice, j;

	if (npages > LIN_MAX_PAGES || ngroups > LIN_MAX_GROUPS)
		return LIN_TOO_HARD;
	for (p = 0; p < npages; p++) {
		const struct lin_page *pg = &pages[p];

		if (pg->n > LIN_MAX_OPS)
			return LIN_TOO_HARD;
		ch[p].nsome = 0;
		ch[p].feasible = 0;
		for (i = 0; i < pg->n; i++) {
			if (pg->ops[i].kind != LIN_RELEASE_SOME)
				continue;
			if (ch[p].nsome == LIN_MAX_SOME || pg->ops[i].group >= ngroups)
				return LIN_TOO_HARD;
			ch[p].some[ch[p].nsome++] = i;
		}
		s.c = c;
		s.spec = spec;
		s.ops = pg->ops;
		s.all = pg->n == 32 ? ~0u : (1u << pg->n) - 1;
		s.gave_up = false;
		for (choice = 0; choice < 1u << ch[p].nsome; choice++) {
			s.shared = 0;
			for (j = 0; j < ch[p].nsome; j++)
				if (choice >> j & 1)
					s.shared |= 1u << ch[p].some[j];
			lin_memo_reset(c);
			c->searches++;
			s.visited = 0;
			if (lin_search(&s, 0, pg->init))
				ch[p].feasible |= 1ull << choice;
			if (s.gave_up)
				return LIN_TOO_HARD;
		}
		if (ch[p].feasible == 0)
			return (int)p;
	}
	for (i = 0; i < ngroups; i++)
		left[i] = group_shared[i];
	return lin_combine(pages, ch, 0, npages, left, ngroups) ? LIN_OK : LIN_BAD_COUNTS;
}
