//! The `onedb` binary: argument parsing lives in the library's `cli`.

/// mimalloc rather than the system allocator: queries make many small,
/// short-lived allocations, and glibc's free lists fragment under them
/// (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    onedb::cli::main()
}
