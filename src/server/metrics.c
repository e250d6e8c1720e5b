/*
 * metrics.c - Prometheus text exposition of the server's state and
 * counters.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "server/autoscale.h"
#include "server/metrics.h"
#include "server/dr.h"
#include "server/remotes.h"
#include "server/sched.h"
#include "server/state.h"

static const double buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1,
				 0.5,   1,     5,    30};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct api_series {
	char *method, *route;
	int status;
	uint64_t count;
	double sum;
	uint64_t le[NBUCKETS]; /* cumulative at render time */
};

struct hf_api_metrics {
	pthread_mutex_t mu;
	struct {
		struct api_series *items;
		size_t len, cap;
	} series;
};

struct hf_api_metrics *hf_api_metrics_new(void)
{
	struct hf_api_metrics *m = hf_xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->mu, NULL);
	return m;
}

void hf_api_metrics_free(struct hf_api_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->series.len; i++) {
		free(m->series.items[i].method);
		free(m->series.items[i].route);
	}
	HF_VEC_FREE(&m->series);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

void hf_api_metrics_record(struct hf_api_metrics *m, const char *method,
			   const char *route, int status, double seconds)
{
	struct api_series *se = NULL;

	if (!m)
		return;
	if (!route)
		route = "(unmatched)";
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->series.len; i++) {
		struct api_series *c = &m->series.items[i];

		if (c->status == status && strcmp(c->route, route) == 0 &&
		    strcmp(c->method, method) == 0)
			se = c;
	}
	if (!se) {
		se = HF_VEC_PUSH(&m->series);
		se->method = hf_xstrdup(method);
		se->route = hf_xstrdup(route);
		se->status = status;
	}
	se->count++;
	se->sum += seconds;
	for (size_t b = 0; b < NBUCKETS; b++)
		if (seconds <= buckets[b])
			se->le[b]++;
	pthread_mutex_unlock(&m->mu);
}

void hf_metrics_label(struct hf_buf *b, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\' || *v == '"')
			hf_buf_addc(b, '\\');
		if (*v == '\n') {
			hf_buf_adds(b, "\\n");
			continue;
		}
		hf_buf_addc(b, *v);
	}
}

static void render_api(struct hf_api_metrics *m, struct hf_buf *b)
{
	if (!m)
		return;
	hf_buf_adds(b, "# HELP holdfast_api_requests_total API requests "
		       "answered.\n# TYPE holdfast_api_requests_total "
		       "counter\n");
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->series.len; i++) {
		struct api_series *se = &m->series.items[i];

		hf_buf_addf(b, "holdfast_api_requests_total{method=\"%s\",route=\"",
			    se->method);
		hf_metrics_label(b, se->route);
		hf_buf_addf(b, "\",code=\"%d\"} %llu\n", se->status,
			    (unsigned long long)se->count);
	}
	hf_buf_adds(b, "# HELP holdfast_api_request_seconds API request "
		       "latency.\n# TYPE holdfast_api_request_seconds "
		       "histogram\n");
	for (size_t i = 0; i < m->series.len; i++) {
		struct api_series *se = &m->series.items[i];

		for (size_t k = 0; k < NBUCKETS; k++) {
			hf_buf_addf(b,
				    "holdfast_api_request_seconds_bucket{method="
				    "\"%s\",route=\"",
				    se->method);
			hf_metrics_label(b, se->route);
			hf_buf_addf(b, "\",code=\"%d\",le=\"%g\"} %llu\n",
				    se->status, buckets[k],
				    (unsigned long long)se->le[k]);
		}
		hf_buf_addf(b, "holdfast_api_request_seconds_bucket{method=\"%s\","
			       "route=\"",
			    se->method);
		hf_metrics_label(b, se->route);
		hf_buf_addf(b, "\",code=\"%d\",le=\"+Inf\"} %llu\n", se->status,
			    (unsigned long long)se->count);
		hf_buf_addf(b, "holdfast_api_request_seconds_sum{method=\"%s\","
			       "route=\"",
			    se->method);
		hf_metrics_label(b, se->route);
		hf_buf_addf(b, "\",code=\"%d\"} %g\n", se->status, se->sum);
		hf_buf_addf(b, "holdfast_api_request_seconds_count{method=\"%s\","
			       "route=\"",
			    se->method);
		hf_metrics_label(b, se->route);
		hf_buf_addf(b, "\",code=\"%d\"} %llu\n", se->status,
			    (unsigned long long)se->count);
	}
	pthread_mutex_unlock(&m->mu);
}

/* name{volume="V"[,replica="R"]} N: one sample of a volume's series. */
static void vol_sample(struct hf_buf *b, const char *name, const char *volume,
		       const char *replica, int64_t n)
{
	hf_buf_addf(b, "%s{volume=\"", name);
	hf_metrics_label(b, volume);
	if (replica) {
		hf_buf_adds(b, "\",replica=\"");
		hf_metrics_label(b, replica);
	}
	hf_buf_addf(b, "\"} %lld\n", (long long)n);
}

/* The report of v's current attachment, or NULL. */
static const struct hf_node_volrep *attached_report(const struct hf_srv *s,
						    const struct hf_xvol *v)
{
	const struct hf_node *n = v->attached
					  ? hf_model_node(&s->model, v->attached)
					  : NULL;
	const struct hf_node_volrep *r = hf_model_node_volrep(n, v->name);

	return r && r->epoch == v->epoch ? r : NULL;
}

/*
 * The data path's counters, as each volume's attach process reports them
 * (reset when it starts again, at each attach: counters, as Prometheus
 * reads them), and what replicas out of the in-sync set miss.
 */
static void volume_io(const struct hf_srv *s, struct hf_buf *b)
{
	static const struct {
		const char *name, *help;
	} counters[] = {
	    {"holdfast_volume_written_bytes_total",
	     "Bytes written to a replicated volume by its task."},
	    {"holdfast_volume_replicated_bytes_total",
	     "Bytes of live writes a replicated volume sent to remote "
	     "replicas (each remote counted)."},
	    {"holdfast_volume_resync_sent_bytes_total",
	     "Bytes copies sent to resyncing replicas."},
	    {"holdfast_volume_resync_planned_bytes_total",
	     "Bytes copies set out to send: the regions a returning replica "
	     "missed, or the whole volume for a full copy."},
	    {"holdfast_volume_nospace_writes_total",
	     "Writes refused with ENOSPC: the file system of the attached "
	     "node's pool is full."},
	};

	for (size_t c = 0; c < HF_ARRAY_LEN(counters); c++) {
		hf_buf_addf(b, "# HELP %s %s\n# TYPE %s counter\n",
			    counters[c].name, counters[c].help,
			    counters[c].name);
		for (size_t i = 0; i < s->model.xvols.len; i++) {
			const struct hf_xvol *v = s->model.xvols.items[i];
			const struct hf_node_volrep *r = attached_report(s, v);
			int64_t n;

			if (!r)
				continue;
			n = c == 0   ? r->written
			    : c == 1 ? r->replicated
			    : c == 2 ? r->resync_sent
			    : c == 3 ? r->resync_planned
				     : r->nospace;
			vol_sample(b, counters[c].name, v->name, NULL, n);
		}
	}
	hf_buf_adds(b, "# HELP holdfast_volume_write_seconds How long a "
		       "replicated volume's writes took, from the attach "
		       "process's receipt to its answer (every in-sync "
		       "replica has them).\n"
		       "# TYPE holdfast_volume_write_seconds histogram\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];
		const struct hf_node_volrep *r = attached_report(s, v);
		int64_t cum = 0;

		if (!r || !r->has_write_us)
			continue;
		for (size_t k = 0; k <= HF_VOL_LAT_BUCKETS; k++) {
			cum += r->write_us[k];
			hf_buf_adds(b, "holdfast_volume_write_seconds_bucket{"
				       "volume=\"");
			hf_metrics_label(b, v->name);
			if (k < HF_VOL_LAT_BUCKETS)
				hf_buf_addf(b, "\",le=\"%g\"} %lld\n",
					    (double)hf_vol_lat_bounds_us[k] / 1e6,
					    (long long)cum);
			else
				hf_buf_addf(b, "\",le=\"+Inf\"} %lld\n",
					    (long long)cum);
		}
		hf_buf_adds(b, "holdfast_volume_write_seconds_sum{volume=\"");
		hf_metrics_label(b, v->name);
		hf_buf_addf(b, "\"} %.6f\n", (double)r->write_us_sum / 1e6);
		vol_sample(b, "holdfast_volume_write_seconds_count", v->name,
			   NULL, cum);
	}
	hf_buf_adds(b, "# HELP holdfast_volume_missed_bytes What a replica out "
		       "of the in-sync set misses (the regions written "
		       "without it), as its volume's attach process keeps "
		       "it.\n"
		       "# TYPE holdfast_volume_missed_bytes gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];
		const struct hf_node_volrep *r = attached_report(s, v);

		for (size_t k = 0; r && k < r->missed.len; k++)
			vol_sample(b, "holdfast_volume_missed_bytes", v->name,
				   r->missed.items[k].replica,
				   r->missed.items[k].bytes);
	}
	hf_buf_adds(b, "# HELP holdfast_volume_snapshots A replicated volume's "
		       "snapshots, by state (taking, ready, failed, "
		       "deleting).\n"
		       "# TYPE holdfast_volume_snapshots gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];
		int64_t by[4] = {0};

		for (size_t k = 0; k < v->snaps.len; k++)
			if ((size_t)v->snaps.items[k].state < 4)
				by[v->snaps.items[k].state]++;
		for (int st = 0; st < 4; st++) {
			hf_buf_adds(b, "holdfast_volume_snapshots{volume=\"");
			hf_metrics_label(b, v->name);
			hf_buf_addf(b, "\",state=\"%s\"} %lld\n",
				    hf_xsnap_state_name((enum hf_xsnap_state)st),
				    (long long)by[st]);
		}
	}
	hf_buf_adds(b, "# HELP holdfast_volume_last_snapshot_timestamp_seconds "
		       "When a replicated volume's newest ready snapshot was "
		       "taken (unix seconds).\n"
		       "# TYPE holdfast_volume_last_snapshot_timestamp_seconds "
		       "gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];
		int64_t last = 0;

		for (size_t k = 0; k < v->snaps.len; k++)
			if (v->snaps.items[k].state == HF_XSNAP_READY &&
			    v->snaps.items[k].taken > last)
				last = v->snaps.items[k].taken;
		if (last)
			vol_sample(b,
				   "holdfast_volume_last_snapshot_timestamp_seconds",
				   v->name, NULL, last / 1000);
	}
	hf_buf_adds(b, "# HELP holdfast_volume_last_backup_timestamp_seconds "
		       "When a replicated volume's last backup to an S3 store "
		       "completed (unix seconds).\n"
		       "# TYPE holdfast_volume_last_backup_timestamp_seconds "
		       "gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		if (v->bk_at)
			vol_sample(b,
				   "holdfast_volume_last_backup_timestamp_seconds",
				   v->name, NULL, v->bk_at / 1000);
	}
	hf_buf_adds(b, "# HELP holdfast_volume_backup_running Whether a backup "
		       "of the replicated volume is under way (1) or not (0).\n"
		       "# TYPE holdfast_volume_backup_running gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		vol_sample(b, "holdfast_volume_backup_running", v->name, NULL,
			   v->bk_run.id ? 1 : 0);
	}
	hf_buf_adds(b, "# HELP holdfast_volume_resync_left_bytes Bytes a "
		       "resyncing replica's copy has still to send.\n"
		       "# TYPE holdfast_volume_resync_left_bytes gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];

			if (r->state == HF_XREP_RESYNCING)
				vol_sample(b, "holdfast_volume_resync_left_bytes",
					   v->name, r->id,
					   r->resync_total > r->resync_done
					       ? r->resync_total - r->resync_done
					       : 0);
		}
	}
}

static void render_state(struct hf_srv *s, struct hf_buf *b)
{
	struct hf_store_stats st;
	int64_t now = hf_now_ms();

	hf_buf_adds(b, "# HELP holdfast_tasks Tasks by service and state.\n"
		       "# TYPE holdfast_tasks gauge\n");
	for (size_t i = 0; i < s->model.services.len; i++) {
		struct hf_service *svc = s->model.services.items[i];
		uint64_t counts[HF_TS_LOST + 1] = {0};

		for (size_t k = 0; k < svc->instances.len; k++)
			for (size_t t = 0; t < svc->instances.items[k]->slots.len;
			     t++) {
				struct hf_task_rec *r =
				    svc->instances.items[k]->slots.items[t].cur;

				if (r)
					counts[r->state]++;
			}
		for (int k = 0; k <= HF_TS_LOST; k++) {
			hf_buf_adds(b, "holdfast_tasks{service=\"");
			hf_metrics_label(b, svc->name);
			hf_buf_addf(b, "\",state=\"%s\"} %llu\n",
				    hf_task_state_name((enum hf_task_state)k),
				    (unsigned long long)counts[k]);
		}
	}
	{
		struct hf_buf steps = HF_BUF_INIT;

		hf_buf_adds(b, "# HELP holdfast_plan_status 1 for the status "
			       "each plan is in.\n"
			       "# TYPE holdfast_plan_status gauge\n");
		hf_buf_adds(&steps, "# HELP holdfast_plan_steps Steps of each "
				    "plan by status.\n"
				    "# TYPE holdfast_plan_steps gauge\n");
		for (size_t i = 0; i < s->model.services.len; i++) {
			struct hf_service *svc = s->model.services.items[i];
			struct hf_config *cfg = hf_state_target(svc);

			for (size_t p = 0; cfg && p <= cfg->plans.len; p++) {
				const char *name = p < cfg->plans.len
						       ? cfg->plans.items[p].name
						       : "recovery";
				struct hf_plan_view v;
				size_t nsteps = 0;
				uint64_t by[HF_STATUS_IN_PROGRESS + 1] = {0};

				if (hf_sched_plan_view(s, svc, name, &v))
					continue;
				hf_buf_adds(b, "holdfast_plan_status{service=\"");
				hf_metrics_label(b, svc->name);
				hf_buf_addf(b,
					    "\",plan=\"%s\",status=\"%s\"} 1\n",
					    name, hf_status_name(v.status));
				for (size_t ph = 0; ph < v.def->phases.len; ph++)
					nsteps += v.def->phases.items[ph].steps.len;
				for (size_t k = 0; k < nsteps; k++)
					by[v.steps[k].status]++;
				for (int k = 0; k < HF_STATUS_IN_PROGRESS; k++) {
					hf_buf_adds(&steps,
						    "holdfast_plan_steps{service=\"");
					hf_metrics_label(&steps, svc->name);
					hf_buf_addf(&steps,
						    "\",plan=\"%s\",status=\"%s\"} "
						    "%llu\n",
						    name,
						    hf_status_name((enum hf_status)k),
						    (unsigned long long)by[k]);
				}
				hf_plan_view_release(&v);
			}
		}
		hf_buf_add(b, steps.data ? steps.data : "", steps.len);
		hf_buf_release(&steps);
	}
	hf_buf_addf(b,
		    "# HELP holdfast_task_launches_total Task launches recorded.\n"
		    "# TYPE holdfast_task_launches_total counter\n"
		    "holdfast_task_launches_total %llu\n"
		    "# HELP holdfast_task_restarts_total Relaunches after a "
		    "failure or a pod restart, and restarts in place by a "
		    "node.\n"
		    "# TYPE holdfast_task_restarts_total counter\n"
		    "holdfast_task_restarts_total %llu\n"
		    "# HELP holdfast_task_failures_total Tasks that failed.\n"
		    "# TYPE holdfast_task_failures_total counter\n"
		    "holdfast_task_failures_total %llu\n",
		    (unsigned long long)s->launches,
		    (unsigned long long)s->restarts,
		    (unsigned long long)s->failures);
	hf_store_stats(s->store, &st);
	hf_buf_addf(b,
		    "# HELP holdfast_store_operations_total Store operations.\n"
		    "# TYPE holdfast_store_operations_total counter\n"
		    "holdfast_store_operations_total{op=\"get\"} %llu\n"
		    "holdfast_store_operations_total{op=\"list\"} %llu\n"
		    "holdfast_store_operations_total{op=\"txn\"} %llu\n"
		    "holdfast_store_operations_total{op=\"conflict\"} %llu\n"
		    "holdfast_store_operations_total{op=\"error\"} %llu\n",
		    (unsigned long long)st.gets, (unsigned long long)st.lists,
		    (unsigned long long)st.txns, (unsigned long long)st.conflicts,
		    (unsigned long long)st.errors);
	hf_buf_adds(b, "# HELP holdfast_node_connected 1 when the node's agent "
		       "synced in the last 30 s.\n"
		       "# TYPE holdfast_node_connected gauge\n");
	for (size_t i = 0; i < s->model.nodes.len; i++) {
		hf_buf_adds(b, "holdfast_node_connected{node=\"");
		hf_metrics_label(b, s->model.nodes.items[i]->id);
		hf_buf_addf(b, "\"} %d\n",
			    now - s->model.nodes.items[i]->last_seen < 30000);
	}
	hf_buf_adds(b, "# HELP holdfast_pool_bytes A node's storage pool as "
		       "its agent last reported it (kind: capacity, "
		       "provisioned, used, free); none for a storage-less "
		       "node.\n"
		       "# TYPE holdfast_pool_bytes gauge\n");
	for (size_t i = 0; i < s->model.nodes.len; i++) {
		const struct hf_node *n = s->model.nodes.items[i];
		const struct hf_node_storage *pool = n->storage;
		const struct {
			const char *kind;
			int64_t v;
		} figs[] = {{"capacity", pool ? pool->capacity : 0},
			    {"provisioned", pool ? pool->provisioned : 0},
			    {"used", pool ? pool->used : 0},
			    {"free", pool ? pool->free : 0}};

		for (size_t k = 0; pool && k < HF_ARRAY_LEN(figs); k++) {
			hf_buf_adds(b, "holdfast_pool_bytes{node=\"");
			hf_metrics_label(b, n->id);
			hf_buf_addf(b, "\",kind=\"%s\"} %lld\n", figs[k].kind,
				    (long long)figs[k].v);
		}
	}
	hf_buf_adds(b, "# HELP holdfast_volume_replica_state A replicated "
		       "volume's replica in a state (1) as the server records "
		       "it: new, in_sync, resyncing, down, stale, deleting.\n"
		       "# TYPE holdfast_volume_replica_state gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		for (size_t k = 0; k < v->replicas.len; k++) {
			const struct hf_xrep *r = &v->replicas.items[k];

			hf_buf_adds(b, "holdfast_volume_replica_state{volume=\"");
			hf_metrics_label(b, v->name);
			hf_buf_adds(b, "\",replica=\"");
			hf_metrics_label(b, r->id);
			hf_buf_adds(b, "\",node=\"");
			hf_metrics_label(b, r->node);
			hf_buf_addf(b, "\",state=\"%s\"} 1\n",
				    hf_xrep_state_name(r->state));
		}
	}
	hf_buf_adds(b, "# HELP holdfast_volume_in_sync_replicas A replicated "
		       "volume's replicas in sync, and how many it wants.\n"
		       "# TYPE holdfast_volume_in_sync_replicas gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		hf_buf_adds(b, "holdfast_volume_in_sync_replicas{volume=\"");
		hf_metrics_label(b, v->name);
		hf_buf_addf(b, "\",repl=\"%u\"} %u\n", v->repl,
			    hf_xvol_in_sync(v));
	}
	volume_io(s, b);
	hf_buf_adds(b, "# HELP holdfast_volume_epoch A replicated volume's "
		       "epoch (bumped by every attach).\n"
		       "# TYPE holdfast_volume_epoch gauge\n");
	for (size_t i = 0; i < s->model.xvols.len; i++) {
		const struct hf_xvol *v = s->model.xvols.items[i];

		hf_buf_adds(b, "holdfast_volume_epoch{volume=\"");
		hf_metrics_label(b, v->name);
		hf_buf_addf(b, "\"} %llu\n", (unsigned long long)v->epoch);
	}
}

void hf_metrics_handler(void *ctx, const struct hf_http_req *req,
			struct hf_http_resp *resp)
{
	struct hf_srv *s = ctx;
	struct hf_buf b = HF_BUF_INIT;

	(void)req;
	pthread_mutex_lock(&s->mu);
	render_state(s, &b);
	hf_dr_stream_metrics(s, &b);
	pthread_mutex_unlock(&s->mu);
	render_api(s->api_metrics, &b);
	hf_autoscale_metrics(&b);
	hf_remotes_metrics(&b);
	hf_dr_metrics(&b);
	hf_http_text(resp, 200, "text/plain; version=0.0.4", hf_buf_str(&b),
		     b.len);
	hf_buf_release(&b);
}
