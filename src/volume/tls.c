/*
 * tls.c - TLS for the links between sites (tls.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "common/util.h"
#include "volume/conn.h"
#include "volume/tls.h"

HF_PRINTF(3, 4)
static int fail(char *err, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return -1;
}

/* OpenSSL's first queued reason, or what; the queue is emptied. */
static const char *ssl_why(const char *what, char *buf, size_t n)
{
	unsigned long e = ERR_get_error();

	if (!e)
		return what;
	ERR_error_string_n(e, buf, n);
	ERR_clear_error();
	return buf;
}

SSL_CTX *hf_vtls_ctx(bool server, const char *ca, const char *cert,
		     const char *key, char *err, size_t n)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method()
					  : TLS_client_method());
	char why[256];

	if (!ctx) {
		fail(err, n, "cannot make a TLS context: %s",
		     ssl_why("no memory", why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		fail(err, n, "certificate %s: %s", cert,
		     ssl_why("unreadable", why, sizeof(why)));
		goto bad;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		fail(err, n, "key %s: unreadable, or not the key of %s", key,
		     cert);
		goto bad;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fail(err, n, "CA %s: %s", ca,
		     ssl_why("unreadable", why, sizeof(why)));
		goto bad;
	}
	SSL_CTX_set_verify(ctx,
			   SSL_VERIFY_PEER |
				   (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT
					   : 0),
			   NULL);
	return ctx;
bad:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * The TLS session of one connection as a layer of its descriptor
 * (conn.h): the socket is non-blocking, and the thread that sends or
 * receives a frame runs OpenSSL itself. One lock keeps OpenSSL's calls
 * on the session one at a time; a thread waits for the socket (poll)
 * without it, so a reader waiting for an answer never holds a writer up.
 */
struct tls_layer {
	struct hf_volc_layer l;
	SSL *ssl;
	pthread_mutex_t mu;
};

/*
 * What a failed call on the session (k its result, saved the errno it
 * left) wants: POLLIN, POLLOUT, or 0 when the stream ended (*err then 0
 * at a clean end, else -errno).
 */
static short tls_want(SSL *ssl, int k, int saved, int *err)
{
	int e = SSL_get_error(ssl, k);

	if (e == SSL_ERROR_WANT_READ)
		return POLLIN;
	if (e == SSL_ERROR_WANT_WRITE)
		return POLLOUT;
	if (e == SSL_ERROR_ZERO_RETURN)
		*err = 0;
	else if (e == SSL_ERROR_SYSCALL && saved && saved != EAGAIN)
		*err = -saved;
	else
		*err = -ECONNRESET;
	ERR_clear_error();
	return 0;
}

/* Waits for ev on fd: 0, -ETIMEDOUT, or -errno. */
static int tls_wait(int fd, short ev, int timeout_ms)
{
	struct pollfd pf = {fd, ev, 0};
	int n;

	while ((n = poll(&pf, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static ssize_t tls_read(struct hf_volc_layer *l, int fd, void *buf,
			size_t n, int timeout_ms)
{
	struct tls_layer *t = (struct tls_layer *)l;
	int cap = n > INT32_MAX ? INT32_MAX : (int)n;

	for (;;) {
		int k, err = 0, rc;
		short ev;

		pthread_mutex_lock(&t->mu);
		errno = 0;
		k = SSL_read(t->ssl, buf, cap);
		ev = k > 0 ? 0 : tls_want(t->ssl, k, errno, &err);
		pthread_mutex_unlock(&t->mu);
		if (k > 0)
			return k;
		if (!ev)
			return err;
		if ((rc = tls_wait(fd, ev, timeout_ms)))
			return rc;
	}
}

static int tls_write(struct hf_volc_layer *l, int fd, const void *buf,
		     size_t n)
{
	struct tls_layer *t = (struct tls_layer *)l;
	const uint8_t *p = buf;

	while (n) {
		int chunk = n > (1u << 30) ? 1 << 30 : (int)n, k, err = 0, rc;
		short ev;

		pthread_mutex_lock(&t->mu);
		errno = 0;
		k = SSL_write(t->ssl, p, chunk);
		ev = k > 0 ? 0 : tls_want(t->ssl, k, errno, &err);
		pthread_mutex_unlock(&t->mu);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (!ev)
			return err ? err : -ECONNRESET;
		if ((rc = tls_wait(fd, ev, -1)))
			return rc;
	}
	return 0;
}

static void tls_end(struct hf_volc_layer *l, int fd)
{
	struct tls_layer *t = (struct tls_layer *)l;

	(void)fd;
	/* A close_notify if the socket takes it now; no waiting for it. */
	SSL_shutdown(t->ssl);
	ERR_clear_error();
	SSL_free(t->ssl);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void set_timeout(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int hf_vtls_wrap(SSL_CTX *ctx, bool server, int fd, int timeout_ms,
		 char *peer, size_t peer_n, char *err, size_t n)
{
	SSL *ssl = SSL_new(ctx);
	struct tls_layer *t;
	int rc;
	char why[256];
	X509 *x;

	if (!ssl) {
		close(fd);
		return fail(err, n, "no memory for a TLS session");
	}
	set_timeout(fd, timeout_ms);
	SSL_set_fd(ssl, fd);
	rc = server ? SSL_accept(ssl) : SSL_connect(ssl);
	if (rc != 1) {
		long v = SSL_get_verify_result(ssl);

		if (v != X509_V_OK)
			fail(err, n, "TLS handshake: the peer's certificate: %s",
			     X509_verify_cert_error_string(v));
		else
			fail(err, n, "TLS handshake: %s",
			     ssl_why(errno == EAGAIN ? "timed out"
						     : "the peer ended it",
				     why, sizeof(why)));
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	x = SSL_get1_peer_certificate(ssl);
	if (!x || SSL_get_verify_result(ssl) != X509_V_OK) {
		fail(err, n, "TLS handshake: the peer showed no certificate "
			     "its CA signed");
		X509_free(x);
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	if (peer && peer_n) {
		peer[0] = 0;
		X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, peer, (int)peer_n);
	}
	X509_free(x);
	if (!server) {
		/*
		 * TLS 1.3 ends the client's handshake before the server has
		 * checked its certificate: a refusal comes as an alert just
		 * after. A short wait for it (tickets come instead when the
		 * server took the certificate) makes it this error, not a
		 * connection that breaks at its first frame.
		 */
		uint8_t c;
		int k, e;

		set_timeout(fd, 300);
		k = SSL_peek(ssl, &c, 1);
		e = k > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, k);
		if (e != SSL_ERROR_NONE && e != SSL_ERROR_WANT_READ &&
		    !(e == SSL_ERROR_SYSCALL &&
		      (errno == EAGAIN || errno == EWOULDBLOCK))) {
			fail(err, n, "TLS handshake: the peer refused it: %s",
			     ssl_why("it closed the connection", why,
				     sizeof(why)));
			SSL_free(ssl);
			close(fd);
			return -1;
		}
		ERR_clear_error();
	}
	set_timeout(fd, 0);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	t = hf_xcalloc(1, sizeof(*t));
	t->l = (struct hf_volc_layer){tls_read, tls_write, tls_end};
	t->ssl = ssl;
	pthread_mutex_init(&t->mu, NULL);
	if (hf_volc_layer_set(fd, &t->l)) {
		tls_end(&t->l, fd);
		close(fd);
		return fail(err, n, "descriptor %d is past the %d a TLS "
				    "connection may use", fd, HF_VOLC_LAYER_FDS);
	}
	return fd;
}
