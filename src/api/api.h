/*
 * api.h - the HTTP API: one table of routes (method, path, handler, flags),
 * JSON bodies, errors as {"error": code, "message": text}.
 *
 * Filled in with the runtime and the operator surface (issues 3 and 4).
 */
#ifndef HF_API_API_H
#define HF_API_API_H
#endif
