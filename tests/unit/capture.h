/* A unit test's stdout captured in a file: what hvctl's commands print (cmocka asserts). */
#ifndef HV_TESTS_UNIT_CAPTURE_H
#define HV_TESTS_UNIT_CAPTURE_H

/* From now on stdout goes to a temporary file. */
void capture(void);
/* What was printed since capture(), stdout back where it was; the caller frees it. */
char *captured(void);
/* For a teardown: stdout back and the file gone, after an assert failed while capturing. */
void capture_cleanup(void);

#endif
