/* hvctl's shared pieces: the context, the IPC call, output helpers. */
#ifndef HV_NODE_HVCTL_H
#define HV_NODE_HVCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define EXIT_DAEMON_ERROR 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3
#define EXIT_TIMEOUT 4 /* a --wait gave up; what it waited for goes on */

struct ctl {
	const char *ipc_name;
	bool json;
	bool csv; /* --csv: see ctl_table_print_csv */
};

extern const char hvctl_main_help[];
extern const char hvctl_vm_help[];
extern const char hvctl_rule_help[];
extern const char hvctl_plan_help[];
extern const char hvctl_fence_help[];
extern const char hvctl_node_help[];

/* Print "hvctl: <msg>" and @help (the main help when NULL) on stderr; returns EXIT_USAGE. */
int usage_error(const char *help, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --json and --help of every command; -1 to go on with optind at the first operand. */
int parse_common(struct ctl *ctl, int argc, char **argv, const char *help);

/*
 * Run @cmd with @args (borrowed) on hvnoded. 0 with *res the reply (caller
 * decrefs), or the exit code after printing the error.
 */
int call(const struct ctl *ctl, const char *cmd, json_t *args, json_t **res);

void print_json(json_t *obj);

int hvctl_vm(struct ctl *ctl, int argc, char **argv);
/*
 * "vm SUBCOMMAND NAME [--json]" (argv[0] the subcommand): send @cmd {"name": NAME}.
 * -1 with *res the reply (caller decrefs) and argv[optind] NAME, or the exit code
 * (0 after --help, usage error, the daemon's error, printed).
 */
int hvctl_vm_call(struct ctl *ctl, int argc, char **argv, const char *help, const char *cmd,
		  json_t **res);
extern const char hvctl_acl_help[];
extern const char hvctl_audit_help[];
int hvctl_acl(struct ctl *ctl, int argc, char **argv);
int hvctl_audit(struct ctl *ctl, int argc, char **argv);
/* hvctl_security.c: security report. */
extern const char hvctl_security_help[];
int hvctl_security(struct ctl *ctl, int argc, char **argv);
/* hvctl_inventory.c: every VM and host, with owners and classifications. */
extern const char hvctl_inventory_help[];
int hvctl_inventory(struct ctl *ctl, int argc, char **argv);
/* hvctl_rule.c: rule add|list|show|del, plan --fail, and vm explain (argv[0] "explain"). */
int hvctl_rule(struct ctl *ctl, int argc, char **argv);
int hvctl_plan(struct ctl *ctl, int argc, char **argv);
int hvctl_vm_explain(struct ctl *ctl, int argc, char **argv);
/* hvctl_fence.c: fence device|level|history, and node list|fence|confirm-fenced. */
int hvctl_fence(struct ctl *ctl, int argc, char **argv);
int hvctl_node(struct ctl *ctl, int argc, char **argv);
/* hvctl_maint.c: node drain|resume|impact (argv[0] the subcommand). */
int hvctl_node_maint(struct ctl *ctl, int argc, char **argv);
/* hvctl_migrate.c: vm migrate, vm migrate-cancel (argv[0] the subcommand). */
int hvctl_vm_migrate(struct ctl *ctl, int argc, char **argv);
int hvctl_vm_migrate_cancel(struct ctl *ctl, int argc, char **argv);
/* vm list's STATE of @vm: "migrating->NODE" while a migration is on, else its state. */
const char *ctl_mig_state(json_t *vm, char *buf, size_t len);
/* vm show's lines on @vm's migration and on its last one; nothing when it has neither. */
void ctl_mig_show(json_t *vm);
/* @mig's progress: "elapsed 1.2 s, sent 1.0 GiB, wire ..., iteration 3" ("-": not known). */
const char *ctl_mig_progress(json_t *mig, char *buf, size_t len);
/* How @last (a "last_migration") of VM @name ended, in one line; @vm says where it runs now. */
const char *ctl_mig_result(const char *name, json_t *vm, json_t *last, char *buf, size_t len);

/* Rows of strings, the first the header; printed aligned or as CSV (hvctl_util.c). */
#define CTL_TABLE_COLS 12
struct ctl_table {
	json_t *rows;
	size_t ncols;
};
void ctl_table_init(struct ctl_table *t, size_t ncols);
/* A row of t->ncols strings (copied): NULL or "" print as "-" aligned, as an empty CSV field. */
void ctl_table_row(struct ctl_table *t, ...);
/* Print with @indent before each row, then free the rows. */
void ctl_table_print(struct ctl_table *t, const char *indent);
/*
 * Print the rows as CSV (RFC 4180: fields with a comma, quote, CR or LF quoted, quotes
 * doubled, records ended by CRLF), then free them. The --csv convention: a command that
 * prints a table takes --csv and prints that table so, one table per run (a command with
 * two picks one by an option, e.g. inventory --hosts); the header names the columns as its
 * --json output names the keys, and a value is as in --json (null: empty field).
 */
void ctl_table_print_csv(struct ctl_table *t);
/* After a command's options: -1, or a usage error (returned) when --csv and --json are both. */
int ctl_csv_check(const struct ctl *ctl, const char *help, const char *cmd);

/* The monotonic clock in ms, and a sleep (what --wait and --watch poll with). */
int64_t ctl_now_ms(void);
void ctl_sleep_ms(int ms);

/* @o[@key] as a string for a table: "-" when missing or empty. */
const char *ctl_str(json_t *o, const char *key);
/* ["a","b"] -> "a,b" into @buf (cut at @len). */
const char *ctl_join(json_t *a, char *buf, size_t len);
/* @bytes for people: "812 B", "41.2 MiB", "1.5 GiB". */
const char *ctl_size(uint64_t bytes, char *buf, size_t len);
/* The daemon may run elsewhere (another cwd): @p made absolute when it exists. */
json_t *ctl_abs_path(const char *p);

#endif
