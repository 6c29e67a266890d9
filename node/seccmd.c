/*
 * hvctl security report: cluster/secreport.c computes it from the replicated
 * state; this node adds what only it can read (the crypto its corosync runs
 * with). Reads only: a viewer may ask.
 */
#include "hvnoded.h"

#include <errno.h>
#include <string.h>

#include <qb/qblog.h>

#include "../cluster/secreport.h"

json_t *cmd_security_report(struct hvnoded *d, struct ipc_request *req, json_t *args,
			    int *status)
{
	struct secreport_local local = { .node = d->cfg.node_name };
	json_t *res;

	local.crypto_rc = membership_crypto(d->membership, local.crypto_cipher,
					    sizeof(local.crypto_cipher), local.crypto_hash,
					    sizeof(local.crypto_hash));
	if (local.crypto_rc)
		qb_log(LOG_WARNING, "security report: cannot read corosync's crypto settings: %s",
		       strerror(-local.crypto_rc));
	res = secreport_build(d->state, &local);
	if (!res)
		return command_error(status, -ENOMEM, "security report: out of memory");
	*status = 0;
	return res;
}
