#include <linux/types.h>
#include <linux/stddef.h>
