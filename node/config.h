/*
 * hvnoded configuration: an INI file, parsed strictly.
 *
 * Every key is known in advance; an unknown section or key, a bad value or a
 * missing mandatory key is an error naming the file, the line and the key.
 */
#ifndef HV_NODE_CONFIG_H
#define HV_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define HV_CONFIG_DEFAULT_PATH "/etc/hvcluster/hvnoded.conf"

enum hv_log_target {
	HV_LOG_STDERR,
	HV_LOG_SYSLOG,
	HV_LOG_FILE,
};

struct hv_config {
	char *path;		/* the file it came from */
	char *node_name;	/* [node] name; default: the host name */
	char *state_dir;	/* [node] state_dir */
	char *run_dir;		/* [node] run_dir */
	char *ipc_name;		/* [node] ipc_name: the libqb IPC service hvctl connects to */
	char *cluster_name;	/* [cluster] name, mandatory */
	enum hv_log_target log_target;
	char *log_file;		/* [log] file, mandatory when target = file */
	int log_level;		/* syslog priority: LOG_ERR .. LOG_DEBUG */
	bool log_blackbox;	/* [log] blackbox */
	char *blackbox_dir;	/* where a crash dumps the blackbox; default state_dir */
	unsigned int vm_uid_base;  /* [vm] uid_base: VMs run as uid_base + slot */
	unsigned int vm_uid_count; /* [vm] uid_count: at most this many VMs on this node */
	char *qemu;		   /* [vm] qemu binary */
	char *nbdkit;		   /* [vm] nbdkit binary */
	char *nbdkit_plugin;	   /* [vm] nbdkit_plugin: our iSCSI plugin (.so) */
	unsigned int node_vcpus;   /* [node] vcpus: capacity for placement; default: online CPUs */
	unsigned int node_memory_mb; /* [node] memory_mb: default: physical memory */
	char *node_domain;	   /* [node] domain: failure domain (rack, room); default: none */
	char *node_clearance;	   /* [node] clearance: highest guest classification allowed */
	unsigned int quorum_loss_stop_s; /* [cluster] quorum_loss_stop_s: stop VMs after (0) */
	char *watchdog_device;	   /* [watchdog] device: none by default */
	unsigned int watchdog_timeout_s; /* [watchdog] timeout_s: default 10 */
	char *mig_address;	   /* [migrate] address: where peers reach our migration server;
				    * default: this node's ring0_addr in corosync's nodelist */
	unsigned int mig_port;	   /* [migrate] port: default 7790 */
	char *shutdown_policy;	   /* [node] shutdown_policy: migrate (default), freeze, failover */
	unsigned int shutdown_timeout_s; /* [node] shutdown_timeout_s: the drain's bound (300) */
};

#ifndef HV_PLUGIN_DIR
#define HV_PLUGIN_DIR "/usr/local/lib/hvcluster"
#endif

/*
 * Load and validate @path into @cfg (zeroed by the caller or not: it is
 * overwritten). On error returns -errno (-EINVAL for content errors) and
 * writes a one-line message naming file, line and key into @err.
 */
int hv_config_load(struct hv_config *cfg, const char *path, char *err, size_t errlen);

/* Free what hv_config_load allocated; safe on a zeroed or failed config. */
void hv_config_free(struct hv_config *cfg);

/* "debug" -> LOG_DEBUG etc.; -EINVAL for an unknown name. */
int hv_log_level_parse(const char *name);

#endif
