/*
 * main.c - the holdfast binary: one table of verbs, each a thin handler in
 * its module (cli/ for everything an operator types).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int main(int argc, char **argv)
{
	return hf_cli_main(argc, argv);
}
