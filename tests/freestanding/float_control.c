/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The broken control of scripts/freestanding.sh --control-float: floating
 * point in the core's object.  The script compiles this file without the
 * flags that keep a kernel's code off the FP and vector registers
 * (-mgeneral-regs-only, -march=rv64imac -mabi=lp64), as a file added to a
 * build with the wrong flags would be, and links it into the object; the
 * disassembly scan must report it.
 */
#include <stdint.h>

uint64_t ct_control_float_scale(uint64_t frames, uint64_t pages);

uint64_t ct_control_float_scale(uint64_t frames, uint64_t pages)
{
	volatile double ratio = (double)frames / (double)(pages + 1);

	return (uint64_t)(ratio * 1000.0);
}
