//! The allocator setting both ends of the API run with: the agent and every
//! service allocate buffers of about a context's size on a migration's hot
//! path.

/// Makes the C allocator keep freed memory for reuse instead of returning
/// it to the kernel, and faults in [`HEAP_RESERVE`] of heap up front. Every
/// migration allocates buffers of about a context's size (75 KB and up) on
/// the hot path, in the agent and in each service; fresh pages cost a page
/// fault each on first touch (about 4 µs each on a virtual machine), and
/// the first migration of a process otherwise takes a hundred of them. Call
/// it first thing in `main`, before any other thread exists. Does nothing
/// where the C library is not glibc.
pub fn keep_freed_memory() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt only changes allocator parameters; the caller
        // runs it before starting other threads, as documented.
        unsafe {
            nix::libc::mallopt(nix::libc::M_TRIM_THRESHOLD, 256 << 20);
            nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 32 << 20);
        }
        // Written (not merely allocated) so every page is faulted in; freed
        // at once, it stays in the heap for later allocations to reuse.
        let mut reserve = vec![1u8; HEAP_RESERVE];
        std::hint::black_box(&mut reserve);
    }
}

/// Heap faulted in by [`keep_freed_memory`]: what the buffers of a few
/// dozen 75 KB migrations in flight take, so none of them pays for a fresh
/// page (a burst of hundreds of UEs grows the heap beyond it once).
pub const HEAP_RESERVE: usize = 8 << 20;
