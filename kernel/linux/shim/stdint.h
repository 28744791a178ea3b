/* SPDX-License-Identifier: BSD-2-Clause */
/* The C library headers cowtable and Concurrency Kit include, mapped onto the kernel's. */
#ifndef COWTABLE_SHIM_STDINT_H
#define COWTABLE_SHIM_STDINT_H
#include <linux/types.h>
#include <linux/limits.h>
#ifndef UINTPTR_MAX
#define UINTPTR_MAX ULONG_MAX
#endif
#ifndef INT32_MAX
#define INT32_MAX S32_MAX
#endif
#ifndef UINT32_MAX
#define UINT32_MAX U32_MAX
#endif
#ifndef UINT64_MAX
#define UINT64_MAX U64_MAX
#endif
#endif
