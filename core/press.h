/* copystand — which specimen a shutter press belongs to.
 *
 * A shot belongs to the catalog number that was current when its shutter
 * was pressed.  That moment is known only within bounds: after the
 * software trigger was sent, before the camera announced the file (or a
 * host handed it in), and, through the camera's own clock (EXIF
 * DateTimeOriginal + SubSecTimeOriginal), within what is known of that
 * clock's offset from ours.  The presses of one camera come in order, so
 * the bounds of one also bound its neighbours.  Where the bounds leave one
 * number, the shot is that number's; where they leave more, a person
 * decides.  Never a guess.
 *
 * Pure functions over what the journal keeps: no I/O, no clock.  Times are
 * unix seconds on the computer's clock; camera times are the camera's wall
 * clock read as if it were UTC, so the offset also takes up its time zone.
 */
#ifndef COPYSTAND_PRESS_H
#define COPYSTAND_PRESS_H

#include <stdbool.h>
#include <stddef.h>

/* The camera clock's rate error allowed for between two readings of it:
 * quartz clocks keep within ±50 ppm; this leaves a margin. */
#define PRESS_DRIFT 2e-4
/* The offset known well enough: readings stop until drift widens it. */
#define PRESS_CLOCK_GOOD 0.02
/* Shots of a camera looked at together: the undecided ones and this many
 * before them, enough to carry the clock and the order of presses. */
#define PRESS_HISTORY 64
/* Numbers a held shot is shown to belong to, at most. */
#define PRESS_CANDIDATES_MAX 8
/* Sources starting so hold one shot each, whose place among the other
 * presses is not known: it came in after a file named or begun after it. */
#define PRESS_UNORDERED "unordered-"

/* A scan, in time order; identifier "" when the line was no catalog
 * number (the current number was cleared). */
typedef struct press_scan {
	double at;
	const char *identifier;
} press_scan;

/* The camera clock read against ours: at time at, its offset (camera −
 * computer) lay within [lo, hi]; either may be infinite. */
typedef struct press_clock {
	double at, lo, hi;
} press_clock;

/* What is known of one shot and, once press_decide() ran, its fate. */
typedef struct press_shot {
	/* In: bounds of the press known without the camera's clock (the
	 * trigger sent, the file announced); -INFINITY / INFINITY if none. */
	double lo, hi;
	/* In: the camera's clock at the press, and its resolution (0.01 with
	 * sub-seconds, 1 without); res 0 when the shot carries no time. */
	double cam, res;
	/* In: the number it has already ("" none), NULL if it is to be
	 * decided here.  by_time: that number was decided from the press
	 * time (by this rule or a person), so the press lies where it was
	 * current; a software trigger's number says nothing of that. */
	const char *fixed;
	bool by_time;

	/* Out: the press lies within [plo, phi]. */
	double plo, phi;
	/* Out: the number decided ("" none: no number was current), or NULL
	 * when the shot is held; then the numbers it may belong to, oldest
	 * first ("" among them: before any number). */
	const char *identifier;
	size_t ncand;
	const char *cand[PRESS_CANDIDATES_MAX];
	/* Out: the camera clock was read inconsistently around this shot (it
	 * was set meanwhile?): its time was not used. */
	bool clock_broken;
} press_shot;

/* Decides the shots of one camera, given in press order, from the scans
 * (in time order) and the clock readings.  Fixed shots keep their
 * number; the others get one, or stay held with their candidates.
 * Pointers out point into scans[] (or to ""). */
void press_decide(const press_scan *scans, size_t nscans,
		  const press_clock *clocks, size_t nclocks,
		  press_shot *shots, size_t nshots);

/* The camera's clock offset known at time t from the readings (and what
 * the shots' own times say of it, when shots is given): [lo, hi], false
 * when nothing is known. */
bool press_clock_offset(const press_clock *clocks, size_t nclocks,
			const press_shot *shots, size_t nshots, double t,
			double *lo, double *hi);

/* When to read the camera's clock (whole seconds) next, given its offset
 * [lo, hi] known at time at: no sooner than after, and once the drift
 * has widened it past PRESS_CLOCK_GOOD; at the moment the camera's next
 * tick falls in the middle of the offset, so that the reading halves it. */
double press_clock_next_read(double lo, double hi, double at, double after);

/* Parses EXIF DateTimeOriginal ("YYYY:MM:DD HH:MM:SS") and
 * SubSecTimeOriginal ("07", may be NULL or ""): the time as if UTC and its
 * resolution; false when it is no time. */
bool press_exif_time(const char *datetime, const char *subsec, double *t,
		     double *res);

#endif
