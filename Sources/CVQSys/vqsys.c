#define _GNU_SOURCE
#include "vqsys.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define VQ_GUARD_SLOTS 64

struct guard_range {
    uintptr_t base;
    size_t len;
};

static struct guard_range ranges[VQ_GUARD_SLOTS];
static uint64_t faults;
static int installed;
static struct sigaction previous;

static int in_registered_range(uintptr_t addr) {
    for (int i = 0; i < VQ_GUARD_SLOTS; i++) {
        uintptr_t base = __atomic_load_n(&ranges[i].base, __ATOMIC_ACQUIRE);
        size_t len = __atomic_load_n(&ranges[i].len, __ATOMIC_ACQUIRE);
        if (len != 0 && addr >= base && addr - base < len) return 1;
    }
    return 0;
}

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (in_registered_range(addr)) {
        long page = sysconf(_SC_PAGESIZE);
        uintptr_t page_start = addr & ~((uintptr_t)page - 1);
        // mmap is a plain system call: safe here. The zero page replaces the vanished file
        // page; the faulting read is restarted and sees zeros.
        void *p = mmap((void *)page_start, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p != MAP_FAILED) {
            __atomic_fetch_add(&faults, 1, __ATOMIC_RELEASE);
            return;
        }
    }
    // Not ours, or we could not repair it: behave as if we were never installed.
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) { previous.sa_sigaction(sig, info, context); return; }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int vq_guard_install(void) {
    int expected = 0;
    if (!__atomic_compare_exchange_n(&installed, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) != 0) {
        __atomic_store_n(&installed, 0, __ATOMIC_RELEASE);
        return -1;
    }
    return 0;
}

int vq_guard_register(const void *base, size_t len) {
    for (int i = 0; i < VQ_GUARD_SLOTS; i++) {
        size_t zero = 0;
        // Claim a free slot by its length; publish the base before the length.
        if (__atomic_load_n(&ranges[i].len, __ATOMIC_ACQUIRE) == 0) {
            __atomic_store_n(&ranges[i].base, (uintptr_t)base, __ATOMIC_RELEASE);
            if (__atomic_compare_exchange_n(&ranges[i].len, &zero, len, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return i;
        }
    }
    errno = ENOSPC;
    return -1;
}

void vq_guard_unregister(int slot) {
    if (slot < 0 || slot >= VQ_GUARD_SLOTS) return;
    __atomic_store_n(&ranges[slot].len, 0, __ATOMIC_RELEASE);
}

uint64_t vq_guard_faults(void) { return __atomic_load_n(&faults, __ATOMIC_ACQUIRE); }

int vq_pin_thread_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int vq_leave_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int e = pthread_getaffinity_np(pthread_self(), sizeof set, &set);
    if (e != 0) return e;
    if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set) || CPU_COUNT(&set) < 2) return 0;
    CPU_CLR(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int vq_term_with_parent(int parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return errno;
    return getppid() == parent ? 0 : ESRCH;
}

int vq_return_freed_memory(void) {
    return malloc_trim(0);
}

int vq_precise_sleeps(void) {
    return prctl(PR_SET_TIMERSLACK, 1UL) == 0 ? 0 : errno;
}

uint64_t vq_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t vq_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
