/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of the volume program's
 * frames, replica metadata and bitmap pages (docs/design/volumes.md §5,
 * §6). None of the libraries holdfast links offers it (OpenSSL has no
 * CRC; zlib's crc32 is the other polynomial), hence this one.
 *
 * Pure: no state, no allocation, safe from any thread. On x86-64 CPUs
 * with SSE4.2 the CRC32 instruction does the work (a 1 MiB write frame
 * is checked in a fraction of the time a table would take); elsewhere a
 * byte-wise table. Both give the same result; hf_crc32c_sw is the table
 * alone, exported so a test can hold the two against each other.
 */
#ifndef HF_COMMON_CRC32C_H
#define HF_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * The CRC-32C of len bytes at buf, continuing from crc: pass 0 to start,
 * and a previous result to go on, so hf_crc32c(hf_crc32c(0, a, n), b, m)
 * is the CRC of a's n bytes followed by b's m (the conditioning, ~ before
 * and after, is done inside, as zlib's crc32 does). buf may be NULL when
 * len is 0. hf_crc32c(0, "123456789", 9) == 0xe3069283.
 */
uint32_t hf_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same, always by the table (for tests). */
uint32_t hf_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
