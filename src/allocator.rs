//! The process's allocator settings: as few glibc malloc arenas as the machine has cores, and
//! a fixed size from which a block is mapped on its own.
//!
//! glibc gives a thread that finds the arenas busy an arena of its own, up to eight per core,
//! and memory freed in one arena serves only that arena's later requests. A run's tokio workers
//! and blocking threads (the response cache's file work, host-name lookups) come and go, so
//! each held an arena of its own and the run's resident memory grew well past its heap.
//! Measured with `cargo bench --bench memory` on 2 cores: 100,000 calls 136.9 MB → 112.1 MB
//! peak RSS, a million calls 673.5 MB → 587.1 MB, with no loss of wall time.
//!
//! glibc maps a block of 128 KiB or more on its own, and gives it back when it is freed; but
//! freeing such a block raises that size to the block's (up to 32 MiB), so from then on a
//! run's large vectors (the jobs, the outcomes, the cache's index: megabytes each) come from
//! the heap, where freeing them returns nothing the smaller blocks around them still pin.
//! Fixed at 1 MiB, the size stays put. Measured the same way, 100,000 calls: 103.1–103.5 MB →
//! 94.9–95.7 MB peak RSS, CPU time unchanged.

/// The arenas to ask for: one a core, at least two; `None` when `MALLOC_ARENA_MAX` is set (the
/// user's setting stands: glibc has read it already).
pub fn arenas(env: Option<&std::ffi::OsStr>, cores: usize) -> Option<i32> {
    match env {
        Some(_) => None,
        None => Some(i32::try_from(cores.max(2)).unwrap_or(i32::MAX)),
    }
}

/// The size from which a block is mapped on its own (see the module's notes); `None` when
/// `MALLOC_MMAP_THRESHOLD_` is set (the user's setting stands).
pub fn mmap_threshold(env: Option<&std::ffi::OsStr>) -> Option<i32> {
    match env {
        Some(_) => None,
        None => Some(1 << 20),
    }
}

/// Caps the malloc arenas (see [`arenas`]) and fixes the mapping size ([`mmap_threshold`]).
/// Call first thing in `main`, before any thread starts. A no-op off glibc.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let settings = [
            arenas(std::env::var_os("MALLOC_ARENA_MAX").as_deref(), cores).map(|n| (libc::M_ARENA_MAX, n)),
            mmap_threshold(std::env::var_os("MALLOC_MMAP_THRESHOLD_").as_deref()).map(|n| (libc::M_MMAP_THRESHOLD, n)),
        ];
        for (parameter, value) in settings.into_iter().flatten() {
            #[allow(unsafe_code)]
            // SAFETY: `mallopt` only sets an allocator parameter; called before any other thread runs.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}

/// Gives the pages the heap holds free back to the system (glibc's `malloc_trim`), at the end
/// of a phase that freed much (the suites' reading, the calls' bookkeeping): glibc returns
/// only the free memory at the top of an arena on its own, so what a phase freed below the
/// blocks still in use stayed resident, and the next phase's peak stood on top of it. The
/// next allocations reuse the same addresses and fault the pages in again as they need them.
/// A no-op off glibc.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code)]
        // SAFETY: `malloc_trim` takes the allocator's own locks; it frees nothing in use.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// A vector's items in order, its buffer given back as they go: halved each time it is half
/// empty. `Vec::into_iter` frees the buffer only at the end, so a run's outcomes stayed whole
/// beside the calls scored from them (a hundred bytes a call, until the last was scored), and
/// so did where the stowed ones lie (`runner::stow::Stowed::into_outcomes`).
pub struct Shrinking<T> {
    /// Reversed: the next item is the last.
    reversed: Vec<T>,
}

impl<T> Shrinking<T> {
    pub fn new(mut items: Vec<T>) -> Shrinking<T> {
        items.reverse();
        Shrinking { reversed: items }
    }
}

impl<T> Iterator for Shrinking<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.reversed.pop();
        // Small buffers are not worth the copy; a large one shrinks in place (`mremap`).
        if self.reversed.capacity() >= 1024 && self.reversed.len() < self.reversed.capacity() / 2 {
            self.reversed.shrink_to_fit();
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.reversed.len(), Some(self.reversed.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shrinking_vector_gives_its_items_in_order_and_its_buffer_back() {
        let mut items = Shrinking::new((0..10_000).collect::<Vec<u64>>());
        assert_eq!(items.by_ref().take(3).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(items.reversed.capacity(), 10_000, "not yet half empty");
        assert_eq!(items.nth(7_000 - 4), Some(6_999));
        // 3,000 left: the buffer was halved to 4,999 at 4,999 left.
        assert!(items.reversed.capacity() < 5_000, "{}", items.reversed.capacity());
        assert_eq!(items.size_hint(), (3_000, Some(3_000)));
        assert_eq!(items.collect::<Vec<_>>(), (7_000..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn one_arena_a_core_at_least_two_and_the_users_setting_stands() {
        assert_eq!(arenas(None, 1), Some(2));
        assert_eq!(arenas(None, 2), Some(2));
        assert_eq!(arenas(None, 64), Some(64));
        assert_eq!(arenas(Some(std::ffi::OsStr::new("8")), 2), None);
        assert_eq!(arenas(Some(std::ffi::OsStr::new("")), 2), None);
    }

    #[test]
    fn large_blocks_are_mapped_from_one_mebibyte_unless_the_user_says_otherwise() {
        assert_eq!(mmap_threshold(None), Some(1_048_576));
        assert_eq!(mmap_threshold(Some(std::ffi::OsStr::new("131072"))), None);
    }
}
