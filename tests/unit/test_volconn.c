/*
 * test_volconn.c - frames over a descriptor (volume/conn.h), plain and
 * through a layer: a layer that scrambles every byte stands in for TLS
 * (tls.c), so what crosses the socket is checked to have gone through
 * it, in how many pieces, and that its end comes with hf_volc_close.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/err.h"
#include "volume/conn.h"
#include "volume/wire.h"

#define KEY 0x5a

struct fake {
	struct hf_volc_layer l;
	int writes, reads, ends;
	size_t written;
};

static ssize_t fake_read(struct hf_volc_layer *l, int fd, void *buf,
			 size_t n, int timeout_ms)
{
	struct fake *f = (struct fake *)l;
	struct pollfd pf = {fd, POLLIN, 0};
	ssize_t r;

	if (poll(&pf, 1, timeout_ms) == 0)
		return -ETIMEDOUT;
	r = read(fd, buf, n);
	if (r < 0)
		return -errno;
	for (ssize_t i = 0; i < r; i++)
		((uint8_t *)buf)[i] ^= KEY;
	f->reads++;
	return r;
}

static int fake_write(struct hf_volc_layer *l, int fd, const void *buf,
		      size_t n)
{
	struct fake *f = (struct fake *)l;
	uint8_t *tmp = malloc(n);
	size_t done = 0;

	for (size_t i = 0; i < n; i++)
		tmp[i] = ((const uint8_t *)buf)[i] ^ KEY;
	while (done < n) {
		ssize_t w = write(fd, tmp + done, n - done);

		if (w < 0) {
			free(tmp);
			return -errno;
		}
		done += (size_t)w;
	}
	free(tmp);
	f->writes++;
	f->written += n;
	return 0;
}

static void fake_end(struct hf_volc_layer *l, int fd)
{
	((struct fake *)l)->ends++;
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));

	f->l = (struct hf_volc_layer){fake_read, fake_write, fake_end};
	return f;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	/* Room for a whole 1 MiB frame written before it is read. */
	for (int i = 0; i < 2; i++) {
		int sz = 4 << 20;

		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
}

static void write_frame(struct hf_volw_frame *f, uint8_t *data, size_t len)
{
	memset(f, 0, sizeof(*f));
	f->type = HF_VOLW_WRITE;
	f->id = 7;
	f->epoch = 3;
	f->off = 4096;
	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 13 + 1);
	f->data = data;
	f->data_len = (uint32_t)len;
}

/* Reads every byte there is on fd, unscrambled. */
static size_t drain(int fd, uint8_t *buf, size_t cap)
{
	size_t n = 0;
	struct pollfd pf = {fd, POLLIN, 0};

	while (n < cap && poll(&pf, 1, 100) > 0) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r <= 0)
			break;
		n += (size_t)r;
	}
	for (size_t i = 0; i < n; i++)
		buf[i] ^= KEY;
	return n;
}

/* A frame sent through the layer: scrambled on the socket, in one piece
 * when small, header and data apart when large; decoded back whole. */
static void test_send_through(void **state)
{
	static uint8_t data[HF_VOL_DATA_MAX], got[HF_VOLW_FRAME_MAX];
	size_t sizes[] = {4096, 8192, 8192 + 4096, HF_VOL_DATA_MAX};
	int sv[2];

	(void)state;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct fake *l = fake_new();
		struct hf_volw_frame f, back;
		char err[HF_VOL_ERR_MAX];
		size_t n, need;

		pair(sv);
		assert_int_equal(hf_volc_layer_set(sv[0], &l->l), 0);
		write_frame(&f, data, sizes[k]);
		assert_int_equal(hf_volc_send(sv[0], &f), 0);
		assert_int_equal(l->writes, sizes[k] <= 8192 ? 1 : 2);
		n = drain(sv[1], got, sizeof(got));
		assert_int_equal(n, l->written);
		assert_int_equal(hf_volw_decode(got, n, &back, &need, err), 0);
		assert_int_equal(need, 0);
		assert_int_equal(back.type, HF_VOLW_WRITE);
		assert_int_equal(back.off, 4096);
		assert_int_equal(back.data_len, sizes[k]);
		assert_memory_equal(back.data, data, sizes[k]);
		hf_volc_close(sv[0]);
		assert_int_equal(l->ends, 1);
		free(l);
		close(sv[1]);
	}
}

/* Frames received through the layer, two back to back in one read. */
static void test_recv_through(void **state)
{
	static uint8_t data[4096], wire[2 * (HF_VOLW_HEAD_MAX + 4096)];
	struct fake *l = fake_new();
	struct hf_volc_rx rx;
	struct hf_volw_frame f;
	char err[HF_VOL_ERR_MAX];
	size_t n1, n2;
	int sv[2];

	(void)state;
	pair(sv);
	write_frame(&f, data, sizeof(data));
	assert_int_equal(hf_volw_encode(&f, wire, HF_VOLW_HEAD_MAX, &n1, err), 0);
	memcpy(wire + n1, data, sizeof(data));
	n1 += sizeof(data);
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_PING;
	f.id = 8;
	assert_int_equal(hf_volw_encode(&f, wire + n1, HF_VOLW_HEAD_MAX, &n2, err), 0);
	for (size_t i = 0; i < n1 + n2; i++)
		wire[i] ^= KEY;
	assert_int_equal(write(sv[1], wire, n1 + n2), (ssize_t)(n1 + n2));
	assert_int_equal(hf_volc_layer_set(sv[0], &l->l), 0);
	hf_volc_rx_init(&rx);
	assert_int_equal(hf_volc_recv(sv[0], &rx, &f, 1000, err), 0);
	assert_int_equal(f.type, HF_VOLW_WRITE);
	assert_memory_equal(f.data, data, sizeof(data));
	assert_int_equal(hf_volc_recv(sv[0], &rx, &f, 1000, err), 0);
	assert_int_equal(f.type, HF_VOLW_PING);
	assert_int_equal(f.id, 8);
	/* Nothing more: the layer's wait times out. */
	assert_int_equal(hf_volc_recv(sv[0], &rx, &f, 50, err), -ETIMEDOUT);
	/* The peer gone: the stream's end. */
	close(sv[1]);
	assert_int_equal(hf_volc_recv(sv[0], &rx, &f, 1000, err), -ECONNRESET);
	hf_volc_rx_release(&rx);
	hf_volc_close(sv[0]);
	assert_int_equal(l->ends, 1);
	free(l);
}

/* A closed descriptor's number, given out again, carries no layer. */
static void test_close_forgets(void **state)
{
	struct fake *l = fake_new();
	struct hf_volw_frame f;
	char err[HF_VOL_ERR_MAX];
	uint8_t buf[256];
	size_t need;
	ssize_t n;
	int sv[2], again[2];

	(void)state;
	pair(sv);
	assert_int_equal(hf_volc_layer_set(sv[0], &l->l), 0);
	hf_volc_close(sv[0]);
	assert_int_equal(l->ends, 1);
	close(sv[1]);
	pair(again);
	assert_int_equal(again[0], sv[0]);
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_PING;
	f.id = 1;
	assert_int_equal(hf_volc_send(again[0], &f), 0);
	assert_int_equal(l->writes, 0);
	n = read(again[1], buf, sizeof(buf));
	assert_true(n > 0);
	/* Plain bytes: they decode as they are. */
	assert_int_equal(hf_volw_decode(buf, (size_t)n, &f, &need, err), 0);
	assert_int_equal(f.type, HF_VOLW_PING);
	hf_volc_close(again[0]);
	assert_int_equal(l->ends, 1);
	close(again[1]);
	free(l);
}

static void test_range(void **state)
{
	struct fake *l = fake_new();

	(void)state;
	assert_int_equal(hf_volc_layer_set(-1, &l->l), -1);
	assert_int_equal(hf_volc_layer_set(HF_VOLC_LAYER_FDS, &l->l), -1);
	hf_volc_close(-1);
	assert_int_equal(l->ends, 0);
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_send_through),
	    cmocka_unit_test(test_recv_through),
	    cmocka_unit_test(test_close_forgets),
	    cmocka_unit_test(test_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
