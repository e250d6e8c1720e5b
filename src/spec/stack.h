/*
 * stack.h - a stack file: several services, each a spec with options, and
 * the order they depend on each other in.
 *
 *   stack: dropbox
 *   services:
 *     db:
 *       spec: postgresql.yml          # relative to the stack file
 *       options: {DB_PASSWORD: "..."}
 *     api:
 *       spec: api.yml
 *       depends-on: [db]
 *       options:
 *         DB_ADDRESS: "{{services.db.endpoints.postgres}}"
 *
 * A service's name in the cluster is its key (or its `name:`), over the
 * spec's own. An option may name another service's advertised port,
 * `{{services.X.endpoints.P}}` (its tasks' "ip:port" list, comma
 * separated; `.dns` for "host:port"), or its name, `{{services.X.name}}`;
 * naming X makes the service depend on X. Parsing checks the file alone
 * (keys, names, dependencies, cycles); whether X's spec advertises P is
 * checked once the specs are loaded (hf_stack_check_endpoints).
 */
#ifndef HF_SPEC_STACK_H
#define HF_SPEC_STACK_H

#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"
#include "spec/spec.h"

/* More services than this in one file is an error. */
#define HF_STACK_MAX_SERVICES 200

/* A reference to another service in an option's value. */
struct hf_stack_ref {
	char *option;   /* the option holding it */
	char *service;  /* the key of the service it names */
	char *endpoint; /* the advertised port; NULL for .name */
	bool dns;       /* .dns: host names, not addresses */
	struct hf_pos pos;
};

struct hf_stack_service {
	char *key;   /* as written under services: */
	char *name;  /* the service's name in the cluster */
	char *spec;  /* spec path as written, relative to the stack file */
	struct hf_kvlist options;    /* as written; references unrendered */
	struct hf_strlist depends_on; /* keys, given and implied by refs */
	struct {
		struct hf_stack_ref *items;
		size_t len, cap;
	} refs;
	struct hf_pos pos;      /* its key */
	struct hf_pos spec_pos; /* its spec: value */
};

struct hf_stack {
	char *name;
	char *file; /* for messages; may be NULL */
	struct {
		struct hf_stack_service *items;
		size_t len, cap;
	} services;
	/* Indexes into services: every service after those it depends on. */
	size_t *order;
};

/*
 * Parses and checks a stack file. 0 with *out, or HF_ESPEC with every
 * reason in diags (file:line:col) and *out NULL.
 */
int hf_stack_parse(const char *text, size_t len, const char *file,
		   struct hf_stack **out, struct hf_diags *diags);
void hf_stack_free(struct hf_stack *st);

/* The service of key, or NULL. */
const struct hf_stack_service *hf_stack_find(const struct hf_stack *st,
					     const char *key);

/*
 * Checks every endpoint reference: ports(arg, key) gives the advertised
 * port names of service key's spec (NULL when its spec did not load: its
 * references are not checked). Adds an error per unknown port; returns
 * HF_ESPEC if it added any.
 */
int hf_stack_check_endpoints(const struct hf_stack *st,
			     const struct hf_strlist *(*ports)(void *arg,
							       const char *key),
			     void *arg, struct hf_diags *diags);

/*
 * The options of sv with every reference filled in by value(arg, ref): a
 * new string, or NULL when it is not known yet (then *missing, when not
 * NULL, gets "services.X.endpoints.P", and -1 is returned). 0 on success.
 */
int hf_stack_render_options(const struct hf_stack_service *sv,
			    char *(*value)(void *arg,
					   const struct hf_stack_ref *ref),
			    void *arg, struct hf_kvlist *out, char **missing);

/*
 * A stand-in for any reference (arg: the stack): the named service's name,
 * or "127.0.0.1:1" ("localhost:1" for .dns) for an endpoint. What checking
 * a spec with its options needs before any endpoint exists.
 */
char *hf_stack_placeholder(void *arg, const struct hf_stack_ref *ref);

/* What each service's spec advertises, as its specs are checked. */
struct hf_stack_ports {
	const struct hf_stack *st;
	struct hf_strlist *of; /* per service, by index */
	bool *loaded;          /* its spec loaded */
};
void hf_stack_ports_init(struct hf_stack_ports *p, const struct hf_stack *st);
/* Service i's spec loaded: its advertised ports are known. */
void hf_stack_ports_add(struct hf_stack_ports *p, size_t i,
			const struct hf_spec *spec);
/* hf_stack_check_endpoints against the ports known. */
int hf_stack_ports_check(struct hf_stack_ports *p, struct hf_diags *diags);
void hf_stack_ports_release(struct hf_stack_ports *p);

/* The names of the ports spec's tasks advertise, each once, in order. */
void hf_spec_advertised_ports(const struct hf_spec *spec,
			      struct hf_strlist *out);

#endif
