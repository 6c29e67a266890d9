/*
 * Who may do what: bindings of unix users and groups to roles, each with a
 * scope of VMs, in the cluster state (so every node decides alike). The
 * decision itself (acl_allows) is pure: the caller resolves the client's uid
 * to its user name and groups on the node it connected to.
 *
 *   viewer    read everything (the consoles of the VMs in scope only)
 *   operator  + start, stop, shutdown, pause, resume, migrate, save, restore VMs in scope
 *   vm-admin  + create and delete VMs in scope
 *   admin     everything: nodes, rules, fencing, settings, bindings; root is admin
 */
#ifndef HV_CLUSTER_ACL_H
#define HV_CLUSTER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "vm.h"

#define ACL_MAX 256

enum acl_role {
	ACL_NONE,
	ACL_VIEWER,
	ACL_OPERATOR,
	ACL_VM_ADMIN,
	ACL_ADMIN,
};

enum acl_scope {
	ACL_SCOPE_ALL,
	ACL_SCOPE_OWNER, /* VMs whose owner is the value */
	ACL_SCOPE_APP,	 /* VMs of that app */
	ACL_SCOPE_NAME,	 /* VMs whose name matches the glob */
};

struct acl_binding {
	char name[VM_NAME_MAX + 1];
	bool group;			/* subject is a group (else a user) */
	char subject[VM_NAME_MAX + 1];	/* user or group name */
	enum acl_role role;
	enum acl_scope scope;
	char value[VM_NAME_MAX + 1];	/* scope value */
};

/* The client, as the node it connected to knows it. */
struct acl_subject {
	uint32_t uid;
	const char *user;	      /* NULL when the uid has no name */
	const char *const *groups; /* names of its groups */
	size_t ngroups;
};

const char *acl_role_name(enum acl_role r);
int acl_role_parse(const char *s, enum acl_role *r);

json_t *acl_binding_to_json(const struct acl_binding *b);
int acl_binding_from_json(const json_t *j, struct acl_binding *b, char *err, size_t errlen);

/*
 * Whether @who may act with @need on VM @vm (NULL: not about a VM, e.g. a rule:
 * only unscoped bindings count). A read (ACL_VIEWER) is not scoped unless it is
 * of @guest_data (what the guest itself wrote: its console). root always may.
 * *@role gets the role that allowed it (or the highest one the subject has, for
 * the message).
 */
bool acl_allows(const struct acl_binding *b, size_t n, const struct acl_subject *who,
		enum acl_role need, bool guest_data, const struct vm_def *vm,
		enum acl_role *role);

#endif
