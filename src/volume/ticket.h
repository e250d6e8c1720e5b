/*
 * ticket.h - the attach ticket of a volume (docs/design/volumes.md §6.2):
 * what proves to a replica's node server that the connecting node is the
 * one the server attached the volume to, at that epoch.
 *
 *   T = HMAC-SHA256(K_vol, "attach" 0x00 <volume id> 0x00
 *                          <epoch, decimal ASCII> 0x00 <node id>)
 *
 * K_vol is the volume's key (32 bytes, 64 hex digits where it travels as
 * text), known to the server and to the nodes holding replicas. The ids
 * are volume.h's identifiers (printable, never NUL), so the NUL-separated
 * message has exactly one reading. The server computes T for the node it
 * attaches; a replica's node server recomputes it from K_vol and the
 * HELLO's volume id, epoch and node id, and compares in constant time.
 */
#ifndef HF_VOLUME_TICKET_H
#define HF_VOLUME_TICKET_H

#include <stddef.h>
#include <stdint.h>

#define HF_VOL_KEY_LEN 32
#define HF_VOL_TICKET_LEN 32

/* Computes T into out. */
void hf_vol_ticket(const uint8_t key[HF_VOL_KEY_LEN], const char *volume_id,
		   uint64_t epoch, const char *node_id,
		   uint8_t out[HF_VOL_TICKET_LEN]);

/* True when a and b (HF_VOL_TICKET_LEN bytes) are equal, in constant time. */
int hf_vol_ticket_equal(const uint8_t *a, const uint8_t *b);

/*
 * Decodes exactly 2 * n hex digits (either case) of s into out. Returns 0,
 * or HF_EINVAL for another length or a character that is no hex digit.
 */
int hf_vol_hex_decode(const char *s, uint8_t *out, size_t n);

/*
 * out = SHA-256 of p[0..n): the digest a DR stream's copy compares a
 * unit of the volume by on both sites (wire.h's SUMS).
 */
void hf_vol_sum(const void *p, size_t n, uint8_t out[32]);

#endif
