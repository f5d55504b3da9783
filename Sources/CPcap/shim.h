#ifndef MIJIAN_CPCAP_SHIM_H
#define MIJIAN_CPCAP_SHIM_H
#include <pcap/pcap.h>
#include <stdio.h>

/* Compiles `expression` for this handle into `program` (freed later with pcap_freecode). 0 or -1. */
static inline int mijian_pcap_compile(pcap_t *handle, const char *expression, struct bpf_program *program) {
    return pcap_compile(handle, program, expression, 1, PCAP_NETMASK_UNKNOWN);
}

/* The read position in an offline capture, or -1 for a live handle. */
static inline long mijian_pcap_file_offset(pcap_t *handle) {
    FILE *file = pcap_file(handle);
    return file == NULL ? -1 : ftell(file);
}

/* PCAP_ERRBUF_SIZE as a plain integer for Swift. */
static inline int mijian_pcap_errbuf_size(void) { return PCAP_ERRBUF_SIZE; }
#endif
