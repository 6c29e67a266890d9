/*
 * This node's CURVE keypair for the migration stream: @dir/migrate.key holds the
 * secret key in Z85 (40 characters and a newline, mode 0600, owned by us) and
 * @dir/migrate.pub the public one (0644), which operators copy around.
 *
 * A pair is only made when neither file exists. Anything else that looks wrong is
 * refused with a message naming the file, never replaced: a key that changes under
 * the cluster's feet would lock this node out of every migration.
 */
#include "migrate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qb/qbdefs.h>
#include <qb/qblog.h>
#include <zmq.h>

#define KEY_FILE "migrate.key"
#define PUB_FILE "migrate.pub"
#define KEY_LEN (MIG_KEY_Z85 - 1)

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				".-:+=^!/*?&<>()[]{}@%$#";

__attribute__((format(printf, 4, 5))) static int fail(int rc, char *err, size_t errlen,
						      const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

bool mig_key_is_valid(const char *z85)
{
	if (!z85)
		return false;
	for (int i = 0; i < KEY_LEN; i++)
		if (!z85[i] || !strchr(z85_chars, z85[i]))
			return false;
	return z85[KEY_LEN] == '\0';
}

/* Read a whole small file (at most @cap - 1 bytes) from an open fd; its length or -errno. */
static ssize_t read_small(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap - 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

/* 40 Z85 characters and at most one newline: copied into @key. */
static bool parse_key_text(const char *buf, size_t len, char key[MIG_KEY_Z85])
{
	if (len == KEY_LEN + 1 && buf[KEY_LEN] == '\n')
		len--;
	if (len != KEY_LEN)
		return false;
	memcpy(key, buf, KEY_LEN);
	key[KEY_LEN] = '\0';
	return mig_key_is_valid(key);
}

/* Write @key and a newline into a new file @path of mode @mode (whatever the umask). */
static int write_key_file(const char *path, const char *key, mode_t mode, char *err, size_t errlen)
{
	char line[MIG_KEY_Z85 + 1];
	size_t len, done = 0;
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = -errno;
		return fail(rc, err, errlen, "%s: cannot create: %s", path, strerror(-rc));
	}
	if (fchmod(fd, mode) < 0) {
		rc = -errno;
		fail(rc, err, errlen, "%s: chmod %04o: %s", path, (unsigned int)mode,
		     strerror(-rc));
		goto err_unlink;
	}
	len = (size_t)snprintf(line, sizeof(line), "%s\n", key);
	while (done < len) {
		ssize_t n = write(fd, line + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			fail(rc, err, errlen, "%s: write: %s", path, strerror(-rc));
			goto err_unlink;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		fail(rc, err, errlen, "%s: fsync: %s", path, strerror(-rc));
		goto err_unlink;
	}
	explicit_bzero(line, sizeof(line));
	if (close(fd) < 0) {
		rc = -errno;
		unlink(path);
		return fail(rc, err, errlen, "%s: close: %s", path, strerror(-rc));
	}
	return 0;

err_unlink:
	explicit_bzero(line, sizeof(line));
	close(fd);
	unlink(path);
	return rc;
}

static int create_pair(const char *keypath, const char *pubpath, struct mig_keys *k, char *err,
		       size_t errlen)
{
	int rc;

	if (zmq_curve_keypair(k->pub, k->sec) < 0) {
		rc = -zmq_errno();
		return fail(rc, err, errlen, "cannot make a CURVE keypair: %s", zmq_strerror(-rc));
	}
	rc = write_key_file(keypath, k->sec, 0600, err, errlen);
	if (rc)
		return rc;
	rc = write_key_file(pubpath, k->pub, 0644, err, errlen);
	if (rc) {
		unlink(keypath);
		return rc;
	}
	qb_log(LOG_NOTICE, "migration keys: made a new pair in %s, public key %s", keypath, k->pub);
	return 0;
}

/* The secret key from @path, checked: a regular file of ours, mode 0600, one Z85 key. */
static int load_secret(int fd, const char *path, char sec[MIG_KEY_Z85], char *err, size_t errlen)
{
	char buf[128];
	struct stat st;
	ssize_t len;
	int rc;

	if (fstat(fd, &st) < 0) {
		rc = -errno;
		return fail(rc, err, errlen, "%s: stat: %s", path, strerror(-rc));
	}
	if (!S_ISREG(st.st_mode))
		return fail(-EPERM, err, errlen, "%s: not a regular file", path);
	if (st.st_uid != geteuid())
		return fail(-EPERM, err, errlen, "%s: owned by uid %u, not by us (uid %u)", path,
			    (unsigned int)st.st_uid, (unsigned int)geteuid());
	if ((st.st_mode & 07777) != 0600)
		return fail(-EPERM, err, errlen, "%s: mode %04o, must be 0600", path,
			    (unsigned int)(st.st_mode & 07777));
	len = read_small(fd, buf, sizeof(buf));
	if (len < 0)
		return fail((int)len, err, errlen, "%s: read: %s", path, strerror((int)-len));
	rc = parse_key_text(buf, (size_t)len, sec) ? 0 : -EINVAL;
	explicit_bzero(buf, sizeof(buf));
	if (rc)
		return fail(rc, err, errlen,
			    "%s: not a Z85 CURVE key (40 characters and a newline)", path);
	return 0;
}

/* Check @pubpath against @pub, or write it when it is missing. */
static int check_public(const char *pubpath, const char *pub, char *err, size_t errlen)
{
	char buf[128], stored[MIG_KEY_Z85];
	struct stat st;
	ssize_t len;
	int fd, rc;

	fd = open(pubpath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		qb_log(LOG_WARNING, "migration keys: %s missing, written again from the secret key",
		       pubpath);
		return write_key_file(pubpath, pub, 0644, err, errlen);
	}
	if (fd < 0) {
		rc = -errno;
		return fail(rc, err, errlen, "%s: cannot open: %s", pubpath, strerror(-rc));
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		fail(rc, err, errlen, "%s: stat: %s", pubpath, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = fail(-EINVAL, err, errlen, "%s: not a regular file", pubpath);
		goto out;
	}
	len = read_small(fd, buf, sizeof(buf));
	if (len < 0) {
		rc = fail((int)len, err, errlen, "%s: read: %s", pubpath, strerror((int)-len));
		goto out;
	}
	if (!parse_key_text(buf, (size_t)len, stored)) {
		rc = fail(-EINVAL, err, errlen,
			  "%s: not a Z85 CURVE key (40 characters and a newline)", pubpath);
		goto out;
	}
	if (strcmp(stored, pub)) {
		rc = fail(-EINVAL, err, errlen,
			  "%s: %s does not belong to the secret key, whose public key is %s",
			  pubpath, stored, pub);
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int mig_keys_load(const char *dir, struct mig_keys *k, char *err, size_t errlen)
{
	char keypath[PATH_MAX], pubpath[PATH_MAX];
	int fd, rc;

	if (!dir || !k)
		return fail(-EINVAL, err, errlen, "no key directory");
	if ((size_t)snprintf(keypath, sizeof(keypath), "%s/" KEY_FILE, dir) >= sizeof(keypath) ||
	    (size_t)snprintf(pubpath, sizeof(pubpath), "%s/" PUB_FILE, dir) >= sizeof(pubpath))
		return fail(-ENAMETOOLONG, err, errlen, "%s: path too long", dir);
	memset(k, 0, sizeof(*k));

	fd = open(keypath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (access(pubpath, F_OK) == 0)
			return fail(-EINVAL, err, errlen,
				    "%s exists but its secret key %s does not", pubpath, keypath);
		rc = create_pair(keypath, pubpath, k, err, errlen);
		if (rc != -EEXIST)
			goto out;
		/* Another process made the pair first: load it. */
		fd = open(keypath, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0 && errno == ELOOP) {
		rc = fail(-EPERM, err, errlen, "%s: a symbolic link, refused", keypath);
		goto out;
	}
	if (fd < 0) {
		rc = -errno;
		fail(rc, err, errlen, "%s: cannot open: %s", keypath, strerror(-rc));
		goto out;
	}
	rc = load_secret(fd, keypath, k->sec, err, errlen);
	close(fd);
	if (rc)
		goto out;
	if (zmq_curve_public(k->pub, k->sec) < 0) {
		rc = -zmq_errno();
		fail(rc, err, errlen, "%s: cannot derive the public key: %s", keypath,
		     zmq_strerror(-rc));
		goto out;
	}
	rc = check_public(pubpath, k->pub, err, errlen);
out:
	if (rc)
		explicit_bzero(k, sizeof(*k));
	return rc;
}
