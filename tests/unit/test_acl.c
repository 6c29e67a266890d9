/* Unit tests of cluster/acl.c: role bindings as JSON, and who may do what on which VM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/acl.h"

/* A binding from JSON text; asserts it loads. */
static struct acl_binding binding(const char *text)
{
	struct acl_binding b;
	json_t *j = json_loads(text, 0, NULL);
	char err[256] = "";

	assert_non_null(j);
	if (acl_binding_from_json(j, &b, err, sizeof(err)))
		fail_msg("binding %s refused: %s", text, err);
	json_decref(j);
	return b;
}

/* JSON text that must be refused, with a message containing @want. */
static void refused(const char *text, const char *want)
{
	struct acl_binding b;
	json_t *j = json_loads(text, 0, NULL);
	char err[256] = "";

	assert_non_null(j);
	assert_int_not_equal(acl_binding_from_json(j, &b, err, sizeof(err)), 0);
	if (!strstr(err, want))
		fail_msg("binding %s: error '%s' does not say '%s'", text, err, want);
	json_decref(j);
}

static void test_binding_from_json(void **state)
{
	struct acl_binding b;
	json_t *j;

	b = binding("{\"name\":\"ops\",\"user\":\"alice\",\"role\":\"operator\"}");
	assert_string_equal(b.name, "ops");
	assert_false(b.group);
	assert_string_equal(b.subject, "alice");
	assert_int_equal(b.role, ACL_OPERATOR);
	assert_int_equal(b.scope, ACL_SCOPE_ALL);
	assert_string_equal(b.value, "");

	b = binding("{\"name\":\"g\",\"group\":\"shopops\",\"role\":\"vm-admin\",\"scope\":\"owner\","
		    "\"value\":\"bob\"}");
	assert_true(b.group);
	assert_string_equal(b.subject, "shopops");
	assert_int_equal(b.role, ACL_VM_ADMIN);
	assert_int_equal(b.scope, ACL_SCOPE_OWNER);
	assert_string_equal(b.value, "bob");

	b = binding("{\"name\":\"n\",\"user\":\"u\",\"role\":\"viewer\",\"scope\":\"name\","
		    "\"value\":\"web*\"}");
	assert_int_equal(b.scope, ACL_SCOPE_NAME);
	assert_string_equal(b.value, "web*");

	/* what acl list prints loads back as the same binding */
	j = acl_binding_to_json(&b);
	assert_non_null(j);
	{
		struct acl_binding back;
		char err[256];

		assert_int_equal(acl_binding_from_json(j, &back, err, sizeof(err)), 0);
		assert_memory_equal(&back, &b, sizeof(b));
	}
	json_decref(j);
}

static void test_binding_from_json_bad(void **state)
{
	refused("[]", "binding");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"viewer\",\"extra\":1}", "extra");
	refused("{\"user\":\"a\",\"role\":\"viewer\"}", "name");
	refused("{\"name\":\"../x\",\"user\":\"a\",\"role\":\"viewer\"}", "name");
	refused("{\"name\":\"x\",\"role\":\"viewer\"}", "exactly one valid user or group");
	refused("{\"name\":\"x\",\"user\":\"a\",\"group\":\"g\",\"role\":\"viewer\"}",
		"exactly one valid user or group");
	refused("{\"name\":\"x\",\"user\":\"a b\",\"role\":\"viewer\"}", "exactly one valid");
	refused("{\"name\":\"x\",\"user\":7,\"role\":\"viewer\"}", "exactly one valid");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"root\"}", "role must be");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"none\"}", "role must be");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":1}", "role must be");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"viewer\",\"scope\":\"tier\",\"value\":\"t\"}",
		"scope must be");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"viewer\",\"scope\":\"app\"}",
		"needs a value");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"viewer\",\"value\":\"shop\"}",
		"needs a value");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"admin\",\"scope\":\"app\",\"value\":\"s\"}",
		"admin cannot be scoped");
	refused("{\"name\":\"x\",\"user\":\"a\",\"role\":\"viewer\",\"scope\":\"app\",\"value\":5}",
		"value");
}

static const struct vm_def shop1 = { .name = "shop1", .owner = "alice", .app = "shop" };
static const struct vm_def crm1 = { .name = "crm1", .owner = "bob", .app = "crm" };
static const struct vm_def web7 = { .name = "web7", .owner = "bob", .app = "crm" };

static bool allows(const struct acl_binding *b, size_t n, const char *user, const char *group,
		   enum acl_role need, bool guest_data, const struct vm_def *vm,
		   enum acl_role *role)
{
	const char *groups[] = { "users", group };
	struct acl_subject who = { .uid = 1000, .user = user, .groups = groups,
				   .ngroups = group ? 2 : 1 };

	return acl_allows(b, n, &who, need, guest_data, vm, role);
}

static void test_allows_roles_and_scopes(void **state)
{
	struct acl_binding b[] = {
		binding("{\"name\":\"v\",\"user\":\"vic\",\"role\":\"viewer\"}"),
		binding("{\"name\":\"so\",\"user\":\"olga\",\"role\":\"operator\",\"scope\":\"app\","
			"\"value\":\"shop\"}"),
		binding("{\"name\":\"va\",\"user\":\"ada\",\"role\":\"vm-admin\",\"scope\":\"owner\","
			"\"value\":\"alice\"}"),
		binding("{\"name\":\"web\",\"group\":\"webops\",\"role\":\"operator\","
			"\"scope\":\"name\",\"value\":\"web*\"}"),
		binding("{\"name\":\"adm\",\"user\":\"root2\",\"role\":\"admin\"}"),
	};
	size_t n = sizeof(b) / sizeof(b[0]);
	const struct acl_subject root = { .uid = 0 };
	enum acl_role role;

	/* root is admin with no binding at all */
	assert_true(acl_allows(NULL, 0, &root, ACL_ADMIN, false, NULL, &role));
	assert_int_equal(role, ACL_ADMIN);
	/* nobody else without one, and the message gets "no role" */
	assert_false(allows(b, n, "mallory", NULL, ACL_VIEWER, false, NULL, &role));
	assert_int_equal(role, ACL_NONE);
	assert_false(allows(b, n, NULL, NULL, ACL_VIEWER, false, NULL, &role));

	/* viewer: reads anything, changes nothing */
	assert_true(allows(b, n, "vic", NULL, ACL_VIEWER, false, &crm1, &role));
	assert_int_equal(role, ACL_VIEWER);
	assert_true(allows(b, n, "vic", NULL, ACL_VIEWER, true, &crm1, &role));
	assert_false(allows(b, n, "vic", NULL, ACL_OPERATOR, false, &crm1, &role));
	assert_int_equal(role, ACL_VIEWER);

	/* operator of app shop: its VMs only, reads everywhere, no rules, no create */
	assert_true(allows(b, n, "olga", NULL, ACL_OPERATOR, false, &shop1, &role));
	assert_int_equal(role, ACL_OPERATOR);
	assert_false(allows(b, n, "olga", NULL, ACL_OPERATOR, false, &crm1, &role));
	assert_int_equal(role, ACL_OPERATOR);
	assert_false(allows(b, n, "olga", NULL, ACL_ADMIN, false, NULL, &role));
	assert_false(allows(b, n, "olga", NULL, ACL_VM_ADMIN, false, &shop1, &role));
	assert_true(allows(b, n, "olga", NULL, ACL_VIEWER, false, &crm1, &role));
	/* but what crm1's guest wrote is not for it */
	assert_true(allows(b, n, "olga", NULL, ACL_VIEWER, true, &shop1, &role));
	assert_false(allows(b, n, "olga", NULL, ACL_VIEWER, true, &crm1, &role));
	assert_false(allows(b, n, "olga", NULL, ACL_VIEWER, true, NULL, &role));

	/* vm-admin scoped by owner: creates and deletes alice's VMs, not bob's */
	assert_true(allows(b, n, "ada", NULL, ACL_VM_ADMIN, false, &shop1, &role));
	assert_true(allows(b, n, "ada", NULL, ACL_OPERATOR, false, &shop1, &role));
	assert_false(allows(b, n, "ada", NULL, ACL_VM_ADMIN, false, &crm1, &role));
	assert_int_equal(role, ACL_VM_ADMIN);

	/* a group binding with a name glob: any member, the matching names only */
	assert_true(allows(b, n, "gus", "webops", ACL_OPERATOR, false, &web7, &role));
	assert_false(allows(b, n, "gus", "webops", ACL_OPERATOR, false, &crm1, &role));
	assert_false(allows(b, n, "gus", "shopops", ACL_OPERATOR, false, &web7, &role));
	assert_int_equal(role, ACL_NONE);
	/* a user named like the group is not a member of it */
	assert_false(allows(b, n, "webops", NULL, ACL_OPERATOR, false, &web7, &role));

	/* admin: everything */
	assert_true(allows(b, n, "root2", NULL, ACL_ADMIN, false, NULL, &role));
	assert_true(allows(b, n, "root2", NULL, ACL_VIEWER, true, &crm1, &role));
}

/* Of several bindings, the one that allows counts; failing all, the highest role is told. */
static void test_allows_several_bindings(void **state)
{
	struct acl_binding b[] = {
		binding("{\"name\":\"a\",\"user\":\"olga\",\"role\":\"viewer\"}"),
		binding("{\"name\":\"b\",\"user\":\"olga\",\"role\":\"vm-admin\",\"scope\":\"app\","
			"\"value\":\"crm\"}"),
		binding("{\"name\":\"c\",\"group\":\"shopops\",\"role\":\"operator\",\"scope\":\"app\","
			"\"value\":\"shop\"}"),
	};
	enum acl_role role;

	assert_true(allows(b, 3, "olga", "shopops", ACL_OPERATOR, false, &shop1, &role));
	assert_int_equal(role, ACL_OPERATOR);
	assert_true(allows(b, 3, "olga", "shopops", ACL_VM_ADMIN, false, &crm1, &role));
	assert_int_equal(role, ACL_VM_ADMIN);
	assert_false(allows(b, 3, "olga", "shopops", ACL_VM_ADMIN, false, &shop1, &role));
	assert_int_equal(role, ACL_VM_ADMIN);
	/* the unscoped viewer binding reads every console */
	assert_true(allows(b, 3, "olga", NULL, ACL_VIEWER, true, &shop1, &role));
	assert_int_equal(role, ACL_VIEWER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_binding_from_json),
		cmocka_unit_test(test_binding_from_json_bad),
		cmocka_unit_test(test_allows_roles_and_scopes),
		cmocka_unit_test(test_allows_several_bindings),
	};

	return cmocka_run_group_tests_name("acl", tests, NULL, NULL);
}
