/* Closing inherited descriptors: close_range where the kernel has it (Linux 5.9), a bounded loop of
 * close() otherwise. Used by the module's helper child (spawn.c) and by the helper's launcher
 * (launcher.c), so that nothing a host or a shell held open reaches the helper. */
#ifndef PAM_MAPI_FDS_H
#define PAM_MAPI_FDS_H

/* The bound of the fallback loop: the soft RLIMIT_NOFILE, at least 1024 and at most 65536. Not
 * async-signal-safe in principle (getrlimit): call it before clone or fork. */
int fds_loop_max(void);

/* Closes fds lo..hi (inclusive); where close_range is missing, only those below loop_max.
 * Async-signal-safe. */
void fds_close_span(unsigned lo, unsigned hi, int loop_max);

#endif
