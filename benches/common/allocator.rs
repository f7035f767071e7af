//! The benches run on the allocator the `onedb` binary runs on
//! (`src/main.rs`), so their figures are the binary's.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
