/* The Entangle plugin in a host that behaves as Entangle 3.0 does
 * (host.c): installed as a user installs it, loaded by libpeas, fed the
 * captures Entangle runs and the downloads it announces, with catalog
 * numbers set through the plugin's action and, on a display (Xvfb), typed
 * into its field in the title bar; checked against what the stand-in
 * Specify holds.  With "status" last, only what the title bar shows: its
 * two status lines at Entangle's default window width, the whole message
 * in their tooltip and the log, and what earlier sessions left as a count.
 *
 * usage: test-entangle MODULE.so PLUGIN-FILE INSTALL-SCRIPT MKJPEG [status] */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <copystand.h>

#include "harness.h"
#include "host.h"
#include "tap.h"

#define MODULE "copystand-entangle"
#define ACTION "copystand-catalog-number"

/* Entangle's capture: the camera fires this long after it is asked; its
 * file then takes TRANSFER_S to download, or RAW_TRANSFER_S (a large RAW
 * over USB: long after the next label is scanned). */
#define SHUTTER_S 0.2
#define TRANSFER_S 0.1
#define RAW_TRANSFER_S 2.0

/* Entangle's camera window, as its .ui file makes it. */
#define WINDOW_WIDTH 1000
#define READY "copystand is ready: scan a label, then shoot"

static harness_server hs;
static GPtrArray *notes;         /* what the plugin said, in order */
static unsigned downloads;       /* files Entangle announced as downloaded */
static const char *mkjpeg;
static pid_t xvfb = -1;

static void on_log(const char *domain G_GNUC_UNUSED, GLogLevelFlags level G_GNUC_UNUSED,
		   const char *text, gpointer p G_GNUC_UNUSED)
{
	tap_diag("plugin: %s", text);
	g_ptr_array_add(notes, g_strdup(text));
}

/* Runs the main loop for up to timeout_s, until a note from index `from`
 * on holds what (then returns its index), or -1. */
static int wait_note(guint from, const char *what, double timeout_s)
{
	double until = harness_now() + timeout_s;

	for (;;) {
		for (guint i = from; i < notes->len; i++)
			if (strstr(notes->pdata[i], what))
				return (int)i;
		if (harness_now() > until)
			return -1;
		g_main_context_iteration(NULL, TRUE);
	}
}

static void spin(double seconds)
{
	double until = harness_now() + seconds;

	while (harness_now() < until)
		g_main_context_iteration(NULL, TRUE);
}

static int attached_to(const char *name, long long record)
{
	int n = 0;

	cJSON_Delete(harness_attachment_of(&hs, name, record, &n));
	return n;
}

/* Waits (main loop running) until name is attached to record. */
static bool wait_attached(const char *name, long long record)
{
	double until = harness_now() + 60;

	while (harness_now() < until) {
		if (attached_to(name, record) == 1)
			return true;
		spin(0.2);
	}
	return false;
}

/* A real JPEG from mkjpeg (seed makes it differ), or random bytes for a
 * RAW, as Entangle holds a download: in memory. */
static GByteArray *image(const char *name, unsigned seed)
{
	char *path = g_build_filename(harness_home(), name, NULL), *cmd, *bytes = NULL;
	gsize len = 0;
	GByteArray *a = NULL;

	if (g_str_has_suffix(name, ".JPG")) {
		cmd = g_strdup_printf("%s 320 240 %u %s", mkjpeg, seed, path);
		if (system(cmd) != 0)
			tap_diag("%s failed", cmd);
		g_free(cmd);
	} else {
		char *made = harness_make_file(name, 60000, seed);
		g_free(path);
		path = g_strdup(made);
		free(made);
	}
	if (g_file_get_contents(path, &bytes, &len, NULL))
		a = g_byte_array_new_take((guint8 *)bytes, len);
	unlink(path);
	g_free(path);
	return a ? a : g_byte_array_new();
}

/* A shot of the camera's own button, as Entangle downloads it. */
static void download(GObject *camera, const char *name, unsigned seed)
{
	GByteArray *data = image(name, seed);

	host_camera_download(camera, name, data);
	g_byte_array_unref(data);
}

/* A shot of Entangle's Capture (button, Space), its file downloaded
 * transfer_s after the camera fired. */
static void capture(GObject *automata, const char *name, unsigned seed, double transfer_s)
{
	GByteArray *data = image(name, seed);

	host_capture(automata, name, data, SHUTTER_S, transfer_s);
	g_byte_array_unref(data);
}

static void on_downloaded(GObject *camera G_GNUC_UNUSED, GObject *file G_GNUC_UNUSED,
			  gpointer p G_GNUC_UNUSED)
{
	downloads++;
}

/* Runs the main loop until Entangle announced n downloads in all. */
static bool wait_downloads(unsigned n)
{
	double until = harness_now() + 30;

	while (downloads < n && harness_now() < until)
		g_main_context_iteration(NULL, TRUE);
	return downloads >= n;
}

/* The plugin's action, as the field or `gapplication action` activates
 * it (straight from the action map: a headless host is not registered). */
static GAction *number_action(GtkApplication *app)
{
	return g_action_map_lookup_action(G_ACTION_MAP(app), ACTION);
}

static void set_number(GtkApplication *app, const char *text)
{
	g_action_activate(number_action(app), g_variant_new_string(text));
}

/* Scans number and waits for Specify's answer: "NUMBER  taxon ...". */
static bool scan(GtkApplication *app, int number)
{
	char text[16], answer[32];
	guint mark = notes->len;

	g_snprintf(text, sizeof text, "%d", number);
	g_snprintf(answer, sizeof answer, "%09d  ", number);
	set_number(app, text);
	return wait_note(mark, answer, 30) >= 0;
}

/* What copystand_open(NULL) reads: the user's config file. */
static bool write_config(void)
{
	char *dir = g_build_filename(g_get_user_config_dir(), "copystand", NULL);
	char *path = g_build_filename(dir, "config", NULL);
	char *text = g_strdup_printf("server = %s\nuser = %s\ncollection = %s\n"
				     "dir = %s/session\n", hs.url, hs.user, hs.collection,
				     harness_home());
	bool ok = g_mkdir_with_parents(dir, 0700) == 0 &&
		  g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL);

	g_free(dir);
	g_free(path);
	g_free(text);
	return ok;
}

/* Installs the plugin as docs/plugins.md tells a user to (the script
 * behind `meson compile install-entangle-plugin`), into the test's HOME. */
static void test_install(const char *module, const char *info, const char *script)
{
	char *cmd = g_strdup_printf("sh '%s' '%s' '%s' >&2", script, module, info);
	char *dir = g_build_filename(g_get_user_config_dir(), "entangle", "plugins", "copystand",
				     NULL);

	tap_is_int(system(cmd), 0, "install-user.sh installs the plugin");
	tap_ok(harness_dir_is(dir, "copystand.plugin libcopystand-entangle.so"),
	       "into ~/.config/entangle/plugins/copystand, where Entangle looks");
	g_free(cmd);
	g_free(dir);
}

static void die_with_us(gpointer p G_GNUC_UNUSED)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* A display for the title-bar field: Xvfb on a free display number, dying
 * with us.  FALSE (said why) when there is none. */
static bool start_display(void)
{
	const char *const argv[] = { "Xvfb", "-displayfd", "3", "-nolisten", "tcp",
				     "-screen", "0", "1280x800x24", NULL };
	const int target = 3;
	char num[16] = "", *display;
	GError *e = NULL;
	FILE *f;
	int fds[2];
	bool ok;

	if (pipe(fds) != 0)
		return false;
	ok = g_spawn_async_with_pipes_and_fds(NULL, argv, NULL,
					      G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
					      die_with_us, NULL, -1, -1, -1, &fds[1], &target, 1,
					      &xvfb, NULL, NULL, NULL, &e);
	close(fds[1]);
	/* One line: Xvfb writes the number and the newline apart, and dies
	 * if the pipe is closed in between. */
	f = ok ? fdopen(fds[0], "r") : NULL;
	ok = f && fgets(num, sizeof num, f) && strchr(num, '\n');
	if (f)
		fclose(f);
	else
		close(fds[0]);
	if (!ok) {
		tap_diag("no display: %s", e ? e->message : "Xvfb did not start");
		g_clear_error(&e);
		return false;
	}
	num[strcspn(num, "\n")] = '\0';
	display = g_strdup_printf(":%s", num);
	setenv("DISPLAY", display, 1);
	g_free(display);
	return gtk_init_check(NULL, NULL);
}

static void stop_display(void)
{
	if (xvfb > 0) {
		kill(xvfb, SIGTERM);
		waitpid(xvfb, NULL, 0);
	}
}

/* The plugin's widgets in the window's title bar: the children of the
 * box that holds its field (g_list_free them), or NULL. */
static GList *field_widgets(GtkWidget *window)
{
	GtkWidget *bar = gtk_window_get_titlebar(GTK_WINDOW(window));
	GList *children = gtk_container_get_children(GTK_CONTAINER(bar)), *found = NULL;

	for (GList *l = children; l && !found; l = l->next) {
		if (!GTK_IS_BOX(l->data))
			continue;
		GList *inner = gtk_container_get_children(GTK_CONTAINER(l->data));
		for (GList *k = inner; k && !found; k = k->next)
			if (GTK_IS_ENTRY(k->data))
				found = inner;
		if (!found)
			g_list_free(inner);
	}
	g_list_free(children);
	return found;
}

/* The plugin's nth widget of a type there: the field (an entry), the
 * status line (a label), the choices for a held capture (buttons). */
static GtkWidget *field_part(GtkWidget *window, GType type, int nth)
{
	GList *widgets = field_widgets(window);
	GtkWidget *part = NULL;

	for (GList *l = widgets; l && !part; l = l->next)
		if (G_TYPE_CHECK_INSTANCE_TYPE(l->data, type) && nth-- == 0)
			part = l->data;
	g_list_free(widgets);
	return part;
}

static GtkWidget *field_of(GtkWidget *window)
{
	return field_part(window, GTK_TYPE_ENTRY, 0);
}

static bool label_holds(GtkWidget *w, const char *what)
{
	return strstr(gtk_label_get_text(GTK_LABEL(w)), what) != NULL;
}

static bool is_shown(GtkWidget *w, const char *what G_GNUC_UNUSED)
{
	return gtk_widget_get_visible(w);
}

/* Runs the main loop until ok(w, what), up to 30 s. */
static bool wait_widget(GtkWidget *w, bool (*ok)(GtkWidget *, const char *), const char *what)
{
	double until = harness_now() + 30;

	while (w && !ok(w, what) && harness_now() < until)
		g_main_context_iteration(NULL, TRUE);
	return w && ok(w, what);
}

/* A key as the X server would deliver it to Entangle's window. */
static void press(GtkWidget *window, guint keyval)
{
	GdkDisplay *d = gtk_widget_get_display(window);
	GdkEvent *ev = gdk_event_new(GDK_KEY_PRESS);
	GdkKeymapKey *keys = NULL;
	gint n = 0;

	ev->key.window = g_object_ref(gtk_widget_get_window(window));
	ev->key.send_event = TRUE;
	ev->key.time = GDK_CURRENT_TIME;
	ev->key.keyval = keyval;
	if (gdk_keymap_get_entries_for_keyval(gdk_keymap_get_for_display(d), keyval, &keys, &n)) {
		ev->key.hardware_keycode = (guint16)keys[0].keycode;
		ev->key.group = (guint8)keys[0].group;
		g_free(keys);
	}
	gdk_event_set_device(ev, gdk_seat_get_keyboard(gdk_display_get_default_seat(d)));
	gtk_main_do_event(ev);
	ev->type = GDK_KEY_RELEASE;
	gtk_main_do_event(ev);
	gdk_event_free(ev);
	spin(0.05);
}

static void type(GtkWidget *window, const char *text)
{
	for (const char *c = text; *c; c++)
		press(window, gdk_unicode_to_keyval((guint32)(unsigned char)*c));
}

/* The technician at the window: scans into the field, Entangle's own keys
 * still work elsewhere, the field takes the focus back after each shot. */
static void test_window(GtkWidget *window, GObject *automata)
{
	GtkWidget *entry = field_of(window);
	guint mark;

	if (!tap_ok(entry != NULL, "the field is in the camera window's title bar"))
		return;
	tap_ok(gtk_window_get_focus(GTK_WINDOW(window)) == entry,
	       "and has the focus, ready for the first scan");

	mark = notes->len;
	type(window, "7");
	press(window, GDK_KEY_Return);
	tap_is_str(gtk_entry_get_text(GTK_ENTRY(entry)), "7", "a scan types into the field");
	tap_ok(wait_note(mark, "000000007", 20) >= 0, "Enter sets it: Specify's answer is shown");
	tap_ok(wait_widget(field_part(window, GTK_TYPE_LABEL, 0), label_holds,
			   "next: 000000007 ✓"),
	       "the status line says which number the next shot takes");

	unsigned captures = host_window_captures(window);
	press(window, GDK_KEY_space);
	tap_ok(host_window_captures(window) == captures + 1 &&
	       !strcmp(gtk_entry_get_text(GTK_ENTRY(entry)), "7"),
	       "once the number is in, Space shoots as Entangle's shortcut");
	press(window, GDK_KEY_s);
	type(window, "a b");
	tap_ok(host_window_captures(window) == captures + 1 &&
	       !strcmp(gtk_entry_get_text(GTK_ENTRY(entry)), "sa b"),
	       "while typing, Entangle's shortcut keys s and Space are text");
	gtk_entry_set_text(GTK_ENTRY(entry), "7");
	gtk_widget_grab_focus(host_window_capture_button(window));
	press(window, GDK_KEY_s);
	tap_is_int(host_window_captures(window), captures + 2,
		   "elsewhere in the window, s still captures");

	mark = notes->len;
	capture(automata, "IMG_0004.JPG", 4, TRANSFER_S);
	tap_ok(wait_note(mark, "IMG_0004.JPG → 000000007.jpg", 20) >= 0,
	       "the next shot is named from the typed number");
	tap_ok(gtk_window_get_focus(GTK_WINDOW(window)) == entry,
	       "after the shot the field has the focus again, for the next scan");
	tap_ok(wait_attached("000000007.jpg", 7), "and Specify holds it on record 7");
}

/* Entangle's capture with the next label scanned near it: number a, then
 * b scanned `after` s after the capture began (before it, if negative),
 * its file downloaded transfer_s after the shutter, after both.  The shot
 * is the number's that was current when capture was pressed: a's, or b's
 * when b came first (whatever view of that record it becomes). */
static void test_race(GtkApplication *app, GObject *automata, const char *file, int a, int b,
		      double after, double transfer_s)
{
	int owner = after < 0 ? b : a, k;
	char number[16], named[64], attached[64] = "";
	guint mark;

	g_snprintf(number, sizeof number, "%d", b);
	g_snprintf(named, sizeof named, "%s → %09d", file, owner);
	tap_ok(scan(app, a), "scan %d", a);
	mark = notes->len;
	if (after < 0) {
		set_number(app, number);
		spin(-after);
	}
	/* Seeded by its file number: no two shots of a camera are the same
	 * bytes (the same bytes again are refused as a re-save). */
	capture(automata, file, (unsigned)atoi(file + strlen("IMG_")), transfer_s);
	if (after >= 0) {
		spin(after);
		set_number(app, number);
	}
	k = wait_note(mark, named, 30);
	if (k >= 0)
		sscanf(strstr(notes->pdata[k], "→ ") + strlen("→ "), "%63s", attached);
	tap_ok(k >= 0, "%d scanned %g s %s Capture, %g s to the file: the shot is %d's", b,
	       after < 0 ? -after : after, after < 0 ? "before" : "after", transfer_s, owner);
	tap_ok(attached[0] && wait_attached(attached, owner), "Specify holds it on record %d (%s)",
	       owner, attached);
}

/* A capture the camera fails ends without a file: its number goes to no
 * later shot. */
static void test_failed_capture(GtkApplication *app, GObject *automata)
{
	guint mark;

	tap_ok(scan(app, 12), "scan 12");
	host_capture(automata, NULL, NULL, SHUTTER_S, 0);
	tap_ok(scan(app, 123), "the camera fails to shoot; scan 123");
	mark = notes->len;
	capture(automata, "IMG_0030.JPG", 30, TRANSFER_S);
	tap_ok(wait_note(mark, "IMG_0030.JPG → 000000123.jpg", 30) >= 0,
	       "the next capture is 123's, not the failed one's 12");
	tap_ok(wait_attached("000000123.jpg", 13), "Specify holds it on 123's record");
}

/* The camera's own button after a new scan, its image without the
 * camera's clock: copystand cannot tell which number's it is, holds it,
 * and the technician decides with the two buttons beside the status. */
static void test_held(GtkApplication *app, GObject *automata, GObject *camera,
		      GtkWidget *window)
{
	GtkWidget *status, *before, *after;
	guint mark;

	tap_ok(scan(app, 3), "scan 3");
	mark = notes->len;
	capture(automata, "IMG_0020.JPG", 20, TRANSFER_S);
	tap_ok(wait_note(mark, "IMG_0020.JPG → 000000003.jpg", 30) >= 0,
	       "Entangle's capture under 3 is 3's");
	tap_ok(scan(app, 4), "scan 4");
	mark = notes->len;
	download(camera, "IMG_0021.JPG", 21);
	tap_ok(wait_note(mark, "IMG_0021.JPG → pending_", 30) >= 0,
	       "a shot of the camera's button goes in under a provisional name");
	tap_ok(wait_note(mark, "HELD pending_", 60) >= 0,
	       "shot after a new scan, with no time in its image: held");
	if (!window) {
		tap_ok(1, "the choice beside the status line # SKIP no display");
		return;
	}
	status = field_part(window, GTK_TYPE_LABEL, 0);
	before = field_part(window, GTK_TYPE_BUTTON, 0);
	after = field_part(window, GTK_TYPE_BUTTON, 1);
	tap_ok(wait_widget(before, is_shown, NULL) && wait_widget(after, is_shown, NULL),
	       "two buttons appear beside the status line");
	tap_is_str(gtk_button_get_label(GTK_BUTTON(before)), "000000003",
		   "one names the number before the scan");
	tap_is_str(gtk_button_get_label(GTK_BUTTON(after)), "000000004",
		   "the other the number after it");
	tap_ok(strstr(gtk_label_get_label(GTK_LABEL(status)),
		      "foreground=\"#c01c28\" weight=\"bold\">next: 000000004 ✓") != NULL,
	       "the status line says so in bold red: %s", gtk_label_get_label(GTK_LABEL(status)));
	/* A person reads it first (copystand refuses a decision the moment a
	 * capture is held: it may have been meant for the one shown before). */
	spin(1.2);
	gtk_button_clicked(GTK_BUTTON(after));
	tap_ok(wait_attached("000000004.jpg", 4), "clicking 000000004 attaches it to record 4");
	tap_ok(!gtk_widget_get_visible(before) && !gtk_widget_get_visible(after),
	       "and the buttons are gone");

	download(camera, "IMG_0022.JPG", 22);
	tap_ok(wait_attached("000000004_2.jpg", 4),
	       "the camera's button with no scan since the last shot: the current number");
}

static GtkWidget *named_part(GtkWidget *window, const char *name)
{
	GList *widgets = field_widgets(window);
	GtkWidget *part = NULL;

	for (GList *l = widgets; l && !part; l = l->next)
		if (!strcmp(gtk_widget_get_name(l->data), name))
			part = l->data;
	g_list_free(widgets);
	return part;
}

static bool label_is(GtkWidget *w, const char *what)
{
	return !strcmp(gtk_label_get_text(GTK_LABEL(w)), what);
}

static bool button_is(GtkWidget *w, const char *what)
{
	return gtk_widget_get_visible(w) && !g_strcmp0(gtk_button_get_label(GTK_BUTTON(w)), what);
}

/* Runs the main loop until the status lines read want, and says so. */
static void tap_status(GtkWidget *status, const char *want, const char *what)
{
	bool ok = wait_widget(status, label_is, want);
	char *now = g_strdup(status ? gtk_label_get_text(GTK_LABEL(status)) : "(no status)");

	tap_ok(ok, "%s: %s", what, now);
	g_free(now);
}

/* The status lines fit Entangle's window as it opens: the title bar
 * needs no more than its width, and neither line is cut short. */
static void test_fits(GtkWidget *window, const char *when)
{
	GtkWidget *bar = gtk_window_get_titlebar(GTK_WINDOW(window));
	GtkWidget *status = field_part(window, GTK_TYPE_LABEL, 0);
	int natural = 0, label = 0;

	spin(0.3);    /* laid out */
	gtk_widget_get_preferred_width(bar, NULL, &natural);
	gtk_widget_get_preferred_width(status, NULL, &label);
	tap_diag("status: %d pixels wanted, %d given; window %d", label,
		 gtk_widget_get_allocated_width(status), gtk_widget_get_allocated_width(window));
	tap_ok(natural <= WINDOW_WIDTH, "%s: the title bar needs %d of the window's %d pixels",
	       when, natural, WINDOW_WIDTH);
	tap_ok(!pango_layout_is_ellipsized(gtk_label_get_layout(GTK_LABEL(status))),
	       "and the status lines are whole: %s", gtk_label_get_text(GTK_LABEL(status)));
}

/* The text of the log's nth line (newest first), or "". */
static const char *log_line(GtkWidget *window, int nth)
{
	GtkWidget *log = named_part(window, "copystand-log");
	GtkWidget *pop = log ? GTK_WIDGET(gtk_menu_button_get_popover(GTK_MENU_BUTTON(log))) : NULL;
	GtkWidget *scroll = pop ? gtk_bin_get_child(GTK_BIN(pop)) : NULL;
	GtkWidget *view = scroll ? gtk_bin_get_child(GTK_BIN(scroll)) : NULL;
	GtkWidget *list = GTK_IS_VIEWPORT(view) ? gtk_bin_get_child(GTK_BIN(view)) : view;
	GtkListBoxRow *row = GTK_IS_LIST_BOX(list) ?
		gtk_list_box_get_row_at_index(GTK_LIST_BOX(list), nth) : NULL;
	GtkWidget *label = row ? gtk_bin_get_child(GTK_BIN(row)) : NULL;

	return GTK_IS_LABEL(label) ? gtk_label_get_text(GTK_LABEL(label)) : "";
}

/* An earlier gphoto2 session: a station without a camera (whose clock it
 * read) ran and ended, then its hook handed in a file shot after that, with
 * no number: it waits in that station's folder for the next one. */
static bool gphoto2_session(const char *name)
{
	char *path = g_build_filename(harness_home(), name, NULL), *cmd = NULL, *given = NULL;
	char err[512] = "";
	copystand *c = NULL;
	int rc = copystand_open(NULL, &c, err, sizeof err);
	double t = (double)g_get_real_time() / G_USEC_PER_SEC;

	if (rc == 0)
		rc = copystand_camera_clock(c, t, t + 0.001, t, 0.01, err, sizeof err);
	copystand_close(c);
	spin(0.3);
	if (rc == 0) {
		cmd = g_strdup_printf("%s 320 240 9 %s %.3f", mkjpeg, path,
				      (double)g_get_real_time() / G_USEC_PER_SEC);
		rc = system(cmd) == 0 ? copystand_submit_to_running(path, &given, err, sizeof err)
				      : -1;
	}
	tap_diag("handed in with no station running: %s", rc ? err : given);
	copystand_free(given);
	g_free(cmd);
	g_free(path);
	return rc == 0;
}

/* What the title bar shows (issue 14): at the start "ready", not what an
 * earlier session left; a file's news short in the bar, whole in the
 * tooltip and the log; what earlier sessions left as a count. */
static void test_status(GtkApplication *app, GtkWidget *window, GObject *automata)
{
	char *session = g_build_filename(harness_home(), "session", NULL), *want;
	GtkWidget *status = field_part(window, GTK_TYPE_LABEL, 0);
	GtkWidget *earlier = named_part(window, "copystand-earlier");
	char *tip;
	guint mark;

	tap_status(status, "next: no number\n" READY, "at the start the status says it is ready");
	tap_ok(earlier && !gtk_widget_get_visible(earlier), "no earlier files: no count");
	test_fits(window, "ready");

	mark = notes->len;
	set_number(app, "99999");
	tap_ok(wait_note(mark, "000099999", 30) >= 0, "scan 99999, a number Specify does not have");
	capture(automata, "IMG_0001.JPG", 1, TRANSFER_S);
	tap_ok(wait_note(mark, "NOT ATTACHED 000099999.jpg", 60) >= 0, "its shot is not attached");
	tap_status(status, "next: 000099999 ✗\nNOT ATTACHED 000099999.jpg — 000099999",
		   "the status is short: what happened, the file, the number");
	test_fits(window, "a file not attached");
	want = g_strdup_printf("catalogue the specimen in Specify, then run copystand upload %s",
			       session);
	tip = gtk_widget_get_tooltip_text(status);
	tap_ok(tip && g_str_has_prefix(tip, "NOT ATTACHED 000099999.jpg: no collectionobject "
				       "has Catalog Number '000099999'") && strstr(tip, want),
	       "its tooltip has the whole message, which says what to do: %s", tip);
	g_free(tip);
	tap_ok(strstr(log_line(window, 0), "NOT ATTACHED 000099999.jpg: no collectionobject") &&
	       strstr(log_line(window, 0), want), "the log has it whole, on top: %s",
	       log_line(window, 0));
	tap_ok(strstr(log_line(window, 1), "IMG_0001.JPG → 000099999.jpg") != NULL,
	       "what came before, below it: %s", log_line(window, 1));
	g_free(want);

	/* Entangle quits; a gphoto2 session hands in a file with no station
	 * running; Entangle starts again. */
	tap_ok(host_plugin_set(MODULE, FALSE), "the plugin is disabled (Entangle quits)");
	spin(0.5);
	tap_ok(gphoto2_session("IMG_0100.JPG"), "a gphoto2 session meanwhile leaves a file with "
	       "no number");
	mark = notes->len;
	tap_ok(host_plugin_set(MODULE, TRUE), "enabled again (Entangle starts)");
	status = field_part(window, GTK_TYPE_LABEL, 0);
	earlier = named_part(window, "copystand-earlier");
	want = g_strdup_printf("2 earlier files need a decision: copystand upload %s", session);
	tap_ok(wait_widget(earlier, button_is, "2 earlier"),
	       "what earlier sessions left is a count beside the status");
	tip = earlier ? gtk_widget_get_tooltip_text(earlier) : NULL;
	tap_is_str(tip ? tip : "", want, "its tooltip says what to run");
	g_free(tip);
	spin(2);      /* anything more the start would say */
	tap_ok(status && label_is(status, "next: no number\n" READY),
	       "the status still says it is ready: %s",
	       status ? gtk_label_get_text(GTK_LABEL(status)) : "(no status)");
	tap_ok(wait_note(mark, "NOT ATTACHED", 0) < 0 && wait_note(mark, "pending_", 0) < 0,
	       "and the left-overs are not news of this session");
	test_fits(window, "ready, with the count");
	mark = notes->len;
	set_number(app, "99999");
	capture(automata, "IMG_0002.JPG", 2, TRANSFER_S);
	tap_status(status, "next: 000099999 ✗\nNOT ATTACHED 000099999_2.jpg — 000099999",
		   "another not attached");
	test_fits(window, "a file not attached, with the count");
	g_free(want);
	g_free(session);
}

static gboolean tick(gpointer p G_GNUC_UNUSED)
{
	return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
	static const char *const plugins[] = { MODULE, NULL };
	GtkApplication *app = NULL;
	GtkWidget *window = NULL;
	GObject *camera = NULL, *automata = NULL;
	GError *e = NULL;
	guint log_handler, ticker, mark;
	bool gui, status_only = argc > 5 && !strcmp(argv[5], "status");

	if (argc < 5)
		return tap_skip_all("usage: test-entangle MODULE.so PLUGIN-FILE INSTALL-SCRIPT MKJPEG "
				    "[status]");
	mkjpeg = argv[4];
	const char *why = harness_standin_start(&hs);
	if (why)
		return tap_skip_all(why);
	setenv("COPYSTAND_PASSWORD", hs.password, 1);
	notes = g_ptr_array_new_with_free_func(g_free);
	log_handler = g_log_set_handler("copystand", G_LOG_LEVEL_MASK, on_log, NULL);
	ticker = g_timeout_add(50, tick, NULL);   /* the waits below wake this often */
	if (!tap_ok(write_config(), "a copystand config file in the test's HOME"))
		goto out;
	test_install(argv[1], argv[2], argv[3]);
	gui = start_display();
	if (!gui)
		tap_diag("the title-bar field is not tested (scripts/deps.sh test installs Xvfb)");
	if (!gui && status_only) {
		tap_ok(1, "the title bar # SKIP no display");
		goto out;
	}

	/* Entangle starts: the plugin is enabled in its settings. */
	app = host_app_new(plugins);
	tap_ok(peas_plugin_info_is_loaded(peas_engine_get_plugin_info(peas_engine_get_default(),
								      MODULE)),
	       "libpeas loads the plugin from the user's Entangle plugin folder");
	tap_ok(number_action(app) != NULL,
	       "the plugin adds the action " ACTION " to Entangle's application");
	tap_ok(wait_note(0, "copystand is ready", 30) >= 0, "copystand opens its station");
	camera = host_camera_new();
	automata = host_automata_new(camera);
	g_signal_connect(camera, "camera-file-downloaded", G_CALLBACK(on_downloaded), NULL);
	if (gui) {
		if (!tap_ok(host_app_start(app, &e), "Entangle's application registers%s%s",
			    e ? ": " : "", e ? e->message : ""))
			goto out;
		window = host_window_new(app);
	}
	if (status_only) {
		test_status(app, window, automata);
		goto quit;
	}

	/* A JPEG-only shot. */
	mark = notes->len;
	tap_ok(scan(app, 5), "scan 5: Specify's answer is shown");
	capture(automata, "IMG_0001.JPG", 1, TRANSFER_S);
	tap_ok(wait_note(mark, "IMG_0001.JPG → 000000005.jpg", 20) >= 0,
	       "Entangle's capture is named from the current number");
	tap_ok(wait_attached("000000005.jpg", 5), "Specify holds it on record 5");
	tap_ok(wait_note(mark, "attached ✓ 000000005", 60) >= 0, "and the plugin says so");

	/* A RAW+JPEG press, the next label scanned between its two downloads
	 * (the RAW comes as a file the camera added): both files are one
	 * press, named from the number current when capture was pressed. */
	mark = notes->len;
	capture(automata, "IMG_0002.JPG", 2, TRANSFER_S);
	tap_ok(wait_downloads(downloads + 1), "its JPEG is downloaded");
	set_number(app, "6");
	download(camera, "IMG_0002.CR2", 3);
	tap_ok(wait_note(mark, "IMG_0002.JPG + IMG_0002.CR2 → 000000005_2.jpg", 20) >= 0,
	       "the pair goes to copystand as one press, named from 5");
	capture(automata, "IMG_0003.JPG", 5, TRANSFER_S);
	tap_ok(wait_note(mark, "IMG_0003.JPG → 000000006.jpg", 20) >= 0,
	       "the shot after the scan is named from 6");
	tap_ok(wait_attached("000000005_2.jpg", 5) && wait_attached("000000005_2.cr2", 5),
	       "Specify holds the pair on record 5");
	tap_ok(wait_attached("000000006.jpg", 6), "and the next shot on record 6");

	mark = notes->len;
	set_number(app, "no such thing!");
	tap_ok(wait_note(mark, "no such thing! refused: scan not used", 20) >= 0,
	       "text that is no catalog number is refused, and said so");

	/* The next label scanned while a capture is on its way. */
	/* The next label from 1 s before to 2 s after Capture, with 0.1 s
	 * and 2 s from the shutter to the file. */
	static const double offsets[] = { -1.0, -0.3, -0.05, 0.05, 0.3, 1.0, 2.0 };
	for (size_t i = 0; i < 2 * sizeof offsets / sizeof *offsets; i++) {
		char file[32];
		int a = 8 + (int)(i % 4), b = 8 + (int)((i + 1) % 4);
		g_snprintf(file, sizeof file, "IMG_%04zu.JPG", 40 + i);
		test_race(app, automata, file, a, b, offsets[i % 7],
			  i < 7 ? TRANSFER_S : RAW_TRANSFER_S);
	}
	test_failed_capture(app, automata);

	if (gui)
		test_window(window, automata);
	else
		tap_ok(1, "the title-bar field # SKIP no display");
	test_held(app, automata, camera, window);

	/* Disabled in Preferences → Plugins, then enabled again. */
	tap_ok(host_plugin_set(MODULE, FALSE), "the plugin is disabled");
	mark = notes->len;
	tap_ok(number_action(app) == NULL, "its action is gone");
	if (gui)
		tap_ok(field_of(window) == NULL, "and its field");
	download(camera, "IMG_0005.JPG", 6);
	tap_ok(wait_note(mark, "IMG_0005.JPG", 4) < 0, "a disabled plugin takes no captures");
	tap_ok(host_plugin_set(MODULE, TRUE), "enabled again");
	tap_ok(wait_note(mark, "copystand is ready", 30) >= 0, "it opens its station again");
	if (gui)
		tap_ok(field_of(window) != NULL, "its field is back in the open window");
quit:
	tap_ok(host_plugin_set(MODULE, FALSE), "disabled before Entangle quits");
out:
	if (window)
		gtk_widget_destroy(window);
	g_clear_object(&automata);
	g_clear_object(&camera);
	g_clear_object(&app);
	g_clear_error(&e);
	spin(0.1);   /* the plugin's last notes */
	g_log_remove_handler("copystand", log_handler);
	g_source_remove(ticker);
	g_ptr_array_unref(notes);
	stop_display();
	harness_server_stop(&hs);
	harness_cleanup();
	return tap_done();
}
