// The minimal passive poller (see tapanchor.h). Deliberately plain: no verdicts, no
// records, no allocation in the loop, only what any tap must do to see a chain.
#define _GNU_SOURCE
#include "tapanchor.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

enum { DESC_NEXT = 1, DESC_WRITE = 2, DESC_INDIRECT = 4 };

typedef struct {
    const uint8_t *desc;
    const uint8_t *avail;
    const uint8_t *used;
    uint16_t size;
    uint16_t last_avail;
    uint16_t last_used;
    uint16_t index;
    const uint8_t **response;  // per head: the response buffer seen at its posting
} queue_state;

static const vqa_region *g_regions;
static int g_region_count;

static const uint8_t *at(uint64_t gpa, uint64_t len) {
    for (int i = 0; i < g_region_count; i++) {
        const vqa_region *r = &g_regions[i];
        if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len) return r->base + (gpa - r->gpa);
    }
    return NULL;
}

static uint16_t load16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t load32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t load64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint16_t acquire16(const uint8_t *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); }

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Copies the chain at `head`: its first buffer (the request header) into `header`, and
// remembers its first device-writable buffer (the response). Returns the header's length
// copied, or -1 when the chain cannot be read.
static int copy_chain(queue_state *q, uint16_t head, uint8_t *header, int capacity) {
    const uint8_t *table = q->desc;
    uint32_t entries = q->size;
    uint16_t i = head;
    int copied = -1;
    q->response[head] = NULL;
    for (uint32_t steps = 0; steps < entries; steps++) {
        if (i >= entries) return -1;
        const uint8_t *d = table + 16u * i;
        uint64_t addr = load64(d);
        uint32_t len = load32(d + 8);
        uint16_t flags = load16(d + 12), next = load16(d + 14);
        if (flags & DESC_INDIRECT) {
            if (table != q->desc || len < 16 || len % 16) return -1;
            table = at(addr, len);
            if (!table) return -1;
            entries = len / 16;
            i = 0;
            steps = (uint32_t)-1;  // the table's walk starts over: the increment makes it 0
            continue;
        }
        const uint8_t *buffer = at(addr, len);
        if (!buffer) return -1;
        if (copied < 0 && !(flags & DESC_WRITE)) {
            copied = len < (uint32_t)capacity ? (int)len : capacity;
            memcpy(header, buffer, (size_t)copied);
        } else if (flags & DESC_WRITE && !q->response[head]) {
            q->response[head] = buffer;
        }
        if (!(flags & DESC_NEXT)) return copied;
        i = next;
    }
    return -1;
}

int vqa_run(const vqa_region *regions, int region_count, const vqa_queue *queues, int queue_count,
            uint16_t cdb_offset, int pid, vqa_key *keys, size_t capacity, vqa_counts *counts) {
    enum { MAX_QUEUES = 64 };
    static const uint8_t *responses[MAX_QUEUES][32768];
    queue_state state[MAX_QUEUES];
    g_regions = regions;
    g_region_count = region_count;
    if (queue_count > MAX_QUEUES) queue_count = MAX_QUEUES;
    memset(counts, 0, sizeof *counts);
    for (int n = 0; n < queue_count; n++) {
        const vqa_queue *v = &queues[n];
        queue_state *q = &state[n];
        if (v->size == 0 || v->size > 32768) return -1;
        q->desc = at(v->desc, 16u * v->size);
        q->avail = at(v->avail, 4u + 2u * v->size);
        q->used = at(v->used, 4u + 8u * v->size);
        if (!q->desc || !q->avail || !q->used) return -1;
        q->size = v->size;
        q->index = v->index;
        q->response = responses[n];
        q->last_used = acquire16(q->used + 2);
        q->last_avail = acquire16(q->avail + 2);
    }
    counts->attach_ns = realtime_ns();

    uint8_t header[64];
    uint8_t response[32];
    size_t written = 0;
    uint64_t checked = realtime_ns(), previous = checked;
    for (;;) {
        for (int n = 0; n < queue_count; n++) {
            queue_state *q = &state[n];
            uint16_t used = acquire16(q->used + 2);
            uint16_t avail = acquire16(q->avail + 2);
            uint16_t mask = q->size - 1;
            uint16_t returned = (uint16_t)(used - q->last_used);
            if (returned > q->size) q->last_used = (uint16_t)(used - q->size);
            for (; q->last_used != used; q->last_used++) {
                const uint8_t *e = q->used + 4 + 8u * (q->last_used & mask);
                uint32_t id = load32(e);
                counts->completions++;
                if (id < q->size && q->response[id]) memcpy(response, q->response[id], sizeof response);
            }
            uint16_t posted = (uint16_t)(avail - q->last_avail);
            counts->postings += posted;
            if (posted > q->size) {
                counts->lapped += posted - q->size;
                q->last_avail = (uint16_t)(avail - q->size);
            }
            for (; q->last_avail != avail; q->last_avail++) {
                uint16_t head = load16(q->avail + 4 + 2u * (q->last_avail & mask));
                int len = head < q->size ? copy_chain(q, head, header, sizeof header) : -1;
                if (len < (int)cdb_offset + 16 || written == capacity) {
                    counts->unreadable += len < (int)cdb_offset + 16;
                    continue;
                }
                const uint8_t *cdb = header + cdb_offset;
                vqa_key *k = &keys[written++];
                k->queue = q->index;
                k->tag = load64(header + 8);
                k->opcode = cdb[0];
                switch (cdb[0]) {
                case 0x28: case 0x2a: k->lba = be(cdb + 2, 4); break;
                case 0x88: case 0x8a: k->lba = be(cdb + 2, 8); break;
                default: k->lba = UINT64_MAX;
                }
                counts->copied++;
            }
        }
        counts->polls++;
        // The poll itself reads the clock, as every tap timestamps its records.
        uint64_t now = realtime_ns(), gap = now - previous;
        previous = now;
        if (gap > 20000u) {
            counts->gaps_over_20us++;
            counts->gaps_over_100us += gap > 100000u;
            counts->gaps_over_1ms += gap > 1000000u;
            if (gap > counts->longest_gap_ns) counts->longest_gap_ns = gap;
        }
        if (now - checked > 10000000u) {
            checked = now;
            if (kill(pid, 0) != 0 && errno == ESRCH) break;
            if (written == capacity) break;
        }
    }
    return 0;
}
