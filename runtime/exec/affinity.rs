//! Pinning worker threads to CPU cores (Linux `sched_setaffinity`).
//!
//! Worker `i` is pinned to the `i`-th core the process may use, and only
//! when the runtime has no more threads than the process has cores; an
//! oversubscribed runtime is left to the OS scheduler. Elsewhere than Linux
//! pinning is a no-op.

/// The cores this process may run on, in increasing order.
#[cfg(target_os = "linux")]
pub(crate) fn allowed_cores() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE and `set` is initialised.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `core`; returns whether it worked.
#[cfg(target_os = "linux")]
pub(crate) fn pin_current(core: usize) -> bool {
    // SAFETY: as above, all-zero is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` comes from `allowed_cores`, so it is below CPU_SETSIZE.
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 is the calling thread.
    unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0 }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn allowed_cores() -> Vec<usize> {
    Vec::new()
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn pin_current(_core: usize) -> bool {
    false
}

#[cfg(all(test, target_os = "linux", not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn the_process_may_use_some_core_and_pinning_to_it_works() {
        let cores = allowed_cores();
        assert!(!cores.is_empty());
        let first = cores[0];
        let pinned = std::thread::spawn(move || pin_current(first) && allowed_cores() == vec![first]);
        assert!(pinned.join().unwrap());
    }
}
