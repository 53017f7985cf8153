// vqtap's small C target (DESIGN.md rule 11): what Swift cannot do safely on mapped guest
// memory. Guarding reads of a mapping that may shrink under us (the VM exits, the memory
// file is truncated) without a SIGBUS crash, and CPU pinning.
#ifndef VQTAP_VQSYS_H
#define VQTAP_VQSYS_H

#include <stddef.h>
#include <stdint.h>

/// Installs the SIGBUS handler (once; later calls do nothing). Returns 0, or -1 with errno.
int vq_guard_install(void);

/// Registers [base, base+len) as guest memory mapped by us. When a read of it faults
/// (SIGBUS: the file behind it was truncated), the handler maps a zero page over the
/// faulting page, counts the fault and returns, so the read completes with zeros. Faults
/// outside registered ranges keep their default action. Returns a slot id (>= 0) or -1.
int vq_guard_register(const void *base, size_t len);

/// Forgets a registered range (before munmap).
void vq_guard_unregister(int slot);

/// Faults absorbed so far in any registered range. The tap checks it after every poll:
/// a change means the memory went away and what was read since may be zeros.
uint64_t vq_guard_faults(void);

/// Acquire loads of ring indices in mapped memory.
static inline uint16_t vq_load_acquire_u16(const void *p) {
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static inline uint32_t vq_load_acquire_u32(const void *p) {
    return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE);
}

/// Pins the calling thread to one CPU. Returns 0, or an errno value.
/// Removes `cpu` from the calling thread's CPU set, so that threads it creates later leave
/// that CPU to a poller pinned there. Nothing changes when no other CPU would remain.
/// Returns 0 or an errno value.
int vq_leave_cpu(int cpu);

int vq_pin_thread_to_cpu(int cpu);

/// Asks for SIGTERM when the parent process exits (PR_SET_PDEATHSIG); 0 if `parent` is
/// still the parent, ESRCH if it already went away, else the errno of prctl.
int vq_term_with_parent(int parent);

/// Gives the pages glibc's allocator holds free back to the system (malloc_trim), in
/// every arena. Returns 1 if some were.
int vq_return_freed_memory(void);

/// Timer slack of 1 ns for the calling thread (PR_SET_TIMERSLACK): its sleeps end when
/// asked, not up to 50 us later. Returns 0 or an errno value.
int vq_precise_sleeps(void);

/// CLOCK_MONOTONIC and CLOCK_REALTIME in nanoseconds.
uint64_t vq_monotonic_ns(void);
uint64_t vq_realtime_ns(void);

#endif
