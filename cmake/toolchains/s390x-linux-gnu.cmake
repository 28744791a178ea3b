# SPDX-License-Identifier: BSD-2-Clause
# Cross build for s390x Linux with Debian's s390x-linux-gnu toolchain; ctest runs
# the tests under qemu-user.  Concurrency Kit comes from
# build/cross/s390x/ck, which scripts/cross-test.sh builds from Debian's source
# package (scripts/ck-source.sh).  Used by the cross-* presets.
set(COWTABLE_CROSS_ARCH s390x)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
