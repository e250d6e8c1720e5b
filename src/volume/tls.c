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
#include "volume/tls.h"

#define CHUNK (64 * 1024)

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

struct pump {
	SSL *ssl;
	int net, local;
};

/*
 * Carries bytes both ways until either side ends: one thread, both
 * descriptors non-blocking, so a full direction never stops the other.
 */
static void *pump_main(void *arg)
{
	struct pump *p = arg;
	uint8_t *in = hf_xmalloc(CHUNK), *out = hf_xmalloc(CHUNK);
	size_t in_len = 0, in_off = 0, out_len = 0, out_off = 0;

	for (;;) {
		short nev = 0, lev = 0;
		bool moved = false;
		int k, e;

		/* The network to the local end. */
		if (!in_len) {
			k = SSL_read(p->ssl, in, CHUNK);
			if (k > 0) {
				in_len = (size_t)k;
				in_off = 0;
				moved = true;
			} else if ((e = SSL_get_error(p->ssl, k)) ==
				   SSL_ERROR_WANT_READ) {
				nev |= POLLIN;
			} else if (e == SSL_ERROR_WANT_WRITE) {
				nev |= POLLOUT;
			} else {
				break;
			}
		}
		if (in_len) {
			ssize_t w = write(p->local, in + in_off,
					  in_len - in_off);

			if (w > 0) {
				in_off += (size_t)w;
				if (in_off == in_len)
					in_len = 0;
				moved = true;
			} else if (w < 0 &&
				   (errno == EAGAIN || errno == EINTR)) {
				lev |= POLLOUT;
			} else {
				break;
			}
		}
		/* The local end to the network. */
		if (!out_len) {
			ssize_t r = read(p->local, out, CHUNK);

			if (r > 0) {
				out_len = (size_t)r;
				out_off = 0;
				moved = true;
			} else if (r < 0 &&
				   (errno == EAGAIN || errno == EINTR)) {
				lev |= POLLIN;
			} else {
				break;
			}
		}
		if (out_len) {
			k = SSL_write(p->ssl, out + out_off,
				      (int)(out_len - out_off));
			if (k > 0) {
				out_off += (size_t)k;
				if (out_off == out_len)
					out_len = 0;
				moved = true;
			} else if ((e = SSL_get_error(p->ssl, k)) ==
				   SSL_ERROR_WANT_READ) {
				nev |= POLLIN;
			} else if (e == SSL_ERROR_WANT_WRITE) {
				nev |= POLLOUT;
			} else {
				break;
			}
		}
		if (moved)
			continue;
		{
			struct pollfd pf[2] = {{p->net, nev, 0},
					       {p->local, lev, 0}};

			if (poll(pf, 2, -1) < 0 && errno != EINTR)
				break;
			if ((pf[1].revents & (POLLHUP | POLLERR)) &&
			    !(pf[1].revents & POLLIN))
				break;
		}
	}
	ERR_clear_error();
	SSL_shutdown(p->ssl);
	SSL_free(p->ssl);
	close(p->net);
	close(p->local);
	free(in);
	free(out);
	free(p);
	return NULL;
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
	struct pump *p;
	pthread_attr_t at;
	pthread_t t;
	int sv[2], rc;
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
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		fail(err, n, "socketpair: %s", strerror(errno));
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
	p = hf_xcalloc(1, sizeof(*p));
	*p = (struct pump){ssl, fd, sv[1]};
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &at, pump_main, p);
	pthread_attr_destroy(&at);
	if (rc) {
		free(p);
		SSL_free(ssl);
		close(fd);
		close(sv[0]);
		close(sv[1]);
		return fail(err, n, "cannot start the TLS thread");
	}
	return sv[0];
}
