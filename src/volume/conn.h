/*
 * conn.h - frames over a stream socket, for both ends of the volume
 * protocol (serve.c and the attach process's remote.c): whole-frame sends
 * and a receive buffer that yields one decoded frame at a time (wire.h).
 *
 * Plain TCP for now. TODO(issue 14, TLS-PSK): docs/design/volumes.md §6.2
 * wraps this in TLS 1.3 with the ticket as external PSK; this file is
 * where that goes (docs/design/volumes.md §12 keeps the note).
 */
#ifndef HF_VOLUME_CONN_H
#define HF_VOLUME_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "volume/wire.h"

/*
 * Encodes f and writes it, header then bulk, whole (retrying short
 * writes and EINTR). Returns 0, -errno of the failed write, or -EINVAL
 * when f does not encode (a bug: the reason is logged).
 */
int hf_volc_send(int fd, const struct hf_volw_frame *f);

/* One connection's receive side: a buffer of HF_VOLW_FRAME_MAX bytes. */
struct hf_volc_rx {
	uint8_t *buf;
	size_t len;  /* bytes held */
	size_t used; /* of them, the frame last returned */
};

void hf_volc_rx_init(struct hf_volc_rx *rx);
void hf_volc_rx_release(struct hf_volc_rx *rx);

/*
 * Reads from fd until a whole frame is in, and decodes it into *f (its
 * bulk points into rx's buffer until the next call). With timeout_ms >= 0,
 * waits at most that long for each read's bytes. Returns 0; -ECONNRESET
 * when the peer closed the stream; -ETIMEDOUT; -errno of a failed read;
 * or HF_EPARSE/HF_ETOOBIG with the decoder's sentence in err (the stream
 * is then unusable).
 */
int hf_volc_recv(int fd, struct hf_volc_rx *rx, struct hf_volw_frame *f,
		 int timeout_ms, char err[HF_VOL_ERR_MAX]);

/*
 * An ERROR frame answering request id: errnum and a printable text
 * (truncated to HF_VOLW_TEXT_MAX, characters outside ASCII replaced).
 */
void hf_volc_error(struct hf_volw_frame *f, uint64_t id, uint64_t epoch,
		   int errnum, const char *text);

#endif
