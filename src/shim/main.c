/*
 * main.c - the holdfast-shim program: one per task, started by the agent
 * (shim.h). Built from src/shim/ and the libc-only parts of src/common/
 * and src/task/, and linked with libc alone (the Makefile's SHIM_SRCS):
 * statically against musl in the release build, so a node running a
 * thousand tasks maps one small program a thousand times rather than the
 * whole of holdfast, or glibc.
 */
#include "shim/shim.h"

int main(int argc, char **argv)
{
	return hf_shim_main(argc, argv);
}
