/*
 * cgroup.c - the task cgroup for v2 (unified) and v1 (separate memory and
 * cpu hierarchies). Everything that can go wrong while creating it becomes
 * a note and a task without cgroups, never a failed launch: a node whose
 * cgroups are broken still runs its tasks, and says so in the status.
 */
#include "shim/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/util.h"
#include "shim/shim.h"

#define CPU_PERIOD_US 100000 /* the kernel's default period, in v1 too */
#define MIN_CPU_QUOTA_US 1000
#define SMALL_FILE_MAX (1024 * 1024)

static const char *cgroup_root(void)
{
	const char *r = getenv("HOLDFAST_CGROUP_ROOT");

	return r && *r ? r : "/sys/fs/cgroup";
}

static bool file_exists(const char *dir, const char *name)
{
	char *p = hf_xasprintf("%s/%s", dir, name);
	bool ok = access(p, F_OK) == 0;

	free(p);
	return ok;
}

/* Writes s to dir/name with one write(2). Returns 0 or errno. */
static int write_file(const char *dir, const char *name, const char *s)
{
	char *p = hf_xasprintf("%s/%s", dir, name);
	int fd, err = 0;

	fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		goto out;
	}
	if (write(fd, s, strlen(s)) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
out:
	free(p);
	return err;
}

/* Reads dir/name; NULL (errno set) when it cannot. Caller frees. */
static char *read_small(const char *dir, const char *name)
{
	char *p = hf_xasprintf("%s/%s", dir, name), *text = NULL;

	if (hf_read_file(p, SMALL_FILE_MAX, &text, NULL) != 0)
		text = NULL;
	free(p);
	return text;
}

/* True when the space-separated list holds word. */
static bool has_word_in(const char *list, const char *word, const char *seps)
{
	size_t n = strlen(word);

	for (const char *p = list; p && *p;) {
		p += strspn(p, seps);
		if (strncmp(p, word, n) == 0 &&
		    (p[n] == '\0' || strchr(seps, p[n])))
			return true;
		p += strcspn(p, seps);
	}
	return false;
}

static bool has_word(const char *list, const char *word)
{
	return has_word_in(list, word, " \t\n");
}

/* The number after "key " in a "key value" per line file, -1 if absent. */
static long long keyed_value(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, key, n) == 0 && p[n] == ' ')
			return strtoll(p + n + 1, NULL, 10);
	}
	return -1;
}

/* mkdir -p of rel under base (base must exist). Returns 0 or errno. */
static int mkdir_under(const char *base, const char *rel)
{
	struct hf_buf dir = HF_BUF_INIT;
	char *copy = hf_xstrdup(rel), *save = NULL, *comp;
	int err = 0;

	hf_buf_adds(&dir, base);
	for (comp = strtok_r(copy, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		hf_buf_addf(&dir, "/%s", comp);
		if (mkdir(hf_buf_str(&dir), 0755) < 0 && errno != EEXIST) {
			err = errno;
			break;
		}
	}
	free(copy);
	hf_buf_release(&dir);
	return err;
}

/*
 * Creates the task's own directory. A directory left by a shim that died
 * is removed first when it is empty; one that still has processes belongs
 * to something alive, which must not be joined or killed blindly.
 */
static int make_task_dir(const char *dir, char **note)
{
	const char *why;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno == EEXIST && rmdir(dir) == 0 && mkdir(dir, 0755) == 0)
		return 0;
	why = errno == EBUSY ? "it exists and has processes" : strerror(errno);
	*note = hf_xasprintf("cannot create cgroup %s: %s", dir, why);
	return -1;
}

static int rmdir_retry(const char *dir)
{
	for (int i = 0; i < 100; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return errno;
		hf_sleep_ms(10);
	}
	return EBUSY;
}

/*
 * Which cgroup version this machine offers to a shim, or 0 with *why set.
 * Checks what a shim needs without creating anything.
 */
static int detect(const char *root, char **why)
{
	char *mem = hf_xasprintf("%s/memory", root);
	int version = 0;

	*why = NULL;
	if (file_exists(root, "cgroup.controllers")) {
		version = 2;
	} else if (file_exists(mem, "memory.limit_in_bytes")) {
		version = 1;
	} else {
		*why = hf_xasprintf("no cgroup v2 at %s and no v1 memory "
				    "controller at %s", root, mem);
		goto out;
	}
	if (geteuid() != 0) {
		*why = hf_xasprintf("cgroup v%d is mounted at %s but the shim "
				    "is not root", version, root);
		version = 0;
	} else if (access(version == 2 ? root : mem, W_OK) < 0) {
		*why = hf_xasprintf("cgroup v%d at %s is not writable: %s",
				    version, version == 2 ? root : mem,
				    strerror(errno));
		version = 0;
	}
out:
	free(mem);
	return version;
}

int hf_cgroup_probe(char **description)
{
	const char *root = cgroup_root();
	char *why = NULL, *ctl = NULL, *mem = NULL, *cpu = NULL;
	int version = detect(root, &why);

	switch (version) {
	case 2:
		ctl = read_small(root, "cgroup.controllers");
		if (ctl)
			ctl[strcspn(ctl, "\n")] = '\0';
		*description = hf_xasprintf(
			"cgroup v2 at %s (controllers: %s); tasks get cpu and "
			"memory limits when those controllers can be enabled",
			root, ctl ? ctl : "unknown");
		break;
	case 1:
		mem = hf_xasprintf("%s/memory", root);
		cpu = hf_xasprintf("%s/cpu", root);
		*description = hf_xasprintf(
			"cgroup v1: memory controller at %s, %s", mem,
			file_exists(cpu, "cpu.cfs_quota_us")
				? "cpu controller at the cpu mount"
				: "no cpu controller (cpu limits are not "
				  "enforced)");
		break;
	default:
		*description = hf_xasprintf("no usable cgroups (%s); tasks run "
					    "without cpu and memory limits",
					    why);
		break;
	}
	free(why);
	free(ctl);
	free(mem);
	free(cpu);
	return version;
}

void hf_cgroup_init(struct hf_cgroup *cg)
{
	memset(cg, 0, sizeof(*cg));
	for (int i = 0; i < HF_CGROUP_MAX_FDS; i++) {
		cg->procs_fd[i] = -1;
		cg->home_fd[i] = -1;
	}
}

static int open_procs(struct hf_cgroup *cg, int slot, const char *dir)
{
	char *p = hf_xasprintf("%s/cgroup.procs", dir);
	int err = 0;

	cg->procs_fd[slot] = open(p, O_WRONLY | O_CLOEXEC);
	if (cg->procs_fd[slot] < 0)
		err = errno;
	free(p);
	return err;
}

static long long cpu_quota(double cpus)
{
	long long q = (long long)(cpus * CPU_PERIOD_US + 0.5);

	return q < MIN_CPU_QUOTA_US ? MIN_CPU_QUOTA_US : q;
}

/* Appends a sentence to the note (the note collects partial problems). */
static void add_note(struct hf_cgroup *cg, char *sentence)
{
	char *old = cg->note;

	if (!sentence)
		return;
	cg->note = old ? hf_xasprintf("%s; %s", old, sentence) : sentence;
	if (old) {
		free(old);
		free(sentence);
	}
}

/*
 * v2: every level from the root down to the task's parent must list cpu
 * and memory in cgroup.subtree_control for the task cgroup to get them.
 * The kernel refuses (EBUSY) to enable controllers in a non-root cgroup
 * that has processes of its own ("no internal processes"); the shim never
 * puts a process anywhere but the leaf, so this only fails when someone
 * else did, e.g. a container whose own processes sit in its cgroup root.
 */
static int v2_enable(const char *dir, const char *ctl, char **note)
{
	char *cur = read_small(dir, "cgroup.subtree_control");
	char *plus = hf_xasprintf("+%s", ctl);
	int err = 0;

	if (!cur || !has_word(cur, ctl))
		err = write_file(dir, "cgroup.subtree_control", plus);
	if (err == EBUSY)
		*note = hf_xasprintf(
			"cannot enable the %s controller in %s: that cgroup "
			"has processes of its own (cgroup v2 allows "
			"controllers for children only in cgroups without "
			"processes)",
			ctl, dir);
	else if (err)
		*note = hf_xasprintf("cannot enable the %s controller in "
				     "%s: %s", ctl, dir, strerror(err));
	free(cur);
	free(plus);
	return err;
}

static int setup_v2(struct hf_cgroup *cg, const char *root,
		    const char *parent, const char *name, double cpus,
		    int64_t memory_bytes)
{
	char *avail = read_small(root, "cgroup.controllers");
	char *copy = hf_xstrdup(parent), *save = NULL, *comp, *note = NULL;
	const char *ctls[2];
	struct hf_buf dir = HF_BUF_INIT;
	int nctl = 0, rc = -1, err;
	bool made = false, has_cpu = avail && has_word(avail, "cpu");

	if (has_cpu)
		ctls[nctl++] = "cpu";
	else if (cpus > 0)
		add_note(cg, hf_xasprintf("no cpu controller in %s: cpus are "
					  "not enforced", root));
	if (avail && has_word(avail, "memory"))
		ctls[nctl++] = "memory";
	else if (memory_bytes > 0)
		add_note(cg, hf_xasprintf("no memory controller in %s: "
					  "memory_mb is not enforced", root));

	hf_buf_adds(&dir, root);
	comp = strtok_r(copy, "/", &save);
	for (;;) {
		for (int i = 0; i < nctl; i++)
			if (v2_enable(hf_buf_str(&dir), ctls[i], &note))
				goto out;
		if (!comp)
			break;
		hf_buf_addf(&dir, "/%s", comp);
		if (mkdir(hf_buf_str(&dir), 0755) < 0 && errno != EEXIST) {
			note = hf_xasprintf("cannot create cgroup %s: %s",
					    hf_buf_str(&dir), strerror(errno));
			goto out;
		}
		comp = strtok_r(NULL, "/", &save);
	}
	hf_buf_addf(&dir, "/%s", name);
	if (make_task_dir(hf_buf_str(&dir), &note))
		goto out;
	made = true;
	cg->path = hf_xstrdup(hf_buf_str(&dir));
	if (cpus > 0 && has_cpu) {
		char *v = hf_xasprintf("%lld %d", cpu_quota(cpus),
				       CPU_PERIOD_US);

		err = write_file(cg->path, "cpu.max", v);
		free(v);
		if (err) {
			note = hf_xasprintf("cannot write %s/cpu.max: %s",
					    cg->path, strerror(err));
			goto out;
		}
	}
	if (memory_bytes > 0 && file_exists(cg->path, "memory.max")) {
		char *v = hf_xasprintf("%lld", (long long)memory_bytes);

		err = write_file(cg->path, "memory.max", v);
		free(v);
		if (err) {
			note = hf_xasprintf("cannot write %s/memory.max: %s",
					    cg->path, strerror(err));
			goto out;
		}
		/* Without swap accounting the file is absent: fine. */
		if (file_exists(cg->path, "memory.swap.max"))
			write_file(cg->path, "memory.swap.max", "0");
	}
	err = open_procs(cg, 0, cg->path);
	if (err) {
		note = hf_xasprintf("cannot open %s/cgroup.procs: %s",
				    cg->path, strerror(err));
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		if (made)
			rmdir(hf_buf_str(&dir));
		free(cg->path);
		cg->path = NULL;
		add_note(cg, note);
	}
	free(avail);
	free(copy);
	hf_buf_release(&dir);
	return rc;
}

/* Creates <ctl_root>/<parent>/<name> for one v1 controller. */
static char *v1_make(const char *ctl_root, const char *parent,
		     const char *name, char **note)
{
	char *dir;
	int err = mkdir_under(ctl_root, parent);

	if (err) {
		*note = hf_xasprintf("cannot create cgroup %s/%s: %s",
				     ctl_root, parent, strerror(err));
		return NULL;
	}
	dir = hf_xasprintf("%s/%s/%s", ctl_root, parent, name);
	if (make_task_dir(dir, note)) {
		free(dir);
		return NULL;
	}
	return dir;
}

static int setup_v1(struct hf_cgroup *cg, const char *root,
		    const char *parent, const char *name, double cpus,
		    int64_t memory_bytes)
{
	char *mem_root = hf_xasprintf("%s/memory", root);
	char *cpu_root = hf_xasprintf("%s/cpu", root);
	char *note = NULL, *v = NULL;
	int rc = -1, err;

	cg->path = v1_make(mem_root, parent, name, &note);
	if (!cg->path)
		goto out;
	if (memory_bytes > 0) {
		v = hf_xasprintf("%lld", (long long)memory_bytes);
		err = write_file(cg->path, "memory.limit_in_bytes", v);
		if (err) {
			note = hf_xasprintf("cannot write %s/memory."
					    "limit_in_bytes: %s",
					    cg->path, strerror(err));
			goto out;
		}
		/*
		 * memsw (memory + swap) exists only with swap accounting;
		 * setting it to the same value forbids swapping, as
		 * memory.swap.max = 0 does on v2.
		 */
		if (file_exists(cg->path, "memory.memsw.limit_in_bytes"))
			write_file(cg->path, "memory.memsw.limit_in_bytes", v);
	}
	err = open_procs(cg, 0, cg->path);
	if (err) {
		note = hf_xasprintf("cannot open %s/cgroup.procs: %s",
				    cg->path, strerror(err));
		goto out;
	}
	if (!file_exists(cpu_root, "cpu.cfs_quota_us")) {
		if (cpus > 0)
			add_note(cg, hf_xasprintf("no v1 cpu controller at %s: "
						  "cpus are not enforced",
						  cpu_root));
		rc = 0;
		goto out;
	}
	cg->cpu_path = v1_make(cpu_root, parent, name, &note);
	if (!cg->cpu_path)
		goto out;
	if (cpus > 0) {
		char *q = hf_xasprintf("%lld", cpu_quota(cpus));

		/*
		 * The directory is new (make_task_dir), so its period is the
		 * kernel's default, 100 ms, which CPU_PERIOD_US is: only the
		 * quota is written. Each write checks the quotas of every
		 * cgroup of the machine, so one write per task, not two.
		 */
		err = write_file(cg->cpu_path, "cpu.cfs_quota_us", q);
		free(q);
		if (err) {
			note = hf_xasprintf("cannot set the cpu quota in "
					    "%s: %s", cg->cpu_path,
					    strerror(err));
			goto out;
		}
	}
	err = open_procs(cg, 1, cg->cpu_path);
	if (err) {
		note = hf_xasprintf("cannot open %s/cgroup.procs: %s",
				    cg->cpu_path, strerror(err));
		goto out;
	}
	rc = 0;
out:
	if (rc) {
		hf_cgroup_close_fds(cg);
		if (cg->path)
			rmdir(cg->path);
		if (cg->cpu_path)
			rmdir(cg->cpu_path);
		free(cg->path);
		cg->path = NULL;
		free(cg->cpu_path);
		cg->cpu_path = NULL;
		add_note(cg, note);
	}
	free(mem_root);
	free(cpu_root);
	free(v);
	return rc;
}

void hf_cgroup_setup(struct hf_cgroup *cg, const char *parent,
		     const char *name, double cpus, int64_t memory_bytes)
{
	const char *root = cgroup_root();
	char *why = NULL;
	int version = detect(root, &why);

	if (version == 0) {
		add_note(cg, why);
		return;
	}
	if (version == 2 &&
	    setup_v2(cg, root, parent, name, cpus, memory_bytes) == 0)
		cg->version = 2;
	if (version == 1 &&
	    setup_v1(cg, root, parent, name, cpus, memory_bytes) == 0)
		cg->version = 1;
}

int hf_cgroup_join_self(const struct hf_cgroup *cg)
{
	for (int i = 0; i < HF_CGROUP_MAX_FDS; i++) {
		/* "0" means the writing process, on v1 and v2 alike. */
		if (cg->procs_fd[i] >= 0 && write(cg->procs_fd[i], "0", 1) < 0)
			return errno;
	}
	return 0;
}

void hf_cgroup_close_fds(struct hf_cgroup *cg)
{
	for (int i = 0; i < HF_CGROUP_MAX_FDS; i++) {
		if (cg->procs_fd[i] >= 0)
			close(cg->procs_fd[i]);
		cg->procs_fd[i] = -1;
	}
}

static void close_home(struct hf_cgroup *cg)
{
	for (int i = 0; i < HF_CGROUP_MAX_FDS; i++) {
		if (cg->home_fd[i] >= 0)
			close(cg->home_fd[i]);
		cg->home_fd[i] = -1;
	}
}

/*
 * The cgroup.procs of the caller's own cgroup in the hierarchy of
 * controller ctl ("memory", "cpu"; NULL: the v2 one), as
 * /proc/self/cgroup names it; -1 when it cannot be opened.
 */
static int open_home(const char *ctl)
{
	char *text = NULL, *line, *save = NULL, *path = NULL;
	int fd = -1;

	if (hf_read_file("/proc/self/cgroup", SMALL_FILE_MAX, &text, NULL))
		return -1;
	for (line = strtok_r(text, "\n", &save); line && !path;
	     line = strtok_r(NULL, "\n", &save)) {
		/* "N:controller,controller:/path"; v2's is "0::/path". */
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char *list;

		if (!c2)
			continue;
		*c2 = '\0';
		list = c1 + 1;
		if (ctl ? !has_word_in(list, ctl, ",") : *list != '\0')
			continue;
		path = ctl ? hf_xasprintf("%s/%s%s/cgroup.procs", cgroup_root(),
					  ctl, c2 + 1)
			   : hf_xasprintf("%s%s/cgroup.procs", cgroup_root(),
					  c2 + 1);
	}
	if (path)
		fd = open(path, O_WRONLY | O_CLOEXEC);
	free(path);
	free(text);
	return fd;
}

int hf_cgroup_enter(struct hf_cgroup *cg)
{
	static const char *const v1_ctls[HF_CGROUP_MAX_FDS] = {"memory", "cpu"};
	int err;

	if (cg->version == 0 || cg->self_in)
		return 0;
	for (int i = 0; i < HF_CGROUP_MAX_FDS; i++) {
		if (cg->procs_fd[i] < 0)
			continue;
		cg->home_fd[i] = open_home(cg->version == 2 ? NULL
							     : v1_ctls[i]);
		/* Without a way back the cgroup could never be removed. */
		if (cg->home_fd[i] < 0) {
			err = errno ? errno : ENOENT;
			close_home(cg);
			return err;
		}
	}
	err = hf_cgroup_join_self(cg);
	if (err) {
		cg->self_in = true;
		hf_cgroup_leave(cg);
		return err;
	}
	cg->self_in = true;
	return 0;
}

void hf_cgroup_leave(struct hf_cgroup *cg)
{
	if (!cg->self_in)
		return;
	for (int i = 0; i < HF_CGROUP_MAX_FDS; i++)
		if (cg->home_fd[i] >= 0 && write(cg->home_fd[i], "0", 1) < 0)
			hf_log("cannot leave the task's cgroup: %s",
			       strerror(errno));
	close_home(cg);
	cg->self_in = false;
}

/* True unless pid is gone or a zombie (which only its parent can reap). */
static bool is_live(long pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/*
 * Kills every pid listed in dir/cgroup.procs; returns how many are still
 * alive. v1 lists zombies until they are reaped, which is their parent's
 * business, so they do not count.
 */
static int kill_listed(const char *dir)
{
	char *text = read_small(dir, "cgroup.procs"), *p, *end;
	long self = (long)getpid();
	int n = 0;

	for (p = text; p && *p; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		if (pid > 0 && pid != self && is_live(pid)) {
			kill((pid_t)pid, SIGKILL);
			n++;
		}
	}
	free(text);
	return n;
}

int hf_cgroup_kill_all(const struct hf_cgroup *cg)
{
	int n = 0;

	if (cg->version == 0)
		return 0;
	/*
	 * cgroup.kill (Linux 5.14) kills atomically, forks in flight
	 * included; without it a forking process could add a member between
	 * our read and our kill, which the caller's loop catches.
	 */
	if (cg->version == 2 && !cg->self_in &&
	    file_exists(cg->path, "cgroup.kill"))
		write_file(cg->path, "cgroup.kill", "1");
	n += kill_listed(cg->path);
	if (cg->cpu_path)
		n += kill_listed(cg->cpu_path);
	return n;
}

bool hf_cgroup_oom_killed(const struct hf_cgroup *cg)
{
	return hf_cgroup_oom_kills(cg) > 0;
}

long long hf_cgroup_oom_kills(const struct hf_cgroup *cg)
{
	char *text;
	long long kills = -1;

	if (cg->version == 0)
		return -1;
	text = read_small(cg->path, cg->version == 2 ? "memory.events"
						     : "memory.oom_control");
	if (text)
		kills = keyed_value(text, "oom_kill");
	free(text);
	if (kills < 0 && cg->version == 1) {
		/*
		 * Kernels before 4.13 have no oom_kill counter in v1; hitting
		 * the limit (failcnt) is the best evidence left, and the
		 * caller only asks when the task died of SIGKILL.
		 */
		text = read_small(cg->path, "memory.failcnt");
		kills = text ? strtoll(text, NULL, 10) : -1;
		free(text);
	}
	return kills;
}

int hf_cgroup_remove(struct hf_cgroup *cg)
{
	int err = 0, e;

	if (cg->version == 0)
		return 0;
	hf_cgroup_leave(cg);
	hf_cgroup_close_fds(cg);
	if (cg->path)
		err = rmdir_retry(cg->path);
	if (cg->cpu_path && (e = rmdir_retry(cg->cpu_path)) && !err)
		err = e;
	return err;
}

void hf_cgroup_release(struct hf_cgroup *cg)
{
	hf_cgroup_close_fds(cg);
	close_home(cg);
	free(cg->path);
	free(cg->cpu_path);
	free(cg->note);
	hf_cgroup_init(cg);
}

void hf_cgroup_destroy(const char *path)
{
	const char *root = cgroup_root();
	char *mem = hf_xasprintf("%s/memory/", root);
	char *dirs[2] = {hf_xstrdup(path), NULL};

	if (hf_str_has_prefix(path, mem))
		dirs[1] = hf_xasprintf("%s/cpu/%s", root, path + strlen(mem));
	for (int i = 0; i < 100; i++) {
		int left = 0;

		for (int d = 0; d < 2; d++) {
			if (!dirs[d] || access(dirs[d], F_OK) < 0)
				continue;
			if (file_exists(dirs[d], "cgroup.kill"))
				write_file(dirs[d], "cgroup.kill", "1");
			left += kill_listed(dirs[d]);
		}
		if (!left)
			break;
		hf_sleep_ms(10);
	}
	for (int d = 0; d < 2; d++) {
		if (dirs[d])
			rmdir_retry(dirs[d]);
		free(dirs[d]);
	}
	free(mem);
}
