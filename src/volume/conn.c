/*
 * conn.c - frames over a stream socket (conn.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/conn.h"

/* Set by the thread that owns the descriptor, read by it alone. */
static struct hf_volc_layer *_Atomic layers[HF_VOLC_LAYER_FDS];

static struct hf_volc_layer *layer_of(int fd)
{
	if (fd < 0 || fd >= HF_VOLC_LAYER_FDS)
		return NULL;
	return atomic_load_explicit(&layers[fd], memory_order_relaxed);
}

int hf_volc_layer_set(int fd, struct hf_volc_layer *l)
{
	if (fd < 0 || fd >= HF_VOLC_LAYER_FDS)
		return -1;
	atomic_store_explicit(&layers[fd], l, memory_order_relaxed);
	return 0;
}

void hf_volc_close(int fd)
{
	struct hf_volc_layer *l = layer_of(fd);

	if (fd < 0)
		return;
	if (l) {
		/* Off the table before the number can be given out again. */
		atomic_store_explicit(&layers[fd], NULL, memory_order_relaxed);
		l->end(l, fd);
	}
	close(fd);
}

/*
 * Small frames go through a layer as one piece (one TLS record, one
 * segment): a 4 KiB write and its header, as a database commits.
 */
#define COALESCE (8 * 1024)

static int layer_send(struct hf_volc_layer *l, int fd, const uint8_t *head,
		      size_t n, const struct hf_volw_frame *f)
{
	uint8_t buf[HF_VOLW_HEAD_MAX + COALESCE];
	int rc;

	if (f->data_len && f->data_len <= COALESCE) {
		memcpy(buf, head, n);
		memcpy(buf + n, f->data, f->data_len);
		return l->write(l, fd, buf, n + f->data_len);
	}
	if ((rc = l->write(l, fd, head, n)))
		return rc;
	return f->data_len ? l->write(l, fd, f->data, f->data_len) : 0;
}

int hf_volc_send(int fd, const struct hf_volw_frame *f)
{
	uint8_t head[HF_VOLW_HEAD_MAX];
	char err[HF_VOL_ERR_MAX];
	struct hf_volc_layer *l = layer_of(fd);
	struct iovec iov[2];
	size_t n;
	int cnt = 1;

	if (hf_volw_encode(f, head, sizeof(head), &n, err)) {
		hf_log("cannot encode a frame: %s", err);
		return -EINVAL;
	}
	if (l)
		return layer_send(l, fd, head, n, f);
	iov[0] = (struct iovec){head, n};
	if (f->data_len)
		iov[cnt++] = (struct iovec){(void *)f->data, f->data_len};
	while (cnt > 0) {
		ssize_t w = writev(fd, iov, cnt);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (cnt > 0 && (size_t)w >= iov[0].iov_len) {
			w -= (ssize_t)iov[0].iov_len;
			iov[0] = iov[1];
			cnt--;
		}
		if (cnt > 0) {
			iov[0].iov_base = (uint8_t *)iov[0].iov_base + w;
			iov[0].iov_len -= (size_t)w;
		}
	}
	return 0;
}

void hf_volc_rx_init(struct hf_volc_rx *rx)
{
	rx->buf = hf_xmalloc(HF_VOLW_FRAME_MAX);
	rx->len = rx->used = 0;
}

void hf_volc_rx_release(struct hf_volc_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
}

int hf_volc_recv(int fd, struct hf_volc_rx *rx, struct hf_volw_frame *f,
		 int timeout_ms, char err[HF_VOL_ERR_MAX])
{
	struct hf_volc_layer *l = layer_of(fd);
	size_t need;
	int rc;

	if (rx->used) {
		memmove(rx->buf, rx->buf + rx->used, rx->len - rx->used);
		rx->len -= rx->used;
		rx->used = 0;
	}
	for (;;) {
		ssize_t r;

		if (rx->len) {
			rc = hf_volw_decode(rx->buf, rx->len, f, &need, err);
			if (rc)
				return rc;
			if (!need) {
				rx->used = f->size;
				return 0;
			}
		}
		if (l) {
			r = l->read(l, fd, rx->buf + rx->len,
				    HF_VOLW_FRAME_MAX - rx->len, timeout_ms);
			if (r == 0)
				return -ECONNRESET;
			if (r < 0)
				return (int)r;
			rx->len += (size_t)r;
			continue;
		}
		if (timeout_ms >= 0) {
			struct pollfd pfd = {fd, POLLIN, 0};
			int n = poll(&pfd, 1, timeout_ms);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			if (n == 0)
				return -ETIMEDOUT;
		}
		/* Read what is there, up to the buffer's end. */
		r = read(fd, rx->buf + rx->len, HF_VOLW_FRAME_MAX - rx->len);
		if (r == 0)
			return -ECONNRESET;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		rx->len += (size_t)r;
	}
}

void hf_volc_error(struct hf_volw_frame *f, uint64_t id, uint64_t epoch,
		   int errnum, const char *text)
{
	size_t n = 0;

	memset(f, 0, sizeof(*f));
	f->type = HF_VOLW_ERROR;
	f->id = id;
	f->epoch = epoch;
	f->u.error.errnum = errnum > 0 && errnum <= 4095 ? (uint32_t)errnum
							  : EIO;
	for (; text[n] && n < HF_VOLW_TEXT_MAX; n++) {
		unsigned char c = (unsigned char)text[n];

		f->u.error.text[n] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
	}
	if (!n)
		f->u.error.text[n++] = '?';
	f->u.error.text[n] = 0;
}
