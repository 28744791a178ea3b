// SPDX-License-Identifier: BSD-2-Clause
/* A program written against include/cowtable.h exactly as the contract gives it. */
#include <cowtable.h>
#include <stdio.h>

int main(void)
{
	struct cowtable table;
	struct cowtable_ctx *ctx;
	cowtable_frame_t frame = 0;
	uint32_t refs = 0;
	int ok;

	if (cowtable_init(&table, NULL) != 0)
		return 1;
	ctx = cowtable_ctx_get(&table);
	ok = ctx != NULL && cowtable_mark(ctx, 0x1000, 42) == 2 && cowtable_is_cow(ctx, 0x1000) &&
	     cowtable_lookup(ctx, 0x1000, &frame, &refs) && frame == 42 && refs == 2 &&
	     cowtable_release(ctx, 0x1000, NULL) == COWTABLE_SHARED &&
	     cowtable_release(ctx, 0x1000, &frame) == COWTABLE_LAST &&
	     cowtable_release(ctx, 0x1000, NULL) == COWTABLE_NOT_COW &&
	     cowtable_mark(ctx, 0x1001, 1) == COWTABLE_EINVAL && cowtable_count(&table) == 0 &&
	     COWTABLE_ENOMEM == -12 && COWTABLE_EEXIST == -17 && COWTABLE_EOVERFLOW == -75;
	cowtable_reclaim(ctx);
	cowtable_barrier(ctx);
	cowtable_ctx_put(ctx);
	cowtable_fini(&table);
	printf("installed cowtable: %s\n", ok ? "works" : "BROKEN");
	return ok ? 0 : 1;
}
