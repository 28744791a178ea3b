# SPDX-License-Identifier: BSD-2-Clause
# Cross build for aarch64 Linux with Debian's aarch64-linux-gnu toolchain; ctest runs
# the tests under qemu-user.  Concurrency Kit comes from
# build/cross/aarch64/ck, which scripts/cross-test.sh builds from Debian's source
# package (scripts/ck-source.sh).  Used by the cross-* presets.
set(COWTABLE_CROSS_ARCH aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
