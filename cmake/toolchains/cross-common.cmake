# SPDX-License-Identifier: BSD-2-Clause
# What every cross toolchain file shares; COWTABLE_CROSS_ARCH names the target
# (aarch64, riscv64, s390x), and Debian's cross toolchain for it is
# ${COWTABLE_CROSS_ARCH}-linux-gnu-gcc with its libraries in
# /usr/${COWTABLE_CROSS_ARCH}-linux-gnu.  Tests run under
# qemu-${COWTABLE_CROSS_ARCH}-static (qemu-user-static) with that sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${COWTABLE_CROSS_ARCH})
set(triple ${COWTABLE_CROSS_ARCH}-linux-gnu)
set(CMAKE_C_COMPILER ${triple}-gcc)
set(CMAKE_CXX_COMPILER ${triple}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-${COWTABLE_CROSS_ARCH}-static -L /usr/${triple})
# Concurrency Kit for the target, built from Debian's source package: its
# pkg-config file, never the host's.
get_filename_component(ck_prefix ${CMAKE_CURRENT_LIST_DIR}/../../build/cross/${COWTABLE_CROSS_ARCH}/ck ABSOLUTE)
list(APPEND CMAKE_FIND_ROOT_PATH ${ck_prefix})
set(ENV{PKG_CONFIG_LIBDIR} ${ck_prefix}/lib/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
