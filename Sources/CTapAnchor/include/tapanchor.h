// The anchor of the tap's completeness bar (issue 4, benchmarks/tap): the minimal passive
// poller of virtio-facts.md ("The ceiling of a passive poller on these machines"), in C,
// run against the same simulator, on the same core, in the same benchmark run as vqtap.
// It polls used.idx then avail.idx, copies each new chain's request header once and
// reads each completion's response, and decides nothing: what its copies hold is compared
// with the simulator's ground truth afterwards. What it copies right is what a passive
// poller could have had on this machine at that moment, whatever rules it used.
#ifndef VQTAP_TAPANCHOR_H
#define VQTAP_TAPANCHOR_H

#include <stddef.h>
#include <stdint.h>

/// A mapped guest RAM region.
typedef struct {
    const uint8_t *base;
    uint64_t gpa;
    uint64_t size;
} vqa_region;

/// A split virtqueue: guest-physical addresses of its three parts.
typedef struct {
    uint16_t index;
    uint16_t size;
    uint64_t desc;
    uint64_t avail;
    uint64_t used;
} vqa_queue;

/// What one copied request header said: the queue, the tag, the CDB's opcode and, for
/// READ/WRITE(10) and (16), the LBA (else UINT64_MAX).
typedef struct {
    uint64_t tag;
    uint64_t lba;
    uint16_t queue;
    uint8_t opcode;
} vqa_key;

typedef struct {
    uint64_t postings;      // avail entries that went by
    uint64_t copied;        // request headers copied (keys written)
    uint64_t lapped;        // avail entries overwritten before the poller looked
    uint64_t unreadable;    // chains with a head, address or length outside the rings or RAM
    uint64_t completions;   // used entries read
    uint64_t polls;
    uint64_t attach_ns;     // CLOCK_REALTIME when the first indices were read
    uint64_t gaps_over_20us;   // polls that began more than 20 us after the one before
    uint64_t gaps_over_100us;
    uint64_t gaps_over_1ms;
    uint64_t longest_gap_ns;
} vqa_counts;

/// Polls the queues until process `pid` exits (or `keys` is full), writing a key per
/// copied request header. Returns 0, or -1 when a queue's rings are not in the regions.
int vqa_run(const vqa_region *regions, int region_count, const vqa_queue *queues, int queue_count,
            uint16_t cdb_offset, int pid, vqa_key *keys, size_t capacity, vqa_counts *counts);

#endif
