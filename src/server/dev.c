/*
 * dev.c - `holdfast dev`: a server and one agent on this machine, each its
 * own process running the same code as `holdfast server` and `holdfast
 * agent`, talking the same protocol over loopback. dev supervises both:
 * a child that dies is started again; SIGINT/SIGTERM stops both (tasks
 * keep running under their shims and are picked up by the next dev).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "server/server.h"
#include "server/state.h"

struct child {
	const char *name;
	char **argv;
	pid_t pid;
	int64_t started;
	unsigned restarts;
};

static pid_t spawn(struct child *c, const sigset_t *oldmask)
{
	pid_t pid = fork();

	if (pid == 0) {
		sigprocmask(SIG_SETMASK, oldmask, NULL);
		execv(c->argv[0], c->argv);
		fprintf(stderr, "holdfast dev: cannot run %s: %s\n", c->argv[0],
			strerror(errno));
		_exit(127);
	}
	if (pid > 0) {
		c->pid = pid;
		c->started = hf_now_ms();
	}
	return pid;
}

static char *self_exe(void)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return hf_xstrdup(buf);
}

static int mkdir_p(const char *dir)
{
	char *copy = hf_xstrdup(dir);
	int rc = 0;

	for (char *p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0750) < 0 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (mkdir(copy, 0750) < 0 && errno != EEXIST)
		rc = -1;
	free(copy);
	return rc;
}

/* The parser's table, and what `holdfast help dev` prints. */
static const struct hf_cli_flag dev_flags[] = {
    {"--data", "DIR", 'd',
     "the server's store under DIR/server, the agent's sandboxes and "
     "volumes under DIR/agent (default /var/lib/holdfast/dev)"},
    {"--listen", "ADDR", 'l',
     "the API's address and port (default 127.0.0.1:7070)"},
};

const struct hf_cli_flag *hf_dev_flag(size_t i)
{
	return i < HF_ARRAY_LEN(dev_flags) ? &dev_flags[i] : NULL;
}

int hf_dev_main(int argc, char **argv)
{
	struct option longopts[HF_ARRAY_LEN(dev_flags) + 1];
	const char *data = "/var/lib/holdfast/dev";
	const char *listen = "127.0.0.1:7070";
	char *exe, *sdata, *adata, *url, *port;
	char *server_argv[8], *agent_argv[10];
	struct child kids[2];
	sigset_t mask, oldmask;
	int sfd, c, rc = HF_EXIT_OK;
	bool stopping = false;

	hf_cli_longopts(hf_dev_flag, longopts, HF_ARRAY_LEN(longopts));
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'd') {
			data = optarg;
		} else if (c == 'l') {
			listen = optarg;
		} else {
			fprintf(stderr, "holdfast dev: unknown or incomplete "
					"flag %s\n",
				argv[optind - 1]);
			return hf_cli_usage("dev", NULL);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "holdfast dev: unexpected argument '%s'\n",
			argv[optind]);
		return hf_cli_usage("dev", NULL);
	}
	exe = self_exe();
	if (!exe) {
		fprintf(stderr, "holdfast dev: cannot find its own binary\n");
		return HF_EXIT_FAIL;
	}
	sdata = hf_xasprintf("%s/server", data);
	adata = hf_xasprintf("%s/agent", data);
	if (mkdir_p(sdata) || mkdir_p(adata)) {
		fprintf(stderr, "holdfast dev: cannot create %s: %s\n", data,
			strerror(errno));
		return HF_EXIT_FAIL;
	}
	port = strrchr(listen, ':');
	url = hf_xasprintf("http://127.0.0.1:%s", port ? port + 1 : "7070");
	server_argv[0] = exe;
	server_argv[1] = (char *)"server";
	server_argv[2] = (char *)"--data";
	server_argv[3] = sdata;
	server_argv[4] = (char *)"--listen";
	server_argv[5] = (char *)listen;
	server_argv[6] = NULL;
	agent_argv[0] = exe;
	agent_argv[1] = (char *)"agent";
	agent_argv[2] = (char *)"--server";
	agent_argv[3] = url;
	agent_argv[4] = (char *)"--data";
	agent_argv[5] = adata;
	agent_argv[6] = NULL;
	kids[0] = (struct child){"server", server_argv, 0, 0, 0};
	kids[1] = (struct child){"agent", agent_argv, 0, 0, 0};

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	hf_log("dev: data in %s, API on %s", data, url);
	for (int i = 0; i < 2; i++)
		spawn(&kids[i], &oldmask);
	while (kids[0].pid > 0 || kids[1].pid > 0) {
		struct signalfd_siginfo si;
		ssize_t n = read(sfd, &si, sizeof(si));
		pid_t pid;
		int status;

		if (n != (ssize_t)sizeof(si)) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) {
			stopping = true;
			for (int i = 0; i < 2; i++)
				if (kids[i].pid > 0)
					kill(kids[i].pid, SIGTERM);
			continue;
		}
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (int i = 0; i < 2; i++) {
				if (kids[i].pid != pid)
					continue;
				kids[i].pid = 0;
				if (stopping)
					continue;
				hf_log("dev: the %s stopped (%s %d); starting it "
				       "again",
				       kids[i].name,
				       WIFEXITED(status) ? "status" : "signal",
				       WIFEXITED(status) ? WEXITSTATUS(status)
							 : WTERMSIG(status));
				/* Do not spin on a child that cannot start. */
				if (hf_now_ms() - kids[i].started < 2000)
					sleep(++kids[i].restarts > 5 ? 5 : 1);
				spawn(&kids[i], &oldmask);
			}
		}
	}
	close(sfd);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	hf_log("dev: stopped");
	free(exe);
	free(sdata);
	free(adata);
	free(url);
	return rc;
}
