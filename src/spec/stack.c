/*
 * stack.c - the stack file (stack.h): parsed with the spec's YAML tree so
 * that every error names its file:line:col, then its dependencies checked
 * and ordered.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "spec/internal.h"
#include "spec/stack.h"

static const char *const top_keys[] = {"stack", "services", NULL};
static const char *const svc_keys[] = {"spec", "name", "options",
				       "depends-on", NULL};

static bool known(const char *const *keys, const char *k)
{
	for (size_t i = 0; keys[i]; i++)
		if (strcmp(keys[i], k) == 0)
			return true;
	return false;
}

/* Unknown keys and duplicates of a map are errors at their key. */
static void check_keys(struct hf_pctx *c, const struct hf_ynode *map,
		       const char *const *keys)
{
	for (size_t i = 0; i < map->npairs; i++) {
		const struct hf_ynode *k = map->pairs[i].key;

		if (!known(keys, k->str))
			hf_pctx_err(c, k, "unknown key '%s'", k->str);
		for (size_t j = 0; j < i; j++)
			if (strcmp(map->pairs[j].key->str, k->str) == 0) {
				hf_pctx_err(c, k, "'%s' is given twice",
					    k->str);
				break;
			}
	}
}

static struct hf_pos pos_of(const struct hf_ynode *n)
{
	return (struct hf_pos){n ? n->line : 0, n ? n->col : 0};
}

/*
 * One "{{...}}" of an option at s (s points past "{{", end at "}}"):
 * fills ref (owned strings) or returns why it is no reference.
 */
static const char *parse_ref(const char *s, const char *end,
			     struct hf_stack_ref *ref)
{
	char *body, *p, *parts[5] = {0};
	size_t n = 0;
	const char *why = NULL;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	body = hf_xstrndup(s, (size_t)(end - s));
	for (p = body; n < 5;) {
		parts[n++] = p;
		p = strchr(p, '.');
		if (!p)
			break;
		*p++ = '\0';
	}
	if (p || n < 3 || strcmp(parts[0], "services") != 0 || !*parts[1])
		why = "a stack's option may only name another service: "
		      "{{services.NAME.endpoints.PORT}}, "
		      "{{services.NAME.endpoints.PORT.dns}} or "
		      "{{services.NAME.name}}";
	else if (n == 3 && strcmp(parts[2], "name") == 0)
		;
	else if ((n == 4 || (n == 5 && strcmp(parts[4], "dns") == 0)) &&
		 strcmp(parts[2], "endpoints") == 0 && *parts[3])
		ref->endpoint = hf_xstrdup(parts[3]), ref->dns = n == 5;
	else
		why = "a service's value is {{services.NAME.endpoints.PORT}}, "
		      "{{services.NAME.endpoints.PORT.dns}} or "
		      "{{services.NAME.name}}";
	if (!why)
		ref->service = hf_xstrdup(parts[1]);
	free(body);
	return why;
}

static void ref_release(struct hf_stack_ref *r)
{
	free(r->option);
	free(r->service);
	free(r->endpoint);
}

/* The references of option key's value v, appended to sv->refs. */
static void scan_refs(struct hf_pctx *c, struct hf_stack_service *sv,
		      const char *key, const struct hf_ynode *v)
{
	const char *s = v->str, *open, *close;

	while ((open = strstr(s, "{{"))) {
		struct hf_stack_ref ref = {0};
		const char *why;

		close = strstr(open + 2, "}}");
		if (!close) {
			hf_pctx_err(c, v, "'{{' without '}}' in option %s",
				    key);
			return;
		}
		why = parse_ref(open + 2, close, &ref);
		if (why) {
			hf_pctx_err(c, v, "%s", why);
			ref_release(&ref);
		} else {
			ref.option = hf_xstrdup(key);
			ref.pos = pos_of(v);
			*HF_VEC_PUSH(&sv->refs) = ref;
		}
		s = close + 2;
	}
}

static void parse_options(struct hf_pctx *c, struct hf_stack_service *sv,
			  const struct hf_ynode *n)
{
	if (hf_ynode_is_null(n) || !hf_pctx_want_map(c, n))
		return;
	for (size_t i = 0; i < n->npairs; i++) {
		const struct hf_ynode *k = n->pairs[i].key, *v = n->pairs[i].value;
		size_t old = hf_pctx_push(c, k->str);

		if (!hf_is_env_name(k->str))
			hf_pctx_err(c, k,
				    "option '%s' is not a variable name "
				    "(letters, digits and '_', not starting "
				    "with a digit)",
				    k->str);
		else if (hf_kvlist_get(&sv->options, k->str))
			hf_pctx_err(c, k, "option '%s' is given twice", k->str);
		else if (v->kind != HF_Y_SCALAR)
			hf_pctx_err(c, v,
				    "option '%s' must be a string, a number "
				    "or a boolean",
				    k->str);
		else {
			hf_kvlist_set(&sv->options, k->str,
				      hf_ynode_is_null(v) && v->plain ? ""
								      : v->str);
			scan_refs(c, sv, k->str, v);
		}
		hf_pctx_pop(c, old);
	}
}

static void parse_depends(struct hf_pctx *c, struct hf_stack_service *sv,
			  const struct hf_ynode *n)
{
	if (hf_ynode_is_null(n))
		return;
	if (n->kind != HF_Y_SEQ) {
		hf_pctx_err(c, n, "'depends-on' must be a list of the "
				  "stack's service names");
		return;
	}
	for (size_t i = 0; i < n->nitems; i++) {
		const struct hf_ynode *it = n->items[i];
		size_t old = hf_pctx_push_idx(c, i);

		if (it->kind != HF_Y_SCALAR || !*it->str)
			hf_pctx_err(c, it, "a dependency is a service name");
		else if (hf_strlist_has(&sv->depends_on, it->str))
			hf_pctx_err(c, it, "'%s' is listed twice", it->str);
		else
			hf_strlist_push(&sv->depends_on, it->str);
		hf_pctx_pop(c, old);
	}
}

static void parse_service(struct hf_pctx *c, struct hf_stack *st,
			  const struct hf_ypair *pr)
{
	const struct hf_ynode *n = pr->value, *v;
	struct hf_stack_service *sv;

	if (!hf_spec_is_label(pr->key->str, false)) {
		hf_pctx_err(c, pr->key,
			    "service '%s' must be lowercase letters, digits "
			    "and '-', starting with a letter",
			    pr->key->str);
		return;
	}
	if (hf_stack_find(st, pr->key->str)) {
		hf_pctx_err(c, pr->key, "service '%s' is given twice",
			    pr->key->str);
		return;
	}
	sv = HF_VEC_PUSH(&st->services);
	memset(sv, 0, sizeof(*sv));
	sv->key = hf_xstrdup(pr->key->str);
	sv->pos = pos_of(pr->key);
	sv->name = hf_xstrdup(sv->key);
	if (!hf_pctx_want_map(c, n))
		return;
	check_keys(c, n, svc_keys);
	v = hf_ynode_get(n, "spec");
	if (!v)
		hf_pctx_err(c, pr->key,
			    "service '%s' needs 'spec': its spec file, "
			    "relative to the stack file",
			    sv->key);
	else if (v->kind != HF_Y_SCALAR || !*v->str)
		hf_pctx_err(c, v, "'spec' is the path of a spec file");
	else {
		sv->spec = hf_xstrdup(v->str);
		sv->spec_pos = pos_of(v);
	}
	v = hf_ynode_get(n, "name");
	if (v && (v->kind != HF_Y_SCALAR ||
		  !hf_spec_service_name_ok(v->str))) {
		size_t old = hf_pctx_push(c, "name");

		hf_pctx_err(c, v,
			    "a service name is lowercase letters, digits and "
			    "'-' (segments may be separated by '/', each "
			    "starting with a letter), without '__'");
		hf_pctx_pop(c, old);
	}
	if (v && v->kind == HF_Y_SCALAR) {
		free(sv->name);
		sv->name = hf_xstrdup(v->str);
	}
	if ((v = hf_ynode_get(n, "options"))) {
		size_t old = hf_pctx_push(c, "options");

		parse_options(c, sv, v);
		hf_pctx_pop(c, old);
	}
	if ((v = hf_ynode_get(n, "depends-on"))) {
		size_t old = hf_pctx_push(c, "depends-on");

		parse_depends(c, sv, v);
		hf_pctx_pop(c, old);
	}
}

/* The node of dependency dep in service key's depends-on, for positions. */
static const struct hf_ynode *dep_node(const struct hf_ynode *services,
				       const char *key, const char *dep)
{
	const struct hf_ynode *svc = hf_ynode_get(services, key), *list;

	list = svc && svc->kind == HF_Y_MAP ? hf_ynode_get(svc, "depends-on")
					    : NULL;
	for (size_t i = 0; list && list->kind == HF_Y_SEQ && i < list->nitems;
	     i++)
		if (list->items[i]->kind == HF_Y_SCALAR &&
		    strcmp(list->items[i]->str, dep) == 0)
			return list->items[i];
	return svc;
}

static size_t index_of(const struct hf_stack *st, const char *key)
{
	for (size_t i = 0; i < st->services.len; i++)
		if (strcmp(st->services.items[i].key, key) == 0)
			return i;
	return (size_t)-1;
}

/*
 * Dependencies name services of the stack, references add theirs, and
 * the services are ordered; a cycle is an error at the dependency that
 * closes it, with the whole cycle in words.
 */
static void check_deps(struct hf_pctx *c, struct hf_stack *st,
		       const struct hf_ynode *services)
{
	size_t n = st->services.len, done = 0;
	bool *placed;
	bool bad = false;

	for (size_t i = 0; i < n; i++) {
		struct hf_stack_service *sv = &st->services.items[i];

		for (size_t d = 0; d < sv->depends_on.len; d++) {
			const char *dep = sv->depends_on.items[d];

			if (index_of(st, dep) != (size_t)-1 &&
			    strcmp(dep, sv->key) != 0)
				continue;
			hf_buf_reset(&c->path);
			hf_buf_addf(&c->path, "services.%s.depends-on",
				    sv->key);
			hf_pctx_err(c, dep_node(services, sv->key, dep),
				    strcmp(dep, sv->key) == 0
					? "service '%s' cannot depend on "
					  "itself"
					: "service '%s' is not in the stack",
				    dep);
			bad = true;
		}
		for (size_t r = 0; r < sv->refs.len; r++) {
			const struct hf_stack_ref *ref = &sv->refs.items[r];

			if (strcmp(ref->service, sv->key) == 0 ||
			    index_of(st, ref->service) == (size_t)-1) {
				hf_buf_reset(&c->path);
				hf_buf_addf(&c->path, "services.%s.options.%s",
					    sv->key, ref->option);
				hf_pctx_err_pos(
				    c, ref->pos, c->path.data,
				    strcmp(ref->service, sv->key) == 0
					? "option %s names service '%s' "
					  "itself"
					: "option %s names service '%s', "
					  "which is not in the stack",
				    ref->option, ref->service);
				bad = true;
			} else if (!hf_strlist_has(&sv->depends_on,
						   ref->service)) {
				hf_strlist_push(&sv->depends_on, ref->service);
			}
		}
	}
	hf_buf_reset(&c->path);
	if (bad || c->diags->errors)
		return;
	placed = hf_xcalloc(n ? n : 1, sizeof(*placed));
	st->order = hf_xcalloc(n ? n : 1, sizeof(*st->order));
	while (done < n) {
		bool progress = false;

		for (size_t i = 0; i < n; i++) {
			const struct hf_stack_service *sv = &st->services.items[i];
			bool ready = !placed[i];

			for (size_t d = 0; ready && d < sv->depends_on.len; d++)
				ready = placed[index_of(st,
							sv->depends_on.items[d])];
			if (!ready)
				continue;
			placed[i] = true;
			st->order[done++] = i;
			progress = true;
		}
		if (!progress)
			break;
	}
	if (done < n) {
		/* Walk from an unplaced service along unplaced deps to a loop. */
		size_t *seen = hf_xcalloc(n, sizeof(*seen)), at = 0, steps = 0;
		struct hf_buf cyc = HF_BUF_INIT;
		size_t start, from = 0;

		while (placed[at])
			at++;
		while (!seen[at]) {
			const struct hf_stack_service *sv = &st->services.items[at];

			seen[at] = ++steps;
			for (size_t d = 0; d < sv->depends_on.len; d++) {
				size_t j = index_of(st, sv->depends_on.items[d]);

				if (!placed[j]) {
					from = at;
					at = j;
					break;
				}
			}
		}
		start = at;
		hf_buf_addf(&cyc, "%s", st->services.items[start].key);
		do {
			const struct hf_stack_service *sv = &st->services.items[at];

			for (size_t d = 0; d < sv->depends_on.len; d++) {
				size_t j = index_of(st, sv->depends_on.items[d]);

				if (!placed[j] && seen[j]) {
					from = at;
					at = j;
					break;
				}
			}
			hf_buf_addf(&cyc, " -> %s", st->services.items[at].key);
		} while (at != start && cyc.len < 4096);
		{
			const struct hf_stack_service *fs =
			    &st->services.items[from];
			const char *to = st->services.items[at].key;
			const struct hf_stack_ref *by = NULL;

			/* A dependency an option implies: point at it. */
			for (size_t r = 0; r < fs->refs.len && !by; r++)
				if (strcmp(fs->refs.items[r].service, to) == 0)
					by = &fs->refs.items[r];
			if (by && dep_node(services, fs->key, to) ==
				      hf_ynode_get(services, fs->key)) {
				hf_buf_addf(&c->path, "services.%s.options.%s",
					    fs->key, by->option);
				hf_pctx_err_pos(c, by->pos, c->path.data,
						"dependency cycle: %s (option "
						"%s names %s)",
						cyc.data, by->option, to);
			} else {
				hf_buf_addf(&c->path, "services.%s.depends-on",
					    fs->key);
				hf_pctx_err(c, dep_node(services, fs->key, to),
					    "dependency cycle: %s", cyc.data);
			}
		}
		hf_buf_reset(&c->path);
		hf_buf_release(&cyc);
		free(seen);
	}
	free(placed);
}

int hf_stack_parse(const char *text, size_t len, const char *file,
		   struct hf_stack **out, struct hf_diags *diags)
{
	struct hf_ynode *root = NULL;
	struct hf_pctx c = {.file = file, .diags = diags};
	struct hf_stack *st;
	const struct hf_ynode *n, *services;
	size_t errors = diags->errors;
	int rc;

	*out = NULL;
	rc = hf_ytree_parse(text, len, file, NULL, &root, diags);
	if (rc)
		return HF_ESPEC;
	st = hf_xcalloc(1, sizeof(*st));
	st->file = file ? hf_xstrdup(file) : NULL;
	if (!root || hf_ynode_is_null(root)) {
		hf_pctx_err(&c, NULL, "the stack file is empty");
		goto out;
	}
	if (!hf_pctx_want_map(&c, root))
		goto out;
	check_keys(&c, root, top_keys);
	n = hf_ynode_get(root, "stack");
	if (!n)
		hf_pctx_err(&c, root, "a stack file needs 'stack': its name");
	else if (n->kind != HF_Y_SCALAR || !hf_spec_is_label(n->str, false))
		hf_pctx_err(&c, n,
			    "the stack's name must be lowercase letters, "
			    "digits and '-', starting with a letter");
	else
		st->name = hf_xstrdup(n->str);
	services = hf_ynode_get(root, "services");
	if (!services || hf_ynode_is_null(services)) {
		hf_pctx_err(&c, services ? services : root,
			    "a stack needs 'services': a map of service name "
			    "to its spec and options");
		goto out;
	}
	hf_pctx_push(&c, "services");
	if (!hf_pctx_want_map(&c, services))
		goto out;
	for (size_t i = 0; i < services->npairs; i++) {
		size_t old;

		if (i == HF_STACK_MAX_SERVICES) {
			hf_pctx_err(&c, services->pairs[i].key,
				    "a stack holds at most %d services",
				    HF_STACK_MAX_SERVICES);
			break;
		}
		old = hf_pctx_push(&c, services->pairs[i].key->str);
		parse_service(&c, st, &services->pairs[i]);
		hf_pctx_pop(&c, old);
	}
	hf_buf_reset(&c.path);
	if (!st->services.len && services->kind == HF_Y_MAP)
		hf_pctx_err(&c, services, "a stack needs at least one service");
	for (size_t i = 0; i < st->services.len; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(st->services.items[i].name,
				   st->services.items[j].name) == 0) {
				hf_pctx_err_pos(&c, st->services.items[i].pos,
						"services",
						"services '%s' and '%s' have "
						"the same name '%s'",
						st->services.items[j].key,
						st->services.items[i].key,
						st->services.items[i].name);
				break;
			}
	if (diags->errors == errors)
		check_deps(&c, st, services);
out:
	hf_buf_release(&c.path);
	hf_ynode_free(root);
	if (diags->errors > errors) {
		hf_stack_free(st);
		return HF_ESPEC;
	}
	*out = st;
	return 0;
}

void hf_stack_free(struct hf_stack *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->services.len; i++) {
		struct hf_stack_service *sv = &st->services.items[i];

		free(sv->key);
		free(sv->name);
		free(sv->spec);
		hf_kvlist_release(&sv->options);
		hf_strlist_release(&sv->depends_on);
		for (size_t r = 0; r < sv->refs.len; r++)
			ref_release(&sv->refs.items[r]);
		free(sv->refs.items);
	}
	free(st->services.items);
	free(st->order);
	free(st->name);
	free(st->file);
	free(st);
}

const struct hf_stack_service *hf_stack_find(const struct hf_stack *st,
					     const char *key)
{
	size_t i = index_of(st, key);

	return i == (size_t)-1 ? NULL : &st->services.items[i];
}

int hf_stack_check_endpoints(const struct hf_stack *st,
			     const struct hf_strlist *(*ports)(void *arg,
							       const char *key),
			     void *arg, struct hf_diags *diags)
{
	size_t errors = diags->errors;
	struct hf_buf list = HF_BUF_INIT;

	for (size_t i = 0; i < st->services.len; i++) {
		const struct hf_stack_service *sv = &st->services.items[i];

		for (size_t r = 0; r < sv->refs.len; r++) {
			const struct hf_stack_ref *ref = &sv->refs.items[r];
			const struct hf_strlist *have;
			char *path;

			if (!ref->endpoint)
				continue;
			have = ports(arg, ref->service);
			if (!have || hf_strlist_has(have, ref->endpoint))
				continue;
			path = hf_xasprintf("services.%s.options.%s", sv->key,
					    ref->option);
			if (!have->len)
				hf_buf_addf(&list, "no port");
			for (size_t k = 0; k < have->len; k++)
				hf_buf_addf(&list, "%s%s", k ? ", " : "only: ",
					    have->items[k]);
			hf_diags_add(diags, HF_DIAG_ERROR, st->file,
				     ref->pos.line, ref->pos.col, path,
				     "option %s names endpoint '%s' of service "
				     "'%s', whose spec advertises %s",
				     ref->option, ref->endpoint, ref->service,
				     list.data);
			hf_buf_reset(&list);
			free(path);
		}
	}
	hf_buf_release(&list);
	return diags->errors > errors ? HF_ESPEC : 0;
}

int hf_stack_render_options(const struct hf_stack_service *sv,
			    char *(*value)(void *arg,
					   const struct hf_stack_ref *ref),
			    void *arg, struct hf_kvlist *out, char **missing)
{
	for (size_t i = 0; i < sv->options.len; i++) {
		const char *s = sv->options.items[i].value, *open, *close;
		struct hf_buf b = HF_BUF_INIT;

		while ((open = strstr(s, "{{")) &&
		       (close = strstr(open + 2, "}}"))) {
			struct hf_stack_ref ref = {0};
			char *v = NULL;

			hf_buf_add(&b, s, (size_t)(open - s));
			if (!parse_ref(open + 2, close, &ref))
				v = value(arg, &ref);
			if (!v) {
				if (missing)
					*missing = hf_xstrndup(
					    open + 2, (size_t)(close - open - 2));
				ref_release(&ref);
				hf_buf_release(&b);
				return -1;
			}
			hf_buf_addf(&b, "%s", v);
			free(v);
			ref_release(&ref);
			s = close + 2;
		}
		hf_buf_addf(&b, "%s", s);
		hf_kvlist_set(out, sv->options.items[i].key,
			      b.data ? b.data : "");
		hf_buf_release(&b);
	}
	return 0;
}

void hf_spec_advertised_ports(const struct hf_spec *spec,
			      struct hf_strlist *out)
{
	for (size_t p = 0; p < spec->pods.len; p++) {
		const struct hf_spec_pod *pod = &spec->pods.items[p];

		for (size_t r = 0; r < pod->resource_sets.len; r++) {
			const struct hf_spec_resource_set *rs =
			    &pod->resource_sets.items[r];

			for (size_t k = 0; k < rs->ports.len; k++)
				if (rs->ports.items[k].advertise &&
				    !hf_strlist_has(out, rs->ports.items[k].name))
					hf_strlist_push(out,
							rs->ports.items[k].name);
		}
	}
}

char *hf_stack_placeholder(void *arg, const struct hf_stack_ref *ref)
{
	const struct hf_stack_service *to = hf_stack_find(arg, ref->service);

	if (!ref->endpoint)
		return hf_xstrdup(to ? to->name : ref->service);
	return hf_xstrdup(ref->dns ? "localhost:1" : "127.0.0.1:1");
}

void hf_stack_ports_init(struct hf_stack_ports *p, const struct hf_stack *st)
{
	p->st = st;
	p->of = hf_xcalloc(st->services.len + 1, sizeof(*p->of));
	p->loaded = hf_xcalloc(st->services.len + 1, sizeof(*p->loaded));
}

void hf_stack_ports_add(struct hf_stack_ports *p, size_t i,
			const struct hf_spec *spec)
{
	hf_spec_advertised_ports(spec, &p->of[i]);
	p->loaded[i] = true;
}

static const struct hf_strlist *ports_of(void *arg, const char *key)
{
	struct hf_stack_ports *p = arg;
	size_t i = index_of(p->st, key);

	return i != (size_t)-1 && p->loaded[i] ? &p->of[i] : NULL;
}

int hf_stack_ports_check(struct hf_stack_ports *p, struct hf_diags *diags)
{
	return hf_stack_check_endpoints(p->st, ports_of, p, diags);
}

void hf_stack_ports_release(struct hf_stack_ports *p)
{
	for (size_t i = 0; p->st && i < p->st->services.len; i++)
		hf_strlist_release(&p->of[i]);
	free(p->of);
	free(p->loaded);
	memset(p, 0, sizeof(*p));
}
