/*
 * remote.h - the attach process's side of one connection to a remote
 * replica (a node server, serve.h): HELLO at the attachment's epoch with
 * its ticket, then requests pipelined from any thread, answered in order
 * (a waiting thread reads the answers: hf_remote_wait).
 *
 * A remote that fails (its connection breaks, it refuses a request, it is
 * FENCED, or an answer takes longer than HF_REMOTE_TIMEOUT_MS) is dead for
 * good: every waiting and later request fails at once with EIO. Taking it
 * out of the in-sync set through the server, so writes go on without it,
 * is a later step (docs/design/volumes.md §7.3).
 */
#ifndef HF_VOLUME_REMOTE_H
#define HF_VOLUME_REMOTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume/conn.h"
#include "volume/ticket.h"
#include "volume/wire.h"

#define HF_REMOTE_TIMEOUT_MS 3000

/* One request in flight; lives on its waiter's stack. */
struct hf_remote_req {
	uint64_t id;
	int64_t due;              /* monotonic ms: sent + the timeout */
	enum hf_volw_type answer; /* the answer wanted */
	uint8_t *dst;             /* READ: where READ_DATA's bytes go */
	size_t dst_len;
	uint64_t mark[2];         /* MARK_OK's seq and time */
	bool done;
	int err;                  /* 0, or an errno */
	struct hf_remote_req *next;
};

struct hf_remote {
	char *address, *replica, *node;
	int port;
	/*
	 * Set before hf_remote_connect for a link to another site: the
	 * connection is TLS with this context (tls.h; not owned).
	 */
	struct ssl_ctx_st *tls;
	int fd;
	uint64_t epoch;
	pthread_mutex_t send_mu; /* one frame at a time on fd */
	pthread_mutex_t mu;      /* the fields below */
	pthread_cond_t cv;
	uint64_t next_id;
	struct hf_remote_req *head, *tail;
	bool dead;
	bool fenced;             /* it died of FENCED: a newer attachment */
	/* The replica's data generation (HELLO_OK's gen.current; 0: none). */
	struct hf_vol_gen gen;
	uint8_t hello_flags;     /* HELLO_OK's header flags (wire.h) */
	char why[256];
	bool reading;            /* a waiter is reading fd (it owns rx) */
	int64_t last_answer_ms;  /* monotonic: connected, or last answer */
	struct hf_volc_rx rx;
	/* Called (from any thread, once) when the remote dies. */
	void (*on_dead)(struct hf_remote *r, void *arg);
	void *on_dead_arg;
};

/* Sets r's fields to nothing (call before anything else). */
void hf_remote_init(struct hf_remote *r);

/*
 * Connects (HF_REMOTE_TIMEOUT_MS for the connection and for the answer),
 * sends HELLO as the primary of volume_id at epoch from node with
 * ticket, and checks HELLO_OK (the replica must hold at least size bytes: it
 * may have grown ahead of this attachment). Starts
 * no thread (the attach process calls it before unshare).
 * Returns 0, or -1 with a sentence in err (err_len bytes): the server's
 * ERROR text, FENCED with the replica's epoch, a size that differs, or
 * why the connection failed.
 */
int hf_remote_connect(struct hf_remote *r, const char *volume_id,
		      uint64_t epoch, const char *node,
		      const uint8_t ticket[HF_VOL_TICKET_LEN], uint64_t size,
		      char *err, size_t err_len);

/*
 * Sends request f (its id and epoch are set here) and registers q for its
 * answer. Returns 0, or EIO when r is dead (q then is done too).
 */
int hf_remote_submit(struct hf_remote *r, struct hf_volw_frame *f,
		     struct hf_remote_req *q);

/*
 * Waits for q's answer, until HF_REMOTE_TIMEOUT_MS after it was sent
 * (then r is dead), reading the stream itself while no other waiter
 * does. Returns 0 or EIO. A remote whose connection breaks while nothing
 * waits is found dead at the next request (hf_remote_ping's keepalive).
 */
int hf_remote_wait(struct hf_remote *r, struct hf_remote_req *q);

/*
 * A keepalive: when nothing is waiting on r and nothing came back from it
 * for idle_ms, sends PING and waits for PONG (HF_REMOTE_TIMEOUT_MS), so a
 * peer that died or went silent while the volume was idle is found dead
 * now rather than by the next write. Returns 0 (alive, or not idle) or
 * EIO (dead).
 */
int hf_remote_ping(struct hf_remote *r, int64_t idle_ms);

/* Whether r died (and why, copied into why when not NULL). */
bool hf_remote_dead(struct hf_remote *r, char *why, size_t n);

/*
 * Ends r: BYE when it is alive and bye is set, then the connection;
 * frees everything. No thread may be using r.
 */
void hf_remote_close(struct hf_remote *r, bool bye);

#endif
