/* The anchor of the reading bar: libpcap merely reading a capture (pcap_next_ex loop,
 * nanosecond precision). Prints packets per second. */
#include <pcap/pcap.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s FILE\n", argv[0]); return 1; }
    char err[PCAP_ERRBUF_SIZE];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pcap_t *p = pcap_open_offline_with_tstamp_precision(argv[1], PCAP_TSTAMP_PRECISION_NANO, err);
    if (!p) { fprintf(stderr, "%s\n", err); return 1; }
    struct pcap_pkthdr *h;
    const u_char *data;
    long n = 0, bytes = 0;
    while (pcap_next_ex(p, &h, &data) == 1) { n++; bytes += h->caplen + data[0]; }
    pcap_close(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%ld %ld\n", (long)(n / s), bytes);
    return 0;
}
