/* The anchor of the writing bar: libpcap's pcap_dump writing N packets of the two record
 * sizes vqtap writes (alternating), nanosecond timestamps. Prints packets per second. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s FILE N SIZE_A SIZE_B\n", argv[0]); return 1; }
    long n = atol(argv[2]);
    size_t sizes[2] = { (size_t)atol(argv[3]), (size_t)atol(argv[4]) };
    unsigned char *data = calloc(1, 65536);
    pcap_t *p = pcap_open_dead_with_tstamp_precision(147, 262144, PCAP_TSTAMP_PRECISION_NANO);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pcap_dumper_t *d = pcap_dump_open(p, argv[1]);
    if (!d) { fprintf(stderr, "%s\n", pcap_geterr(p)); return 1; }
    struct pcap_pkthdr h;
    for (long i = 0; i < n; i++) {
        h.ts.tv_sec = 1764000000 + i / 500000;
        h.ts.tv_usec = (i % 500000) * 2000;  /* nanoseconds with PCAP_TSTAMP_PRECISION_NANO */
        h.caplen = h.len = sizes[i & 1];
        data[0] = (unsigned char)i;
        pcap_dump((u_char *)d, &h, data);
    }
    pcap_dump_close(d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ld\n", (long)(n / s));
    return 0;
}
