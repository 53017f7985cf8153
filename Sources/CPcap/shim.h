#ifndef VQTAP_CPCAP_SHIM_H
#define VQTAP_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
