/*
 * api_doc.h - the operator HTTP API's reference (docs/api.md), written from
 * the server's route table (api.c: method, pattern, auth flags, query keys)
 * and a table of descriptions kept beside it (api_doc.c: what a route does,
 * its request and response shapes, its errors), keyed by method and
 * pattern. Error statuses come from common/err.h's X-macro.
 *
 * Shapes are JSON whose string values name types: "string", "integer",
 * "number", "boolean", "null", "object" (any object), "any", several joined
 * with '|', optionally followed by a comment in parentheses. A key ending
 * in '?' may be absent; a key "<name>" stands for any number of keys; a
 * key "..." allows keys not listed; an array holds elements of its one
 * element's shape. Tests compare live answers with these shapes.
 */
#ifndef HF_SERVER_API_DOC_H
#define HF_SERVER_API_DOC_H

#include <stddef.h>
#include <stdio.h>

struct hf_http_route;

/*
 * Checks a route table against the descriptions: 0, or HF_EINVAL with a
 * sentence in *err (the caller frees it) naming the first route or
 * description at fault (see hf_api_doc_write).
 */
int hf_api_doc_check(const struct hf_http_route *routes, size_t n,
		     char **err);

/*
 * Writes docs/api.md to f. Fails (HF_EINVAL, with a sentence in *err that
 * the caller frees) when a route has no description, a description has no
 * route, a route's query keys and its description's differ, a shape is not
 * JSON or an error name is unknown: the reference is then out of date.
 */
int hf_api_doc_write(FILE *f, char **err);

/*
 * Writes the same reference as one JSON array (one object per route:
 * method, pattern, role, query, request, status, content_type, response,
 * errors), for tests that check live answers against it.
 */
int hf_api_doc_write_json(FILE *f, char **err);

#endif
