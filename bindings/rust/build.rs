// SPDX-License-Identifier: BSD-2-Clause
//! Links the C library: `libcowtable.a` and Concurrency Kit (`-lck`).
//!
//! Environment:
//! - `COWTABLE_LIB_DIR`: the directory holding `libcowtable.a`; default: the
//!   repository's `build/release` (`cmake --preset release && cmake --build
//!   build/release`).
//! - `COWTABLE_CK_LIB`: the Concurrency Kit library to link; default `ck`.
//!   Empty: link none (a `libcowtable.a` that already holds `ck_epoch.o`).
//! - `COWTABLE_INCLUDE_DIR`: where `cowtable.h` is; default: the
//!   repository's `include`.  Only read to tell which contract the library
//!   implements (see `cowtable_new_core` below).
//! - `COWTABLE_NEW_CORE`: `1` or `0` overrides that detection.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repo = manifest.join("..").join("..");
    let repo = fs::canonicalize(&repo).unwrap_or(repo);

    for var in [
        "COWTABLE_LIB_DIR",
        "COWTABLE_CK_LIB",
        "COWTABLE_INCLUDE_DIR",
        "COWTABLE_NEW_CORE",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");

    let lib_dir = match env::var_os("COWTABLE_LIB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo.join("build").join("release"),
    };
    let lib = lib_dir.join("libcowtable.a");
    if !lib.is_file() {
        eprintln!(
            "error: {} not found.\n\
             Build the C library first, from the repository's top directory:\n\
             \x20   sh scripts/setup.sh\n\
             \x20   cmake --preset release && cmake --build build/release -j2\n\
             or point COWTABLE_LIB_DIR at the directory that holds libcowtable.a.",
            lib.display()
        );
        process::exit(1);
    }
    println!("cargo:rerun-if-changed={}", lib.display());
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=static=cowtable");
    let ck = env::var("COWTABLE_CK_LIB").unwrap_or_else(|_| "ck".to_string());
    if !ck.is_empty() {
        println!("cargo:rustc-link-lib={ck}");
    }

    // Which contract the library implements: the new core bounds frames by
    // COWTABLE_FRAME_MAX and counts by COWTABLE_REFS_MAX = 2^24 - 1.  The
    // tests of those two limits run only against it (tests/new_core.rs).
    let include = match env::var_os("COWTABLE_INCLUDE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo.join("include"),
    };
    let header = include.join("cowtable.h");
    println!("cargo:rerun-if-changed={}", header.display());
    let new_core = match env::var("COWTABLE_NEW_CORE").ok().as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => header_has_frame_max(&header),
    };
    if rustc_minor() >= 80 {
        // Older cargo warns about this line, and older rustc needs it not.
        println!("cargo:rustc-check-cfg=cfg(cowtable_new_core)");
    }
    if new_core {
        println!("cargo:rustc-cfg=cowtable_new_core");
    }
}

fn header_has_frame_max(header: &Path) -> bool {
    match fs::read_to_string(header) {
        Ok(text) => text.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some("#define") && words.next() == Some("COWTABLE_FRAME_MAX")
        }),
        Err(_) => false,
    }
}

/// The minor version of the rustc that builds the crate (63 for 1.63).
fn rustc_minor() -> u32 {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = match Command::new(rustc).arg("--version").output() {
        Ok(out) => out,
        Err(_) => return 0,
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.63.0 (...)"
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}
