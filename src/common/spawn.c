/*
 * spawn.c - fork and exec with signals blocked around the fork and every
 * failure before exec reported back; see spawn.h. Modelled on libuv's
 * src/unix/process.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/spawn.h"
#include "common/sys.h"
#include "common/util.h"

/*
 * A vfork() child runs on its parent's memory: instrumented code there
 * would leave the sanitizers' shadow of that stack to the parent.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HF_SPAWN_VFORK 0
#else
#define HF_SPAWN_VFORK 1
#endif

/* What the child writes to the pipe when a step fails: one atomic write. */
struct fail {
	int err;
	char what[HF_SPAWN_WHAT_MAX];
};

/* strncat without the libc: only async-signal-safe code in the child. */
static void add(char *dst, size_t cap, const char *s)
{
	size_t n = 0;

	while (n < cap - 1 && dst[n])
		n++;
	while (n < cap - 1 && *s)
		dst[n++] = *s++;
	dst[n] = '\0';
}

static void __attribute__((noreturn))
child_fail(int ep, const char *what, const char *arg, int err)
{
	struct fail f;

	memset(&f, 0, sizeof(f));
	f.err = err;
	add(f.what, sizeof(f.what), what);
	if (arg) {
		add(f.what, sizeof(f.what), " ");
		add(f.what, sizeof(f.what), arg);
	}
	/* Below PIPE_BUF: atomic. If it fails, nobody is listening. */
	if (write(ep, &f, sizeof(f)) < 0) {
	}
	_exit(127);
}

/* Puts src on slot (0-2); src == slot keeps it, without close-on-exec. */
static int put_fd(int src, int slot)
{
	if (src == slot) {
		int fl = fcntl(slot, F_GETFD);

		return fl < 0 ? -1 : fcntl(slot, F_SETFD, fl & ~FD_CLOEXEC);
	}
	return dup2(src, slot) < 0 ? -1 : 0;
}

/* In a child, while every signal is blocked: no handler of the parent. */
static void reset_dispositions(void)
{
	struct sigaction dfl;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
}

static void __attribute__((noreturn))
child(const struct hf_spawn *sp, int ep, int devnull)
{
	static char *const no_env[] = {NULL};
	const char *what = NULL;
	sigset_t none;
	int fds[3] = {sp->in, sp->out, sp->err}, e;

	/* Dispositions first, while every signal is still blocked. */
	reset_dispositions();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (sp->new_session && setsid() < 0)
		child_fail(ep, "start a session", NULL, errno);
	if (!sp->new_session && sp->new_group && setpgid(0, 0) < 0)
		child_fail(ep, "start a process group", NULL, errno);
	for (int i = 0; i < 3; i++)
		if (put_fd(fds[i] >= 0 ? fds[i] : devnull, i) < 0)
			child_fail(ep, "set up stdin, stdout and stderr", NULL,
				   errno);
	if (sp->setup) {
		e = sp->setup(sp->setup_arg, &what);
		if (e)
			child_fail(ep, what ? what : "prepare the child", NULL,
				   e);
	}
	/* ep is close-on-exec and above 2: keep it, close the rest. */
	if ((ep > 3 && hf_sys_close_range(3, (unsigned)ep - 1, 0) < 0) ||
	    hf_sys_close_range((unsigned)ep + 1, ~0U, 0) < 0)
		for (int fd = 3; fd < 65536; fd++)
			if (fd != ep)
				close(fd);
	if (sp->cwd && chdir(sp->cwd) < 0)
		child_fail(ep, "enter", sp->cwd, errno);
	for (char *const *d = sp->direct; d && *d; d++) {
		execve(*d, sp->direct_argv, sp->envp ? sp->envp : no_env);
		if (errno == ENOEXEC)
			break;
	}
	execve(sp->path, sp->argv, sp->envp ? sp->envp : no_env);
	child_fail(ep, "run", sp->path, errno);
}

/*
 * The child's side never returns here. A function of its own, so that no
 * variable of the caller lives across vfork().
 */
static pid_t __attribute__((noinline))
fork_child(const struct hf_spawn *sp, int ep, int devnull)
{
	pid_t p;

#if HF_SPAWN_VFORK
	p = sp->share_memory ? vfork() : fork();
#else
	p = fork();
#endif
	if (p == 0)
		child(sp, ep, devnull);
	return p;
}

int hf_spawn_start(const struct hf_spawn *sp, pid_t *pid, char **err)
{
	int ep[2] = {-1, -1}, devnull = -1, rc = -1;
	sigset_t all, old;
	struct fail f;
	ssize_t n;
	pid_t p;

	*err = NULL;
	*pid = 0;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || pipe2(ep, O_CLOEXEC) < 0) {
		*err = hf_xasprintf("cannot start %s: %s", sp->path,
				    strerror(errno));
		goto out;
	}
	/* No handler of ours may run in the child before it resets them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p = fork_child(sp, ep[1], devnull);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p < 0) {
		*err = hf_xasprintf("cannot start %s: fork: %s", sp->path,
				    strerror(errno));
		goto out;
	}
	close(ep[1]);
	ep[1] = -1;
	do
		n = read(ep[0], &f, sizeof(f));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(f)) {
		/* It has _exit()ed or is about to: reap it. */
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
			;
		f.what[sizeof(f.what) - 1] = '\0';
		*err = hf_xasprintf("cannot %s: %s", f.what, strerror(f.err));
		goto out;
	}
	/* EOF: exec closed the pipe. */
	*pid = p;
	rc = 0;
out:
	for (int i = 0; i < 2; i++)
		if (ep[i] >= 0)
			close(ep[i]);
	if (devnull >= 0)
		close(devnull);
	return rc;
}

pid_t hf_spawn_fork(void)
{
	sigset_t all, old;
	pid_t p;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	p = fork();
	e = errno;
	if (p == 0)
		reset_dispositions();
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return p;
}
