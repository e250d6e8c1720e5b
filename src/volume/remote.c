/*
 * remote.c - the attach process's connection to a remote replica
 * (remote.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "volume/remote.h"
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

void hf_remote_init(struct hf_remote *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	pthread_mutex_init(&r->send_mu, NULL);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

/* A connected socket to address:port within the timeout, or -1 (err). */
static int dial(struct hf_remote *r, char *err, size_t n)
{
	struct addrinfo hints, *ai = NULL;
	char port[16];
	struct pollfd pfd;
	int fd = -1, rc, one = 1, soerr = 0;
	socklen_t sl = sizeof(soerr);

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", r->port);
	if ((rc = getaddrinfo(r->address, port, &hints, &ai)))
		return fail(err, n, "address %s: %s", r->address,
			    gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0) {
		rc = fail(err, n, "socket: %s", strerror(errno));
		goto out;
	}
	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	if (rc < 0 && errno != EINPROGRESS) {
		rc = fail(err, n, "cannot connect to %s port %d: %s",
			  r->address, r->port, strerror(errno));
		goto out;
	}
	pfd = (struct pollfd){fd, POLLOUT, 0};
	rc = poll(&pfd, 1, HF_REMOTE_TIMEOUT_MS);
	if (rc == 0) {
		rc = fail(err, n, "no connection to %s port %d in %d ms",
			  r->address, r->port, HF_REMOTE_TIMEOUT_MS);
		goto out;
	}
	if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ||
	    soerr) {
		rc = fail(err, n, "cannot connect to %s port %d: %s",
			  r->address, r->port,
			  strerror(soerr ? soerr : errno));
		goto out;
	}
	/* Blocking from here on; TCP_NODELAY: a commit is a few small frames. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	rc = 0;
out:
	freeaddrinfo(ai);
	if (rc && fd >= 0)
		close(fd);
	if (!rc && r->tls) {
		char why[HF_VOL_ERR_MAX];

		fd = hf_vtls_wrap(r->tls, false, fd, HF_REMOTE_TIMEOUT_MS,
				  NULL, 0, why, sizeof(why));
		if (fd < 0)
			return fail(err, n, "%s port %d: %s", r->address,
				    r->port, why);
	}
	return rc ? -1 : fd;
}

int hf_remote_connect(struct hf_remote *r, const char *volume_id,
		      uint64_t epoch, const char *node,
		      const uint8_t ticket[HF_VOL_TICKET_LEN], uint64_t size,
		      char *err, size_t n)
{
	struct hf_volw_frame f;
	char why[HF_VOL_ERR_MAX];
	int rc;

	r->epoch = epoch;
	if ((r->fd = dial(r, err, n)) < 0)
		return -1;
	hf_volc_rx_init(&r->rx);
	memset(&f, 0, sizeof(f));
	f.type = HF_VOLW_HELLO;
	f.id = ++r->next_id;
	f.epoch = epoch;
	f.u.hello.role = HF_VOLW_ROLE_PRIMARY;
	/* A fresh primary's generation ids: none yet (resync comes later). */
	f.u.hello.me.flags = HF_VOL_F_CONSISTENT;
	memcpy(f.u.hello.proof, ticket, HF_VOL_TICKET_LEN);
	snprintf(f.u.hello.volume_id, sizeof(f.u.hello.volume_id), "%s",
		 volume_id);
	snprintf(f.u.hello.replica_id, sizeof(f.u.hello.replica_id), "%s",
		 r->replica);
	snprintf(f.u.hello.node_id, sizeof(f.u.hello.node_id), "%s", node);
	if ((rc = hf_volc_send(r->fd, &f)))
		return fail(err, n, "sending HELLO: %s", strerror(-rc));
	rc = hf_volc_recv(r->fd, &r->rx, &f, HF_REMOTE_TIMEOUT_MS, why);
	if (rc == -ETIMEDOUT)
		return fail(err, n, "no answer to HELLO in %d ms",
			    HF_REMOTE_TIMEOUT_MS);
	if (rc == HF_EPARSE || rc == HF_ETOOBIG)
		return fail(err, n, "a bad answer to HELLO: %s", why);
	if (rc)
		return fail(err, n, "the connection broke at HELLO: %s",
			    strerror(-rc));
	switch (f.type) {
	case HF_VOLW_HELLO_OK:
		break;
	case HF_VOLW_FENCED:
		return fail(err, n,
			    "fenced: the replica has seen epoch %llu, newer "
			    "than this attachment's %llu",
			    (unsigned long long)f.u.fenced_epoch,
			    (unsigned long long)epoch);
	case HF_VOLW_ERROR:
		return fail(err, n, "refused: %s", f.u.error.text);
	default:
		return fail(err, n, "answered HELLO with %s",
			    hf_volw_type_name(f.type));
	}
	if (f.u.hello_ok.size < size)
		return fail(err, n,
			    "the replica is %llu bytes, less than the volume's "
			    "%llu",
			    (unsigned long long)f.u.hello_ok.size,
			    (unsigned long long)size);
	r->gen = f.u.hello_ok.replica.gens.current;
	r->hello_flags = f.flags;
	r->last_answer_ms = hf_mono_ms();
	return 0;
}

/* Marks r dead (the first reason stays), failing every waiter. */
static void die_locked(struct hf_remote *r, const char *fmt, ...)
	HF_PRINTF(2, 3);
static void die_locked(struct hf_remote *r, const char *fmt, ...)
{
	va_list ap;
	bool first = !r->dead;

	if (first) {
		va_start(ap, fmt);
		vsnprintf(r->why, sizeof(r->why), fmt, ap);
		va_end(ap);
		r->dead = true;
		/* Wakes a waiter reading it; refuses every later send. */
		shutdown(r->fd, SHUT_RDWR);
		hf_log("replica %s on node %s (%s port %d): %s; its "
		       "volume's writes fail from now on",
		       r->replica, r->node, r->address, r->port, r->why);
	}
	for (struct hf_remote_req *q = r->head; q; q = q->next) {
		q->done = true;
		q->err = EIO;
	}
	r->head = r->tail = NULL;
	pthread_cond_broadcast(&r->cv);
	if (first && r->on_dead) {
		pthread_mutex_unlock(&r->mu);
		r->on_dead(r, r->on_dead_arg);
		pthread_mutex_lock(&r->mu);
	}
}

/* One answer read from the stream: to the oldest request (under mu). */
static void dispatch(struct hf_remote *r, const struct hf_volw_frame *f)
{
	struct hf_remote_req *q = r->head;

	if (!q || q->id != f->id) {
		die_locked(r, "an answer (%s) to request %llu, which is not "
			      "the oldest waiting",
			   hf_volw_type_name(f->type),
			   (unsigned long long)f->id);
	} else if (f->type == HF_VOLW_FENCED) {
		r->fenced = true;
		die_locked(r, "fenced: the replica has seen epoch %llu",
			   (unsigned long long)f->u.fenced_epoch);
	} else if (f->type == HF_VOLW_ERROR) {
		die_locked(r, "refused a request: %s (errno %u)",
			   f->u.error.text, f->u.error.errnum);
	} else if (f->type != q->answer ||
		   (q->dst && f->data_len != q->dst_len)) {
		die_locked(r, "answered with %s (%u bytes)",
			   hf_volw_type_name(f->type), f->data_len);
	} else {
		if (q->dst)
			memcpy(q->dst, f->data, q->dst_len);
		if (f->type == HF_VOLW_MARK_OK) {
			q->mark[0] = f->u.mark.seq;
			q->mark[1] = f->u.mark.time_ns;
		}
		q->done = true;
		q->err = 0;
		r->last_answer_ms = hf_mono_ms();
		r->head = q->next;
		if (!r->head)
			r->tail = NULL;
	}
}

int hf_remote_submit(struct hf_remote *r, struct hf_volw_frame *f,
		     struct hf_remote_req *q)
{
	int rc;

	q->answer = hf_volw_answer(f->type);
	q->due = hf_mono_ms() + HF_REMOTE_TIMEOUT_MS;
	q->done = false;
	q->err = 0;
	q->next = NULL;
	/*
	 * The send lock is held from the id's choice to the frame's last
	 * byte, so ids go out in the order the waiters are queued.
	 */
	pthread_mutex_lock(&r->send_mu);
	pthread_mutex_lock(&r->mu);
	if (r->dead) {
		pthread_mutex_unlock(&r->mu);
		pthread_mutex_unlock(&r->send_mu);
		q->done = true;
		q->err = EIO;
		return EIO;
	}
	q->id = f->id = ++r->next_id;
	f->epoch = r->epoch;
	if (r->tail)
		r->tail->next = q;
	else
		r->head = q;
	r->tail = q;
	pthread_mutex_unlock(&r->mu);
	rc = hf_volc_send(r->fd, f);
	pthread_mutex_unlock(&r->send_mu);
	if (rc) {
		pthread_mutex_lock(&r->mu);
		die_locked(r, "cannot send %s: %s", hf_volw_type_name(f->type),
			   strerror(-rc));
		pthread_mutex_unlock(&r->mu);
		return EIO;
	}
	return 0;
}

/*
 * The waiter reads the answers itself when no other thread is reading
 * (and waits for the one that is otherwise): at queue depth 1, which is
 * how a database commits, the answer wakes the thread that needs it,
 * with no reader thread to hand it over (one wake-up less per request,
 * which on 2 cores is a good part of a commit's cost).
 */
int hf_remote_wait(struct hf_remote *r, struct hf_remote_req *q)
{
	int64_t end = q->due;
	struct timespec deadline;
	int err;

	/* The condition variable's clock is the wall clock. */
	hf_deadline_after_ms(&deadline, end > hf_mono_ms() ? end - hf_mono_ms()
							 : 0);
	pthread_mutex_lock(&r->mu);
	while (!q->done) {
		if (!r->reading && !r->dead) {
			struct hf_volw_frame f;
			char why[HF_VOL_ERR_MAX];
			int64_t left = end - hf_mono_ms();
			int rc;

			r->reading = true;
			pthread_mutex_unlock(&r->mu);
			rc = left > 0 ? hf_volc_recv(r->fd, &r->rx, &f,
						     (int)left, why)
				      : -ETIMEDOUT;
			pthread_mutex_lock(&r->mu);
			r->reading = false;
			if (rc == -ETIMEDOUT)
				die_locked(r, "no answer in %d ms",
					   HF_REMOTE_TIMEOUT_MS);
			else if (rc == HF_EPARSE || rc == HF_ETOOBIG)
				die_locked(r, "a bad frame: %s", why);
			else if (rc == -ECONNRESET)
				die_locked(r, "the connection closed");
			else if (rc)
				die_locked(r, "the connection broke: %s",
					   strerror(-rc));
			else
				dispatch(r, &f);
			/* Another waiter may read on, or find its answer. */
			pthread_cond_broadcast(&r->cv);
			continue;
		}
		if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) ==
			    ETIMEDOUT &&
		    !q->done)
			die_locked(r, "no answer in %d ms",
				   HF_REMOTE_TIMEOUT_MS);
	}
	err = q->err;
	pthread_mutex_unlock(&r->mu);
	return err;
}

int hf_remote_ping(struct hf_remote *r, int64_t idle_ms)
{
	struct hf_volw_frame f;
	struct hf_remote_req q;
	bool idle;

	pthread_mutex_lock(&r->mu);
	if (r->dead) {
		pthread_mutex_unlock(&r->mu);
		return EIO;
	}
	idle = !r->head && hf_mono_ms() - r->last_answer_ms >= idle_ms;
	pthread_mutex_unlock(&r->mu);
	if (!idle)
		return 0;
	memset(&f, 0, sizeof(f));
	memset(&q, 0, sizeof(q));
	f.type = HF_VOLW_PING;
	if (hf_remote_submit(r, &f, &q))
		return EIO;
	return hf_remote_wait(r, &q);
}

bool hf_remote_dead(struct hf_remote *r, char *why, size_t n)
{
	bool dead;

	pthread_mutex_lock(&r->mu);
	dead = r->dead;
	if (dead && why)
		snprintf(why, n, "%s", r->why);
	pthread_mutex_unlock(&r->mu);
	return dead;
}

void hf_remote_close(struct hf_remote *r, bool bye)
{
	/* Its end is no news to report. */
	pthread_mutex_lock(&r->mu);
	r->on_dead = NULL;
	pthread_mutex_unlock(&r->mu);
	if (r->fd >= 0 && bye && !hf_remote_dead(r, NULL, 0)) {
		struct hf_volw_frame f;

		memset(&f, 0, sizeof(f));
		f.type = HF_VOLW_BYE;
		pthread_mutex_lock(&r->send_mu);
		f.id = ++r->next_id;
		f.epoch = r->epoch;
		hf_volc_send(r->fd, &f);
		pthread_mutex_unlock(&r->send_mu);
	}
	if (r->fd >= 0)
		hf_volc_close(r->fd);
	r->fd = -1;
	hf_volc_rx_release(&r->rx);
	pthread_mutex_destroy(&r->send_mu);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r->address);
	free(r->replica);
	free(r->node);
}
