/*
 * plans.c - the plans a spec runs, built as the SDK builds them: explicit
 * steps expanded per pod instance, default steps where a phase gives none,
 * and a generated deploy plan when the spec has no `deploy`.
 */
#include <stdlib.h>
#include <string.h>

#include "spec/internal.h"

static void step_add(struct hf_plan_phase_def *ph, const char *pod,
		     int64_t index, const struct hf_strlist *tasks)
{
	struct hf_plan_step_def *st = HF_VEC_PUSH(&ph->steps);
	struct hf_buf name = HF_BUF_INIT;

	hf_buf_addf(&name, "%s-%lld:[", pod, (long long)index);
	for (size_t i = 0; i < tasks->len; i++) {
		hf_buf_addf(&name, "%s%s", i ? ", " : "", tasks->items[i]);
		hf_strlist_push(&st->tasks, tasks->items[i]);
	}
	hf_buf_addc(&name, ']');
	st->name = hf_buf_detach(&name);
	st->pod = hf_xstrdup(pod);
	st->index = index;
}

/*
 * Default steps for one instance: all of the pod's tasks, in declaration
 * order, in as few steps as possible without two tasks of one resource set
 * in the same step (they take turns: a `format` before the `server` that
 * uses its volume).
 */
static void default_steps(struct hf_plan_phase_def *ph,
			  const struct hf_spec_pod *pod, int64_t index)
{
	struct hf_strlist group = {0};
	HF_VEC(size_t) sets = {0};

	for (size_t t = 0; t < pod->tasks.len; t++) {
		const struct hf_spec_task *task = &pod->tasks.items[t];
		bool clash = false;

		if (strcmp(task->name, HF_DECOMMISSION_TASK) == 0 ||
		    hf_strlist_has(&pod->replace_tasks, task->name))
			continue; /* runs only on removal or replacement */

		for (size_t k = 0; k < sets.len; k++)
			if (sets.items[k] == task->resource_set)
				clash = true;
		if (clash) {
			step_add(ph, pod->name, index, &group);
			hf_strlist_release(&group);
			sets.len = 0;
		}
		hf_strlist_push(&group, task->name);
		*HF_VEC_PUSH(&sets) = task->resource_set;
	}
	if (group.len)
		step_add(ph, pod->name, index, &group);
	hf_strlist_release(&group);
	HF_VEC_FREE(&sets);
}

static void expand_phase(struct hf_plan_phase_def *ph,
			 const struct hf_spec_pod *pod,
			 const struct hf_spec_phase *src)
{
	for (int64_t i = 0; i < pod->count; i++) {
		bool explicit_entry = false;

		if (!src || !src->has_steps) {
			default_steps(ph, pod, i);
			continue;
		}
		for (size_t e = 0; e < src->steps.len; e++)
			if (src->steps.items[e].index == i)
				explicit_entry = true;
		for (size_t e = 0; e < src->steps.len; e++) {
			const struct hf_spec_step_entry *se = &src->steps.items[e];

			if (se->index != (explicit_entry ? i : -1))
				continue;
			for (size_t g = 0; g < se->groups.len; g++)
				step_add(ph, pod->name, i, &se->groups.items[g]);
		}
	}
}

static enum hf_plan_kind kind_of(const char *name)
{
	if (strcmp(name, "deploy") == 0)
		return HF_PLAN_DEPLOY;
	if (strcmp(name, "update") == 0)
		return HF_PLAN_UPDATE;
	return HF_PLAN_CUSTOM;
}

void hf_spec_build_plans(const struct hf_spec *spec, struct hf_plan_defs *out)
{
	if (!hf_spec_find_plan(spec, "deploy")) {
		struct hf_plan_def *p = HF_VEC_PUSH(out);

		p->name = hf_xstrdup("deploy");
		p->kind = HF_PLAN_DEPLOY;
		p->generated = true;
		p->strategy = HF_STRATEGY_SERIAL;
		for (size_t i = 0; i < spec->pods.len; i++) {
			const struct hf_spec_pod *pod = &spec->pods.items[i];
			struct hf_plan_phase_def *ph = HF_VEC_PUSH(&p->phases);

			ph->name = hf_xstrdup(pod->name);
			ph->pod = hf_xstrdup(pod->name);
			ph->strategy = HF_STRATEGY_SERIAL;
			expand_phase(ph, pod, NULL);
		}
	}
	for (size_t i = 0; i < spec->plans.len; i++) {
		const struct hf_spec_plan *src = &spec->plans.items[i];
		struct hf_plan_def *p = HF_VEC_PUSH(out);

		p->name = hf_xstrdup(src->name);
		p->kind = kind_of(src->name);
		p->strategy = src->strategy;
		p->healthy_deadline = src->healthy_deadline;
		p->auto_revert = src->auto_revert;
		for (size_t k = 0; k < src->phases.len; k++) {
			const struct hf_spec_phase *sp = &src->phases.items[k];
			const struct hf_spec_pod *pod =
			    sp->pod ? hf_spec_find_pod(spec, sp->pod) : NULL;
			struct hf_plan_phase_def *ph = HF_VEC_PUSH(&p->phases);

			ph->name = hf_xstrdup(sp->name);
			ph->pod = hf_xstrdup(sp->pod ? sp->pod : "");
			ph->strategy = sp->strategy;
			/* A phase naming an unknown pod has no steps. */
			if (pod)
				expand_phase(ph, pod, sp);
		}
	}
}

void hf_plan_defs_release(struct hf_plan_defs *defs)
{
	for (size_t i = 0; i < defs->len; i++) {
		struct hf_plan_def *p = &defs->items[i];

		free(p->name);
		for (size_t k = 0; k < p->phases.len; k++) {
			struct hf_plan_phase_def *ph = &p->phases.items[k];

			free(ph->name);
			free(ph->pod);
			for (size_t s = 0; s < ph->steps.len; s++) {
				free(ph->steps.items[s].name);
				free(ph->steps.items[s].pod);
				hf_strlist_release(&ph->steps.items[s].tasks);
			}
			HF_VEC_FREE(&ph->steps);
		}
		HF_VEC_FREE(&p->phases);
	}
	HF_VEC_FREE(defs);
}

const struct hf_plan_def *hf_plan_defs_find(const struct hf_plan_defs *defs,
					    const char *name)
{
	for (size_t i = 0; i < defs->len; i++)
		if (strcmp(defs->items[i].name, name) == 0)
			return &defs->items[i];
	return NULL;
}

const char *hf_spec_update_plan_name(const struct hf_spec *spec,
				     bool first_deploy)
{
	if (!first_deploy && hf_spec_find_plan(spec, "update"))
		return "update";
	return "deploy";
}
