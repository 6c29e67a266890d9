/*
 * iscsi://HOST[:PORT]/TARGET/LUN, parsed strictly.
 *
 * libiscsi has its own URL parser, but it accepts credentials, query options
 * and partial URLs; a LUN URL in a VM definition must mean exactly one LUN, and
 * a wrong one must be refused with the part that is wrong.
 */
#include "storage.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SCHEME "iscsi://"
#define EXPECTED "(expected iscsi://HOST[:PORT]/IQN/LUN)"

/*
 * @url as messages show it: one line (control characters as '?'), and without
 * what precedes an '@' in the authority, which may be a password.
 */
static const char *url_shown(const char *url, char *buf, size_t len)
{
	const char *auth = strstr(url, "://"), *at = NULL;
	size_t pos = 0;

	if (auth) {
		auth += 3;
		at = memrchr(auth, '@', strcspn(auth, "/?#"));
	}
	for (const char *p = url; *p && pos + 1 < len; p++) {
		if (p == auth && at) {
			if (pos + 4 >= len)
				break;
			memcpy(buf + pos, "***", 3);
			pos += 3;
			p = at;
		}
		buf[pos++] = isprint((unsigned char)*p) ? *p : '?';
	}
	buf[pos] = '\0';
	return buf;
}

__attribute__((format(printf, 4, 5))) static int bad(char *err, size_t errlen, const char *url,
						     const char *fmt, ...)
{
	char why[512], shown[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (errlen)
		snprintf(err, errlen, "LUN URL '%s': %s", url_shown(url, shown, sizeof(shown)),
			 why);
	return -EINVAL;
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* A DNS name or dotted IPv4: labels of [A-Za-z0-9-], not starting or ending in '-'. */
static const char *host_problem(const char *h, size_t n)
{
	size_t label = 0;

	if (n == 0)
		return "the host is empty";
	if (n > LUN_HOST_MAX)
		return "the host is longer than 255 characters";
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return "the host has an empty label or a label ending in '-'";
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return "the host has a character other than letters, digits, '-' and '.'";
		if (c == '-' && label == 0)
			return "a label of the host starts with '-'";
		label++;
	}
	if (label == 0 || h[n - 1] == '-')
		return "the host ends in '.' or '-'";
	return NULL;
}

/* iqn.YYYY-MM.reverse.domain[:anything] */
static const char *iqn_problem(const char *t, size_t n)
{
	const char *p = t + 4, *end = t + n, *colon;
	int month;

	if (n < 12 || !all_digits(p, 4) || p[4] != '-' || !all_digits(p + 5, 2) || p[7] != '.')
		return "an iqn. name must start with iqn.YYYY-MM. (a year and month)";
	month = (p[5] - '0') * 10 + (p[6] - '0');
	if (month < 1 || month > 12)
		return "the month of the iqn. name is not 01..12";
	p += 8;
	colon = memchr(p, ':', (size_t)(end - p));
	if (!colon)
		colon = end;
	if (colon == p)
		return "an iqn. name needs a reverse domain name after the date";
	for (const char *q = p; q < colon; q++) {
		if (*q == '.' && (q == p || q[-1] == '.' || q + 1 == colon))
			return "the domain of the iqn. name has an empty label";
		if (!islower((unsigned char)*q) && !isdigit((unsigned char)*q) && *q != '-' &&
		    *q != '.')
			return "the domain of the iqn. name may only have a-z, 0-9, '-' and '.'";
	}
	return NULL;
}

static const char *target_problem(const char *t, size_t n)
{
	if (n == 0)
		return "the target name is empty";
	if (n > LUN_TARGET_MAX)
		return "the target name is longer than 223 characters";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		/* RFC 3722: iSCSI names are lower case after normalization */
		if (!islower(c) && !isdigit(c) && c != '-' && c != '.' && c != ':' &&
		    !(isupper(c) && (strncmp(t, "eui.", 4) == 0 || strncmp(t, "naa.", 4) == 0)))
			return "the target name may only have a-z, 0-9, '-', '.' and ':'";
	}
	if (strncmp(t, "iqn.", 4) == 0)
		return iqn_problem(t, n);
	if (strncmp(t, "eui.", 4) == 0)
		return n == 20 && all_hex(t + 4, 16) ? NULL
						     : "an eui. name must be eui. and 16 hex digits";
	if (strncmp(t, "naa.", 4) == 0)
		return (n == 20 || n == 36) && all_hex(t + 4, n - 4)
			       ? NULL
			       : "a naa. name must be naa. and 16 or 32 hex digits";
	return "the target name must start with iqn., eui. or naa.";
}

/* Splits "host[:port]" or "[v6][:port]" into @u. NULL or the problem. */
static const char *parse_authority(const char *a, size_t n, struct lun_url *u)
{
	const char *host = a, *port = NULL, *problem;
	size_t hlen = n, plen = 0;
	unsigned long v = 0;
	char v6[64];
	struct in6_addr addr;

	if (memchr(a, '@', n))
		return "credentials in the URL are not supported";
	if (n > 0 && a[0] == '[') {
		const char *close = memchr(a, ']', n);

		if (!close)
			return "the IPv6 address has no closing ']'";
		host = a + 1;
		hlen = (size_t)(close - host);
		if (hlen == 0 || hlen >= sizeof(v6))
			return "the IPv6 address is not valid";
		memcpy(v6, host, hlen);
		v6[hlen] = '\0';
		if (inet_pton(AF_INET6, v6, &addr) != 1)
			return "the IPv6 address is not valid";
		if (close + 1 < a + n) {
			if (close[1] != ':')
				return "junk after the IPv6 address";
			port = close + 2;
			plen = (size_t)(a + n - port);
		}
	} else {
		const char *colon = memchr(a, ':', n);

		if (colon) {
			hlen = (size_t)(colon - a);
			port = colon + 1;
			plen = (size_t)(a + n - port);
		}
		problem = host_problem(host, hlen);
		if (problem)
			return problem;
	}
	if (port) {
		if (!all_digits(port, plen) || plen > 5)
			return "the port is not a number 1..65535";
		for (size_t i = 0; i < plen; i++)
			v = v * 10 + (unsigned long)(port[i] - '0');
		if (v < 1 || v > 65535)
			return "the port is not a number 1..65535";
	}
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	u->port = port ? (uint16_t)v : LUN_PORT_DEFAULT;
	if (a[0] == '[')
		snprintf(u->portal, sizeof(u->portal), "[%s]:%u", u->host, (unsigned)u->port);
	else
		snprintf(u->portal, sizeof(u->portal), "%s:%u", u->host, (unsigned)u->port);
	return NULL;
}

int lun_url_parse(const char *s, struct lun_url *u, char *err, size_t errlen)
{
	const char *auth, *slash, *target, *lun, *problem;
	char shown[512];
	unsigned long v = 0;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!s || !*s)
		return bad(err, errlen, s ? s : "", "empty LUN URL " EXPECTED);
	if (strncasecmp(s, SCHEME, strlen(SCHEME)) != 0) {
		if (errlen)
			snprintf(err, errlen, "'%s' is not an iSCSI URL " EXPECTED,
				 url_shown(s, shown, sizeof(shown)));
		return -EINVAL;
	}
	for (const char *p = s; *p; p++)
		if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return bad(err, errlen, s, "the URL contains white space or control "
						   "characters");
	if (strpbrk(s, "?#"))
		return bad(err, errlen, s, "query or fragment parts are not supported " EXPECTED);

	auth = s + strlen(SCHEME);
	slash = strchr(auth, '/');
	if (!slash)
		return bad(err, errlen, s, "no target name " EXPECTED);
	problem = parse_authority(auth, (size_t)(slash - auth), u);
	if (problem)
		return bad(err, errlen, s, "%s", problem);

	target = slash + 1;
	slash = strchr(target, '/');
	if (!slash)
		return bad(err, errlen, s, "no LUN number " EXPECTED);
	n = (size_t)(slash - target);
	problem = target_problem(target, n);
	if (problem)
		return bad(err, errlen, s, "%s", problem);
	memcpy(u->target, target, n);
	u->target[n] = '\0';

	lun = slash + 1;
	n = strlen(lun);
	if (n == 0)
		return bad(err, errlen, s, "no LUN number " EXPECTED);
	if (strchr(lun, '/'))
		return bad(err, errlen, s, "junk after the LUN number " EXPECTED);
	if (!all_digits(lun, n) || n > 5)
		return bad(err, errlen, s, "the LUN '%s' is not a number 0..%d", lun, LUN_MAX);
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned long)(lun[i] - '0');
	if (v > LUN_MAX)
		return bad(err, errlen, s, "the LUN %lu is out of range 0..%d", v, LUN_MAX);
	u->lun = (uint16_t)v;
	return 0;
}
