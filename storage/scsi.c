/*
 * SCSI status and sense data as words an admin can act on, and as errno
 * values: the one place where SCSI outcomes become -errno.
 */
#include "storage.h"

#include <errno.h>
#include <stdio.h>

const char *scsi_status_name(int status, char *buf, size_t len)
{
	switch (status) {
	case 0x00:
		return "GOOD";
	case 0x02:
		return "CHECK CONDITION";
	case 0x04:
		return "CONDITION MET";
	case 0x08:
		return "BUSY";
	case 0x18:
		return "RESERVATION CONFLICT";
	case 0x28:
		return "TASK SET FULL";
	case 0x30:
		return "ACA ACTIVE";
	case 0x40:
		return "TASK ABORTED";
	}
	snprintf(buf, len, "status 0x%02x", (unsigned)status & 0xff);
	return buf;
}

const char *scsi_sense_key_name(int key, char *buf, size_t len)
{
	static const char *const names[] = {
		"NO_SENSE",	   "RECOVERED_ERROR", "NOT_READY",	"MEDIUM_ERROR",
		"HARDWARE_ERROR",  "ILLEGAL_REQUEST", "UNIT_ATTENTION", "DATA_PROTECT",
		"BLANK_CHECK",	   "VENDOR_SPECIFIC", "COPY_ABORTED",	"ABORTED_COMMAND",
		"OBSOLETE",	   "VOLUME_OVERFLOW", "MISCOMPARE",
	};

	if (key >= 0 && (size_t)key < sizeof(names) / sizeof(names[0]))
		return names[key];
	snprintf(buf, len, "sense key 0x%x", (unsigned)key);
	return buf;
}

struct asc_entry {
	uint8_t asc, ascq;
	const char *name;
};

/* The ones a PR-fenced, UA-raising iSCSI disk actually shows. */
static const struct asc_entry asc_table[] = {
	{ 0x00, 0x00, "NO ADDITIONAL SENSE INFORMATION" },
	{ 0x04, 0x00, "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE" },
	{ 0x04, 0x01, "LOGICAL UNIT IS IN PROCESS OF BECOMING READY" },
	{ 0x04, 0x02, "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED" },
	{ 0x04, 0x03, "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED" },
	{ 0x04, 0x0a, "LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION" },
	{ 0x04, 0x0b, "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE" },
	{ 0x04, 0x0c, "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE" },
	{ 0x08, 0x00, "LOGICAL UNIT COMMUNICATION FAILURE" },
	{ 0x0c, 0x00, "WRITE ERROR" },
	{ 0x11, 0x00, "UNRECOVERED READ ERROR" },
	{ 0x1a, 0x00, "PARAMETER LIST LENGTH ERROR" },
	{ 0x20, 0x00, "INVALID COMMAND OPERATION CODE" },
	{ 0x21, 0x00, "LOGICAL BLOCK ADDRESS OUT OF RANGE" },
	{ 0x24, 0x00, "INVALID FIELD IN CDB" },
	{ 0x25, 0x00, "LOGICAL UNIT NOT SUPPORTED" },
	{ 0x26, 0x00, "INVALID FIELD IN PARAMETER LIST" },
	{ 0x26, 0x04, "INVALID RELEASE OF PERSISTENT RESERVATION" },
	{ 0x27, 0x00, "WRITE PROTECTED" },
	{ 0x29, 0x00, "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED" },
	{ 0x29, 0x01, "POWER ON OCCURRED" },
	{ 0x29, 0x02, "SCSI BUS RESET OCCURRED" },
	{ 0x29, 0x03, "BUS DEVICE RESET FUNCTION OCCURRED" },
	{ 0x29, 0x04, "DEVICE INTERNAL RESET" },
	{ 0x29, 0x07, "I_T NEXUS LOSS OCCURRED" },
	{ 0x2a, 0x01, "MODE PARAMETERS CHANGED" },
	{ 0x2a, 0x03, "RESERVATIONS PREEMPTED" },
	{ 0x2a, 0x04, "RESERVATIONS RELEASED" },
	{ 0x2a, 0x05, "REGISTRATIONS PREEMPTED" },
	{ 0x2a, 0x06, "ASYMMETRIC ACCESS STATE CHANGED" },
	{ 0x2a, 0x09, "CAPACITY DATA HAS CHANGED" },
	{ 0x2f, 0x00, "COMMANDS CLEARED BY ANOTHER INITIATOR" },
	{ 0x3a, 0x00, "MEDIUM NOT PRESENT" },
	{ 0x3f, 0x01, "MICROCODE HAS BEEN CHANGED" },
	{ 0x3f, 0x03, "INQUIRY DATA HAS CHANGED" },
	{ 0x3f, 0x0e, "REPORTED LUNS DATA HAS CHANGED" },
	{ 0x44, 0x00, "INTERNAL TARGET FAILURE" },
	{ 0x55, 0x04, "INSUFFICIENT REGISTRATION RESOURCES" },
};

const char *scsi_asc_name(int asc, int ascq)
{
	for (size_t i = 0; i < sizeof(asc_table) / sizeof(asc_table[0]); i++)
		if (asc_table[i].asc == asc && asc_table[i].ascq == ascq)
			return asc_table[i].name;
	return NULL;
}

char *scsi_sense_describe(char *buf, size_t len, int key, int asc, int ascq)
{
	char kb[32];
	const char *name = scsi_asc_name(asc, ascq);

	if (name)
		snprintf(buf, len, "sense %s asc/ascq 0x%02x/0x%02x (%s)",
			 scsi_sense_key_name(key, kb, sizeof(kb)), (unsigned)asc & 0xff,
			 (unsigned)ascq & 0xff, name);
	else
		snprintf(buf, len, "sense %s asc/ascq 0x%02x/0x%02x",
			 scsi_sense_key_name(key, kb, sizeof(kb)), (unsigned)asc & 0xff,
			 (unsigned)ascq & 0xff);
	return buf;
}

int scsi_sense_errno(int key, int asc, int ascq)
{
	switch (key) {
	case 0x05: /* ILLEGAL REQUEST */
		if (asc == 0x20)
			return -EOPNOTSUPP;
		if (asc == 0x25)
			return -ENXIO;
		return -EINVAL;
	case 0x07: /* DATA PROTECT */
		return -EROFS;
	default:
		return -EIO;
	}
}

const char *lun_pr_type_name(int type, char *buf, size_t len)
{
	switch (type) {
	case LUN_PR_TYPE_WE:
		return "Write Exclusive";
	case LUN_PR_TYPE_EA:
		return "Exclusive Access";
	case LUN_PR_TYPE_WERO:
		return "Write Exclusive - Registrants Only";
	case LUN_PR_TYPE_EARO:
		return "Exclusive Access - Registrants Only";
	case LUN_PR_TYPE_WEAR:
		return "Write Exclusive - All Registrants";
	case LUN_PR_TYPE_EAAR:
		return "Exclusive Access - All Registrants";
	}
	snprintf(buf, len, "type %d", type);
	return buf;
}
