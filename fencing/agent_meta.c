/*
 * A fence agent's metadata: action=metadata, the little of its XML we need (parameter
 * names, required, deprecated, obsoletes; action names), and device parameters checked
 * against it when a device is added.
 *
 * Not an XML parser: a scanner of tags that knows comments, CDATA, processing
 * instructions and quoted attribute values, and refuses anything it cannot read, from
 * a cut document to binary garbage. Every read is bounded by the length it was given.
 */
#include "agent_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XML_ATTRS_MAX 16 /* kept per tag; more are parsed and dropped */

struct xml_attr {
	const char *name, *val;
	size_t nlen, vlen;
};

struct xml_tag {
	const char *name;
	size_t nlen;
	bool closing, empty;
	size_t nattrs;
	struct xml_attr attrs[XML_ATTRS_MAX];
};

static bool span_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && !memcmp(s, word, n);
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *skip_name(const char *p, const char *end)
{
	while (p < end && fa_is_name_char(*p))
		p++;
	return p;
}

static const struct xml_attr *tag_attr(const struct xml_tag *t, const char *name)
{
	for (size_t i = 0; i < t->nattrs; i++)
		if (span_is(t->attrs[i].name, t->attrs[i].nlen, name))
			return &t->attrs[i];
	return NULL;
}

/* One name="value" at @p; NULL and *@pp past it, or why not. */
static const char *xml_attr(const char **pp, const char *end, struct xml_tag *t)
{
	const char *p = *pp, *name = p, *val, *q;
	size_t nlen;
	char quote;

	p = skip_name(p, end);
	nlen = (size_t)(p - name);
	p = skip_space(p, end);
	if (p >= end)
		return "truncated";
	if (*p != '=')
		return "malformed attribute";
	p = skip_space(p + 1, end);
	if (p >= end)
		return "truncated";
	if (*p != '"' && *p != '\'')
		return "unquoted attribute";
	quote = *p++;
	val = p;
	q = memchr(p, quote, (size_t)(end - p));
	if (!q)
		return "truncated";
	if (t->nattrs < XML_ATTRS_MAX)
		t->attrs[t->nattrs++] = (struct xml_attr){
			.name = name, .nlen = nlen, .val = val, .vlen = (size_t)(q - val)};
	*pp = q + 1;
	return NULL;
}

/* The tag at *@pp (a '<'); NULL and *@pp past its '>', or why it is not one. */
static const char *xml_tag(const char **pp, const char *end, struct xml_tag *t)
{
	const char *p = *pp + 1, *why;

	memset(t, 0, sizeof(*t));
	if (p < end && *p == '/') {
		t->closing = true;
		p++;
	}
	t->name = p;
	p = skip_name(p, end);
	t->nlen = (size_t)(p - t->name);
	if (p >= end)
		return "truncated";
	if (!t->nlen)
		return "not a tag";
	for (;;) {
		p = skip_space(p, end);
		if (p >= end || (*p == '/' && p + 1 >= end))
			return "truncated";
		if (*p == '>' || (*p == '/' && p[1] == '>')) {
			t->empty = *p == '/';
			*pp = p + (t->empty ? 2 : 1);
			return NULL;
		}
		if (t->closing || !fa_is_name_char(*p))
			return "malformed tag";
		why = xml_attr(&p, end, t);
		if (why)
			return why;
	}
}

/* Attribute @name of @t, copied to @dst; false if missing or not a name that fits. */
static bool copy_name_attr(const struct xml_tag *t, const char *name, char *dst, size_t len)
{
	const struct xml_attr *a = tag_attr(t, name);

	if (!a || !a->vlen || a->vlen >= len)
		return false;
	for (size_t i = 0; i < a->vlen; i++)
		if (!fa_is_name_char(a->val[i]))
			return false;
	memcpy(dst, a->val, a->vlen);
	dst[a->vlen] = '\0';
	return true;
}

static bool attr_true(const struct xml_tag *t, const char *name)
{
	const struct xml_attr *a = tag_attr(t, name);

	return a &&
		(span_is(a->val, a->vlen, "1") || span_is(a->val, a->vlen, "true") ||
		 span_is(a->val, a->vlen, "yes"));
}

static int add_action(struct fence_agent_meta *m, const struct xml_tag *t, const char **why)
{
	char name[FENCE_AGENT_NAME_MAX];

	if (!copy_name_attr(t, "name", name, sizeof(name))) {
		*why = "an <action> without a valid name";
		return -EBADMSG;
	}
	if (fence_agent_meta_has_action(m, name))
		return 0;
	if (m->nactions >= FENCE_AGENT_ACTIONS_MAX) {
		*why = "too many actions";
		return -E2BIG;
	}
	memcpy(m->actions[m->nactions++], name, sizeof(name));
	return 0;
}

static int add_param(struct fence_agent_meta *m, const struct xml_tag *t, const char **why)
{
	char name[FENCE_AGENT_NAME_MAX];
	struct fence_agent_meta_param *p;

	if (!copy_name_attr(t, "name", name, sizeof(name))) {
		*why = "a <parameter> without a valid name";
		return -EBADMSG;
	}
	if (fence_agent_meta_has_param(m, name))
		return 0;
	if (m->nparams >= FENCE_AGENT_PARAMS_MAX) {
		*why = "too many parameters";
		return -E2BIG;
	}
	p = &m->params[m->nparams++];
	memcpy(p->name, name, sizeof(name));
	p->required = attr_true(t, "required");
	p->deprecated = attr_true(t, "deprecated");
	if (tag_attr(t, "obsoletes") &&
	    !copy_name_attr(t, "obsoletes", p->obsoletes, sizeof(p->obsoletes))) {
		*why = "a <parameter> with a bad obsoletes=";
		return -EBADMSG;
	}
	return 0;
}

/* Past <!-- -->, <![CDATA[ ]]>, <? ?> or <!...> at @p; NULL if none starts there, @end if cut. */
static const char *skip_special(const char *p, const char *end)
{
	static const struct {
		const char *open, *close;
	} sp[] = {{"<!--", "-->"}, {"<![CDATA[", "]]>"}, {"<?", "?>"}, {"<!", ">"}};
	size_t left = (size_t)(end - p);

	for (size_t i = 0; i < sizeof(sp) / sizeof(sp[0]); i++) {
		size_t ol = strlen(sp[i].open), cl = strlen(sp[i].close);
		const char *q;

		if (left < ol || memcmp(p, sp[i].open, ol))
			continue;
		q = memmem(p + ol, left - ol, sp[i].close, cl);
		return q ? q + cl : end;
	}
	return NULL;
}

struct scan {
	bool open, closed;
};

/* One tag: <resource-agent> opens and closes the scan, <parameter> and <action> inside. */
static int on_tag(struct fence_agent_meta *m, struct scan *s, const struct xml_tag *t,
		  const char **why)
{
	if (span_is(t->name, t->nlen, "resource-agent")) {
		if (t->closing && !s->open) {
			*why = "</resource-agent> before <resource-agent>";
			return -EBADMSG;
		}
		if (!t->closing && s->open) {
			*why = "nested <resource-agent>";
			return -EBADMSG;
		}
		if (!t->closing)
			copy_name_attr(t, "name", m->name, sizeof(m->name));
		s->open = true;
		s->closed = t->closing || t->empty;
		return 0;
	}
	if (!s->open || t->closing)
		return 0;
	if (span_is(t->name, t->nlen, "parameter"))
		return add_param(m, t, why);
	if (span_is(t->name, t->nlen, "action"))
		return add_action(m, t, why);
	return 0;
}

int fence_agent_meta_parse(const char *xml, size_t len, struct fence_agent_meta *meta, char *err,
			   size_t errlen)
{
	const char *p = xml, *end = xml + len, *why = NULL, *nul, *sp;
	struct scan s = {0};
	struct xml_tag t;
	int rc = 0;

	memset(meta, 0, sizeof(*meta));
	if (!xml || !len) {
		snprintf(err, errlen, "no metadata (empty output)");
		return -EBADMSG;
	}
	nul = memchr(xml, '\0', len);
	if (nul) {
		snprintf(err, errlen, "a NUL byte at offset %zu: not XML", (size_t)(nul - xml));
		return -EBADMSG;
	}
	while (!s.closed && p < end && (p = memchr(p, '<', (size_t)(end - p)))) {
		const char *at = p;

		sp = skip_special(p, end);
		if (sp) {
			why = sp == end ? "truncated" : NULL;
			p = sp;
		} else {
			why = xml_tag(&p, end, &t);
			rc = why ? -EBADMSG : on_tag(meta, &s, &t, &why);
		}
		if (why) {
			snprintf(err, errlen, "%s at byte %zu", why, (size_t)(at - xml));
			memset(meta, 0, sizeof(*meta));
			return rc ? rc : -EBADMSG;
		}
	}
	if (!s.open) {
		snprintf(err, errlen, "no <resource-agent> element: not fence agent metadata");
		return -EBADMSG;
	}
	if (!s.closed) {
		snprintf(err, errlen, "truncated: no </resource-agent>");
		memset(meta, 0, sizeof(*meta));
		return -EBADMSG;
	}
	return 0;
}

int fence_agent_metadata(const char *agent, unsigned int timeout_s, struct fence_agent_meta *meta,
			 char *err, size_t errlen)
{
	struct fence_agent_call c = {.agent = agent, .action = "metadata"};
	struct fa_capture cap = {.want_full = true};
	struct fence_agent_result *res;
	char why[256];
	int rc;

	memset(meta, 0, sizeof(*meta));
	c.timeout_ms = timeout_s > UINT_MAX / 1000 ? UINT_MAX : timeout_s * 1000;
	res = malloc(sizeof(*res));
	if (!res) {
		snprintf(err, errlen, "%s action=metadata: out of memory", fa_base_name(agent));
		return -ENOMEM;
	}
	rc = fa_run(&c, res, &cap);
	if (rc) {
		snprintf(err, errlen, "%s", res->summary);
	} else if (res->exit_code != 0) {
		snprintf(err, errlen, "%s", res->summary);
		rc = -EBADMSG;
	} else if (cap.full_overflow) {
		snprintf(err, errlen, "%s action=metadata: more than %d bytes of metadata",
			 fa_base_name(agent), FA_METADATA_MAX);
		rc = -E2BIG;
	} else {
		rc = fence_agent_meta_parse(cap.full, cap.full_len, meta, why, sizeof(why));
		if (rc)
			snprintf(err, errlen, "%s action=metadata: %s", fa_base_name(agent), why);
	}
	free(cap.full);
	free(res);
	return rc;
}

bool fence_agent_meta_has_param(const struct fence_agent_meta *meta, const char *name)
{
	for (size_t i = 0; i < meta->nparams; i++)
		if (!strcmp(meta->params[i].name, name))
			return true;
	return false;
}

bool fence_agent_meta_has_action(const struct fence_agent_meta *meta, const char *name)
{
	for (size_t i = 0; i < meta->nactions; i++)
		if (!strcmp(meta->actions[i], name))
			return true;
	return false;
}

const char *fence_agent_meta_plug_arg(const struct fence_agent_meta *meta)
{
	if (fence_agent_meta_has_param(meta, "plug"))
		return "plug";
	if (fence_agent_meta_has_param(meta, "port"))
		return "port";
	return NULL;
}

/* --- device parameters ------------------------------------------------------------- */

static bool key_given(const char *const *keys, size_t n, const char *name)
{
	for (size_t i = 0; name[0] && i < n; i++)
		if (!strcmp(keys[i], name))
			return true;
	return false;
}

/* Given under its own name, the name it obsoletes, or a name that obsoletes it. */
static bool required_given(const struct fence_agent_meta *m, const struct fence_agent_meta_param *p,
			   const char *const *keys, size_t n)
{
	if (key_given(keys, n, p->name) || key_given(keys, n, p->obsoletes))
		return true;
	for (size_t i = 0; i < m->nparams; i++)
		if (!strcmp(m->params[i].obsoletes, p->name) &&
		    key_given(keys, n, m->params[i].name))
			return true;
	return false;
}

/* "ipaddr login passwd ...": what a device may set, for the unknown-parameter message. */
static void known_list(const struct fence_agent_meta *m, char *buf, size_t len)
{
	size_t n = 0;
	int w;

	buf[0] = '\0';
	for (size_t i = 0; i < m->nparams; i++) {
		const struct fence_agent_meta_param *p = &m->params[i];

		if (p->deprecated || fa_is_ours(p->name))
			continue;
		w = snprintf(buf + n, len - n, "%s%s", n ? " " : "", p->name);
		if (w < 0 || (size_t)w >= len - n) {
			snprintf(buf + (n < len - 4 ? n : len - 4), 4, "...");
			return;
		}
		n += (size_t)w;
	}
}

static int check_key(const struct fence_agent_meta *meta, const char *agent,
		     const char *const *keys, size_t i, char *err, size_t errlen)
{
	char known[320];

	if (!fa_valid_key(keys[i])) {
		snprintf(err, errlen, "%s: '%s' is not a parameter name", agent,
			 keys[i] ? keys[i] : "(null)");
		return -EINVAL;
	}
	if (fa_is_ours(keys[i])) {
		snprintf(err, errlen,
			 "%s: '%s' is not a device parameter: hvcluster sends it with each action",
			 agent, keys[i]);
		return -EINVAL;
	}
	if (key_given(keys, i, keys[i])) {
		snprintf(err, errlen, "%s: parameter '%s' given twice", agent, keys[i]);
		return -EINVAL;
	}
	if (!fence_agent_meta_has_param(meta, keys[i])) {
		known_list(meta, known, sizeof(known));
		snprintf(err, errlen, "%s: unknown parameter '%s' (it takes: %s)", agent, keys[i],
			 known);
		return -EINVAL;
	}
	return 0;
}

int fence_agent_check_params(const struct fence_agent_meta *meta, const char *const *keys, size_t n,
			     char *err, size_t errlen)
{
	const char *agent = meta->name[0] ? meta->name : "fence agent";
	int rc;

	for (size_t i = 0; i < n; i++) {
		rc = check_key(meta, agent, keys, i, err, errlen);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < meta->nparams; i++) {
		const struct fence_agent_meta_param *p = &meta->params[i];

		if (!p->required || fa_is_ours(p->name) || required_given(meta, p, keys, n))
			continue;
		snprintf(err, errlen, "%s: missing required parameter '%s'", agent, p->name);
		return -EINVAL;
	}
	return 0;
}
