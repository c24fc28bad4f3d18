/* copystand — the barcode scanner at the copy stand.
 *
 * Delivers what a scanner sends, one raw line at a time, from one of:
 *  - the terminal (a keyboard-wedge scanner types into it);
 *  - a serial or USB CDC-ACM scanner ("/dev/ttyACM0", "/dev/serial/by-id/..."),
 *    set raw (no echo, no line editing, CR and LF left alone) at 9600 baud,
 *    which CDC-ACM ignores;
 *  - an input device ("/dev/input/by-id/...-event-kbd") grabbed for copystand
 *    alone, so scans do not type into other windows; its keys are read as a
 *    US keyboard: letters, digits, space and - _ . / ; Enter ends a scan.
 * Lines are raw: CR, LF and CRLF end one, and what is in it (AIM symbology
 * ids, prefixes, stray control bytes) is left for catalog_scan_parse() to
 * clean or refuse.  Knows nothing of catalog numbers or Specify.
 *
 * The terminal is opened anew as /dev/tty: the scanner never uses fd 0,
 * which libgphoto2 closes at the end of each camera session, and its
 * non-blocking reads do not make the station's own reads of stdin fail.
 * Its mode is left alone: in the usual (cooked) mode it echoes what is
 * typed, Backspace corrects a catalog number typed by hand, and it passes
 * on whole lines.  So at the terminal keys are lines too: Enter alone is
 * an empty line, "u" then Enter is the line "u"; the station decides what
 * such lines mean (shoot, undo, quit) before taking a line as a scan.
 * Scanners end every scan with Enter; single keys without Enter are not
 * delivered, as a typed letter and the start of a scan look the same.
 *
 * The codes:
 *   CS_E_UNREACHABLE  no such device, no terminal, or it went away
 *                     (unplugged, terminal closed, Ctrl-D typed at the
 *                     terminal): open it again later
 *   CS_E_ACCESS       not allowed to open it, or another program grabbed it
 *   CS_E_INVALID      not a scanner; a line too long or garbled (the line
 *                     is still consumed: read on); bad arguments
 *   CS_E_IO           anything else the system refused
 *
 * A scanner belongs to one thread.
 */
#ifndef COPYSTAND_SCANNER_H
#define COPYSTAND_SCANNER_H

#include <stddef.h>

#include "error.h"

typedef struct scanner scanner;

/* The longest line delivered whole; a buffer of this size always fits a
 * line and its NUL.  Longer ones are cut (no catalog number is that long;
 * the scanner is probably not sending a terminator). */
#define SCANNER_LINE_MAX 1024

/* Opens the scanner at path (a serial or input device), or the terminal
 * when path is NULL.  Non-blocking: nothing waits for a scan. */
int scanner_open(const char *path, scanner **out, cs_error *err);

/* For poll(): readable (POLLIN) when there is something to read, and when
 * the device went away (POLLHUP, POLLERR): then call scanner_read_line(),
 * which says so.  Readable can still mean no complete line yet. */
int scanner_fd(const scanner *s);

/* The next complete line, without its terminator, NUL-terminated in buf:
 * 1.  0 when there is none yet (never waits; a line may come in pieces).
 * CS_E_INVALID with the line consumed: longer than size - 1 bytes or
 * SCANNER_LINE_MAX (buf holds its start), or holding a NUL byte.
 * CS_E_UNREACHABLE when the device or terminal went away: free it and open
 * it again later (an unfinished line is lost; scan it again).  Call it
 * until it returns 0 before polling again: several lines may be waiting. */
int scanner_read_line(scanner *s, char *buf, size_t size, cs_error *err);

/* Gives back the device (releases the grab, puts back a serial device's
 * settings) and frees s (NULL is fine). */
void scanner_free(scanner *s);

#endif
