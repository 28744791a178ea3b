/* SPDX-License-Identifier: BSD-2-Clause */
#include <linux/types.h>
#include <linux/stddef.h>
