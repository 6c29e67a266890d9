/*
 * hvnoded: the hvcluster node agent. One qb_loop drives corosync
 * membership, the IPC server for hvctl, and (later) the VMs of this host.
 * Only this file decides to exit.
 */
#include "hvnoded.h"
#include "log.h"
#include "proto.h"
#include "statefile.h"
#include "vmmig.h"
#include "vmrun.h"

#include <errno.h>
#include <inttypes.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <qb/qblog.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: hvnoded [-c FILE] [-d] [-t]\n"
		"\n"
		"The hvcluster node agent. Runs in the foreground (systemd starts it);\n"
		"joins the corosync cluster named in its config and serves hvctl.\n"
		"\n"
		"Options:\n"
		"  -c, --config FILE  configuration file (default " HV_CONFIG_DEFAULT_PATH ")\n"
		"  -d, --debug        log at debug level to stderr as well\n"
		"  -t, --test-config  check the configuration and exit (0 valid, 1 not)\n"
		"  -h, --help         this help\n"
		"  -V, --version      print the version\n"
		"\n"
		"Signals: SIGTERM stops cleanly after what [node] shutdown_policy asks (migrate:\n"
		"drain this node first; freeze: keep its VMs for its return; failover: just\n"
		"stop); a second SIGTERM, or SIGINT, stops at once. SIGHUP reopens the log file.\n");
}

static int32_t on_stop_signal(int32_t sig, void *data)
{
	struct hvnoded *d = data;

	qb_log(LOG_NOTICE, "signal %d: shutting down", sig);
	if (sig == SIGTERM && maint_shutdown(d))
		return 0;
	qb_loop_stop(d->loop);
	return 0;
}

static int32_t on_hup(int32_t sig, void *data)
{
	hv_log_reopen();
	qb_log(LOG_INFO, "SIGHUP: log file reopened");
	return 0;
}

/* The one reaper of the daemon: QEMU and disk servers are all our children. */
static int32_t on_sigchld(int32_t sig, void *data)
{
	struct hvnoded *d = data;
	int wstatus;
	pid_t pid;

	while ((pid = waitpid(-1, &wstatus, WNOHANG)) > 0)
		if (!vmrun_child_exited(d, pid, wstatus))
			qb_log(LOG_DEBUG, "reaped unknown child %d (status 0x%x)", (int)pid,
			       wstatus);
	return 0;
}

/* Log the membership as a whole, once per real change: what a failover post-mortem needs. */
static void on_membership_changed(membership_t *m, void *arg)
{
	struct hvnoded *d = arg;
	struct member members[MEMBERS_MAX];
	size_t n = membership_members(m, members, MEMBERS_MAX);
	char now[512];
	int len;

	len = snprintf(now, sizeof(now), "corosync %s, %s, leader %u, members [",
		       membership_is_available(m) ? "connected" : "unavailable",
		       membership_is_quorate(m) ? "quorate" : "NOT quorate", membership_leader(m));
	for (size_t i = 0; i < n && len > 0 && (size_t)len < sizeof(now); i++)
		len += snprintf(now + len, sizeof(now) - len, "%s%u", i ? " " : "", members[i].id);
	if (len > 0 && (size_t)len < sizeof(now))
		snprintf(now + len, sizeof(now) - len, "]");
	d->membership = m; /* callbacks may come from inside membership_create() */
	cluster_changed(d);
	if (strcmp(now, d->last_membership) == 0)
		return;
	snprintf(d->last_membership, sizeof(d->last_membership), "%s", now);
	qb_log(LOG_NOTICE, "membership: %s", now);
}

static void on_deliver(membership_t *m, uint32_t nodeid, uint32_t pid, const void *msg,
		       size_t len, void *arg)
{
	struct hvnoded *d = arg;

	d->membership = m;
	cluster_deliver(d, nodeid, pid, msg, len);
}

static void on_confchg(membership_t *m, const uint32_t *ids, const uint32_t *pids, size_t n,
		       void *arg)
{
	struct hvnoded *d = arg;

	d->membership = m;
	cluster_confchg(d, ids, pids, n);
}

static const struct membership_ops membership_ops = {
	.changed = on_membership_changed,
	.deliver = on_deliver,
	.confchg = on_confchg,
};

static int make_dir(const char *path, mode_t mode)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int run(struct hvnoded *d)
{
	qb_loop_signal_handle h;
	char err[1024];
	int rc;

	rc = make_dir(d->cfg.state_dir, 0700);
	if (rc) {
		qb_log(LOG_ERR, "cannot create state dir %s: %s", d->cfg.state_dir, strerror(-rc));
		return 1;
	}
	rc = make_dir(d->cfg.run_dir, 0755);
	if (rc) {
		qb_log(LOG_ERR, "cannot create run dir %s: %s", d->cfg.run_dir, strerror(-rc));
		return 1;
	}
	d->state = state_create();
	if (!d->state) {
		qb_log(LOG_ERR, "out of memory");
		return 1;
	}
	snprintf(d->state_path, sizeof(d->state_path), "%s/state.json", d->cfg.state_dir);
	/* never start from a half-read state: a bad file is set aside, the cluster's is fetched */
	rc = statefile_load_at_start(d->state_path, d->state, &d->state_needed, d->state_moved,
				     sizeof(d->state_moved), err, sizeof(err));
	if (rc || d->state_needed) {
		qb_log(LOG_CRIT, "%s", err);
		fprintf(stderr, "hvnoded: %s\n", err);
	}
	if (rc)
		goto err_state;
	qb_log(LOG_INFO, "state %s: version %" PRIu64 ", %zu VMs", d->state_path,
	       state_version(d->state), state_vm_count(d->state));
	d->loop = qb_loop_create();
	if (!d->loop) {
		qb_log(LOG_ERR, "cannot create the event loop");
		goto err_state;
	}
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGTERM, d, on_stop_signal, &h);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGINT, d, on_stop_signal, &h);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGHUP, d, on_hup, &h);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGCHLD, d, on_sigchld, &h);
	rc = work_init(d);
	if (rc) {
		qb_log(LOG_ERR, "cannot set up workers: %s", strerror(-rc));
		goto err_loop;
	}
	rc = vmrun_init(d);
	if (rc) {
		qb_log(LOG_ERR, "cannot set up the VM runtime: %s", strerror(-rc));
		goto err_work;
	}
	rc = vmmig_init(d, err, sizeof(err));
	if (rc) {
		qb_log(LOG_CRIT, "%s", err);
		fprintf(stderr, "hvnoded: %s\n", err);
		goto err_vmrun;
	}

	rc = watchdog_start(d);
	if (rc) {
		qb_log(LOG_ERR, "cannot arm the watchdog: %s", strerror(-rc));
		goto err_vmrun;
	}
	rc = cluster_init(d);
	if (rc) {
		qb_log(LOG_ERR, "cannot set up the cluster agent: %s", strerror(-rc));
		goto err_vmrun;
	}
	rc = ipc_server_start(d);
	if (rc) {
		qb_log(LOG_ERR, "cannot serve IPC service '%s': %s", d->cfg.ipc_name,
		       strerror(-rc));
		goto err_cluster;
	}
	d->membership = membership_create(d->loop, d->cfg.cluster_name, &membership_ops, d);
	if (!d->membership) {
		qb_log(LOG_ERR, "cannot start membership: %s", strerror(errno));
		goto err_ipc;
	}
	qb_log(LOG_NOTICE, "hvnoded %s started: node %s, cluster %s", HV_VERSION,
	       d->cfg.node_name, d->cfg.cluster_name);
	qb_loop_run(d->loop);

	vmmig_stop(d);
	vmrun_fini(d);
	vmmig_fini(d);
	watchdog_stop(d);
	membership_destroy(d->membership);
	d->membership = NULL;
	ipc_server_stop(d);
	cluster_fini(d);
	work_fini(d);
	qb_loop_destroy(d->loop);
	state_destroy(d->state);
	qb_log(LOG_NOTICE, "hvnoded stopped");
	return 0;
err_ipc:
	ipc_server_stop(d);
err_cluster:
	cluster_fini(d);
	watchdog_stop(d);
err_vmrun:
	vmmig_stop(d);
	vmrun_fini(d);
	vmmig_fini(d);
err_work:
	work_fini(d);
err_loop:
	qb_loop_destroy(d->loop);
err_state:
	state_destroy(d->state);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "test-config", no_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = HV_CONFIG_DEFAULT_PATH;
	struct hvnoded d = { .wd_fd = -1 };
	bool debug = false, test_only = false;
	char err[1024];
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:dthV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'd':
			debug = true;
			break;
		case 't':
			test_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hvnoded %s\n", HV_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "hvnoded: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (hv_config_load(&d.cfg, path, err, sizeof(err))) {
		fprintf(stderr, "hvnoded: %s\n", err);
		return 1;
	}
	if (test_only) {
		printf("%s: configuration valid\n", path);
		hv_config_free(&d.cfg);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	if (hv_log_setup(&d.cfg, debug, err, sizeof(err))) {
		fprintf(stderr, "hvnoded: %s\n", err);
		hv_config_free(&d.cfg);
		return 1;
	}
	rc = run(&d);
	hv_log_teardown();
	hv_config_free(&d.cfg);
	return rc;
}
