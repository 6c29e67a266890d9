#include "acl.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "jsonv.h"

static const char *const role_names[] = { "none", "viewer", "operator", "vm-admin", "admin" };
static const char *const scope_names[] = { "all", "owner", "app", "name" };

const char *acl_role_name(enum acl_role r)
{
	return (size_t)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "?";
}

int acl_role_parse(const char *s, enum acl_role *r)
{
	for (size_t i = 1; s && i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (!strcmp(s, role_names[i])) {
			*r = (enum acl_role)i;
			return 0;
		}
	return -EINVAL;
}

json_t *acl_binding_to_json(const struct acl_binding *b)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", b->name, b->group ? "group" : "user",
			 b->subject, "role", acl_role_name(b->role), "scope", scope_names[b->scope],
			 "value", b->value);
}

int acl_binding_from_json(const json_t *j, struct acl_binding *b, char *err, size_t errlen)
{
	static const char *const keys[] = { "name", "user", "group", "role", "scope", "value", NULL };
	const char *role, *scope, *subject;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = jv_check_keys(j, keys, "binding", err, errlen);
	rc = rc ?: jv_str(j, "name", b->name, sizeof(b->name), err, errlen);
	rc = rc ?: jv_str(j, "value", b->value, sizeof(b->value), err, errlen);
	if (rc)
		return rc;
	if (!vm_name_is_valid(b->name))
		return jv_fail(err, errlen, "binding: name missing or not valid");
	b->group = json_object_get(j, "group") != NULL;
	subject = json_string_value(json_object_get(j, b->group ? "group" : "user"));
	if (!subject || (json_object_get(j, "group") && json_object_get(j, "user")) ||
	    !vm_name_is_valid(subject))
		return jv_fail(err, errlen, "binding %s: exactly one valid user or group needed",
			       b->name);
	snprintf(b->subject, sizeof(b->subject), "%s", subject);
	role = json_string_value(json_object_get(j, "role"));
	if (acl_role_parse(role, &b->role))
		return jv_fail(err, errlen,
			       "binding %s: role must be viewer, operator, vm-admin or admin",
			       b->name);
	scope = json_string_value(json_object_get(j, "scope"));
	b->scope = ACL_SCOPE_ALL;
	for (size_t i = 0; scope && i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
		if (!strcmp(scope, scope_names[i]))
			b->scope = (enum acl_scope)i;
	if (scope && strcmp(scope, scope_names[b->scope]))
		return jv_fail(err, errlen, "binding %s: scope must be all, owner, app or name",
			       b->name);
	if ((b->scope == ACL_SCOPE_ALL) != !b->value[0])
		return jv_fail(err, errlen, "binding %s: a scope other than all needs a value",
			       b->name);
	if (b->scope != ACL_SCOPE_ALL && b->role == ACL_ADMIN)
		return jv_fail(err, errlen, "binding %s: admin cannot be scoped", b->name);
	return 0;
}

static bool subject_matches(const struct acl_binding *b, const struct acl_subject *who)
{
	if (!b->group)
		return who->user && !strcmp(who->user, b->subject);
	for (size_t i = 0; i < who->ngroups; i++)
		if (!strcmp(who->groups[i], b->subject))
			return true;
	return false;
}

static bool in_scope(const struct acl_binding *b, const struct vm_def *vm)
{
	switch (b->scope) {
	case ACL_SCOPE_ALL:
		return true;
	case ACL_SCOPE_OWNER:
		return vm && !strcmp(vm->owner, b->value);
	case ACL_SCOPE_APP:
		return vm && !strcmp(vm->app, b->value);
	case ACL_SCOPE_NAME:
		return vm && fnmatch(b->value, vm->name, 0) == 0;
	}
	return false;
}

bool acl_allows(const struct acl_binding *b, size_t n, const struct acl_subject *who,
		enum acl_role need, bool guest_data, const struct vm_def *vm, enum acl_role *role)
{
	enum acl_role best = ACL_NONE;

	if (who->uid == 0) {
		*role = ACL_ADMIN;
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!subject_matches(&b[i], who))
			continue;
		if (b[i].role > best)
			best = b[i].role;
		/* reading is not scoped, a scoped operator still sees the cluster; but what a
		 * guest wrote (its console) is for those whose scope holds the VM */
		if (b[i].role >= need &&
		    ((need == ACL_VIEWER && !guest_data) || in_scope(&b[i], vm))) {
			*role = b[i].role;
			return true;
		}
	}
	*role = best;
	return false;
}
