#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# Install the build into a scratch prefix, then compile and run a program
# written against the contract with nothing but pkg-config's flags.
set -eu
build=$1
src=$2
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
pc=$(dirname "$(find "$prefix" -name cowtable.pc)")
export PKG_CONFIG_PATH="$pc"
libdir=$(pkg-config --variable=libdir cowtable)
${CC:-cc} -Wall -Wextra -Werror -o "$prefix/consumer" "$src/contract_consumer.c" \
	$(pkg-config --cflags --libs cowtable) -Wl,-rpath,"$libdir"
"$prefix/consumer"
# The static library with its private dependencies.
${CC:-cc} -o "$prefix/consumer_static" "$src/contract_consumer.c" \
	$(pkg-config --cflags cowtable) "$libdir/libcowtable.a" \
	$(pkg-config --libs --static cowtable | sed 's/-lcowtable//')
"$prefix/consumer_static"
# The CMake package.
mkdir "$prefix/cm"
cat >"$prefix/cm/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(cowtable REQUIRED)
add_executable(consumer $src/contract_consumer.c)
target_link_libraries(consumer cowtable::cowtable)
CM
cmake -S "$prefix/cm" -B "$prefix/cm/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cm/b" >/dev/null
"$prefix/cm/b/consumer"
