/*
 * simagents.c - many simulated agents in one process, for the cluster
 * benchmark (bench/cluster.py).
 *
 * Each simulated agent speaks the real agent protocol (docs/protocol.md,
 * POST /v1/agent/register once with the join token --token, then
 * POST /v1/agent/sync with a credential of its own) to a real server: it
 * registers with its own node id, hostname, zone attribute and resources,
 * keeps one long poll open,
 * and "launches" every task of its desired set at once by reporting it
 * running and ready in its next sync. A task dropped from the desired set
 * is reported killed once and forgotten. No process is started: what is
 * measured is the server's work (placement, plans, store writes, syncs).
 *
 *   hf-simagents --server URL --agents N [--token JOIN] [--zones Z]
 *                [--wait S] [--prefix P] [--stats FILE]
 *
 * The join token may come from HOLDFAST_TOKEN instead (not shown by ps).
 *
 * Every 100 ms, when something changed, it rewrites FILE (atomically) with
 * a JSON object: agents registered, syncs sent, tasks launched (distinct
 * ids received), the unix ms of the first and last launch, and errors.
 * It runs until SIGINT or SIGTERM.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sim_task {
	char *id;
	bool killed; /* dropped from the desired set; report once */
};

struct sim_agent {
	char node_id[64];
	char hostname[64];
	char zone[16];
	char cred[96];   /* its own credential, registered once */
	bool joined;     /* the server knows cred */
	CURL *easy;
	struct curl_slist *headers, *join_headers;
	char *body;      /* request body being sent */
	char *resp;      /* response being received */
	size_t resp_len, resp_cap;
	uint64_t generation;
	double seq;
	bool registered;
	int64_t retry_at; /* ms; 0 = not waiting to retry */
	struct sim_task *tasks;
	size_t ntasks, cap;
};

static volatile sig_atomic_t stop;
static int64_t launched, syncs, errors, registered_count;
static int64_t first_launch_ms, last_launch_ms;
static bool stats_dirty = true;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fputs("hf-simagents: out of memory\n", stderr);
		exit(1);
	}
	return q;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sim_agent *a = ud;
	size_t n = size * nmemb;

	if (a->resp_len + n + 1 > a->resp_cap) {
		a->resp_cap = (a->resp_len + n + 1) * 2;
		a->resp = xrealloc(a->resp, a->resp_cap);
	}
	memcpy(a->resp + a->resp_len, ptr, n);
	a->resp_len += n;
	a->resp[a->resp_len] = '\0';
	return n;
}

static json_t *agent_info(const struct sim_agent *a, int64_t started)
{
	return json_pack(
	    "{s:s, s:s, s:{s:s}, s:{s:i, s:i, s:i, s:[{s:i, s:i}]},"
	    " s:{s:i, s:s}, s:s, s:I}",
	    "hostname", a->hostname, "address", "127.0.0.1", "attributes",
	    "zone", a->zone, "resources", "cpus", 64, "memory_mb", 262144,
	    "disk_mb", 1048576, "ports", "begin", 10000, "end", 20000,
	    "cgroups", "version", 0, "note", "simulated", "agent_version",
	    "sim", "started_at", (json_int_t)started);
}

/* POST /v1/agent/register: this agent's node id and credential. */
static void send_register(CURLM *multi, struct sim_agent *a, const char *url)
{
	json_t *req = json_pack("{s:s, s:s}", "node_id", a->node_id, "token",
				a->cred);

	free(a->body);
	a->body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	a->resp_len = 0;
	curl_easy_setopt(a->easy, CURLOPT_URL, url);
	curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
	curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->join_headers);
	curl_easy_setopt(a->easy, CURLOPT_TIMEOUT, 120L);
	curl_multi_add_handle(multi, a->easy);
}

static void send_sync(CURLM *multi, struct sim_agent *a, const char *url,
		      int wait, int64_t started)
{
	json_t *tasks = json_array(), *req;
	size_t keep = 0;

	for (size_t i = 0; i < a->ntasks; i++) {
		struct sim_task *t = &a->tasks[i];

		if (t->killed)
			json_array_append_new(
			    tasks, json_pack("{s:s, s:s, s:n, s:i, s:b}",
					     "task_id", t->id, "state", "killed",
					     "exit_code", "signal", 15, "ready",
					     0));
		else
			json_array_append_new(
			    tasks,
			    json_pack("{s:s, s:s, s:i, s:I, s:b, s:n}", "task_id",
				      t->id, "state", "running", "pid", 1,
				      "started_at", (json_int_t)started, "ready",
				      1, "healthy"));
	}
	/* A killed task is reported once, then forgotten. */
	for (size_t i = 0; i < a->ntasks; i++) {
		if (a->tasks[i].killed) {
			free(a->tasks[i].id);
			continue;
		}
		a->tasks[keep++] = a->tasks[i];
	}
	a->ntasks = keep;
	a->seq += 1;
	req = json_pack("{s:s, s:f, s:I, s:i, s:o, s:o, s:[]}", "node_id",
			a->node_id, "seq", a->seq, "generation",
			(json_int_t)a->generation, "wait", wait, "info",
			agent_info(a, started), "tasks", tasks,
			"deleted_volumes");
	free(a->body);
	a->body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	a->resp_len = 0;
	curl_easy_setopt(a->easy, CURLOPT_URL, url);
	curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
	curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(a->easy, CURLOPT_TIMEOUT, (long)wait + 120);
	curl_multi_add_handle(multi, a->easy);
	syncs++;
}

static bool has_task(const struct sim_agent *a, const char *id)
{
	for (size_t i = 0; i < a->ntasks; i++)
		if (strcmp(a->tasks[i].id, id) == 0)
			return true;
	return false;
}

/* Applies a sync response: launch new ids, mark dropped ones killed. */
static void apply(struct sim_agent *a)
{
	json_error_t jerr;
	json_t *resp = json_loadb(a->resp, a->resp_len, 0, &jerr);
	json_t *desired, *e;
	size_t i;

	if (!json_is_object(resp)) {
		errors++;
		json_decref(resp);
		return;
	}
	a->generation =
	    (uint64_t)json_integer_value(json_object_get(resp, "generation"));
	desired = json_object_get(resp, "tasks");
	json_array_foreach(desired, i, e)
	{
		const char *id =
		    json_string_value(json_object_get(e, "task_id"));

		if (!id || has_task(a, id))
			continue;
		if (a->ntasks == a->cap) {
			a->cap = a->cap ? a->cap * 2 : 8;
			a->tasks = xrealloc(a->tasks, a->cap * sizeof(*a->tasks));
		}
		a->tasks[a->ntasks].id = strdup(id);
		a->tasks[a->ntasks].killed = false;
		a->ntasks++;
		launched++;
		last_launch_ms = now_ms();
		if (!first_launch_ms)
			first_launch_ms = last_launch_ms;
		stats_dirty = true;
	}
	for (size_t k = 0; k < a->ntasks; k++) {
		bool listed = false;

		json_array_foreach(desired, i, e)
		{
			const char *id =
			    json_string_value(json_object_get(e, "task_id"));

			if (id && strcmp(id, a->tasks[k].id) == 0) {
				listed = true;
				break;
			}
		}
		if (!listed)
			a->tasks[k].killed = true;
	}
	if (!a->registered) {
		a->registered = true;
		registered_count++;
		stats_dirty = true;
	}
	json_decref(resp);
}

static void write_stats(const char *path)
{
	char tmp[4096];
	FILE *f;

	if (!path || !stats_dirty)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f,
		"{\"registered\": %lld, \"syncs\": %lld, \"launched\": %lld, "
		"\"first_launch_ms\": %lld, \"last_launch_ms\": %lld, "
		"\"errors\": %lld}\n",
		(long long)registered_count, (long long)syncs,
		(long long)launched, (long long)first_launch_ms,
		(long long)last_launch_ms, (long long)errors);
	if (fclose(f) == 0 && rename(tmp, path) == 0)
		stats_dirty = false;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fputs("usage: hf-simagents --server URL --agents N --token JOIN "
	      "[--zones Z] [--wait S] [--prefix P] [--stats FILE]\n",
	      stderr);
}

int main(int argc, char **argv)
{
	const char *server = NULL, *token = NULL, *prefix = "sim",
		   *stats = NULL;
	int nagents = 0, zones = 3, wait = 10;
	struct sim_agent *agents;
	char url[1024], reg_url[1024], auth[512], own[160];
	int64_t started = now_ms(), last_stats = 0;
	unsigned long long seed = 0;
	CURLM *multi;
	FILE *rnd;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			usage();
			return 2;
		}
		if (strcmp(argv[i], "--server") == 0)
			server = v;
		else if (strcmp(argv[i], "--agents") == 0)
			nagents = atoi(v);
		else if (strcmp(argv[i], "--zones") == 0)
			zones = atoi(v);
		else if (strcmp(argv[i], "--wait") == 0)
			wait = atoi(v);
		else if (strcmp(argv[i], "--token") == 0)
			token = v;
		else if (strcmp(argv[i], "--prefix") == 0)
			prefix = v;
		else if (strcmp(argv[i], "--stats") == 0)
			stats = v;
		else {
			usage();
			return 2;
		}
		i++;
	}
	if (!token)
		token = getenv("HOLDFAST_TOKEN");
	if (!server || nagents <= 0 || zones <= 0 || !token || !*token) {
		usage();
		return 2;
	}
	snprintf(url, sizeof(url), "%s/v1/agent/sync", server);
	snprintf(reg_url, sizeof(reg_url), "%s/v1/agent/register", server);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	rnd = fopen("/dev/urandom", "rb");
	if (!rnd || fread(&seed, sizeof(seed), 1, rnd) != 1) {
		fputs("hf-simagents: cannot read /dev/urandom\n", stderr);
		return 1;
	}
	fclose(rnd);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)nagents + 16);
	agents = calloc((size_t)nagents, sizeof(*agents));
	if (!agents)
		return 1;
	for (int i = 0; i < nagents; i++) {
		struct sim_agent *a = &agents[i];

		snprintf(a->node_id, sizeof(a->node_id), "%s-%04d", prefix, i);
		snprintf(a->hostname, sizeof(a->hostname), "%s-host-%04d",
			 prefix, i);
		snprintf(a->zone, sizeof(a->zone), "z%d", i % zones);
		a->seq = (double)started;
		snprintf(a->cred, sizeof(a->cred), "sim-%016llx-%08d-%016llx",
			 seed, i, seed ^ (0x9e3779b97f4a7c15ULL * (unsigned)(i + 1)));
		snprintf(own, sizeof(own), "Authorization: Bearer %s", a->cred);
		a->easy = curl_easy_init();
		a->headers = curl_slist_append(NULL,
					       "Content-Type: application/json");
		a->headers = curl_slist_append(a->headers, "Expect:");
		a->join_headers = curl_slist_append(NULL,
						    "Content-Type: application/json");
		a->join_headers = curl_slist_append(a->join_headers, "Expect:");
		a->join_headers = curl_slist_append(a->join_headers, auth);
		a->headers = curl_slist_append(a->headers, own);
		curl_easy_setopt(a->easy, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(a->easy, CURLOPT_WRITEDATA, a);
		curl_easy_setopt(a->easy, CURLOPT_PRIVATE, a);
		curl_easy_setopt(a->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(a->easy, CURLOPT_TCP_KEEPALIVE, 1L);
		/* Register its credential, then sync at once, then hold polls. */
		send_register(multi, a, reg_url);
	}
	while (!stop) {
		int running = 0, left = 0;
		CURLMsg *m;
		int64_t now;

		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left))) {
			struct sim_agent *a;
			long code = 0;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
					  (char **)&a);
			curl_easy_getinfo(m->easy_handle,
					  CURLINFO_RESPONSE_CODE, &code);
			curl_multi_remove_handle(multi, m->easy_handle);
			if (m->data.result != CURLE_OK || code != 200) {
				errors++;
				stats_dirty = true;
				if (errors < 20)
					fprintf(stderr,
						"hf-simagents: %s: %s failed: "
						"%s (HTTP %ld%s%.200s)\n",
						a->node_id,
						a->joined ? "sync" : "register",
						curl_easy_strerror(
						    m->data.result),
						code, a->resp_len ? ": " : "",
						a->resp_len ? a->resp : "");
				a->retry_at = now_ms() + 1000;
				continue;
			}
			if (!a->joined) {
				a->joined = true;
				send_sync(multi, a, url, 0, started);
				continue;
			}
			apply(a);
			send_sync(multi, a, url, wait, started);
		}
		now = now_ms();
		for (int i = 0; i < nagents; i++) {
			struct sim_agent *a = &agents[i];

			if (a->retry_at && a->retry_at <= now) {
				a->retry_at = 0;
				if (a->joined)
					send_sync(multi, a, url, wait, started);
				else
					send_register(multi, a, reg_url);
			}
		}
		if (now - last_stats >= 100) {
			write_stats(stats);
			last_stats = now;
		}
		curl_multi_poll(multi, NULL, 0, 50, NULL);
	}
	write_stats(stats);
	for (int i = 0; i < nagents; i++) {
		struct sim_agent *a = &agents[i];

		curl_multi_remove_handle(multi, a->easy);
		curl_easy_cleanup(a->easy);
		curl_slist_free_all(a->headers);
		curl_slist_free_all(a->join_headers);
		free(a->body);
		free(a->resp);
		for (size_t k = 0; k < a->ntasks; k++)
			free(a->tasks[k].id);
		free(a->tasks);
	}
	free(agents);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return 0;
}
