#ifndef MIJIAN_CPCAP_SHIM_H
#define MIJIAN_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
