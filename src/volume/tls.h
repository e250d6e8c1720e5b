/*
 * tls.h - TLS with mutual authentication for the volume links that cross
 * sites (a disaster-recovery stream, ship.h, to a standby's replica
 * server, serve.h): OpenSSL, TLS 1.2 or later, each side's certificate
 * checked against the CA it was given (the other site's), the client's
 * required.
 *
 * The frames (wire.h) stay on file descriptors: hf_vtls_wrap does the
 * handshake on a connected socket, then puts the session on it as its
 * layer (conn.h), so hf_volc_send and hf_volc_recv on that socket go
 * through TLS in the calling thread. hf_volc_close ends it.
 */
#ifndef HF_VOLUME_TLS_H
#define HF_VOLUME_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/*
 * A context from PEM files: cert and key are this side's, ca the CA its
 * peer's certificate must chain to. A server context requires a client
 * certificate. Returns NULL with a sentence in err (n bytes), never
 * quoting a key.
 */
SSL_CTX *hf_vtls_ctx(bool server, const char *ca, const char *cert,
		     const char *key, char *err, size_t n);

/*
 * Handshakes over the connected, blocking socket fd (taken: closed on
 * failure too) within timeout_ms, then makes it non-blocking with the
 * session as its layer. Returns fd, to be closed with hf_volc_close, or
 * -1 with a sentence in err. The verified peer's subject CN goes to peer
 * (peer_n bytes) when not NULL.
 */
int hf_vtls_wrap(SSL_CTX *ctx, bool server, int fd, int timeout_ms,
		 char *peer, size_t peer_n, char *err, size_t n);

#endif
