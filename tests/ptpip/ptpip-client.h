/* Starts ptpip-camera (the PTP/IP camera emulator) as a child process on a
 * free loopback port and steers it through its control socket.  For any
 * test or tool that needs a camera; see README.md for the commands. */
#ifndef PTPIP_CLIENT_H
#define PTPIP_CLIENT_H

#include <sys/types.h>

typedef struct ptpip_cam ptpip_cam;

/* exe: the ptpip-camera program (PTPIP_CAMERA_EXE in meson builds);
 * args: extra command-line arguments, NULL-terminated, may be NULL.
 * The child's stdin is our pipe, so it exits when we do.  NULL on failure,
 * with the reason on stderr. */
ptpip_cam *ptpip_cam_start(const char *exe, const char *const *args);

/* Closes the child's stdin (its way of hearing we are done), waits for it
 * and returns its exit status: 0 for a clean exit, which under ASan also
 * means no leaks; -1 if it had to be killed or died of a signal. */
int ptpip_cam_stop(ptpip_cam *cam);

pid_t ptpip_cam_pid(const ptpip_cam *cam);

/* "ptpip:127.0.0.1:P:P": libgphoto2 sends events to 15740 unless the
 * event port is given too. */
const char *ptpip_cam_port_path(const ptpip_cam *cam);

/* Sends one control command and returns its one-line reply ("OK ..." or
 * "ERR ..."), malloc'd, without the newline; NULL if the camera is gone. */
__attribute__((format(printf, 2, 3)))
char *ptpip_cam_control(ptpip_cam *cam, const char *fmt, ...);

/* The handle the camera's "list" gives for a file name, and its size
 * (size may be NULL); -1 when the card has no such file. */
long ptpip_cam_listed(ptpip_cam *cam, const char *name, unsigned long long *size);

/* CRC-32 (zlib's) of a local file, to compare with the camera's "crc32 H";
 * 0 for a file that cannot be read. */
unsigned long ptpip_crc_of_file(const char *path);

#endif
