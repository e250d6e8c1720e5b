/*
 * conn.h - frames over a stream socket, for both ends of the volume
 * protocol (serve.c and the attach process's remote.c): whole-frame sends
 * and a receive buffer that yields one decoded frame at a time (wire.h).
 *
 * Plain TCP within a site (TODO(issue 14, TLS-PSK): docs/design/volumes.md
 * §6.2 wraps it in TLS 1.3 with the ticket as external PSK; §12 keeps the
 * note). A descriptor may carry a layer (struct hf_volc_layer): the links
 * between sites are TLS sessions on the socket itself (tls.h), so a frame
 * costs no thread hand-over on its way.
 */
#ifndef HF_VOLUME_CONN_H
#define HF_VOLUME_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "volume/wire.h"

/*
 * Encodes f and writes it, header then bulk, whole (retrying short
 * writes and EINTR). Returns 0, -errno of the failed write, or -EINVAL
 * when f does not encode (a bug: the reason is logged).
 */
int hf_volc_send(int fd, const struct hf_volw_frame *f);

/*
 * What carries a descriptor's bytes when they are not written as they
 * are (a TLS session, tls.c). Its functions may be called from several
 * threads at once (one reading, one writing): the layer serializes what
 * must be.
 */
struct hf_volc_layer {
	/*
	 * Up to n bytes into buf: their count, 0 at the stream's end,
	 * -ETIMEDOUT when none came within timeout_ms (< 0: no limit), or
	 * -errno (-ECONNRESET when the stream broke).
	 */
	ssize_t (*read)(struct hf_volc_layer *l, int fd, void *buf, size_t n,
			int timeout_ms);
	/* All n bytes: 0, or -errno. */
	int (*write)(struct hf_volc_layer *l, int fd, const void *buf,
		     size_t n);
	/* Ends the session and frees l (fd is closed after). */
	void (*end)(struct hf_volc_layer *l, int fd);
};

/* Descriptors below this may carry a layer. */
#define HF_VOLC_LAYER_FDS 32768

/*
 * Puts layer l on fd (which then belongs to it until hf_volc_close):
 * every hf_volc_send and hf_volc_recv on fd goes through it. Returns 0,
 * or -1 when fd is out of range (l untouched).
 */
int hf_volc_layer_set(int fd, struct hf_volc_layer *l);

/* Closes fd, ending its layer first when it has one. */
void hf_volc_close(int fd);

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
